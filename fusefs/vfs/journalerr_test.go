package vfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs"
	"github.com/dfms/dfms/fusefs/vfs"
)

// smallDisk mounts a tmpfs of 1 MiB on a temporary directory until t ends:
// a disk that can really be filled. It needs root (CAP_SYS_ADMIN).
func smallDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); run as root", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount the tmpfs: %v", err)
		}
	})
	return dir
}

// fillDisk fills the file system of dir with a file until it is full, and
// returns the function that removes that file again.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	return func() { fillDiskFree(t, dir) }
}

// fillDiskFree removes what fillDisk wrote.
func fillDiskFree(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// untilFails runs op (i counts the calls) until it fails, at most n times,
// and returns its error; it fails the test if op never fails.
func untilFails(t *testing.T, what string, n int, op func(i int) error) (int, error) {
	t.Helper()
	for i := range n {
		if err := op(i); err != nil {
			return i, err
		}
	}
	t.Fatalf("%s: %d calls succeeded on a full disk, whose journal records cannot all be written", what, n)
	return 0, nil
}

// wantEIO checks that err is what the mount answers EIO.
func wantEIO(t *testing.T, what string, err error) {
	t.Helper()
	if e := fusefs.Errno(err); e != syscall.EIO {
		t.Fatalf("%s: got %v (errno %v), want EIO", what, err, e)
	}
}

// Each change to a file being written is recorded in its crash journal
// before it is acknowledged. When the cache disk is full and a record
// cannot be written, the change fails with EIO and is not made; once there
// is room again, changes go on, and a crash recovers exactly the changes
// acknowledged.
func TestJournalWriteFails(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	cache := smallDisk(t)
	fsys := openFS(t, l, vfs.Options{CacheDir: cache, WriteBack: true})
	root := fsys.Root()
	// A file created here and still open: pending, so that chmod and
	// rename are changes recorded in its journal too.
	a, h := createOpen(t, fsys, root, "f0")
	writeAt(t, h, []byte("0123456789"), 0)
	name := "f0"
	mode := uint32(0o640)
	size := int64(10)
	var mtime time.Time // set by utimens

	steps := []struct {
		what string
		op   func(i int) error  // one change; it must change the file each time
		same func(t *testing.T) // the file shows the changes acknowledged
	}{
		{"chmod", func(i int) error {
			m := uint32(0o600 + i%2*0o40)
			_, err := fsys.SetAttr(ctx, a.Ino, nil, vfs.SetAttrIn{Mode: &m})
			if err == nil {
				mode = m
			}
			return err
		}, func(t *testing.T) {
			if got, err := fsys.GetAttr(ctx, a.Ino); err != nil || got.Mode&0o7777 != mode {
				t.Fatalf("after a failed chmod: mode %o, %v; want %o", got.Mode&0o7777, err, mode)
			}
		}},
		{"rename", func(i int) error {
			next := "f" + string(rune('0'+(i+1)%2))
			err := fsys.Rename(ctx, root, name, root, next, 0)
			if err == nil {
				name = next
			}
			return err
		}, func(t *testing.T) {
			if got, err := fsys.Lookup(ctx, root, name); err != nil || got.Ino != a.Ino {
				t.Fatalf("after a failed rename: %s is %+v, %v", name, got, err)
			}
		}},
		{"ftruncate", func(i int) error {
			s := int64(9 + i%2)
			_, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &s})
			if err == nil {
				size = s
			}
			return err
		}, func(t *testing.T) {
			if got, err := fsys.GetAttr(ctx, a.Ino); err != nil || got.Size != size {
				t.Fatalf("after a failed ftruncate: size %d, %v; want %d", got.Size, err, size)
			}
		}},
		{"write", func(i int) error { // the stage has room: only the journal grows
			_, err := h.Write(ctx, []byte{'a' + byte(i%26)}, 0)
			return err
		}, func(t *testing.T) {}},
		{"utimens", func(i int) error {
			tm := time.Unix(1_000_000_000+int64(i), 0)
			_, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{MTime: &tm})
			if err == nil {
				mtime = tm
			}
			return err
		}, func(t *testing.T) {
			if mtime.IsZero() {
				return
			}
			if got, err := fsys.GetAttr(ctx, a.Ino); err != nil || !got.MTime.Equal(mtime) {
				t.Fatalf("after a failed utimens: mtime %v, %v; want %v", got.MTime, err, mtime)
			}
		}},
	}
	for _, s := range steps {
		t.Run(s.what, func(t *testing.T) {
			free := fillDisk(t, cache)
			defer free()
			n, err := untilFails(t, s.what, 1000, s.op)
			wantEIO(t, s.what+" on a full disk", err)
			s.same(t)
			free = func() {}
			fillDiskFree(t, cache)
			if err := s.op(n); err != nil {
				t.Fatalf("%s once there is room again: %v", s.what, err)
			}
			s.same(t)
		})
	}
	want := readAll(t, h) // what this mount shows
	fsys.Crash()

	fsys2 := openFS(t, l, vfs.Options{CacheDir: cache})
	defer fsys2.Close(ctx)
	e, err := l.Lookup(ctx, dfms.EntryID(root), name)
	if err != nil || vfs.Ino(e.ID) != a.Ino {
		t.Fatalf("after recovery %s is %+v, %v; want the file written", name, e, err)
	}
	if e.Mode&0o7777 != mode || !e.MTime.Equal(mtime) {
		t.Errorf("after recovery: mode %o mtime %v, want %o %v", e.Mode&0o7777, e.MTime, mode, mtime)
	}
	if got := storedContent(t, svc, l, a.Ino); string(got) != string(want) {
		t.Errorf("after recovery the server has %q, want %q", got, want)
	}
}
