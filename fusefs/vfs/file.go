package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dfms/dfms"
)

// openFile is the state shared by every handle of one file in this mount:
// the version its clean content is, and what was written on top of it.
//
// The content of a file being written is described, not copied: bytes in
// dirty come from the stage (a sparse local file holding exactly what was
// written, at its offsets); other bytes below limit come from the base
// version's chunks; the rest (a file extended by truncate or by a write
// past its end) are zeros. Writing one byte of a large file therefore
// costs one byte of stage, and its commit re-chunks only the neighbourhood
// of the change (rechunk.go). Each change is also appended to a journal
// next to the stage, so that data written but not committed survives a
// crash of the mount and is committed by the next one (journal.go).
type openFile struct {
	fsys *FS
	id   dfms.EntryID

	// refs (open handles, and path truncations in progress), writers
	// (the handles open for writing) and done (the file left fsys.open)
	// are guarded by fsys.mu.
	refs    int
	writers int
	done    bool

	// mu guards the fields below. It is held during stage I/O and during
	// commits, so a commit sees a stage no write is changing.
	mu      sync.Mutex
	init    bool    // version and size were set at first open
	version int64   // lasting ID of the version the content is based on (0: empty)
	base    *view   // of version, loaded on first need
	size    int64   // of the content
	limit   int64   // base bytes at or past limit were truncated away
	dirty   extents // ranges written since the last commit, held by stage
	changed bool    // the content differs from version
	// sealed says the changes were closed (close(2) with write-back): the
	// next change or open commits them first, so that every close makes
	// its own version, as when close commits. sealedBy is the handle
	// whose close sealed them: its own later changes continue them
	// instead (one open's session makes one version: a shell's redirect
	// closes a duplicate of the descriptor before it writes).
	sealed   bool
	sealedBy *Handle
	mtime    time.Time
	// ctime is when the content or mtime last changed here (zero: not
	// since the open state was made); stat shows it until the commit's
	// later ctime replaces it.
	ctime time.Time
	// commitID names the commit of the changes as they are (newCommitID):
	// made at their first commit attempt and journaled before it, so that
	// a retry or the next mount's recovery of that commit is recognised
	// by the backend if the attempt did commit; dropped by any change.
	commitID string
	// requireBase makes the commit fail with Conflict if the file is no
	// longer at version (recovery of a crashed mount's stage).
	requireBase bool
	stage       *os.File // the written bytes, at their offsets; nil until a write
	journal     *journal // the changes since the last commit, for recovery
	lastEnd     int64    // where the last clean read ended (read-ahead)

	pmu sync.Mutex  // guards pre; taken after mu
	pre precutState // chunks cut and uploaded while the file is written (precut.go)

	// committing holds the size and mtime stat shows while a write-back
	// committer holds mu (for the whole upload and commit of its batch),
	// so that stat of a file being committed does not wait for it.
	committing atomic.Pointer[attrSnapshot]
}

// attrSnapshot is what overlay applies to a file's attributes.
type attrSnapshot struct {
	size, alloc  int64
	mtime, ctime time.Time
}

// holdForCommitLocked publishes the attributes stat shows of f while a
// committer holds f.mu; the committer calls releaseCommitLocked before it
// unlocks.
func (f *openFile) holdForCommitLocked() {
	if f.changed {
		f.committing.Store(&attrSnapshot{f.size, f.allocLocked(f.size), f.mtime, f.ctime})
	}
}

func (f *openFile) releaseCommitLocked() { f.committing.Store(nil) }

// acquire takes a reference on the open state of file id, creating it if
// needed, as a writer (whose changes the write-back leaves alone until
// its release) if writer; with trunc the content is truncated to zero
// bytes.
func (fsys *FS) acquire(ctx context.Context, id dfms.EntryID, trunc, writer bool) (*openFile, error) {
	e, err := fsys.getEntry(ctx, id)
	if err != nil {
		return nil, err
	}
	return fsys.acquireEntry(ctx, e, trunc, writer)
}

// acquireEntry is acquire of an entry just read from the backend.
func (fsys *FS) acquireEntry(ctx context.Context, e Entry, trunc, writer bool) (*openFile, error) {
	const op dfms.Op = "vfs.Open"
	id := e.ID
	// A file deleted since the kernel looked it up opens as on a local
	// disk, where an inode lives while it is referenced: a reader whose
	// lookup of NAME came before a rename over NAME reads the replaced
	// file, it does not fail with ENOENT while the name is there all
	// along. What is written to it is dropped at release, as for a file
	// unlinked while open (commitFailedLocked).
	switch {
	case e.Kind == dfms.KindDir:
		return nil, dfms.Errorf(op, dfms.IsDir, "is a directory")
	case e.Kind != dfms.KindFile:
		return nil, dfms.Errorf(op, dfms.Invalid, "not a regular file")
	}
	fsys.mu.Lock()
	f := fsys.open[id]
	if f == nil {
		f = &openFile{fsys: fsys, id: id}
		fsys.open[id] = f
		if fsys.staleLocked(e) {
			// e was read before a commit of this mount that has
			// retired the file's open state since: read it again. f
			// is held meanwhile: an open and release of the file in
			// that moment would otherwise retire it, and this open
			// would then write to a state no one commits.
			f.refs++
			fsys.mu.Unlock()
			if e2, err := fsys.b.GetAttr(ctx, id); err == nil && e2.Kind == dfms.KindFile {
				e = e2
			}
			fsys.mu.Lock()
			f.refs--
		}
	}
	reopened := f.refs == 0 // closed, and its commit not done yet
	f.refs++
	if writer {
		f.writers++
	}
	fsys.mu.Unlock()

	f.mu.Lock()
	if reopened && f.changed && f.soleRefLocked() {
		// Closed by everyone and still queued for write-back, or kept
		// by a failed commit: what was closed is a version of its own,
		// committed before a change builds on it (reads need not wait).
		// Not if another open came in meanwhile and got here first: the
		// changes may be its own (O_TRUNC), not closed yet.
		f.sealed, f.sealedBy = true, nil
	}
	// Close-to-open: a file nobody here is writing shows the version that
	// is current now.
	if !f.init || (!f.changed && e.Version > f.version) {
		f.init, f.version, f.size, f.limit, f.base, f.lastEnd = true, e.Version, e.Size, e.Size, nil, 0
		if f.stage != nil {
			if err := f.resetStageLocked(); err != nil {
				f.mu.Unlock()
				_ = fsys.release(ctx, f, writer)
				return nil, err
			}
		}
	}
	var terr error
	if trunc {
		terr = f.truncateLocked(ctx, 0, nil)
	}
	f.mu.Unlock()
	if terr != nil {
		_ = fsys.release(ctx, f, writer)
		return nil, terr
	}
	return f, nil
}

// newHandle returns a handle of f, which the caller acquired (as a
// writer if flags open it for writing).
func (fsys *FS) newHandle(f *openFile, flags int, keepCache bool) *Handle {
	writable := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	return &Handle{fsys: fsys, f: f, writable: writable, appendMode: flags&syscall.O_APPEND != 0, KeepCache: keepCache}
}

// release drops a reference (of a handle open for writing if writer);
// the last one commits dirty content (or, with write-back, queues it for a
// committer) and discards the stage. With write-back, the last writer's
// release queues the changes too, though readers keep the file open: what
// was closed is committed now, not when the last reader goes (tail -f of
// a file that is being replaced).
func (fsys *FS) release(ctx context.Context, f *openFile, writer bool) error {
	fsys.mu.Lock()
	f.refs--
	if writer {
		f.writers--
	}
	last, lastWriter := f.refs == 0, writer && f.writers == 0
	fsys.mu.Unlock()
	if !last {
		if lastWriter && fsys.wb != nil {
			f.mu.Lock()
			changed := f.changed
			f.mu.Unlock()
			if changed {
				fsys.wb.enqueue(f)
			}
		}
		return nil
	}
	if fsys.wb != nil {
		f.mu.Lock()
		unsettled := f.unsettledLocked()
		f.mu.Unlock()
		if unsettled && fsys.wb.enqueue(f) {
			return nil
		}
	}
	f.mu.Lock()
	err := f.commitLocked(ctx)
	kept := f.unsettledLocked()
	f.mu.Unlock()
	if kept {
		// The commit failed: the file stays open here with its stage, so
		// that later opens build on what was written and later closes (or
		// Close, or the next mount) retry the commit.
		fsys.log.Error("a written file could not be committed at close; it stays staged and is retried", "entry", f.id, "err", err)
		return err
	}
	if rerr := fsys.retire(ctx, f); err == nil {
		err = rerr
	}
	return err
}

// retire takes a committed file out of fsys.open and drops its stage,
// unless it was opened again meanwhile (it keeps the stage) or is retired
// already.
func (fsys *FS) retire(ctx context.Context, f *openFile) error {
	fsys.mu.Lock()
	if f.refs > 0 || f.done {
		fsys.mu.Unlock()
		return nil
	}
	f.done = true
	if fsys.open[f.id] == f {
		delete(fsys.open, f.id)
	}
	fsys.mu.Unlock()
	return f.finish(ctx)
}

// finish commits what is dirty and drops the stage. A stage that could not
// be committed stays on disk with its journal, is logged, and is committed
// by the next mount of this cache directory.
func (f *openFile) finish(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.commitLocked(ctx)
	if f.stage != nil {
		name := f.stage.Name()
		f.stage.Close()
		f.journal.close()
		if f.unsettledLocked() {
			f.fsys.log.Error("a written file could not be committed; its data is kept and the next mount commits it", "entry", f.id, "stage", name, "err", err)
			f.fsys.mu.Lock()
			f.fsys.kept = append(f.fsys.kept, name)
			f.fsys.mu.Unlock()
		} else {
			os.Remove(name)
			f.journal.remove()
		}
		f.stage, f.journal = nil, nil
	}
	f.base = nil
	return err
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// overlay shows the staged size, mtime and ctime of a file being written.
func (f *openFile) overlay(a *Attr, version int64) {
	if s := f.committing.Load(); s != nil {
		a.Size, a.Alloc, a.MTime = s.size, s.alloc, s.mtime
		a.CTime = later(a.CTime, s.ctime)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Also a version newer than a's: committed here after the caller
	// read a (write-back commits while stat runs), or another client's
	// that an open here saw after a was read (its mtime is then not
	// known here: a's stays).
	if f.changed || f.version > version {
		a.Size, a.Alloc = f.size, f.allocLocked(a.Alloc)
		if !f.mtime.IsZero() {
			a.MTime = f.mtime
			a.CTime = later(a.CTime, f.ctime)
		}
	}
}

// allocLocked estimates the bytes the content takes: the base's data
// below limit and what is written (those may overlap: at most the size).
// alloc is the base's, as the backend says, if its manifest is not at hand.
func (f *openFile) allocLocked(alloc int64) int64 {
	if f.base != nil {
		alloc = 0
		for i, c := range f.base.chunks {
			if start := f.base.starts[i]; !c.IsHole() && start < f.limit {
				alloc += min(f.base.end(i), f.limit) - start
			}
		}
	}
	alloc = min(alloc, f.limit)
	for _, e := range f.dirty {
		alloc += e.end - e.off
	}
	return max(0, min(alloc, f.size))
}

// setMTime records an explicit mtime for the dirty content (utimens
// between the last write and close, as cp -p and tar do).
// It reports whether it did: the file has changes, whose commit will
// carry the mtime.
func (f *openFile) setMTime(t time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.changed {
		return false, nil
	}
	if err := f.journal.mtime(t); err != nil {
		return false, journalError("vfs.SetAttr", err)
	}
	f.mtime, f.ctime, f.commitID = t, time.Now(), ""
	return true, nil
}

// baseLocked returns the view of the base version.
func (f *openFile) baseLocked(ctx context.Context) (*view, error) {
	if f.base == nil {
		if f.version == 0 {
			f.base = newView(f.id, VersionInfo{}, dfms.Manifest{})
			return f.base, nil
		}
		info, m, ok := f.fsys.mc.manifest(f.id, f.version)
		if !ok {
			g := f.fsys.mc.begin()
			var err error
			if info, m, err = f.fsys.b.Manifest(ctx, f.id, f.version); err != nil {
				return nil, err
			}
			f.fsys.mc.putManifest(g, f.id, info, m)
		}
		f.base = newView(f.id, info, m)
	}
	return f.base, nil
}

func (f *openFile) read(ctx context.Context, p []byte, off int64) (int, error) {
	f.mu.Lock()
	if off >= f.size {
		f.mu.Unlock()
		return 0, nil
	}
	p = p[:min(int64(len(p)), f.size-off)]
	if f.changed {
		// Reads of content being written are under the lock, so that
		// they never see half a write or truncate.
		defer f.mu.Unlock()
		return f.readContentLocked(ctx, p, off)
	}
	v, err := f.baseLocked(ctx)
	// Sequential, give or take the kernel's own read-ahead, which sends
	// reads of one stream out of order: fetch the next chunks early.
	ahead := 0
	if d := off - f.lastEnd; off == 0 || (d > -seqSlack && d < seqSlack) {
		ahead = f.fsys.readAhead
	}
	f.lastEnd = off + int64(len(p))
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// Outside the lock: the version is immutable, and the kernel's
	// concurrent reads of a large file proceed in parallel.
	n, err := f.fsys.readView(ctx, v, p, off, ahead)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	return n, nil
}

// seqSlack is how far from the end of the previous read a read may start
// and still count as sequential.
const seqSlack = 4 << 20

// readContentLocked reads len(p) bytes of the content at off (all within
// the size): written bytes from the stage, others from the base version
// below limit, zeros past it.
func (f *openFile) readContentLocked(ctx context.Context, p []byte, off int64) (int, error) {
	const op dfms.Op = "vfs.Read"
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		i, in := f.dirty.at(pos)
		if in {
			m := int(min(int64(len(p)-n), f.dirty[i].end-pos))
			k, err := f.stage.ReadAt(p[n:n+m], pos)
			if err != nil && !errors.Is(err, io.EOF) {
				return n, dfms.E(op, dfms.Other, err)
			}
			// A stage shorter than its journal says (a machine crash before
			// writeback) reads as zeros, never as stale buffer bytes.
			clear(p[n+k : n+m])
			n += m
			continue
		}
		end := off + int64(len(p))
		if i < len(f.dirty) {
			end = min(end, f.dirty[i].off)
		}
		seg := p[n : n+int(end-pos)]
		k := 0
		if pos < f.limit {
			v, err := f.baseLocked(ctx)
			if err != nil {
				return n, err
			}
			if lim := min(f.limit, v.size); pos < lim {
				m := int(min(int64(len(seg)), lim-pos))
				if _, err := f.fsys.readView(ctx, v, seg[:m], pos, 0); err != nil && !errors.Is(err, io.EOF) {
					return n, err
				}
				k = m
			}
		}
		clear(seg[k:])
		n += len(seg)
	}
	return n, nil
}

// ensureStageLocked creates the stage and its journal unless they exist.
func (f *openFile) ensureStageLocked() error {
	if f.stage != nil {
		return nil
	}
	return f.createStageLocked(nil)
}

// dropStageLocked closes and removes the stage and its journal.
func (f *openFile) dropStageLocked() {
	if f.stage == nil {
		return
	}
	f.stage.Close()
	os.Remove(f.stage.Name())
	f.journal.close()
	f.journal.remove()
	f.stage, f.journal = nil, nil
}

// createStageLocked creates the stage and its journal, which starts with
// records.
func (f *openFile) createStageLocked(records []byte) error {
	const op dfms.Op = "vfs.stage"
	name := filepath.Join(f.fsys.stageDir, fmt.Sprintf("%d-%d", f.id, time.Now().UnixNano()))
	st, err := os.OpenFile(name+stageSuffix, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	j, err := createJournal(name+journalSuffix, f.id, f.version, f.size, records)
	if err != nil {
		st.Close()
		os.Remove(st.Name())
		return dfms.E(op, dfms.Other, err)
	}
	f.stage, f.journal = st, j
	return nil
}

func (f *openFile) write(ctx context.Context, p []byte, off int64, appendMode bool, by *Handle) (int, error) {
	const op dfms.Op = "vfs.Write"
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unsealLocked(ctx, by)
	if err := f.ensureStageLocked(); err != nil {
		return 0, err
	}
	if appendMode {
		// The kernel's idea of the end may be stale; ours is not.
		off = f.size
	}
	if limit := f.fsys.maxSize; off+int64(len(p)) > limit {
		if off >= limit {
			return 0, tooLarge(op, limit)
		}
		p = p[:limit-off] // as write(2) at a file size limit: what fits
	}
	n, err := f.stage.WriteAt(p, off)
	if n > 0 {
		if jerr := f.journal.write(off, int64(n)); jerr != nil {
			return 0, journalError(op, jerr)
		}
		f.dirty = f.dirty.add(off, off+int64(n))
		f.size = max(f.size, off+int64(n))
		now := time.Now()
		f.changed, f.mtime, f.ctime, f.commitID = true, now, now, ""
		f.notePrefixWriteLocked(off)
	}
	if err != nil {
		return n, dfms.E(op, dfms.Other, err)
	}
	return n, nil
}

// tooLarge is the error of a file grown past limit.
func tooLarge(op dfms.Op, limit int64) error {
	return dfms.Errorf(op, dfms.TooLarge, fmt.Sprintf("files are limited to %d bytes here", limit))
}

// truncate truncates or extends the content to size, through handle by
// (nil: a path or an open(O_TRUNC)).
func (f *openFile) truncate(ctx context.Context, size int64, by *Handle) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.truncateLocked(ctx, size, by)
}

func (f *openFile) truncateLocked(ctx context.Context, size int64, by *Handle) error {
	const op dfms.Op = "vfs.Truncate"
	if size == f.size {
		return nil
	}
	if size > f.fsys.maxSize {
		return tooLarge(op, f.fsys.maxSize)
	}
	f.unsealLocked(ctx, by)
	if err := f.ensureStageLocked(); err != nil {
		return err
	}
	// Recorded first: a truncation the journal lacks must not have
	// happened, not even to the stage's bytes.
	if err := f.journal.truncate(size); err != nil {
		return journalError(op, err)
	}
	if size < f.size {
		f.limit = min(f.limit, size)
		f.dirty = f.dirty.clip(size)
		f.notePrefixWriteLocked(size)
		// Only frees the bytes past size: none of them is read again
		// (they are past dirty), so a failure changes nothing.
		if err := f.stage.Truncate(size); err != nil {
			f.fsys.log.Warn("the stage could not be shortened; its bytes past the size stay unused", "entry", f.id, "err", err)
		}
	}
	now := time.Now()
	f.size, f.changed, f.mtime, f.ctime, f.commitID = size, true, now, now, ""
	return nil
}

// allocate makes room for off+length bytes: like truncate when it grows
// the file, a no-op otherwise. keepSize only checks the arguments.
func (f *openFile) allocate(ctx context.Context, off, length int64, keepSize bool, by *Handle) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if keepSize || off+length <= f.size {
		return nil
	}
	return f.truncateLocked(ctx, off+length, by)
}

func (f *openFile) flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commitLocked(ctx)
}

// flushClose is close(2) without write-back: it commits, unless the
// change is a truncation to nothing (a shell's redirect, or a truncation
// before writes, closes a duplicate of its descriptor before it writes).
// That stays for the writes that follow and the close after them, or for
// the handle's release, so that the session never makes an empty version
// first. It reports whether it left the truncation.
func (f *openFile) flushClose(ctx context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed && f.size == 0 && !f.sealed {
		return true, nil
	}
	return false, f.commitLocked(ctx)
}

// commitLocked commits the content as a new version if it changed: the
// chunks that changed are cut and uploaded, then the manifest committed.
// The data of a file deleted meanwhile is not committed: it is dropped
// with the file's last handle, as a local file system drops an unlinked
// file's data (the handles still open read it until then).
func (f *openFile) commitLocked(ctx context.Context) error {
	if err := f.fsys.materialize(ctx, f.id); err != nil {
		return err
	}
	if !f.changed {
		return nil
	}
	if f.unlinkedHere() {
		f.discardDeletedLocked()
		return nil
	}
	var m dfms.Manifest
	var e Entry
	var err error
	if cc, ok := f.fsys.b.(ChunkCommitter); ok {
		// The last chunks cut (all of an edit's) are stored with the commit.
		var tail []dfms.ChunkData
		if m, err = f.cutLocked(ctx, nil, &tail); err != nil {
			return f.commitFailedLocked(ctx, err)
		}
		var c Commit
		if c, err = f.commitOfLocked(m); err != nil {
			return err
		}
		g := f.fsys.mc.begin()
		var sent int
		e, sent, err = cc.CommitManifestStoring(ctx, c, tail)
		f.fsys.stats.chunksSent.Add(int64(sent))
		f.fsys.committed(g, f.id, e, false, m, err)
	} else {
		if m, err = f.rechunkLocked(ctx); err != nil {
			return f.commitFailedLocked(ctx, err)
		}
		var c Commit
		if c, err = f.commitOfLocked(m); err != nil {
			return err
		}
		g := f.fsys.mc.begin()
		e, err = f.fsys.b.CommitManifest(ctx, c)
		f.fsys.committed(g, f.id, e, false, m, err) // the answer may lack attributes (REST)
	}
	if err != nil {
		return f.commitFailedLocked(ctx, err)
	}
	return f.committedLocked(e, m)
}

// commitOfLocked is the commit of the content, as manifest m. The first
// attempt of a commit of these changes names it (commitID) and journals
// the name before the backend can make the commit, so that whoever tries
// it again (a retry, the next mount after a crash) finds the version it
// made instead of making another.
func (f *openFile) commitOfLocked(m dfms.Manifest) (Commit, error) {
	if f.commitID == "" {
		id := newCommitID()
		if f.journal != nil {
			if err := f.journal.commit(id); err != nil {
				return Commit{}, dfms.E("vfs.commit", dfms.Other, err)
			}
		}
		f.commitID = id
	}
	return Commit{ID: f.id, Manifest: m, Base: f.version, RequireBase: f.requireBase, MTime: f.mtime, CommitID: f.commitID}, nil
}

// afterCommitLocked ends a commit of manifest m that returned e, err.
func (f *openFile) afterCommitLocked(ctx context.Context, e Entry, m dfms.Manifest, err error) error {
	if err != nil {
		return f.commitFailedLocked(ctx, err)
	}
	return f.committedLocked(e, m)
}

// unsettledLocked reports whether the backend lacks something of the
// file: changed content, or the file itself (pending.go).
func (f *openFile) unsettledLocked() bool {
	return f.changed || f.fsys.isPending(f.id)
}

// writingLocked reports whether a handle has the file open for writing
// (the caller holds f.mu).
func (f *openFile) writingLocked() bool {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	return f.writers > 0
}

// idleLocked reports whether no handle has the file open (the caller holds
// f.mu, so no open can start using it meanwhile: acquire takes its
// reference first, then waits for f.mu).
func (f *openFile) idleLocked() bool {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	return f.refs == 0 && !f.done
}

// soleRefLocked reports whether one handle has the file open (the caller's).
func (f *openFile) soleRefLocked() bool {
	f.fsys.mu.Lock()
	defer f.fsys.mu.Unlock()
	return f.refs == 1
}

// closedChangesLocked reports whether f's changes were all closed: a
// writer that has it open did not change it since, so they can be
// committed under it (a later change of its makes a version of its own).
func (f *openFile) closedChangesLocked() bool {
	return f.sealed && f.sealedBy == nil
}

// seal records that handle by of the file was closed (write-back).
func (f *openFile) seal(by *Handle) {
	f.mu.Lock()
	f.sealed, f.sealedBy = f.changed, by
	f.mu.Unlock()
}

// unsealLocked commits changes that were closed, before new ones are
// made through handle by (nil: no handle), unless by closed them: then
// its session goes on, and its changes join them. If the commit fails
// the new changes join them in one later version.
func (f *openFile) unsealLocked(ctx context.Context, by *Handle) {
	if !f.sealed {
		return
	}
	sealedBy := f.sealedBy
	f.sealed, f.sealedBy = false, nil
	if by != nil && by == sealedBy {
		return
	}
	if err := f.commitLocked(ctx); err != nil {
		f.fsys.log.Warn("closed changes could not be committed before new ones; they will be committed together", "entry", f.id, "err", err)
	}
}

// commitFailedLocked handles a commit that failed with err: the data of a
// file deleted meanwhile is dropped (nil), anything else stays staged.
func (f *openFile) commitFailedLocked(ctx context.Context, err error) error {
	if dfms.Is(err, dfms.NotExist) && f.deletedLocked(ctx) {
		f.discardDeletedLocked()
		return nil
	}
	return err
}

// committedLocked makes version e (of manifest m), just committed, the
// file's clean base.
func (f *openFile) committedLocked(e Entry, m dfms.Manifest) error {
	f.version = e.Version
	if !e.MTime.IsZero() {
		f.mtime = e.MTime
	}
	f.fsys.mu.Lock()
	f.fsys.cachedVersion[f.id] = e.Version
	f.fsys.mu.Unlock()
	f.base = newView(f.id, VersionInfo{ID: e.Version, Time: e.MTime}, m)
	f.size, f.limit, f.dirty, f.changed, f.sealed = f.base.size, f.base.size, nil, false, false
	f.commitID, f.requireBase = "", false
	f.pmu.Lock()
	busy := f.pre.busy
	f.pmu.Unlock()
	if !busy && f.idleLocked() {
		// Closed by everyone, so retired next: the stage goes now
		// rather than being emptied first.
		f.dropStageLocked()
		return nil
	}
	return f.resetStageLocked()
}

// unlinkedHere reports whether file f was unlinked here and its removal
// is not made on the backend yet (removals.go): a commit would find it
// deleted.
func (f *openFile) unlinkedHere() bool {
	_, ok := f.fsys.removedEntry(f.id)
	return ok
}

// discardDeletedLocked drops the changes of file f, deleted, once no
// handle holds it: until then they stay, for the handles to read.
func (f *openFile) discardDeletedLocked() {
	f.fsys.mu.Lock()
	held := f.refs > 0 && !f.fsys.closed // at Close no handle reads any more
	f.fsys.mu.Unlock()
	if held {
		return
	}
	f.changed, f.sealed, f.dirty = false, false, nil
	if err := f.resetStageLocked(); err != nil {
		// Its journal stays as it was: the next mount finds the file
		// deleted and drops it.
		f.fsys.log.Warn("the stage of a deleted file could not be emptied", "entry", f.id, "err", err)
	}
}

// deletedLocked reports whether the file was deleted (unlinked while
// open): its data goes, as a local file system drops an unlinked file's.
func (f *openFile) deletedLocked(ctx context.Context) bool {
	cur, err := f.fsys.b.GetAttr(ctx, f.id)
	return (err == nil && !cur.Live) || dfms.Is(err, dfms.NotExist)
}

// resetStageLocked empties the stage and restarts its journal from the
// committed version.
func (f *openFile) resetStageLocked() error {
	if f.stage == nil {
		return nil
	}
	if err := f.stage.Truncate(0); err != nil {
		return dfms.E("vfs.commit", dfms.Other, err)
	}
	return f.journal.reset(f.version, f.size)
}

// Handle is an open file.
type Handle struct {
	fsys       *FS
	f          *openFile // a file of the tree
	v          *view     // a file of the .versions tree
	writable   bool
	appendMode bool
	// KeepCache says the kernel may keep the pages it cached of this file:
	// the version did not change since it cached them, or the file has
	// changes made here, all of which went through its pages.
	KeepCache bool

	// released guards against a second Release; only the FUSE adapter's
	// one release call touches it.
	released bool
	// read says the handle has read (its access time is recorded).
	read atomic.Bool
	// held says the last Flush left a truncation uncommitted (flushClose);
	// Release commits it. Closes of two descriptors of the handle may
	// flush at once.
	held atomic.Bool
}

// Open opens ino with open(2) flags. O_TRUNC truncates at once (the
// truncation is committed at close). Files of .versions open read-only.
func (fsys *FS) Open(ctx context.Context, ino Ino, flags int) (*Handle, error) {
	return fsys.OpenVerified(ctx, ino, flags, nil)
}

// OpenVerified is Open that calls verify, if not nil, with the entry of a
// file of the tree as the server has it, before the open has any effect
// (an O_TRUNC): an error of verify fails the open.
func (fsys *FS) OpenVerified(ctx context.Context, ino Ino, flags int, verify func(Entry) error) (*Handle, error) {
	const op dfms.Op = "vfs.Open"
	writable := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	switch ino.tag() {
	case tagVersion:
		if writable || flags&syscall.O_TRUNC != 0 {
			return nil, errReadOnly(op)
		}
		id, n := ino.version()
		vi, err := fsys.versionNumbered(ctx, id, n)
		if err != nil {
			return nil, err
		}
		info, m, err := fsys.b.Manifest(ctx, id, vi.ID)
		if err != nil {
			return nil, err
		}
		return &Handle{fsys: fsys, v: newView(id, info, m)}, nil
	case tagVersionsDir, tagVersionsFile:
		if writable {
			return nil, errReadOnly(op)
		}
		return nil, dfms.Errorf(op, dfms.IsDir, "is a directory")
	}
	e, err := fsys.openedEntry(ctx, ino.entry())
	if err != nil {
		return nil, err
	}
	if verify != nil {
		if err := verify(e); err != nil {
			return nil, err
		}
	}
	return fsys.openEntry(ctx, e, flags)
}

// openEntry opens an entry just read from the backend.
func (fsys *FS) openEntry(ctx context.Context, e Entry, flags int) (*Handle, error) {
	writable := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	trunc := writable && flags&syscall.O_TRUNC != 0
	f, err := fsys.acquireEntry(ctx, e, trunc, writable)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	written, version := f.changed, f.version
	f.mu.Unlock()
	// The kernel keeps the pages it cached of the file if they are the
	// content this open sees: what was written here (every change made
	// here went through them: the kernel copies a write into its pages
	// before it sends it, and truncates them itself), or else the file's
	// version, if they were read from it. That is f's version, which e
	// may be older than (a commit made here since e was read). Dropping
	// them would not only cost reads again: a write the kernel copied
	// there and has not sent yet, or that is not served yet, would be
	// lost from them, as a read asking for the page again before the
	// write is served here caches it as it was before, and the writer
	// reads back zeros or old bytes where it wrote.
	keep := written
	if !written {
		keep = fsys.keepCache(e.ID, version)
	}
	keep = keep && !trunc
	h := fsys.newHandle(f, flags, keep)
	if a := fsys.attrOf(e); !dfms.RelatimeDue(a.ATime, a.MTime, a.CTime, time.Now()) {
		h.read.Store(true) // read since its last change: no read moves the atime
	}
	return h, nil
}

// Create creates file parent/name and opens it. Without O_EXCL an
// existing file is opened instead (another client created it between the
// kernel's lookup and this call).
func (fsys *FS) Create(ctx context.Context, parent Ino, name string, flags int, mode uint32, c Caller) (Attr, *Handle, error) {
	const op dfms.Op = "vfs.Create"
	dir, err := dirOf(op, parent)
	if err != nil {
		return Attr{}, nil, err
	}
	if err := checkNewName(op, name); err != nil {
		return Attr{}, nil, err
	}
	if a, h, ok, err := fsys.createPending(ctx, dir, name, flags, mode, c); ok {
		return a, h, err
	}
	if err := fsys.flushRemovals(ctx); err != nil {
		return Attr{}, nil, err
	}
	g := fsys.mc.begin()
	e, err := fsys.b.CreateFile(ctx, dir, name, mode, c.UID, c.GID)
	created := err == nil
	if created {
		fsys.mc.created(g, e, false)
	} else {
		fsys.touchName(err, dir, name) // Exist: the cache may not have known the name
	}
	if dfms.Is(err, dfms.Exist) && flags&syscall.O_EXCL == 0 {
		e, err = fsys.lookupEntry(ctx, dir, name)
	}
	if err != nil {
		return Attr{}, nil, err
	}
	h, err := fsys.openEntry(ctx, e, flags)
	if err != nil {
		return Attr{}, nil, err
	}
	return fsys.attrOf(e), h, nil
}

// Read reads at off into p and returns how many bytes it read: fewer than
// len(p) only at the end of the file.
func (h *Handle) Read(ctx context.Context, p []byte, off int64) (int, error) {
	if h.v != nil {
		n, err := h.fsys.readView(ctx, h.v, p, off, h.fsys.readAhead)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return n, err
	}
	n, err := h.f.read(ctx, p, off)
	if err == nil && !h.read.Swap(true) {
		h.fsys.accessed(h.f.id)
	}
	return n, err
}

// Write writes p at off (at the end for a handle opened with O_APPEND).
func (h *Handle) Write(ctx context.Context, p []byte, off int64) (int, error) {
	if h.v != nil {
		return 0, errReadOnly("vfs.Write")
	}
	return h.f.write(ctx, p, off, h.appendMode, h)
}

// Flush is close(2) of a handle: one opened for writing commits the
// file's dirty content as a new version (all of it: the handles of a file
// share one stage). Closing a read-only handle commits nothing, as on NFS.
// With write-back it commits nothing either: the last release queues it.
//
// A handle is one open's session, and makes one version: changes made
// through it after a close of one of its descriptors (the kernel flushes
// at each) join what was closed, rather than making a version of their
// own. Without write-back, a close that finds the file truncated to
// nothing (a shell's redirect closes a duplicate of the descriptor it
// opened with O_TRUNC before it writes) commits nothing; the handle's
// next close, or its release, does.
func (h *Handle) Flush(ctx context.Context) error {
	if h.f == nil || !h.writable {
		return nil
	}
	if h.fsys.wb != nil {
		h.f.seal(h) // the last release queues the commit
		return nil
	}
	held, err := h.f.flushClose(ctx)
	h.held.Store(held)
	return err
}

// Fsync commits the file's dirty content through any handle: a version is
// durable once committed. The namespace changes made before it (the
// file's creation, a rename) are made durable too.
func (h *Handle) Fsync(ctx context.Context) error {
	if h.f != nil {
		if err := h.f.flush(ctx); err != nil {
			return err
		}
	}
	// The namespace changes acknowledged before, as on a local disk
	// whose fsync commits the journal: deferred unlinks and creates too.
	if err := h.fsys.flushRemovals(ctx); err != nil {
		return err
	}
	if err := h.fsys.materializeAll(ctx); err != nil {
		return err
	}
	return h.fsys.syncBackend(ctx)
}

// Seek answers lseek(2)'s SEEK_DATA (hole false) and SEEK_HOLE (hole
// true) at off: the first offset at or after off that holds data, or that
// is in a hole (the end of the file counts as one). Holes are the
// version's and what nobody wrote here (a file extended by truncate or by
// a write past its end). ok is false where Linux answers ENXIO: off at or
// past the end, or no data at or after off.
func (h *Handle) Seek(ctx context.Context, off int64, hole bool) (int64, bool, error) {
	if h.v != nil {
		pos, ok := seekIn(h.v, nil, h.v.size, h.v.size, off, hole)
		return pos, ok, nil
	}
	f := h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if off < 0 || off >= f.size {
		return 0, false, nil
	}
	v, err := f.baseLocked(ctx)
	if err != nil {
		return 0, false, err
	}
	pos, ok := seekIn(v, f.dirty, min(f.limit, v.size), f.size, off, hole)
	return pos, ok, nil
}

// Allocate is fallocate(2) without flags (extend the file to off+length
// if shorter) or with FALLOC_FL_KEEP_SIZE (a no-op: there is no space to
// reserve).
func (h *Handle) Allocate(ctx context.Context, off, length int64, keepSize bool) error {
	if h.f == nil {
		return errReadOnly("vfs.Allocate")
	}
	if off < 0 || length <= 0 {
		return dfms.Errorf("vfs.Allocate", dfms.Invalid, "bad range")
	}
	return h.f.allocate(ctx, off, length, keepSize, h)
}

// Release closes the handle. The last handle of a file commits what is
// still dirty; an error there has no caller to go to but is returned for
// logging.
func (h *Handle) Release(ctx context.Context) error {
	if h.released || h.f == nil {
		h.released = true
		return nil
	}
	h.released = true
	h.f.mu.Lock()
	if h.f.sealedBy == h {
		// Its session is over: a later open's changes do not join it.
		h.f.sealedBy = nil
	}
	h.f.mu.Unlock()
	if h.held.Load() {
		// What its last close left: committed now, as that close would
		// have, even if other handles keep the file open.
		if err := h.f.flush(ctx); err != nil {
			_ = h.fsys.release(ctx, h.f, h.writable)
			return err
		}
	}
	return h.fsys.release(ctx, h.f, h.writable)
}
