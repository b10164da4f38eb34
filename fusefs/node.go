package fusefs

import (
	"context"
	"math"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
)

// node is one inode of the mount: a directory, file or symlink of the
// tree, or a directory or version of the .versions tree.
type node struct {
	fs.Inode
	m   *mount
	ino vfs.Ino
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeReader         = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeFlusher        = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeReleaser       = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
	_ fs.NodeLseeker        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeOnForgetter    = (*node)(nil)
)

// child returns the kernel inode for a, named name in n, reusing the
// existing one of the same number.
func (n *node) child(ctx context.Context, name string, a vfs.Attr, out *fuse.EntryOut) *fs.Inode {
	fillAttr(&out.Attr, a)
	in := n.NewInode(ctx, &node{m: n.m, ino: a.Ino}, fs.StableAttr{Mode: a.Mode & syscall.S_IFMT, Ino: uint64(a.Ino)})
	if c, ok := in.Operations().(*node); ok {
		// go-fuse keeps the node it knows for the number, if any, and
		// drops this one; the first request on a node corrects the index
		// (seen) if this guess was wrong.
		n.m.nodes.LoadOrStore(a.Ino, c)
	}
	if a.Mode&syscall.S_IFMT == syscall.S_IFREG {
		if a.Nlink > 1 {
			// Hard links: every name the kernel holds may be current.
			n.m.names.forget(a.Ino)
		} else if stale := n.m.names.looked(a.Ino, kernelName{n.ino, name}); len(stale) > 0 {
			// Renamed by another client: the kernel drops the old names
			// (not here: it holds n's lock while n is looked up in).
			go n.m.dropNames(a.Ino, stale)
		}
	}
	return in
}

// seen records that the kernel knows n: it sent a request for it.
func (n *node) seen() {
	if v, ok := n.m.nodes.Load(n.ino); !ok || v != n {
		n.m.nodes.Store(n.ino, n)
	}
}

// staleName reports whether an open of file n, whose name is now (dir,
// name), may have come by a name that no longer names it (kernelNames):
// names being dropped since a lookup are waited for; others are dropped
// now, and the open fails with ESTALE, so that the kernel walks the path
// again.
func (n *node) staleName(dir vfs.Ino, name string) bool {
	drop, wait := n.m.names.stale(n.ino, kernelName{dir, name})
	if len(drop) > 0 {
		n.m.dropNames(n.ino, drop)
		return true
	}
	timeout := time.NewTimer(staleWait)
	defer timeout.Stop()
	for _, ch := range wait {
		select {
		case <-ch:
		case <-timeout.C:
			return true
		}
	}
	return false
}

// dropNames makes the kernel drop names ks of file ino.
func (m *mount) dropNames(ino vfs.Ino, ks []kernelName) {
	for _, k := range ks {
		if p, ok := m.nodes.Load(k.dir); ok {
			p.(*node).NotifyEntry(k.name)
		}
	}
	m.names.dropped(ino, ks)
}

// childNode returns n's child name as the kernel knows it, if any.
func (n *node) childNode(name string) *node {
	if c := n.GetChild(name); c != nil {
		if cn, ok := c.Operations().(*node); ok {
			return cn
		}
	}
	return nil
}

// OnForget drops the node from the mount's indexes once the kernel forgot
// it.
func (n *node) OnForget() {
	if n.m.nodes.CompareAndDelete(n.ino, n) {
		n.m.names.forget(n.ino)
	}
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.seen()
	a, err := n.m.fsys.Lookup(uninterruptible(ctx), n.ino, name)
	if err != nil {
		return nil, n.m.errno("lookup", n.ino, err)
	}
	return n.child(ctx, name, a, out), 0
}

func (n *node) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.seen()
	a, err := n.m.fsys.GetAttr(uninterruptible(ctx), n.ino)
	if err != nil {
		return n.m.errno("getattr", n.ino, err)
	}
	fillAttr(&out.Attr, a)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var s vfs.SetAttrIn
	if size, ok := in.GetSize(); ok {
		v := int64(size)
		s.Size = &v
	}
	if mode, ok := in.GetMode(); ok {
		s.Mode = &mode
	}
	if uid, ok := in.GetUID(); ok {
		s.UID = &uid
	}
	if gid, ok := in.GetGID(); ok {
		s.GID = &gid
	}
	if mtime, ok := in.GetMTime(); ok {
		s.MTime = &mtime
	}
	if atime, ok := in.GetATime(); ok {
		s.ATime = &atime
	}
	// ctime follows the change itself.
	h, _ := f.(*vfs.Handle)
	a, err := n.m.fsys.SetAttr(uninterruptible(ctx), n.ino, h, s)
	if err != nil {
		return n.m.errno("setattr", n.ino, err)
	}
	fillAttr(&out.Attr, a)
	return 0
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	n.seen()
	return &dirHandle{n: n}, 0, 0
}

// dirHandle is an open directory. It lists the directory when first read
// and again on rewinddir; offsets are positions in that listing. The
// listing carries attributes, so readdirplus answers its lookups from it.
type dirHandle struct {
	n *node

	mu     sync.Mutex // guards the fields below
	loaded bool
	list   []vfs.DirEntry
	next   int
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileLookuper     = (*dirHandle)(nil)
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
)

func (d *dirHandle) loadLocked(ctx context.Context) syscall.Errno {
	es, err := d.n.m.fsys.ReadDir(uninterruptible(ctx), d.n.ino)
	if err != nil {
		return d.n.m.errno("readdir", d.n.ino, err)
	}
	d.list, d.loaded, d.next = es, true, 0
	return 0
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.loaded {
		if errno := d.loadLocked(ctx); errno != 0 {
			return nil, errno
		}
	}
	if d.next >= len(d.list) {
		return nil, 0
	}
	e := d.list[d.next]
	d.next++
	return &fuse.DirEntry{Name: e.Name, Ino: uint64(e.Attr.Ino), Mode: e.Attr.Mode & syscall.S_IFMT, Off: uint64(d.next)}, 0
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 0 {
		// rewinddir: a fresh listing.
		return d.loadLocked(ctx)
	}
	if !d.loaded {
		if errno := d.loadLocked(ctx); errno != 0 {
			return errno
		}
	}
	if off > uint64(len(d.list)) {
		return syscall.EINVAL
	}
	d.next = int(off)
	return 0
}

// Lookup is readdirplus's lookup of a listed name.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d.mu.Lock()
	var a *vfs.Attr
	for i := range d.list {
		if d.list[i].Name == name {
			a = &d.list[i].Attr
			break
		}
	}
	d.mu.Unlock()
	if a == nil {
		return d.n.Lookup(ctx, name, out)
	}
	return d.n.child(ctx, name, *a, out), 0
}

// Fsyncdir commits every changed file of the mount (vfs.FS.Sync); names
// and attributes are committed as they change. With write-back, fsync of
// any directory is the way to wait until closed files are on the server.
func (d *dirHandle) Fsyncdir(ctx context.Context, _ uint32) syscall.Errno {
	return d.n.m.errno("fsyncdir", d.n.ino, d.n.m.fsys.Sync(uninterruptible(ctx)))
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	a, err := n.m.fsys.Mkdir(uninterruptible(ctx), n.ino, name, mode&0o7777, caller(ctx))
	if err != nil {
		return nil, n.m.errno("mkdir", n.ino, err)
	}
	return n.child(ctx, name, a, out), 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	a, h, err := n.m.fsys.Create(uninterruptible(ctx), n.ino, name, int(flags), mode&0o7777, caller(ctx))
	if err != nil {
		return nil, nil, 0, n.m.errno("create", n.ino, err)
	}
	return n.child(ctx, name, a, out), h, 0, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	n.seen()
	h, err := n.m.fsys.OpenVerified(uninterruptible(ctx), n.ino, int(flags), func(e vfs.Entry) error {
		if e.Live && e.Kind == dfms.KindFile && e.Nlink <= 1 && n.staleName(vfs.Ino(e.Parent), e.Name) {
			return syscall.ESTALE
		}
		return nil
	})
	if err != nil {
		return nil, 0, n.m.errno("open", n.ino, err)
	}
	if h.KeepCache {
		// The version did not change since the kernel cached its pages,
		// or they hold what was written here.
		return h, fuse.FOPEN_KEEP_CACHE, 0
	}
	// Another version, or not known to be the one the kernel cached: its
	// pages go (no FOPEN_KEEP_CACHE), and so do its attributes, read
	// again before a read past the size they hold: the kernel would cut
	// the new content at the old size.
	n.NotifyContent(-1, 0)
	return h, 0, 0
}

func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := f.(*vfs.Handle)
	if !ok {
		return nil, syscall.EBADF
	}
	k, err := h.Read(uninterruptible(ctx), dest, off)
	if err != nil {
		return nil, n.m.errno("read", n.ino, err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, ok := f.(*vfs.Handle)
	if !ok {
		return 0, syscall.EBADF
	}
	k, err := h.Write(uninterruptible(ctx), data, off)
	if err != nil {
		return uint32(k), n.m.errno("write", n.ino, err)
	}
	return uint32(k), 0
}

func (n *node) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	h, ok := f.(*vfs.Handle)
	if !ok {
		return 0
	}
	return n.m.errno("flush", n.ino, h.Flush(uninterruptible(ctx)))
}

func (n *node) Fsync(ctx context.Context, f fs.FileHandle, _ uint32) syscall.Errno {
	h, ok := f.(*vfs.Handle)
	if !ok {
		return 0 // a directory: its changes are committed as they happen
	}
	return n.m.errno("fsync", n.ino, h.Fsync(uninterruptible(ctx)))
}

func (n *node) Release(ctx context.Context, f fs.FileHandle) syscall.Errno {
	h, ok := f.(*vfs.Handle)
	if !ok {
		return 0
	}
	// The kernel ignores the result of release; Release logs a failed
	// commit itself and keeps the data staged.
	return n.m.errno("release", n.ino, h.Release(uninterruptible(ctx)))
}

// FALLOC_FL_KEEP_SIZE, the only fallocate flag supported.
const fallocKeepSize = 0x01

func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	h, ok := f.(*vfs.Handle)
	if !ok {
		return syscall.EBADF
	}
	if mode&^fallocKeepSize != 0 {
		return syscall.EOPNOTSUPP // punching holes, collapsing, zeroing ranges
	}
	return n.m.errno("fallocate", n.ino, h.Allocate(uninterruptible(ctx), int64(off), int64(size), mode&fallocKeepSize != 0))
}

// lseek(2)'s whence values that reach the file system (the kernel answers
// the others itself).
const (
	seekData = 3
	seekHole = 4
)

// Lseek answers SEEK_DATA and SEEK_HOLE from the file's holes: those of
// its version and what nobody wrote here.
func (n *node) Lseek(ctx context.Context, f fs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	h, ok := f.(*vfs.Handle)
	if !ok {
		return 0, syscall.EBADF
	}
	if whence != seekData && whence != seekHole || off > math.MaxInt64 {
		return 0, syscall.EINVAL
	}
	pos, found, err := h.Seek(uninterruptible(ctx), int64(off), whence == seekHole)
	if err != nil {
		return 0, n.m.errno("lseek", n.ino, err)
	}
	if !found {
		return 0, syscall.ENXIO
	}
	return uint64(pos), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	c := n.childNode(name)
	err := n.m.fsys.Unlink(uninterruptible(ctx), n.ino, name)
	if err == nil && c != nil {
		n.m.names.renamed(c.ino, kernelName{n.ino, name}, nil)
	}
	return n.m.errno("unlink", n.ino, err)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.m.errno("rmdir", n.ino, n.m.fsys.Rmdir(uninterruptible(ctx), n.ino, name))
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	c, victim := n.childNode(name), np.childNode(newName)
	err := n.m.fsys.Rename(uninterruptible(ctx), n.ino, name, np.ino, newName, flags)
	if err == nil {
		if victim != nil && victim != c {
			n.m.names.renamed(victim.ino, kernelName{np.ino, newName}, nil)
		}
		if c != nil {
			n.m.names.renamed(c.ino, kernelName{n.ino, name}, &kernelName{np.ino, newName})
		}
	}
	return n.m.errno("rename", n.ino, err)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	a, err := n.m.fsys.Symlink(uninterruptible(ctx), n.ino, name, target, caller(ctx))
	if err != nil {
		return nil, n.m.errno("symlink", n.ino, err)
	}
	return n.child(ctx, name, a, out), 0
}

// Mknod makes a FIFO, a socket (bind(2) of a UNIX socket) or a device
// node. The kernel serves their I/O: an open of one never reaches the
// mount.
func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	a, err := n.m.fsys.Mknod(uninterruptible(ctx), n.ino, name, mode&(syscall.S_IFMT|0o7777), dev, caller(ctx))
	if err != nil {
		return nil, n.m.errno("mknod", n.ino, err)
	}
	return n.child(ctx, name, a, out), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.m.fsys.Readlink(uninterruptible(ctx), n.ino)
	if err != nil {
		return nil, n.m.errno("readlink", n.ino, err)
	}
	return []byte(t), 0
}

// Link gives the file target the further name name in n (a hard link).
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	a, err := n.m.fsys.Link(uninterruptible(ctx), t.ino, n.ino, name)
	if dfms.Is(err, dfms.IsDir) {
		return nil, syscall.EPERM // link(2) of a directory
	}
	if err != nil {
		return nil, n.m.errno("link", n.ino, err)
	}
	return n.child(ctx, name, a, out), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	s, err := n.m.fsys.Statfs(uninterruptible(ctx))
	if err != nil {
		return n.m.errno("statfs", n.ino, err)
	}
	const bsize = 4096
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = uint64(s.TotalBytes) / bsize
	out.Bfree = uint64(s.FreeBytes) / bsize
	out.Bavail = out.Bfree
	// Entries are rows, not preallocated inodes: report plenty.
	out.Files = 1 << 40
	out.Ffree = 1 << 40
	out.NameLen = 255
	return 0
}

var (
	_ fs.NodeGetxattrer    = (*node)(nil)
	_ fs.NodeSetxattrer    = (*node)(nil)
	_ fs.NodeListxattrer   = (*node)(nil)
	_ fs.NodeRemovexattrer = (*node)(nil)
)

// Getxattr answers with the value's size when dest is too small (ERANGE)
// or empty (a size query), as getxattr(2) expects.
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, found, err := n.m.fsys.GetXattr(uninterruptible(ctx), n.ino, attr)
	if err != nil {
		return 0, n.m.errno("getxattr", n.ino, err)
	}
	if !found {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	err := n.m.fsys.SetXattr(uninterruptible(ctx), n.ino, attr, data, int(flags))
	if dfms.Is(err, dfms.NotExist) {
		return syscall.ENODATA // XATTR_REPLACE of a missing attribute
	}
	if dfms.Is(err, dfms.TooLarge) {
		return syscall.E2BIG
	}
	return n.m.errno("setxattr", n.ino, err)
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	err := n.m.fsys.RemoveXattr(uninterruptible(ctx), n.ino, attr)
	if dfms.Is(err, dfms.NotExist) {
		return syscall.ENODATA
	}
	return n.m.errno("removexattr", n.ino, err)
}

// Listxattr writes the names, each NUL-terminated; like Getxattr it
// answers with the size needed when dest is too small.
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, err := n.m.fsys.ListXattrs(uninterruptible(ctx), n.ino)
	if err != nil {
		return 0, n.m.errno("listxattr", n.ino, err)
	}
	size := 0
	for _, name := range names {
		size += len(name) + 1
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	off := 0
	for _, name := range names {
		off += copy(dest[off:], name)
		dest[off] = 0
		off++
	}
	return uint32(size), 0
}
