package vfs_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// newLocalParams is newLocal with small chunks, so that small files span
// many of them.
func newLocalParams(t testing.TB, p chunking.Params) (*local.Backend, *files.Service) {
	return newLocalMeta(t, p, nil)
}

// newLocalMeta is newLocalParams with the metadata store wrapped by wrap
// (if not nil), as the file layer sees it.
func newLocalMeta(t testing.TB, p chunking.Params, wrap func(meta.Store) meta.Store) (*local.Backend, *files.Service) {
	t.Helper()
	st := testkit.NewStack(t, testkit.Options{Files: files.Options{Chunking: p}, WrapMeta: wrap})
	return local.New(st.Files, st.User.ID), st.Files
}

// localUser is the user of newLocalMeta, who owns the backend's files.
func localUser(t testing.TB, svc *files.Service) meta.User {
	t.Helper()
	u, err := svc.Meta().GetUserByEmail(ctx, testkit.Email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var smallChunks = chunking.Params{Algorithm: chunking.Gear, Min: 256, Avg: 1024, Max: 4096}

// storedChunks returns the chunks of the current version of ino.
func storedChunks(t *testing.T, b vfs.Backend, ino vfs.Ino) []dfms.ChunkRef {
	t.Helper()
	_, m, err := b.Manifest(ctx, dfms.EntryID(ino), 0)
	if err != nil {
		t.Fatal(err)
	}
	return m.Chunks
}

// onePass returns the chunks that one pass over data cuts with p.
func onePass(t *testing.T, data []byte, p chunking.Params) []dfms.ChunkRef {
	t.Helper()
	var out []dfms.ChunkRef
	if err := chunking.Split(ctx, bytes.NewReader(data), p, 1, func(c chunking.HashedChunk) error {
		out = append(out, dfms.ChunkRef{Hash: c.Hash, Size: uint32(len(c.Data))})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// storedContent reads the current version straight from the server.
func storedContent(t *testing.T, svc *files.Service, b *local.Backend, ino vfs.Ino) []byte {
	t.Helper()
	return versionContent(t, svc, b, ino, 0)
}

// versionContent reads version number of ino (0: the current one)
// straight from the server.
func versionContent(t *testing.T, svc *files.Service, b *local.Backend, ino vfs.Ino, number int64) []byte {
	t.Helper()
	var id int64 // the current version's
	if number > 0 {
		vs, err := b.Versions(ctx, dfms.EntryID(ino))
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(vs, func(v vfs.VersionInfo) bool { return v.Number == number })
		if i < 0 {
			t.Fatalf("no version %d of %v", number, ino)
		}
		id = vs[i].ID
	}
	_, m, err := b.Manifest(ctx, dfms.EntryID(ino), id)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := svc.ReadRange(ctx, dfms.Version{Manifest: &m}, 0, -1, &out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestRandomOps applies random writes, truncates and commits to a file and
// to a byte slice, and checks that what the file reads and what the
// server stores after each commit are the slice.
func TestRandomOps(t *testing.T) {
	b, svc := newLocalParams(t, smallChunks)
	for seed := uint64(1); seed <= 4; seed++ {
		fsys, _ := newFS(t, b)
		rng := rand.New(rand.NewPCG(seed, 99))
		a, h, err := fsys.Create(ctx, fsys.Root(), "f"+string(rune('0'+seed)), os.O_RDWR|os.O_CREATE, 0o644, vfs.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		var model []byte
		for step := 0; step < 300; step++ {
			switch r := rng.IntN(20); {
			case r < 12: // write
				off := rng.IntN(len(model) + 3000)
				p := make([]byte, 1+rng.IntN(5000))
				for i := range p {
					p[i] = byte(rng.IntN(4)) // low entropy: repeated chunks
				}
				writeAt(t, h, p, int64(off))
				if need := off + len(p); need > len(model) {
					model = append(model, make([]byte, need-len(model))...)
				}
				copy(model[off:], p)
			case r < 15: // truncate
				size := rng.IntN(len(model) + 4000)
				if err := truncate(fsys, a.Ino, h, int64(size)); err != nil {
					t.Fatal(err)
				}
				if size < len(model) {
					model = model[:size]
				} else {
					model = append(model, make([]byte, size-len(model))...)
				}
			case r < 18: // commit
				if err := h.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if got := storedContent(t, svc, b, a.Ino); !bytes.Equal(got, model) {
					t.Fatalf("seed %d step %d: the server holds %d bytes that differ from the %d written", seed, step, len(got), len(model))
				}
			default: // read a range
				off := rng.IntN(len(model) + 10)
				p := make([]byte, rng.IntN(9000))
				n, err := h.Read(ctx, p, int64(off))
				if err != nil {
					t.Fatal(err)
				}
				want := []byte{}
				if off < len(model) {
					want = model[off:min(len(model), off+len(p))]
				}
				if !bytes.Equal(p[:n], want) {
					t.Fatalf("seed %d step %d: read(%d, %d) differs", seed, step, off, len(p))
				}
			}
		}
		release(t, h)
		if got := storedContent(t, svc, b, a.Ino); !bytes.Equal(got, model) {
			t.Fatalf("seed %d: after release the server holds other bytes", seed)
		}
		closeFS(t, fsys)
	}
}

// TestOneByteEdit changes one byte in the middle of a large file: the
// commit cuts and sends at most two chunks and reads no other chunk.
func TestOneByteEdit(t *testing.T) {
	b, svc := newLocalParams(t, chunking.Params{Algorithm: chunking.Gear, Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10})
	fsys, _ := newFS(t, b)
	data := testkit.RandBytes(3, 8<<20)
	a := createBytes(t, fsys, "big", data)
	for i, off := range []int{len(data) / 2, 12345, len(data) - 1, 0} {
		fsys2, _ := newFS(t, b) // a cold cache
		before, read := svc.Stats().ChunksStored.Load(), svc.Stats().ChunksRead.Load()
		w := mustOpen(t, fsys2, a.Ino, os.O_RDWR)
		data[off] ^= 0xff
		writeAt(t, w, data[off:off+1], int64(off))
		if err := w.Fsync(ctx); err != nil {
			t.Fatal(err)
		}
		st := fsys2.Stats()
		t.Logf("edit at %d: %d chunks cut, %d sent, %d fetched", off, st.ChunksCut, st.ChunksSent, st.ChunksFetched)
		stored, fetched := svc.Stats().ChunksStored.Load()-before, svc.Stats().ChunksRead.Load()-read
		if st.ChunksSent > 2 || stored > 2 || fetched > 2 {
			t.Errorf("edit %d at %d: %d chunks cut, %d sent, %d stored, %d read; want at most 2 each", i, off, st.ChunksCut, st.ChunksSent, stored, fetched)
		}
		// Only the chunks cut again are read: not the one after the last
		// of them, whose start the new cuts met.
		if fetched > st.ChunksCut {
			t.Errorf("edit %d at %d: %d chunks read for %d cut", i, off, fetched, st.ChunksCut)
		}
		release(t, w)
		if got := storedContent(t, svc, b, a.Ino); !bytes.Equal(got, data) {
			t.Fatalf("edit %d: the stored content differs", i)
		}
		closeFS(t, fsys2)
	}
}

// TestAppendsKeepChunksWhole appends in small pieces with a commit after
// each: the result is cut as one write of the whole would be.
func TestAppendsKeepChunksWhole(t *testing.T) {
	b, _ := newLocalParams(t, smallChunks)
	fsys, _ := newFS(t, b)
	data := testkit.RandBytes(5, 40<<10)
	a, h, err := fsys.Create(ctx, fsys.Root(), "log", os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 700 {
		writeAt(t, h, data[off:min(off+700, len(data))], 0)
		if err := h.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h.Release(ctx)
	got, want := storedChunks(t, b, a.Ino), onePass(t, data, smallChunks)
	if len(got) != len(want) {
		t.Fatalf("%d chunks after appends, %d for one write", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("chunk %d differs from a single write's", i)
		}
	}
}

// TestCrashRecovery: data written but not committed when the mount dies
// is committed by the next mount of the same cache directory.
func TestCrashRecovery(t *testing.T) {
	b, svc, fsys, cache := newCrashable(t)
	base := testkit.RandBytes(9, 100<<10)
	a := create(t, fsys, "f", string(base))
	h := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	want := append([]byte(nil), base...)
	for _, w := range []struct {
		off int
		s   string
	}{{10, "crash"}, {50000, "survives"}, {len(base) + 10, "past the end"}} {
		writeAt(t, h, []byte(w.s), int64(w.off))
		if need := w.off + len(w.s); need > len(want) {
			want = append(want, make([]byte, need-len(want))...)
		}
		copy(want[w.off:], w.s)
	}
	if err := truncate(fsys, a.Ino, h, 80000); err != nil {
		t.Fatal(err)
	}
	want = want[:80000]
	writeAt(t, h, []byte("tail"), 90000)
	want = append(want, make([]byte, 90004-80000)...)
	copy(want[90000:], "tail")
	// Another mount cannot take the cache directory meanwhile.
	if _, err := vfs.New(ctx, b, vfs.Options{CacheDir: cache}); !dfms.Is(err, dfms.Exist) {
		t.Fatalf("a second mount of a cache directory in use: %v", err)
	}
	if got := storedContent(t, svc, b, a.Ino); !bytes.Equal(got, base) {
		t.Fatal("the server changed before any commit")
	}
	fsys.Crash()

	fsys2 := openFS(t, b, vfs.Options{CacheDir: cache})
	if got := storedContent(t, svc, b, a.Ino); !bytes.Equal(got, want) {
		t.Fatalf("after recovery the server holds %d bytes, want %d written", len(got), len(want))
	}
	if left, _ := os.ReadDir(filepath.Join(cache, "stage")); len(left) != 0 {
		t.Errorf("recovery left %v", left)
	}
	closeFS(t, fsys2)
}

func truncate(fsys *vfs.FS, ino vfs.Ino, h *vfs.Handle, size int64) error {
	_, err := fsys.SetAttr(ctx, ino, h, vfs.SetAttrIn{Size: &size})
	return err
}

// TestPrecut writes large files from the start: chunks are uploaded while
// the file is written, the result is cut as one pass over the content
// would cut it, and writes or truncates into the pre-cut prefix discard it
// without changing what is committed.
func TestPrecut(t *testing.T) {
	p := chunking.Params{Algorithm: chunking.Gear, Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
	b, svc := newLocalParams(t, p)
	fsys, _ := newFS(t, b)
	for _, c := range []struct {
		name  string
		after func(h *vfs.Handle, ino vfs.Ino, data []byte) []byte
	}{
		{"sequential", nil},
		{"rewrite-inside", func(h *vfs.Handle, _ vfs.Ino, data []byte) []byte {
			data[1<<20] ^= 1
			h.Write(ctx, data[1<<20:1<<20+1], 1<<20)
			return data
		}},
		{"truncate-inside", func(h *vfs.Handle, ino vfs.Ino, data []byte) []byte {
			if err := truncate(fsys, ino, h, 5<<20); err != nil {
				t.Fatal(err)
			}
			data = data[:5<<20]
			more := testkit.RandBytes(11, 3<<20)
			h.Write(ctx, more, int64(len(data)))
			return append(data, more...)
		}},
	} {
		data := testkit.RandBytes(uint64(len(c.name)), 36<<20)
		a, h, err := fsys.Create(ctx, fsys.Root(), c.name, os.O_RDWR|os.O_CREATE, 0o644, vfs.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		before := fsys.Stats().ChunksCut
		for off := 0; off < len(data); off += 128 << 10 {
			writeAt(t, h, data[off:off+128<<10], int64(off))
		}
		// The worker runs in the background: wait until it uploaded some.
		testkit.Eventually(t, 30*time.Second, func() bool { return fsys.Stats().ChunksCut != before },
			"%s: an upload while the file was written", c.name)
		if c.after != nil {
			data = c.after(h, a.Ino, data)
		}
		release(t, h)
		if got := storedContent(t, svc, b, a.Ino); !bytes.Equal(got, data) {
			t.Fatalf("%s: the stored content differs (%d bytes, want %d)", c.name, len(got), len(data))
		}
		if got, want := storedChunks(t, b, a.Ino), onePass(t, data, p); !slices.Equal(got, want) {
			t.Errorf("%s: %d chunks committed, differing from the %d of one pass", c.name, len(got), len(want))
		}
	}
}

// TestSparse extends files with holes: the zeros nobody wrote become holes
// of the manifest (those shorter than the smallest chunk are cut with the
// data around them), and offsets past 4 GiB read back.
func TestSparse(t *testing.T) {
	b, svc := newLocalParams(t, smallChunks)
	fsys, _ := newFS(t, b)
	// Small, with small chunks.
	a, h, err := fsys.Create(ctx, fsys.Root(), "holes", os.O_RDWR|os.O_CREATE, 0o644, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3<<20)
	copy(want[100:], "head")
	copy(want[2<<20:], "middle")
	copy(want[len(want)-4:], "tail")
	for _, off := range []int{100, 2 << 20, len(want) - 4} {
		writeAt(t, h, want[off:off+4], int64(off))
	}
	h.Write(ctx, want[2<<20:2<<20+6], 2<<20)
	release(t, h)
	got := storedChunks(t, b, a.Ino)
	m := dfms.Manifest{Chunks: got}
	// [0, 104) is data (100 zeros are too few for a hole), then a hole,
	// the 6 bytes written, a hole and the 4 bytes at the end.
	if len(got) != 5 || !got[1].IsHole() || !got[3].IsHole() || got[0].Size != 104 || got[2].Size != 6 || got[4].Size != 4 || m.DataSize() != 114 {
		t.Fatalf("a sparse file was committed as %v", got)
	}
	if got := storedContent(t, svc, b, a.Ino); !bytes.Equal(got, want) {
		t.Fatal("the sparse file reads back wrong")
	}

	// Large: 5 GiB and a byte, through truncate, with the default chunk
	// sizes.
	b = newLocalB(t)
	fsys, _ = newFS(t, b)
	big, h, err := fsys.Create(ctx, fsys.Root(), "big", os.O_RDWR|os.O_CREATE, 0o644, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	const size = 5 << 30
	if err := truncate(fsys, big.Ino, h, size); err != nil {
		t.Fatal(err)
	}
	writeAt(t, h, []byte("!"), size)
	release(t, h)
	if m := (dfms.Manifest{Chunks: storedChunks(t, b, big.Ino)}); m.DataSize() != 1 || len(m.Chunks) != 3 {
		t.Fatalf("5 GiB of hole and a byte committed as %v", m.Chunks)
	}
	fsys2, _ := newFS(t, b)
	r := mustOpen(t, fsys2, big.Ino, os.O_RDONLY)
	defer r.Release(ctx)
	if got, _ := fsys2.GetAttr(ctx, big.Ino); got.Size != size+1 {
		t.Fatalf("size %d", got.Size)
	}
	p := make([]byte, 8)
	for _, c := range []struct {
		off  int64
		want string
	}{{0, "\x00\x00\x00\x00\x00\x00\x00\x00"}, {4<<30 + 5, "\x00\x00\x00\x00\x00\x00\x00\x00"}, {size - 7, "\x00\x00\x00\x00\x00\x00\x00!"}} {
		n, err := r.Read(ctx, p, c.off)
		if err != nil || string(p[:n]) != c.want {
			t.Errorf("read at %d: %q, %v", c.off, p[:n], err)
		}
	}
}

// The next mount's replay of a crashed mount's journal makes holes of a
// truncation up, as the crashed mount's commit would have.
func TestRecoveredTruncateMakesHoles(t *testing.T) {
	b, svc := newLocalParams(t, smallChunks)
	cache := t.TempDir()
	fsys := openFS(t, b, vfs.Options{CacheDir: cache})
	a := create(t, fsys, "f", "data")
	h := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	size := int64(1) << 40
	if _, err := fsys.SetAttr(ctx, a.Ino, h, vfs.SetAttrIn{Size: &size}); err != nil {
		t.Fatal(err)
	}
	writeAt(t, h, []byte("end"), size-3)
	remountAfterCrash(t, fsys, b, cache) // the next mount recovers the journal
	m := dfms.Manifest{Chunks: storedChunks(t, b, a.Ino)}
	if m.Size() != size || m.DataSize() != 7 || !m.HasHoles() {
		t.Fatalf("recovered: size %d, data %d, %d refs", m.Size(), m.DataSize(), len(m.Chunks))
	}
	var out bytes.Buffer
	if _, err := svc.ReadRange(ctx, dfms.Version{Manifest: &m}, size-5, 5, &out); err != nil || out.String() != "\x00\x00end" {
		t.Fatalf("the recovered tail: %q, %v", out.String(), err)
	}
}
