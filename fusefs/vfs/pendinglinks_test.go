package vfs_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// dirNames lists the names of dir.
func dirNames(t *testing.T, fsys *vfs.FS, dir vfs.Ino) []string {
	t.Helper()
	list := testkit.Must(fsys.ReadDir(ctx, dir))(t)
	var out []string
	for _, d := range list {
		out = append(out, d.Name)
	}
	slices.Sort(out)
	return out
}

// A hard link to a file not on the server yet, and an unlink of one of
// its names, stay in memory: git's link of each object it writes under
// a temporary name, and unlink of that name, cost the server one create
// of the final name, as a rename would.
func TestPendingLinks(t *testing.T) {
	b := &counting{Backend: newLocal(t)}
	fsys, _ := newFS(t, b)
	defer fsys.Close(ctx)
	root := fsys.Root()
	rootID := dfms.EntryID(root)

	tmp, h := createOpen(t, fsys, root, "tmp_obj")
	writeAt(t, h, []byte("object"), 0)
	a, err := fsys.Link(ctx, tmp.Ino, root, "final")
	if err != nil {
		t.Fatal(err)
	}
	if a.Ino != tmp.Ino || a.Nlink != 2 {
		t.Fatalf("link = %+v, want inode %d with 2 links", a, tmp.Ino)
	}
	if got := mustLookup(t, fsys, root, "tmp_obj"); got.Nlink != 2 {
		t.Fatalf("the first name after the link: %+v", got)
	}
	if got := dirNames(t, fsys, root); !slices.Equal(got, []string{"final", "tmp_obj"}) {
		t.Fatalf("listed %v", got)
	}
	_, err = fsys.Link(ctx, tmp.Ino, root, "final")
	testkit.WantKind(t, err, dfms.Exist, "a link to a taken name")
	if err := fsys.Unlink(ctx, root, "tmp_obj"); err != nil {
		t.Fatal(err)
	}
	if got := mustLookup(t, fsys, root, "final"); got.Ino != tmp.Ino || got.Nlink != 1 {
		t.Fatalf("the link after the first name's unlink: %+v", got)
	}
	if _, err := fsys.Lookup(ctx, root, "tmp_obj"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("the unlinked name: %v", err)
	}
	if _, err := b.Backend.GetAttr(ctx, dfms.EntryID(tmp.Ino)); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("a link of a pending file reached the backend: %v", err)
	}
	h.Release(ctx)

	// A link kept, and a link unlinked again.
	kept, h1 := createOpen(t, fsys, root, "kept")
	writeAt(t, h1, []byte("two names"), 0)
	if _, err := fsys.Link(ctx, kept.Ino, root, "kept2"); err != nil {
		t.Fatal(err)
	}
	gone, h2 := createOpen(t, fsys, root, "one")
	if _, err := fsys.Link(ctx, gone.Ino, root, "briefly"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Unlink(ctx, root, "briefly"); err != nil {
		t.Fatal(err)
	}
	if got := mustLookup(t, fsys, root, "one"); got.Nlink != 1 {
		t.Fatalf("after its link's unlink: %+v", got)
	}
	// A rename from a link's name moves that name.
	mv, h3 := createOpen(t, fsys, root, "mv-a")
	if _, err := fsys.Link(ctx, mv.Ino, root, "mv-b"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Rename(ctx, root, "mv-b", root, "mv-c", 0); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*vfs.Handle{h1, h2, h3} {
		h.Release(ctx)
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, fsys, root); !slices.Equal(got, []string{"final", "kept", "kept2", "mv-a", "mv-c", "one"}) {
		t.Fatalf("listed after the sync %v", got)
	}
	for name, want := range map[string]struct {
		ino   vfs.Ino
		nlink uint32
	}{"final": {tmp.Ino, 1}, "kept": {kept.Ino, 2}, "kept2": {kept.Ino, 2}, "one": {gone.Ino, 1}, "mv-a": {mv.Ino, 2}, "mv-c": {mv.Ino, 2}} {
		e, err := b.Backend.Lookup(ctx, rootID, name)
		if err != nil || vfs.Ino(e.ID) != want.ino || e.Nlink != want.nlink {
			t.Fatalf("backend %s = %+v, %v; want inode %d with %d links", name, e, err, want.ino, want.nlink)
		}
	}
	for _, name := range []string{"tmp_obj", "briefly", "mv-b"} {
		if _, err := b.Backend.Lookup(ctx, rootID, name); !dfms.Is(err, dfms.NotExist) {
			t.Fatalf("backend %s: %v", name, err)
		}
	}
	fh := mustOpen(t, fsys, mustLookup(t, fsys, root, "final").Ino, os.O_RDONLY)
	if got := readAll(t, fh); string(got) != "object" {
		t.Fatalf("final holds %q", got)
	}
	fh.Release(ctx)
	// The backend made the links it had to: kept2, and mv-b before the
	// rename moved it (a rename from a link's name needs the backend).
	if n := b.links.Load(); n != 2 {
		t.Fatalf("%d links reached the backend, want 2", n)
	}
	if n := b.unlinks.Load(); n != 0 {
		t.Fatalf("%d unlinks reached the backend, want 0", n)
	}

	// A link in another directory goes through the backend.
	sub, err := fsys.Mkdir(ctx, root, "sub", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	x, hx := createOpen(t, fsys, root, "x")
	if _, err := fsys.Link(ctx, x.Ino, sub.Ino, "x"); err != nil {
		t.Fatal(err)
	}
	hx.Release(ctx)
	if e, err := b.Backend.Lookup(ctx, dfms.EntryID(sub.Ino), "x"); err != nil || vfs.Ino(e.ID) != x.Ino || e.Nlink != 2 {
		t.Fatalf("a link in another directory, in the backend: %+v, %v", e, err)
	}
}

// The links of a pending file, and the unlinks of its names, are in its
// journal: a crash before the file reached the server loses none.
func TestPendingLinksRecovery(t *testing.T) {
	l, svc, fsys, cache := newCrashable(t)
	root := fsys.Root()
	rootID := dfms.EntryID(root)
	moved, h := createOpen(t, fsys, root, "tmp")
	writeAt(t, h, []byte("moved by link and unlink"), 0)
	if _, err := fsys.Link(ctx, moved.Ino, root, "final"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Unlink(ctx, root, "tmp"); err != nil {
		t.Fatal(err)
	}
	both, _ := createOpen(t, fsys, root, "a")
	if _, err := fsys.Link(ctx, both.Ino, root, "b"); err != nil {
		t.Fatal(err)
	}
	remountAfterCrash(t, fsys, l, cache)
	e, err := l.Lookup(ctx, rootID, "final")
	if err != nil || vfs.Ino(e.ID) != moved.Ino {
		t.Fatalf("recovered final = %+v, %v", e, err)
	}
	if got := storedContent(t, svc, l, moved.Ino); string(got) != "moved by link and unlink" {
		t.Fatalf("recovered content %q", got)
	}
	if _, err := l.Lookup(ctx, rootID, "tmp"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("the unlinked name after recovery: %v", err)
	}
	for _, name := range []string{"a", "b"} {
		if e, err := l.Lookup(ctx, rootID, name); err != nil || vfs.Ino(e.ID) != both.Ino || e.Nlink != 2 {
			t.Fatalf("recovered %s = %+v, %v", name, e, err)
		}
	}
}

// heldCreates is a backend whose CreateFiles waits for release once it has
// begun (started), while the files it makes are in flight.
type heldCreates struct {
	*local.Backend
	started, release chan struct{}
}

func (h *heldCreates) CreateFiles(ctx context.Context, es []vfs.Entry) ([]vfs.CommitResult, error) {
	h.started <- struct{}{}
	<-h.release
	return h.Backend.CreateFiles(ctx, es)
}

// Regression test; the bug was: git writes each object under a temporary
// name, links it to its final name and unlinks the temporary one. An
// unlink that came while the write-back was making the file and its link
// on the server waited for it, then unlinked by id, which trashed the
// file with both names: the final name was lost ("invalid object" at git
// commit). The unlink must take that one name only.
func TestPendingLinkUnlinkedWhileMade(t *testing.T) {
	b := &heldCreates{Backend: newLocal(t), started: make(chan struct{}), release: make(chan struct{})}
	fsys := newWriteBackFS(t, b, t.TempDir())
	defer fsys.Close(ctx)
	root := fsys.Root()
	tmp, h := createOpen(t, fsys, root, "tmp_obj")
	writeAt(t, h, []byte("object"), 0)
	release(t, h)
	if _, err := fsys.Link(ctx, tmp.Ino, root, "final"); err != nil {
		t.Fatal(err)
	}
	synced := make(chan error, 1)
	go func() { synced <- fsys.Sync(ctx) }()
	<-b.started // the file and its link are being made
	unlinked := make(chan error, 1)
	go func() { unlinked <- fsys.Unlink(ctx, root, "tmp_obj") }()
	close(b.release)
	if err := <-unlinked; err != nil {
		t.Fatal(err)
	}
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if err := fsys.Sync(ctx); err != nil { // the unlink's removal made
		t.Fatal(err)
	}
	a, err := fsys.Lookup(ctx, root, "final")
	if err != nil {
		t.Fatalf("the final name after the temporary one's unlink: %v", err)
	}
	h = mustOpen(t, fsys, a.Ino, os.O_RDONLY)
	if got := string(readAll(t, h)); got != "object" || a.Nlink != 1 {
		t.Fatalf("final holds %q with %d links, want \"object\" with 1", got, a.Nlink)
	}
	release(t, h)
	if _, err := b.Backend.Lookup(ctx, dfms.EntryID(root), "final"); err != nil {
		t.Fatalf("the server lost the final name: %v", err)
	}
	if _, err := b.Backend.Lookup(ctx, dfms.EntryID(root), "tmp_obj"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("the server still has the temporary name: %v", err)
	}
}

// Regression test; the bug was: git writes each object under a temporary
// name, closes it, links it to its final name and unlinks the temporary
// one, and some final names were lost (git commit: "invalid object") when
// the write-back made the file on the server in between. Every final
// name must hold its object, on the mount and on the server.
func TestPendingLinksUnderWriteBack(t *testing.T) {
	fsys, _, svc := writeBackLocal(t)
	root := fsys.Root()
	const n, dirs = 600, 16
	var ds []vfs.Ino
	for i := range dirs {
		ds = append(ds, testkit.Must(fsys.Mkdir(ctx, root, fmt.Sprintf("%02x", i), 0o755, vfs.Caller{}))(t).Ino)
	}
	for i := range n {
		d := ds[i%dirs]
		tmp, h := createOpen(t, fsys, d, fmt.Sprintf("tmp_obj_%d", i))
		writeAt(t, h, []byte(fmt.Sprintf("object %d", i)), 0)
		if err := h.Flush(ctx); err != nil { // close(2); the kernel releases later
			t.Fatal(err)
		}
		if i%2 == 0 {
			release(t, h)
		}
		if _, err := fsys.Link(ctx, tmp.Ino, d, fmt.Sprintf("obj%04d", i)); err != nil {
			t.Fatalf("link %d: %v", i, err)
		}
		if err := fsys.Unlink(ctx, d, fmt.Sprintf("tmp_obj_%d", i)); err != nil {
			t.Fatalf("unlink %d: %v", i, err)
		}
		if i%2 == 1 {
			release(t, h)
		}
	}
	check := func(where string) {
		t.Helper()
		lost := 0
		for i := range n {
			a, err := fsys.Lookup(ctx, ds[i%dirs], fmt.Sprintf("obj%04d", i))
			if err != nil {
				lost++
				if lost <= 5 {
					t.Errorf("%s: obj%04d: %v", where, i, err)
				}
				continue
			}
			h := mustOpen(t, fsys, a.Ino, os.O_RDONLY)
			if got := string(readAll(t, h)); got != fmt.Sprintf("object %d", i) {
				t.Errorf("%s: obj%04d holds %q", where, i, got)
			}
			release(t, h)
		}
		if lost > 0 {
			t.Fatalf("%s: %d of %d final names lost", where, lost, n)
		}
	}
	check("on the mount")
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("after sync")
	_ = svc
}
