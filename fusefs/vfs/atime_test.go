package vfs_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
)

// A read moves the atime as relatime says: the first read after a
// change does, a later one does not; neither moves the ctime, and reads
// do not wait for it.
func TestReadMovesATimeOnceAfterAChange(t *testing.T) {
	b := &counting{Backend: newLocal(t)}
	fsys, a, before := syncedFile(t, b, b.Backend)
	defer fsys.Close(ctx)
	read := func() {
		t.Helper()
		h := mustOpen(t, fsys, a.Ino, os.O_RDONLY)
		if got := readAll(t, h); string(got) != "content" {
			t.Fatalf("read %q", got)
		}
		h.Release(ctx)
		if err := fsys.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	setattrs := b.setattrs.Load()
	read()
	after, err := b.Backend.GetAttr(ctx, dfms.EntryID(a.Ino))
	if err != nil {
		t.Fatal(err)
	}
	if !after.ATime.After(before.MTime) || !after.CTime.Equal(before.CTime) || !after.MTime.Equal(before.MTime) {
		t.Fatalf("after the first read: atime %v ctime %v mtime %v; before: atime %v ctime %v mtime %v",
			after.ATime, after.CTime, after.MTime, before.ATime, before.CTime, before.MTime)
	}
	if n := b.setattrs.Load() - setattrs; n != 1 {
		t.Fatalf("the first read sent %d attribute changes, want 1", n)
	}
	if got := mustLookup(t, fsys, fsys.Root(), "f"); !got.ATime.Equal(after.ATime) {
		t.Fatalf("the mount shows atime %v, the backend has %v", got.ATime, after.ATime)
	}
	read()
	if n := b.setattrs.Load() - setattrs; n != 1 {
		t.Fatalf("a second read sent an attribute change (%d in all)", n)
	}
	again, err := b.Backend.GetAttr(ctx, dfms.EntryID(a.Ino))
	if err != nil || !again.ATime.Equal(after.ATime) {
		t.Fatalf("the second read moved the atime to %v (%v), was %v", again.ATime, err, after.ATime)
	}
}

// unreachableAccess is a backend whose server cannot be reached, for
// accesses only, while down is set: a request marked WithoutWait fails at
// once, another would wait (it is counted, and fails).
type unreachableAccess struct {
	*counting
	down   atomic.Bool
	waited atomic.Int64
}

func (u *unreachableAccess) SetAttr(ctx context.Context, id dfms.EntryID, a dfms.SetAttr) (vfs.Entry, error) {
	if a.Accessed && u.down.Load() {
		if !vfs.NoWait(ctx) {
			u.waited.Add(1)
		}
		return vfs.Entry{}, dfms.Errorf("test.SetAttr", dfms.Unavailable, "the server cannot be reached")
	}
	return u.counting.SetAttr(ctx, id, a)
}

// An access time is never waited for: while the server cannot be reached,
// reads and syncs go on, the mount shows the read's atime, and sends it
// once the server is back. Nothing else the mount shows of the file
// changes with it.
func TestAccessTimeWaitsForNoServer(t *testing.T) {
	b := &unreachableAccess{counting: &counting{Backend: newLocal(t)}}
	fsys, a, before := syncedFile(t, b, b.Backend)
	defer fsys.Close(ctx)
	b.down.Store(true)
	h := mustOpen(t, fsys, a.Ino, os.O_RDONLY)
	if got := readAll(t, h); string(got) != "content" {
		t.Fatalf("read %q", got)
	}
	h.Release(ctx)
	if err := fsys.Sync(ctx); err != nil {
		t.Fatalf("sync with the server away: %v", err)
	}
	shown := mustLookup(t, fsys, fsys.Root(), "f")
	if !shown.ATime.After(before.MTime) || shown.Size != 7 || !shown.MTime.Equal(before.MTime) || !shown.CTime.Equal(before.CTime) {
		t.Fatalf("with the server away the mount shows %+v; before the read: %+v", shown, before)
	}
	if got, _ := b.Backend.GetAttr(ctx, dfms.EntryID(a.Ino)); !got.ATime.Equal(before.ATime) {
		t.Fatalf("the atime reached an unreachable server")
	}
	b.down.Store(false)
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := b.Backend.GetAttr(ctx, dfms.EntryID(a.Ino))
	if err != nil || !after.ATime.Equal(shown.ATime) {
		t.Fatalf("once the server is back: atime %v (%v), want the read's %v", after.ATime, err, shown.ATime)
	}
	if n := b.waited.Load(); n != 0 {
		t.Fatalf("%d access time requests waited for the server", n)
	}
}

// syncedFile returns an FS over b with file "f" ("content") created and
// synced, its attributes, and its entry as the backend under b has it.
func syncedFile(t *testing.T, b vfs.Backend, under vfs.Backend) (*vfs.FS, vfs.Attr, vfs.Entry) {
	t.Helper()
	fsys, _ := newFS(t, b)
	a := create(t, fsys, "f", "content")
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := under.GetAttr(ctx, dfms.EntryID(a.Ino))
	if err != nil {
		t.Fatal(err)
	}
	return fsys, a, e
}
