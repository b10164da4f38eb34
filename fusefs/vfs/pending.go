package vfs

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/dfms/dfms"
)

// Deferred creates. Over a backend that creates files under ids reserved
// ahead (FileCreator, the in-process one), create(2) of a regular file
// does not wait for the backend. The file takes a reserved id at once and
// is pending: this mount shows it (lookup, stat, readdir, open) and its
// journal, made with it, records the create. The backend learns of it when
// it is materialized:
//
//   - before its first commit: the write-back creates the pending files of
//     a batch in one transaction and then commits their content in one
//     more, so untarring a tree costs two transactions per 64 files where
//     it cost one per file and one per chmod;
//   - before anything else uses its name or needs the backend to know it:
//     unlink, rename from or over it, rmdir of its directory, mkdir or
//     symlink of its name (which then fail with EEXIST here already),
//     xattr changes, fsync, FS.Sync and unmount.
//
// chmod, chown and utimens of a pending file change it in memory and in
// its journal: tar's fchmod after each create costs no transaction.
//
// A hard link to a pending file, in its directory, is a further name of
// it here and in its journal, made on the backend with the file; unlink
// of one of its names while it is pending is local too. git stores each
// object by writing a temporary file, linking it under its final name and
// unlinking the temporary one: the backend sees one create, of the final
// name.
//
// Others (the REST API, other mounts) see the file when it is
// materialized, with its first content: tens of milliseconds after
// close(2), as the content itself under write-back. If another client
// takes the name meanwhile, the file is materialized beside it under a
// conflict name (conflictName), and if its directory was removed
// meanwhile, in the root under one; the log says so, and nothing written
// is lost. O_EXCL is exact within this mount.
//
// A crash of the mount leaves the journal, which names the file's parent,
// name and attributes: the next mount creates the file (unless it was
// materialized already) and commits what was staged.

// reserveBatch is how many ids one reservation takes.
const reserveBatch = 512

type pendingFiles struct {
	fc FileCreator

	mu     sync.Mutex
	cond   *sync.Cond // a materialization ended
	byID   map[dfms.EntryID]*pendingFile
	byName map[nameKey]dfms.EntryID
	ids    []dfms.EntryID // reserved, not used yet
	// dirTimes are the times of directories that pending creates
	// changed, shown until the backend's are as late (its ctime is).
	dirTimes map[dfms.EntryID]time.Time
	// gen counts materializations: a create that looked the name up in
	// the backend tells from it that the name may have got there since.
	gen uint64

	matMu sync.Mutex // one materialization at a time
	resMu sync.Mutex // one reservation at a time

	// testMaterializing, if set, runs when a materialization begins
	// (export_test.go). Guarded by matMu.
	testMaterializing func()
}

type pendingFile struct {
	e Entry // under its first name; Nlink counts links too
	// links are its further names (hard links) made here, in e's
	// directory when made; the backend gets them with the file.
	links    []nameKey
	j        *journal // the file's journal, which records the create
	inflight bool     // being materialized: attribute changes wait for it
}

// named returns pf's entry under its name k, which may be a link's.
func (pf *pendingFile) named(k nameKey) Entry {
	e := pf.e
	e.Parent, e.Name = k.dir, k.name
	return e
}

func newPendingFiles(b Backend) *pendingFiles {
	fc, ok := b.(FileCreator)
	if !ok {
		return nil
	}
	p := &pendingFiles{fc: fc, byID: map[dfms.EntryID]*pendingFile{}, byName: map[nameKey]dfms.EntryID{}, dirTimes: map[dfms.EntryID]time.Time{}}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// take returns a reserved id, reserving more when none is left.
func (p *pendingFiles) take(ctx context.Context) (dfms.EntryID, error) {
	p.resMu.Lock()
	defer p.resMu.Unlock()
	p.mu.Lock()
	if len(p.ids) > 0 {
		id := p.ids[0]
		p.ids = p.ids[1:]
		p.mu.Unlock()
		return id, nil
	}
	p.mu.Unlock()
	ids, err := p.fc.ReserveIDs(ctx, reserveBatch)
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, fmt.Errorf("the backend reserved no ids")
	}
	p.mu.Lock()
	p.ids = append(p.ids, ids[1:]...)
	p.mu.Unlock()
	return ids[0], nil
}

// pendingEntry returns pending file id.
func (fsys *FS) pendingEntry(id dfms.EntryID) (Entry, bool) {
	p := fsys.pend
	if p == nil {
		return Entry{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pf := p.byID[id]; pf != nil {
		return pf.e, true
	}
	return Entry{}, false
}

// pendingLookup returns the pending file dir/name.
func (fsys *FS) pendingLookup(dir dfms.EntryID, name string) (Entry, bool) {
	p := fsys.pend
	if p == nil {
		return Entry{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := nameKey{dir, name}
	if id, ok := p.byName[k]; ok {
		return p.byID[id].named(k), true
	}
	return Entry{}, false
}

// pendingIn returns the pending files of directory dir.
func (fsys *FS) pendingIn(dir dfms.EntryID) []Entry {
	p := fsys.pend
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Entry
	for _, pf := range p.byID {
		if pf.e.Parent == dir {
			out = append(out, pf.e)
		}
		for _, k := range pf.links {
			if k.dir == dir {
				out = append(out, pf.named(k))
			}
		}
	}
	return out
}

// isPending reports whether file id is pending.
func (fsys *FS) isPending(id dfms.EntryID) bool {
	_, ok := fsys.pendingEntry(id)
	return ok
}

// createPending creates file dir/name as a pending file and opens it, or,
// without O_EXCL, opens the file of that name if there is one. ok false
// says the caller must create through the backend (no FileCreator).
func (fsys *FS) createPending(ctx context.Context, dir dfms.EntryID, name string, flags int, mode uint32, c Caller) (Attr, *Handle, bool, error) {
	const op dfms.Op = "vfs.Create"
	p := fsys.pend
	if p == nil {
		return Attr{}, nil, false, nil
	}
	if err := dfms.ValidName(name); err != nil {
		return Attr{}, nil, true, dfms.E(op, dfms.Invalid, err)
	}
	existing := func(e Entry) (Attr, *Handle, bool, error) {
		if flags&syscall.O_EXCL != 0 {
			return Attr{}, nil, true, dfms.E(op, dfms.Exist, fmt.Errorf("%q already exists", name))
		}
		h, err := fsys.openEntry(ctx, e, flags)
		if err != nil {
			return Attr{}, nil, true, err
		}
		return fsys.attrOf(e), h, true, nil
	}
	for {
		p.mu.Lock()
		gen := p.gen
		p.mu.Unlock()
		if e, ok := fsys.pendingLookup(dir, name); ok {
			return existing(e)
		}
		e, err := fsys.lookupEntry(ctx, dir, name)
		if err == nil {
			return existing(e)
		}
		if !dfms.Is(err, dfms.NotExist) {
			return Attr{}, nil, true, err
		}
		d, err := fsys.getEntry(ctx, dir)
		switch {
		case err != nil:
			return Attr{}, nil, true, err
		case !d.Live:
			return Attr{}, nil, true, dfms.E(op, dfms.NotExist, fmt.Errorf("directory %d was removed", dir))
		case d.Kind != dfms.KindDir:
			return Attr{}, nil, true, dfms.Errorf(op, dfms.NotDir, "not a directory")
		}
		id, err := p.take(ctx)
		if err != nil {
			return Attr{}, nil, true, err
		}
		now := time.Now()
		e = Entry{ID: id, Parent: dir, Name: name, Kind: dfms.KindFile, Mode: mode & 0o7777, UID: c.UID, GID: c.GID,
			MTime: now, CTime: now, ATime: now, Named: now, Live: true}
		// The open state and the journal first: once the name is
		// visible, the file may be opened, and a crash must find it.
		f := &openFile{fsys: fsys, id: id, init: true, refs: 1, writers: 0}
		if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
			f.writers = 1
		}
		f.mu.Lock()
		err = f.createStageLocked(createRecords(e))
		j := f.journal
		f.mu.Unlock()
		if err != nil {
			p.mu.Lock()
			p.ids = append(p.ids, id)
			p.mu.Unlock()
			return Attr{}, nil, true, err
		}
		fsys.mu.Lock()
		fsys.open[id] = f
		fsys.mu.Unlock()
		p.mu.Lock()
		_, taken := p.byName[nameKey{dir, name}]
		if taken || p.gen != gen {
			// Another create of the name, or a materialization that
			// may have put it in the backend, since the lookup.
			p.ids = append(p.ids, id)
			p.mu.Unlock()
			fsys.mu.Lock()
			delete(fsys.open, id)
			fsys.mu.Unlock()
			f.mu.Lock()
			f.dropStageLocked()
			f.mu.Unlock()
			continue
		}
		e.Nlink = 1
		p.byID[id] = &pendingFile{e: e, j: j}
		p.byName[nameKey{dir, name}] = id
		p.dirTimes[dir] = now // as a create changes its directory (make, git's untracked cache)
		p.mu.Unlock()
		return fsys.attrOf(e), fsys.newHandle(f, flags, false), true, nil
	}
}

// pendingDirTimes shows in a the times pending creates gave directory e.
func (fsys *FS) pendingDirTimes(a *Attr, e Entry) {
	p := fsys.pend
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.dirTimes[e.ID]
	switch {
	case !ok:
	case !e.CTime.Before(t): // the backend caught up
		delete(p.dirTimes, e.ID)
	default:
		a.MTime, a.CTime = t, t
	}
}

// dirTouched shows t as the times of directory dir until the backend's
// are as late: a change of its names made here and not yet on the
// backend (a deferred unlink).
func (fsys *FS) dirTouched(dir dfms.EntryID, t time.Time) {
	p := fsys.pend
	if p == nil {
		return
	}
	p.mu.Lock()
	if t.After(p.dirTimes[dir]) {
		p.dirTimes[dir] = t
	}
	p.mu.Unlock()
}

// setDirTimes makes the times of directory dir the backend's business
// again: the creates in it are materialized first, so that they do not
// move the times the caller sets.
func (fsys *FS) setDirTimes(ctx context.Context, dir dfms.EntryID) error {
	p := fsys.pend
	if p == nil {
		return nil
	}
	if err := fsys.flushRemovals(ctx); err != nil {
		return err
	}
	if err := fsys.materializeIn(ctx, dir); err != nil {
		return err
	}
	p.mu.Lock()
	delete(p.dirTimes, dir)
	p.mu.Unlock()
	return nil
}

// renamePending renames pending file from/name to a free name newName in
// the same directory, in memory (git writes each object under a temporary
// name beside its final one). done false says the caller renames through
// the backend: the source is not pending, the new name is taken (the
// replaced file's history needs the backend), or the directory changes
// (the backend then moves both directories' times).
func (fsys *FS) renamePending(ctx context.Context, from dfms.EntryID, name string, to dfms.EntryID, newName string) (bool, error) {
	const op dfms.Op = "vfs.Rename"
	p := fsys.pend
	if p == nil {
		return false, nil
	}
	if from != to {
		return false, nil
	}
	src, ok := fsys.pendingLookup(from, name)
	if !ok {
		return false, nil
	}
	if err := dfms.ValidName(newName); err != nil {
		return true, dfms.E(op, dfms.Invalid, err)
	}
	if from == to && name == newName {
		return true, nil
	}
	p.mu.Lock()
	gen := p.gen
	p.mu.Unlock()
	if _, ok := fsys.pendingLookup(to, newName); ok {
		return false, nil
	}
	if _, err := fsys.lookupEntry(ctx, to, newName); !dfms.Is(err, dfms.NotExist) {
		return false, nil // taken (or unknown): the backend decides
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pf := p.byID[src.ID]
	_, taken := p.byName[nameKey{to, newName}]
	if pf == nil || pf.inflight || taken || p.gen != gen || pf.e.Parent != from || pf.e.Name != name {
		return false, nil // it changed meanwhile: through the backend
	}
	// Recorded before it is made: a crash must find the file under the
	// name this mount answered with.
	if err := pf.j.append(nameRecord(nil, to, newName)); err != nil {
		return true, journalError(op, err)
	}
	delete(p.byName, nameKey{from, name})
	p.byName[nameKey{to, newName}] = src.ID
	now := time.Now()
	pf.e.Parent, pf.e.Name, pf.e.CTime, pf.e.Named = to, newName, now, now
	p.dirTimes[to] = now
	return true, nil
}

// setPendingAttr changes attributes of pending file id; ok false says id
// is not pending (any more). A change its journal cannot record is not
// made.
func (fsys *FS) setPendingAttr(id dfms.EntryID, a dfms.SetAttr) (Entry, bool, error) {
	const op dfms.Op = "vfs.SetAttr"
	p := fsys.pend
	if p == nil {
		return Entry{}, false, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		pf := p.byID[id]
		if pf == nil {
			return Entry{}, false, nil
		}
		if !pf.inflight {
			break
		}
		p.cond.Wait()
	}
	pf := p.byID[id]
	if (a.Mode == nil || *a.Mode&0o7777 == pf.e.Mode) && (a.UID == nil || *a.UID == pf.e.UID) && (a.GID == nil || *a.GID == pf.e.GID) {
		a.Mode, a.UID, a.GID = nil, nil, nil // tar's fchown to the owner it has
		if a.MTime == nil && a.ATime == nil {
			return pf.e, true, nil
		}
	}
	e := pf.e
	a.ApplyTo(&e.Mode, &e.UID, &e.GID, &e.MTime, &e.ATime)
	var rec []byte
	if a.Mode != nil || a.UID != nil || a.GID != nil {
		rec = appendRecord(rec, recPerm, int64(e.Mode), int64(e.UID)<<32|int64(e.GID))
	}
	if a.MTime != nil {
		rec = appendRecord(rec, recMTime, a.MTime.UnixNano(), 0)
	}
	if a.ATime != nil {
		rec = appendRecord(rec, recATime, a.ATime.UnixNano(), 0)
	}
	if err := pf.j.append(rec); err != nil {
		return pf.e, true, journalError(op, err)
	}
	e.CTime = time.Now()
	pf.e = e
	return e, true, nil
}

// materialize creates those of files ids that are pending in the
// backend (the package comment says when). It fails if the backend
// failed; the files that could not be made stay pending.
func (fsys *FS) materialize(ctx context.Context, ids ...dfms.EntryID) error {
	p := fsys.pend
	if p == nil {
		return nil
	}
	p.mu.Lock()
	some := false
	for _, id := range ids {
		if p.byID[id] != nil {
			some = true
			break
		}
	}
	p.mu.Unlock()
	if !some {
		return nil
	}
	p.matMu.Lock()
	defer p.matMu.Unlock()
	if p.testMaterializing != nil {
		p.testMaterializing()
	}
	p.mu.Lock()
	var batch []*pendingFile
	var es []Entry
	var links [][]nameKey // fixed while inflight
	for _, id := range ids {
		if pf := p.byID[id]; pf != nil && !pf.inflight {
			pf.inflight = true
			batch = append(batch, pf)
			e := pf.e
			e.Nlink = 0
			es = append(es, e)
			links = append(links, slices.Clone(pf.links))
		}
	}
	p.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	// Unlinks made here before come first: a file may take a name one
	// of them freed. Made now, once the names are fixed (inflight): an
	// unlink and a rename to the name it freed may come in between, and
	// the name must be free on the backend when the file gets it.
	if err := fsys.flushRemovals(ctx); err != nil {
		p.mu.Lock()
		for _, pf := range batch {
			pf.inflight = false
		}
		p.cond.Broadcast()
		p.mu.Unlock()
		return err
	}
	g := fsys.mc.begin()
	res, err := fsys.createFiles(ctx, es)
	for i := range res {
		r := &res[i]
		if r.Err == nil {
			fsys.mc.created(g, r.Entry, true) // before the name leaves pending: a lookup finds one or the other
			if len(links[i]) > 0 {
				// A file whose links fail stays pending: the next
				// attempt finds it made and makes the rest.
				r.Err = fsys.linkCreated(ctx, g, r.Entry.ID, links[i])
				fsys.mc.drop(r.Entry.ID) // its link count
			}
		}
		if err == nil && r.Err != nil {
			err = r.Err
		}
	}
	p.mu.Lock()
	for i, pf := range batch {
		pf.inflight = false
		if i < len(res) && res[i].Err == nil {
			id := pf.e.ID
			delete(p.byID, id)
			for _, k := range append(pf.links, nameKey{pf.e.Parent, pf.e.Name}) {
				if p.byName[k] == id {
					delete(p.byName, k)
				}
			}
			if jerr := pf.j.record(recCreated, 0, 0); jerr != nil {
				// The file is made: a crash finds it there and does
				// not create it again (recoverCreate), so the
				// materialization stands. The journal refuses records
				// after a torn one, so no later change pretends to be
				// recorded.
				fsys.log.Warn("the journal of a file made on the server could not record it", "entry", id, "err", jerr)
			}
		}
	}
	p.gen++
	p.cond.Broadcast()
	p.mu.Unlock()
	return err
}

// materializeNamed materializes the pending file dir/name, if there is
// one, and returns it as the backend has it: under a conflict name if
// another client took the name meanwhile.
func (fsys *FS) materializeNamed(ctx context.Context, dir dfms.EntryID, name string) (Entry, bool, error) {
	pe, ok := fsys.pendingLookup(dir, name)
	if !ok {
		return Entry{}, false, nil
	}
	if err := fsys.materialize(ctx, pe.ID); err != nil {
		return Entry{}, true, err
	}
	e, err := fsys.b.GetAttr(ctx, pe.ID)
	if err == nil && e.Nlink > 1 {
		e.Parent, e.Name = dir, name // one of its names: this one
	}
	return e, true, err
}

// linkCreated makes links, the further names of file id made while it
// was pending, on the backend, which has just created it (by a change
// begun at generation g). A name the backend has already (an earlier
// attempt) is done; one another client took meanwhile becomes a conflict
// name beside it.
func (fsys *FS) linkCreated(ctx context.Context, g uint64, id dfms.EntryID, links []nameKey) error {
	for _, k := range links {
		e, err := fsys.b.Link(ctx, id, k.dir, k.name)
		if dfms.Is(err, dfms.Exist) {
			if got, lerr := fsys.b.Lookup(ctx, k.dir, k.name); lerr == nil && got.ID == id {
				continue
			}
			name := conflictName(k.name, time.Now())
			if e, err = fsys.b.Link(ctx, id, k.dir, name); err == nil {
				fsys.log.Warn("a hard link made here got a conflict name: its name was taken by another client before the file reached the server",
					"entry", id, "name", k.name, "now", name, "parent", k.dir)
			}
		}
		if err != nil {
			return err
		}
		fsys.mc.created(g, e, true)
	}
	return nil
}

// materializeIn materializes the pending files of directory dir.
func (fsys *FS) materializeIn(ctx context.Context, dir dfms.EntryID) error {
	es := fsys.pendingIn(dir)
	if len(es) == 0 {
		return nil
	}
	ids := make([]dfms.EntryID, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return fsys.materialize(ctx, ids...)
}

// materializeAll materializes every pending file.
func (fsys *FS) materializeAll(ctx context.Context) error {
	p := fsys.pend
	if p == nil {
		return nil
	}
	p.mu.Lock()
	ids := make([]dfms.EntryID, 0, len(p.byID))
	for id := range p.byID {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	return fsys.materialize(ctx, ids...)
}

// createFiles creates es in the backend. A file whose name was taken
// meanwhile is created beside it under a conflict name; one whose
// directory is gone, in the root under a conflict name.
func (fsys *FS) createFiles(ctx context.Context, es []Entry) ([]CommitResult, error) {
	fc := fsys.pend.fc
	res, err := fc.CreateFiles(ctx, es)
	if err != nil {
		return nil, err
	}
	if len(res) != len(es) {
		return nil, fmt.Errorf("%d results for %d creates", len(res), len(es))
	}
	var again []Entry
	var at []int
	for i, r := range res {
		e := es[i]
		if dfms.Is(r.Err, dfms.Exist) {
			// An earlier attempt that failed to answer may have made it
			// (the id is taken, not the name).
			if got, err := fsys.b.GetAttr(ctx, e.ID); err == nil && got.Live {
				res[i] = CommitResult{Entry: got}
				continue
			}
		}
		switch {
		case dfms.Is(r.Err, dfms.Exist):
		case dfms.Is(r.Err, dfms.NotExist), dfms.Is(r.Err, dfms.NotDir):
			e.Parent = fsys.root
		default:
			continue
		}
		e.Name = conflictName(e.Name, time.Now())
		again, at = append(again, e), append(at, i)
	}
	if len(again) == 0 {
		return res, nil
	}
	res2, err := fc.CreateFiles(ctx, again)
	if err == nil && len(res2) != len(again) {
		err = fmt.Errorf("%d results for %d creates", len(res2), len(again))
	}
	if err != nil {
		// Those stay pending and are tried again later; their callers
		// see why, not the name conflict that was worked around.
		for _, i := range at {
			res[i].Err = dfms.E("vfs.materialize", dfms.Other, fmt.Errorf("creating %q under a conflict name: %w", es[i].Name, err))
		}
		return res, nil
	}
	for k, i := range at {
		res[i] = res2[k]
		if res2[k].Err == nil {
			fsys.log.Warn("a file created here got a conflict name: its name was taken, or its directory removed, by another client before the file reached the server",
				"entry", es[i].ID, "name", es[i].Name, "now", again[k].Name, "parent", again[k].Parent)
		}
	}
	return res, nil
}

// Journal records of a pending file (journal.go has the others).
const (
	recCreate  = 'C' // parent, name length; the name follows
	recPerm    = 'P' // mode, uid<<32 | gid
	recATime   = 'A' // unix nanoseconds, 0: the access time set
	recCreated = 'c' // the file was materialized: the records above are done
	recLink    = 'L' // parent, name length; the name follows: a further name
	recUnlink  = 'l' // parent, name length; the name follows: a link's name removed
)

// createRecords are the journal records that create e.
func createRecords(e Entry) []byte {
	b := nameRecord(make([]byte, 0, 2*recordLen+len(e.Name)), e.Parent, e.Name)
	return appendRecord(b, recPerm, int64(e.Mode), int64(e.UID)<<32|int64(e.GID))
}

// nameRecord appends the record that names a pending file dir/name (at
// its create, and at each rename).
func nameRecord(b []byte, dir dfms.EntryID, name string) []byte {
	b = appendRecord(b, recCreate, int64(dir), int64(len(name)))
	return append(b, name...)
}

func appendRecord(b []byte, kind byte, a, c int64) []byte {
	b = append(b, kind)
	b = binary.LittleEndian.AppendUint64(b, uint64(a))
	return binary.LittleEndian.AppendUint64(b, uint64(c))
}

// linkPending gives pending file id the free name dir/name as a further
// name, in memory and in its journal. done false says the caller links
// through the backend: id is not pending (any more), dir is not its
// directory, or the name is taken or unknown.
func (fsys *FS) linkPending(ctx context.Context, id, dir dfms.EntryID, name string) (Entry, bool, error) {
	const op dfms.Op = "vfs.Link"
	p := fsys.pend
	if p == nil {
		return Entry{}, false, nil
	}
	src, ok := fsys.pendingEntry(id)
	if !ok || src.Parent != dir {
		return Entry{}, false, nil
	}
	if err := dfms.ValidName(name); err != nil {
		return Entry{}, true, dfms.E(op, dfms.Invalid, err)
	}
	p.mu.Lock()
	gen := p.gen
	p.mu.Unlock()
	if _, ok := fsys.pendingLookup(dir, name); ok {
		return Entry{}, true, dfms.E(op, dfms.Exist, fmt.Errorf("%q already exists", name))
	}
	if _, err := fsys.lookupEntry(ctx, dir, name); !dfms.Is(err, dfms.NotExist) {
		return Entry{}, false, nil // taken (or unknown): the backend decides
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pf := p.byID[id]
	k := nameKey{dir, name}
	_, taken := p.byName[k]
	if pf == nil || pf.inflight || taken || p.gen != gen || pf.e.Parent != dir {
		return Entry{}, false, nil // it changed meanwhile: through the backend
	}
	if err := pf.j.append(linkRecord(nil, recLink, k)); err != nil {
		return Entry{}, true, journalError(op, err)
	}
	now := time.Now()
	pf.links = append(pf.links, k)
	pf.e.Nlink++
	pf.e.CTime = now
	p.byName[k] = id
	p.dirTimes[dir] = now
	return pf.named(k), true, nil
}

// unlinkPending removes the name dir/name of a pending file that has
// others (links made while it is pending), in memory and in its journal;
// when it is the file's first name, a link's name takes its place. ok
// false says the caller removes the name as any other.
func (fsys *FS) unlinkPending(dir dfms.EntryID, name string) (bool, error) {
	const op dfms.Op = "vfs.Unlink"
	p := fsys.pend
	if p == nil {
		return false, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := nameKey{dir, name}
	id, ok := p.byName[k]
	if !ok {
		return false, nil
	}
	pf := p.byID[id]
	if pf == nil || pf.inflight || len(pf.links) == 0 {
		return false, nil
	}
	var rec []byte
	i := slices.Index(pf.links, k)
	if i < 0 { // its first name: the first link's takes its place
		i = 0
		rec = nameRecord(rec, pf.links[0].dir, pf.links[0].name)
	}
	rec = linkRecord(rec, recUnlink, pf.links[i])
	if err := pf.j.append(rec); err != nil {
		return true, journalError(op, err)
	}
	now := time.Now()
	if k != pf.links[i] {
		pf.e.Parent, pf.e.Name, pf.e.Named = pf.links[i].dir, pf.links[i].name, now
	}
	pf.links = slices.Delete(pf.links, i, i+1)
	pf.e.Nlink--
	pf.e.CTime = now
	delete(p.byName, k)
	p.dirTimes[dir] = now
	return true, nil
}

// linkRecord appends a record of kind recLink or recUnlink of name k.
func linkRecord(b []byte, kind byte, k nameKey) []byte {
	b = appendRecord(b, kind, int64(k.dir), int64(len(k.name)))
	return append(b, k.name...)
}
