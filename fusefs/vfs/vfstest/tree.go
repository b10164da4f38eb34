package vfstest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// testRoot: the root is a live, empty directory, found again by id; no
// entry has an unknown id.
func testRoot(t *testing.T, b vfs.Backend) {
	r := testkit.Must(b.Root(ctx))(t)
	if r.ID == 0 || r.Kind != dfms.KindDir || !r.Live {
		t.Fatalf("Root = %+v, want a live directory", r)
	}
	if got := testkit.Must(b.GetAttr(ctx, r.ID))(t); got.ID != r.ID || got.Kind != dfms.KindDir {
		t.Fatalf("GetAttr(root) = %+v, want %+v", got, r)
	}
	// A caller with an answer of its own asks the same (vfs.WithoutWait).
	if got := testkit.Must(b.GetAttr(vfs.WithoutWait(ctx), r.ID))(t); got.ID != r.ID {
		t.Fatalf("GetAttr(root) without wait = %+v, want %+v", got, r)
	}
	if es := testkit.Must(b.ReadDir(ctx, r.ID))(t); len(es) != 0 {
		t.Fatalf("a new owner's root lists %v", names(es))
	}
	_, err := b.GetAttr(ctx, noSuchID)
	testkit.WantKind(t, err, dfms.NotExist, "GetAttr of no entry")
}

// testCreateFile: a new file is empty, with no version, and has the
// attributes asked for; a taken name fails with Exist whatever takes it;
// a parent that is no directory, or none, fails.
func testCreateFile(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	// The mode's type bits are dropped.
	f := testkit.Must(b.CreateFile(ctx, r, "f.txt", 0o100640, 1001, 1002))(t)
	wantMade(t, "CreateFile", f, vfs.Entry{Parent: r, Name: "f.txt", Kind: dfms.KindFile, Mode: 0o640, UID: 1001, GID: 1002})
	if got := testkit.Must(b.GetAttr(ctx, f.ID))(t); got.Name != "f.txt" || got.Parent != r || got.Mode != 0o640 || got.UID != 1001 || !got.Live {
		t.Fatalf("GetAttr of the new file = %+v", got)
	}
	// Set-id and sticky bits are kept.
	if g := testkit.Must(b.CreateFile(ctx, r, "suid", 0o4755, 0, 0))(t); g.Mode != 0o4755 {
		t.Fatalf("CreateFile with mode 4755: mode %o", g.Mode)
	}

	d := mkdir(t, b, r, "d")
	testkit.Must(b.Symlink(ctx, r, "l", "f.txt", 0, 0))(t)
	for _, name := range []string{"f.txt", "d", "l"} {
		_, err := b.CreateFile(ctx, r, name, 0o644, 0, 0)
		testkit.WantKind(t, err, dfms.Exist, "CreateFile over "+name)
	}
	if e := testkit.Must(b.Lookup(ctx, r, "f.txt"))(t); e.ID != f.ID {
		t.Fatalf("a refused create replaced the file: %+v", e)
	}
	_, err := b.CreateFile(ctx, f.ID, "x", 0o644, 0, 0)
	testkit.WantKind(t, err, dfms.NotDir, "CreateFile in a file")
	_, err = b.CreateFile(ctx, noSuchID, "x", 0o644, 0, 0)
	testkit.WantKind(t, err, dfms.NotExist, "CreateFile in no directory")
	// In a subdirectory.
	if g := create(t, b, d.ID, "f.txt"); g.Parent != d.ID || g.ID == f.ID {
		t.Fatalf("CreateFile in d = %+v", g)
	}
}

// testMkdir: a new directory is live and empty, with the attributes asked
// for; a taken name fails with Exist.
func testMkdir(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	d := testkit.Must(b.Mkdir(ctx, r, "d", 0o41777, 7, 8))(t)
	wantMade(t, "Mkdir", d, vfs.Entry{Parent: r, Name: "d", Kind: dfms.KindDir, Mode: 0o1777, UID: 7, GID: 8})
	if es := testkit.Must(b.ReadDir(ctx, d.ID))(t); len(es) != 0 {
		t.Fatalf("a new directory lists %v", names(es))
	}
	create(t, b, r, "f")
	for _, name := range []string{"d", "f"} {
		_, err := b.Mkdir(ctx, r, name, 0o755, 0, 0)
		testkit.WantKind(t, err, dfms.Exist, "Mkdir over "+name)
	}
	sub := mkdir(t, b, d.ID, "sub")
	if got := testkit.Must(b.Lookup(ctx, d.ID, "sub"))(t); got.ID != sub.ID || got.Kind != dfms.KindDir {
		t.Fatalf("Lookup(d, sub) = %+v, want %+v", got, sub)
	}
	_, err := b.Mkdir(ctx, noSuchID, "x", 0o755, 0, 0)
	testkit.WantKind(t, err, dfms.NotExist, "Mkdir in no directory")
}

// testMknod: special files are made with their kind, mode, owner ids and
// (devices only) number, found and listed as made, and removed by
// Unlink; Mknod of any other kind fails with Invalid and makes nothing.
func testMknod(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	for _, w := range []vfs.Entry{
		{Name: "fifo", Kind: dfms.KindFIFO, Mode: 0o640, UID: 5, GID: 6},
		{Name: "sock", Kind: dfms.KindSocket, Mode: 0o755},
		{Name: "tty", Kind: dfms.KindCharDev, Mode: 0o620, Rdev: 0x8801},
		{Name: "sda", Kind: dfms.KindBlockDev, Mode: 0o660, Rdev: 0x800, UID: 0, GID: 6},
	} {
		w.Parent = r
		e := testkit.Must(b.Mknod(ctx, r, w.Name, w.Kind, w.Mode, w.Rdev, w.UID, w.GID))(t)
		wantMade(t, "Mknod "+w.Name, e, w)
		w.ID = e.ID
		wantMade(t, "Lookup "+w.Name, testkit.Must(b.Lookup(ctx, r, w.Name))(t), w)
		wantMade(t, "GetAttr "+w.Name, testkit.Must(b.GetAttr(ctx, e.ID))(t), w)
		_, err := b.Mknod(ctx, r, w.Name, w.Kind, w.Mode, w.Rdev, 0, 0)
		testkit.WantKind(t, err, dfms.Exist, "Mknod over "+w.Name)
	}
	if got := names(testkit.Must(b.ReadDir(ctx, r))(t)); !slices.Equal(got, []string{"fifo", "sda", "sock", "tty"}) {
		t.Fatalf("ReadDir = %v", got)
	}
	for _, k := range []dfms.EntryKind{dfms.KindFile, dfms.KindDir, dfms.KindSymlink, 0, 8} {
		_, err := b.Mknod(ctx, r, "x", k, 0o644, 0, 0, 0)
		testkit.WantKind(t, err, dfms.Invalid, fmt.Sprintf("Mknod of kind %d", k))
	}
	_, err := b.Lookup(ctx, r, "x")
	testkit.WantKind(t, err, dfms.NotExist, "what a refused Mknod left")
	ok(t, b.Unlink(ctx, r, "fifo"))
	_, err = b.Lookup(ctx, r, "fifo")
	testkit.WantKind(t, err, dfms.NotExist, "Lookup of an unlinked FIFO")
}

// testLink: a hard link names the same entry (Nlink counts the names);
// Unlink of one name keeps it under the other; Rename onto another name
// of the same entry changes nothing; a directory, a taken name or a
// missing entry are refused.
func testLink(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	d := mkdir(t, b, r, "d").ID
	f := create(t, b, r, "f")
	l := testkit.Must(b.Link(ctx, f.ID, d, "l"))(t)
	if l.ID != f.ID || l.Parent != d || l.Name != "l" || l.Nlink != 2 || l.Kind != dfms.KindFile {
		t.Fatalf("Link = %+v", l)
	}
	for _, n := range []struct {
		dir  dfms.EntryID
		name string
	}{{r, "f"}, {d, "l"}} {
		if e := testkit.Must(b.Lookup(ctx, n.dir, n.name))(t); e.ID != f.ID || e.Nlink != 2 {
			t.Fatalf("Lookup %s = %+v", n.name, e)
		}
	}
	if got := names(testkit.Must(b.ReadDir(ctx, d))(t)); !slices.Equal(got, []string{"l"}) {
		t.Fatalf("ReadDir(d) = %v", got)
	}
	_, err := b.Link(ctx, f.ID, r, "d")
	testkit.WantKind(t, err, dfms.Exist, "Link over a taken name")
	_, err = b.Link(ctx, d, r, "d2")
	testkit.WantKind(t, err, dfms.IsDir, "Link of a directory")
	_, err = b.Link(ctx, noSuchID, r, "x")
	testkit.WantKind(t, err, dfms.NotExist, "Link of no entry")
	ok(t, b.Rename(ctx, d, "l", r, "f", true))
	if e := testkit.Must(b.GetAttr(ctx, f.ID))(t); !e.Live || e.Nlink != 2 {
		t.Fatalf("after a rename between two names of one file: %+v", e)
	}
	ok(t, b.Unlink(ctx, r, "f"))
	if e := testkit.Must(b.Lookup(ctx, d, "l"))(t); e.ID != f.ID || !e.Live || e.Nlink != 1 {
		t.Fatalf("after unlinking one of two names: %+v", e)
	}
	_, err = b.Lookup(ctx, r, "f")
	testkit.WantKind(t, err, dfms.NotExist, "Lookup of an unlinked name")
}

// testSymlinkReadlink: a symlink holds its target (its size is the
// target's length); Readlink of anything else fails with Invalid.
func testSymlinkReadlink(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	const target = "../somewhere/else"
	l := testkit.Must(b.Symlink(ctx, r, "l", target, 5, 6))(t)
	wantMade(t, "Symlink", l, vfs.Entry{Parent: r, Name: "l", Kind: dfms.KindSymlink, Mode: 0o777, UID: 5, GID: 6, Target: target})
	if got := testkit.Must(b.Readlink(ctx, l.ID))(t); got != target {
		t.Fatalf("Readlink = %q, want %q", got, target)
	}
	// Lookup does not follow it, whatever it points at.
	d := mkdir(t, b, r, "d")
	testkit.Must(b.Symlink(ctx, r, "ld", "d", 0, 0))(t)
	if got := testkit.Must(b.Lookup(ctx, r, "ld"))(t); got.Kind != dfms.KindSymlink || got.Target != "d" {
		t.Fatalf("Lookup of a symlink to a directory = %+v", got)
	}
	ld := testkit.Must(b.Lookup(ctx, r, "ld"))(t)
	_, err := b.Lookup(ctx, ld.ID, "x")
	testkit.WantKind(t, err, dfms.NotDir, "Lookup in a symlink to a directory")
	_, err = b.CreateFile(ctx, ld.ID, "x", 0o644, 0, 0)
	testkit.WantKind(t, err, dfms.NotDir, "CreateFile in a symlink to a directory")
	testkit.WantKind(t, b.Rmdir(ctx, r, "ld"), dfms.NotDir, "Rmdir of a symlink to a directory")
	ok(t, b.Unlink(ctx, r, "ld")) // the symlink, not what it points at
	if !live(t, b, d.ID) || live(t, b, ld.ID) {
		t.Fatal("Unlink of a symlink to a directory did not remove the symlink alone")
	}
	f := create(t, b, r, "f")
	for _, e := range []vfs.Entry{f, d, {ID: r, Name: "the root"}} {
		_, err := b.Readlink(ctx, e.ID)
		testkit.WantKind(t, err, dfms.Invalid, "Readlink of "+e.Name)
	}
	_, err = b.Readlink(ctx, noSuchID)
	testkit.WantKind(t, err, dfms.NotExist, "Readlink of no entry")
	_, err = b.Symlink(ctx, r, "f", "x", 0, 0)
	testkit.WantKind(t, err, dfms.Exist, "Symlink over a file")
}

// testNames: names that cannot be a directory entry fail with Invalid
// before anything is made.
func testNames(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	create(t, b, r, "f")
	for _, name := range []string{"", ".", "..", "a/b"} {
		_, err := b.CreateFile(ctx, r, name, 0o644, 0, 0)
		testkit.WantKind(t, err, dfms.Invalid, "CreateFile "+name)
		_, err = b.Mkdir(ctx, r, name, 0o755, 0, 0)
		testkit.WantKind(t, err, dfms.Invalid, "Mkdir "+name)
		_, err = b.Symlink(ctx, r, name, "t", 0, 0)
		testkit.WantKind(t, err, dfms.Invalid, "Symlink "+name)
		testkit.WantKind(t, b.Rename(ctx, r, "f", r, name, false), dfms.Invalid, "Rename f to "+name)
	}
	if es := testkit.Must(b.ReadDir(ctx, r))(t); !slices.Equal(names(es), []string{"f"}) {
		t.Fatalf("after the refused names the root lists %v", names(es))
	}
	// Any other bytes but NUL are a name.
	for _, name := range []string{" ", "...", "a b", "ü", "%2F", "?x=1#y", "a\\b"} {
		e := create(t, b, r, name)
		if got := testkit.Must(b.Lookup(ctx, r, name))(t); got.ID != e.ID || got.Name != name {
			t.Fatalf("Lookup(%q) = %+v, want %+v", name, got, e)
		}
	}
}

// testLookup: Lookup finds live entries by name, in the directory given
// only; a missing name fails with NotExist, a parent that is no directory
// with NotDir.
func testLookup(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	d := mkdir(t, b, r, "d")
	f := create(t, b, d.ID, "f")
	if got := testkit.Must(b.Lookup(ctx, d.ID, "f"))(t); got.ID != f.ID || got.Parent != d.ID || got.Kind != dfms.KindFile || !got.Live {
		t.Fatalf("Lookup(d, f) = %+v, want %+v", got, f)
	}
	gone(t, b, r, "f")
	gone(t, b, d.ID, "F") // names are matched exactly
	_, err := b.Lookup(ctx, f.ID, "x")
	testkit.WantKind(t, err, dfms.NotDir, "Lookup in a file")
	_, err = b.Lookup(ctx, noSuchID, "x")
	testkit.WantKind(t, err, dfms.NotExist, "Lookup in no directory")
}

// testReadDir: ReadDir lists a directory's live entries, each once, with
// their kinds; not the trashed ones, nor those of other directories.
func testReadDir(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	d := mkdir(t, b, r, "d")
	f := create(t, b, r, "f")
	l := testkit.Must(b.Symlink(ctx, r, "l", "f", 0, 0))(t)
	create(t, b, r, "gone")
	mkdir(t, b, r, "gonedir")
	create(t, b, d.ID, "inner")
	ok(t, b.Unlink(ctx, r, "gone"))
	ok(t, b.Rmdir(ctx, r, "gonedir"))
	es := testkit.Must(b.ReadDir(ctx, r))(t)
	if got := names(es); !slices.Equal(got, []string{"d", "f", "l"}) {
		t.Fatalf("ReadDir(root) = %v, want [d f l]", got)
	}
	for _, e := range es {
		want := map[string]vfs.Entry{"d": d, "f": f, "l": l}[e.Name]
		if e.ID != want.ID || e.Kind != want.Kind || e.Parent != r || !e.Live {
			t.Fatalf("ReadDir entry %+v, want %+v", e, want)
		}
	}
	if got := names(testkit.Must(b.ReadDir(ctx, d.ID))(t)); !slices.Equal(got, []string{"inner"}) {
		t.Fatalf("ReadDir(d) = %v, want [inner]", got)
	}
	_, err := b.ReadDir(ctx, f.ID)
	testkit.WantKind(t, err, dfms.NotDir, "ReadDir of a file")
	_, err = b.ReadDir(ctx, noSuchID)
	testkit.WantKind(t, err, dfms.NotExist, "ReadDir of no entry")
}

// testUnlink: Unlink moves a file or symlink to the trash: the name goes,
// GetAttr still finds the entry (Live false). A directory fails with
// IsDir, a missing name with NotExist.
func testUnlink(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	f := create(t, b, r, "f")
	write(t, b, f.ID, 0, "unlinked")
	l := testkit.Must(b.Symlink(ctx, r, "l", "f", 0, 0))(t)
	for _, e := range []vfs.Entry{f, l} {
		ok(t, b.Unlink(ctx, r, e.Name))
		gone(t, b, r, e.Name)
		got := testkit.Must(b.GetAttr(ctx, e.ID))(t)
		if got.Live || got.ID != e.ID || got.Kind != e.Kind {
			t.Fatalf("GetAttr of unlinked %s = %+v, want it, not live", e.Name, got)
		}
	}
	testkit.WantKind(t, b.Unlink(ctx, r, "f"), dfms.NotExist, "Unlink again")
	testkit.WantKind(t, b.Unlink(ctx, r, "nothing"), dfms.NotExist, "Unlink of no name")
	d := mkdir(t, b, r, "d")
	testkit.WantKind(t, b.Unlink(ctx, r, "d"), dfms.IsDir, "Unlink of a directory")
	if !live(t, b, d.ID) {
		t.Fatal("a refused unlink trashed the directory")
	}
	// The name is free again.
	if g := create(t, b, r, "f"); g.ID == f.ID {
		t.Fatal("a new file took the unlinked one's id")
	}
}

// testRmdir: Rmdir moves an empty directory to the trash (entries in the
// trash do not count); one with live entries fails with NotEmpty, a
// non-directory with NotDir.
func testRmdir(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	d := mkdir(t, b, r, "d")
	ok(t, b.Rmdir(ctx, r, "d"))
	gone(t, b, r, "d")
	if got := testkit.Must(b.GetAttr(ctx, d.ID))(t); got.Live || got.Kind != dfms.KindDir {
		t.Fatalf("GetAttr of a removed directory = %+v, want it, not live", got)
	}
	testkit.WantKind(t, b.Rmdir(ctx, r, "d"), dfms.NotExist, "Rmdir again")

	full := mkdir(t, b, r, "full")
	create(t, b, full.ID, "f")
	testkit.WantKind(t, b.Rmdir(ctx, r, "full"), dfms.NotEmpty, "Rmdir of a directory with a file")
	ok(t, b.Unlink(ctx, full.ID, "f"))
	mkdir(t, b, full.ID, "sub")
	testkit.WantKind(t, b.Rmdir(ctx, r, "full"), dfms.NotEmpty, "Rmdir of a directory with a directory")
	if !live(t, b, full.ID) {
		t.Fatal("a refused rmdir trashed the directory")
	}
	ok(t, b.Rmdir(ctx, full.ID, "sub"))
	ok(t, b.Rmdir(ctx, r, "full")) // what is left is in the trash

	create(t, b, r, "f")
	testkit.Must(b.Symlink(ctx, r, "l", "f", 0, 0))(t)
	testkit.WantKind(t, b.Rmdir(ctx, r, "f"), dfms.NotDir, "Rmdir of a file")
	testkit.WantKind(t, b.Rmdir(ctx, r, "l"), dfms.NotDir, "Rmdir of a symlink")
	testkit.WantKind(t, b.Rmdir(ctx, r, "nothing"), dfms.NotExist, "Rmdir of no name")
}

// testRename: Rename moves an entry, keeping its id, to a free name in
// the same or another directory; a taken name without replace fails with
// Exist and changes nothing.
func testRename(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	d := mkdir(t, b, r, "d")
	f := create(t, b, r, "f")
	v := write(t, b, f.ID, 0, "renamed").Version
	ok(t, b.Rename(ctx, r, "f", r, "g", false))
	gone(t, b, r, "f")
	if got := testkit.Must(b.Lookup(ctx, r, "g"))(t); got.ID != f.ID || got.Name != "g" || got.Version != v {
		t.Fatalf("after a rename in place: %+v, want file %d at version %d", got, f.ID, v)
	}
	ok(t, b.Rename(ctx, r, "g", d.ID, "h", true)) // replace with a free name
	gone(t, b, r, "g")
	if got := testkit.Must(b.GetAttr(ctx, f.ID))(t); got.Parent != d.ID || got.Name != "h" || !got.Live {
		t.Fatalf("after a move to d: %+v", got)
	}
	if _, s := content(t, b, f.ID, 0); s != "renamed" {
		t.Fatalf("the moved file holds %q", s)
	}
	// A directory moves with what it holds.
	sub := mkdir(t, b, r, "sub")
	inner := create(t, b, sub.ID, "inner")
	ok(t, b.Rename(ctx, r, "sub", d.ID, "sub2", false))
	if got := testkit.Must(b.Lookup(ctx, d.ID, "sub2"))(t); got.ID != sub.ID {
		t.Fatalf("Lookup(d, sub2) = %+v", got)
	}
	if got := testkit.Must(b.Lookup(ctx, sub.ID, "inner"))(t); got.ID != inner.ID {
		t.Fatalf("the moved directory lost its entry: %+v", got)
	}

	// Taken names, without replace.
	x := create(t, b, r, "x")
	y := create(t, b, r, "y")
	e := mkdir(t, b, r, "e")
	for _, to := range []string{"y", "e"} {
		testkit.WantKind(t, b.Rename(ctx, r, "x", r, to, false), dfms.Exist, "Rename x over "+to+" without replace")
	}
	testkit.WantKind(t, b.Rename(ctx, r, "e", r, "x", false), dfms.Exist, "Rename e over x without replace")
	for _, want := range []vfs.Entry{x, y, e} {
		if got := testkit.Must(b.Lookup(ctx, r, want.Name))(t); got.ID != want.ID || !got.Live {
			t.Fatalf("a refused rename changed %s: %+v", want.Name, got)
		}
	}
	testkit.WantKind(t, b.Rename(ctx, r, "nothing", r, "z", false), dfms.NotExist, "Rename of no name")
	testkit.WantKind(t, b.Rename(ctx, r, "x", noSuchID, "z", false), dfms.NotExist, "Rename into no directory")
	testkit.WantKind(t, b.Rename(ctx, r, "x", y.ID, "z", false), dfms.NotDir, "Rename into a file")
}

// testRenameReplace: with replace, a file or symlink at the new name goes
// to the trash, an empty directory is removed, a non-empty one fails with
// NotEmpty, and a kind mismatch fails with IsDir or NotDir.
func testRenameReplace(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	src := create(t, b, r, "src")
	dst := create(t, b, r, "dst")
	write(t, b, dst.ID, 0, "old")
	ok(t, b.Rename(ctx, r, "src", r, "dst", true))
	gone(t, b, r, "src")
	if got := testkit.Must(b.Lookup(ctx, r, "dst"))(t); got.ID != src.ID {
		t.Fatalf("after a rename over a file, dst is %+v, want file %d", got, src.ID)
	}
	if live(t, b, dst.ID) {
		t.Fatal("the file renamed over is still live")
	}
	// Over a symlink, with a symlink.
	l := testkit.Must(b.Symlink(ctx, r, "l", "a", 0, 0))(t)
	l2 := testkit.Must(b.Symlink(ctx, r, "l2", "b", 0, 0))(t)
	ok(t, b.Rename(ctx, r, "l2", r, "l", true))
	if got := testkit.Must(b.Lookup(ctx, r, "l"))(t); got.ID != l2.ID || got.Target != "b" {
		t.Fatalf("after a rename over a symlink: %+v", got)
	}
	if live(t, b, l.ID) {
		t.Fatal("the symlink renamed over is still live")
	}
	// A directory over an empty directory.
	d := mkdir(t, b, r, "d")
	create(t, b, d.ID, "in")
	empty := mkdir(t, b, r, "empty")
	ok(t, b.Rename(ctx, r, "d", r, "empty", true))
	if got := testkit.Must(b.Lookup(ctx, r, "empty"))(t); got.ID != d.ID {
		t.Fatalf("after a rename over an empty directory: %+v", got)
	}
	// "Removed": gone for good or in the trash, as the backend keeps it.
	if e, err := b.GetAttr(ctx, empty.ID); err == nil && e.Live {
		t.Fatal("the empty directory renamed over is still live")
	} else if err != nil {
		testkit.WantKind(t, err, dfms.NotExist, "GetAttr of the directory renamed over")
	}
	// A directory over a non-empty one.
	mkdir(t, b, r, "d2")
	testkit.WantKind(t, b.Rename(ctx, r, "d2", r, "empty", true), dfms.NotEmpty, "Rename over a non-empty directory")
	// Kind mismatches.
	f := create(t, b, r, "f")
	testkit.WantKind(t, b.Rename(ctx, r, "f", r, "d2", true), dfms.IsDir, "Rename a file over a directory")
	testkit.WantKind(t, b.Rename(ctx, r, "l", r, "d2", true), dfms.IsDir, "Rename a symlink over a directory")
	testkit.WantKind(t, b.Rename(ctx, r, "d2", r, "f", true), dfms.NotDir, "Rename a directory over a file")
	testkit.WantKind(t, b.Rename(ctx, r, "d2", r, "l", true), dfms.NotDir, "Rename a directory over a symlink")
	if !live(t, b, f.ID) || !live(t, b, l2.ID) {
		t.Fatal("a refused rename trashed its target")
	}
	// A file over a symlink and back: both non-directories.
	ok(t, b.Rename(ctx, r, "f", r, "l", true))
	if got := testkit.Must(b.Lookup(ctx, r, "l"))(t); got.ID != f.ID || got.Kind != dfms.KindFile {
		t.Fatalf("after a rename of a file over a symlink: %+v", got)
	}
}

// testRenameUnderItself: moving a directory under itself, or under one of
// its descendants, fails with Invalid and changes nothing.
func testRenameUnderItself(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	a := mkdir(t, b, r, "a")
	sub := mkdir(t, b, a.ID, "sub")
	deep := mkdir(t, b, sub.ID, "deep")
	for _, to := range []vfs.Entry{a, sub, deep} {
		for _, replace := range []bool{false, true} {
			err := b.Rename(ctx, r, "a", to.ID, "moved", replace)
			testkit.WantKind(t, err, dfms.Invalid, "Rename a under "+to.Name)
		}
	}
	if got := testkit.Must(b.Lookup(ctx, r, "a"))(t); got.ID != a.ID || got.Parent != r {
		t.Fatalf("after the refused renames a is %+v", got)
	}
}

// testSetAttr: SetAttr changes the attributes given and leaves the others.
func testSetAttr(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	f := testkit.Must(b.CreateFile(ctx, r, "f", 0o644, 10, 20))(t)
	mode := uint32(0o2750)
	e := testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{Mode: &mode}))(t)
	if e.ID != f.ID || e.Mode != 0o2750 || e.UID != 10 || e.GID != 20 {
		t.Fatalf("SetAttr mode: %+v", e)
	}
	uid, gid := uint32(30), uint32(40)
	e = testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{UID: &uid}))(t)
	if e.Mode != 0o2750 || e.UID != 30 || e.GID != 20 {
		t.Fatalf("SetAttr uid: %+v", e)
	}
	e = testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{GID: &gid}))(t)
	if e.Mode != 0o2750 || e.UID != 30 || e.GID != 40 {
		t.Fatalf("SetAttr gid: %+v", e)
	}
	mt := stamp(48 * time.Hour)
	e = testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{MTime: &mt}))(t)
	if !e.MTime.Equal(mt) || e.Mode != 0o2750 || e.UID != 30 || e.GID != 40 {
		t.Fatalf("SetAttr mtime: %+v, want mtime %v", e, mt)
	}
	got := testkit.Must(b.GetAttr(ctx, f.ID))(t)
	if !got.MTime.Equal(mt) || got.Mode != 0o2750 || got.UID != 30 || got.GID != 40 {
		t.Fatalf("GetAttr after SetAttr: %+v", got)
	}
	at := stamp(96 * time.Hour)
	e = testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{ATime: &at}))(t)
	if !e.ATime.Equal(at) || !e.MTime.Equal(mt) {
		t.Fatalf("SetAttr atime: %+v, want atime %v, mtime %v", e, at, mt)
	}
	if got := testkit.Must(b.GetAttr(ctx, f.ID))(t); !got.ATime.Equal(at) || !got.MTime.Equal(mt) {
		t.Fatalf("GetAttr after SetAttr atime: %+v", got)
	}
	// A read's access time (Accessed) moves the atime forward only, and
	// not the ctime; it comes alone.
	ctime := testkit.Must(b.GetAttr(ctx, f.ID))(t).CTime
	older, newer := stamp(120*time.Hour), stamp(72*time.Hour)
	if e := testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{ATime: &older, Accessed: true}))(t); !e.ATime.Equal(at) {
		t.Fatalf("an earlier access: %+v, want atime %v", e, at)
	}
	if e := testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{ATime: &newer, Accessed: true}))(t); !e.ATime.Equal(newer) || !e.CTime.Equal(ctime) || !e.MTime.Equal(mt) {
		t.Fatalf("an access: %+v, want atime %v, ctime %v", e, newer, ctime)
	}
	// Read since its last change, it moves no more (relatime).
	read, again := stamp(-time.Minute), stamp(-2*time.Minute)
	testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{ATime: &read, Accessed: true}))(t)
	if e := testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{ATime: &again, Accessed: true}))(t); !e.ATime.Equal(read) {
		t.Fatalf("an access after one since the last change: atime %v, want %v", e.ATime, read)
	}
	_, err := b.SetAttr(ctx, f.ID, dfms.SetAttr{Mode: &mode, ATime: &newer, Accessed: true})
	testkit.WantKind(t, err, dfms.Invalid, "an access with a mode")
	// Nothing to change changes nothing.
	if e := testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{}))(t); !e.MTime.Equal(mt) || e.Mode != 0o2750 || e.UID != 30 {
		t.Fatalf("an empty SetAttr: %+v", e)
	}
	// Directories too.
	d := mkdir(t, b, r, "d")
	dm := uint32(0o700)
	if e := testkit.Must(b.SetAttr(ctx, d.ID, dfms.SetAttr{Mode: &dm}))(t); e.Mode != 0o700 || e.Kind != dfms.KindDir {
		t.Fatalf("SetAttr of a directory: %+v", e)
	}
	_, err = b.SetAttr(ctx, noSuchID, dfms.SetAttr{Mode: &mode})
	testkit.WantKind(t, err, dfms.NotExist, "SetAttr of no entry")
}

// testXattrs: extended attributes by mode (XattrCreate fails with Exist
// on a name set, XattrReplace with NotExist on one not set), listed by
// name, removed (NotExist if absent); an absent one is found false.
func testXattrs(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	f := create(t, b, r, "f")
	if v, found, err := b.GetXattr(ctx, f.ID, "user.a"); err != nil || found || len(v) != 0 {
		t.Fatalf("GetXattr of none: %q, %v, %v; want not found, no error", v, found, err)
	}
	if ns := testkit.Must(b.ListXattrs(ctx, f.ID))(t); len(ns) != 0 {
		t.Fatalf("ListXattrs of a new file: %v", ns)
	}
	testkit.WantKind(t, b.SetXattr(ctx, f.ID, "user.a", []byte("x"), dfms.XattrReplace), dfms.NotExist, "XattrReplace of none")
	ok(t, b.SetXattr(ctx, f.ID, "user.a", []byte("one"), dfms.XattrCreate))
	testkit.WantKind(t, b.SetXattr(ctx, f.ID, "user.a", []byte("two"), dfms.XattrCreate), dfms.Exist, "XattrCreate of one set")
	if v, found := mustXattr(t, b, f.ID, "user.a"); !found || string(v) != "one" {
		t.Fatalf("after a refused create: %q, %v; want one", v, found)
	}
	ok(t, b.SetXattr(ctx, f.ID, "user.a", []byte("two"), dfms.XattrReplace))
	ok(t, b.SetXattr(ctx, f.ID, "user.a", []byte("three"), dfms.XattrAny))
	ok(t, b.SetXattr(ctx, f.ID, "user.b", []byte{0, 1, 0xff}, dfms.XattrAny))
	ok(t, b.SetXattr(ctx, f.ID, "user.empty", nil, dfms.XattrCreate))
	if v, found := mustXattr(t, b, f.ID, "user.a"); !found || string(v) != "three" {
		t.Fatalf("GetXattr user.a = %q, %v; want three", v, found)
	}
	if v, found := mustXattr(t, b, f.ID, "user.b"); !found || !bytes.Equal(v, []byte{0, 1, 0xff}) {
		t.Fatalf("GetXattr user.b = %q, %v; want its binary value", v, found)
	}
	if v, found := mustXattr(t, b, f.ID, "user.empty"); !found || len(v) != 0 {
		t.Fatalf("GetXattr user.empty = %q, %v; want found, empty", v, found)
	}
	ns := testkit.Must(b.ListXattrs(ctx, f.ID))(t)
	slices.Sort(ns)
	if !slices.Equal(ns, []string{"user.a", "user.b", "user.empty"}) {
		t.Fatalf("ListXattrs = %v", ns)
	}
	ok(t, b.RemoveXattr(ctx, f.ID, "user.a"))
	if _, found := mustXattr(t, b, f.ID, "user.a"); found {
		t.Fatal("a removed attribute is still found")
	}
	testkit.WantKind(t, b.RemoveXattr(ctx, f.ID, "user.a"), dfms.NotExist, "RemoveXattr of none")
	testkit.WantKind(t, b.SetXattr(ctx, f.ID, "user.a", []byte("x"), dfms.XattrReplace), dfms.NotExist, "XattrReplace of a removed one")
	// Attributes are per entry, and directories have them too.
	d := mkdir(t, b, r, "d")
	ok(t, b.SetXattr(ctx, d.ID, "user.b", []byte("dir"), dfms.XattrCreate))
	if v, _ := mustXattr(t, b, f.ID, "user.b"); !bytes.Equal(v, []byte{0, 1, 0xff}) {
		t.Fatalf("another entry's attribute changed the file's: %q", v)
	}
	testkit.WantKind(t, b.SetXattr(ctx, noSuchID, "user.a", []byte("x"), dfms.XattrAny), dfms.NotExist, "SetXattr of no entry")
	_, err := b.ListXattrs(ctx, noSuchID)
	testkit.WantKind(t, err, dfms.NotExist, "ListXattrs of no entry")
}

func mustXattr(t *testing.T, b vfs.Backend, id dfms.EntryID, name string) ([]byte, bool) {
	t.Helper()
	v, found, err := b.GetXattr(ctx, id, name)
	if err != nil {
		t.Fatalf("GetXattr %s: %v", name, err)
	}
	return v, found
}
