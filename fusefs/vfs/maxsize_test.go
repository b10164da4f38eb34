package vfs_test

import (
	"os"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// A file cannot grow past Options.MaxFileSize: a truncate or fallocate
// beyond it fails with TooLarge (EFBIG) and changes nothing, a write is
// cut at it and one that starts there fails, as write(2) at a file size
// limit does. The default bounds what one commit must list (a file
// extended to 999,999,999,999,999 bytes once grew the mount's memory
// until the kernel killed it).
func TestMaxFileSize(t *testing.T) {
	const max = 1 << 20
	fsys := openFS(t, newLocal(t), vfs.Options{CacheDir: t.TempDir(), MaxFileSize: max})
	defer closeFS(t, fsys)
	a := create(t, fsys, "f", "0123456789")
	h := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	defer release(t, h)

	for _, size := range []int64{max + 1, 999999999999999} {
		_, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &size})
		testkit.WantKind(t, err, dfms.TooLarge, "truncate to %d", size)
	}
	testkit.WantKind(t, h.Allocate(ctx, max-1, 2, false), dfms.TooLarge, "fallocate past the limit")
	if got := testkit.Must(fsys.GetAttr(ctx, a.Ino))(t); got.Size != 10 {
		t.Fatalf("after refused truncates: size %d, want 10", got.Size)
	}
	n, err := h.Write(ctx, []byte("abcd"), max-2)
	if err != nil || n != 2 {
		t.Fatalf("a write across the limit: %d, %v; want 2 bytes written", n, err)
	}
	_, err = h.Write(ctx, []byte("x"), max)
	testkit.WantKind(t, err, dfms.TooLarge, "a write at the limit")
	size := int64(max)
	if _, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &size}); err != nil {
		t.Fatalf("truncate to the limit: %v", err)
	}
	if got := testkit.Must(fsys.GetAttr(ctx, a.Ino))(t); got.Size != max {
		t.Fatalf("size %d, want %d", got.Size, max)
	}
}

// The default limit is 16 TiB, as ext4's.
func TestMaxFileSizeDefault(t *testing.T) {
	fsys := openFS(t, newLocal(t), vfs.Options{CacheDir: t.TempDir()})
	defer closeFS(t, fsys)
	a := create(t, fsys, "f", "")
	h := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	defer release(t, h)
	size := int64(999999999999999)
	_, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &size})
	testkit.WantKind(t, err, dfms.TooLarge, "truncate to %d", size)
	if vfs.DefaultMaxFileSize != 16<<40 {
		t.Fatalf("DefaultMaxFileSize %d", vfs.DefaultMaxFileSize)
	}
}
