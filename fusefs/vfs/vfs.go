package vfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
)

// Options configures an FS.
type Options struct {
	// CacheDir holds the stages of files being written (in stage/) and
	// the chunk cache (in chunks/). Required. One mount at a time uses a
	// cache directory: stages a crashed mount left there are committed by
	// the next one.
	CacheDir string
	// CacheSize bounds the on-disk chunk cache in bytes; 0 turns it off
	// (the in-process backend, whose chunks are local already).
	CacheSize int64
	// MemCacheSize bounds the in-memory chunk cache (default 64 MiB).
	MemCacheSize int64
	// ReadAhead is how many chunks a sequential read fetches ahead
	// (default 8; with chunks of 1 MiB on average, 8 MiB).
	ReadAhead int
	// Log receives what cannot be returned to a caller (a commit that
	// failed at release). Nil: discard.
	Log *slog.Logger
	// WriteBack commits closed files in the background (writeback.go):
	// close(2) returns without waiting for the server, fsync(2) still
	// waits. Off, the last close of a changed file commits it.
	WriteBack bool
	// MaxFileSize is the largest a file may grow here (0:
	// DefaultMaxFileSize): a truncate, fallocate or write past it fails
	// with TooLarge (EFBIG), as at a local file system's limit.
	MaxFileSize int64
}

// DefaultMaxFileSize is the default Options.MaxFileSize, 16 TiB as on
// ext4. A commit lists a file's chunks, so the limit also bounds what
// one commit holds in memory (about 4 million chunk references).
const DefaultMaxFileSize = 16 << 40

// Stats counts what the FS did, for tests and metrics.
type Stats struct {
	ChunksFetched int64 // chunks fetched from the backend (cache misses)
	ChunksCut     int64 // chunks cut by commits
	ChunksSent    int64 // chunks uploaded by commits
}

type stats struct {
	chunksCut, chunksSent atomic.Int64
}

// FS is the file system of one owner over one Backend. It is safe for
// concurrent use.
type FS struct {
	access    accesses // reads' access times to send (atime.go)
	b         Backend
	root      dfms.EntryID
	stageDir  string
	lock      *os.File // flock'ed: one mount per cache directory
	log       *slog.Logger
	maxSize   int64 // Options.MaxFileSize
	cache     *chunkCache
	readAhead int
	stats     stats
	bufs      sync.Pool // chunking buffers

	paramsOnce sync.Mutex
	chunkP     chunking.Params
	wb         *writeBack     // nil without Options.WriteBack
	workers    sync.WaitGroup // pre-cut workers (Close waits for them)

	// watchMu guards closing and the start of a Watch; Close ends every
	// Watch (watchStop) and waits for it (watching) before it tears down.
	watchMu   sync.Mutex
	closing   bool
	watchStop chan struct{}
	watching  sync.WaitGroup

	// mu guards open and kept. Lock order: an openFile's mu may be held
	// while taking mu, never the reverse.
	mu    sync.Mutex
	open  map[dfms.EntryID]*openFile
	kept  []string // stages left on disk because their commit failed
	aside []string // stages set aside because their recovery killed a mount (journal.go)
	// closed is set by Close: no handle reads or writes any more, whatever
	// releases the kernel has not sent yet.
	closed bool
	// cachedVersion is, per file, the version whose pages the kernel may
	// hold from an earlier open (KeepCache).
	cachedVersion map[dfms.EntryID]int64
	// mc caches entries while the change feed is followed (metacache.go).
	mc *metaCache
	// gone holds the files this mount deleted or replaced lately
	// (stale.go).
	gone goneHere
	// pend holds the files created here that the backend does not know
	// yet (pending.go); nil if the backend cannot create them later.
	pend *pendingFiles
	// rm holds the files unlinked here that the backend has not trashed
	// yet (removals.go); nil if it cannot trash them later.
	rm *removals
}

// trustedBackend is implemented by backends that verify the chunks they
// return (the in-process one), so the FS does not hash them again.
type trustedBackend interface{ VerifiesChunks() bool }

// New returns the FS of b's owner. Stages a previous mount of the same
// cache directory left behind are committed first; one that cannot be is
// kept and logged, and New goes on.
func New(ctx context.Context, b Backend, opts Options) (*FS, error) {
	const op dfms.Op = "vfs.New"
	if opts.CacheDir == "" {
		return nil, dfms.Errorf(op, dfms.Invalid, "no cache directory")
	}
	root, err := b.Root(ctx)
	if err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	dir := filepath.Join(opts.CacheDir, "stage")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.CacheDir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, dfms.E(op, dfms.Exist, fmt.Errorf("cache directory %s is in use by another mount", opts.CacheDir))
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var disk *diskCache
	if opts.CacheSize > 0 {
		if disk, err = openDiskCache(filepath.Join(opts.CacheDir, "chunks"), opts.CacheSize); err != nil {
			lock.Close()
			return nil, dfms.E(op, dfms.Other, err)
		}
	}
	if opts.MemCacheSize <= 0 {
		opts.MemCacheSize = 64 << 20
	}
	if opts.ReadAhead <= 0 {
		opts.ReadAhead = 8
	}
	tb, ok := b.(trustedBackend)
	fsys := &FS{b: b, root: root.ID, watchStop: make(chan struct{}), stageDir: dir, lock: lock, log: log, open: map[dfms.EntryID]*openFile{}, cachedVersion: map[dfms.EntryID]int64{}, mc: newMetaCache(),
		cache: newChunkCache(opts.MemCacheSize, disk, ok && tb.VerifiesChunks(), opts.ReadAhead), readAhead: opts.ReadAhead,
		pend: newPendingFiles(b), maxSize: opts.MaxFileSize}
	fsys.mc.keepRoot(root)
	if fsys.maxSize <= 0 {
		fsys.maxSize = DefaultMaxFileSize
	}
	// The unlinks a crashed mount logged first: every create and write its
	// journals hold that is still to be made came after them (an unlink of
	// a file created here creates it first), and the data of a file
	// unlinked then is not committed.
	if fsys.rm, err = fsys.openRemovals(ctx); err != nil {
		log.Error("files unlinked before the last unmount could not be trashed yet; unlinks are made one by one until the next mount", "err", err)
	}
	if err := fsys.recoverStages(ctx); err != nil {
		log.Error("some staged data of an earlier mount is not committed yet", "err", err)
	}
	if opts.WriteBack {
		fsys.wb = newWriteBack(fsys)
	}
	return fsys, nil
}

// Stats returns what the FS did so far.
func (fsys *FS) Stats() Stats {
	return Stats{ChunksFetched: fsys.cache.fetched.Load(), ChunksCut: fsys.stats.chunksCut.Load(), ChunksSent: fsys.stats.chunksSent.Load()}
}

// params returns the server's chunking parameters, asked once.
func (fsys *FS) params(ctx context.Context) (chunking.Params, error) {
	fsys.paramsOnce.Lock()
	defer fsys.paramsOnce.Unlock()
	if fsys.chunkP == (chunking.Params{}) {
		p, err := fsys.b.Chunking(ctx)
		if err != nil {
			return p, err
		}
		fsys.chunkP = p
	}
	return fsys.chunkP, nil
}

func (fsys *FS) chunkBuf(n int) []byte {
	if b, ok := fsys.bufs.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

func (fsys *FS) putChunkBuf(b []byte) { fsys.bufs.Put(&b) }

// Root returns the inode number of the root directory.
func (fsys *FS) Root() Ino { return Ino(fsys.root) }

// Close commits what is still dirty (files left open when the mount went
// away) and releases the cache directory. A stage that could not be
// committed stays there, and the error says where; the next mount of the
// directory commits it.
func (fsys *FS) Close(ctx context.Context) error {
	fsys.watchMu.Lock()
	if !fsys.closing {
		fsys.closing = true
		close(fsys.watchStop)
	}
	fsys.watchMu.Unlock()
	fsys.watching.Wait() // the change feed's reader is done with the backend
	if fsys.wb != nil {
		fsys.wb.close()
	}
	defer fsys.workers.Wait() // uploads of pre-cut chunks still in flight
	fsys.closeAccesses(ctx)
	var errs []error
	if err := fsys.closeRemovals(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := fsys.materializeAll(ctx); err != nil {
		errs = append(errs, err)
	}
	fsys.mu.Lock()
	fsys.closed = true
	var left []*openFile
	for id, f := range fsys.open {
		left = append(left, f)
		delete(fsys.open, id)
	}
	fsys.mu.Unlock()
	for _, f := range left {
		if err := f.finish(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := fsys.syncBackend(ctx); err != nil {
		errs = append(errs, err)
	}
	fsys.mu.Lock()
	kept, aside := fsys.kept, fsys.aside
	fsys.mu.Unlock()
	defer fsys.lock.Close()
	if len(kept) > 0 {
		errs = append(errs, fmt.Errorf("uncommitted data is left in %s; the next mount commits it", strings.Join(kept, ", ")))
	}
	if len(aside) > 0 {
		errs = append(errs, fmt.Errorf("staged data whose recovery killed a mount is set aside, not committed: %s", strings.Join(aside, ", ")))
	}
	if len(errs) > 0 {
		return dfms.E("vfs.Close", dfms.Other, errors.Join(errs...))
	}
	return nil
}

// Sync commits every file of this mount whose content changed: the ones
// closed and waiting for write-back, and the ones still open (as fsync of
// each would), and makes the namespace changes made so far durable. It
// fails if one of them cannot be committed (that one stays staged and is
// retried).
func (fsys *FS) Sync(ctx context.Context) error {
	fsys.mu.Lock()
	files := make([]*openFile, 0, len(fsys.open))
	for _, f := range fsys.open {
		files = append(files, f)
	}
	fsys.mu.Unlock()
	fsys.flushAccesses(ctx)
	var errs []error
	if err := fsys.flushRemovals(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := fsys.materializeAll(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, f := range files {
		f.mu.Lock()
		if err := f.commitLocked(ctx); err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", f.id, err))
		}
		f.mu.Unlock()
	}
	if err := fsys.syncBackend(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return dfms.E("vfs.Sync", dfms.Other, errors.Join(errs...))
	}
	return nil
}

// syncBackend makes the backend's acknowledged namespace changes durable
// (Syncer).
func (fsys *FS) syncBackend(ctx context.Context) error {
	if s, ok := fsys.b.(Syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}

// Attr is what stat shows of an inode.
type Attr struct {
	Ino   Ino
	Mode  uint32 // file type bits (syscall.S_IFDIR, …) and permission bits
	Nlink uint32
	Size  int64
	// Alloc is how many bytes the content takes (st_blocks): a file's size
	// less its holes, counting what is written here and not committed yet;
	// the size for anything else.
	Alloc int64
	UID   uint32
	GID   uint32
	MTime time.Time
	CTime time.Time
	ATime time.Time
	Rdev  uint32 // a device's number
}

// IsDir reports whether a is a directory.
func (a Attr) IsDir() bool { return a.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// DirEntry is one name of a directory listing, with the attribute of
// what it names (so that readdirplus needs no lookups).
type DirEntry struct {
	Name string
	Attr Attr
}

// typeBits are the file type bits of st_mode for kind k.
func typeBits(k dfms.EntryKind) uint32 {
	switch k {
	case dfms.KindDir:
		return syscall.S_IFDIR
	case dfms.KindSymlink:
		return syscall.S_IFLNK
	case dfms.KindFIFO:
		return syscall.S_IFIFO
	case dfms.KindSocket:
		return syscall.S_IFSOCK
	case dfms.KindCharDev:
		return syscall.S_IFCHR
	case dfms.KindBlockDev:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}

// specialKind is the kind of a special file of type bits t (S_IFIFO, …).
func specialKind(t uint32) (dfms.EntryKind, bool) {
	for k := dfms.KindFIFO; k <= dfms.KindBlockDev; k++ {
		if typeBits(k) == t {
			return k, true
		}
	}
	return 0, false
}

func (fsys *FS) attrOf(e Entry) Attr {
	a := Attr{Ino: Ino(e.ID), Mode: typeBits(e.Kind) | e.Mode&0o7777, Nlink: e.Nlink, Size: e.Size, Alloc: e.Size,
		UID: e.UID, GID: e.GID, MTime: e.MTime, CTime: e.CTime, ATime: e.ATime, Rdev: e.Rdev}
	if e.Kind == dfms.KindFile {
		a.Alloc = min(e.DataSize, e.Size)
	}
	if a.ATime.IsZero() {
		a.ATime = a.MTime
	}
	switch {
	case !e.Live:
		a.Nlink = 0
	case a.Nlink == 0 && e.Kind == dfms.KindDir:
		a.Nlink = 2
	case a.Nlink == 0:
		a.Nlink = 1
	}
	if e.Kind == dfms.KindDir {
		fsys.pendingDirTimes(&a, e)
	}
	if e.Kind == dfms.KindFile {
		fsys.mu.Lock()
		f := fsys.open[e.ID]
		fsys.mu.Unlock()
		if f != nil {
			f.overlay(&a, e.Version)
		}
		if t, ok := fsys.readAccessTime(e.ID); ok && t.After(a.ATime) {
			a.ATime = t // a read's, not sent yet (atime.go)
		}
	}
	return a
}

// versionsDirAttr is the attribute of a read-only directory of the
// .versions tree, with the times of the entry it shows.
func versionsDirAttr(ino Ino, e Entry) Attr {
	return Attr{Ino: ino, Mode: syscall.S_IFDIR | 0o555, Nlink: 1, UID: e.UID, GID: e.GID, MTime: e.MTime, CTime: e.CTime}
}

func errReadOnly(op dfms.Op) error {
	return dfms.Errorf(op, dfms.ReadOnly, "the .versions tree is read-only")
}

// dirOf returns the directory entry id of a regular directory inode; a
// .versions inode fails with ReadOnly (op changes the tree).
func dirOf(op dfms.Op, ino Ino) (dfms.EntryID, error) {
	if ino.tag() != tagEntry {
		return 0, errReadOnly(op)
	}
	return ino.entry(), nil
}

// removable returns the directory of parent/name, which an unlink or
// rmdir removes: the version history, parent in it or name for it, is
// read-only.
func removable(op dfms.Op, parent Ino, name string) (dfms.EntryID, error) {
	dir, err := dirOf(op, parent)
	if err == nil && name == dfms.VersionsDir {
		err = errReadOnly(op)
	}
	return dir, err
}

// Lookup returns the inode parent/name.
func (fsys *FS) Lookup(ctx context.Context, parent Ino, name string) (Attr, error) {
	const op dfms.Op = "vfs.Lookup"
	if err := checkName(op, name); err != nil {
		return Attr{}, err
	}
	switch parent.tag() {
	case tagEntry:
		if name == dfms.VersionsDir {
			d, err := fsys.getEntry(ctx, parent.entry())
			if err != nil {
				return Attr{}, err
			}
			if d.Kind != dfms.KindDir {
				return Attr{}, dfms.Errorf(op, dfms.NotDir, "not a directory")
			}
			return versionsDirAttr(versionsDirIno(d.ID), d), nil
		}
		e, err := fsys.lookupEntry(ctx, parent.entry(), name)
		if err != nil {
			return Attr{}, err
		}
		return fsys.freshAttr(ctx, e), nil
	case tagVersionsDir:
		e, err := fsys.lookupEntry(ctx, parent.entry(), name)
		if err != nil {
			return Attr{}, err
		}
		if e.Kind != dfms.KindFile {
			return Attr{}, dfms.E(op, dfms.NotExist, fmt.Errorf("%q is not a file: it has no versions", name))
		}
		return versionsDirAttr(versionsFileIno(e.ID), e), nil
	case tagVersionsFile:
		n, ok := parseVersionName(name)
		if !ok {
			return Attr{}, dfms.E(op, dfms.NotExist, fmt.Errorf("no version %q", name))
		}
		return fsys.versionAttr(ctx, parent.entry(), n)
	}
	return Attr{}, dfms.Errorf(op, dfms.NotDir, "not a directory")
}

// versionAttr returns the attribute of version n of file id.
func (fsys *FS) versionAttr(ctx context.Context, id dfms.EntryID, n int64) (Attr, error) {
	const op dfms.Op = "vfs.versionAttr"
	ino, ok := versionIno(id, n)
	if !ok {
		return Attr{}, dfms.E(op, dfms.NotExist, fmt.Errorf("version %d of entry %d is out of the mount's range", n, id))
	}
	e, err := fsys.getEntry(ctx, id)
	if err != nil {
		return Attr{}, err
	}
	v, err := fsys.versionNumbered(ctx, id, n)
	if err != nil {
		return Attr{}, err
	}
	return versionAttrOf(ino, e, v), nil
}

// versionNumbered returns the version that is number n of file id now.
func (fsys *FS) versionNumbered(ctx context.Context, id dfms.EntryID, n int64) (VersionInfo, error) {
	vs, err := fsys.versions(ctx, id)
	if err != nil {
		return VersionInfo{}, err
	}
	for _, v := range vs {
		if v.Number == n {
			return v, nil
		}
	}
	return VersionInfo{}, dfms.E("vfs.version", dfms.NotExist, fmt.Errorf("no version %d", n))
}

// versions lists the versions of file id: none while it is pending.
func (fsys *FS) versions(ctx context.Context, id dfms.EntryID) ([]VersionInfo, error) {
	if fsys.isPending(id) {
		return nil, nil
	}
	return fsys.b.Versions(ctx, id)
}

// versionAttrOf is the attribute of version v of file e: read-only, with
// the version's size and time.
func versionAttrOf(ino Ino, e Entry, v VersionInfo) Attr {
	return Attr{Ino: ino, Mode: syscall.S_IFREG | 0o444, Nlink: 1, Size: v.Size, Alloc: v.Size, UID: e.UID, GID: e.GID, MTime: v.Time, CTime: v.Time}
}

// GetAttr returns the attribute of an inode. It works on unlinked files
// that are still open (Nlink 0), and shows the staged size and mtime of a
// file being written.
func (fsys *FS) GetAttr(ctx context.Context, ino Ino) (Attr, error) {
	switch ino.tag() {
	case tagVersionsDir, tagVersionsFile:
		e, err := fsys.getEntry(ctx, ino.entry())
		if err != nil {
			return Attr{}, err
		}
		return versionsDirAttr(ino, e), nil
	case tagVersion:
		id, n := ino.version()
		return fsys.versionAttr(ctx, id, n)
	}
	e, err := fsys.getEntry(ctx, ino.entry())
	if err != nil {
		return Attr{}, err
	}
	return fsys.freshAttr(ctx, e), nil
}

// staleLocked reports whether entry e, read from the backend, is older
// than a version this mount committed since. The caller holds fsys.mu.
func (fsys *FS) staleLocked(e Entry) bool {
	v, ok := fsys.cachedVersion[e.ID]
	return ok && v > e.Version
}

// freshAttr is attrOf(e) for an entry just read from the backend. If this
// mount committed a newer version of it meanwhile (write-back commits run
// beside stat) and the file's open state is gone, e is stale: read again.
//
// e may also be a file unlinked here (removedEntry: the entry as it was
// when unlinked), and a write-back commit that had passed its unlinked
// check before the unlink still makes a newer version. The backend, read
// again, has the file live until the removal is made: it is shown
// unlinked all the same.
func (fsys *FS) freshAttr(ctx context.Context, e Entry) Attr {
	a := fsys.attrOf(e)
	if e.Kind != dfms.KindFile {
		return a
	}
	fsys.mu.Lock()
	stale := fsys.staleLocked(e)
	fsys.mu.Unlock()
	if stale {
		// Asked first: a removal made between the two reads shows in
		// the backend's answer instead.
		re, removed := fsys.removedEntry(e.ID)
		if e2, err := fsys.b.GetAttr(ctx, e.ID); err == nil {
			if removed {
				e2.Live, e2.CTime = false, later(e2.CTime, re.CTime)
			}
			a = fsys.attrOf(e2)
		}
	}
	return a
}

// ReadDir lists a directory, without "." and "..". A directory's
// .versions is not listed.
func (fsys *FS) ReadDir(ctx context.Context, dir Ino) ([]DirEntry, error) {
	const op dfms.Op = "vfs.ReadDir"
	switch dir.tag() {
	case tagEntry, tagVersionsDir:
		// Pending files first: one materialized meanwhile is then in
		// the backend's list.
		pending := fsys.pendingIn(dir.entry())
		removed := fsys.removedIn(dir.entry())
		g := fsys.mc.begin()
		es, err := fsys.b.ReadDir(ctx, dir.entry())
		if err != nil {
			return nil, err
		}
		fsys.mc.listed(g, dir.entry(), es)
		// Unlinked here before the read or during it.
		for id := range fsys.removedIn(dir.entry()) {
			removed[id] = true
		}
		es = slices.DeleteFunc(es, func(e Entry) bool { return removed[e.ID] })
		if len(pending) > 0 {
			listed := make(map[dfms.EntryID]bool, len(es))
			for _, e := range es {
				listed[e.ID] = true
			}
			for _, e := range pending {
				if !listed[e.ID] {
					es = append(es, e)
				}
			}
		}
		out := make([]DirEntry, 0, len(es))
		for _, e := range es {
			switch {
			case e.Name == dfms.VersionsDir:
				continue // shadowed by the virtual directory
			case dir.tag() == tagEntry:
				out = append(out, DirEntry{Name: e.Name, Attr: fsys.freshAttr(ctx, e)})
			case e.Kind == dfms.KindFile && e.Version > 0:
				out = append(out, DirEntry{Name: e.Name, Attr: versionsDirAttr(versionsFileIno(e.ID), e)})
			}
		}
		return out, nil
	case tagVersionsFile:
		e, err := fsys.getEntry(ctx, dir.entry())
		if err != nil {
			return nil, err
		}
		vs, err := fsys.versions(ctx, dir.entry())
		if err != nil {
			return nil, err
		}
		out := make([]DirEntry, 0, len(vs))
		for _, v := range vs {
			if ino, ok := versionIno(dir.entry(), v.Number); ok {
				out = append(out, DirEntry{Name: versionName(v.Number), Attr: versionAttrOf(ino, e, v)})
			}
		}
		return out, nil
	}
	return nil, dfms.Errorf(op, dfms.NotDir, "not a directory")
}

// Caller is who asks, for the ownership of what they create.
type Caller struct {
	UID uint32
	GID uint32
}

// checkName rejects names longer than NAME_MAX with ENAMETOOLONG, which
// no dfms kind expresses.
func checkName(op dfms.Op, name string) error {
	if len(name) > dfms.MaxNameLen {
		return dfms.E(op, dfms.Other, fmt.Errorf("name of %d bytes: %w", len(name), syscall.ENAMETOOLONG))
	}
	return nil
}

// checkNewName rejects creating the reserved name or a too long one.
func checkNewName(op dfms.Op, name string) error {
	if err := checkName(op, name); err != nil {
		return err
	}
	if name == dfms.VersionsDir {
		return dfms.E(op, dfms.Exist, fmt.Errorf("%q is reserved for version history", name))
	}
	return nil
}

// Mkdir creates directory parent/name.
func (fsys *FS) Mkdir(ctx context.Context, parent Ino, name string, mode uint32, c Caller) (Attr, error) {
	return fsys.makeNode(ctx, "vfs.Mkdir", parent, name, func(dir dfms.EntryID) (Entry, error) {
		return fsys.b.Mkdir(ctx, dir, name, mode, c.UID, c.GID)
	})
}

// Symlink creates symlink parent/name pointing at target.
func (fsys *FS) Symlink(ctx context.Context, parent Ino, name, target string, c Caller) (Attr, error) {
	return fsys.makeNode(ctx, "vfs.Symlink", parent, name, func(dir dfms.EntryID) (Entry, error) {
		return fsys.b.Symlink(ctx, dir, name, target, c.UID, c.GID)
	})
}

// Mknod creates the special file parent/name: mode holds its type
// (syscall.S_IFIFO, S_IFSOCK, S_IFCHR or S_IFBLK) and permission bits, and
// rdev a device's number. A regular file (S_IFREG, or no type) is created
// empty as an exclusive create would; other types fail with Invalid.
func (fsys *FS) Mknod(ctx context.Context, parent Ino, name string, mode, rdev uint32, c Caller) (Attr, error) {
	const op dfms.Op = "vfs.Mknod"
	if t := mode & syscall.S_IFMT; t == 0 || t == syscall.S_IFREG {
		a, h, err := fsys.Create(ctx, parent, name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode&0o7777, c)
		if err != nil {
			return a, err
		}
		return a, h.Release(ctx)
	}
	kind, ok := specialKind(mode & syscall.S_IFMT)
	if !ok {
		return Attr{}, dfms.Errorf(op, dfms.Invalid, "mknod makes files, FIFOs, sockets and devices")
	}
	if !kind.Device() {
		rdev = 0
	}
	return fsys.makeNode(ctx, op, parent, name, func(dir dfms.EntryID) (Entry, error) {
		return fsys.b.Mknod(ctx, dir, name, kind, mode&0o7777, rdev, c.UID, c.GID)
	})
}

// makeNode creates the directory, symlink or special file parent/name that make makes
// on the backend, once the name is known free here and the removals
// that might free it are sent.
func (fsys *FS) makeNode(ctx context.Context, op dfms.Op, parent Ino, name string, make func(dir dfms.EntryID) (Entry, error)) (Attr, error) {
	dir, err := dirOf(op, parent)
	if err != nil {
		return Attr{}, err
	}
	if err := checkNewName(op, name); err != nil {
		return Attr{}, err
	}
	if _, ok := fsys.pendingLookup(dir, name); ok {
		return Attr{}, dfms.E(op, dfms.Exist, fmt.Errorf("%q already exists", name))
	}
	if err := fsys.flushRemovals(ctx); err != nil {
		return Attr{}, err
	}
	g := fsys.mc.begin()
	e, err := make(dir)
	if err != nil {
		fsys.touchName(err, dir, name) // Exist: the cache did not know the name
		return Attr{}, err
	}
	fsys.mc.created(g, e, false)
	return fsys.attrOf(e), nil
}

// Link gives the file ino the further name newParent/newName, as
// link(2): a hard link. A directory fails with IsDir (EPERM for link(2)).
func (fsys *FS) Link(ctx context.Context, ino, newParent Ino, newName string) (Attr, error) {
	const op dfms.Op = "vfs.Link"
	if ino.tag() != tagEntry {
		return Attr{}, errReadOnly(op)
	}
	id := ino.entry()
	if dir, err := dirOf(op, newParent); err == nil && checkNewName(op, newName) == nil {
		// A file not on the server yet gets the name here (git's
		// link of each object it writes).
		if e, done, err := fsys.linkPending(ctx, id, dir, newName); done {
			if err != nil {
				return Attr{}, err
			}
			return fsys.attrOf(e), nil
		}
	}
	// The file must be on the server for the server to name it.
	if err := fsys.materialize(ctx, id); err != nil {
		return Attr{}, err
	}
	var out Entry
	a, err := fsys.makeNode(ctx, op, newParent, newName, func(dir dfms.EntryID) (Entry, error) {
		e, err := fsys.b.Link(ctx, id, dir, newName)
		out = e
		return e, err
	})
	if err == nil {
		fsys.mc.drop(id) // its link count and ctime moved
		a = fsys.attrOf(out)
	}
	return a, err
}

// Readlink returns a symlink's target.
func (fsys *FS) Readlink(ctx context.Context, ino Ino) (string, error) {
	if ino.tag() != tagEntry || fsys.isPending(ino.entry()) {
		return "", dfms.Errorf("vfs.Readlink", dfms.Invalid, "not a symlink")
	}
	return fsys.b.Readlink(ctx, ino.entry())
}

// Unlink removes the file or symlink parent/name (to the trash).
func (fsys *FS) Unlink(ctx context.Context, parent Ino, name string) (err error) {
	const op dfms.Op = "vfs.Unlink"
	dir, err := removable(op, parent, name)
	if err != nil {
		return err
	}
	// One of the names of a file not on the server yet, which has more.
	if ok, err := fsys.unlinkPending(dir, name); ok {
		return err
	}
	var victim dfms.EntryID // the file unlinked, if known
	defer func() {
		if err == nil && victim != 0 {
			fsys.gone.add(victim)
		}
	}()
	victim, _ = fsys.knownFile(dir, name)
	e, created, err := fsys.materializeNamed(ctx, dir, name)
	if err != nil {
		return err
	}
	l, lerr := e, error(nil)
	if created {
		// This mount's file, wherever a conflict with another client
		// put it (with its links, if it has more names).
		dir, name = e.Parent, e.Name
	} else {
		l, lerr = fsys.lookupEntry(ctx, dir, name)
	}
	if lerr == nil && l.Kind != dfms.KindDir && l.Nlink > 1 {
		// One of several names (hard links): the file stays, under
		// the others. Not deferred: the deferred removals go by id.
		victim = 0
		err := fsys.b.Unlink(ctx, dir, name)
		fsys.nameChanged(dir, name, err)
		fsys.mc.dropAfter(err, l.ID)
		return err
	}
	if fsys.rm != nil {
		if !created {
			if e, err = fsys.lookupEntry(ctx, dir, name); err != nil {
				return err
			}
		}
		if e.Kind == dfms.KindDir {
			return dfms.Errorf(op, dfms.IsDir, "is a directory")
		}
		victim = e.ID
		if ok, err := fsys.unlinkDeferred(ctx, e); ok {
			return err
		}
	}
	err = fsys.b.Unlink(ctx, dir, name)
	fsys.nameChanged(dir, name, err)
	return err
}

// Rmdir removes the empty directory parent/name (to the trash).
func (fsys *FS) Rmdir(ctx context.Context, parent Ino, name string) error {
	const op dfms.Op = "vfs.Rmdir"
	dir, err := removable(op, parent, name)
	if err != nil {
		return err
	}
	if _, ok := fsys.pendingLookup(dir, name); ok {
		return dfms.Errorf(op, dfms.NotDir, "not a directory")
	}
	// Files unlinked in it here do not count; files created in it here
	// make it not empty.
	if err := fsys.flushRemovals(ctx); err != nil {
		return err
	}
	if d, err := fsys.lookupEntry(ctx, dir, name); err == nil && d.Kind == dfms.KindDir {
		if err := fsys.materializeIn(ctx, d.ID); err != nil {
			return err
		}
	}
	err = fsys.b.Rmdir(ctx, dir, name)
	fsys.nameChanged(dir, name, err)
	return err
}

// Rename flags, as rename(2) defines them.
const (
	RenameNoReplace = 1 << 0 // fail with Exist if the new name is taken
	RenameExchange  = 1 << 1 // not supported
)

// Rename moves parent/name to newParent/newName, replacing what is there
// unless flags has RenameNoReplace.
func (fsys *FS) Rename(ctx context.Context, parent Ino, name string, newParent Ino, newName string, flags uint32) (err error) {
	const op dfms.Op = "vfs.Rename"
	from, err := dirOf(op, parent)
	if err != nil {
		return err
	}
	to, err := dirOf(op, newParent)
	if err != nil {
		return err
	}
	if name == dfms.VersionsDir || newName == dfms.VersionsDir {
		return errReadOnly(op)
	}
	if err := checkName(op, newName); err != nil {
		return err
	}
	if flags&^RenameNoReplace != 0 {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("unsupported rename flags %#x", flags))
	}
	replace := flags&RenameNoReplace == 0
	var victim dfms.EntryID // the file renamed over, if known
	defer func() {
		if err == nil && victim != 0 {
			fsys.gone.add(victim)
		}
	}()
	if id, ok := fsys.knownFile(to, newName); ok && replace {
		victim = id
	}
	if done, err := fsys.renamePending(ctx, from, name, to, newName); done {
		return err
	}
	if _, pending := fsys.pendingLookup(from, name); !pending && fsys.removedName(from, name) {
		return dfms.E(op, dfms.NotExist, fmt.Errorf("%q not found", name))
	}
	if err := fsys.flushRemovals(ctx); err != nil {
		return err
	}
	if e, created, err := fsys.materializeNamed(ctx, from, name); err != nil {
		return err
	} else if created {
		from, name = e.Parent, e.Name // where a conflict put this mount's file
	}
	if _, _, err := fsys.materializeNamed(ctx, to, newName); err != nil {
		return err
	}
	// A directory renamed over must be empty on the backend as here.
	var other dfms.EntryID // a file with other names renamed over: it stays
	if replace {
		if d, err := fsys.lookupEntry(ctx, to, newName); err == nil && d.Kind == dfms.KindDir {
			if err := fsys.materializeIn(ctx, d.ID); err != nil {
				return err
			}
		} else if err == nil && d.Kind == dfms.KindFile {
			victim = d.ID
			if d.Nlink > 1 {
				victim, other = 0, d.ID
			}
			if s, err := fsys.lookupEntry(ctx, from, name); err == nil && s.ID == d.ID {
				// Two names of one file: rename does nothing.
				return nil
			}
		}
	}
	// A file renamed over another continues its history (an editor's
	// save): what was closed of both before the rename is committed
	// first, so that each is a version of its own. A rename to a free
	// name (git's objects, temporary files) needs none of that.
	if replace && fsys.commitClosed(ctx, to, newName) {
		fsys.commitClosed(ctx, from, name)
	}
	err = fsys.b.Rename(ctx, from, name, to, newName, replace)
	fsys.touchName(err, from, name)
	fsys.touchName(err, to, newName)
	if other != 0 {
		fsys.mc.dropAfter(err, other)
	}
	return err
}

// commitClosed commits the changes of file dir/name if they were closed
// (a write-back commit still queued), not if it is still being written.
// A failure is logged: the changes stay staged for their queued commit.
// It reports whether dir/name is a file.
func (fsys *FS) commitClosed(ctx context.Context, dir dfms.EntryID, name string) bool {
	e, err := fsys.lookupEntry(ctx, dir, name)
	if err != nil || e.Kind != dfms.KindFile {
		return false
	}
	fsys.mu.Lock()
	f := fsys.open[e.ID]
	fsys.mu.Unlock()
	if f == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed && f.idleLocked() {
		f.sealed, f.sealedBy = true, nil // closed by every handle
	}
	f.unsealLocked(ctx, nil)
	return true
}

// SetAttrIn lists the attributes to change; nil fields are left alone.
type SetAttrIn struct {
	Size  *int64
	Mode  *uint32
	UID   *uint32
	GID   *uint32
	MTime *time.Time
	ATime *time.Time
}

// SetAttr changes attributes of ino. A size change truncates or extends
// the file: through h's stage if h is given (committed when h is flushed),
// otherwise at once, as a new version.
func (fsys *FS) SetAttr(ctx context.Context, ino Ino, h *Handle, in SetAttrIn) (Attr, error) {
	const op dfms.Op = "vfs.SetAttr"
	if ino.tag() != tagEntry {
		return Attr{}, errReadOnly(op)
	}
	id := ino.entry()
	var f *openFile
	if h != nil {
		f = h.f
	}
	// What the store cannot keep is clamped, as a local file system
	// clamps to its range (utimensat to the year 9999).
	in.MTime, in.ATime = clampTime(in.MTime), clampTime(in.ATime)
	if in.Size != nil {
		if *in.Size < 0 {
			return Attr{}, dfms.Errorf(op, dfms.Invalid, "negative size")
		}
		e, err := fsys.getEntry(ctx, id)
		if err != nil {
			return Attr{}, err
		}
		switch e.Kind {
		case dfms.KindFile:
		case dfms.KindDir:
			return Attr{}, dfms.Errorf(op, dfms.IsDir, "is a directory")
		default:
			return Attr{}, dfms.Errorf(op, dfms.Invalid, "not a regular file")
		}
		if f == nil {
			// truncate(2) on a path: change the content now.
			tf, err := fsys.acquire(ctx, id, false, true)
			if err != nil {
				return Attr{}, err
			}
			err = tf.truncate(ctx, *in.Size, nil)
			if err == nil {
				err = tf.flush(ctx)
			}
			if rerr := fsys.release(ctx, tf, true); err == nil {
				err = rerr
			}
			if err != nil {
				return Attr{}, err
			}
		} else if err := f.truncate(ctx, *in.Size, h); err != nil {
			return Attr{}, err
		}
	}
	if in.Mode == nil && in.UID == nil && in.GID == nil && in.MTime == nil && in.ATime == nil {
		return fsys.GetAttr(ctx, ino)
	}
	set := dfms.SetAttr{Mode: in.Mode, UID: in.UID, GID: in.GID, MTime: in.MTime, ATime: in.ATime}
	if in.MTime != nil {
		fsys.mu.Lock()
		of := fsys.open[id]
		fsys.mu.Unlock()
		if of != nil {
			if ok, err := of.setMTime(*in.MTime); err != nil {
				return Attr{}, err
			} else if ok {
				set.MTime = nil // the commit of the changes carries it
			}
		}
	}
	if e, ok, err := fsys.setPendingAttr(id, set); err != nil {
		return Attr{}, err
	} else if ok {
		return fsys.attrOf(e), nil
	}
	cur, err := fsys.getEntry(ctx, id)
	if err != nil {
		return Attr{}, err
	}
	if cur.Kind == dfms.KindDir && set.MTime != nil {
		if err := fsys.setDirTimes(ctx, id); err != nil {
			return Attr{}, err
		}
	}
	// tar, cp -a and rsync set owner and mode to what a file has already:
	// no round trip for those.
	if set.Mode != nil && *set.Mode&0o7777 == cur.Mode&0o7777 {
		set.Mode = nil
	}
	if set.UID != nil && *set.UID == cur.UID {
		set.UID = nil
	}
	if set.GID != nil && *set.GID == cur.GID {
		set.GID = nil
	}
	if set.Mode != nil || set.UID != nil || set.GID != nil || set.MTime != nil || set.ATime != nil {
		if err := fsys.flushRemovals(ctx); err != nil { // in order
			return Attr{}, err
		}
		g := fsys.mc.begin()
		cur, err = fsys.b.SetAttr(ctx, id, set)
		fsys.changed(g, id, cur, err)
		if err != nil {
			return Attr{}, err
		}
	}
	return fsys.freshAttr(ctx, cur), nil
}

// clampTime returns t within what the store can keep (nil for nil).
func clampTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	if c.Before(dfms.MinTime) {
		c = dfms.MinTime
	} else if c.After(dfms.MaxTime) {
		c = dfms.MaxTime
	}
	return &c
}

// StatFS is what statfs shows.
type StatFS struct {
	TotalBytes int64
	FreeBytes  int64
}

// unlimited is the size reported for an owner without a quota: 1 PiB.
const unlimited = 1 << 50

// Statfs reports the owner's quota (or 1 PiB without one) and use.
func (fsys *FS) Statfs(ctx context.Context) (StatFS, error) {
	u, err := fsys.b.Usage(ctx)
	if err != nil {
		return StatFS{}, err
	}
	total := u.QuotaBytes
	if total <= 0 {
		total = max(unlimited, u.UsedBytes)
	}
	return StatFS{TotalBytes: total, FreeBytes: max(0, total-u.UsedBytes)}, nil
}
