package vfs_test

import (
	"os"
	"testing"

	"github.com/dfms/dfms/fusefs/vfs"
)

// A change of a file's content moves its ctime with its mtime at once,
// before the change is committed (write-back): stat never shows a ctime
// older than the mtime after ftruncate, O_TRUNC or a write (POSIX: each
// of them marks both for update).
func TestCTimeFollowsContentChanges(t *testing.T) {
	fsys, _ := newFS(t, newLocal(t))
	a := create(t, fsys, "f", "some content")
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		got, err := fsys.GetAttr(ctx, a.Ino)
		if err != nil {
			t.Fatal(err)
		}
		if got.CTime.Before(got.MTime) {
			t.Errorf("after %s: ctime %v is before mtime %v", what, got.CTime, got.MTime)
		}
	}

	h := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	size := int64(3)
	if _, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &size}); err != nil {
		t.Fatal(err)
	}
	check("ftruncate")
	writeAt(t, h, []byte("more"), 3)
	check("a write")
	release(t, h)

	h = mustOpen(t, fsys, a.Ino, os.O_WRONLY|os.O_TRUNC)
	check("open(O_TRUNC)")
	release(t, h)
}
