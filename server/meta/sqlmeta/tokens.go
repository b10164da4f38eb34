package sqlmeta

import (
	"context"
	"database/sql"
	"errors"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

const tokenCols = `id, user_id, family, expires_at, revoked, COALESCE(replaced_by, ''), created_at`

func scanToken(row row) (meta.RefreshToken, error) {
	var t meta.RefreshToken
	var exp, created int64
	err := row.Scan(&t.ID, &t.User, &t.Family, &exp, &t.Revoked, &t.ReplacedBy, &created)
	t.ExpiresAt, t.CreatedAt = fromNS(exp), fromNS(created)
	return t, err
}

func (t *tx) insertToken(ctx context.Context, rt meta.RefreshToken) error {
	_, err := t.exec(ctx, `INSERT INTO refresh_tokens (id, user_id, family, expires_at, revoked, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		rt.ID, rt.User, rt.Family, ns(rt.ExpiresAt), false, ns(t.now))
	return err
}

func checkToken(op dfms.Op, rt meta.RefreshToken) error {
	if rt.ID == "" || rt.Family == "" || rt.User == 0 || rt.ExpiresAt.IsZero() {
		return dfms.Errorf(op, dfms.Invalid, "a refresh token needs an id, a user, a family and an expiry")
	}
	return nil
}

// CreateRefreshToken implements meta.Users.
func (s *Store) CreateRefreshToken(ctx context.Context, rt meta.RefreshToken) error {
	const op dfms.Op = "meta.CreateRefreshToken"
	if err := checkToken(op, rt); err != nil {
		return err
	}
	return s.write(ctx, op, func(t *tx) error { return t.insertToken(ctx, rt) })
}

// errReused reports, after the transaction that revoked the family has
// committed, that a token was presented twice.
var errReused = errors.New("refresh token reused; its family is revoked")

// RotateRefreshToken implements meta.Users.
func (s *Store) RotateRefreshToken(ctx context.Context, id string, next meta.RefreshToken) (meta.RefreshToken, error) {
	const op dfms.Op = "meta.RotateRefreshToken"
	var old meta.RefreshToken
	var verdict error // set inside, returned after the commit
	err := s.write(ctx, op, func(t *tx) error {
		verdict = nil
		var err error
		old, err = scanToken(t.queryRow(ctx, `SELECT `+tokenCols+` FROM refresh_tokens WHERE id = ?`+t.s.d.ForUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.Errorf(op, dfms.NotExist, "unknown refresh token")
		}
		if err != nil {
			return err
		}
		switch {
		case old.Revoked || old.ReplacedBy != "":
			// Reuse: revoke the family, and commit that.
			if _, err := t.exec(ctx, `UPDATE refresh_tokens SET revoked = ? WHERE family = ?`, true, old.Family); err != nil {
				return err
			}
			verdict = dfms.E(op, dfms.Permission, errReused)
			return nil
		case !old.ExpiresAt.After(t.now):
			return dfms.Errorf(op, dfms.Permission, "refresh token expired")
		}
		next.User, next.Family = old.User, old.Family
		if err := checkToken(op, next); err != nil {
			return err
		}
		if err := t.insertToken(ctx, next); err != nil {
			return err
		}
		_, err = t.exec(ctx, `UPDATE refresh_tokens SET replaced_by = ? WHERE id = ?`, next.ID, id)
		return err
	})
	if err != nil {
		return old, err
	}
	if verdict != nil {
		return old, verdict
	}
	return old, nil
}

// RevokeRefreshToken implements meta.Users.
func (s *Store) RevokeRefreshToken(ctx context.Context, id string) error {
	const op dfms.Op = "meta.RevokeRefreshToken"
	return s.write(ctx, op, func(t *tx) error {
		var family string
		err := t.queryRow(ctx, `SELECT family FROM refresh_tokens WHERE id = ?`, id).Scan(&family)
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.Errorf(op, dfms.NotExist, "unknown refresh token")
		}
		if err != nil {
			return err
		}
		_, err = t.exec(ctx, `UPDATE refresh_tokens SET revoked = ? WHERE family = ?`, true, family)
		return err
	})
}

// RevokeUserRefreshTokens implements meta.Users.
func (s *Store) RevokeUserRefreshTokens(ctx context.Context, user dfms.UserID) error {
	return s.write(ctx, "meta.RevokeUserRefreshTokens", func(t *tx) error {
		_, err := t.exec(ctx, `UPDATE refresh_tokens SET revoked = ? WHERE user_id = ? AND revoked = ?`, true, user, false)
		return err
	})
}
