package fusefs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs"
	"github.com/dfms/dfms/fusefs/fusetest"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// writeFile writes data to the new file name in the root of the mount
// and returns its path.
func (e *env) writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	writeFile(t, p, data)
	return p
}

// openFile opens path with flag, failing t on an error.
func openFile(t *testing.T, path string, flag int) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes %.40q, want %d bytes %.40q", path, len(got), got, len(want), want)
	}
}

// wantErrno checks that err is the errno want.
func wantErrno(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// entryID returns the entry id of path: its inode number.
func entryID(t *testing.T, path string) dfms.EntryID {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return dfms.EntryID(st.Ino)
}

// stored returns the content of the current version on the server.
func (e *env) stored(t *testing.T, path string) []byte {
	t.Helper()
	e.sync(t)
	return e.storedNow(t, path)
}

// storedNow is stored without waiting for write-back: what the server
// has at this moment.
func (e *env) storedNow(t *testing.T, path string) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := e.files.ReadFile(ctx, e.owner, entryID(t, path), &b); err != nil {
		t.Fatalf("read %s from the server: %v", path, err)
	}
	return b.Bytes()
}

// sync waits, as fsync of a directory of the mount does, until every
// file closed so far is committed (write-back).
func (e *env) sync(t *testing.T) {
	t.Helper()
	fusetest.Fsync(t, e.dir)
}

// versions returns the number of versions of path on the server.
func (e *env) versions(t *testing.T, path string) int {
	t.Helper()
	e.sync(t)
	vs, err := e.files.Versions(ctx, e.owner, entryID(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return len(vs)
}

func TestWriteReadBack(t *testing.T) {
	e := mount(t)
	for _, n := range []int{0, 1, 4095, 4096, 128<<10 + 7, 3<<20 + 11} {
		p := filepath.Join(e.dir, fmt.Sprintf("f%d", n))
		data := testkit.RandBytes(uint64(n), n)
		writeFile(t, p, data)
		checkFile(t, p, data)
		if got := e.stored(t, p); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: the server has %d bytes, not the written ones", n, len(got))
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(n) || fi.Mode() != 0o644 {
			t.Errorf("%s: got size %d mode %v, want %d -rw-r--r--", p, fi.Size(), fi.Mode(), n)
		}
	}
}

func TestAppend(t *testing.T) {
	e := mount(t)
	p := e.writeFile(t, "log", []byte("one\n"))
	for _, line := range []string{"two\n", "three\n"} {
		f := openFile(t, p, os.O_WRONLY|os.O_APPEND)
		// A positional write is ignored in append mode by the kernel's
		// contract: the data goes to the end.
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	checkFile(t, p, []byte("one\ntwo\nthree\n"))
	if got, want := e.versions(t, p), 3; got != want {
		t.Errorf("got %d versions, want %d", got, want)
	}
}

func TestRandomWrite(t *testing.T) {
	e := mount(t)
	want := testkit.RandBytes(1, 2<<20)
	p := e.writeFile(t, "data", want)
	f := openFile(t, p, os.O_RDWR)
	patches := []struct {
		off int64
		b   []byte
	}{{1 << 20, []byte("middle")}, {0, []byte("start")}, {int64(len(want)) - 3, []byte("end")}, {777777, testkit.RandBytes(2, 300000)}}
	for _, pt := range patches {
		if _, err := f.WriteAt(pt.b, pt.off); err != nil {
			t.Fatal(err)
		}
		copy(want[pt.off:], pt.b)
	}
	// Reads through the same and another handle see the writes before
	// close: they share the stage.
	got := make([]byte, 5)
	if _, err := f.ReadAt(got, 0); err != nil || string(got) != "start" {
		t.Fatalf("read back before close: got %q, %v", got, err)
	}
	checkFile(t, p, want)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, want)
	if !bytes.Equal(e.stored(t, p), want) {
		t.Fatal("the server's version differs from the written bytes")
	}
	if got := e.versions(t, p); got != 2 {
		t.Errorf("got %d versions, want 2", got)
	}
}

func TestTruncate(t *testing.T) {
	e := mount(t)
	data := testkit.RandBytes(3, 100000)
	p := e.writeFile(t, "t", data)

	// By path: each truncate is a version.
	if err := os.Truncate(p, 1000); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, data[:1000])
	if err := os.Truncate(p, 5000); err != nil {
		t.Fatal(err)
	}
	checkFile(t, p, append(slices.Clone(data[:1000]), make([]byte, 4000)...))

	// Through a handle: committed at close, sparse in between.
	f := openFile(t, p, os.O_RDWR)
	if err := f.Truncate(10); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 1<<19); err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 1<<20 {
		t.Fatalf("stat before close: %v, %v", fi, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 1<<20)
	copy(want, data[:10])
	want[1<<19] = 'x'
	checkFile(t, p, want)
	if !bytes.Equal(e.stored(t, p), want) {
		t.Fatal("the server's version differs")
	}
	if got := e.versions(t, p); got != 4 {
		t.Errorf("got %d versions, want 4 (write, 2 truncates, 1 close)", got)
	}
	// O_TRUNC then a write is one version, not two.
	writeFile(t, p, []byte("new"))
	if got := e.versions(t, p); got != 5 {
		t.Errorf("after O_TRUNC and write: got %d versions, want 5", got)
	}
}

func TestRename(t *testing.T) {
	e := mount(t)
	d := e.dir
	for _, dir := range []string{"a", "b", "a/sub", "full"} {
		if err := os.Mkdir(filepath.Join(d, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(d, "a/f"), []byte("f"))
	writeFile(t, filepath.Join(d, "b/g"), []byte("g"))
	writeFile(t, filepath.Join(d, "full/x"), []byte("x"))
	id := entryID(t, filepath.Join(d, "a/f"))

	// Across directories, keeping the identity.
	if err := os.Rename(filepath.Join(d, "a/f"), filepath.Join(d, "b/f")); err != nil {
		t.Fatal(err)
	}
	if got := entryID(t, filepath.Join(d, "b/f")); got != id {
		t.Errorf("renamed file has id %d, want %d", got, id)
	}
	if _, err := os.Lstat(filepath.Join(d, "a/f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old name: got %v, want not exist", err)
	}
	// Over an existing file.
	if err := os.Rename(filepath.Join(d, "b/f"), filepath.Join(d, "b/g")); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(d, "b/g"), []byte("f"))
	names, _ := os.ReadDir(filepath.Join(d, "b"))
	if len(names) != 1 {
		t.Errorf("b holds %d entries, want 1", len(names))
	}
	// RENAME_NOREPLACE.
	writeFile(t, filepath.Join(d, "b/h"), []byte("h"))
	err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(d, "b/h"), unix.AT_FDCWD, filepath.Join(d, "b/g"), unix.RENAME_NOREPLACE)
	wantErrno(t, "RENAME_NOREPLACE over a file", err, syscall.EEXIST)
	checkFile(t, filepath.Join(d, "b/g"), []byte("f"))
	if err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(d, "b/h"), unix.AT_FDCWD, filepath.Join(d, "b/i"), unix.RENAME_NOREPLACE); err != nil {
		t.Fatalf("RENAME_NOREPLACE to a free name: %v", err)
	}
	// Directories: into themselves, over a non-empty one, over a file.
	// (syscall.Rename: os.Rename refuses any existing directory itself.)
	wantErrno(t, "dir into itself", syscall.Rename(filepath.Join(d, "a"), filepath.Join(d, "a/sub/a")), syscall.EINVAL)
	wantErrno(t, "dir over non-empty dir", syscall.Rename(filepath.Join(d, "a"), filepath.Join(d, "full")), syscall.ENOTEMPTY)
	wantErrno(t, "dir over file", syscall.Rename(filepath.Join(d, "a"), filepath.Join(d, "b/g")), syscall.ENOTDIR)
	wantErrno(t, "file over dir", syscall.Rename(filepath.Join(d, "b/g"), filepath.Join(d, "a")), syscall.EISDIR)
	// A directory moves with its content.
	if err := os.Rename(filepath.Join(d, "full"), filepath.Join(d, "a/sub/moved")); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(d, "a/sub/moved/x"), []byte("x"))
}

func TestMkdirRmdirErrors(t *testing.T) {
	e := mount(t)
	d := e.dir
	if err := os.Mkdir(filepath.Join(d, "dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(d, "dir")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("stat dir: %v %v", fi, err)
	}
	wantErrno(t, "mkdir existing", os.Mkdir(filepath.Join(d, "dir"), 0o755), syscall.EEXIST)
	writeFile(t, filepath.Join(d, "dir/f"), []byte("f"))
	wantErrno(t, "rmdir non-empty", syscall.Rmdir(filepath.Join(d, "dir")), syscall.ENOTEMPTY)
	wantErrno(t, "rmdir file", syscall.Rmdir(filepath.Join(d, "dir/f")), syscall.ENOTDIR)
	wantErrno(t, "unlink dir", syscall.Unlink(filepath.Join(d, "dir")), syscall.EISDIR)
	wantErrno(t, "open missing", func() error { _, err := os.Open(filepath.Join(d, "nope")); return err }(), syscall.ENOENT)
	wantErrno(t, "file as dir", func() error { _, err := os.Stat(filepath.Join(d, "dir/f/x")); return err }(), syscall.ENOTDIR)
	wantErrno(t, "O_EXCL on existing", func() error {
		_, err := os.OpenFile(filepath.Join(d, "dir/f"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		return err
	}(), syscall.EEXIST)
	wantErrno(t, "open dir for writing", func() error { _, err := os.OpenFile(filepath.Join(d, "dir"), os.O_WRONLY, 0); return err }(), syscall.EISDIR)
	wantErrno(t, "hard link to a directory", os.Link(filepath.Join(d, "dir"), filepath.Join(d, "l")), syscall.EPERM)
	if err := os.Remove(filepath.Join(d, "dir/f")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Rmdir(filepath.Join(d, "dir")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "dir")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after rmdir: %v", err)
	}
	// Names of exactly NAME_MAX bytes work; longer ones do not.
	long := strings.Repeat("n", 255)
	writeFile(t, filepath.Join(d, long), []byte("long"))
	checkFile(t, filepath.Join(d, long), []byte("long"))
	wantErrno(t, "name too long", os.WriteFile(filepath.Join(d, long+"x"), nil, 0o644), syscall.ENAMETOOLONG)
}

func TestSymlink(t *testing.T) {
	e := mount(t)
	d := e.dir
	writeFile(t, filepath.Join(d, "target"), []byte("through the link"))
	if err := os.Symlink("target", filepath.Join(d, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/no/such/place", filepath.Join(d, "dangling")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(filepath.Join(d, "link")); err != nil || got != "target" {
		t.Fatalf("readlink: %q, %v", got, err)
	}
	checkFile(t, filepath.Join(d, "link"), []byte("through the link"))
	fi, err := os.Lstat(filepath.Join(d, "dangling"))
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 || fi.Size() != int64(len("/no/such/place")) {
		t.Fatalf("lstat dangling: %v, %v", fi, err)
	}
	wantErrno(t, "O_EXCL on a symlink", func() error {
		_, err := os.OpenFile(filepath.Join(d, "dangling"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		return err
	}(), syscall.EEXIST)
	wantErrno(t, "symlink over existing", os.Symlink("x", filepath.Join(d, "link")), syscall.EEXIST)
}

func TestAttributes(t *testing.T) {
	e := mount(t)
	p := e.writeFile(t, "f", []byte("attrs"))
	for _, mode := range []uint32{0o600, 0o4755, 0o2750, 0o1777, 0} {
		if err := syscall.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != syscall.S_IFREG|mode {
			t.Errorf("chmod %o: got mode %o", mode, st.Mode)
		}
	}
	if err := os.Chown(p, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	// UTIME_OMIT leaves the mtime alone.
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{{Sec: 5}, {Nsec: unix.UTIME_OMIT}}, 0); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 1234 || st.Gid != 5678 || st.Mode != syscall.S_IFREG {
			t.Errorf("%s: got uid %d gid %d mode %o, want 1234 5678 %o", when, st.Uid, st.Gid, st.Mode, syscall.S_IFREG)
		}
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(mtime) {
			t.Errorf("%s: got mtime %v, want %v", when, got, mtime)
		}
	}
	check("after setattr")
	// What the server stores is what stat shows, after the kernel's cache
	// has expired too.
	e.sync(t) // the mtime of a file closed a moment ago goes with its commit
	ent, err := e.files.Stat(ctx, e.owner, entryID(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if ent.UID != 1234 || ent.GID != 5678 || ent.Mode != 0 || !ent.MTime.Equal(mtime) {
		t.Errorf("server has uid %d gid %d mode %o mtime %v", ent.UID, ent.GID, ent.Mode, ent.MTime)
	}
	time.Sleep(1100 * time.Millisecond)
	check("after the attribute timeout")

	// utimens on an open, written file before close (cp -p, tar) sticks.
	q := filepath.Join(e.dir, "g")
	f, err := os.Create(q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("content"); err != nil {
		t.Fatal(err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, q, []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(q)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("mtime set before close: got %v, want %v", fi.ModTime(), mtime)
	}
}

func TestUnlinkWhileOpen(t *testing.T) {
	e := mount(t)
	p := e.writeFile(t, "f", []byte("still readable"))
	r := openFile(t, p, os.O_RDONLY)
	defer r.Close()
	w := openFile(t, p, os.O_WRONLY)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || string(b) != "still readable" {
		t.Fatalf("read after unlink: %q, %v", b, err)
	}
	// Writing an unlinked file works; its data goes with it.
	if _, err := w.WriteString("gone"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close of an unlinked file: %v", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat after unlink: %v", err)
	}
}

// makeTree fills dir with a small tree: files of several sizes and modes,
// a subdirectory, symlinks and old mtimes.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"sub", "sub/deeper", "empty"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]int{"a.txt": 10, "sub/b.bin": 300000, "sub/deeper/c": 0, "exec.sh": 100, "sub/big": 2<<20 + 5}
	i := uint64(10)
	for name, n := range files {
		i++
		writeFile(t, filepath.Join(dir, name), testkit.RandBytes(i, n))
	}
	if err := os.Chmod(filepath.Join(dir, "exec.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "sub/b.bin"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../a.txt", filepath.Join(dir, "sub/link")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2010, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range []string{"a.txt", "sub/b.bin", "sub/deeper/c", "sub/deeper", "empty"} {
		if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// sameMeta checks that the files of want and got have equal modes and
// file mtimes to within precision (diff -r compares only content).
func sameMeta(t *testing.T, want, got string, precision time.Duration) {
	t.Helper()
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, err := os.Lstat(p)
		if err != nil {
			return err
		}
		b, err := os.Lstat(filepath.Join(got, rel))
		if err != nil {
			return err
		}
		if a.Mode() != b.Mode() {
			t.Errorf("%s: got mode %v, want %v", rel, b.Mode(), a.Mode())
		}
		if a.Mode().IsRegular() && !a.ModTime().Truncate(precision).Equal(b.ModTime().Truncate(precision)) {
			t.Errorf("%s: got mtime %v, want %v", rel, b.ModTime(), a.ModTime())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCpA(t *testing.T) {
	e := mount(t)
	src := t.TempDir()
	makeTree(t, src)
	dst := filepath.Join(e.dir, "copy")
	run(t, "cp", "-a", src, dst)
	run(t, "diff", "-r", "--no-dereference", src, dst)
	sameMeta(t, src, dst, time.Nanosecond)
	// And back out of the mount.
	back := filepath.Join(t.TempDir(), "back")
	run(t, "cp", "-a", dst, back)
	run(t, "diff", "-r", "--no-dereference", src, back)
	sameMeta(t, src, back, time.Nanosecond)
}

func TestTarRoundTrip(t *testing.T) {
	e := mount(t)
	src := t.TempDir()
	makeTree(t, src)
	in := filepath.Join(e.dir, "untarred")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "a.tar")
	run(t, "tar", "-c", "-f", archive, "-C", src, ".")
	run(t, "tar", "-x", "-p", "-f", archive, "-C", in)
	run(t, "diff", "-r", "--no-dereference", src, in)
	sameMeta(t, src, in, time.Second) // tar keeps whole seconds
	// Archive the mount and unpack it elsewhere: the same tree again.
	archive2 := filepath.Join(e.dir, "again.tar")
	run(t, "tar", "-c", "-f", archive2, "-C", in, ".")
	out := t.TempDir()
	run(t, "tar", "-x", "-p", "-f", archive2, "-C", out)
	run(t, "diff", "-r", "--no-dereference", src, out)
	sameMeta(t, src, out, time.Second)
}

func TestEditorSave(t *testing.T) {
	e := mount(t)
	p := e.writeFile(t, "doc.txt", []byte("draft 1"))
	for i := 2; i <= 3; i++ {
		tmp := filepath.Join(e.dir, ".doc.txt.swp")
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		content := fmt.Sprintf("draft %d", i)
		if _, err := f.WriteString(content); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		// After fsync the server has the data, before close.
		if got := e.storedNow(t, tmp); string(got) != content {
			t.Fatalf("after fsync the server has %q, want %q", got, content)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, []byte(content))
	}
	// A save without fsync: closed (its commit still queued), renamed at
	// once.
	tmp := filepath.Join(e.dir, "doc.txt~new")
	writeFile(t, tmp, []byte("draft 4, not fsync'ed"))
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0].Name() != "doc.txt" {
		t.Errorf("directory holds %v, want only doc.txt", names)
	}
	// Every save is in the history of doc.txt: the file renamed over it
	// took it over.
	vdir := filepath.Join(e.dir, ".versions", "doc.txt")
	want := []string{"draft 1", "draft 2", "draft 3", "draft 4, not fsync'ed"}
	e.sync(t)
	list, err := os.ReadDir(vdir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(want) {
		t.Fatalf(".versions/doc.txt lists %d versions, want %d", len(list), len(want))
	}
	for i, w := range want {
		checkFile(t, filepath.Join(vdir, fmt.Sprintf("v%d", i+1)), []byte(w))
	}
	// Roll back to draft 1.
	v1, err := os.ReadFile(filepath.Join(vdir, "v1"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, v1)
	checkFile(t, p, []byte("draft 1"))
	if n := e.versions(t, p); n != 5 {
		t.Errorf("after the rollback: %d versions, want 5", n)
	}
}

func TestVersionsDir(t *testing.T) {
	e := mount(t)
	if err := os.Mkdir(filepath.Join(e.dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.dir, "d", "f")
	contents := [][]byte{[]byte("first"), testkit.RandBytes(4, 1<<20+3), []byte("third, shorter")}
	var times []time.Time
	for _, c := range contents {
		writeFile(t, p, c)
		e.sync(t) // committed in the background after close
		times = append(times, time.Now())
	}
	vdir := filepath.Join(e.dir, "d", ".versions")

	// Hidden from readdir, reachable by name.
	names, err := os.ReadDir(filepath.Join(e.dir, "d"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n.Name() == ".versions" {
			t.Error(".versions is listed by readdir")
		}
	}
	if fi, err := os.Stat(vdir); err != nil || !fi.IsDir() {
		t.Fatalf("stat .versions: %v, %v", fi, err)
	}
	if list, err := os.ReadDir(vdir); err != nil || len(list) != 1 || list[0].Name() != "f" {
		t.Fatalf(".versions lists %v, %v; want f", list, err)
	}
	list, err := os.ReadDir(filepath.Join(vdir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range list {
		got = append(got, n.Name())
	}
	if want := []string{"v1", "v2", "v3"}; !slices.Equal(got, want) {
		vs, _ := e.files.Versions(ctx, e.owner, entryID(t, p))
		t.Fatalf(".versions/f lists %v, want %v; %+v", got, want, vs)
	}
	for i, c := range contents {
		vp := filepath.Join(vdir, "f", fmt.Sprintf("v%d", i+1))
		checkFile(t, vp, c)
		fi, err := os.Stat(vp)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o444 || fi.Size() != int64(len(c)) {
			t.Errorf("%s: got mode %v size %d, want -r--r--r-- %d", vp, fi.Mode(), fi.Size(), len(c))
		}
		if fi.ModTime().After(times[i]) || (i > 0 && fi.ModTime().Before(times[i-1])) {
			t.Errorf("%s: mtime %v is not the version's time (written before %v)", vp, fi.ModTime(), times[i])
		}
	}

	// Read-only: every change fails with EROFS.
	v1 := filepath.Join(vdir, "f", "v1")
	wantErrno(t, "write a version", os.WriteFile(v1, []byte("x"), 0o644), syscall.EROFS)
	wantErrno(t, "create in .versions/f", os.WriteFile(filepath.Join(vdir, "f", "new"), []byte("x"), 0o644), syscall.EROFS)
	wantErrno(t, "create in .versions", os.WriteFile(filepath.Join(vdir, "new"), []byte("x"), 0o644), syscall.EROFS)
	wantErrno(t, "unlink a version", os.Remove(v1), syscall.EROFS)
	wantErrno(t, "rename a version", os.Rename(v1, filepath.Join(e.dir, "stolen")), syscall.EROFS)
	wantErrno(t, "rename into .versions", os.Rename(p, filepath.Join(vdir, "f", "v9")), syscall.EROFS)
	wantErrno(t, "mkdir in .versions", os.Mkdir(filepath.Join(vdir, "x"), 0o755), syscall.EROFS)
	wantErrno(t, "chmod a version", os.Chmod(v1, 0o644), syscall.EROFS)
	wantErrno(t, "truncate a version", os.Truncate(v1, 0), syscall.EROFS)
	wantErrno(t, "remove .versions", syscall.Rmdir(vdir), syscall.EROFS)
	wantErrno(t, "mkdir .versions", os.Mkdir(filepath.Join(e.dir, ".versions"), 0o755), syscall.EEXIST)
	wantErrno(t, "missing version", func() error { _, err := os.Stat(filepath.Join(vdir, "f", "v4")); return err }(), syscall.ENOENT)

	// Copying a version back over the file is a rollback: version 4, and
	// the chunk store does not grow.
	storedBefore := e.files.Stats().BytesStored.Load()
	run(t, "cp", v1, p)
	checkFile(t, p, contents[0])
	if grew := e.files.Stats().BytesStored.Load() - storedBefore; grew != 0 {
		t.Errorf("the rollback stored %d new bytes, want 0", grew)
	}
	if n := e.versions(t, p); n != 4 {
		t.Fatalf("after copying v1 back: %d versions, want 4", n)
	}
	checkFile(t, filepath.Join(vdir, "f", "v4"), contents[0])
}

func TestSharedStage(t *testing.T) {
	e := mount(t)
	p := e.writeFile(t, "f", []byte("0123456789"))
	w := openFile(t, p, os.O_RDWR)
	defer w.Close()
	if _, err := w.WriteAt([]byte("abc"), 3); err != nil {
		t.Fatal(err)
	}
	// Another open of the same file in this mount sees the staged data.
	checkFile(t, p, []byte("012abc6789"))
	if got := e.storedNow(t, p); string(got) != "0123456789" {
		t.Fatalf("before close the server has %q, want the old version", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.stored(t, p); string(got) != "012abc6789" {
		t.Fatalf("after close the server has %q", got)
	}
}

func TestServerChangesShow(t *testing.T) {
	e := mount(t)
	p := e.writeFile(t, "f", []byte("from the mount"))
	checkFile(t, p, []byte("from the mount"))
	// Committed (write-back commits a moment after close; a version
	// written elsewhere within that moment would be overwritten by it,
	// both staying in the history).
	e.sync(t)
	// A new version written on the server, as the REST API would.
	if _, err := e.files.Write(ctx, files.WriteRequest{Owner: e.owner, Entry: entryID(t, p), Body: strings.NewReader("from the server, longer")}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 3*time.Second, func() bool {
		b, err := os.ReadFile(p)
		return err == nil && string(b) == "from the server, longer"
	}, "the server's version within the attribute timeout")
}

func TestStatfs(t *testing.T) {
	e := mount(t)
	var st syscall.Statfs_t
	if err := syscall.Statfs(e.dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks == 0 || st.Bfree == 0 || st.Bsize == 0 || st.Namelen != 255 {
		t.Errorf("statfs: %+v", st)
	}
}

func TestLocks(t *testing.T) {
	e := mount(t)
	p := e.writeFile(t, "lock", nil)
	f1 := openFile(t, p, os.O_RDWR)
	defer f1.Close()
	f2 := openFile(t, p, os.O_RDWR)
	defer f2.Close()
	// Open file description locks conflict between two opens.
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f1.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "second OFD lock", unix.FcntlFlock(f2.Fd(), unix.F_OFD_SETLK, &lk), syscall.EAGAIN)
	// flock conflicts with another process.
	if err := syscall.Flock(int(f1.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	cmd := exec.Command("flock", "-n", "-E", "42", p, "true")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 {
		t.Errorf("flock -n by another process: got %v, want exit 42 (conflict)", err)
	}
	if err := syscall.Flock(int(f1.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("flock", "-n", p, "true").Run(); err != nil {
		t.Errorf("flock -n after unlock: %v", err)
	}
}

// TestXattrs sets, reads, lists and removes extended attributes on a real
// mount, with the errnos of a local file system, and none on .versions.
func TestXattrs(t *testing.T) {
	e := mount(t)
	p := e.writeFile(t, "f", []byte("x"))
	wantErrno(t, "get a missing attribute", func() error { _, err := unix.Getxattr(p, "user.a", make([]byte, 10)); return err }(), syscall.ENODATA)
	if err := unix.Setxattr(p, "user.a", []byte("value one"), 0); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "create an existing attribute", unix.Setxattr(p, "user.a", []byte("x"), unix.XATTR_CREATE), syscall.EEXIST)
	wantErrno(t, "replace a missing attribute", unix.Setxattr(p, "user.b", []byte("x"), unix.XATTR_REPLACE), syscall.ENODATA)
	if err := unix.Setxattr(p, "user.b", nil, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Getxattr(p, "user.a", nil); err != nil || n != 9 {
		t.Fatalf("size query: %d, %v", n, err)
	}
	wantErrno(t, "a short buffer", func() error { _, err := unix.Getxattr(p, "user.a", make([]byte, 3)); return err }(), syscall.ERANGE)
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(p, "user.a", buf); err != nil || string(buf[:n]) != "value one" {
		t.Fatalf("get: %q, %v", buf[:n], err)
	}
	if n, err := unix.Listxattr(p, buf); err != nil || string(buf[:n]) != "user.a\x00user.b\x00" {
		t.Fatalf("list: %q, %v", buf[:n], err)
	}
	wantErrno(t, "an ACL", unix.Setxattr(p, "system.posix_acl_access", []byte{2, 0, 0, 0}, 0), syscall.EOPNOTSUPP)
	if err := unix.Removexattr(p, "user.a"); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "remove a missing attribute", unix.Removexattr(p, "user.a"), syscall.ENODATA)
	// Writes still work (the kernel asks for security.capability first).
	writeFile(t, p, []byte("after"))
	// Attributes survive on the server, and .versions has none.
	if v, found, err := e.files.Meta().GetXattr(ctx, e.owner, entryID(t, p), "user.b"); err != nil || !found || len(v) != 0 {
		t.Fatalf("on the server: %q %v %v", v, found, err)
	}
	v1 := filepath.Join(e.dir, ".versions", "f", "v1")
	wantErrno(t, "set on a version", unix.Setxattr(v1, "user.c", []byte("x"), 0), syscall.EROFS)
	if n, err := unix.Listxattr(v1, buf); err != nil || n != 0 {
		t.Fatalf("list on a version: %d, %v", n, err)
	}
}

// TestPermissions checks that mode bits hold for another user when the
// mount allows other users (the kernel checks them: default_permissions),
// and that without allow_other other users cannot enter at all.
func TestPermissions(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	e := mount(t, func(o *fusefs.Options) { o.AllowOther = true })
	fusetest.OpenUp(t, e.dir)
	if err := os.Chmod(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pub, priv := filepath.Join(e.dir, "public"), filepath.Join(e.dir, "private")
	writeFile(t, pub, []byte("everyone"))
	writeFile(t, priv, []byte("root only"))
	if err := os.Chmod(priv, 0o600); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(e.dir, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := fusetest.AsNobody(t, "cat "+pub); err != nil {
		t.Error("another user cannot read a 0644 file")
	}
	if fusetest.AsNobody(t, "cat "+priv) == nil {
		t.Error("another user read a 0600 file of root's")
	}
	if fusetest.AsNobody(t, "echo x > "+pub) == nil {
		t.Error("another user wrote a 0644 file of root's")
	}
	if fusetest.AsNobody(t, "touch "+filepath.Join(e.dir, "intruder")) == nil {
		t.Error("another user created a file in a 0755 directory of root's")
	}
	mine := filepath.Join(shared, "mine")
	if err := fusetest.AsNobody(t, "echo x > "+mine+" && chmod 600 "+mine); err != nil {
		t.Error("another user cannot create a file in a 0777 directory")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(mine, &st); err != nil || st.Uid != 65534 || st.Gid != 65534 || st.Mode&0o777 != 0o600 {
		t.Errorf("a file created by uid 65534: %+v, %v", st, err)
	}
	if fusetest.AsNobody(t, "chmod 666 "+priv) == nil {
		t.Error("another user changed the mode of root's file")
	}

	// Without allow_other, the kernel turns other users away.
	closed := mount(t)
	fusetest.OpenUp(t, closed.dir)
	if fusetest.AsNobody(t, "ls "+closed.dir) == nil {
		t.Error("another user listed a mount without allow_other")
	}
}

// TestLargeOffsets writes past 4 GiB into a sparse file and extends it
// with truncate: the size, the bytes and the zeros around them read back.
func TestLargeOffsets(t *testing.T) {
	e := mount(t)
	p := filepath.Join(e.dir, "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const off = 5<<30 + 3
	if _, err := f.WriteAt([]byte("far"), off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, off+10); err != nil { // and up again, through the path
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Size() != off+10 {
		t.Fatalf("stat: %v, %v", fi, err)
	}
	r := openFile(t, p, os.O_RDONLY)
	defer r.Close()
	buf := make([]byte, 16)
	n, err := r.ReadAt(buf, off-3)
	if n != 13 || string(buf[:n]) != "\x00\x00\x00far\x00\x00\x00\x00\x00\x00\x00" {
		t.Fatalf("read at 5 GiB: %q, %v", buf[:n], err)
	}
	if n, _ := r.ReadAt(buf, 4<<30); n != 16 || string(buf) != string(make([]byte, 16)) {
		t.Fatalf("read at 4 GiB: %q", buf[:n])
	}
}

// TestHugeTruncate: a truncate past the largest file size the mount
// allows fails with EFBIG and changes nothing, by path and through a
// descriptor; it once grew the mount's memory until the kernel killed it.
func TestHugeTruncate(t *testing.T) {
	e := mount(t)
	p := e.writeFile(t, "f", []byte("kept"))
	wantErrno(t, "truncate to 999999999999999", os.Truncate(p, 999999999999999), syscall.EFBIG)
	f := openFile(t, p, os.O_RDWR)
	defer f.Close()
	wantErrno(t, "ftruncate past 16 TiB", f.Truncate(vfs.DefaultMaxFileSize+1), syscall.EFBIG)
	checkFile(t, p, []byte("kept"))
}
