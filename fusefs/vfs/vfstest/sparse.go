package vfstest

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// testHoles: a manifest may hold holes (the zero hash with a length):
// the backend commits them without any chunk, never asks for them
// (Missing), answers them in the manifest as committed, and tells how
// much of the file is data.
func testHoles(t *testing.T, b vfs.Backend) {
	f := create(t, b, root(t, b), "sparse")
	m := send(t, b, "head", "tail")
	if missing := testkit.Must(b.Missing(ctx, []dfms.Hash{{}}))(t); len(missing) != 0 {
		t.Fatalf("Missing asks for a hole: %v", missing)
	}
	const tib = int64(1) << 40
	var refs []dfms.ChunkRef
	refs = append(refs, m.Chunks[0])
	refs = dfms.AppendHole(refs, tib)
	refs = append(refs, m.Chunks[1])
	refs = dfms.AppendHole(refs, 3)
	e, err := b.CommitManifest(ctx, vfs.Commit{ID: f.ID, Manifest: dfms.Manifest{Chunks: refs}})
	if err != nil {
		t.Fatal(err)
	}
	if e.Size != tib+11 || e.DataSize != 8 {
		t.Fatalf("the commit answers size %d, data %d; want %d, 8", e.Size, e.DataSize, tib+11)
	}
	if got := testkit.Must(b.GetAttr(ctx, f.ID))(t); got.Size != tib+11 || got.DataSize != 8 {
		t.Fatalf("GetAttr: size %d, data %d", got.Size, got.DataSize)
	}
	vi, got, err := b.Manifest(ctx, f.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if vi.Size != tib+11 || !slices.Equal(got.Chunks, refs) {
		t.Fatalf("the manifest reads back as %v", got.Chunks)
	}
	// A small sparse file reads back as its zeros.
	g := create(t, b, root(t, b), "small")
	small := dfms.AppendHole([]dfms.ChunkRef{m.Chunks[0]}, 5)
	if _, err := b.CommitManifest(ctx, vfs.Commit{ID: g.ID, Manifest: dfms.Manifest{Chunks: small}}); err != nil {
		t.Fatal(err)
	}
	if _, c := content(t, b, g.ID, 0); c != "head\x00\x00\x00\x00\x00" {
		t.Fatalf("content %q", c)
	}
}

// testSparseFile drives the file system layer over the backend: a file
// extended by truncate and written past its end commits holes where
// nothing was written (a terabyte costs kilobytes), reads back zeros and
// the data, reports its allocated bytes, and answers SEEK_DATA and
// SEEK_HOLE; a size past the limit is TooLarge.
func testSparseFile(t *testing.T, b vfs.Backend) {
	fsys, err := vfs.New(ctx, b, vfs.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ok(t, fsys.Close(ctx)) }()
	a, h, err := fsys.Create(ctx, fsys.Root(), "tera", os.O_RDWR|os.O_CREATE, 0o644, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	const tib, gib = int64(1) << 40, int64(1) << 30
	size := tib
	if _, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &size}); err != nil {
		t.Fatal(err)
	}
	if n, err := h.Write(ctx, []byte("x"), 900*gib); n != 1 || err != nil {
		t.Fatalf("write at 900 GiB: %d, %v", n, err)
	}
	if got := testkit.Must(fsys.GetAttr(ctx, a.Ino))(t); got.Size != tib || got.Alloc != 1 {
		t.Fatalf("before the commit: size %d, alloc %d", got.Size, got.Alloc)
	}
	huge := int64(999999999999999)
	_, err = fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &huge})
	testkit.WantKind(t, err, dfms.TooLarge, "truncate to %d", huge)
	ok(t, h.Release(ctx))

	_, m, err := b.Manifest(ctx, dfms.EntryID(a.Ino), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size() != tib || m.DataSize() != 1 || len(m.Chunks) > 300 {
		t.Fatalf("committed: size %d, data %d, %d refs", m.Size(), m.DataSize(), len(m.Chunks))
	}
	if got := testkit.Must(fsys.GetAttr(ctx, a.Ino))(t); got.Size != tib || got.Alloc != 1 {
		t.Fatalf("after the commit: size %d, alloc %d", got.Size, got.Alloc)
	}
	r, err := fsys.Open(ctx, a.Ino, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 9)
	for _, c := range []struct {
		off  int64
		want string
	}{{0, strings.Repeat("\x00", 9)}, {900*gib - 4, "\x00\x00\x00\x00x\x00\x00\x00\x00"}, {tib - 9, strings.Repeat("\x00", 9)}} {
		if n, err := r.Read(ctx, p, c.off); err != nil || string(p[:n]) != c.want {
			t.Fatalf("read at %d: %q, %v", c.off, p[:n], err)
		}
	}
	seeks := []struct {
		off  int64
		hole bool
		want int64
		ok   bool
	}{
		{0, false, 900 * gib, true},
		{0, true, 0, true},
		{900 * gib, true, 900*gib + 1, true},
		{900 * gib, false, 900 * gib, true},
		{900*gib + 1, false, 0, false}, // no data after: ENXIO
		{tib, true, 0, false},          // at the end: ENXIO
	}
	for _, s := range seeks {
		pos, found, err := r.Seek(ctx, s.off, s.hole)
		if err != nil || found != s.ok || (found && pos != s.want) {
			t.Errorf("seek (hole %v) from %d: %d, %v, %v; want %d, %v", s.hole, s.off, pos, found, err, s.want, s.ok)
		}
	}
	ok(t, r.Release(ctx))

	// An edit keeps the holes: a write at 100 GiB makes a second chunk,
	// the first one is kept.
	w, err := fsys.Open(ctx, a.Ino, os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write(ctx, []byte("yy"), 100*gib); n != 2 || err != nil {
		t.Fatalf("write at 100 GiB: %d, %v", n, err)
	}
	if pos, found, _ := w.Seek(ctx, 0, false); !found || pos != 100*gib {
		t.Fatalf("SEEK_DATA of the staged write: %d, %v", pos, found)
	}
	ok(t, w.Release(ctx))
	_, m2, err := b.Manifest(ctx, dfms.EntryID(a.Ino), 0)
	if err != nil {
		t.Fatal(err)
	}
	x := m.Chunks[slices.IndexFunc(m.Chunks, func(c dfms.ChunkRef) bool { return !c.IsHole() })]
	if m2.Size() != tib || m2.DataSize() != 3 || !slices.Contains(m2.Chunks, x) {
		t.Fatalf("after an edit: size %d, data %d, the chunk of x kept: %v", m2.Size(), m2.DataSize(), slices.Contains(m2.Chunks, x))
	}
	r, err = fsys.Open(ctx, a.Ino, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ok(t, r.Release(ctx)) }()
	var got []byte
	for _, off := range []int64{100 * gib, 900 * gib} {
		n, err := r.Read(ctx, p[:2], off)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p[:n]...)
	}
	if !bytes.Equal(got, []byte("yyx\x00")) {
		t.Fatalf("after the edit: %q", got)
	}
}
