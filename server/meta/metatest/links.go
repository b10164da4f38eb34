package metatest

import (
	"slices"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

// wantNames checks the names of dir's listing.
func wantNames(t *testing.T, s meta.Store, owner dfms.UserID, dir dfms.EntryID, want ...string) {
	t.Helper()
	got := names(testkit.Must(s.ListDir(ctx, owner, dir, meta.ListOptions{ByName: true}))(t))
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
}

// wantNamed checks that parent/name names entry id with nlink names.
func wantNamed(t *testing.T, s meta.Store, owner dfms.UserID, parent dfms.EntryID, name string, id dfms.EntryID, nlink uint32) {
	t.Helper()
	e, err := s.Lookup(ctx, owner, parent, name)
	if err != nil || e.ID != id || e.Parent != parent || e.Name != name || e.Nlink != nlink || !e.Live() {
		t.Fatalf("%d/%s is %+v, %v; want entry %d with %d names", parent, name, e, err, id, nlink)
	}
}

// Hard links: an entry has names in several directories; each name finds
// it, lists with it, renames on its own; removing one keeps the others,
// and the first name's place is taken by another; the last one's removal
// trashes the entry. Names are taken by entries or links, never both.
func testHardLinks(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "d")
	f, _ := commit(t, s, u.ID, u.Root, "f", manifest(t, s, chunk("links-1", 10)))

	g := testkit.Must(s.Link(ctx, u.ID, f.ID, u.Root, "g"))(t)
	if g.ID != f.ID || g.Parent != u.Root || g.Name != "g" || g.Nlink != 2 || g.Version != 1 {
		t.Fatalf("Link = %+v", g)
	}
	if e := testkit.Must(s.GetEntry(ctx, u.ID, f.ID))(t); e.Name != "f" || e.Nlink != 2 {
		t.Fatalf("GetEntry after Link = %+v", e)
	}
	wantNamed(t, s, u.ID, u.Root, "g", f.ID, 2)
	wantNames(t, s, u.ID, u.Root, "d", "f", "g")
	if n := testkit.Must(s.CountDir(ctx, u.ID, u.Root))(t); n != 3 {
		t.Fatalf("CountDir = %d, want 3", n)
	}
	after := testkit.Must(s.ListDir(ctx, u.ID, u.Root, meta.ListOptions{After: "f"}))(t)
	if len(after) != 1 || after[0].Name != "g" || after[0].ID != f.ID {
		t.Fatalf("a page after f: %+v", after)
	}

	// Refusals, which change nothing.
	_, err := s.Link(ctx, u.ID, f.ID, u.Root, "d")
	testkit.WantKind(t, err, dfms.Exist, "a link over a taken name")
	_, err = s.Link(ctx, u.ID, d.ID, u.Root, "d2")
	testkit.WantKind(t, err, dfms.IsDir, "a link to a directory")
	_, err = s.Link(ctx, u.ID, f.ID, 1<<40, "x")
	testkit.WantKind(t, err, dfms.NotExist, "a link in no directory")
	_, err = s.Link(ctx, u.ID, f.ID, u.Root, "a/b")
	testkit.WantKind(t, err, dfms.Invalid, "a link with a bad name")
	_, err = s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "g", Kind: dfms.KindFile, Mode: 0o644})
	testkit.WantKind(t, err, dfms.Exist, "a create over a link's name")
	other := newUser(t, s)
	_, err = s.Link(ctx, other.ID, f.ID, other.Root, "mine")
	testkit.WantKind(t, err, dfms.NotExist, "a link to another user's file")
	wantNames(t, s, u.ID, u.Root, "d", "f", "g")

	// A commit through either name is a version of the one file.
	e, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "g",
		Manifest: manifest(t, s, chunk("links-2", 20)), SHA256: dfms.Sum([]byte("2"))})
	if err != nil || e.ID != f.ID || e.Version != 2 {
		t.Fatalf("commit by the link's name: %+v, %v", e, err)
	}

	// Renames: onto another name of the same file does nothing; a link
	// moves on its own.
	must2(t)(s.RenameName(ctx, u.ID, u.Root, "g", u.Root, "f", true))
	wantNames(t, s, u.ID, u.Root, "d", "f", "g")
	moved, _ := must2(t)(s.RenameName(ctx, u.ID, u.Root, "g", d.ID, "h", false))
	if moved.ID != f.ID || moved.Parent != d.ID || moved.Name != "h" {
		t.Fatalf("renamed link = %+v", moved)
	}
	wantNames(t, s, u.ID, u.Root, "d", "f")
	wantNamed(t, s, u.ID, d.ID, "h", f.ID, 2)

	// Unlinking the first name: a link takes its place.
	e = testkit.Must(s.Unlink(ctx, u.ID, u.Root, "f"))(t)
	if !e.Live() || e.Parent != d.ID || e.Name != "h" || e.Nlink != 1 {
		t.Fatalf("after unlinking the first name: %+v", e)
	}
	wantNames(t, s, u.ID, u.Root, "d")
	testkit.Must(s.Link(ctx, u.ID, f.ID, u.Root, "k"))(t)
	ok(t, func() error { _, err := s.Unlink(ctx, u.ID, u.Root, "k"); return err }())
	wantNamed(t, s, u.ID, d.ID, "h", f.ID, 1)
	// The last name trashes it; a restore brings it back.
	e = testkit.Must(s.Unlink(ctx, u.ID, d.ID, "h"))(t)
	if e.Live() || e.Nlink != 0 {
		t.Fatalf("after unlinking the last name: %+v", e)
	}
	testkit.Must(s.Restore(ctx, u.ID, f.ID))(t)
	wantNamed(t, s, u.ID, d.ID, "h", f.ID, 1)
	_, err = s.Unlink(ctx, u.ID, u.Root, "d")
	testkit.WantKind(t, err, dfms.IsDir, "Unlink of a directory")
	_, err = s.Unlink(ctx, u.ID, u.Root, "nothing")
	testkit.WantKind(t, err, dfms.NotExist, "Unlink of no name")

	// A rename over one name of a file with two takes only that name:
	// the file stays, with its history.
	a, _ := commit(t, s, u.ID, u.Root, "a", manifest(t, s, chunk("links-a", 5)))
	testkit.Must(s.Link(ctx, u.ID, a.ID, d.ID, "a2"))(t)
	x, _ := commit(t, s, u.ID, u.Root, "x", manifest(t, s, chunk("links-x", 6)))
	_, replaced := must2(t)(s.RenameName(ctx, u.ID, u.Root, "x", u.Root, "a", true))
	if replaced.ID != a.ID {
		t.Fatalf("replaced %+v, want entry %d", replaced, a.ID)
	}
	wantNamed(t, s, u.ID, u.Root, "a", x.ID, 1)
	wantNamed(t, s, u.ID, d.ID, "a2", a.ID, 1)
	if vs := testkit.Must(s.ListVersions(ctx, u.ID, a.ID))(t); len(vs) != 1 {
		t.Fatalf("the file that kept a name has %d versions, want its 1", len(vs))
	}
	if vs := testkit.Must(s.ListVersions(ctx, u.ID, x.ID))(t); len(vs) != 1 {
		t.Fatalf("the moved file has %d versions, want its 1 (no history taken from a file that lives on)", len(vs))
	}

	// A deletion by id takes every name.
	testkit.Must(s.Link(ctx, u.ID, a.ID, u.Root, "a3"))(t)
	ok(t, s.Trash(ctx, u.ID, a.ID))
	for _, n := range []struct {
		dir  dfms.EntryID
		name string
	}{{d.ID, "a2"}, {u.Root, "a3"}} {
		_, err := s.Lookup(ctx, u.ID, n.dir, n.name)
		testkit.WantKind(t, err, dfms.NotExist, "a name of a file deleted by id")
	}
	testkit.Must(s.Restore(ctx, u.ID, a.ID))(t)
	wantNamed(t, s, u.ID, d.ID, "a2", a.ID, 1)

	// A folder deleted with links in it: a link held there goes, a file
	// named there and elsewhere stays elsewhere.
	box := mkdir(t, s, u.ID, u.Root, "box")
	p, _ := commit(t, s, u.ID, box.ID, "p", manifest(t, s, chunk("links-p", 7)))
	testkit.Must(s.Link(ctx, u.ID, p.ID, u.Root, "p-out"))(t)
	testkit.Must(s.Link(ctx, u.ID, x.ID, box.ID, "x-in"))(t)
	_, _, err = s.Rename(ctx, u.ID, mkdir(t, s, u.ID, u.Root, "empty").ID, u.Root, "box", true)
	testkit.WantKind(t, err, dfms.NotEmpty, "a directory renamed over one holding a link")
	ok(t, s.Trash(ctx, u.ID, box.ID))
	wantNamed(t, s, u.ID, u.Root, "p-out", p.ID, 1)
	wantNamed(t, s, u.ID, u.Root, "a", x.ID, 1)
	testkit.Must(s.Restore(ctx, u.ID, box.ID))(t)
	wantNames(t, s, u.ID, box.ID)

	// A directory counts 2 and its subdirectories.
	sub := mkdir(t, s, u.ID, box.ID, "s1")
	mkdir(t, s, u.ID, box.ID, "s2")
	if e := testkit.Must(s.GetEntry(ctx, u.ID, box.ID))(t); e.Nlink != 4 {
		t.Fatalf("a directory with 2 subdirectories has nlink %d, want 4", e.Nlink)
	}
	if e := testkit.Must(s.GetEntry(ctx, u.ID, sub.ID))(t); e.Nlink != 2 {
		t.Fatalf("an empty directory has nlink %d, want 2", e.Nlink)
	}
}
