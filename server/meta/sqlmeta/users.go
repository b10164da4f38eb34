package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// userCols are a user's columns; their one argument is the time at which
// held bytes are counted (heldCol).
const userCols = `id, email, password_hash, display_name, role, active, quota_bytes, used_bytes, ` + heldCol + `, COALESCE(root_id, 0), created_at`

func scanUser(row row) (meta.User, error) {
	var u meta.User
	var created int64
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.DisplayName, &u.Role, &u.Active,
		&u.QuotaBytes, &u.UsedBytes, &u.HeldBytes, &u.Root, &created)
	u.CreatedAt = fromNS(created)
	return u, err
}

func emailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func checkUser(op dfms.Op, u *meta.User) error {
	if emailKey(u.Email) == "" {
		return dfms.Errorf(op, dfms.Invalid, "empty email")
	}
	if u.Role == "" {
		u.Role = meta.RoleUser
	}
	if u.Role != meta.RoleUser && u.Role != meta.RoleAdmin {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("unknown role %q", u.Role))
	}
	if u.QuotaBytes < 0 {
		return dfms.Errorf(op, dfms.Invalid, "negative quota")
	}
	return nil
}

// CreateUser implements meta.Users.
func (s *Store) CreateUser(ctx context.Context, u meta.User) (meta.User, error) {
	const op dfms.Op = "meta.CreateUser"
	if err := checkUser(op, &u); err != nil {
		return meta.User{}, err
	}
	var out meta.User
	err := s.write(ctx, op, func(t *tx) error {
		var id int64
		err := t.queryRow(ctx, `INSERT INTO users (email, email_key, password_hash, display_name, role, active, quota_bytes, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			strings.TrimSpace(u.Email), emailKey(u.Email), u.PasswordHash, u.DisplayName, u.Role, u.Active, u.QuotaBytes, ns(t.now)).Scan(&id)
		if err != nil {
			if dfms.Is(s.classify(err), dfms.Exist) {
				return dfms.E(op, dfms.Exist, fmt.Errorf("email %q is taken", u.Email))
			}
			return err
		}
		var root int64
		err = t.queryRow(ctx, `INSERT INTO entries (owner_id, parent_id, name, kind, mode, mtime_ns, ctime_ns)
			VALUES (?, NULL, '', ?, ?, ?, ?) RETURNING id`, id, dfms.KindDir, 0o755, ns(t.now), ns(t.now)).Scan(&root)
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE users SET root_id = ? WHERE id = ?`, root, id); err != nil {
			return err
		}
		out, err = scanUser(t.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, ns(t.now), id))
		if err != nil {
			return err
		}
		return t.userEvent(dfms.EventUserCreated, out)
	})
	return out, err
}

// userEvent adds a TopicUsers event.
func (t *tx) userEvent(typ string, u meta.User) error {
	return t.event(dfms.TopicUsers, strconv.FormatInt(int64(u.ID), 10), typ, dfms.UserEvent{ID: u.ID, Role: u.Role})
}

func (s *Store) getUser(ctx context.Context, op dfms.Op, where string, arg any) (meta.User, error) {
	var u meta.User
	err := s.read(ctx, op, func(t *tx) error {
		var err error
		u, err = scanUser(t.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE `+where, ns(t.now), arg))
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.Errorf(op, dfms.NotExist, "no such user")
		}
		return err
	})
	return u, err
}

// GetUser implements meta.Users.
func (s *Store) GetUser(ctx context.Context, id dfms.UserID) (meta.User, error) {
	return s.getUser(ctx, "meta.GetUser", "id = ?", id)
}

// GetUserByEmail implements meta.Users.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (meta.User, error) {
	return s.getUser(ctx, "meta.GetUserByEmail", "email_key = ?", emailKey(email))
}

// UpdateUser implements meta.Users.
func (s *Store) UpdateUser(ctx context.Context, u meta.User) error {
	const op dfms.Op = "meta.UpdateUser"
	if err := checkUser(op, &u); err != nil {
		return err
	}
	return s.write(ctx, op, func(t *tx) error {
		var role string
		var active bool
		err := t.queryRow(ctx, `SELECT role, active FROM users WHERE id = ?`, u.ID).Scan(&role, &active)
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.Errorf(op, dfms.NotExist, "no such user")
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE users SET password_hash = ?, display_name = ?, role = ?, active = ?, quota_bytes = ? WHERE id = ?`,
			u.PasswordHash, u.DisplayName, u.Role, u.Active, u.QuotaBytes, u.ID); err != nil {
			return err
		}
		if err := t.userEvent(dfms.EventUserUpdated, u); err != nil {
			return err
		}
		if role != meta.RoleAdmin || !active || u.Role == meta.RoleAdmin && u.Active {
			return nil
		}
		// An active administrator steps down: someone must remain. (Two
		// stepping down at once are serialized: SQLite has one writer,
		// and PostgreSQL's serializable transactions abort one of them.)
		var admins int
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM users WHERE role = ? AND active = ?`, meta.RoleAdmin, true).Scan(&admins); err != nil {
			return err
		}
		if admins == 0 {
			return dfms.Errorf(op, dfms.Conflict, "the last active administrator cannot be demoted or deactivated")
		}
		return nil
	})
}

// ListUsers implements meta.Users.
func (s *Store) ListUsers(ctx context.Context) ([]meta.User, error) {
	var out []meta.User
	err := s.read(ctx, "meta.ListUsers", func(t *tx) error {
		out = out[:0]
		rows, err := t.query(ctx, `SELECT `+userCols+` FROM users ORDER BY id`, ns(t.now))
		out, err = scanAll(rows, err, scanUser)
		return err
	})
	return out, err
}

// Usage implements meta.Tree.
func (s *Store) Usage(ctx context.Context, owner dfms.UserID) (meta.Usage, error) {
	const op dfms.Op = "meta.Usage"
	var u meta.Usage
	err := s.read(ctx, op, func(t *tx) error {
		err := t.queryRow(ctx, `SELECT used_bytes, `+heldCol+`, quota_bytes FROM users WHERE id = ?`, ns(t.now), owner).Scan(&u.LogicalBytes, &u.HeldBytes, &u.QuotaBytes)
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.Errorf(op, dfms.NotExist, "no such user")
		}
		if err != nil {
			return err
		}
		err = t.queryRow(ctx, `SELECT
				COALESCE(SUM(CASE WHEN kind = ? THEN 1 ELSE 0 END), 0),
				COALESCE(SUM(CASE WHEN kind = ? AND parent_id IS NOT NULL THEN 1 ELSE 0 END), 0)
			FROM entries WHERE owner_id = ? AND deleted_at IS NULL`, dfms.KindFile, dfms.KindDir, owner).Scan(&u.Files, &u.Dirs)
		if err != nil {
			return err
		}
		return t.queryRow(ctx, `SELECT COUNT(*) FROM versions v JOIN entries e ON e.id = v.entry_id WHERE e.owner_id = ?`, owner).Scan(&u.Versions)
	})
	return u, err
}

// StoredBytes implements meta.Tree.
func (s *Store) StoredBytes(ctx context.Context, owner dfms.UserID) (int64, error) {
	var n int64
	err := s.read(ctx, "meta.StoredBytes", func(t *tx) error {
		n = 0
		rows, err := t.query(ctx, `SELECT v.manifest FROM versions v JOIN entries e ON e.id = v.entry_id WHERE e.owner_id = ?`, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		seen := map[dfms.Hash]bool{}
		for rows.Next() {
			var blob []byte
			if err := rows.Scan(&blob); err != nil {
				return err
			}
			var m dfms.Manifest
			if err := m.UnmarshalBinary(blob); err != nil {
				return err
			}
			for _, c := range m.Chunks {
				if !c.IsHole() && !seen[c.Hash] {
					seen[c.Hash] = true
					n += int64(c.Size)
				}
			}
		}
		return rows.Err()
	})
	return n, err
}
