package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/dfms/dfms"
)

// GetXattr implements meta.Xattrs.
func (s *Store) GetXattr(ctx context.Context, owner dfms.UserID, id dfms.EntryID, name string) ([]byte, bool, error) {
	var value []byte
	found := false
	err := s.read(ctx, "meta.GetXattr", func(t *tx) error {
		if _, err := t.entry(ctx, owner, id, false); err != nil {
			return err
		}
		err := t.queryRow(ctx, `SELECT value FROM xattrs WHERE entry_id = ? AND name = ?`, id, name).Scan(&value)
		if errors.Is(err, sql.ErrNoRows) {
			value, found = nil, false
			return nil
		}
		found = err == nil
		return err
	})
	if value == nil && found {
		value = []byte{}
	}
	return value, found, err
}

// ListXattrs implements meta.Xattrs.
func (s *Store) ListXattrs(ctx context.Context, owner dfms.UserID, id dfms.EntryID) ([]string, error) {
	var names []string
	err := s.read(ctx, "meta.ListXattrs", func(t *tx) error {
		names = names[:0]
		if _, err := t.entry(ctx, owner, id, false); err != nil {
			return err
		}
		rows, err := t.query(ctx, `SELECT name FROM xattrs WHERE entry_id = ? ORDER BY name`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			names = append(names, n)
		}
		return rows.Err()
	})
	return names, err
}

// SetXattr implements meta.Xattrs.
func (s *Store) SetXattr(ctx context.Context, owner dfms.UserID, id dfms.EntryID, name string, value []byte, mode dfms.XattrMode) error {
	const op dfms.Op = "meta.SetXattr"
	if name == "" || len(name) > dfms.MaxXattrName {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("attribute names have 1..%d bytes", dfms.MaxXattrName))
	}
	if len(value) > dfms.MaxXattrValue {
		return dfms.E(op, dfms.TooLarge, fmt.Errorf("attribute values have at most %d bytes", dfms.MaxXattrValue))
	}
	if value == nil {
		value = []byte{}
	}
	return s.writeEntry(ctx, op, owner, id, func(t *tx, e dfms.Entry) error {
		q, err := t.lockQuota(ctx, owner)
		if err != nil {
			return err
		}
		// An attribute is charged its name and value (quota.go).
		size := int64(len(name) + len(value))
		var old int64
		err = t.queryRow(ctx, `SELECT size FROM xattrs WHERE entry_id = ? AND name = ?`, id, name).Scan(&old)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		switch {
		case exists && mode == dfms.XattrCreate:
			return dfms.E(op, dfms.Exist, fmt.Errorf("attribute %q exists", name))
		case !exists && mode == dfms.XattrReplace:
			return dfms.E(op, dfms.NotExist, fmt.Errorf("no attribute %q", name))
		}
		if err := q.admit(op, size-old, fmt.Sprintf("attribute %q", name)); err != nil {
			return err
		}
		if exists {
			if _, err := t.exec(ctx, `UPDATE xattrs SET value = ?, size = ? WHERE entry_id = ? AND name = ?`, value, size, id, name); err != nil {
				return err
			}
		} else {
			var total int
			if err := t.queryRow(ctx, `SELECT COUNT(*) FROM xattrs WHERE entry_id = ?`, id).Scan(&total); err != nil {
				return err
			}
			if total >= dfms.MaxXattrs {
				return dfms.E(op, dfms.TooLarge, fmt.Errorf("at most %d attributes per entry", dfms.MaxXattrs))
			}
			if _, err := t.exec(ctx, `INSERT INTO xattrs (entry_id, name, value, size) VALUES (?, ?, ?, ?)`, id, name, value, size); err != nil {
				return err
			}
		}
		return t.xattrsChanged(ctx, q, e, size-old)
	})
}

// RemoveXattr implements meta.Xattrs.
func (s *Store) RemoveXattr(ctx context.Context, owner dfms.UserID, id dfms.EntryID, name string) error {
	const op dfms.Op = "meta.RemoveXattr"
	return s.writeEntry(ctx, op, owner, id, func(t *tx, e dfms.Entry) error {
		var size int64
		err := t.queryRow(ctx, `SELECT size FROM xattrs WHERE entry_id = ? AND name = ?`, id, name).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.E(op, dfms.NotExist, fmt.Errorf("no attribute %q", name))
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM xattrs WHERE entry_id = ? AND name = ?`, id, name); err != nil {
			return err
		}
		q, err := t.lockQuota(ctx, owner)
		if err != nil {
			return err
		}
		return t.xattrsChanged(ctx, q, e, -size)
	})
}

// xattrsChanged charges the owner of e delta more bytes (q is its locked
// quota), and records that e's attributes changed: its ctime, and the
// journal.
func (t *tx) xattrsChanged(ctx context.Context, q *quota, e dfms.Entry, delta int64) error {
	if err := q.addUsed(ctx, t, delta); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `UPDATE entries SET ctime_ns = ? WHERE id = ?`, ns(t.now), e.ID); err != nil {
		return err
	}
	return t.journal(ctx, e.Owner, e.ID, e.Parent, dfms.ChangeAttr, 0)
}
