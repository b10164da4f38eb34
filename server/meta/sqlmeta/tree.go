package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// entryColsNamed lists the columns scanEntry reads, of a row of entries
// (or a relation of its columns named entries), with the parent and the
// name from the expressions given: a link's (links.go) for an entry found
// by one of its further names. The last column counts a directory's
// subdirectories, or the further names of anything else. The version is
// the current one's number in the file's history (its own number after
// the history it continues; hist_base is 0 while it has no version).
func entryColsNamed(parent, name string) string {
	return `entries.id, entries.owner_id, ` + parent + `, ` + name + `, entries.kind, entries.mode, entries.uid, entries.gid,
	entries.size, entries.mtime_ns, entries.ctime_ns, entries.atime_ns, entries.target, entries.rdev, entries.mime,
	entries.cur_version + entries.hist_base, entries.cur_version_id, COALESCE(entries.deleted_at, 0), COALESCE(entries.trash_root, 0),
	(SELECT v.sha256 FROM versions v WHERE v.id = entries.cur_version_id),
	CASE WHEN entries.kind = 1
		THEN (SELECT COUNT(*) FROM entries c WHERE c.parent_id = entries.id AND c.kind = 1 AND c.deleted_at IS NULL)
		ELSE (SELECT COUNT(*) FROM links l WHERE l.entry_id = entries.id) END,
	COALESCE(entries.data_size, entries.size)`
}

// entryCols are the columns of an entry under its first name.
var entryCols = entryColsNamed("COALESCE(entries.parent_id, 0)", "entries.name")

func scanEntry(row row) (dfms.Entry, error) {
	var e dfms.Entry
	var mtime, ctime, atime, deleted, more int64
	var sum []byte
	err := row.Scan(&e.ID, &e.Owner, &e.Parent, &e.Name, &e.Kind, &e.Mode, &e.UID, &e.GID, &e.Size,
		&mtime, &ctime, &atime, &e.Target, &e.Rdev, &e.MIME, &e.Version, &e.VersionID, &deleted, &e.TrashRoot, &sum, &more, &e.DataSize)
	e.MTime, e.CTime, e.ATime, e.DeletedAt = fromNS(mtime), fromNS(ctime), fromNS(atime), fromNS(deleted)
	copy(e.SHA256[:], sum)
	e.Nlink = uint32(min(more, 1<<31)) + 1
	switch {
	case e.Kind == dfms.KindDir:
		e.Nlink++
	case !e.Live():
		e.Nlink = 0
	}
	return e, err
}

func scanEntries(rows *sql.Rows, err error) ([]dfms.Entry, error) {
	return scanAll(rows, err, scanEntry)
}

// row is what the scan functions read: a *sql.Row or the current row of
// a *sql.Rows.
type row = interface{ Scan(...any) error }

// scanAll reads every row of rows (the result of a query that failed with
// err, if not nil) with scan, and closes rows.
func scanAll[T any](rows *sql.Rows, err error, scan func(row) (T, error)) ([]T, error) {
	var out []T
	err = eachRow(rows, err, func(r row) error {
		v, err := scan(r)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachRow calls fn on every row of rows (the result of a query that failed
// with err, if not nil) until fn fails, and closes rows.
func eachRow(rows *sql.Rows, err error, fn func(row) error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// without returns the hashes, in order and once each, that set does not
// hold; it adds them to set.
func without(hashes []dfms.Hash, set map[dfms.Hash]bool) []dfms.Hash {
	var out []dfms.Hash
	for _, h := range hashes {
		if !set[h] {
			out = append(out, h)
			set[h] = true
		}
	}
	return out
}

var errNoEntry = errors.New("no such entry")

// writeEntry runs fn in a write transaction, with the owner's entry id
// (live or trashed) read under a lock.
func (s *Store) writeEntry(ctx context.Context, op dfms.Op, owner dfms.UserID, id dfms.EntryID, fn func(t *tx, e dfms.Entry) error) error {
	return s.write(ctx, op, func(t *tx) error {
		e, err := t.entry(ctx, owner, id, true)
		if err != nil {
			return err
		}
		return fn(t, e)
	})
}

// entry reads one entry of owner; lock makes it a locking read.
func (t *tx) entry(ctx context.Context, owner dfms.UserID, id dfms.EntryID, lock bool) (dfms.Entry, error) {
	q := `SELECT ` + entryCols + ` FROM entries WHERE id = ? AND owner_id = ?`
	if lock {
		q += t.s.d.ForUpdate
	}
	e, err := scanEntry(t.queryRow(ctx, q, id, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return e, dfms.E("", dfms.NotExist, fmt.Errorf("entry %d: %w", id, errNoEntry))
	}
	return e, err
}

// liveEntry reads a live entry.
func (t *tx) liveEntry(ctx context.Context, owner dfms.UserID, id dfms.EntryID, lock bool) (dfms.Entry, error) {
	e, err := t.entry(ctx, owner, id, lock)
	if err == nil && !e.Live() {
		return e, dfms.E("", dfms.NotExist, fmt.Errorf("entry %d is in the trash", id))
	}
	return e, err
}

// liveDir reads a live directory.
func (t *tx) liveDir(ctx context.Context, owner dfms.UserID, id dfms.EntryID, lock bool) (dfms.Entry, error) {
	e, err := t.liveEntry(ctx, owner, id, lock)
	if err == nil && e.Kind != dfms.KindDir {
		return e, dfms.E("", dfms.NotDir, fmt.Errorf("entry %d is a %s", id, e.Kind))
	}
	return e, err
}

// lookup reads the live entry parent/name, under its first name or a
// further one (a link: then e has the link's parent and name); found is
// false if there is none.
func (t *tx) lookup(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string, lock bool) (e dfms.Entry, found bool, err error) {
	e, _, found, err = t.lookupName(ctx, owner, parent, name, lock)
	return e, found, err
}

// lookupName is lookup, also telling whether the name is a link.
func (t *tx) lookupName(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string, lock bool) (e dfms.Entry, link, found bool, err error) {
	q := `SELECT ` + entryCols + ` FROM entries WHERE parent_id = ? AND name = ? AND deleted_at IS NULL AND owner_id = ?`
	if lock {
		q += t.s.d.ForUpdate
	}
	e, err = scanEntry(t.queryRow(ctx, q, parent, name, owner))
	if err == nil {
		return e, false, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return e, false, false, err
	}
	q = `SELECT ` + entryColsNamed("lk.parent_id", "lk.name") + ` FROM links lk JOIN entries ON entries.id = lk.entry_id
		WHERE lk.parent_id = ? AND lk.name = ? AND entries.owner_id = ? AND entries.deleted_at IS NULL`
	if lock {
		q += t.s.d.ForUpdate
	}
	e, err = scanEntry(t.queryRow(ctx, q, parent, name, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, false, nil
	}
	return e, true, err == nil, err
}

// journal records a change row, which the transaction writes when it
// ends (flushJournal).
func (t *tx) journal(ctx context.Context, owner dfms.UserID, entry, parent dfms.EntryID, op string, version int64) error {
	c := meta.Change{Owner: owner, Entry: entry, Parent: parent, Op: op, Version: version, At: t.now, Origin: meta.Origin(ctx)}
	t.changes = append(t.changes, c)
	return t.fileEvent(c)
}

// flushJournal writes the transaction's change rows, as its last
// statements. A row's Seq is drawn when it is inserted, but a reader sees
// it only once the transaction commits: two transactions of one owner
// that drew their numbers at once could become visible in the other
// order, and a reader whose cursor had passed the higher number would
// never see the lower one. The dialect's JournalLock, held until the
// transaction ends, makes an owner's transactions draw their numbers one
// after the other's commit. Taking it last (no other lock is asked for
// after it) keeps it short and out of deadlocks.
func (t *tx) flushJournal(ctx context.Context) error {
	if len(t.changes) == 0 {
		return t.flushEvents(ctx)
	}
	if t.s.d.JournalLock != "" {
		owners := make([]dfms.UserID, 0, 1)
		for _, c := range t.changes {
			if !slices.Contains(owners, c.Owner) {
				owners = append(owners, c.Owner)
			}
		}
		slices.Sort(owners) // one order for every transaction
		for _, o := range owners {
			if _, err := t.exec(ctx, t.s.d.JournalLock, o); err != nil {
				return err
			}
		}
	}
	const cols = 7
	for part := range slices.Chunk(t.changes, batch/cols) {
		args := make([]any, 0, cols*len(part))
		for _, c := range part {
			args = append(args, c.Owner, c.Entry, c.Parent, c.Op, c.Version, ns(c.At), c.Origin)
		}
		if _, err := t.exec(ctx, `INSERT INTO changes (owner_id, entry_id, parent_id, op, version, at, origin) VALUES (?, ?, ?, ?, ?, ?, ?)`+
			strings.Repeat(", (?, ?, ?, ?, ?, ?, ?)", len(part)-1), args...); err != nil {
			return err
		}
	}
	t.changes = nil
	return t.flushEvents(ctx)
}

// insertEntry adds e (validated by the caller) and returns it as stored.
func (t *tx) insertEntry(ctx context.Context, op dfms.Op, e dfms.Entry) (dfms.Entry, error) {
	mtime, ctime, atime := e.MTime, e.CTime, e.ATime
	if mtime.IsZero() {
		mtime = t.now
	}
	if ctime.IsZero() {
		ctime = t.now
	}
	if atime.IsZero() {
		atime = mtime
	}
	if taken, err := t.linkNamed(ctx, e.Parent, e.Name); err != nil {
		return e, err
	} else if taken {
		return e, dfms.E(op, dfms.Exist, fmt.Errorf("%q already exists", e.Name))
	}
	var id dfms.EntryID
	var err error
	if e.ID == 0 {
		err = t.queryRow(ctx, `INSERT INTO entries (owner_id, parent_id, name, kind, mode, uid, gid, size, mtime_ns, ctime_ns, atime_ns, target, rdev, mime)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			e.Owner, e.Parent, e.Name, e.Kind, e.Mode, e.UID, e.GID, e.Size, ns(mtime), ns(ctime), ns(atime), e.Target, e.Rdev, e.MIME).Scan(&id)
	} else {
		// An id ReserveEntryIDs handed out.
		err = t.queryRow(ctx, `INSERT INTO entries (id, owner_id, parent_id, name, kind, mode, uid, gid, size, mtime_ns, ctime_ns, atime_ns, target, rdev, mime)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			e.ID, e.Owner, e.Parent, e.Name, e.Kind, e.Mode, e.UID, e.GID, e.Size, ns(mtime), ns(ctime), ns(atime), e.Target, e.Rdev, e.MIME).Scan(&id)
	}
	if err != nil {
		if dfms.Is(t.s.classify(err), dfms.Exist) {
			return e, dfms.E(op, dfms.Exist, fmt.Errorf("%q already exists", e.Name))
		}
		return e, err
	}
	if err := t.journal(ctx, e.Owner, id, e.Parent, dfms.ChangeCreate, 0); err != nil {
		return e, err
	}
	if e.CTime.IsZero() {
		if err := t.dirChanged(ctx, e.Parent); err != nil {
			return e, err
		}
	} else if named := e.Named; !named.IsZero() && named.Before(ctime) {
		if err := t.dirChangedAt(ctx, e.Parent, named); err != nil {
			return e, err
		}
	} else if err := t.dirChangedAt(ctx, e.Parent, ctime); err != nil {
		return e, err
	}
	// As a read of the row would return it (times at the stored
	// precision), without the read.
	out := e
	out.ID, out.MTime, out.CTime, out.ATime = id, fromNS(ns(mtime)), fromNS(ns(ctime)), fromNS(ns(atime))
	out.Version, out.VersionID, out.SHA256, out.DeletedAt, out.TrashRoot = 0, 0, dfms.Hash{}, time.Time{}, 0
	out.Nlink = 1
	if out.Kind == dfms.KindDir {
		out.Nlink = 2
	}
	return out, nil
}

// dirChanged sets the mtime and ctime of directories whose names changed,
// as a local file system does (make, rsync and git's untracked cache rely
// on it).
func (t *tx) dirChanged(ctx context.Context, dirs ...dfms.EntryID) error {
	for i, d := range dirs {
		if d == 0 || (i > 0 && d == dirs[0]) {
			continue
		}
		if _, err := t.exec(ctx, `UPDATE entries SET mtime_ns = ?, ctime_ns = ? WHERE id = ?`, ns(t.now), ns(t.now), d); err != nil {
			return err
		}
	}
	return nil
}

// dirChangedAt is dirChanged for a change made at time at by a client that
// tells the server later (CreateEntries, TrashEntries): the directory's
// times move up to at, never back.
func (t *tx) dirChangedAt(ctx context.Context, dir dfms.EntryID, at time.Time) error {
	_, err := t.exec(ctx, `UPDATE entries SET
			mtime_ns = CASE WHEN mtime_ns < ? THEN ? ELSE mtime_ns END,
			ctime_ns = CASE WHEN ctime_ns < ? THEN ? ELSE ctime_ns END WHERE id = ?`,
		ns(at), ns(at), ns(at), ns(at), dir)
	return err
}

// GetEntry implements meta.Tree.
func (s *Store) GetEntry(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (dfms.Entry, error) {
	return result(ctx, s.readOne, "meta.GetEntry", func(t *tx) (dfms.Entry, error) {
		return t.entry(ctx, owner, id, false)
	})
}

// Lookup implements meta.Tree.
func (s *Store) Lookup(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string) (dfms.Entry, error) {
	const op dfms.Op = "meta.Lookup"
	var e dfms.Entry
	// Without a transaction: a parent deleted between the two reads
	// answers NotExist either way.
	err := s.readOne(ctx, op, func(t *tx) error {
		var err error
		e, _, err = t.named(ctx, op, owner, parent, name, false)
		return err
	})
	return e, err
}

// named is lookupName of a name that must be there: NotExist if it is
// not, or if parent is no live directory (NotDir for a non-directory).
func (t *tx) named(ctx context.Context, op dfms.Op, owner dfms.UserID, parent dfms.EntryID, name string, lock bool) (e dfms.Entry, link bool, err error) {
	e, link, found, err := t.lookupName(ctx, owner, parent, name, lock)
	if err != nil || found {
		return e, link, err
	}
	if _, err := t.liveDir(ctx, owner, parent, false); err != nil {
		return e, false, err
	}
	return e, false, dfms.E(op, dfms.NotExist, fmt.Errorf("%q not found", name))
}

// ListDir implements meta.Tree.
func (s *Store) ListDir(ctx context.Context, owner dfms.UserID, dir dfms.EntryID, opts meta.ListOptions) ([]dfms.Entry, error) {
	const op dfms.Op = "meta.ListDir"
	if opts.Offset < 0 || opts.Limit < 0 {
		return nil, dfms.Errorf(op, dfms.Invalid, "negative offset or limit")
	}
	order := ""
	switch opts.Sort {
	case "", meta.SortName:
	case meta.SortSize:
		order = "size"
	case meta.SortMTime:
		order = "mtime_ns"
	default:
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("unknown sort %q", opts.Sort))
	}
	var out []dfms.Entry
	err := s.read(ctx, op, func(t *tx) error {
		if _, err := t.liveDir(ctx, owner, dir, false); err != nil {
			return err
		}
		dirs := "CASE WHEN kind = 1 THEN 0 ELSE 1 END, "
		desc := ""
		if opts.Desc {
			desc = " DESC"
		}
		q := `SELECT ` + entryCols + ` FROM ` + liveNames + ` WHERE 1 = 1`
		args := []any{dir, dir}
		if order == "" {
			if opts.After != "" {
				q += ` AND name` + t.s.d.Collate + ` > ?`
				args = append(args, opts.After)
			}
			if opts.After != "" || opts.ByName {
				dirs = "" // a name cursor pages in pure name order
			}
			q += ` ORDER BY ` + dirs + `name` + t.s.d.Collate + desc
		} else {
			q += ` ORDER BY ` + dirs + order + desc + `, name` + t.s.d.Collate + `, id`
		}
		if opts.Limit > 0 || opts.Offset > 0 {
			limit := opts.Limit
			if limit == 0 {
				limit = -1
				if t.s.d.Numbered {
					limit = 1 << 62
				}
			}
			q += ` LIMIT ? OFFSET ?`
			args = append(args, limit, opts.Offset)
		}
		var err error
		out, err = scanEntries(t.query(ctx, q, args...))
		return err
	})
	return out, err
}

// CountDir implements meta.Tree.
func (s *Store) CountDir(ctx context.Context, owner dfms.UserID, dir dfms.EntryID) (int, error) {
	var n int
	err := s.read(ctx, "meta.CountDir", func(t *tx) error {
		if _, err := t.liveDir(ctx, owner, dir, false); err != nil {
			return err
		}
		return t.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM entries WHERE parent_id = ? AND deleted_at IS NULL) +
			(SELECT COUNT(*) FROM links WHERE parent_id = ?)`, dir, dir).Scan(&n)
	})
	return n, err
}

// checkNewEntry validates an entry to create and sets what its kind
// implies.
func checkNewEntry(op dfms.Op, e *dfms.Entry) error {
	if err := dfms.ValidName(e.Name); err != nil {
		return dfms.E(op, dfms.Invalid, err)
	}
	if !e.Kind.Valid() {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("unknown kind %d", e.Kind))
	}
	if e.Rdev != 0 && !e.Kind.Device() {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("only a device has a device number, not a %s", e.Kind))
	}
	e.Size = 0
	if e.Kind != dfms.KindSymlink {
		e.Target = ""
	} else {
		if e.Target == "" || strings.IndexByte(e.Target, 0) >= 0 || len(e.Target) > 4095 {
			return dfms.Errorf(op, dfms.Invalid, "symlink target must be 1..4095 bytes without NUL")
		}
		e.Size = int64(len(e.Target))
	}
	return checkTimes(op, e.MTime, e.CTime)
}

// checkTimes refuses times the store cannot keep (kind Invalid); a zero
// time means now.
func checkTimes(op dfms.Op, ts ...time.Time) error {
	for _, t := range ts {
		if !t.IsZero() && !dfms.ValidTime(t) {
			return dfms.E(op, dfms.Invalid, fmt.Errorf("time %v is outside %v..%v", t, dfms.MinTime, dfms.MaxTime))
		}
	}
	return nil
}

// CreateEntry implements meta.Tree.
func (s *Store) CreateEntry(ctx context.Context, e dfms.Entry) (dfms.Entry, error) {
	const op dfms.Op = "meta.CreateEntry"
	if err := checkNewEntry(op, &e); err != nil {
		return e, err
	}
	e.ID, e.CTime = 0, time.Time{}
	var out dfms.Entry
	err := s.write(ctx, op, func(t *tx) error {
		if _, err := t.liveDir(ctx, e.Owner, e.Parent, true); err != nil {
			return err
		}
		var err error
		out, err = t.insertEntry(ctx, op, e)
		return err
	})
	return out, err
}

// ReserveEntryIDs implements meta.Tree.
func (s *Store) ReserveEntryIDs(ctx context.Context, owner dfms.UserID, n int) ([]dfms.EntryID, error) {
	const op dfms.Op = "meta.ReserveEntryIDs"
	if n < 1 || n > meta.MaxReservedIDs {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("cannot reserve %d ids", n))
	}
	if s.d.ReserveIDs == nil {
		return nil, dfms.E(op, dfms.NotSupported, fmt.Errorf("%s cannot reserve ids", s.d.Name))
	}
	return result(ctx, s.write, op, func(t *tx) ([]dfms.EntryID, error) {
		ids, err := s.d.ReserveIDs(ctx, t.Tx, n)
		if err != nil {
			return nil, err
		}
		const rows = 256 // per statement
		for rest := ids; len(rest) > 0; {
			k := min(len(rest), rows)
			q := `INSERT INTO entry_reservations (id, owner_id) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", k), ", ")
			args := make([]any, 0, 2*k)
			for _, id := range rest[:k] {
				args = append(args, id, owner)
			}
			if _, err := t.exec(ctx, q, args...); err != nil {
				return nil, err
			}
			rest = rest[k:]
		}
		// The owner's oldest past the bound go (a mount that stopped
		// without using its ids leaves them).
		_, err = t.exec(ctx, `DELETE FROM entry_reservations WHERE owner_id = ? AND id <
			(SELECT id FROM entry_reservations WHERE owner_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`, owner, owner, meta.MaxReservedIDs-1)
		return ids, err
	})
}

// takeReservation uses entry id e.ID, reserved for e.Owner, to create e.
// It reports done if e exists already as that create made it (a batch
// sent again), with the entry.
func (t *tx) takeReservation(ctx context.Context, op dfms.Op, e dfms.Entry) (made dfms.Entry, done bool, err error) {
	n, err := t.affected(ctx, `DELETE FROM entry_reservations WHERE id = ? AND owner_id = ?`, e.ID, e.Owner)
	if err != nil || n == 1 {
		return dfms.Entry{}, false, err
	}
	if old, err := t.entry(ctx, e.Owner, e.ID, false); err == nil && old.Live() && old.Parent == e.Parent && old.Name == e.Name && old.Kind == e.Kind {
		return old, true, nil
	}
	if meta.UnreservedIDs(ctx) {
		return dfms.Entry{}, false, nil // the insert refuses an id taken
	}
	return dfms.Entry{}, false, dfms.E(op, dfms.Invalid, fmt.Errorf("entry id %d is not reserved for its owner (or was used)", e.ID))
}

// CreateEntries implements meta.Tree: each entry in a savepoint of one
// transaction, so that one failing rolls back only itself.
func (s *Store) CreateEntries(ctx context.Context, es []dfms.Entry) ([]meta.CreateResult, error) {
	const op dfms.Op = "meta.CreateEntries"
	checked := make([]error, len(es))
	es = slices.Clone(es)
	for i := range es {
		if checked[i] = checkNewEntry(op, &es[i]); checked[i] == nil && es[i].ID <= 0 {
			checked[i] = dfms.E(op, dfms.Invalid, fmt.Errorf("entry %q has no reserved id", es[i].Name))
		}
	}
	return writeEach(ctx, s, op, checked, func(t *tx, i int) (meta.CreateResult, error) {
		if _, err := t.liveDir(ctx, es[i].Owner, es[i].Parent, true); err != nil {
			return meta.CreateResult{}, err
		}
		if e, done, err := t.takeReservation(ctx, op, es[i]); err != nil || done {
			return meta.CreateResult{Entry: e}, err
		}
		e, err := t.insertEntry(ctx, op, es[i])
		return meta.CreateResult{Entry: e}, err
	}, func(err error) meta.CreateResult { return meta.CreateResult{Err: err} })
}

// SetAttr implements meta.Tree.
func (s *Store) SetAttr(ctx context.Context, owner dfms.UserID, id dfms.EntryID, a dfms.SetAttr) (dfms.Entry, error) {
	const op dfms.Op = "meta.SetAttr"
	if a.Size != nil {
		return dfms.Entry{}, dfms.Errorf(op, dfms.Invalid, "size changes only through a new version")
	}
	for _, t := range []*time.Time{a.MTime, a.ATime} {
		if t != nil {
			if err := checkTimes(op, *t); err != nil {
				return dfms.Entry{}, err
			}
		}
	}
	if a.Accessed && (a.ATime == nil || a.Mode != nil || a.UID != nil || a.GID != nil || a.MTime != nil) {
		return dfms.Entry{}, dfms.Errorf(op, dfms.Invalid, "an access sets the access time alone")
	}
	var out dfms.Entry
	err := s.write(ctx, op, func(t *tx) error {
		e, err := t.liveEntry(ctx, owner, id, true)
		if err != nil {
			return err
		}
		if a.Accessed {
			if !dfms.RelatimeDue(e.ATime, e.MTime, e.CTime, *a.ATime) || !a.ATime.After(e.ATime) {
				out = e
				return nil
			}
			if _, err := t.exec(ctx, `UPDATE entries SET atime_ns = ? WHERE id = ?`, ns(*a.ATime), id); err != nil {
				return err
			}
			out = e
			out.ATime = *a.ATime
			return nil
		}
		a.Apply(&e)
		if _, err := t.exec(ctx, `UPDATE entries SET mode = ?, uid = ?, gid = ?, mtime_ns = ?, atime_ns = ?, ctime_ns = ? WHERE id = ?`,
			e.Mode, e.UID, e.GID, ns(e.MTime), ns(e.ATime), ns(t.now), id); err != nil {
			return err
		}
		if err := t.journal(ctx, owner, id, e.Parent, dfms.ChangeAttr, 0); err != nil {
			return err
		}
		out, err = t.entry(ctx, owner, id, false)
		return err
	})
	return out, err
}

// isAncestor reports whether anc is id or one of id's ancestors.
func (t *tx) isAncestor(ctx context.Context, anc, id dfms.EntryID) (bool, error) {
	var n int
	err := t.queryRow(ctx, `WITH RECURSIVE up(id, parent_id) AS (
			SELECT id, parent_id FROM entries WHERE id = ?
			UNION ALL
			SELECT e.id, e.parent_id FROM entries e JOIN up ON e.id = up.parent_id
		) SELECT COUNT(*) FROM up WHERE id = ?`, id, anc).Scan(&n)
	return n > 0, err
}

// hasLiveChildren reports whether directory id has a live entry.
func (t *tx) hasLiveChildren(ctx context.Context, id dfms.EntryID) (bool, error) {
	var n int
	err := t.queryRow(ctx, `SELECT CASE WHEN EXISTS (SELECT 1 FROM entries WHERE parent_id = ? AND deleted_at IS NULL)
		OR EXISTS (SELECT 1 FROM links WHERE parent_id = ?) THEN 1 ELSE 0 END`, id, id).Scan(&n)
	return n > 0, err
}

// Rename implements meta.Tree.
func (s *Store) Rename(ctx context.Context, owner dfms.UserID, id, newParent dfms.EntryID, newName string, replace bool) (moved, replaced dfms.Entry, err error) {
	const op dfms.Op = "meta.Rename"
	if err := dfms.ValidName(newName); err != nil {
		return moved, replaced, dfms.E(op, dfms.Invalid, err)
	}
	err = s.write(ctx, op, func(t *tx) error {
		e, err := t.liveEntry(ctx, owner, id, true)
		if err != nil {
			return err
		}
		moved, replaced, err = t.rename(ctx, op, owner, e, false, newParent, newName, replace)
		return err
	})
	return moved, replaced, err
}

// RenameName implements meta.Tree.
func (s *Store) RenameName(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string, newParent dfms.EntryID, newName string, replace bool) (moved, replaced dfms.Entry, err error) {
	const op dfms.Op = "meta.Rename"
	if err := dfms.ValidName(newName); err != nil {
		return moved, replaced, dfms.E(op, dfms.Invalid, err)
	}
	err = s.write(ctx, op, func(t *tx) error {
		e, link, err := t.named(ctx, op, owner, parent, name, true)
		if err != nil {
			return err
		}
		moved, replaced, err = t.rename(ctx, op, owner, e, link, newParent, newName, replace)
		return err
	})
	return moved, replaced, err
}

// rename moves the name e.Parent/e.Name of live entry e (a link's if
// link) to newParent/newName, as Rename says.
func (t *tx) rename(ctx context.Context, op dfms.Op, owner dfms.UserID, e dfms.Entry, link bool, newParent dfms.EntryID, newName string, replace bool) (moved, replaced dfms.Entry, err error) {
	id := e.ID
	if e.Parent == 0 {
		return moved, replaced, dfms.Errorf(op, dfms.Invalid, "cannot rename the root")
	}
	if _, err := t.liveDir(ctx, owner, newParent, true); err != nil {
		return moved, replaced, err
	}
	if e.Kind == dfms.KindDir {
		cycle, err := t.isAncestor(ctx, id, newParent)
		if err != nil {
			return moved, replaced, err
		}
		if cycle {
			return moved, replaced, dfms.Errorf(op, dfms.Conflict, "cannot move a directory into itself or a descendant")
		}
	}
	old, oldLink, found, err := t.lookupName(ctx, owner, newParent, newName, true)
	if err != nil {
		return moved, replaced, err
	}
	if found && old.ID == id {
		// The same name, or another name of the same file: POSIX
		// says rename does nothing.
		return e, replaced, nil
	}
	if found {
		if !replace {
			return moved, replaced, dfms.E(op, dfms.Exist, fmt.Errorf("%q already exists", newName))
		}
		switch {
		case old.Kind == dfms.KindDir && e.Kind != dfms.KindDir:
			return moved, replaced, dfms.E(op, dfms.IsDir, fmt.Errorf("%q is a directory", newName))
		case old.Kind != dfms.KindDir && e.Kind == dfms.KindDir:
			return moved, replaced, dfms.E(op, dfms.NotDir, fmt.Errorf("%q is not a directory", newName))
		case old.Kind == dfms.KindDir:
			busy, err := t.hasLiveChildren(ctx, old.ID)
			if err != nil {
				return moved, replaced, err
			}
			if busy {
				return moved, replaced, dfms.E(op, dfms.NotEmpty, fmt.Errorf("%q is not empty", newName))
			}
		}
		switch {
		case old.Kind != dfms.KindDir && old.Nlink > 1:
			// A file with other names loses this one and keeps
			// its history.
			if err := t.removeName(ctx, owner, old, oldLink); err != nil {
				return moved, replaced, err
			}
		case old.Kind == dfms.KindFile && e.Kind == dfms.KindFile && old.Version > 0:
			// An editor's save (write a temporary file, rename it
			// over): the file continues the history of the one it
			// replaces.
			if err := t.adoptHistory(ctx, owner, old, e); err != nil {
				return moved, replaced, err
			}
		default:
			if err := t.trash(ctx, owner, old, time.Time{}); err != nil {
				return moved, replaced, err
			}
		}
		replaced = old
	}
	if link {
		if _, err := t.exec(ctx, `UPDATE links SET parent_id = ?, name = ? WHERE parent_id = ? AND name = ?`,
			newParent, newName, e.Parent, e.Name); err != nil {
			return moved, replaced, err
		}
		if _, err := t.exec(ctx, `UPDATE entries SET ctime_ns = ? WHERE id = ?`, ns(t.now), id); err != nil {
			return moved, replaced, err
		}
	} else if _, err := t.exec(ctx, `UPDATE entries SET parent_id = ?, name = ?, ctime_ns = ? WHERE id = ?`,
		newParent, newName, ns(t.now), id); err != nil {
		return moved, replaced, err
	}
	if err := t.journal(ctx, owner, id, newParent, dfms.ChangeRename, 0); err != nil {
		return moved, replaced, err
	}
	if err := t.dirChanged(ctx, newParent, e.Parent); err != nil {
		return moved, replaced, err
	}
	// The old parent changed too; tell its watchers (the journal), while
	// the move's one event names both parents.
	if e.Parent != newParent {
		t.changes = append(t.changes, meta.Change{Owner: owner, Entry: id, Parent: e.Parent, Op: dfms.ChangeRename,
			At: t.now, Origin: meta.Origin(ctx)})
		if err := t.movedFrom(id, e.Parent); err != nil {
			return moved, replaced, err
		}
	}
	moved, err = t.entry(ctx, owner, id, false)
	moved.Parent, moved.Name = newParent, newName
	return moved, replaced, err
}

// adoptHistory makes file e (about to take the name of file old)
// continue old's history: old's versions stay where they are, old's,
// with their numbers, and e's own versions count after them (hist_base);
// e lists old's history, and what old continued, before its own
// (historyCTE). Old leaves the tree but not for the trash: it holds that
// history until e is purged (Purge follows hist_prev). Nothing is
// renumbered or moved: a version's ID, file and own number never change.
// A file e without a version gets an empty one, as its content is empty,
// so that its current version is the last of the history.
//
// A file that already continues a history does not take a second one:
// then old goes to the trash as any replaced file does, with its own.
func (t *tx) adoptHistory(ctx context.Context, owner dfms.UserID, old, e dfms.Entry) error {
	var prev sql.NullInt64
	if err := t.queryRow(ctx, `SELECT hist_prev FROM entries WHERE id = ?`, e.ID).Scan(&prev); err != nil {
		return err
	}
	if prev.Valid {
		return t.trash(ctx, owner, old, time.Time{})
	}
	curID := e.VersionID
	if e.Version == 0 {
		blob, _ := (&dfms.Manifest{}).MarshalBinary()
		sum := dfms.Sum(nil)
		if err := t.queryRow(ctx, `INSERT INTO versions (entry_id, number, size, sha256, manifest, chunk_count, base, created_at, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.ID, 1, 0, sum[:], blob, 0, old.VersionID, ns(t.now), owner).Scan(&curID); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE entries SET cur_version = 1, cur_version_id = ? WHERE id = ?`, curID, e.ID); err != nil {
			return err
		}
	}
	// old.Version is the number of old's last version in its history.
	if _, err := t.exec(ctx, `UPDATE entries SET hist_prev = ?, hist_base = ? WHERE id = ?`, old.ID, old.Version, e.ID); err != nil {
		return err
	}
	if err := t.trash(ctx, owner, old, time.Time{}); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `UPDATE entries SET trash_root = NULL WHERE id = ?`, old.ID); err != nil {
		return err
	}
	return t.journal(ctx, owner, e.ID, old.Parent, dfms.ChangeVersion, curID)
}

// historyCTE is a WITH clause naming hist(id, prev, base, last): file ?
// and the files whose histories it continues, each with its hist_base
// and the number of the last of its versions in that history (the base
// of the one that continued it). The versions of the history are those
// of versions v JOIN hist h ON v.entry_id = h.id WHERE inHistory.
const historyCTE = `WITH RECURSIVE hist(id, prev, base, last) AS (
		SELECT id, hist_prev, hist_base, 9223372036854775807 FROM entries WHERE id = ?
		UNION ALL
		SELECT p.id, p.hist_prev, p.hist_base, h.base FROM entries p JOIN hist h ON p.id = h.prev
	) `

// inHistory selects the versions of a history (see historyCTE): those of
// the files it passed through, up to where the next one took over.
const inHistory = `v.number + h.base <= h.last`

// trash moves e and its live subtree to the trash, with e as trash root.
// Entry e goes under every name it has (unlinkAll).
func (t *tx) trash(ctx context.Context, owner dfms.UserID, e dfms.Entry, at time.Time) error {
	if err := t.unlinkAll(ctx, owner, e); err != nil {
		return err
	}
	when := at
	if when.IsZero() {
		when = t.now
	}
	var err error
	if e.Kind == dfms.KindDir {
		_, err = t.exec(ctx, `WITH RECURSIVE sub(id) AS (
			SELECT id FROM entries WHERE id = ?
			UNION ALL
			SELECT c.id FROM entries c JOIN sub ON c.parent_id = sub.id WHERE c.deleted_at IS NULL
		) UPDATE entries SET deleted_at = ?, trash_root = ? WHERE id IN (SELECT id FROM sub)`,
			e.ID, ns(when), e.ID)
	} else { // no subtree
		_, err = t.exec(ctx, `UPDATE entries SET deleted_at = ?, trash_root = ? WHERE id = ?`, ns(when), e.ID, e.ID)
	}
	if err != nil {
		return err
	}
	if at.IsZero() {
		err = t.dirChanged(ctx, e.Parent)
	} else {
		err = t.dirChangedAt(ctx, e.Parent, at)
	}
	if err != nil {
		return err
	}
	return t.journal(ctx, owner, e.ID, e.Parent, dfms.ChangeTrash, 0)
}

// Trash implements meta.Trash.
func (s *Store) Trash(ctx context.Context, owner dfms.UserID, id dfms.EntryID) error {
	const op dfms.Op = "meta.Trash"
	return s.write(ctx, op, func(t *tx) error {
		e, err := t.liveEntry(ctx, owner, id, true)
		if err != nil {
			return err
		}
		if e.Parent == 0 {
			return dfms.Errorf(op, dfms.Invalid, "cannot delete the root")
		}
		return t.trash(ctx, owner, e, time.Time{})
	})
}

// TrashEntries implements meta.Trash: each entry in a savepoint of one
// transaction.
func (s *Store) TrashEntries(ctx context.Context, owner dfms.UserID, items []meta.TrashItem) ([]error, error) {
	const op dfms.Op = "meta.TrashEntries"
	out := make([]error, len(items))
	err := s.write(ctx, op, func(t *tx) error {
		errs, err := t.eachInSavepoint(ctx, len(items), func(i int) error {
			e, err := t.liveEntry(ctx, owner, items[i].ID, true)
			if err != nil {
				return err
			}
			if e.Parent == 0 {
				return dfms.Errorf(op, dfms.Invalid, "cannot delete the root")
			}
			return t.trash(ctx, owner, e, items[i].At)
		})
		copy(out, errs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Restore implements meta.Trash.
func (s *Store) Restore(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (dfms.Entry, error) {
	const op dfms.Op = "meta.Restore"
	var out dfms.Entry
	err := s.writeEntry(ctx, op, owner, id, func(t *tx, e dfms.Entry) error {
		if e.Live() || e.TrashRoot != e.ID {
			return dfms.Errorf(op, dfms.NotExist, "not in the trash (restore the deleted folder that holds it)")
		}
		if _, err := t.liveDir(ctx, owner, e.Parent, true); err != nil {
			if dfms.Is(err, dfms.NotExist) {
				return dfms.Errorf(op, dfms.Conflict, "its folder no longer exists; restore that first")
			}
			return err
		}
		if _, found, err := t.lookup(ctx, owner, e.Parent, e.Name, false); err != nil {
			return err
		} else if found {
			return dfms.E(op, dfms.Exist, fmt.Errorf("%q exists again in its folder", e.Name))
		}
		if _, err := t.exec(ctx, `UPDATE entries SET deleted_at = NULL, trash_root = NULL WHERE trash_root = ? AND owner_id = ?`, id, owner); err != nil {
			return err
		}
		if err := t.journal(ctx, owner, id, e.Parent, dfms.ChangeRestore, 0); err != nil {
			return err
		}
		if err := t.dirChanged(ctx, e.Parent); err != nil {
			return err
		}
		var err error
		out, err = t.entry(ctx, owner, id, false)
		return err
	})
	return out, err
}

// ListTrash implements meta.Trash.
func (s *Store) ListTrash(ctx context.Context, owner dfms.UserID, offset, limit int) ([]dfms.Entry, int, error) {
	const op dfms.Op = "meta.ListTrash"
	if offset < 0 || limit < 0 {
		return nil, 0, dfms.Errorf(op, dfms.Invalid, "negative offset or limit")
	}
	if limit == 0 || limit > meta.MaxTrashPage {
		limit = meta.MaxTrashPage
	}
	var out []dfms.Entry
	var total int
	err := s.read(ctx, op, func(t *tx) error {
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM entries WHERE owner_id = ? AND trash_root = id`, owner).Scan(&total); err != nil {
			return err
		}
		var err error
		out, err = scanEntries(t.query(ctx, `SELECT `+entryCols+` FROM entries
			WHERE owner_id = ? AND trash_root = id ORDER BY deleted_at DESC, id DESC LIMIT ? OFFSET ?`, owner, limit, offset))
		return err
	})
	return out, total, err
}

// Purge implements meta.Trash.
func (s *Store) Purge(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (meta.PurgeStats, error) {
	const op dfms.Op = "meta.Purge"
	var st meta.PurgeStats
	err := s.writeEntry(ctx, op, owner, id, func(t *tx, e dfms.Entry) error {
		st = meta.PurgeStats{}
		if e.Live() {
			return dfms.Errorf(op, dfms.Conflict, "only entries in the trash can be purged")
		}
		var next dfms.EntryID
		err := t.queryRow(ctx, `SELECT id FROM entries WHERE hist_prev = ?`, id).Scan(&next)
		if err == nil {
			return dfms.E(op, dfms.Conflict, fmt.Errorf("its versions are the start of the history of entry %d; they go when it is purged", next))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// The whole physical subtree goes, including parts trashed earlier
		// on their own: their parent is about to disappear. So do the
		// files whose histories the subtree's files continue (wherever
		// they were), and only those: one whose history a file outside
		// continues stays for it.
		const subtree = `WITH RECURSIVE tree(id) AS (
				SELECT id FROM entries WHERE id = ?
				UNION ALL
				SELECT c.id FROM entries c JOIN tree ON c.parent_id = tree.id
					WHERE NOT EXISTS (SELECT 1 FROM entries n WHERE n.hist_prev = c.id)
			), past(id) AS (
				SELECT hist_prev FROM entries WHERE id IN (SELECT id FROM tree) AND hist_prev IS NOT NULL
				UNION ALL
				SELECT p.hist_prev FROM entries p JOIN past ON p.id = past.id WHERE p.hist_prev IS NOT NULL
			), sub(id) AS (SELECT id FROM tree UNION SELECT id FROM past) `
		// Uploads into the subtree are aborted (their parts release refs).
		rows, err := t.query(ctx, subtree+`SELECT id FROM multipart_uploads WHERE parent_id IN (SELECT id FROM sub)`, id)
		uploads, err := scanAll(rows, err, func(r row) (u string, err error) { return u, r.Scan(&u) })
		if err != nil {
			return err
		}
		for _, u := range uploads {
			if err := t.abortUpload(ctx, owner, u); err != nil {
				return err
			}
		}

		counts := map[dfms.Hash]int64{}
		rows, err = t.query(ctx, subtree+`SELECT manifest FROM versions WHERE entry_id IN (SELECT id FROM sub)`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var blob []byte
			if err := rows.Scan(&blob); err != nil {
				rows.Close()
				return err
			}
			size, err := addCounts(counts, blob) // its data bytes, as charged
			if err != nil {
				rows.Close()
				return err
			}
			st.Versions++
			st.Bytes += size
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := t.releaseChunks(ctx, counts); err != nil {
			return err
		}
		// Extended attributes go with their entries, and their bytes
		// with them.
		var xattrBytes int64
		if err := t.queryRow(ctx, subtree+`SELECT COALESCE(SUM(size), 0) FROM xattrs WHERE entry_id IN (SELECT id FROM sub)`, id).Scan(&xattrBytes); err != nil {
			return err
		}
		st.Bytes += xattrBytes
		if _, err := t.exec(ctx, subtree+`DELETE FROM versions WHERE entry_id IN (SELECT id FROM sub)`, id); err != nil {
			return err
		}
		// A replaced file that stays for a file outside the subtree moves
		// out of it, under the owner's root (it is in no listing).
		if _, err := t.exec(ctx, subtree+`UPDATE entries SET parent_id = (SELECT root_id FROM users WHERE id = ?)
			WHERE parent_id IN (SELECT id FROM tree) AND id NOT IN (SELECT id FROM sub)`, id, owner); err != nil {
			return err
		}
		res, err := t.exec(ctx, subtree+`DELETE FROM entries WHERE id IN (SELECT id FROM sub)`, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		st.Entries = int(n)
		if _, err := t.exec(ctx, `UPDATE users SET used_bytes = used_bytes - ? WHERE id = ?`, st.Bytes, owner); err != nil {
			return err
		}
		return t.journal(ctx, owner, id, e.Parent, dfms.ChangePurge, 0)
	})
	return st, err
}

// Search implements meta.Tree.
func (s *Store) Search(ctx context.Context, owner dfms.UserID, q meta.SearchQuery) ([]dfms.Entry, int, error) {
	const op dfms.Op = "meta.Search"
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	if q.Offset < 0 {
		return nil, 0, dfms.Errorf(op, dfms.Invalid, "negative offset")
	}
	// No name or type holds these, and the databases reject them (an FTS5
	// syntax error on SQLite, an encoding error on PostgreSQL).
	if !searchable(q.Text) || !searchable(q.MIME) {
		return nil, 0, dfms.Errorf(op, dfms.Invalid, "search text and type must be UTF-8 without NUL bytes")
	}
	var out []dfms.Entry
	var total int
	err := s.read(ctx, op, func(t *tx) error {
		where := ` FROM entries WHERE owner_id = ? AND deleted_at IS NULL AND parent_id IS NOT NULL`
		args := []any{owner}
		for _, w := range strings.Fields(q.Text) {
			cond, wargs := t.s.d.SearchWord(w)
			where += ` AND ` + cond
			args = append(args, wargs...)
		}
		if q.Kind != 0 {
			where += ` AND kind = ?`
			args = append(args, q.Kind)
		}
		if q.MIME != "" {
			if strings.HasSuffix(q.MIME, "/") {
				where += ` AND mime LIKE ? ESCAPE '\'`
				args = append(args, EscapeLike(q.MIME)+"%")
			} else {
				where += ` AND mime = ?`
				args = append(args, q.MIME)
			}
		}
		if q.MinSize > 0 {
			where += ` AND size >= ?`
			args = append(args, q.MinSize)
		}
		if q.MaxSize > 0 {
			where += ` AND size <= ?`
			args = append(args, q.MaxSize)
		}
		if !q.After.IsZero() {
			where += ` AND mtime_ns >= ?`
			args = append(args, ns(q.After))
		}
		if !q.Before.IsZero() {
			where += ` AND mtime_ns < ?`
			args = append(args, ns(q.Before))
		}
		if q.Folder != 0 {
			where += ` AND id IN (WITH RECURSIVE sub(id) AS (
					SELECT id FROM entries WHERE id = ? AND owner_id = ?
					UNION ALL
					SELECT c.id FROM entries c JOIN sub ON c.parent_id = sub.id WHERE c.deleted_at IS NULL
				) SELECT id FROM sub) AND id <> ?`
			args = append(args, q.Folder, owner, q.Folder)
		}
		if err := t.queryRow(ctx, `SELECT COUNT(*)`+where, args...).Scan(&total); err != nil {
			return err
		}
		var err error
		out, err = scanEntries(t.query(ctx, `SELECT `+entryCols+where+` ORDER BY name`+t.s.d.Collate+`, id LIMIT ? OFFSET ?`,
			append(args, limit, q.Offset)...))
		return err
	})
	return out, total, err
}

// searchable reports whether s can be searched for: valid UTF-8 without
// NUL bytes.
func searchable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// Changes implements meta.Journal.
func (s *Store) Changes(ctx context.Context, owner dfms.UserID, after int64, limit int) ([]meta.Change, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	var out []meta.Change
	err := s.read(ctx, "meta.Changes", func(t *tx) error {
		out = out[:0]
		rows, err := t.query(ctx, `SELECT seq, owner_id, entry_id, parent_id, op, version, at, origin FROM changes
			WHERE owner_id = ? AND seq > ? ORDER BY seq LIMIT ?`, owner, after, limit)
		out, err = scanAll(rows, err, func(r row) (c meta.Change, err error) {
			var at int64
			err = r.Scan(&c.Seq, &c.Owner, &c.Entry, &c.Parent, &c.Op, &c.Version, &at, &c.Origin)
			c.At = fromNS(at)
			return c, err
		})
		return err
	})
	return out, err
}

// LastChange implements meta.Journal.
func (s *Store) LastChange(ctx context.Context, owner dfms.UserID) (int64, error) {
	var seq int64
	err := s.read(ctx, "meta.LastChange", func(t *tx) error {
		return t.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes WHERE owner_id = ?`, owner).Scan(&seq)
	})
	return seq, err
}
