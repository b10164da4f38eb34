package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dfms/dfms"
)

// The quota (see package meta, "Quota"): an owner's row holds its used
// and held bytes; chunk_holds lists the chunks held for it, each until a
// time. Every admission locks the owner's row first (lockQuota), so that
// concurrent admissions of one owner see each other's charges. On
// PostgreSQL it is locked after the chunk rows a transaction updates
// (commits take their references first) and before any row that refers
// to it is inserted (a hold, a possession row): an inserted reference
// takes a share lock on the row, which two transactions could not both
// upgrade.

// heldCol is held_bytes less the holds that have ended (their rows are
// deleted at the owner's next admission), as of the first argument (now).
const heldCol = `CASE WHEN held_bytes > 0 THEN held_bytes - COALESCE((SELECT SUM(h.size) FROM chunk_holds h
	WHERE h.user_id = users.id AND h.until_ns <= ?), 0) ELSE 0 END`

// quota is an owner's charges, as locked by lockQuota.
type quota struct {
	owner           dfms.UserID
	used, held, max int64 // max 0: unlimited
}

// lockQuota locks owner's row for the transaction and returns its
// charges, after dropping the holds that have ended.
func (t *tx) lockQuota(ctx context.Context, owner dfms.UserID) (*quota, error) {
	q := &quota{owner: owner}
	err := t.queryRow(ctx, `SELECT used_bytes, held_bytes, quota_bytes FROM users WHERE id = ?`+t.s.d.ForUpdate, owner).Scan(&q.used, &q.held, &q.max)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dfms.Errorf("", dfms.NotExist, "no such user")
	}
	if err != nil {
		return nil, err
	}
	if q.held > 0 {
		var ended int64
		if err := t.queryRow(ctx, `SELECT COALESCE(SUM(size), 0) FROM chunk_holds WHERE user_id = ? AND until_ns <= ?`, owner, ns(t.now)).Scan(&ended); err != nil {
			return nil, err
		}
		if ended > 0 {
			if _, err := t.exec(ctx, `DELETE FROM chunk_holds WHERE user_id = ? AND until_ns <= ?`, owner, ns(t.now)); err != nil {
				return nil, err
			}
			if err := q.addHeld(ctx, t, -ended); err != nil {
				return nil, err
			}
		}
	}
	return q, nil
}

// admit fails with kind Quota unless n more bytes fit.
func (q *quota) admit(op dfms.Op, n int64, what string) error {
	if q.max > 0 && n > 0 && q.used+q.held+n > q.max {
		return dfms.E(op, dfms.Quota, fmt.Errorf("%s needs %d bytes; %d are used and %d held of a quota of %d", what, n, q.used, q.held, q.max))
	}
	return nil
}

// addUsed and addHeld change the owner's charges by n (negative: give
// bytes back).
func (q *quota) addUsed(ctx context.Context, t *tx, n int64) error {
	return q.add(ctx, t, &q.used, "used_bytes", n)
}

func (q *quota) addHeld(ctx context.Context, t *tx, n int64) error {
	return q.add(ctx, t, &q.held, "held_bytes", n)
}

// add adds n to the charge c, which the owner's row keeps in column col.
func (q *quota) add(ctx context.Context, t *tx, c *int64, col string, n int64) error {
	if n == 0 {
		return nil
	}
	*c += n
	_, err := t.exec(ctx, `UPDATE users SET `+col+` = `+col+` + ? WHERE id = ?`, n, q.owner)
	return err
}

// releaseHolds ends the owner's holds on hashes (now referenced by one of
// its versions or parts) and gives their bytes back.
func (q *quota) releaseHolds(ctx context.Context, t *tx, hashes []dfms.Hash) error {
	if q.held == 0 || len(hashes) == 0 {
		return nil
	}
	var released int64
	for part := range slices.Chunk(hashes, batch) {
		args := make([]any, 0, len(part)+1)
		args = append(args, q.owner)
		for _, h := range part {
			args = append(args, h[:])
		}
		in := `(?` + strings.Repeat(",?", len(part)-1) + `)`
		var n int64
		if err := t.queryRow(ctx, `SELECT COALESCE(SUM(size), 0) FROM chunk_holds WHERE user_id = ? AND hash IN `+in, args...).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		if _, err := t.exec(ctx, `DELETE FROM chunk_holds WHERE user_id = ? AND hash IN `+in, args...); err != nil {
			return err
		}
		released += n
	}
	return q.addHeld(ctx, t, -released)
}

// chargeVersion charges a new version of size bytes made of m's chunks
// (its data bytes: holes are free) to owner: the version's chunks are no longer held, and the version must fit
// (commit).
func (t *tx) chargeVersion(ctx context.Context, op dfms.Op, owner dfms.UserID, size int64, m *dfms.Manifest) (*quota, error) {
	q, err := t.lockQuota(ctx, owner)
	if err != nil {
		return nil, err
	}
	if q.held > 0 {
		if err := q.releaseHolds(ctx, t, manifestHashes(m)); err != nil {
			return nil, err
		}
	}
	if err := q.admit(op, size, "the version"); err != nil {
		return nil, err
	}
	return q, nil
}

// manifestHashes returns the distinct hashes of m, sorted.
func manifestHashes(m *dfms.Manifest) []dfms.Hash {
	return sortedHashes(m.Counts())
}

// HoldChunks implements meta.Chunks.
func (s *Store) HoldChunks(ctx context.Context, owner dfms.UserID, refs []dfms.ChunkRef, d time.Duration) error {
	const op dfms.Op = "meta.HoldChunks"
	if len(refs) == 0 {
		return nil
	}
	// Most owners have no quota: find out without a write transaction.
	var limit int64
	err := s.read(ctx, op, func(t *tx) error {
		err := t.queryRow(ctx, `SELECT quota_bytes FROM users WHERE id = ?`, owner).Scan(&limit)
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.Errorf(op, dfms.NotExist, "no such user")
		}
		return err
	})
	if err != nil || limit == 0 {
		return err
	}
	sizes := refSizes(refs)
	hashes := sortedHashes(sizes)
	return s.write(ctx, op, func(t *tx) error {
		q, err := t.lockQuota(ctx, owner)
		if err != nil || q.max == 0 {
			return err
		}
		// Held already (renewed for free), or referenced (the server keeps
		// it whoever sent it): no new charge.
		held := map[dfms.Hash]bool{}
		referenced := map[dfms.Hash]bool{}
		for part := range slices.Chunk(hashes, batch) {
			args := make([]any, 0, len(part)+1)
			args = append(args, owner)
			for _, h := range part {
				args = append(args, h[:])
			}
			in := `(?` + strings.Repeat(",?", len(part)-1) + `)`
			if err := t.collect(ctx, held, `SELECT hash FROM chunk_holds WHERE user_id = ? AND hash IN `+in, args...); err != nil {
				return err
			}
			args[0] = 0
			if err := t.collect(ctx, referenced, `SELECT hash FROM chunks WHERE refs > ? AND hash IN `+in, args...); err != nil {
				return err
			}
		}
		var fresh, renew []dfms.Hash
		var charge int64
		for _, h := range hashes {
			switch {
			case held[h]:
				renew = append(renew, h)
			case !referenced[h]:
				fresh = append(fresh, h)
				charge += sizes[h]
			}
		}
		if err := q.admit(op, charge, fmt.Sprintf("holding %d chunks", len(fresh))); err != nil {
			return err
		}
		until := ns(t.now.Add(d))
		for part := range slices.Chunk(renew, batch) {
			args := make([]any, 0, len(part)+2)
			args = append(args, until, owner)
			for _, h := range part {
				args = append(args, h[:])
			}
			if _, err := t.exec(ctx, `UPDATE chunk_holds SET until_ns = ? WHERE user_id = ? AND hash IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...); err != nil {
				return err
			}
		}
		for part := range slices.Chunk(fresh, batch/4) {
			args := make([]any, 0, 4*len(part))
			for _, h := range part {
				args = append(args, owner, h[:], sizes[h], until)
			}
			if _, err := t.exec(ctx, `INSERT INTO chunk_holds (user_id, hash, size, until_ns) VALUES (?, ?, ?, ?)`+
				strings.Repeat(", (?, ?, ?, ?)", len(part)-1), args...); err != nil {
				return err
			}
		}
		return q.addHeld(ctx, t, charge)
	})
}

// collect adds the hashes a query returns to set.
func (t *tx) collect(ctx context.Context, set map[dfms.Hash]bool, q string, args ...any) error {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return err
		}
		set[dfms.Hash(b)] = true
	}
	return rows.Err()
}
