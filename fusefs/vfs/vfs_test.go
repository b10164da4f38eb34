package vfs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

var ctx = context.Background()

// newLocal returns a Local backend on SQLite and a disk chunk store.
func newLocal(t *testing.T) *local.Backend { return newLocalB(t) }

func newLocalB(t testing.TB) *local.Backend {
	l, _ := newLocalParams(t, chunking.Params{}) // the default parameters
	return l
}

// openFS is vfs.New, failing t if it fails.
func openFS(t testing.TB, b vfs.Backend, o vfs.Options) *vfs.FS {
	t.Helper()
	fsys, err := vfs.New(ctx, b, o)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func newFS(t *testing.T, b vfs.Backend) (*vfs.FS, string) {
	t.Helper()
	cache := t.TempDir()
	fsys := openFS(t, b, vfs.Options{CacheDir: cache})
	t.Cleanup(fsys.WaitWorkers)
	return fsys, cache
}

func readAll(t *testing.T, h *vfs.Handle) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 7) // small on purpose: reads span chunk and call boundaries
	for off := int64(0); ; {
		n, err := h.Read(ctx, buf, off)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
}

// mustOpen opens ino with flags, failing t on an error.
func mustOpen(t testing.TB, fsys *vfs.FS, ino vfs.Ino, flags int) *vfs.Handle {
	t.Helper()
	h, err := fsys.Open(ctx, ino, flags)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// writeAt writes data at off through h, failing t on an error.
func writeAt(t testing.TB, h *vfs.Handle, data []byte, off int64) {
	t.Helper()
	if _, err := h.Write(ctx, data, off); err != nil {
		t.Fatal(err)
	}
}

// release closes h, failing t on an error.
func release(t testing.TB, h *vfs.Handle) {
	t.Helper()
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// closeFS closes fsys, failing t on an error.
func closeFS(t testing.TB, fsys *vfs.FS) {
	t.Helper()
	if err := fsys.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// openWrite opens ino with flags and writes data at offset 0 through the
// new handle, failing t on an error.
func openWrite(t *testing.T, fsys *vfs.FS, ino vfs.Ino, flags int, data string) *vfs.Handle {
	t.Helper()
	h := mustOpen(t, fsys, ino, flags)
	writeAt(t, h, []byte(data), 0)
	return h
}

// create makes the file name in the root, as UID 7 and GID 8, writes data
// to it, flushes and closes it, failing t on an error.
func create(t *testing.T, fsys *vfs.FS, name string, data string) vfs.Attr {
	t.Helper()
	return createBytes(t, fsys, name, []byte(data))
}

// createBytes is create with data as bytes.
func createBytes(t testing.TB, fsys *vfs.FS, name string, data []byte) vfs.Attr {
	t.Helper()
	a, h, err := fsys.Create(ctx, fsys.Root(), name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{UID: 7, GID: 8})
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, h, data, 0)
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	release(t, h)
	return a
}

func TestStaging(t *testing.T) {
	b := newLocal(t)
	fsys, _ := newFS(t, b)
	a := create(t, fsys, "f", "hello, world")
	if a.UID != 7 || a.GID != 8 || a.Mode != syscall.S_IFREG|0o644 {
		t.Errorf("created %+v", a)
	}
	w := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	r := mustOpen(t, fsys, a.Ino, os.O_RDONLY)
	writeAt(t, w, []byte("HELLO"), 0)
	if got := readAll(t, r); string(got) != "HELLO, world" {
		t.Fatalf("reader sees %q before commit, want the staged bytes", got)
	}
	if got, _ := fsys.GetAttr(ctx, a.Ino); got.Size != 12 {
		t.Errorf("staged size %d", got.Size)
	}
	// Closing the read-only handle commits nothing; closing the writer
	// does.
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wantVersions(t, b, a.Ino, 1, "after a reader's close")
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wantVersions(t, b, a.Ino, 2, "after the writer's close")
	// A clean flush commits nothing more.
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*vfs.Handle{w, r} {
		release(t, h)
	}
	wantVersions(t, b, a.Ino, 2, "after release")
	// Truncate by path makes a version at once.
	size := int64(5)
	if got, err := fsys.SetAttr(ctx, a.Ino, nil, vfs.SetAttrIn{Size: &size}); err != nil || got.Size != 5 {
		t.Fatalf("truncate: %+v, %v", got, err)
	}
	r = mustOpen(t, fsys, a.Ino, os.O_RDONLY)
	defer r.Release(ctx)
	if got := readAll(t, r); string(got) != "HELLO" {
		t.Fatalf("after truncate: %q", got)
	}
}

func TestVersionsTree(t *testing.T) {
	b := newLocal(t)
	fsys, _ := newFS(t, b)
	a := create(t, fsys, "f", "one")
	for _, s := range []string{"two", "three"} {
		h := openWrite(t, fsys, a.Ino, os.O_WRONLY|os.O_TRUNC, s)
		if err := h.Release(ctx); err != nil { // release alone commits
			t.Fatal(err)
		}
	}
	list, err := fsys.ReadDir(ctx, fsys.Root())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "f" {
		t.Fatalf("root lists %+v, want only f", list)
	}
	vd, err := fsys.Lookup(ctx, fsys.Root(), ".versions")
	if err != nil || !vd.IsDir() {
		t.Fatalf("lookup .versions: %+v, %v", vd, err)
	}
	vf, err := fsys.Lookup(ctx, vd.Ino, "f")
	if err != nil || !vf.IsDir() || vf.Mode&0o777 != 0o555 {
		t.Fatalf("lookup .versions/f: %+v, %v", vf, err)
	}
	vs, err := fsys.ReadDir(ctx, vf.Ino)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"one", "two", "three"} {
		if vs[i].Name != "v"+string(rune('1'+i)) || vs[i].Attr.Size != int64(len(want)) {
			t.Fatalf("version %d listed as %+v", i+1, vs[i])
		}
		h := mustOpen(t, fsys, vs[i].Attr.Ino, os.O_RDONLY)
		if got := readAll(t, h); string(got) != want {
			t.Errorf("v%d reads %q, want %q", i+1, got, want)
		}
		h.Release(ctx)
	}
	v1 := vs[0].Attr.Ino
	_, err = fsys.Open(ctx, v1, os.O_RDWR)
	testkit.WantKind(t, err, dfms.ReadOnly, "open a version for writing")
	_, _, err = fsys.Create(ctx, vf.Ino, "x", os.O_WRONLY|os.O_CREATE, 0o644, vfs.Caller{})
	testkit.WantKind(t, err, dfms.ReadOnly, "create in .versions/f")
	_, err = fsys.Mkdir(ctx, vd.Ino, "x", 0o755, vfs.Caller{})
	testkit.WantKind(t, err, dfms.ReadOnly, "mkdir in .versions")
	testkit.WantKind(t, fsys.Unlink(ctx, vf.Ino, "v1"), dfms.ReadOnly, "unlink a version")
	testkit.WantKind(t, fsys.Rename(ctx, vf.Ino, "v1", fsys.Root(), "g", 0), dfms.ReadOnly, "rename out of .versions")
	testkit.WantKind(t, fsys.Rename(ctx, fsys.Root(), "f", fsys.Root(), ".versions", 0), dfms.ReadOnly, "rename over .versions")
	_, err = fsys.SetAttr(ctx, v1, nil, vfs.SetAttrIn{})
	testkit.WantKind(t, err, dfms.ReadOnly, "setattr a version")
	_, err = fsys.Mkdir(ctx, fsys.Root(), ".versions", 0o755, vfs.Caller{})
	testkit.WantKind(t, err, dfms.Exist, "mkdir .versions")
	_, err = fsys.Lookup(ctx, vf.Ino, "v4")
	testkit.WantKind(t, err, dfms.NotExist, "lookup v4")
	_, err = fsys.Lookup(ctx, vf.Ino, "v01")
	testkit.WantKind(t, err, dfms.NotExist, "lookup v01")
}

func TestTreeErrors(t *testing.T) {
	fsys, _ := newFS(t, newLocal(t))
	root := fsys.Root()
	d, err := fsys.Mkdir(ctx, root, "d", 0o700, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	create(t, fsys, "f", "f")
	if _, err := fsys.Symlink(ctx, d.Ino, "l", "../f", vfs.Caller{}); err != nil {
		t.Fatal(err)
	}
	testkit.WantKind(t, fsys.Rmdir(ctx, root, "d"), dfms.NotEmpty, "rmdir non-empty")
	testkit.WantKind(t, fsys.Rmdir(ctx, root, "f"), dfms.NotDir, "rmdir file")
	testkit.WantKind(t, fsys.Unlink(ctx, root, "d"), dfms.IsDir, "unlink dir")
	testkit.WantKind(t, fsys.Rename(ctx, d.Ino, "l", root, "f", vfs.RenameNoReplace), dfms.Exist, "rename noreplace")
	testkit.WantKind(t, fsys.Rename(ctx, d.Ino, "l", root, "f", vfs.RenameExchange), dfms.Invalid, "rename exchange")
	testkit.WantKind(t, fsys.Rename(ctx, root, "d", d.Ino, "x", 0), dfms.Invalid, "dir under itself")
	_, err = fsys.Lookup(ctx, root, strings.Repeat("x", 256))
	if !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("long name: got %v, want ENAMETOOLONG", err)
	}
	if err := fsys.Rename(ctx, d.Ino, "l", root, "f", 0); err != nil {
		t.Fatal(err)
	}
	if target, err := fsys.Readlink(ctx, mustLookup(t, fsys, root, "f").Ino); err != nil || target != "../f" {
		t.Fatalf("readlink after rename over: %q, %v", target, err)
	}
	if err := fsys.Rmdir(ctx, root, "d"); err != nil {
		t.Fatal(err)
	}
	s, err := fsys.Statfs(ctx)
	if err != nil || s.TotalBytes <= 0 || s.FreeBytes <= 0 {
		t.Fatalf("statfs: %+v, %v", s, err)
	}
}

func mustLookup(t *testing.T, fsys *vfs.FS, dir vfs.Ino, name string) vfs.Attr {
	t.Helper()
	a, err := fsys.Lookup(ctx, dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// counting is the in-process backend counting the calls that reach it.
type counting struct {
	*local.Backend
	reads, manifests atomic.Int64 // GetAttr and Lookup; Manifest
	// CreateFile, SetAttr and Unlink, each made alone.
	creates, setattrs, unlinks atomic.Int64
	links                      atomic.Int64 // Link
	// The batches of CreateFiles, CommitManifests and TrashFiles, and the
	// files in them.
	createBatches, created atomic.Int64
	commitBatches, commits atomic.Int64
	trashBatches, trashed  atomic.Int64
}

func (c *counting) GetAttr(ctx context.Context, id dfms.EntryID) (vfs.Entry, error) {
	c.reads.Add(1)
	return c.Backend.GetAttr(ctx, id)
}

func (c *counting) Lookup(ctx context.Context, parent dfms.EntryID, name string) (vfs.Entry, error) {
	c.reads.Add(1)
	return c.Backend.Lookup(ctx, parent, name)
}

func (c *counting) Manifest(ctx context.Context, id dfms.EntryID, number int64) (vfs.VersionInfo, dfms.Manifest, error) {
	c.manifests.Add(1)
	return c.Backend.Manifest(ctx, id, number)
}

func (c *counting) CreateFile(ctx context.Context, parent dfms.EntryID, name string, mode, uid, gid uint32) (vfs.Entry, error) {
	c.creates.Add(1)
	return c.Backend.CreateFile(ctx, parent, name, mode, uid, gid)
}

func (c *counting) SetAttr(ctx context.Context, id dfms.EntryID, a dfms.SetAttr) (vfs.Entry, error) {
	c.setattrs.Add(1)
	return c.Backend.SetAttr(ctx, id, a)
}

func (c *counting) Link(ctx context.Context, id, parent dfms.EntryID, name string) (vfs.Entry, error) {
	c.links.Add(1)
	return c.Backend.Link(ctx, id, parent, name)
}

func (c *counting) Unlink(ctx context.Context, parent dfms.EntryID, name string) error {
	c.unlinks.Add(1)
	return c.Backend.Unlink(ctx, parent, name)
}

func (c *counting) CreateFiles(ctx context.Context, es []vfs.Entry) ([]vfs.CommitResult, error) {
	c.createBatches.Add(1)
	c.created.Add(int64(len(es)))
	return c.Backend.CreateFiles(ctx, es)
}

func (c *counting) CommitManifests(ctx context.Context, cs []vfs.Commit) ([]vfs.CommitResult, error) {
	c.commitBatches.Add(1)
	c.commits.Add(int64(len(cs)))
	return c.Backend.CommitManifests(ctx, cs)
}

func (c *counting) TrashFiles(ctx context.Context, ids []dfms.EntryID, at []time.Time) ([]error, error) {
	c.trashBatches.Add(1)
	c.trashed.Add(int64(len(ids)))
	return c.Backend.TrashFiles(ctx, ids, at)
}

// heldFeed is the in-process backend whose change feed answers only once
// feed is closed.
type heldFeed struct {
	*local.Backend
	feed chan struct{}
}

func (h *heldFeed) Changes(ctx context.Context, cursor int64, wait time.Duration) ([]vfs.Change, int64, error) {
	select {
	case <-h.feed:
	case <-ctx.Done():
		return nil, cursor, ctx.Err()
	}
	return h.Backend.Changes(ctx, cursor, wait)
}

// failing is a backend whose commits fail while fail is set.
type failing struct {
	vfs.Backend
	fail atomic.Bool
}

func (f *failing) CommitManifest(ctx context.Context, c vfs.Commit) (vfs.Entry, error) {
	if f.fail.Load() {
		return vfs.Entry{}, dfms.Errorf("test", dfms.Unavailable, "the server is down")
	}
	return f.Backend.CommitManifest(ctx, c)
}

func TestFailedCommitKeepsData(t *testing.T) {
	b := &failing{Backend: newLocal(t)}
	fsys, cache := newFS(t, b)
	a := create(t, fsys, "f", "v1")
	h := openWrite(t, fsys, a.Ino, os.O_WRONLY|os.O_TRUNC, "precious")
	b.fail.Store(true)
	testkit.WantKind(t, h.Flush(ctx), dfms.Unavailable, "flush while the server is down")
	// Still dirty: a later flush retries and succeeds.
	b.fail.Store(false)
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	writeAt(t, h, []byte("PRECIOUS"), 0)
	b.fail.Store(true)
	testkit.WantKind(t, h.Release(ctx), dfms.Unavailable, "release while the server is down")
	// The data is kept on disk, and Close says so.
	var kept []byte
	filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".data") {
			kept, _ = os.ReadFile(p)
		}
		return nil
	})
	if string(kept) != "PRECIOUS" {
		t.Fatalf("the stage left in the cache holds %q", kept)
	}
	if err := fsys.Close(ctx); err == nil || !strings.Contains(err.Error(), "uncommitted") {
		t.Fatalf("close: got %v, want an error naming the uncommitted data", err)
	}
}

func TestUnlinkedWriterDiscards(t *testing.T) {
	b := newLocal(t)
	fsys, cache := newFS(t, b)
	a := create(t, fsys, "f", "v1")
	h := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	if err := fsys.Unlink(ctx, fsys.Root(), "f"); err != nil {
		t.Fatal(err)
	}
	writeAt(t, h, []byte("gone"), 0)
	if got, err := fsys.GetAttr(ctx, a.Ino); err != nil || got.Nlink != 0 {
		t.Fatalf("getattr of the unlinked file: %+v, %v", got, err)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatalf("flush of an unlinked file: %v", err)
	}
	release(t, h)
	if vs, _ := b.Versions(ctx, dfms.EntryID(a.Ino)); len(vs) != 1 {
		t.Errorf("%d versions, want 1", len(vs))
	}
	closeFS(t, fsys)
	if left, _ := os.ReadDir(filepath.Join(cache, "stage")); len(left) != 0 {
		t.Errorf("the stage directory still holds %v", left)
	}
}

// TestOpenReplaced: the kernel may open a file by the node it looked up
// before a rename over its name ended (an editor's save while a reader
// opens NAME). That open reads the replaced file, as on a local disk; it
// must not fail with ENOENT while NAME exists all along. What is written
// through it is dropped, as for a file unlinked while open.
func TestOpenReplaced(t *testing.T) {
	b := newLocal(t)
	fsys, _ := newFS(t, b)
	old := create(t, fsys, "f", "old")
	create(t, fsys, "f.tmp", "new")
	if err := fsys.Rename(ctx, fsys.Root(), "f.tmp", fsys.Root(), "f", 0); err != nil {
		t.Fatal(err)
	}
	r, err := fsys.Open(ctx, old.Ino, os.O_RDONLY)
	if err != nil {
		t.Fatalf("open of the replaced file: %v", err)
	}
	if got := readAll(t, r); string(got) != "old" {
		t.Errorf("the replaced file reads %q, want %q", got, "old")
	}
	release(t, r)
	w, err := fsys.Open(ctx, old.Ino, os.O_RDWR)
	if err != nil {
		t.Fatalf("open of the replaced file for writing: %v", err)
	}
	writeAt(t, w, []byte("lost"), 0)
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("flush of the replaced file: %v", err)
	}
	release(t, w)
	h := mustOpen(t, fsys, mustLookup(t, fsys, fsys.Root(), "f").Ino, os.O_RDONLY)
	if got := readAll(t, h); string(got) != "new" {
		t.Errorf("f reads %q, want %q", got, "new")
	}
	h.Release(ctx)
	closeFS(t, fsys)
}

func TestReadAt(t *testing.T) {
	b := newLocal(t)
	fsys, _ := newFS(t, b)
	// Several chunks (the default minimum is 256 KiB).
	data := bytes.Repeat([]byte("0123456789abcdef"), 300000)
	for i := range data {
		data[i] ^= byte(i * 131 >> 7)
	}
	a := createBytes(t, fsys, "big", data)
	// Through a fresh FS, so that reads go to the backend.
	fsys2, _ := newFS(t, b)
	r := mustOpen(t, fsys2, a.Ino, os.O_RDONLY)
	defer r.Release(ctx)
	for _, c := range []struct{ off, n int }{{0, 10}, {262140, 100000}, {len(data) - 5, 5}, {len(data) - 5, 50}, {1 << 20, 3 << 20}} {
		p := make([]byte, c.n)
		n, err := r.Read(ctx, p, int64(c.off))
		want := data[c.off:min(c.off+c.n, len(data))]
		if err != nil || n != len(want) || !bytes.Equal(p[:n], want) {
			t.Errorf("Read(%d, %d): got %d bytes, %v; want %d", c.off, c.n, n, err, len(want))
		}
	}
	if n, err := r.Read(ctx, make([]byte, 1), int64(len(data))); n != 0 || err != nil {
		t.Errorf("Read at the end: %d, %v", n, err)
	}
}

// A time beyond what the store keeps (utimensat to the year 9999, or
// before 1677) is clamped to the nearest it keeps, as a local file system
// clamps to its own range, instead of wrapping around.
func TestSetAttrClampsTimes(t *testing.T) {
	b := newLocal(t)
	fsys, _ := newFS(t, b)
	a := create(t, fsys, "f", "data")
	for _, c := range []struct {
		set, want time.Time
	}{
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), dfms.MaxTime},
		{time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), dfms.MinTime},
	} {
		mt := c.set
		got, err := fsys.SetAttr(ctx, a.Ino, nil, vfs.SetAttrIn{MTime: &mt})
		if err != nil {
			t.Fatal(err)
		}
		if !got.MTime.Equal(c.want) {
			t.Errorf("mtime set to %v reads %v, want %v", c.set, got.MTime, c.want)
		}
		e, err := b.GetAttr(ctx, dfms.EntryID(a.Ino))
		if err != nil {
			t.Fatal(err)
		}
		if !e.MTime.Equal(c.want) {
			t.Errorf("mtime set to %v is stored as %v, want %v", c.set, e.MTime, c.want)
		}
	}
}

// TestOpenReplacedElsewhere: an open of a file another client deleted or
// replaced since this mount's kernel looked its name up fails with ESTALE,
// so that the kernel looks the name up again and opens (or creates) what
// it names now: opening the deleted file would read bytes that are gone,
// or write where nothing is kept (an O_CREAT|O_TRUNC open of a name the
// other client had just deleted wrote to the deleted file, and its bytes
// were lost).
func TestOpenReplacedElsewhere(t *testing.T) {
	b := newLocal(t)
	here, _ := newFS(t, b)
	there, _ := newFS(t, b)
	f := create(t, here, "f", "old")
	g := create(t, here, "g", "gone")
	if err := here.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	create(t, there, "f.tmp", "new")
	if err := there.Rename(ctx, there.Root(), "f.tmp", there.Root(), "f", 0); err != nil {
		t.Fatal(err)
	}
	if err := there.Unlink(ctx, there.Root(), "g"); err != nil {
		t.Fatal(err)
	}
	if err := there.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ino := range []vfs.Ino{f.Ino, g.Ino} {
		for _, flags := range []int{os.O_RDONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC} {
			if h, err := here.Open(ctx, ino, flags); !errors.Is(err, syscall.ESTALE) {
				if err == nil {
					h.Release(ctx)
				}
				t.Fatalf("open (flags %#x) of a file replaced elsewhere: %v, want ESTALE", flags, err)
			}
		}
	}
	h := mustOpen(t, here, mustLookup(t, here, here.Root(), "f").Ino, os.O_RDONLY)
	if got := readAll(t, h); string(got) != "new" {
		t.Errorf("f reads %q, want %q", got, "new")
	}
	h.Release(ctx)
	for _, fsys := range []*vfs.FS{here, there} {
		closeFS(t, fsys)
	}
}
