package vfs_test

import (
	"os"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
)

func TestRelatimeDue(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name                string
		atime, mtime, ctime time.Time
		want                bool
	}{
		{"read since the last change", now.Add(-time.Hour), now.Add(-2 * time.Hour), now.Add(-2 * time.Hour), false},
		{"changed since the last read", now.Add(-time.Hour), now.Add(-time.Minute), now.Add(-time.Minute), true},
		{"atime equal to mtime", now.Add(-time.Hour), now.Add(-time.Hour), now.Add(-2 * time.Hour), true},
		{"attributes changed since the read", now.Add(-time.Hour), now.Add(-2 * time.Hour), now.Add(-time.Minute), true},
		{"a day old", now.Add(-24 * time.Hour), now.Add(-48 * time.Hour), now.Add(-48 * time.Hour), true},
		{"almost a day old", now.Add(-23 * time.Hour), now.Add(-48 * time.Hour), now.Add(-48 * time.Hour), false},
	} {
		if got := vfs.RelatimeDue(c.atime, c.mtime, c.ctime, now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A read moves the atime as relatime says: the first read after a
// change does, a later one does not; neither moves the ctime, and reads
// do not wait for it.
func TestReadMovesATimeOnceAfterAChange(t *testing.T) {
	b := &counting{Backend: newLocal(t)}
	fsys, _ := newFS(t, b)
	defer fsys.Close(ctx)
	a := create(t, fsys, "f", "content")
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := b.Backend.GetAttr(ctx, dfms.EntryID(a.Ino))
	if err != nil {
		t.Fatal(err)
	}
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
