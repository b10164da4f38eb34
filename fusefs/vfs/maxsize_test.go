package vfs_test

import (
	"os"
	"path/filepath"
	"strings"
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
	const limit = 1 << 20
	fsys := openFS(t, newLocal(t), vfs.Options{CacheDir: t.TempDir(), MaxFileSize: limit})
	defer closeFS(t, fsys)
	a := create(t, fsys, "f", "0123456789")
	h := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	defer release(t, h)

	for _, size := range []int64{limit + 1, 999999999999999} {
		_, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &size})
		testkit.WantKind(t, err, dfms.TooLarge, "truncate to %d", size)
	}
	testkit.WantKind(t, h.Allocate(ctx, limit-1, 2, false), dfms.TooLarge, "fallocate past the limit")
	if got := testkit.Must(fsys.GetAttr(ctx, a.Ino))(t); got.Size != 10 {
		t.Fatalf("after refused truncates: size %d, want 10", got.Size)
	}
	n, err := h.Write(ctx, []byte("abcd"), limit-2)
	if err != nil || n != 2 {
		t.Fatalf("a write across the limit: %d, %v; want 2 bytes written", n, err)
	}
	_, err = h.Write(ctx, []byte("x"), limit)
	testkit.WantKind(t, err, dfms.TooLarge, "a write at the limit")
	size := int64(limit)
	if _, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &size}); err != nil {
		t.Fatalf("truncate to the limit: %v", err)
	}
	if got := testkit.Must(fsys.GetAttr(ctx, a.Ino))(t); got.Size != limit {
		t.Fatalf("size %d, want %d", got.Size, limit)
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

// A journal that extends a file past the limit (written by a release
// without one, or under a larger --max-file-size) is not replayed into a
// commit: the next mount starts, keeps the stage and says so, rather than
// committing a file it would have to list in billions of chunks.
func TestRecoveryPastMaxFileSize(t *testing.T) {
	b, _ := newLocalParams(t, smallChunks)
	cache := t.TempDir()
	fsys := openFS(t, b, vfs.Options{CacheDir: cache, MaxFileSize: 1 << 62})
	a := create(t, fsys, "f", "small")
	h := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	size := int64(999999999999999)
	if _, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &size}); err != nil {
		t.Fatal(err)
	}
	fsys2 := remountAfterCrash(t, fsys, b, cache)
	got := testkit.Must(fsys2.Lookup(ctx, fsys2.Root(), "f"))(t)
	if got.Size != 5 {
		t.Fatalf("after the remount: size %d, want the committed 5", got.Size)
	}
	err := fsys2.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "uncommitted data is left") {
		t.Fatalf("close: %v, want the kept stage reported", err)
	}
}

// A stage whose recovery began and never ended (the mount died replaying
// it: its marker is left) is not replayed again: the next mount sets it
// aside in the cache directory, logs it, reports it at Close, and starts;
// the mount after that does not meet it again.
func TestRecoveryThatKilledAMountIsSetAside(t *testing.T) {
	b, _ := newLocalParams(t, smallChunks)
	cache := t.TempDir()
	fsys := openFS(t, b, vfs.Options{CacheDir: cache})
	a := create(t, fsys, "f", "small")
	h := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	writeAt(t, h, []byte("poison"), 0)
	fsys.Crash()
	journals, err := filepath.Glob(filepath.Join(cache, "stage", "*.journal"))
	if err != nil || len(journals) != 1 {
		t.Fatalf("journals after the crash: %v, %v", journals, err)
	}
	// As a recovery that died would leave it.
	marker := strings.TrimSuffix(journals[0], ".journal") + ".replaying"
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fsys2 := openFS(t, b, vfs.Options{CacheDir: cache})
	if got := testkit.Must(fsys2.Lookup(ctx, fsys2.Root(), "f"))(t); got.Size != 5 {
		t.Fatalf("after the remount: size %d, want the committed 5 (the set-aside stage not replayed)", got.Size)
	}
	aside, _ := filepath.Glob(filepath.Join(cache, "aside", "*"))
	if len(aside) != 2 {
		t.Fatalf("set aside: %v, want the stage and its journal", aside)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "stage", "*")); len(left) != 0 {
		t.Fatalf("left in the stage directory: %v", left)
	}
	if err := fsys2.Close(ctx); err == nil || !strings.Contains(err.Error(), "set aside") {
		t.Fatalf("close: %v, want the set-aside stage reported", err)
	}
	fsys3 := openFS(t, b, vfs.Options{CacheDir: cache})
	if err := fsys3.Close(ctx); err != nil {
		t.Fatalf("the next mount: %v", err)
	}
}
