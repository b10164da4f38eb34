package sqlmeta

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// addCounts adds the per-occurrence chunk counts of an encoded manifest
// (holes are no chunks), and returns how many of its bytes chunks hold:
// what its version is charged (a hole keeps nothing).
func addCounts(counts map[dfms.Hash]int64, blob []byte) (int64, error) {
	var m dfms.Manifest
	if err := m.UnmarshalBinary(blob); err != nil {
		return 0, err
	}
	var data int64
	for _, c := range m.Chunks {
		if !c.IsHole() {
			counts[c.Hash]++
			data += int64(c.Size)
		}
	}
	return data, nil
}

// sortedHashes returns the keys of counts in byte order. Rows are always
// updated in this order so that concurrent transactions lock them in the
// same order and cannot deadlock.
func sortedHashes(counts map[dfms.Hash]int64) []dfms.Hash {
	hs := make([]dfms.Hash, 0, len(counts))
	for h := range counts {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(a, b dfms.Hash) int { return bytes.Compare(a[:], b[:]) })
	return hs
}

// takeChunks adds references for every occurrence in counts. Chunks without
// a live row make it fail with a *meta.MissingChunksError, and a chunk
// whose stored size differs from sizes (when given) with kind Invalid; the
// caller's transaction then rolls back, so nothing changes.
//
// stored are reserved chunks to mark stored first (CommitRequest.Stored),
// each just before its reference is taken, so that every row is locked in
// one order (only where writers run concurrently; the caller marks them
// beforehand otherwise).
func (t *tx) takeChunks(ctx context.Context, counts map[dfms.Hash]int64, sizes map[dfms.Hash]uint32, stored map[dfms.Hash]int64) error {
	hs := sortedHashes(counts)
	if t.s.d.SerialWriters {
		var err error
		if hs, err = t.takeChunksBatched(ctx, hs, counts, sizes); err != nil {
			return err
		}
	}
	if len(stored) > 0 {
		all := maps.Clone(stored)
		for h := range counts {
			all[h] = 0
		}
		hs = sortedHashes(all)
	}
	var missing []dfms.Hash
	for _, h := range hs {
		if size, ok := stored[h]; ok {
			if err := t.addChunks(ctx, "meta.CommitVersion", map[dfms.Hash]int64{h: size}); err != nil {
				return err
			}
		}
		if _, ok := counts[h]; !ok {
			continue
		}
		q := `UPDATE chunks SET refs = refs + ?, zero_since = NULL WHERE hash = ? AND deleting = ? AND pending = ?`
		args := []any{counts[h], h[:], false, false}
		size, checkSize := sizes[h]
		if checkSize {
			q += ` AND size = ?`
			args = append(args, int64(size))
		}
		n, err := t.affected(ctx, q, args...)
		if err != nil {
			return err
		}
		if n == 1 {
			continue
		}
		if checkSize {
			var stored int64
			err := t.queryRow(ctx, `SELECT size FROM chunks WHERE hash = ?`, h[:]).Scan(&stored)
			if err == nil && stored != int64(size) {
				return dfms.E("meta.takeChunks", dfms.Invalid, fmt.Errorf("chunk %s has %d bytes, not %d", h, stored, size))
			}
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		missing = append(missing, h)
	}
	if len(missing) > 0 {
		return &meta.MissingChunksError{Hashes: missing}
	}
	return nil
}

// takeChunksBatched adds the references of hs (sorted) with one statement
// per batch of hashes that occur equally often (nearly always once), and
// returns those it could not take (no live row), for takeChunks to look
// at one by one. A commit of a large file references hundreds of chunks,
// and a statement each costs more than the rows they change. Only where
// writers run one at a time: a statement over many rows does not lock them
// in hs's order.
func (t *tx) takeChunksBatched(ctx context.Context, hs []dfms.Hash, counts map[dfms.Hash]int64, sizes map[dfms.Hash]uint32) ([]dfms.Hash, error) {
	byCount := map[int64][]dfms.Hash{}
	for _, h := range hs {
		byCount[counts[h]] = append(byCount[counts[h]], h)
	}
	taken := make(map[dfms.Hash]bool, len(hs))
	for n, group := range byCount {
		for part := range slices.Chunk(group, batch) {
			args := make([]any, 0, len(part)+3)
			args = append(args, n)
			for _, h := range part {
				args = append(args, h[:])
			}
			args = append(args, false, false)
			rows, err := t.query(ctx, `UPDATE chunks SET refs = refs + ?, zero_since = NULL
				WHERE hash IN (?`+strings.Repeat(", ?", len(part)-1)+`) AND deleting = ? AND pending = ?
				RETURNING hash, size`, args...)
			err = eachRow(rows, err, func(r row) error {
				var b []byte
				var size int64
				if err := r.Scan(&b, &size); err != nil {
					return err
				}
				h := dfms.Hash(b)
				if want, ok := sizes[h]; ok && int64(want) != size {
					return dfms.E("meta.takeChunks", dfms.Invalid, fmt.Errorf("chunk %s has %d bytes, not %d", h, size, want))
				}
				taken[h] = true
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return without(hs, taken), nil
}

// sizesOf returns each chunk's size in m.
func sizesOf(m *dfms.Manifest) map[dfms.Hash]uint32 {
	out := make(map[dfms.Hash]uint32, len(m.Chunks))
	for _, c := range m.Chunks {
		if !c.IsHole() {
			out[c.Hash] = c.Size
		}
	}
	return out
}

// releaseChunks removes references; a chunk whose count reaches zero starts
// its grace period now.
func (t *tx) releaseChunks(ctx context.Context, counts map[dfms.Hash]int64) error {
	for _, h := range sortedHashes(counts) {
		n := counts[h]
		// A referenced chunk without a row means the store is inconsistent.
		if err := t.execOne(ctx, dfms.E("meta.releaseChunks", dfms.Other, fmt.Errorf("chunk %s is referenced but has no row", h)),
			`UPDATE chunks SET refs = refs - ?, zero_since = CASE WHEN refs - ? = 0 THEN ? ELSE zero_since END WHERE hash = ?`,
			n, n, ns(t.now), h[:]); err != nil {
			return err
		}
	}
	return nil
}

// checkManifest validates a manifest's chunk sizes: none empty (holes
// neither), and one size per hash.
func checkManifest(op dfms.Op, m *dfms.Manifest) error {
	sizes := make(map[dfms.Hash]uint32, len(m.Chunks))
	for i, c := range m.Chunks {
		if c.Size == 0 {
			return dfms.E(op, dfms.Invalid, fmt.Errorf("chunk %d of the manifest is empty", i))
		}
		if c.IsHole() {
			continue
		}
		if s, ok := sizes[c.Hash]; ok && s != c.Size {
			return dfms.E(op, dfms.Invalid, fmt.Errorf("chunk %s appears with sizes %d and %d", c.Hash, s, c.Size))
		}
		sizes[c.Hash] = c.Size
	}
	return nil
}

// checkRequest checks a commit request before its transaction.
func checkRequest(op dfms.Op, req *meta.CommitRequest) error {
	if len(req.Stored) > 0 && req.Durable == nil {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("a commit that records chunks being stored needs to wait for them (Durable)"))
	}
	if err := checkTimes(op, req.MTime); err != nil {
		return err
	}
	if len(req.CommitID) > meta.MaxCommitIDLen {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("a commit id has at most %d bytes", meta.MaxCommitIDLen))
	}
	return checkManifest(op, &req.Manifest)
}

// CommitVersion implements meta.Versions.
func (s *Store) CommitVersion(ctx context.Context, req meta.CommitRequest) (dfms.Entry, dfms.Version, error) {
	const op dfms.Op = "meta.CommitVersion"
	if err := checkRequest(op, &req); err != nil {
		return dfms.Entry{}, dfms.Version{}, err
	}
	blob, _ := req.Manifest.MarshalBinary()
	var e dfms.Entry
	var v dfms.Version
	err := s.write(ctx, op, func(t *tx) error {
		var err error
		e, v, err = t.commitWithChunks(ctx, op, req, blob)
		return err
	})
	return e, v, err
}

// commitWithChunks takes the references of req's chunks, commits the
// version, and records the owner's possession of the chunks.
func (t *tx) commitWithChunks(ctx context.Context, op dfms.Op, req meta.CommitRequest, blob []byte) (dfms.Entry, dfms.Version, error) {
	if req.CommitID != "" {
		if e, v, done, err := t.committedBefore(ctx, op, req, blob); done || err != nil {
			return e, v, err
		}
	}
	var stored map[dfms.Hash]int64
	if len(req.Stored) > 0 {
		stored = make(map[dfms.Hash]int64, len(req.Stored))
		for _, r := range req.Stored {
			stored[r.Hash] = int64(r.Size)
		}
		if t.s.d.SerialWriters {
			// One writer at a time: no lock order to keep, and the
			// references are then taken in batches.
			if err := t.addChunks(ctx, op, stored); err != nil {
				return dfms.Entry{}, dfms.Version{}, err
			}
			stored = nil
		}
	}
	counts := req.Manifest.Counts()
	if err := t.takeChunks(ctx, counts, sizesOf(&req.Manifest), stored); err != nil {
		return dfms.Entry{}, dfms.Version{}, err
	}
	e, v, err := t.commit(ctx, op, req, blob)
	if err != nil {
		return e, v, err
	}
	// After commit, which locked the owner's row for update: inserting
	// possession rows first would take a key-share lock on it that two
	// concurrent commits then both try to upgrade (a deadlock).
	if err := t.own(ctx, req.Owner, sortedHashes(counts)); err != nil {
		return e, v, err
	}
	if req.Durable != nil {
		if err := req.Durable(); err != nil {
			return dfms.Entry{}, dfms.Version{}, dfms.E(op, dfms.Other, fmt.Errorf("storing the commit's chunks: %w", err))
		}
	}
	return e, v, nil
}

// committedBefore looks for the version that an earlier attempt of req
// (same committer, same CommitID) made, and reports whether there is one:
// then it returns that version and the entry that holds it now, and the
// commit makes nothing. The same id with another manifest is a client's
// mistake (kind Conflict).
func (t *tx) committedBefore(ctx context.Context, op dfms.Op, req meta.CommitRequest, blob []byte) (dfms.Entry, dfms.Version, bool, error) {
	by := req.CreatedBy
	if by == 0 {
		by = req.Owner
	}
	var had []byte
	v, err := scanVersion(t.queryRow(ctx, `SELECT `+versionCols+`, v.manifest FROM versions v JOIN entries e ON e.id = v.entry_id
		WHERE v.created_by = ? AND v.commit_id = ? AND e.owner_id = ?`, by, req.CommitID, req.Owner), &had)
	if errors.Is(err, sql.ErrNoRows) {
		return dfms.Entry{}, dfms.Version{}, false, nil
	}
	if err != nil {
		return dfms.Entry{}, dfms.Version{}, false, err
	}
	if !bytes.Equal(had, blob) {
		return dfms.Entry{}, dfms.Version{}, false, dfms.E(op, dfms.Conflict, fmt.Errorf("commit id %q was used for other content", req.CommitID))
	}
	// The entry answered is the one whose history holds the version now:
	// the last of the files that continued its file's history.
	id := v.Entry
	for {
		var next dfms.EntryID
		err := t.queryRow(ctx, `SELECT id FROM entries WHERE hist_prev = ?`, id).Scan(&next)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return dfms.Entry{}, dfms.Version{}, false, err
		}
		id = next
	}
	e, err := t.entry(ctx, req.Owner, id, false)
	return e, v, err == nil, err
}

// CommitVersions implements meta.Versions: each commit runs inside a
// savepoint of one transaction, so that one failing rolls back only itself.
func (s *Store) CommitVersions(ctx context.Context, reqs []meta.CommitRequest) ([]meta.CommitResult, error) {
	const op dfms.Op = "meta.CommitVersions"
	blobs := make([][]byte, len(reqs))
	checked := make([]error, len(reqs))
	for i := range reqs {
		if checked[i] = checkRequest(op, &reqs[i]); checked[i] == nil {
			blobs[i], _ = reqs[i].Manifest.MarshalBinary()
		}
	}
	return writeEach(ctx, s, op, checked, func(t *tx, i int) (meta.CommitResult, error) {
		e, v, err := t.commitWithChunks(ctx, op, reqs[i], blobs[i])
		return meta.CommitResult{Entry: e, Version: v}, err
	}, func(err error) meta.CommitResult { return meta.CommitResult{Err: err} })
}

// writeEach runs do for every item of a batch in one write transaction,
// each in a savepoint (eachInSavepoint), and returns each item's result:
// failed(err) for an item that failed with err, its own or checked[i]
// (the item's error found before the transaction; do does not run then).
func writeEach[R any](ctx context.Context, s *Store, op dfms.Op, checked []error, do func(t *tx, i int) (R, error), failed func(error) R) ([]R, error) {
	out := make([]R, len(checked))
	err := s.write(ctx, op, func(t *tx) error {
		errs, err := t.eachInSavepoint(ctx, len(checked), func(i int) error {
			var zero R
			out[i] = zero // the transaction may run again
			if checked[i] != nil {
				return checked[i]
			}
			var err error
			out[i], err = do(t, i)
			return err
		})
		for i, err := range errs {
			if err != nil {
				out[i] = failed(err)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachInSavepoint runs fn(i) for every i below n, each in a savepoint of
// t: an error of the item's own (one with a kind, not Transient) rolls
// back only that item and is returned in its place; any other error is
// the database's and fails the whole transaction (retried or returned).
//
// Items seldom fail, and a savepoint per item is not free (SQLite's
// full-text index writes out what it holds at each one; PostgreSQL opens
// a subtransaction for each): a batch first runs in one savepoint, and
// only if an item fails is it rolled back and run again item by item.
func (t *tx) eachInSavepoint(ctx context.Context, n int, fn func(i int) error) ([]error, error) {
	errs := make([]error, n)
	journaled := t.mark() // a rollback to a savepoint drops the change rows and events recorded since
	if n > 1 {
		if _, err := t.ExecContext(ctx, `SAVEPOINT batch`); err != nil {
			return nil, err
		}
		failed := false
		for i := range n {
			if err := fn(i); err != nil {
				cerr := t.s.classify(err)
				if !isKinded(cerr) || dfms.Is(cerr, dfms.Transient) {
					return nil, err
				}
				failed = true
				break
			}
		}
		if failed {
			if _, err := t.ExecContext(ctx, `ROLLBACK TO SAVEPOINT batch`); err != nil {
				return nil, err
			}
			t.undo(journaled)
		}
		if _, err := t.ExecContext(ctx, `RELEASE SAVEPOINT batch`); err != nil {
			return nil, err
		}
		if !failed {
			return errs, nil
		}
	}
	for i := range n {
		if _, err := t.ExecContext(ctx, `SAVEPOINT item`); err != nil {
			return nil, err
		}
		journaled := t.mark()
		if err := fn(i); err != nil {
			cerr := t.s.classify(err)
			if !isKinded(cerr) || dfms.Is(cerr, dfms.Transient) {
				return nil, err
			}
			if _, rerr := t.ExecContext(ctx, `ROLLBACK TO SAVEPOINT item`); rerr != nil {
				return nil, rerr
			}
			t.undo(journaled)
			errs[i] = cerr
		}
		if _, err := t.ExecContext(ctx, `RELEASE SAVEPOINT item`); err != nil {
			return nil, err
		}
	}
	return errs, nil
}

// commit adds the version row and updates the entry, usage and journal.
// The caller has taken the chunk references.
func (t *tx) commit(ctx context.Context, op dfms.Op, req meta.CommitRequest, blob []byte) (dfms.Entry, dfms.Version, error) {
	var e dfms.Entry
	var err error
	if req.Entry != 0 {
		e, err = t.liveEntry(ctx, req.Owner, req.Entry, true)
		if err != nil {
			return e, dfms.Version{}, err
		}
	} else {
		if err := dfms.ValidName(req.Name); err != nil {
			return e, dfms.Version{}, dfms.E(op, dfms.Invalid, err)
		}
		if _, err := t.liveDir(ctx, req.Owner, req.Parent, true); err != nil {
			return e, dfms.Version{}, err
		}
		var found bool
		e, found, err = t.lookup(ctx, req.Owner, req.Parent, req.Name, true)
		if err != nil {
			return e, dfms.Version{}, err
		}
		if found && req.CreateOnly {
			return e, dfms.Version{}, dfms.E(op, dfms.Exist, fmt.Errorf("%q already exists", req.Name))
		}
		if !found {
			mode := req.Mode
			if mode == 0 {
				mode = 0o644
			}
			e, err = t.insertEntry(ctx, op, dfms.Entry{Owner: req.Owner, Parent: req.Parent, Name: req.Name,
				Kind: dfms.KindFile, Mode: mode, UID: req.UID, GID: req.GID, MIME: req.MIME})
			if err != nil {
				return e, dfms.Version{}, err
			}
		}
	}
	switch e.Kind {
	case dfms.KindDir:
		return e, dfms.Version{}, dfms.E(op, dfms.IsDir, fmt.Errorf("%q is a directory", e.Name))
	case dfms.KindFile:
	default:
		return e, dfms.Version{}, dfms.E(op, dfms.Invalid, fmt.Errorf("%q is a %s, which has no content", e.Name, e.Kind))
	}
	if req.RequireBase && e.VersionID != req.Base {
		return e, dfms.Version{}, dfms.E(op, dfms.Conflict, fmt.Errorf("%q is at version %d (id %d), not id %d", e.Name, e.Version, e.VersionID, req.Base))
	}
	size, data := req.Manifest.Size(), req.Manifest.DataSize()
	q, err := t.chargeVersion(ctx, op, req.Owner, data, &req.Manifest) // quota.go: holes keep nothing
	if err != nil {
		return e, dfms.Version{}, err
	}
	v := dfms.Version{Entry: e.ID, Number: e.Version + 1, Size: size, SHA256: req.SHA256,
		ChunkCount: len(req.Manifest.Hashes()), Base: req.Base, CreatedAt: t.now, CreatedBy: req.CreatedBy, CommitID: req.CommitID}
	if v.CreatedBy == 0 {
		v.CreatedBy = req.Owner
	}
	var commitID any
	if v.CommitID != "" {
		commitID = v.CommitID
	}
	// The row holds the file's own number: v.Number less the place of the
	// history it continues.
	if err := t.queryRow(ctx, `INSERT INTO versions (entry_id, number, size, sha256, manifest, chunk_count, base, created_at, created_by, commit_id)
		VALUES (?, ? - (SELECT hist_base FROM entries WHERE id = ?), ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, v.Entry, v.Number, v.Entry, v.Size, v.SHA256[:], blob, v.ChunkCount, v.Base,
		ns(v.CreatedAt), v.CreatedBy, commitID).Scan(&v.ID); err != nil {
		return e, v, err
	}
	mtime := req.MTime
	if mtime.IsZero() {
		mtime = t.now
	}
	mime := req.MIME
	if mime == "" {
		mime = e.MIME
	}
	if _, err := t.exec(ctx, `UPDATE entries SET size = ?, data_size = ?, cur_version = ? - hist_base, cur_version_id = ?, mtime_ns = ?, ctime_ns = ?, mime = ? WHERE id = ?`,
		size, data, v.Number, v.ID, ns(mtime), ns(t.now), mime, e.ID); err != nil {
		return e, v, err
	}
	if err := q.addUsed(ctx, t, data); err != nil {
		return e, v, err
	}
	if err := t.journal(ctx, req.Owner, e.ID, e.Parent, dfms.ChangeVersion, v.ID); err != nil {
		return e, v, err
	}
	// The entry as just updated (as stored: times to the nanosecond),
	// without reading it back.
	e.Size, e.DataSize, e.Version, e.VersionID, e.MIME, e.SHA256 = size, data, v.Number, v.ID, mime, v.SHA256
	e.MTime, e.CTime = fromNS(ns(mtime)), fromNS(ns(t.now))
	return e, v, nil
}

// versionCols are the columns scanVersion reads, of versions v: its
// number is its place in its file's history (hist_base + its own).
const versionCols = `v.id, v.entry_id, v.number + (SELECT h.hist_base FROM entries h WHERE h.id = v.entry_id), v.size, v.sha256, v.chunk_count, v.base, v.created_at, v.created_by, COALESCE(v.commit_id, '')`

func scanVersion(row interface{ Scan(...any) error }, manifest *[]byte) (dfms.Version, error) {
	var v dfms.Version
	var sum []byte
	var created int64
	dest := []any{&v.ID, &v.Entry, &v.Number, &v.Size, &sum, &v.ChunkCount, &v.Base, &created, &v.CreatedBy, &v.CommitID}
	if manifest != nil {
		dest = append(dest, manifest)
	}
	if err := row.Scan(dest...); err != nil {
		return v, err
	}
	copy(v.SHA256[:], sum)
	v.CreatedAt = fromNS(created)
	return v, nil
}

// GetVersion implements meta.Versions.
func (s *Store) GetVersion(ctx context.Context, owner dfms.UserID, id dfms.EntryID, number int64) (dfms.Version, error) {
	const op dfms.Op = "meta.GetVersion"
	var v dfms.Version
	err := s.read(ctx, op, func(t *tx) error {
		e, err := t.entry(ctx, owner, id, false)
		if err != nil {
			return err
		}
		if number == 0 {
			v, err = t.versionWithManifest(ctx, `v.id = ?`, e.VersionID)
		} else {
			v, err = t.historyVersion(ctx, id, number)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.E(op, dfms.NotExist, fmt.Errorf("entry %d has no version %d", id, number))
		}
		return err
	})
	return v, err
}

// VersionByID implements meta.Versions.
func (s *Store) VersionByID(ctx context.Context, owner dfms.UserID, vid int64) (dfms.Version, error) {
	const op dfms.Op = "meta.VersionByID"
	var v dfms.Version
	err := s.read(ctx, op, func(t *tx) error {
		var err error
		v, err = t.versionWithManifest(ctx, `v.id = ? AND v.entry_id IN (SELECT id FROM entries WHERE owner_id = ?)`, vid, owner)
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.E(op, dfms.NotExist, fmt.Errorf("no version %d", vid))
		}
		return err
	})
	return v, err
}

// versionWithManifest reads the version that where selects, with its
// manifest (sql.ErrNoRows if none).
func (t *tx) versionWithManifest(ctx context.Context, where string, args ...any) (dfms.Version, error) {
	return t.readVersion(ctx, `SELECT `+versionCols+`, v.manifest FROM versions v WHERE `+where, args...)
}

// readVersion reads the version query selects (versionCols and the
// manifest), with its manifest (sql.ErrNoRows if none).
func (t *tx) readVersion(ctx context.Context, query string, args ...any) (dfms.Version, error) {
	var blob []byte
	v, err := scanVersion(t.queryRow(ctx, query, args...), &blob)
	if err != nil {
		return v, err
	}
	v.Manifest = new(dfms.Manifest)
	return v, v.Manifest.UnmarshalBinary(blob)
}

// historyVersion reads version number of file id's history, with its
// manifest (sql.ErrNoRows if none): the file's own or one of a file
// whose history it continues.
func (t *tx) historyVersion(ctx context.Context, id dfms.EntryID, number int64) (dfms.Version, error) {
	return t.readVersion(ctx, historyCTE+`SELECT `+versionCols+`, v.manifest FROM versions v JOIN hist h ON v.entry_id = h.id
		WHERE `+inHistory+` AND v.number + h.base = ?`, id, number)
}

// ListVersions implements meta.Versions: the file's history, the
// versions of the files it continues included (see adoptHistory).
func (s *Store) ListVersions(ctx context.Context, owner dfms.UserID, id dfms.EntryID) ([]dfms.Version, error) {
	var out []dfms.Version
	err := s.read(ctx, "meta.ListVersions", func(t *tx) error {
		out = out[:0]
		if _, err := t.entry(ctx, owner, id, false); err != nil {
			return err
		}
		rows, err := t.query(ctx, historyCTE+`SELECT `+versionCols+` FROM versions v JOIN hist h ON v.entry_id = h.id
			WHERE `+inHistory+` ORDER BY v.number + h.base`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scanVersion(rows, nil)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}

// SetChecksum implements meta.Versions.
func (s *Store) SetChecksum(ctx context.Context, owner dfms.UserID, vid int64, sum dfms.Hash) error {
	const op dfms.Op = "meta.SetChecksum"
	return s.write(ctx, op, func(t *tx) error {
		var zero dfms.Hash
		n, err := t.affected(ctx, `UPDATE versions SET sha256 = ? WHERE id = ? AND sha256 = ?
			AND entry_id IN (SELECT id FROM entries WHERE owner_id = ?)`, sum[:], vid, zero[:], owner)
		if err != nil || n == 1 {
			return err
		}
		// Nothing changed: a version with a checksum keeps it, a foreign
		// or missing one is NotExist.
		var one int
		err = t.queryRow(ctx, `SELECT 1 FROM versions WHERE id = ? AND entry_id IN (SELECT id FROM entries WHERE owner_id = ?)`, vid, owner).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.E(op, dfms.NotExist, fmt.Errorf("no version %d", vid))
		}
		return err
	})
}

// DeleteVersion implements meta.Versions.
func (s *Store) DeleteVersion(ctx context.Context, owner dfms.UserID, id dfms.EntryID, number int64) error {
	const op dfms.Op = "meta.DeleteVersion"
	return s.writeEntry(ctx, op, owner, id, func(t *tx, e dfms.Entry) error {
		if number == e.Version {
			return dfms.E(op, dfms.Conflict, fmt.Errorf("version %d is the current version", number))
		}
		var vid int64
		var blob []byte
		err := t.queryRow(ctx, historyCTE+`SELECT v.id, v.manifest FROM versions v JOIN hist h ON v.entry_id = h.id
			WHERE `+inHistory+` AND v.number + h.base = ?`, id, number).Scan(&vid, &blob)
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.E(op, dfms.NotExist, fmt.Errorf("entry %d has no version %d", id, number))
		}
		if err != nil {
			return err
		}
		counts := map[dfms.Hash]int64{}
		size, err := addCounts(counts, blob) // the bytes it was charged
		if err != nil {
			return err
		}
		if err := t.releaseChunks(ctx, counts); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM versions WHERE id = ?`, vid); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `UPDATE users SET used_bytes = used_bytes - ? WHERE id = ?`, size, owner); err != nil {
			return err
		}
		return t.journal(ctx, owner, id, e.Parent, dfms.ChangeVersion, -vid)
	})
}
