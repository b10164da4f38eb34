package vfs_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// Files created, written, chmod'ed and closed as tar does reach the server
// in batches: no create and no chmod of their own, and the mount shows
// them meanwhile as they will be.
func TestPendingCreatesBatched(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	b := &counting{Backend: l}
	fsys := newWriteBackFS(t, b, t.TempDir())
	defer fsys.Close(ctx)
	const n = 200
	inos := make([]vfs.Ino, n)
	for i := range n {
		name := fmt.Sprintf("f%03d", i)
		a, h, err := fsys.Create(ctx, fsys.Root(), name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600, vfs.Caller{UID: 7, GID: 8})
		if err != nil {
			t.Fatal(err)
		}
		inos[i] = a.Ino
		writeAt(t, h, []byte("content of "+name), 0)
		mt := time.Unix(1_700_000_000+int64(i), 0)
		if _, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{MTime: &mt}); err != nil {
			t.Fatal(err)
		}
		if got, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Mode: ptr(uint32(0o644))}); err != nil || got.Mode&0o7777 != 0o644 {
			t.Fatalf("chmod: %+v, %v", got, err)
		}
		release(t, h)
		got := mustLookup(t, fsys, fsys.Root(), name)
		if got.Ino != a.Ino || got.Mode&0o7777 != 0o644 || got.UID != 7 || got.Size != int64(len("content of "+name)) {
			t.Fatalf("lookup after close: %+v", got)
		}
	}
	des, err := fsys.ReadDir(ctx, fsys.Root())
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != n {
		t.Fatalf("readdir lists %d entries, want %d", len(des), n)
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c := b.creates.Load(); c != 0 {
		t.Fatalf("%d creates of one file each", c)
	}
	if c := b.setattrs.Load(); c != 0 {
		t.Fatalf("%d attribute changes sent on their own", c)
	}
	if got := b.created.Load(); got != n {
		t.Fatalf("%d files created in batches, want %d", got, n)
	}
	if bt := b.createBatches.Load(); bt > n/4 {
		t.Fatalf("%d batches of creates for %d files", bt, n)
	}
	for i, ino := range inos {
		name := fmt.Sprintf("f%03d", i)
		e, err := b.Backend.Lookup(ctx, dfms.EntryID(fsys.Root()), name)
		if err != nil {
			t.Fatal(err)
		}
		if vfs.Ino(e.ID) != ino || e.Mode != 0o644 || e.UID != 7 || e.GID != 8 || e.Version == 0 ||
			!e.MTime.Equal(time.Unix(1_700_000_000+int64(i), 0)) {
			t.Fatalf("stored %s: %+v", name, e)
		}
		if got := storedContent(t, svc, l, ino); string(got) != "content of "+name {
			t.Fatalf("stored content of %s: %q", name, got)
		}
	}
}

// createOpen creates name in dir and keeps it open, so that it stays
// pending (the FS has no write-back: close would create it).
func createOpen(t *testing.T, fsys *vfs.FS, dir vfs.Ino, name string) (vfs.Attr, *vfs.Handle) {
	t.Helper()
	a, h, err := fsys.Create(ctx, dir, name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640, vfs.Caller{UID: 1, GID: 2})
	if err != nil {
		t.Fatal(err)
	}
	return a, h
}

// A pending name is taken, for this mount, as any other name.
func TestPendingNamesAreTaken(t *testing.T) {
	b := &counting{Backend: newLocal(t)}
	fsys, _ := newFS(t, b)
	defer fsys.Close(ctx)
	a, h := createOpen(t, fsys, fsys.Root(), "p")
	defer h.Release(ctx)
	if _, err := b.Backend.Lookup(ctx, dfms.EntryID(fsys.Root()), "p"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("the backend knows the file before its commit: %v", err)
	}
	_, _, err := fsys.Create(ctx, fsys.Root(), "p", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{})
	testkit.WantKind(t, err, dfms.Exist, "O_EXCL create of a pending name")
	_, err = fsys.Mkdir(ctx, fsys.Root(), "p", 0o755, vfs.Caller{})
	testkit.WantKind(t, err, dfms.Exist, "mkdir of a pending name")
	_, err = fsys.Symlink(ctx, fsys.Root(), "p", "target", vfs.Caller{})
	testkit.WantKind(t, err, dfms.Exist, "symlink of a pending name")
	err = fsys.Rmdir(ctx, fsys.Root(), "p")
	testkit.WantKind(t, err, dfms.NotDir, "rmdir of a pending file")
	_, err = fsys.Readlink(ctx, a.Ino)
	testkit.WantKind(t, err, dfms.Invalid, "readlink of a pending file")
	// Without O_EXCL the same file opens.
	a2, h2, err := fsys.Create(ctx, fsys.Root(), "p", os.O_RDWR|os.O_CREATE, 0o644, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	if a2.Ino != a.Ino {
		t.Fatalf("create without O_EXCL opened inode %d, want %d", a2.Ino, a.Ino)
	}
	writeAt(t, h2, []byte("via the second handle"), 0)
	if got := readAll(t, h); string(got) != "via the second handle" {
		t.Fatalf("first handle reads %q", got)
	}
	release(t, h2)
	// .versions shows no version yet, and xattrs none.
	vd := mustLookup(t, fsys, fsys.Root(), dfms.VersionsDir)
	vf := mustLookup(t, fsys, vd.Ino, "p")
	if vs, err := fsys.ReadDir(ctx, vf.Ino); err != nil || len(vs) != 0 {
		t.Fatalf(".versions/p of a file not committed yet lists %v, %v", vs, err)
	}
	if names, err := fsys.ListXattrs(ctx, a.Ino); err != nil || len(names) != 0 {
		t.Fatalf("xattrs %v, %v", names, err)
	}
	if b.creates.Load() != 0 {
		t.Fatal("a create of its own")
	}
}

// Everything that needs the backend to know a pending file creates it
// first: rename, unlink, xattrs, rmdir of its directory.
func TestPendingNamespaceOps(t *testing.T) {
	b := &counting{Backend: newLocal(t)}
	fsys, _ := newFS(t, b)
	defer fsys.Close(ctx)
	root := fsys.Root()
	rootID := dfms.EntryID(root)

	// A rename to a free name in the same directory stays in memory
	// (git's objects); to another directory it goes to the backend.
	sub, err := fsys.Mkdir(ctx, root, "sub", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	a, h := createOpen(t, fsys, root, "renamed-from")
	if err := fsys.Rename(ctx, root, "renamed-from", root, "renamed-to", vfs.RenameNoReplace); err != nil {
		t.Fatal(err)
	}
	if got := mustLookup(t, fsys, root, "renamed-to"); got.Ino != a.Ino {
		t.Fatalf("new name is inode %d, want %d", got.Ino, a.Ino)
	}
	if _, err := fsys.Lookup(ctx, root, "renamed-from"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("old name after rename: %v", err)
	}
	if _, err := b.Backend.GetAttr(ctx, dfms.EntryID(a.Ino)); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("a rename to a free name reached the backend: %v", err)
	}
	if err := fsys.Rename(ctx, root, "renamed-to", sub.Ino, "moved", 0); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Backend.Lookup(ctx, dfms.EntryID(sub.Ino), "moved"); err != nil || vfs.Ino(e.ID) != a.Ino || e.Mode != 0o640 {
		t.Fatalf("pending file moved to another directory, in the backend: %+v, %v", e, err)
	}
	h.Release(ctx)
	// A rename over a file the backend has creates the pending file
	// first: the replaced file's history moves to it.
	create(t, fsys, "old", "old content")
	o, h := createOpen(t, fsys, root, "new")
	if err := fsys.Rename(ctx, root, "new", root, "old", 0); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Backend.Lookup(ctx, rootID, "old"); err != nil || vfs.Ino(e.ID) != o.Ino || e.Version != 2 { // the old one's, then its own (empty)
		t.Fatalf("file renamed over a committed one: %+v, %v", e, err)
	}
	h.Release(ctx)

	_, h = createOpen(t, fsys, root, "unlinked")
	if err := fsys.Unlink(ctx, root, "unlinked"); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Lookup(ctx, root, "unlinked"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("lookup after unlink: %v", err)
	}
	if err := fsys.Sync(ctx); err != nil { // unlinks are deferred too
		t.Fatal(err)
	}
	if _, err := b.Backend.Lookup(ctx, rootID, "unlinked"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("backend lookup after unlink: %v", err)
	}
	h.Release(ctx)

	x, h := createOpen(t, fsys, root, "xattr")
	if err := fsys.SetXattr(ctx, x.Ino, "user.k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := fsys.GetXattr(ctx, x.Ino, "user.k"); err != nil || !ok || string(v) != "v" {
		t.Fatalf("xattr of a created file: %q %v %v", v, ok, err)
	}
	h.Release(ctx)

	d, err := fsys.Mkdir(ctx, root, "d", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	_, h = createOpen(t, fsys, d.Ino, "inside")
	testkit.WantKind(t, fsys.Rmdir(ctx, root, "d"), dfms.NotEmpty, "rmdir of a directory holding a pending file")
	h.Release(ctx)

	// A create in a directory that is gone fails at once.
	if err := fsys.Unlink(ctx, d.Ino, "inside"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rmdir(ctx, root, "d"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fsys.Create(ctx, d.Ino, "late", os.O_RDWR|os.O_CREATE, 0o644, vfs.Caller{}); err == nil {
		t.Fatal("create in a removed directory succeeded")
	}
	if b.creates.Load() != 0 {
		t.Fatal("a create of its own")
	}
}

// A name another client takes before the pending file reaches the server
// does not lose either file: the pending one gets a conflict name beside
// it. So does a file whose directory another client removed: it goes to
// the root.
func TestPendingConflicts(t *testing.T) {
	l := newLocal(t)
	fsys, _ := newFS(t, l)
	defer fsys.Close(ctx)
	other, _ := newFS(t, l) // another client of the same owner
	defer other.Close(ctx)
	root := fsys.Root()

	a, h := createOpen(t, fsys, root, "x")
	writeAt(t, h, []byte("mine"), 0)
	create(t, other, "x", "theirs")
	release(t, h)
	des, err := l.ReadDir(ctx, dfms.EntryID(root))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range des {
		names = append(names, e.Name)
		if vfs.Ino(e.ID) == a.Ino && !strings.HasPrefix(e.Name, "x (conflict ") {
			t.Fatalf("the pending file was created as %q", e.Name)
		}
	}
	if len(des) != 2 || !slices.Contains(names, "x") {
		t.Fatalf("root holds %v", names)
	}

	d, err := fsys.Mkdir(ctx, root, "gone", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	g, h := createOpen(t, fsys, d.Ino, "orphan")
	writeAt(t, h, []byte("kept"), 0)
	if err := other.Rmdir(ctx, other.Root(), "gone"); err != nil {
		t.Fatal(err)
	}
	release(t, h)
	e, err := l.GetAttr(ctx, dfms.EntryID(g.Ino))
	if err != nil {
		t.Fatal(err)
	}
	if e.Parent != dfms.EntryID(root) || !strings.HasPrefix(e.Name, "orphan (conflict ") || e.Version == 0 {
		t.Fatalf("file of a removed directory: %+v", e)
	}
}

// A crash before a pending file reached the server: the next mount
// creates it from the journal, with the attributes set since, and commits
// what was written. A file created and never written comes back too.
func TestPendingRecovery(t *testing.T) {
	l, svc, fsys, cache := newCrashable(t)
	d, err := fsys.Mkdir(ctx, fsys.Root(), "d", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	a, h := createOpen(t, fsys, d.Ino, "written")
	writeAt(t, h, []byte("staged, never closed"), 0)
	if _, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Mode: ptr(uint32(0o604)), UID: ptr(uint32(55))}); err != nil {
		t.Fatal(err)
	}
	empty, _ := createOpen(t, fsys, d.Ino, "empty-at-first")
	if err := fsys.Rename(ctx, d.Ino, "empty-at-first", d.Ino, "empty", 0); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1_600_000_000, 0)
	if _, err := fsys.SetAttr(ctx, empty.Ino, nil, vfs.SetAttrIn{MTime: &mt}); err != nil {
		t.Fatal(err)
	}
	fsys.Crash()
	if _, err := l.GetAttr(ctx, dfms.EntryID(a.Ino)); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("the backend knew the file before the crash: %v", err)
	}
	fsys2 := openFS(t, l, vfs.Options{CacheDir: cache})
	defer fsys2.Close(ctx)
	e, err := l.Lookup(ctx, dfms.EntryID(d.Ino), "written")
	if err != nil {
		t.Fatal(err)
	}
	if vfs.Ino(e.ID) != a.Ino || e.Mode != 0o604 || e.UID != 55 || e.GID != 2 || e.Version != 1 {
		t.Fatalf("recovered file: %+v", e)
	}
	if got := storedContent(t, svc, l, a.Ino); string(got) != "staged, never closed" {
		t.Fatalf("recovered content %q", got)
	}
	e, err = l.Lookup(ctx, dfms.EntryID(d.Ino), "empty")
	if err != nil {
		t.Fatal(err)
	}
	if vfs.Ino(e.ID) != empty.Ino || e.Mode != 0o640 || e.Version != 0 || !e.MTime.Equal(mt) {
		t.Fatalf("recovered empty file: %+v", e)
	}
	// Its stage is gone: a second recovery finds nothing.
	fsys2.Close(ctx)
	left, _ := os.ReadDir(cache + "/stage")
	if len(left) != 0 {
		t.Fatalf("stage directory holds %d files after recovery", len(left))
	}
	fsys3 := openFS(t, l, vfs.Options{CacheDir: cache})
	fsys3.Close(ctx)
}

// Two creates of one name racing in one mount: exactly one wins with
// O_EXCL.
func TestPendingExclusiveRace(t *testing.T) {
	fsys := newWriteBackFS(t, newLocal(t), t.TempDir())
	defer fsys.Close(ctx)
	for round := range 50 {
		name := fmt.Sprintf("race%d", round)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				_, h, err := fsys.Create(ctx, fsys.Root(), name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{})
				if err == nil {
					err = h.Release(ctx)
				}
				errs <- err
			}()
		}
		won := 0
		for range 4 {
			err := <-errs
			switch {
			case err == nil:
				won++
			case !dfms.Is(err, dfms.Exist):
				t.Fatal(err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d exclusive creates succeeded", round, won)
		}
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	des, err := fsys.ReadDir(ctx, fsys.Root())
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 50 {
		t.Fatalf("%d files after the races, want 50", len(des))
	}
}

// Unlinks are answered at once and made on the server in batches, in
// order with what follows them.
func TestDeferredUnlinks(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	b := &counting{Backend: l}
	fsys := newWriteBackFS(t, b, t.TempDir())
	defer fsys.Close(ctx)
	root := fsys.Root()
	d, err := fsys.Mkdir(ctx, root, "d", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		_, h, err := fsys.Create(ctx, d.Ino, fmt.Sprintf("f%03d", i), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		writeAt(t, h, []byte(fmt.Sprint("file ", i)), 0)
		h.Release(ctx)
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.WantKind(t, fsys.Unlink(ctx, root, "d"), dfms.IsDir, "unlink of a directory")
	testkit.WantKind(t, fsys.Unlink(ctx, d.Ino, "nope"), dfms.NotExist, "unlink of a missing name")
	for i := range n {
		if err := fsys.Unlink(ctx, d.Ino, fmt.Sprintf("f%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WantKind(t, fsys.Unlink(ctx, d.Ino, "f000"), dfms.NotExist, "unlink twice")
	testkit.WantKind(t, fsys.Rename(ctx, d.Ino, "f001", root, "x", 0), dfms.NotExist, "rename of an unlinked name")
	if _, err := fsys.Lookup(ctx, d.Ino, "f005"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("lookup after unlink: %v", err)
	}
	if des, err := fsys.ReadDir(ctx, d.Ino); err != nil || len(des) != 0 {
		t.Fatalf("readdir after unlinking everything: %v, %v", des, err)
	}
	// A name freed here can be taken again at once.
	a, h, err := fsys.Create(ctx, d.Ino, "f007", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, h, []byte("new f007"), 0)
	h.Release(ctx)
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if b.unlinks.Load() != 0 {
		t.Fatalf("%d unlinks made one by one", b.unlinks.Load())
	}
	if got := b.trashed.Load(); got != n {
		t.Fatalf("%d files trashed in batches, want %d", got, n)
	}
	if bt := b.trashBatches.Load(); bt > n/4 {
		t.Fatalf("%d batches for %d unlinks", bt, n)
	}
	owner := localUser(t, svc).ID
	trash, _, err := svc.Trash(ctx, owner, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(trash) != n {
		t.Fatalf("trash holds %d entries, want %d", len(trash), n)
	}
	es, err := l.ReadDir(ctx, dfms.EntryID(d.Ino))
	if err != nil || len(es) != 1 || vfs.Ino(es[0].ID) != a.Ino || es[0].Version == 0 {
		t.Fatalf("directory on the server: %+v, %v", es, err)
	}
	// rmdir after unlinking what the directory held.
	if err := fsys.Unlink(ctx, d.Ino, "f007"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rmdir(ctx, root, "d"); err != nil {
		t.Fatal(err)
	}
}

// A crash after unlinks were answered: the next mount makes them.
func TestDeferredUnlinkRecovery(t *testing.T) {
	l := newLocal(t)
	cache := t.TempDir()
	fsys := openFS(t, l, vfs.Options{CacheDir: cache})
	a := create(t, fsys, "doomed", "bytes")
	create(t, fsys, "kept", "bytes")
	if err := fsys.Unlink(ctx, fsys.Root(), "doomed"); err != nil {
		t.Fatal(err)
	}
	fsys2 := remountAfterCrash(t, fsys, l, cache)
	if e, err := l.GetAttr(ctx, dfms.EntryID(a.Ino)); err != nil || e.Live {
		t.Fatalf("unlinked file after recovery: %+v, %v", e, err)
	}
	if _, err := l.Lookup(ctx, dfms.EntryID(fsys2.Root()), "kept"); err != nil {
		t.Fatal(err)
	}
}

// git's lock files: a name unlinked here and created again at once is the
// new file, for every operation (here a rename over a committed file).
func TestUnlinkedNameTakenAgain(t *testing.T) {
	l := newLocal(t)
	fsys := newWriteBackFS(t, l, t.TempDir())
	defer fsys.Close(ctx)
	root := fsys.Root()
	create(t, fsys, "config", "v1")
	for round := range 3 {
		_, h, err := fsys.Create(ctx, root, "config.lock", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		writeAt(t, h, []byte(fmt.Sprint("v", round+2)), 0)
		h.Release(ctx)
		if round == 1 { // abandoned, as git does when nothing changed
			if err := fsys.Unlink(ctx, root, "config.lock"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := fsys.Rename(ctx, root, "config.lock", root, "config", 0); err != nil {
			t.Fatalf("round %d: rename over the committed file: %v", round, err)
		}
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := l.Lookup(ctx, dfms.EntryID(root), "config")
	if err != nil {
		t.Fatal(err)
	}
	h := mustOpen(t, fsys, vfs.Ino(e.ID), os.O_RDONLY)
	defer h.Release(ctx)
	if got := readAll(t, h); string(got) != "v4" {
		t.Fatalf("config holds %q, want v4", got)
	}
	if _, err := l.Lookup(ctx, dfms.EntryID(root), "config.lock"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("config.lock after the last rename: %v", err)
	}
}

// steppedTrash holds the first batch of deferred unlinks until the test
// lets it go, and fails later batches while fail is set; each batch
// reports on started.
type steppedTrash struct {
	*local.Backend
	calls   atomic.Int64
	fail    atomic.Bool
	started chan struct{}
	proceed chan struct{}
}

func (s *steppedTrash) TrashFiles(ctx context.Context, ids []dfms.EntryID, at []time.Time) ([]error, error) {
	first := s.calls.Add(1) == 1
	select {
	case s.started <- struct{}{}:
	default:
	}
	if first {
		<-s.proceed
	} else if s.fail.Load() {
		return nil, dfms.Errorf("test", dfms.Unavailable, "the server is down")
	}
	return s.Backend.TrashFiles(ctx, ids, at)
}

// A crash while unlinks keep coming: the next mount makes the removals
// that were not made yet, and not the ones made already (a file restored
// from the trash since stays restored).
func TestDeferredUnlinkRecoveryReplaysOnlyUnmade(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	b := &steppedTrash{Backend: l, started: make(chan struct{}, 4), proceed: make(chan struct{})}
	cache := t.TempDir()
	fsys := openFS(t, b, vfs.Options{CacheDir: cache})
	x := create(t, fsys, "x", "restored later")
	y := create(t, fsys, "y", "unlinked last")
	if err := fsys.Unlink(ctx, fsys.Root(), "x"); err != nil {
		t.Fatal(err)
	}
	<-b.started // x's removal is being made
	if err := fsys.Unlink(ctx, fsys.Root(), "y"); err != nil {
		t.Fatal(err)
	}
	b.fail.Store(true)
	b.proceed <- struct{}{} // x is trashed; y's removal then fails
	<-b.started
	if e, err := l.GetAttr(ctx, dfms.EntryID(x.Ino)); err != nil || e.Live {
		t.Fatalf("x after its removal was made: %+v, %v", e, err)
	}
	if _, err := svc.Restore(ctx, localUser(t, svc).ID, dfms.EntryID(x.Ino)); err != nil {
		t.Fatal(err)
	}
	fsys.Crash()
	b.fail.Store(false)
	fsys2 := openFS(t, b, vfs.Options{CacheDir: cache})
	defer fsys2.Close(ctx)
	if e, err := l.GetAttr(ctx, dfms.EntryID(x.Ino)); err != nil || !e.Live {
		t.Fatalf("x, restored after its removal was made, after recovery: %+v, %v; want it live", e, err)
	}
	if e, err := l.GetAttr(ctx, dfms.EntryID(y.Ino)); err != nil || e.Live {
		t.Fatalf("y, whose removal was not made, after recovery: %+v, %v; want it trashed", e, err)
	}
}

// Regression test; the bug was: a materialization made the unlinks logged
// here before it began, then took the names of its files, so an unlink
// and a rename of a pending file to the name it freed, coming in between
// (git replacing a ref, an editor's save; the stress test's step 142),
// found the name still taken on the backend: the file was created under
// a conflict name, and the next rename of the name failed with ENOENT.
func TestMaterializeAfterUnlinkAndRenameToItsName(t *testing.T) {
	fsys, l, svc := writeBackLocal(t)
	root := fsys.Root()
	create(t, fsys, "c", "old")
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	fsys.HoldRemovals()
	reached, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	fsys.OnMaterializing(func() {
		once.Do(func() {
			close(reached)
			<-proceed
		})
	})
	create(t, fsys, "b", "new") // pending; its commit materializes it
	<-reached
	if err := fsys.Unlink(ctx, root, "c"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename(ctx, root, "b", root, "c", 0); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	fsys.WaitWriteBack() // b is made, its commit too
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := l.ReadDir(ctx, dfms.EntryID(root))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range es {
		got[e.Name] = string(storedContent(t, svc, l, vfs.Ino(e.ID)))
	}
	if want := map[string]string{"c": "new"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the server holds %v, want %v", got, want)
	}
	if err := fsys.Rename(ctx, root, "c", root, "d", 0); err != nil {
		t.Fatalf("rename of c: %v", err)
	}
}
