package vfs_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// Regression test; the bug was: a crash after unlink(x) + create(x) recovers the new x under a conflict name (journals are recovered before the logged removals are made), and x is gone.
func TestDeferredCrashUnlinkThenRecreateKeepsName(t *testing.T) {
	l, svc, fsys, cache := newCrashable(t)
	root := fsys.Root()
	create(t, fsys, "cfg", "old")
	if err := fsys.Unlink(ctx, root, "cfg"); err != nil {
		t.Fatal(err)
	}
	a, h := createOpen(t, fsys, root, "cfg") // git's lock file / an editor's save: same name again
	writeAt(t, h, []byte("new"), 0)
	remountAfterCrash(t, fsys, l, cache)
	e, err := l.Lookup(ctx, dfms.EntryID(root), "cfg")
	if err != nil {
		des, _ := l.ReadDir(ctx, dfms.EntryID(root))
		var names []string
		for _, d := range des {
			names = append(names, d.Name)
		}
		t.Fatalf("cfg after recovery: %v (root holds %q)", err, names)
	}
	if vfs.Ino(e.ID) != a.Ino {
		t.Fatalf("cfg after recovery is entry %d, want the new file %d", e.ID, a.Ino)
	}
	if got := storedContent(t, svc, l, a.Ino); string(got) != "new" {
		t.Fatalf("cfg holds %q", got)
	}
}

// Regression test; the bug was: rename(E, D) over a directory holding a pending file succeeds (backend sees D empty); want ENOTEMPTY, the file is moved to the root under a conflict name.
func TestDeferredRenameDirOverDirWithPendingFile(t *testing.T) {
	l, fsys, p, h := newDirsDE(t)
	root := fsys.Root()
	writeAt(t, h, []byte("keep"), 0)
	defer h.Release(ctx)
	err := fsys.Rename(ctx, root, "E", root, "D", 0)
	if !dfms.Is(err, dfms.NotEmpty) {
		h.Release(ctx)
		fsys.Sync(ctx)
		e, _ := l.GetAttr(ctx, dfms.EntryID(p.Ino))
		t.Fatalf("rename over a directory holding a file created here: %v, want NotEmpty (the file is now %q in %d)", err, e.Name, e.Parent)
	}
}

// Control for the above: the same rename over a directory whose file the
// backend knows fails with NotEmpty.
func TestDeferredRenameDirOverDirWithCommittedFile(t *testing.T) {
	_, fsys, _, h := newDirsDE(t)
	root := fsys.Root()
	h.Release(ctx) // materialized
	testkit.WantKind(t, fsys.Rename(ctx, root, "E", root, "D", 0), dfms.NotEmpty, "rename over a non-empty directory")
}

// newDirsDE returns a backend and an FS over it, closed when the test
// ends, whose root holds the directories D and E, and the file p created
// in D, open.
func newDirsDE(t *testing.T) (*local.Backend, *vfs.FS, vfs.Attr, *vfs.Handle) {
	t.Helper()
	l := newLocal(t)
	fsys, _ := newFS(t, l)
	t.Cleanup(func() { fsys.Close(ctx) })
	root := fsys.Root()
	d, err := fsys.Mkdir(ctx, root, "D", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Mkdir(ctx, root, "E", 0o755, vfs.Caller{}); err != nil {
		t.Fatal(err)
	}
	p, h := createOpen(t, fsys, d.Ino, "p")
	return l, fsys, p, h
}

// newPendingX returns a backend, two FSs over it (this mount and another
// client's), closed when the test ends, and the file x that this mount
// created in the root and wrote "mine" to, still open: pending.
func newPendingX(t *testing.T) (*local.Backend, *vfs.FS, *vfs.FS, vfs.Attr, *vfs.Handle) {
	t.Helper()
	l := newLocal(t)
	fsys, _ := newFS(t, l)
	t.Cleanup(func() { fsys.Close(ctx) })
	other, _ := newFS(t, l)
	t.Cleanup(func() { other.Close(ctx) })
	mine, h := createOpen(t, fsys, fsys.Root(), "x")
	writeAt(t, h, []byte("mine"), 0)
	return l, fsys, other, mine, h
}

// Regression test; the bug was: unlink of a pending x whose name another client took meanwhile trashes the OTHER client's x; ours survives under a conflict name.
func TestDeferredUnlinkPendingTrashesOtherClientsFile(t *testing.T) {
	l, fsys, other, mine, h := newPendingX(t)
	root := fsys.Root()
	theirs := create(t, other, "x", "theirs")
	if err := fsys.Unlink(ctx, root, "x"); err != nil {
		t.Fatal(err)
	}
	h.Release(ctx)
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := l.GetAttr(ctx, dfms.EntryID(theirs.Ino))
	if err != nil || !e.Live {
		m, _ := l.GetAttr(ctx, dfms.EntryID(mine.Ino))
		t.Fatalf("the other client's x after this mount unlinked its own x: %+v, %v (this mount's file: live=%v name=%q)", e, err, m.Live, m.Name)
	}
}

// Regression test; the bug was: rename(x, z) of a pending x whose name another client took moves the OTHER client's x over z; this mount's x stays under a conflict name.
func TestDeferredRenamePendingOverTakenMovesOtherClientsFile(t *testing.T) {
	l, fsys, other, mine, h := newPendingX(t)
	root := fsys.Root()
	create(t, fsys, "z", "old z")
	create(t, other, "x", "theirs")
	if err := fsys.Rename(ctx, root, "x", root, "z", 0); err != nil {
		t.Fatal(err)
	}
	h.Release(ctx)
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := l.Lookup(ctx, dfms.EntryID(root), "z")
	if err != nil {
		t.Fatal(err)
	}
	if vfs.Ino(e.ID) != mine.Ino {
		t.Fatalf("z after renaming this mount's x over it is entry %d, want %d (this mount's x)", e.ID, mine.Ino)
	}
}

// Regression test; the bug was: utimens of a pending file then a write: live, the mtime is the write's; after a crash the recovered file keeps the older utimens time (an 'M' record before 'W' wins in replay).
func TestDeferredRecoveredPendingMTimeAfterWrite(t *testing.T) {
	l := newLocal(t)
	cache := t.TempDir()
	fsys := openFS(t, l, vfs.Options{CacheDir: cache})
	root := fsys.Root()
	a, h := createOpen(t, fsys, root, "f")
	old := time.Unix(1_000_000_000, 0)
	if _, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{MTime: &old}); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	writeAt(t, h, []byte("written after the utimens"), 0)
	if got, err := fsys.GetAttr(ctx, a.Ino); err != nil || got.MTime.Before(before) {
		t.Fatalf("live mtime %v, %v", got.MTime, err)
	}
	remountAfterCrash(t, fsys, l, cache)
	e, err := l.GetAttr(ctx, dfms.EntryID(a.Ino))
	if err != nil {
		t.Fatal(err)
	}
	if e.MTime.Before(before) {
		t.Fatalf("recovered mtime %v: the utimens before the write, not the write's time", e.MTime)
	}
}

// Passes: a pending file's chmod/rename/unlink sequence through a crash
// with write-back leaves the server as the mount showed it.
func TestDeferredWriteBackCrashPendingRenameUnlink(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	cache := t.TempDir()
	fsys := newWriteBackFS(t, l, cache)
	root := fsys.Root()
	d, err := fsys.Mkdir(ctx, root, "d", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	a, h := createOpen(t, fsys, d.Ino, "tmp")
	writeAt(t, h, []byte("object"), 0)
	h.Release(ctx)
	if err := fsys.Rename(ctx, d.Ino, "tmp", root, "obj", vfs.RenameNoReplace); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.SetAttr(ctx, a.Ino, nil, vfs.SetAttrIn{Mode: ptr(uint32(0o444))}); err != nil {
		t.Fatal(err)
	}
	_, h2 := createOpen(t, fsys, root, "gone")
	h2.Release(ctx)
	if err := fsys.Unlink(ctx, root, "gone"); err != nil {
		t.Fatal(err)
	}
	remountAfterCrash(t, fsys, l, cache)
	e, err := l.Lookup(ctx, dfms.EntryID(root), "obj")
	if err != nil || vfs.Ino(e.ID) != a.Ino || e.Mode != 0o444 {
		t.Fatalf("obj after recovery: %+v, %v", e, err)
	}
	if got := storedContent(t, svc, l, a.Ino); string(got) != "object" {
		t.Fatalf("obj holds %q", got)
	}
	if _, err := l.Lookup(ctx, dfms.EntryID(root), "gone"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("gone after recovery: %v", err)
	}
	if _, err := l.Lookup(ctx, dfms.EntryID(d.Ino), "tmp"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("tmp after recovery: %v", err)
	}
}

// Passes: random create/write/close/unlink/rename/chmod of a few names
// with write-back and the background remover running; after Sync the
// server holds exactly what the mount shows, with the same contents.
func TestDeferredRandomOpsMountMatchesServer(t *testing.T) {
	fsys, l, svc := writeBackLocal(t)
	root := fsys.Root()
	sub, err := fsys.Mkdir(ctx, root, "sub", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	dirs := []vfs.Ino{root, sub.Ino}
	names := []string{"a", "b", "c", "d"}
	want := map[string]string{} // "dir/name" -> content
	key := func(d vfs.Ino, n string) string { return fmt.Sprint(d, "/", n) }
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 600 {
		d := dirs[rng.IntN(2)]
		n := names[rng.IntN(len(names))]
		k := key(d, n)
		switch rng.IntN(5) {
		case 0, 1: // create or overwrite
			_, h, err := fsys.Create(ctx, d, n, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644, vfs.Caller{})
			if err != nil {
				t.Fatalf("step %d create %s: %v", step, k, err)
			}
			c := fmt.Sprint("step ", step)
			writeAt(t, h, []byte(c), 0)
			h.Flush(ctx)
			h.Release(ctx)
			want[k] = c
		case 2:
			err := fsys.Unlink(ctx, d, n)
			if _, ok := want[k]; ok != (err == nil) {
				t.Fatalf("step %d unlink %s: %v (exists %v)", step, k, err, ok)
			}
			delete(want, k)
		case 3:
			d2 := dirs[rng.IntN(2)]
			n2 := names[rng.IntN(len(names))]
			k2 := key(d2, n2)
			err := fsys.Rename(ctx, d, n, d2, n2, 0)
			c, ok := want[k]
			if ok != (err == nil) {
				t.Fatalf("step %d rename %s -> %s: %v (exists %v)", step, k, k2, err, ok)
			}
			if ok && k != k2 {
				delete(want, k)
				want[k2] = c
			}
		case 4:
			a, err := fsys.Lookup(ctx, d, n)
			if _, ok := want[k]; ok != (err == nil) {
				t.Fatalf("step %d lookup %s: %v", step, k, err)
			}
			if err == nil {
				if _, err := fsys.SetAttr(ctx, a.Ino, nil, vfs.SetAttrIn{Mode: ptr(uint32(0o600 + rng.IntN(2)*0o44))}); err != nil {
					t.Fatalf("step %d chmod %s: %v", step, k, err)
				}
			}
		}
		if step%50 == 49 {
			if err := fsys.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			check := func() {
				t.Helper()
				got := map[string]string{}
				for _, d := range dirs {
					es, err := l.ReadDir(ctx, dfms.EntryID(d))
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range es {
						if e.Kind == dfms.KindFile {
							got[key(d, e.Name)] = string(storedContent(t, svc, l, vfs.Ino(e.ID)))
						}
					}
					des, err := fsys.ReadDir(ctx, d)
					if err != nil {
						t.Fatal(err)
					}
					var mnt []string
					for _, de := range des {
						if !de.Attr.IsDir() {
							mnt = append(mnt, de.Name)
						}
					}
					var srv []string
					for _, e := range es {
						if e.Kind == dfms.KindFile {
							srv = append(srv, e.Name)
						}
					}
					sort.Strings(mnt)
					sort.Strings(srv)
					if strings.Join(mnt, ",") != strings.Join(srv, ",") {
						t.Fatalf("step %d dir %d: mount lists %v, server %v", step, d, mnt, srv)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("step %d: server holds %v, want %v", step, got, want)
				}
			}
			check()
		}
	}
}

// Regression test; the bug was: fsync(2) of a file no longer makes an earlier acknowledged unlink (of another file) reach the backend, so Syncer.Sync does not cover it (lost on a machine crash; the removals log is never fsync'ed).
func TestDeferredFsyncCoversEarlierUnlink(t *testing.T) {
	l := newLocal(t)
	fsys, _ := newFS(t, l)
	defer fsys.Close(ctx)
	root := fsys.Root()
	x := create(t, fsys, "x", "doomed")
	y := create(t, fsys, "y", "kept")
	if err := fsys.Unlink(ctx, root, "x"); err != nil {
		t.Fatal(err)
	}
	h := mustOpen(t, fsys, y.Ino, os.O_RDWR)
	defer h.Release(ctx)
	if err := h.Fsync(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err := l.GetAttr(ctx, dfms.EntryID(x.Ino)); err != nil || e.Live {
		t.Fatalf("x after unlink and an fsync: live=%v, %v: the unlink is not on the backend, so the barrier did not cover it", e.Live, err)
	}
}

// Passes: independent directories worked on concurrently (the kernel
// serializes operations within one directory) with write-back, the
// remover, Sync and stat by inode running alongside: no race, no
// deadlock, and the server ends up as the mount shows.
func TestDeferredConcurrentDirsStress(t *testing.T) {
	fsys, l, svc := writeBackLocal(t)
	root := fsys.Root()
	const workers = 4
	type result struct {
		dir  vfs.Ino
		want map[string]string
		err  error
	}
	res := make(chan result, workers)
	stop := make(chan struct{})
	go func() { // Sync and stats alongside
		for {
			select {
			case <-stop:
				return
			default:
			}
			fsys.Sync(ctx)
			des, _ := fsys.ReadDir(ctx, root)
			for _, de := range des {
				fsys.GetAttr(ctx, de.Attr.Ino)
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	for w := range workers {
		d, err := fsys.Mkdir(ctx, root, fmt.Sprint("w", w), 0o755, vfs.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			want := map[string]string{}
			names := []string{"a", "b", "c"}
			for step := range 300 {
				n := names[rng.IntN(3)]
				switch rng.IntN(4) {
				case 0, 1:
					_, h, err := fsys.Create(ctx, d.Ino, n, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644, vfs.Caller{})
					if err != nil {
						res <- result{err: fmt.Errorf("create %s: %w", n, err)}
						return
					}
					c := fmt.Sprint(w, " step ", step)
					h.Write(ctx, []byte(c), 0)
					h.Flush(ctx)
					h.Release(ctx)
					want[n] = c
				case 2:
					err := fsys.Unlink(ctx, d.Ino, n)
					if _, ok := want[n]; ok != (err == nil) {
						res <- result{err: fmt.Errorf("step %d unlink %s: %v", step, n, err)}
						return
					}
					delete(want, n)
				case 3:
					n2 := names[rng.IntN(3)]
					err := fsys.Rename(ctx, d.Ino, n, d.Ino, n2, 0)
					c, ok := want[n]
					if ok != (err == nil) {
						res <- result{err: fmt.Errorf("step %d rename %s->%s: %v", step, n, n2, err)}
						return
					}
					if ok && n != n2 {
						delete(want, n)
						want[n2] = c
					}
				}
			}
			res <- result{dir: d.Ino, want: want}
		}()
	}
	var all []result
	for range workers {
		r := <-res
		if r.err != nil {
			close(stop)
			t.Fatal(r.err)
		}
		all = append(all, r)
	}
	close(stop)
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		es, err := l.ReadDir(ctx, dfms.EntryID(r.dir))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, e := range es {
			got[e.Name] = string(storedContent(t, svc, l, vfs.Ino(e.ID)))
		}
		if fmt.Sprint(got) != fmt.Sprint(r.want) {
			t.Fatalf("dir %d: server holds %v, want %v", r.dir, got, r.want)
		}
	}
}

// Regression test; the bug was: a file created here and chowned later
// moved its directory's times to the chown's time when its deferred
// create reached the server (pjdfstest link/00 saw the directory's ctime
// move under a failed link). The directory keeps the create's time.
func TestDeferredCreateThenChownKeepsDirTimes(t *testing.T) {
	l, _, fsys, letGo := newStepped(t) // the write-back's committers held: the create stays deferred
	root := fsys.Root()
	d, err := fsys.Mkdir(ctx, root, "d", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	a, h := createOpen(t, fsys, d.Ino, "f")
	release(t, h)
	if _, err := l.GetAttr(ctx, dfms.EntryID(a.Ino)); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("the file reached the server before the chown: %v", err)
	}
	before := testkit.Must(fsys.GetAttr(ctx, d.Ino))(t)
	time.Sleep(20 * time.Millisecond) // the chown's time must differ from the create's
	uid := uint32(4242)
	if _, err := fsys.SetAttr(ctx, a.Ino, nil, vfs.SetAttrIn{UID: &uid}); err != nil {
		t.Fatal(err)
	}
	letGo()
	if err := fsys.Sync(ctx); err != nil { // the deferred create reaches the server
		t.Fatal(err)
	}
	e := testkit.Must(l.GetAttr(ctx, dfms.EntryID(d.Ino)))(t)
	if !e.CTime.Equal(before.CTime) || !e.MTime.Equal(before.MTime) {
		t.Fatalf("the directory's times on the server: mtime %v ctime %v, want the create's %v %v", e.MTime, e.CTime, before.MTime, before.CTime)
	}
	if f := testkit.Must(l.GetAttr(ctx, dfms.EntryID(a.Ino)))(t); f.UID != 4242 || !f.CTime.After(before.CTime) {
		t.Fatalf("the file on the server: %+v, want uid 4242 and the chown's ctime", f)
	}
}
