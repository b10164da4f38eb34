package disk

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store/storetest"
)

var ctx = context.Background()

// open opens the store in dir, failing t if it cannot.
func open(t testing.TB, dir string) *Disk {
	t.Helper()
	d, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return d
}

// put stores data in d under its hash, which it returns, failing t if it
// cannot.
func put(t testing.TB, d *Disk, data []byte) dfms.Hash {
	t.Helper()
	h := dfms.Sum(data)
	if err := d.Put(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	return h
}

// chunkFile is the file of chunk h in the store in dir.
func chunkFile(dir string, h dfms.Hash) string {
	x := h.String()
	return filepath.Join(dir, x[:2], x[2:4], x)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dfms.ChunkStore { return open(t, t.TempDir()) })
	storetest.RunReopen(t, func(t *testing.T) func(t *testing.T) dfms.ChunkStore {
		dir := filepath.Join(t.TempDir(), "not", "yet", "there")
		return func(t *testing.T) dfms.ChunkStore { return open(t, dir) }
	})
}

func TestLayout(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	data := []byte("hello, chunk")
	h := put(t, d, data)
	got, err := os.ReadFile(chunkFile(dir, h))
	if err != nil {
		t.Fatalf("chunk file: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("chunk file: got %q, want %q", got, data)
	}
	if want := "file://" + dir; d.String() != want {
		t.Errorf("String: got %q, want %q", d.String(), want)
	}
}

func TestPermissions(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "chunks")
	d := open(t, dir)
	data := []byte("private")
	h := put(t, d, data)
	x := h.String()
	for _, tc := range []struct {
		name string
		want fs.FileMode
	}{
		{dir, fs.ModeDir | 0o700},
		{filepath.Join(dir, x[:2]), fs.ModeDir | 0o700},
		{filepath.Join(dir, x[:2], x[2:4]), fs.ModeDir | 0o700},
		{filepath.Join(dir, x[:2], x[2:4], x), 0o600},
	} {
		fi, err := os.Stat(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != tc.want {
			t.Errorf("%s: got mode %v, want %v", strings.TrimPrefix(tc.name, root), got, tc.want)
		}
	}
}

// TestStaleTemp plants the temporary file a crashed Put leaves behind.
func TestStaleTemp(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	data := []byte("complete chunk")
	h := put(t, d, data)
	// A half-written chunk in the same shard, and one of a chunk that was
	// never completed, in a shard of its own.
	partial := []byte("half-writ")
	ph := dfms.Sum([]byte("half-written chunk"))
	x, px := h.String(), ph.String()
	if err := os.MkdirAll(filepath.Join(dir, px[:2], px[2:4]), 0o700); err != nil {
		t.Fatal(err)
	}
	temps := []string{
		filepath.Join(dir, x[:2], x[2:4], tempPrefix+"123456"),
		filepath.Join(dir, px[:2], px[2:4], tempPrefix+"654321"),
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range temps {
		if err := os.WriteFile(name, partial, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, old, old); err != nil {
			t.Fatal(err)
		}
	}

	if got, err := d.Get(ctx, ph, nil); !dfms.Is(err, dfms.NotExist) {
		t.Errorf("Get of the unfinished chunk: got %q, %v; want kind %v", got, err, dfms.NotExist)
	}
	var walked []dfms.Hash
	if err := d.Walk(ctx, func(ci dfms.ChunkInfo) error { h := ci.Hash; walked = append(walked, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0] != h {
		t.Errorf("Walk: got %v, want [%s]", walked, h)
	}

	// Young temp files belong to running Puts and stay.
	n, err := d.RemoveStaleTemp(ctx, time.Now().Add(-3*time.Hour))
	if err != nil || n != 0 {
		t.Errorf("RemoveStaleTemp(3h ago): got %d, %v; want 0, nil", n, err)
	}
	n, err = d.RemoveStaleTemp(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 2 {
		t.Errorf("RemoveStaleTemp(1h ago): got %d, %v; want 2, nil", n, err)
	}
	for _, name := range temps {
		if _, err := os.Stat(name); !os.IsNotExist(err) {
			t.Errorf("%s: got %v, want it removed", filepath.Base(name), err)
		}
	}
	if got, err := d.Get(ctx, h, nil); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get after RemoveStaleTemp: got %q, %v; want %q", got, err, data)
	}
}

// TestCorruptReturnedAsIs checks that the store does not verify: detecting
// corruption is the reader's job, which re-hashes.
func TestCorruptReturnedAsIs(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	data := []byte("original bytes")
	h := put(t, d, data)
	bad := []byte("0riginal bytes")
	if err := os.WriteFile(chunkFile(dir, h), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := d.Get(ctx, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bad) {
		t.Errorf("Get: got %q, want the corrupted %q", got, bad)
	}
	// A Put writes the bytes whatever is stored already: it replaces a
	// corrupt file of the right size (and costs the same whether or not
	// the chunk was stored, which the file layer relies on).
	put(t, d, data)
	if got, _ := d.Get(ctx, h, nil); !bytes.Equal(got, data) {
		t.Errorf("Get after Put over a corrupt file of the right size: got %q, want %q", got, data)
	}
	// So does a batch, of small chunks (one barrier for the file system)
	// and of large ones (file by file).
	big := bytes.Repeat([]byte("large chunk "), perFileSyncMin/8)
	for _, c := range []dfms.ChunkData{{Hash: h, Data: data}, {Hash: dfms.Sum(big), Data: big}} {
		if err := d.PutBatch(ctx, []dfms.ChunkData{c}); err != nil {
			t.Fatal(err)
		}
		worse := bytes.Clone(c.Data)
		worse[0] ^= 1
		if err := os.WriteFile(chunkFile(dir, c.Hash), worse, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.PutBatch(ctx, []dfms.ChunkData{c}); err != nil {
			t.Fatal(err)
		}
		if got, _ := d.Get(ctx, c.Hash, nil); !bytes.Equal(got, c.Data) {
			t.Errorf("Get after PutBatch of %d bytes over a corrupt file of the right size: got other bytes", len(c.Data))
		}
	}
	// A file of the wrong size is replaced.
	if err := os.WriteFile(chunkFile(dir, h), bad[:3], 0o600); err != nil {
		t.Fatal(err)
	}
	put(t, d, data)
	if got, _ := d.Get(ctx, h, nil); !bytes.Equal(got, data) {
		t.Errorf("Get after Put over a truncated file: got %q, want %q", got, data)
	}
}

// TestForeignFiles checks that Walk skips what is not a chunk.
func TestForeignFiles(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	data := []byte("x")
	h := put(t, d, data)
	x := h.String()
	other := dfms.Sum([]byte("y")).String()
	for _, name := range []string{
		"README",
		"lost+found/file",
		"zz/zz/" + strings.Repeat("0", 64),
		x[:2] + "/" + x[2:4] + "/" + strings.ToUpper(x), // not canonical
		x[:2] + "/" + x[2:4] + "/" + other,              // in the wrong shard
		x[:2] + "/" + x[2:4] + "/short",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("foreign"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := d.Walk(ctx, func(ci dfms.ChunkInfo) error {
		h := ci.Hash
		got = append(got, h.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != x {
		t.Errorf("Walk: got %v, want [%s]", got, x)
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		want dfms.ErrorKind
	}{
		{"", dfms.Invalid},
		{file, dfms.NotDir},
	} {
		if _, err := Open(tc.dir); !dfms.Is(err, tc.want) {
			t.Errorf("Open(%q): got %v (kind %v), want kind %v", tc.dir, err, dfms.KindOf(err), tc.want)
		}
	}
}

// BenchmarkPut1MiB measures the steady state, where the shard directories
// exist: the chunks differ in their last bytes, so all go to one shard.
func BenchmarkPut1MiB(b *testing.B) {
	d := open(b, b.TempDir())
	// The store does not verify hashes: the chunks are named by counting,
	// not by hashing.
	data, _ := storetest.BenchChunk()
	b.SetBytes(int64(len(data)))
	var h dfms.Hash
	n := 0
	for b.Loop() {
		n++
		h[28], h[29], h[30], h[31] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		if err := d.Put(ctx, h, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet1MiB(b *testing.B) {
	storetest.BenchGet(b, open(b, b.TempDir()), 0)
}
