package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/dfms/dfms"
)

// openFile is the state shared by every handle of one file in this mount:
// the version its clean content is, and the stage once the file is
// written.
type openFile struct {
	fsys *FS
	id   dfms.EntryID

	// refs (open handles, and path truncations in progress) and done (the
	// file left fsys.open) are guarded by fsys.mu.
	refs int
	done bool

	// mu guards the fields below. It is held during stage I/O and during
	// commits, so a commit sees a stage no write is changing.
	mu      sync.Mutex
	init    bool          // version and size were set at first open
	version int64         // the version of the clean content (0: empty)
	size    int64         // of the content: the version's or the stage's
	reader  VersionReader // of version, opened on first read; nil if staged
	stage   *os.File      // the content, once written or truncated
	dirty   bool          // stage differs from the committed version
	mtime   time.Time     // of the dirty content: last write or explicit utimens
}

// acquire takes a reference on the open state of file id, creating it if
// needed; with trunc the content is truncated to zero bytes.
func (fsys *FS) acquire(ctx context.Context, id dfms.EntryID, trunc bool) (*openFile, error) {
	e, err := fsys.b.GetAttr(ctx, id)
	if err != nil {
		return nil, err
	}
	return fsys.acquireEntry(ctx, e, trunc)
}

// acquireEntry is acquire of an entry just read from the backend.
func (fsys *FS) acquireEntry(ctx context.Context, e Entry, trunc bool) (*openFile, error) {
	const op dfms.Op = "vfs.Open"
	id := e.ID
	switch {
	case !e.Live:
		return nil, dfms.E(op, dfms.NotExist, fmt.Errorf("entry %d was deleted", id))
	case e.Kind == KindDir:
		return nil, dfms.Errorf(op, dfms.IsDir, "is a directory")
	case e.Kind != KindFile:
		return nil, dfms.Errorf(op, dfms.Invalid, "not a regular file")
	}
	fsys.mu.Lock()
	f := fsys.open[id]
	if f == nil {
		f = &openFile{fsys: fsys, id: id}
		fsys.open[id] = f
	}
	f.refs++
	fsys.mu.Unlock()

	f.mu.Lock()
	// Close-to-open: a file nobody here is writing shows the version that
	// is current now.
	if !f.init || (f.stage == nil && !f.dirty && f.version != e.Version) {
		f.init, f.version, f.size, f.reader = true, e.Version, e.Size, nil
	}
	var terr error
	if trunc {
		terr = f.truncateLocked(ctx, 0)
	}
	f.mu.Unlock()
	if terr != nil {
		_ = fsys.release(ctx, f)
		return nil, terr
	}
	return f, nil
}

// release drops a reference; the last one commits dirty content and
// discards the stage.
func (fsys *FS) release(ctx context.Context, f *openFile) error {
	fsys.mu.Lock()
	f.refs--
	last := f.refs == 0
	fsys.mu.Unlock()
	if !last {
		return nil
	}
	f.mu.Lock()
	err := f.commitLocked(ctx)
	f.mu.Unlock()

	fsys.mu.Lock()
	if f.refs > 0 || f.done {
		// Opened again meanwhile (it keeps the stage), or another release
		// finished it.
		fsys.mu.Unlock()
		return err
	}
	f.done = true
	if fsys.open[f.id] == f {
		delete(fsys.open, f.id)
	}
	fsys.mu.Unlock()
	if ferr := f.finish(ctx); err == nil {
		err = ferr
	}
	return err
}

// finish commits what is dirty and drops the stage. A stage that could not
// be committed stays on disk, and is logged.
func (f *openFile) finish(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.commitLocked(ctx)
	if f.stage != nil {
		name := f.stage.Name()
		f.stage.Close()
		if f.dirty {
			f.fsys.log.Error("a written file could not be committed; its data is kept", "entry", f.id, "stage", name, "err", err)
			f.fsys.mu.Lock()
			f.fsys.kept = append(f.fsys.kept, name)
			f.fsys.mu.Unlock()
		} else {
			os.Remove(name)
		}
		f.stage = nil
	}
	f.reader = nil
	return err
}

// overlay shows the staged size and mtime of a file being written.
func (f *openFile) overlay(a *Attr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stage != nil || f.dirty {
		a.Size = f.size
	}
	if f.dirty {
		a.MTime = f.mtime
	}
}

// setMTime records an explicit mtime for the dirty content (utimens
// between the last write and close, as cp -p and tar do).
func (f *openFile) setMTime(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dirty {
		f.mtime = t
	}
}

// readerLocked returns the reader of the clean version.
func (f *openFile) readerLocked(ctx context.Context) (VersionReader, error) {
	if f.reader == nil {
		r, err := f.fsys.b.OpenVersion(ctx, f.id, f.version)
		if err != nil {
			return nil, err
		}
		f.reader = r
	}
	return f.reader, nil
}

func (f *openFile) read(ctx context.Context, p []byte, off int64) (int, error) {
	const op dfms.Op = "vfs.Read"
	f.mu.Lock()
	if off >= f.size {
		f.mu.Unlock()
		return 0, nil
	}
	p = p[:min(int64(len(p)), f.size-off)]
	if f.stage != nil {
		// Stage reads are local and short: under the lock, so that they
		// never see a half-done truncate.
		defer f.mu.Unlock()
		n, err := f.stage.ReadAt(p, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return n, dfms.E(op, dfms.Other, err)
		}
		return n, nil
	}
	if f.version == 0 {
		f.mu.Unlock()
		return 0, nil
	}
	r, err := f.readerLocked(ctx)
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// Outside the lock: the version is immutable, and the kernel's
	// concurrent reads of a large file proceed in parallel.
	n, err := r.ReadAt(ctx, p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	return n, nil
}

// ensureStageLocked copies the first limit bytes (all if limit < 0) of the
// clean content into a new stage, unless there is one.
func (f *openFile) ensureStageLocked(ctx context.Context, limit int64) error {
	const op dfms.Op = "vfs.stage"
	if f.stage != nil {
		return nil
	}
	n := f.size
	if limit >= 0 && limit < n {
		n = limit
	}
	st, err := os.CreateTemp(f.fsys.stageDir, fmt.Sprintf("%d-*", f.id))
	if err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	if err := f.fillLocked(ctx, st, n); err != nil {
		st.Close()
		os.Remove(st.Name())
		return err
	}
	f.stage, f.size, f.reader = st, n, nil
	return nil
}

// fillLocked copies the first n bytes of the clean content to st.
func (f *openFile) fillLocked(ctx context.Context, st *os.File, n int64) error {
	const op dfms.Op = "vfs.stage"
	if n == 0 || f.version == 0 {
		return nil
	}
	r, err := f.readerLocked(ctx)
	if err != nil {
		return err
	}
	buf := make([]byte, min(n, 4<<20))
	for off := int64(0); off < n; {
		m, err := r.ReadAt(ctx, buf[:min(int64(len(buf)), n-off)], off)
		if m > 0 {
			if _, werr := st.WriteAt(buf[:m], off); werr != nil {
				return dfms.E(op, dfms.Other, werr)
			}
			off += int64(m)
		}
		if err != nil && !(errors.Is(err, io.EOF) && off == n) {
			if errors.Is(err, io.EOF) {
				return dfms.E(op, dfms.Corrupt, fmt.Errorf("version %d of entry %d ended at %d bytes, want %d", f.version, f.id, off, n))
			}
			return err
		}
	}
	return nil
}

func (f *openFile) write(ctx context.Context, p []byte, off int64, appendMode bool) (int, error) {
	const op dfms.Op = "vfs.Write"
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ensureStageLocked(ctx, -1); err != nil {
		return 0, err
	}
	if appendMode {
		// The kernel's idea of the end may be stale; the stage's is not.
		off = f.size
	}
	n, err := f.stage.WriteAt(p, off)
	if n > 0 {
		f.size = max(f.size, off+int64(n))
		f.dirty, f.mtime = true, time.Now()
	}
	if err != nil {
		return n, dfms.E(op, dfms.Other, err)
	}
	return n, nil
}

func (f *openFile) truncate(ctx context.Context, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.truncateLocked(ctx, size)
}

func (f *openFile) truncateLocked(ctx context.Context, size int64) error {
	const op dfms.Op = "vfs.Truncate"
	if size == f.size {
		return nil
	}
	if err := f.ensureStageLocked(ctx, size); err != nil {
		return err
	}
	if err := f.stage.Truncate(size); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	f.size, f.dirty, f.mtime = size, true, time.Now()
	return nil
}

// allocate makes room for off+length bytes: like truncate when it grows
// the file, a no-op otherwise. keepSize only checks the arguments.
func (f *openFile) allocate(ctx context.Context, off, length int64, keepSize bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if keepSize || off+length <= f.size {
		return nil
	}
	return f.truncateLocked(ctx, off+length)
}

func (f *openFile) flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commitLocked(ctx)
}

// commitLocked commits the stage as a new version if it is dirty. The data
// of a file deleted meanwhile is dropped, as a local file system drops an
// unlinked file's data.
func (f *openFile) commitLocked(ctx context.Context) error {
	if !f.dirty {
		return nil
	}
	e, err := f.fsys.b.Commit(ctx, f.id, io.NewSectionReader(f.stage, 0, f.size), f.size, f.mtime)
	if err != nil {
		if dfms.Is(err, dfms.NotExist) {
			if cur, gerr := f.fsys.b.GetAttr(ctx, f.id); (gerr == nil && !cur.Live) || dfms.Is(gerr, dfms.NotExist) {
				f.dirty = false
				return nil
			}
		}
		return err
	}
	f.dirty, f.version = false, e.Version
	return nil
}

// Handle is an open file.
type Handle struct {
	fsys       *FS
	f          *openFile     // a file of the tree
	v          VersionReader // a file of the .versions tree
	writable   bool
	appendMode bool

	// released guards against a second Release; only the FUSE adapter's
	// one release call touches it.
	released bool
}

// Open opens ino with open(2) flags. O_TRUNC truncates at once (the
// truncation is committed at close). Files of .versions open read-only.
func (fsys *FS) Open(ctx context.Context, ino Ino, flags int) (*Handle, error) {
	const op dfms.Op = "vfs.Open"
	writable := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	switch ino.tag() {
	case tagVersion:
		if writable || flags&syscall.O_TRUNC != 0 {
			return nil, errReadOnly(op)
		}
		id, n := ino.version()
		r, err := fsys.b.OpenVersion(ctx, id, n)
		if err != nil {
			return nil, err
		}
		return &Handle{fsys: fsys, v: r}, nil
	case tagVersionsDir, tagVersionsFile:
		if writable {
			return nil, errReadOnly(op)
		}
		return nil, dfms.Errorf(op, dfms.IsDir, "is a directory")
	}
	e, err := fsys.b.GetAttr(ctx, ino.entry())
	if err != nil {
		return nil, err
	}
	return fsys.openEntry(ctx, e, flags)
}

// openEntry opens an entry just read from the backend.
func (fsys *FS) openEntry(ctx context.Context, e Entry, flags int) (*Handle, error) {
	writable := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	f, err := fsys.acquireEntry(ctx, e, writable && flags&syscall.O_TRUNC != 0)
	if err != nil {
		return nil, err
	}
	return &Handle{fsys: fsys, f: f, writable: writable, appendMode: flags&syscall.O_APPEND != 0}, nil
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
	e, err := fsys.b.CreateFile(ctx, dir, name, mode, c.UID, c.GID)
	if dfms.Is(err, dfms.Exist) && flags&syscall.O_EXCL == 0 {
		e, err = fsys.b.Lookup(ctx, dir, name)
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
		n, err := h.v.ReadAt(ctx, p, off)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return n, err
	}
	return h.f.read(ctx, p, off)
}

// Write writes p at off (at the end for a handle opened with O_APPEND).
func (h *Handle) Write(ctx context.Context, p []byte, off int64) (int, error) {
	if h.v != nil {
		return 0, errReadOnly("vfs.Write")
	}
	return h.f.write(ctx, p, off, h.appendMode)
}

// Flush is close(2) of a handle: one opened for writing commits the
// file's dirty content as a new version (all of it: the handles of a file
// share one stage). Closing a read-only handle commits nothing, as on NFS.
func (h *Handle) Flush(ctx context.Context) error {
	if h.f == nil || !h.writable {
		return nil
	}
	return h.f.flush(ctx)
}

// Fsync commits the file's dirty content through any handle: a version is
// durable once committed.
func (h *Handle) Fsync(ctx context.Context) error {
	if h.f == nil {
		return nil
	}
	return h.f.flush(ctx)
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
	return h.f.allocate(ctx, off, length, keepSize)
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
	return h.fsys.release(ctx, h.f)
}
