package vfs_test

import (
	"os"
	"testing"

	"github.com/dfms/dfms/fusefs/vfs"
)

// An unmount that comes while a handle of an unlinked, written file is
// still open (the kernel sends the release of a closed descriptor after
// close(2) returns, so it may arrive after the unmount started) drops the
// file's data, as the last close would have: Close reports nothing left
// to commit, and nothing is kept for the next mount.
func TestCloseDropsUnlinkedFileStillOpen(t *testing.T) {
	b := newLocal(t)
	cache := t.TempDir()
	fsys := openFS(t, b, vfs.Options{CacheDir: cache})
	a := create(t, fsys, "f", "still readable")
	r := mustOpen(t, fsys, a.Ino, os.O_RDONLY)
	w := mustOpen(t, fsys, a.Ino, os.O_WRONLY)
	if err := fsys.Unlink(ctx, fsys.Root(), "f"); err != nil {
		t.Fatal(err)
	}
	writeAt(t, w, []byte("gone"), 0)
	release(t, w)
	_ = r // never released: its release has not arrived when the mount closes
	if err := fsys.Close(ctx); err != nil {
		t.Fatalf("close with an unlinked file still open: %v", err)
	}
	again := openFS(t, b, vfs.Options{CacheDir: cache})
	defer closeFS(t, again)
	if _, err := again.Lookup(ctx, again.Root(), "f"); err == nil {
		t.Fatal("the unlinked file came back")
	}
}
