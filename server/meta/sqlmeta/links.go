package sqlmeta

import (
	"context"
	"fmt"
	"time"

	"github.com/dfms/dfms"
)

// Hard links. An entry is the inode: kind, mode, owner ids, times,
// content and history, and its first name (entries.parent_id, name).
// Each further name is a row of links (parent_id, name → entry_id).
// Nlink counts them. A name in a directory is taken by a live entry or by
// a link, never both: whatever makes a name checks both under the
// directory's lock (lookupName, linkNamed). Removing a name of an entry
// that has others removes only that name; when it was the first name, a
// link takes its place, so an entry always has its first name while it
// is live. The last name's removal moves the entry to the trash, as
// before. Directories have one name.

// liveNames is a relation of the live names in a directory (twice its
// id as arguments), with the columns of entries and the name's parent and
// name: entryCols reads it as it reads entries.
const liveNames = `(SELECT id, owner_id, parent_id, name, kind, mode, uid, gid, size, mtime_ns, ctime_ns, atime_ns,
		target, rdev, mime, cur_version, cur_version_id, deleted_at, trash_root, data_size, hist_base
		FROM entries WHERE parent_id = ? AND deleted_at IS NULL
	UNION ALL SELECT e.id, e.owner_id, lk.parent_id, lk.name, e.kind, e.mode, e.uid, e.gid, e.size, e.mtime_ns, e.ctime_ns, e.atime_ns,
		e.target, e.rdev, e.mime, e.cur_version, e.cur_version_id, e.deleted_at, e.trash_root, e.data_size, e.hist_base
		FROM links lk JOIN entries e ON e.id = lk.entry_id WHERE lk.parent_id = ? AND e.deleted_at IS NULL) AS entries`

// linkNamed reports whether a link holds the name parent/name.
func (t *tx) linkNamed(ctx context.Context, parent dfms.EntryID, name string) (bool, error) {
	var n int
	err := t.queryRow(ctx, `SELECT COUNT(*) FROM links WHERE parent_id = ? AND name = ?`, parent, name).Scan(&n)
	return n > 0, err
}

// Link implements meta.Tree.
func (s *Store) Link(ctx context.Context, owner dfms.UserID, id, parent dfms.EntryID, name string) (dfms.Entry, error) {
	const op dfms.Op = "meta.Link"
	if err := dfms.ValidName(name); err != nil {
		return dfms.Entry{}, dfms.E(op, dfms.Invalid, err)
	}
	var out dfms.Entry
	err := s.write(ctx, op, func(t *tx) error {
		e, err := t.liveEntry(ctx, owner, id, true)
		if err != nil {
			return err
		}
		if e.Kind == dfms.KindDir {
			return dfms.E(op, dfms.IsDir, fmt.Errorf("%q is a directory: directories have one name", e.Name))
		}
		if _, err := t.liveDir(ctx, owner, parent, true); err != nil {
			return err
		}
		if _, found, err := t.lookup(ctx, owner, parent, name, true); err != nil {
			return err
		} else if found {
			return dfms.E(op, dfms.Exist, fmt.Errorf("%q already exists", name))
		}
		if _, err := t.exec(ctx, `INSERT INTO links (parent_id, name, entry_id) VALUES (?, ?, ?)`, parent, name, id); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE entries SET ctime_ns = ? WHERE id = ?`, ns(t.now), id); err != nil {
			return err
		}
		if err := t.dirChanged(ctx, parent); err != nil {
			return err
		}
		if err := t.journal(ctx, owner, id, parent, dfms.ChangeCreate, 0); err != nil {
			return err
		}
		out, err = t.entry(ctx, owner, id, false)
		out.Parent, out.Name = parent, name
		return err
	})
	return out, err
}

// Unlink implements meta.Tree.
func (s *Store) Unlink(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string) (dfms.Entry, error) {
	const op dfms.Op = "meta.Unlink"
	var out dfms.Entry
	err := s.write(ctx, op, func(t *tx) error {
		e, link, err := t.named(ctx, op, owner, parent, name, true)
		if err != nil {
			return err
		}
		if e.Kind == dfms.KindDir {
			return dfms.E(op, dfms.IsDir, fmt.Errorf("%q is a directory", name))
		}
		if e.Nlink > 1 {
			if err := t.removeName(ctx, owner, e, link); err != nil {
				return err
			}
		} else if err := t.trash(ctx, owner, e, time.Time{}); err != nil {
			return err
		}
		out, err = t.entry(ctx, owner, e.ID, false)
		return err
	})
	return out, err
}

// removeName removes the name e.Parent/e.Name of entry e, which has
// others: a link, or its first name, which the first of its links (in
// name order) then takes the place of.
func (t *tx) removeName(ctx context.Context, owner dfms.UserID, e dfms.Entry, link bool) error {
	if link {
		if _, err := t.exec(ctx, `DELETE FROM links WHERE parent_id = ? AND name = ?`, e.Parent, e.Name); err != nil {
			return err
		}
	} else if err := t.promoteLink(ctx, e.ID, nil); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `UPDATE entries SET ctime_ns = ? WHERE id = ?`, ns(t.now), e.ID); err != nil {
		return err
	}
	if err := t.dirChanged(ctx, e.Parent); err != nil {
		return err
	}
	return t.journal(ctx, owner, e.ID, e.Parent, dfms.ChangeRename, 0)
}

// promoteLink makes the first link of entry id (in name order; outside
// the directories skip, if given) its first name, in place of the one it
// has, and deletes that link. Not finding one is an error: the caller
// knows there is one.
func (t *tx) promoteLink(ctx context.Context, id dfms.EntryID, skip map[dfms.EntryID]bool) error {
	rows, err := t.query(ctx, `SELECT parent_id, name FROM links WHERE entry_id = ? ORDER BY parent_id, name`+t.s.d.Collate, id)
	if err != nil {
		return err
	}
	var parent dfms.EntryID
	var name string
	found := false
	for rows.Next() && !found {
		if err := rows.Scan(&parent, &name); err != nil {
			rows.Close()
			return err
		}
		found = !skip[parent]
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("entry %d has no link to take the place of its first name", id)
	}
	if _, err := t.exec(ctx, `DELETE FROM links WHERE parent_id = ? AND name = ?`, parent, name); err != nil {
		return err
	}
	_, err = t.exec(ctx, `UPDATE entries SET parent_id = ?, name = ? WHERE id = ?`, parent, name, id)
	return err
}

// unlinkAll removes the names entry e has besides its first one (a
// deletion by id takes the entry away under every name), and for a
// directory e about to go to the trash with its subtree: the links held
// in the subtree (their entries keep their names elsewhere), and the
// first names in the subtree of entries that have names outside it, which
// one of those takes the place of (the entry stays live there).
func (t *tx) unlinkAll(ctx context.Context, owner dfms.UserID, e dfms.Entry) error {
	if e.Kind != dfms.KindDir {
		var parents []dfms.EntryID
		rows, err := t.query(ctx, `SELECT parent_id FROM links WHERE entry_id = ?`, e.ID)
		err = eachRow(rows, err, func(r row) error {
			var p dfms.EntryID
			err := r.Scan(&p)
			parents = append(parents, p)
			return err
		})
		if err != nil || len(parents) == 0 {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM links WHERE entry_id = ?`, e.ID); err != nil {
			return err
		}
		for _, p := range parents {
			if err := t.dirChanged(ctx, p); err != nil {
				return err
			}
			if err := t.journal(ctx, owner, e.ID, p, dfms.ChangeRename, 0); err != nil {
				return err
			}
		}
		return nil
	}
	var linked int
	if err := t.queryRow(ctx, `SELECT CASE WHEN EXISTS (SELECT 1 FROM links l JOIN entries c ON c.id = l.entry_id WHERE c.owner_id = ?)
		THEN 1 ELSE 0 END`, owner).Scan(&linked); err != nil || linked == 0 {
		return err // no hard links: the common case costs one read
	}
	sub := map[dfms.EntryID]bool{}
	rows, err := t.query(ctx, `WITH RECURSIVE sub(id) AS (
			SELECT id FROM entries WHERE id = ?
			UNION ALL
			SELECT c.id FROM entries c JOIN sub ON c.parent_id = sub.id WHERE c.deleted_at IS NULL AND c.kind = 1
		) SELECT id FROM sub`, e.ID)
	err = eachRow(rows, err, func(r row) error {
		var id dfms.EntryID
		err := r.Scan(&id)
		sub[id] = true
		return err
	})
	if err != nil {
		return err
	}
	for d := range sub {
		if _, err := t.exec(ctx, `DELETE FROM links WHERE parent_id = ?`, d); err != nil {
			return err
		}
	}
	var keep []dfms.EntryID
	rows, err = t.query(ctx, `SELECT DISTINCT l.entry_id, c.parent_id FROM links l JOIN entries c ON c.id = l.entry_id
		WHERE c.owner_id = ? AND c.deleted_at IS NULL`, owner)
	err = eachRow(rows, err, func(r row) error {
		var id, parent dfms.EntryID
		if err := r.Scan(&id, &parent); err != nil {
			return err
		}
		if sub[parent] {
			keep = append(keep, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range keep {
		if err := t.promoteLink(ctx, id, sub); err != nil {
			return err
		}
		if err := t.journal(ctx, owner, id, 0, dfms.ChangeRename, 0); err != nil {
			return err
		}
	}
	return nil
}
