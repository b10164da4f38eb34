// Package fusefs mounts a DFMS file system ([vfs.FS]) in the kernel with
// go-fuse v2. It is a thin adapter: each node embeds fs.Inode and holds an
// inode number; every operation calls the vfs layer and maps the dfms
// error kind of a failure to an errno in one table ([Errno]).
//
// # Kernel caching
//
// Entries and attributes are cached by the kernel for one second (the
// libfuse default), failed lookups not at all, so a change made elsewhere
// shows within a second even without the change feed. The mount follows
// the feed ([vfs.FS.Watch]) and drops what the kernel cached of each
// change made elsewhere (pages, attributes, the name in its directory,
// the directory's listing), so that it shows at once. File data is cached
// under explicit control: an open keeps the kernel's pages of a file only
// while its version is unchanged (FOPEN_KEEP_CACHE), otherwise it drops
// them and the attributes (the size) with them, which gives close-to-open
// consistency. Children are created on
// demand with StableAttr{Ino: entry id}, so concurrent lookups of one file
// share one kernel inode.
//
// # Read-ahead
//
// The kernel's read-ahead for the mount is raised from 128 KiB to 4 MiB
// (Options.ReadAheadKB, through /sys/class/bdi, as root only; the FUSE
// handshake cannot ask for more than 128 KiB), so that a sequential read
// keeps several chunks in flight. Measured with integration/cmd/benchmount
// on one image: cold sequential reads 1.15-1.2x faster in alternating runs.
//
// # Interrupts
//
// FUSE interrupts do not cancel operations: a Go client's own runtime
// preempts goroutines with SIGURG, which the kernel forwards as interrupts,
// so honouring them would fail ordinary reads, writes and closes with
// EINTR at random, and a commit must not stop half-way anyway.
//
// # Limits of this version
//
//   - Extended attributes are stored by the server (package vfs); only
//     system.* (POSIX ACLs) fails with ENOTSUP.
//   - POSIX and flock locks are handled by the kernel for this mount
//     (EnableLocks is off): they hold between processes on this machine,
//     with POSIX semantics, not between machines.
//   - O_TMPFILE and RENAME_EXCHANGE: not supported.
package fusefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
)

// errnos maps dfms error kinds to errno values; kinds not listed are EIO.
var errnos = map[dfms.ErrorKind]syscall.Errno{
	dfms.NotExist:        syscall.ENOENT,
	dfms.Exist:           syscall.EEXIST,
	dfms.NotEmpty:        syscall.ENOTEMPTY,
	dfms.NotDir:          syscall.ENOTDIR,
	dfms.IsDir:           syscall.EISDIR,
	dfms.Permission:      syscall.EACCES,
	dfms.Unauthenticated: syscall.EACCES,
	dfms.ReadOnly:        syscall.EROFS,
	dfms.Invalid:         syscall.EINVAL,
	dfms.TooLarge:        syscall.EFBIG,
	dfms.Quota:           syscall.EDQUOT,
	dfms.NotSupported:    syscall.ENOTSUP,
	dfms.RateLimited:     syscall.EAGAIN,
}

// Errno maps an error of the vfs layer to the errno the kernel returns.
// An unclassified error that wraps an errno (the local stage file ran out
// of space, say) keeps it.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if errors.Is(err, syscall.ESTALE) {
		// An inode deleted or replaced elsewhere: the kernel looks its
		// name up again and retries.
		return syscall.ESTALE
	}
	k := dfms.KindOf(err)
	if e, ok := errnos[k]; ok {
		return e
	}
	var e syscall.Errno
	if k == dfms.Other && errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

// Options configures a mount.
type Options struct {
	// FsName is the source shown in /proc/mounts and df (default "dfms").
	FsName string
	// Strict mounts with mount(2) only, never through fusermount (tests:
	// no fallback may hide a problem). Otherwise mount(2) is tried first.
	Strict bool
	// AllowOther lets other users in; the kernel checks permissions
	// against the mode bits (default_permissions) either way.
	AllowOther bool
	// Debug logs every FUSE request.
	Debug bool
	// Log receives failures that map to EIO (default: discard).
	Log *slog.Logger
	// ReadAheadKB is the kernel's read-ahead for the mount, in KiB
	// (default 4096; negative: leave the kernel's 128). The FUSE
	// handshake cannot raise it above 128 KiB; the mount sets it in
	// /sys/class/bdi afterwards, which needs root, and goes on without
	// it otherwise.
	ReadAheadKB int
}

// defaultReadAheadKB lets a sequential read keep several chunks in
// flight: 1.15–1.2× the cold-read throughput of 128 KiB, measured.
const defaultReadAheadKB = 4096

// cacheTimeout is the entry and attribute timeout.
const cacheTimeout = time.Second

// Mount mounts fsys on dir and serves it until the returned server is
// unmounted. The caller closes fsys after Unmount returns.
func Mount(dir string, fsys *vfs.FS, opts Options) (*fuse.Server, error) {
	if opts.FsName == "" {
		opts.FsName = "dfms"
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cacheTimeout
	var negative time.Duration
	m := &mount{fsys: fsys, log: log}
	root := &node{m: m, ino: fsys.Root()}
	m.nodes.Store(fsys.Root(), root)
	srv, err := fs.Mount(dir, root, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:            opts.FsName,
			Name:              "dfms",
			DirectMount:       true,
			DirectMountStrict: opts.Strict,
			AllowOther:        opts.AllowOther,
			Options:           []string{"default_permissions"},
			// open(O_TRUNC) arrives as one call, so truncate-and-rewrite
			// makes one version, not an empty one first.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
			// The kernel would drop a file's pages whenever it sees a new
			// mtime, including the one of our own commit. The mount
			// decides instead: an open keeps the pages only while the
			// version is unchanged or the file is being written here
			// (FOPEN_KEEP_CACHE), and the change feed drops the pages of
			// files changed elsewhere.
			ExplicitDataCacheControl: true,
			MaxWrite:                 1 << 20,
			Debug:                    opts.Debug,
			// Reads are answered with bytes (node.Read), never a file
			// descriptor, so go-fuse's splice could only fail: it
			// would take a pipe and write the header into it first, for
			// every read, and log a read of 1 MiB (a pipe holds no more).
			DisableSplice: true,
			// What go-fuse itself has to say goes to the mount's log.
			Logger: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &negative,
		// chmod 000 must show as 000, not as go-fuse's 0644 default.
		NullPermissions: true,
		RootStableAttr:  &fs.StableAttr{Ino: uint64(fsys.Root())},
	})
	if err != nil {
		return nil, err
	}
	if opts.ReadAheadKB == 0 {
		opts.ReadAheadKB = defaultReadAheadKB
	}
	if opts.ReadAheadKB > 0 {
		if err := setReadAhead(dir, opts.ReadAheadKB); err != nil {
			log.Debug("the kernel's read-ahead stays at its default", "err", err)
		}
	}
	// Follow the change feed while mounted, so that changes made by others
	// show up without waiting for the cache timeouts.
	ctx, stop := context.WithCancel(context.Background())
	go func() { srv.Wait(); stop() }()
	go fsys.Watch(ctx, func(chs []vfs.Change) { m.invalidate(ctx, chs) })
	return srv, nil
}

// mount is what every node of one mount shares.
type mount struct {
	fsys *vfs.FS
	log  *slog.Logger
	// nodes indexes the inodes the kernel knows, by number, for the
	// change feed's invalidations: the node go-fuse keeps for the number
	// (a guess until the kernel's first request on it; node.seen).
	nodes sync.Map // vfs.Ino → *node
	// names holds the names the kernel was given for its files.
	names kernelNames
}

// invalidate drops what the kernel cached of changed entries: the pages
// and attributes of each entry, its name in its directory, and the
// directory's listing. Names an entry had before a rename expire with the
// entry timeout (1 s).
func (m *mount) invalidate(ctx context.Context, chs []vfs.Change) {
	type name struct {
		dir  vfs.Ino
		name string
	}
	inodes := map[vfs.Ino]bool{}
	names := map[name]bool{}
	for _, c := range chs {
		inodes[vfs.Ino(c.Entry)] = true
		if c.Parent != 0 {
			inodes[vfs.Ino(c.Parent)] = true
		}
		if _, known := m.nodes.Load(vfs.Ino(c.Parent)); known && c.Op != "version" && c.Op != "attr" {
			if n, err := m.fsys.EntryName(ctx, vfs.Ino(c.Entry)); err == nil {
				names[name{vfs.Ino(c.Parent), n}] = true
			}
		}
	}
	for ino := range inodes {
		if v, ok := m.nodes.Load(ino); ok {
			v.(*node).NotifyContent(0, 0)
		}
	}
	for nm := range names {
		if v, ok := m.nodes.Load(nm.dir); ok {
			v.(*node).NotifyEntry(nm.name)
		}
	}
}

// errno maps err and logs what maps to EIO: the caller only sees "I/O
// error", the log says why.
func (m *mount) errno(op string, ino vfs.Ino, err error) syscall.Errno {
	e := Errno(err)
	if e == syscall.EIO {
		m.log.Warn("fuse operation failed", "op", op, "ino", ino.String(), "err", err)
	}
	return e
}

// uninterruptible detaches ctx from FUSE interrupts (see the package doc).
func uninterruptible(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func caller(ctx context.Context) vfs.Caller {
	if c, ok := fuse.FromContext(ctx); ok {
		return vfs.Caller{UID: c.Uid, GID: c.Gid}
	}
	return vfs.Caller{}
}

func fillAttr(out *fuse.Attr, a vfs.Attr) {
	out.Ino = uint64(a.Ino)
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Size = uint64(a.Size)
	out.Blocks = (uint64(max(a.Alloc, 0)) + 511) / 512 // a sparse file's holes take none
	out.Blksize = 4096
	out.Owner = fuse.Owner{Uid: a.UID, Gid: a.GID}
	out.Rdev = a.Rdev
	atime := a.ATime
	if atime.IsZero() {
		atime = a.MTime
	}
	out.SetTimes(&atime, &a.MTime, &a.CTime)
}

// ReadAheadPath returns the sysfs file that holds the read-ahead, in KiB,
// of the file system mounted on dir.
func ReadAheadPath(dir string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev)), nil
}

// setReadAhead raises the kernel's read-ahead of the mount on dir to kb.
func setReadAhead(dir string, kb int) error {
	p, err := ReadAheadPath(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(p, []byte(strconv.Itoa(kb)), 0)
}
