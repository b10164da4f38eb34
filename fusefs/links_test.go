package fusefs_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dfms/dfms/fusefs/fusetest"
)

// Hard links through a real mount, on both backends: a write through one
// name shows through the other, st_nlink and the inode number agree,
// removing one name keeps the file, a rename between two names of one
// file does nothing, and .versions shows the history under each name.
func TestHardLinks(t *testing.T) {
	bothMounts(t, testHardLinks)
}

func testHardLinks(t *testing.T, d string, server serverContent) {
	a, b := filepath.Join(d, "a"), filepath.Join(d, "sub", "b")
	if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, a, []byte("one\n"))
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	wantLinks(t, 2, a, b)
	f, err := os.OpenFile(b, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("two\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b} {
		if got, err := os.ReadFile(p); err != nil || string(got) != "one\ntwo\n" {
			t.Fatalf("%s reads %q, %v", p, got, err)
		}
	}
	fusetest.Fsync(t, a)
	if got := server(t, b); string(got) != "one\ntwo\n" {
		t.Fatalf("the server has %q", got)
	}
	// .versions under each name: the file's two versions.
	for _, v := range []string{filepath.Join(d, ".versions", "a"), filepath.Join(d, "sub", ".versions", "b")} {
		ents, err := os.ReadDir(v)
		if err != nil || len(ents) != 2 {
			t.Fatalf("%s lists %v, %v; want the 2 versions", v, ents, err)
		}
	}
	// A rename between two names of one file does nothing.
	if err := os.Rename(a, b); err != nil {
		t.Fatal(err)
	}
	wantLinks(t, 2, a, b)
	// Removing one name keeps the file.
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	wantLinks(t, 1, b)
	if got, err := os.ReadFile(b); err != nil || string(got) != "one\ntwo\n" {
		t.Fatalf("after rm of the other name, b reads %q, %v", got, err)
	}
	if _, err := os.Lstat(a); !os.IsNotExist(err) {
		t.Fatalf("a after rm: %v", err)
	}
	// A rename over one name of a file with two leaves it the other.
	c := filepath.Join(d, "c")
	if err := os.Link(b, c); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(d, "x"), []byte("x"))
	if err := os.Rename(filepath.Join(d, "x"), c); err != nil {
		t.Fatal(err)
	}
	wantLinks(t, 1, b)
	if got, err := os.ReadFile(c); err != nil || string(got) != "x" {
		t.Fatalf("c reads %q, %v", got, err)
	}
	wantErrno(t, "link to a directory", os.Link(filepath.Join(d, "sub"), filepath.Join(d, "sub2")), syscall.EPERM)
	wantErrno(t, "link over a name", os.Link(b, c), syscall.EEXIST)

	// cp -al and rsync -aH keep the link structure.
	tree := filepath.Join(d, "tree")
	for _, p := range []string{"tree/d1", "tree/d2"} {
		if err := os.MkdirAll(filepath.Join(d, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(tree, "d1", "f"), []byte("shared\n"))
	writeFile(t, filepath.Join(tree, "solo"), []byte("solo\n"))
	if err := os.Link(filepath.Join(tree, "d1", "f"), filepath.Join(tree, "d2", "g")); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("cp", "-al", tree, filepath.Join(d, "copy"))
	wantLinks(t, 4, filepath.Join(tree, "d1", "f"), filepath.Join(tree, "d2", "g"),
		filepath.Join(d, "copy", "d1", "f"), filepath.Join(d, "copy", "d2", "g"))
	out := t.TempDir()
	run("rsync", "-aH", tree+"/", out+"/")
	wantLinks(t, 2, filepath.Join(out, "d1", "f"), filepath.Join(out, "d2", "g"))
	back := filepath.Join(d, "back")
	run("rsync", "-aH", out+"/", back+"/")
	wantLinks(t, 2, filepath.Join(back, "d1", "f"), filepath.Join(back, "d2", "g"))
	run("diff", "-r", tree, back)
	if got, _ := os.ReadFile(filepath.Join(back, "d2", "g")); !bytes.Equal(got, []byte("shared\n")) {
		t.Fatalf("back/d2/g reads %q", got)
	}
}

// wantLinks checks that paths name one file with n names.
func wantLinks(t *testing.T, n uint64, paths ...string) {
	t.Helper()
	var ino uint64
	for i, p := range paths {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Nlink != n || (i > 0 && st.Ino != ino) {
			t.Fatalf("%s: inode %d with %d names, want inode %d with %d", p, st.Ino, st.Nlink, ino, n)
		}
		ino = st.Ino
	}
}
