package fusefs_test

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Special files through a real mount, on both backends: a FIFO carries
// bytes from a writer process to a reader, a UNIX socket bound in the
// mount accepts a connection, a device node keeps its number (and does
// not open: the mount is nodev); all of them are listed with their type, chmod'ed, chown'ed,
// renamed and unlinked like files.
func TestSpecialFiles(t *testing.T) {
	bothMounts(t, testSpecialFiles)
}

func testSpecialFiles(t *testing.T, d string, _ serverContent) {
	// A FIFO between a writer and a reader.
	fifo := filepath.Join(d, "fifo")
	if err := unix.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	wantType(t, fifo, unix.S_IFIFO, 0o640, 0)
	done := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			_, err = w.Write([]byte("through the pipe"))
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		done <- err
	}()
	r, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != "through the pipe" {
		t.Fatalf("read from the FIFO: %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write to the FIFO: %v", err)
	}

	// A UNIX socket bound in the mount.
	sock := filepath.Join(d, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "hi" {
		t.Fatalf("read from the socket: %q, %v", got, err)
	}
	wantType(t, sock, unix.S_IFSOCK, 0, 0)

	// A device node (root only: the kernel lets no one else make one).
	want := []string{"fifo", "sock"}
	if os.Geteuid() == 0 {
		null := filepath.Join(d, "null")
		dev := unix.Mkdev(1, 3) // /dev/null
		if err := unix.Mknod(null, unix.S_IFCHR|0o644, int(dev)); err != nil {
			t.Fatal(err)
		}
		wantType(t, null, unix.S_IFCHR, 0o644, dev)
		// The mount is nodev, as FUSE mounts are: the node is kept, not
		// opened.
		if _, err := os.Open(null); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("open of a device node in a nodev mount: %v, want EACCES", err)
		}
		blk := filepath.Join(d, "blk")
		if err := unix.Mknod(blk, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))); err != nil {
			t.Fatal(err)
		}
		wantType(t, blk, unix.S_IFBLK, 0o600, unix.Mkdev(7, 200))
		if err := os.Chown(fifo, 1234, 5678); err != nil {
			t.Fatal(err)
		}
		var s unix.Stat_t
		if err := unix.Lstat(fifo, &s); err != nil || s.Uid != 1234 || s.Gid != 5678 {
			t.Fatalf("after chown: uid %d gid %d, %v", s.Uid, s.Gid, err)
		}
		want = []string{"blk", "fifo", "null", "sock"}
	}

	// Listed with their types; chmod, rename and unlink as files.
	ents, err := os.ReadDir(d)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range ents {
		listed = append(listed, e.Name())
		if e.Type()&os.ModeType == 0 || e.IsDir() {
			t.Errorf("%s is listed as type %v", e.Name(), e.Type())
		}
	}
	if !slices.Equal(listed, want) {
		t.Fatalf("listed %v, want %v", listed, want)
	}
	if err := os.Chmod(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	wantType(t, fifo, unix.S_IFIFO, 0o600, 0)
	moved := filepath.Join(d, "moved")
	if err := os.Rename(fifo, moved); err != nil {
		t.Fatal(err)
	}
	wantType(t, moved, unix.S_IFIFO, 0o600, 0)
	if err := os.Remove(moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, moved, sock} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want it gone", p, err)
		}
	}
	// mknod of a regular file is a create.
	reg := filepath.Join(d, "reg")
	if err := unix.Mknod(reg, unix.S_IFREG|0o644, 0); err != nil {
		t.Fatal(err)
	}
	wantType(t, reg, unix.S_IFREG, 0o644, 0)
}

// wantType checks path's type, permission bits (if perm is not 0) and
// device number, and returns its stat.
func wantType(t *testing.T, path string, typ, perm uint32, rdev uint64) unix.Stat_t {
	t.Helper()
	var s unix.Stat_t
	if err := unix.Lstat(path, &s); err != nil {
		t.Fatal(err)
	}
	if s.Mode&syscall.S_IFMT != typ || (perm != 0 && s.Mode&0o7777 != perm) || s.Rdev != rdev || s.Size != 0 {
		t.Fatalf("%s: mode %o rdev %#x size %d, want type %o perm %o rdev %#x size 0", filepath.Base(path), s.Mode, s.Rdev, s.Size, typ, perm, rdev)
	}
	return s
}
