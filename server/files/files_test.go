package files_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement/store"
	"github.com/dfms/dfms/placement/store/s3"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/postgres"
)

var ctx = context.Background()

// backend is one combination of metadata and chunk store. open returns
// the stores, or nil for the SQLite and disk stores of package testkit,
// and a corrupt function, which replaces a stored chunk's bytes behind
// the store's back, as bit rot on the disk or in the object store would.
type backend struct {
	name string
	open func(t *testing.T) (m meta.Store, c dfms.ChunkStore, corrupt func(s *testkit.Stack, h dfms.Hash, data []byte))
}

var backends = []backend{
	{"sqlite+file", func(t *testing.T) (meta.Store, dfms.ChunkStore, func(*testkit.Stack, dfms.Hash, []byte)) {
		corrupt := func(s *testkit.Stack, h dfms.Hash, data []byte) {
			x := h.String() // the layout documented in package disk
			if err := os.WriteFile(filepath.Join(s.ChunkDir, x[:2], x[2:4], x), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return nil, nil, corrupt
	}},
	{"postgres+s3", func(t *testing.T) (meta.Store, dfms.ChunkStore, func(*testkit.Stack, dfms.Hash, []byte)) {
		m, err := postgres.Open(ctx, testenv.Postgres(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		raw := testenv.S3(t)
		c, err := store.Open(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		corrupt := func(_ *testkit.Stack, h dfms.Hash, data []byte) {
			u, _ := url.Parse(raw)
			o, err := s3.ParseURL(u)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := minio.New(o.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""), Secure: !o.Insecure, Region: "us-east-1"})
			if err != nil {
				t.Fatal(err)
			}
			x := h.String() // the key layout documented in package s3
			if _, err := cl.PutObject(ctx, o.Bucket, x[:2]+"/"+x[2:4]+"/"+x, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return m, c, corrupt
	}},
}

// env is a file service with one user.
type env struct {
	svc     *files.Service
	meta    meta.Store
	store   dfms.ChunkStore
	corrupt func(dfms.Hash, []byte)
	user    meta.User
}

// newEnv builds the file layer on backend b as o says (o's stores are
// b's).
func newEnv(t *testing.T, b backend, o testkit.Options) *env {
	t.Helper()
	m, c, corrupt := b.open(t)
	o.Meta, o.Chunks = m, c
	s := testkit.NewStack(t, o)
	return &env{svc: s.Files, meta: s.Meta, store: s.Chunks, corrupt: func(h dfms.Hash, data []byte) { corrupt(s, h, data) }, user: s.User}
}

// forEach runs fn on every backend.
func forEach(t *testing.T, opts files.Options, fn func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, newEnv(t, b, testkit.Options{Files: opts})) })
	}
}

func (e *env) write(t *testing.T, parent dfms.EntryID, name string, data []byte) files.WriteResult {
	t.Helper()
	res, err := e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Parent: parent, Name: name, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return res
}

func (e *env) read(t *testing.T, id dfms.EntryID, version int64) []byte {
	t.Helper()
	v := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, id, version))(t)
	var buf bytes.Buffer
	if _, err := e.svc.ReadRange(ctx, v, 0, -1, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storedBytes sums the sizes of every chunk in the chunk store.
func (e *env) storedBytes(t *testing.T) (n int64, chunks int) {
	t.Helper()
	err := e.store.Walk(ctx, func(ci dfms.ChunkInfo) error {
		size := ci.Size
		n += size
		chunks++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, chunks
}

func TestWriteReadRoundTrip(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		for _, size := range []int{0, 1, 4095, 300 << 10, 5<<20 + 7} {
			data := testkit.RandBytes(uint64(size), size)
			name := fmt.Sprint("f", size)
			res := e.write(t, e.user.Root, name, data)
			if res.Entry.Size != int64(size) || res.Version.Number != 1 || res.Version.SHA256 != dfms.Sum(data) {
				t.Fatalf("size %d: result %+v", size, res)
			}
			if got := e.read(t, res.Entry.ID, 0); !bytes.Equal(got, data) {
				t.Fatalf("size %d: read back %d bytes that differ", size, len(got))
			}
		}
	})
}

// The same 100 MiB written as two different files is stored once.
func TestDedupAcrossFiles(t *testing.T) {
	size := 100 << 20
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		data := testkit.RandBytes(100, size)
		r1 := e.write(t, e.user.Root, "one.bin", data)
		d, err := e.svc.Mkdir(ctx, e.user.ID, e.user.Root, "elsewhere", 0)
		if err != nil {
			t.Fatal(err)
		}
		r2 := e.write(t, d.ID, "two.bin", data)
		if r1.NewBytes != int64(size) || r1.DedupChunks != 0 {
			t.Fatalf("first write stored %d bytes (%d deduplicated chunks), want %d and 0", r1.NewBytes, r1.DedupChunks, size)
		}
		if r2.NewBytes != 0 || r2.NewChunks != 0 || r2.DedupChunks != r2.Chunks {
			t.Fatalf("second write stored %d bytes in %d chunks, want 0 (dedup %d of %d)", r2.NewBytes, r2.NewChunks, r2.DedupChunks, r2.Chunks)
		}
		if n, _ := e.storedBytes(t); n != int64(size) {
			t.Fatalf("chunk store holds %d bytes, want exactly %d", n, size)
		}
		if got := e.read(t, r2.Entry.ID, 0); !bytes.Equal(got, data) {
			t.Fatal("second file reads back different bytes")
		}
		mean := size / r1.Chunks
		if p := chunking.DefaultParams(); mean < p.Min || mean > p.Max {
			t.Fatalf("mean chunk %d outside [%d, %d]", mean, p.Min, p.Max)
		}
	})
}

// 64 MiB of zeros, written, overwritten, then every version purged: every
// chunk's count returns to exactly 0.
func TestZerosRefcountsReturnToZero(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		zeros := make([]byte, 64<<20)
		r1 := e.write(t, e.user.Root, "zeros", zeros)
		r2 := e.write(t, e.user.Root, "zeros", zeros)
		if r2.Version.Number != 2 || r2.NewBytes != 0 {
			t.Fatalf("overwrite: version %d stored %d bytes", r2.Version.Number, r2.NewBytes)
		}
		v := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, r1.Entry.ID, 1))(t)
		counts := v.Manifest.Counts()
		if len(counts) > 2 {
			t.Fatalf("64 MiB of zeros made %d distinct chunks, want at most 2", len(counts))
		}
		for h, n := range counts {
			c, err := e.meta.GetChunk(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if c.Refs != 2*n {
				t.Fatalf("chunk %s has %d refs, want %d (two versions × %d occurrences)", h, c.Refs, 2*n, n)
			}
		}
		if err := e.svc.DeleteVersion(ctx, e.user.ID, r1.Entry.ID, 1); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Delete(ctx, e.user.ID, r1.Entry.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Purge(ctx, e.user.ID, r1.Entry.ID); err != nil {
			t.Fatal(err)
		}
		for h := range counts {
			c, err := e.meta.GetChunk(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			if c.Refs != 0 {
				t.Fatalf("chunk %s has %d refs after purging every version, want 0", h, c.Refs)
			}
		}
		if u, _ := e.meta.Usage(ctx, e.user.ID); u.LogicalBytes != 0 {
			t.Fatalf("usage %d after purge, want 0", u.LogicalBytes)
		}
	})
}

// A failure between storing chunks and committing leaves no visible
// version and no changed counts.
func TestFailureBeforeCommitChangesNothing(t *testing.T) {
	boom := errors.New("injected failure")
	fail := false
	opts := files.Options{BeforeCommit: func(context.Context) error {
		if fail {
			return boom
		}
		return nil
	}}
	forEach(t, opts, func(t *testing.T, e *env) {
		fail = false
		v1 := testkit.RandBytes(1, 8<<20)
		r1 := e.write(t, e.user.Root, "doc", v1)
		before := map[dfms.Hash]int64{}
		vv, _ := e.svc.OpenVersion(ctx, e.user.ID, r1.Entry.ID, 1)
		for h := range vv.Manifest.Counts() {
			c, _ := e.meta.GetChunk(ctx, h)
			before[h] = c.Refs
		}
		changes, _ := e.meta.Changes(ctx, e.user.ID, 0, 1000)

		fail = true
		// v2 shares its first 4 MiB with v1, so some chunks are reused.
		v2 := append(slices.Clone(v1[:4<<20]), testkit.RandBytes(2, 6<<20)...)
		_, err := e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Entry: r1.Entry.ID, Body: bytes.NewReader(v2)})
		if !errors.Is(err, boom) {
			t.Fatalf("write error %v, want the injected failure", err)
		}
		_, err = e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "new", Body: bytes.NewReader(v2)})
		if !errors.Is(err, boom) {
			t.Fatalf("write error %v, want the injected failure", err)
		}
		fail = false

		vs, _ := e.svc.Versions(ctx, e.user.ID, r1.Entry.ID)
		if len(vs) != 1 {
			t.Fatalf("%d versions after the failed write, want 1", len(vs))
		}
		if _, err := e.svc.Lookup(ctx, e.user.ID, e.user.Root, "new"); !dfms.Is(err, dfms.NotExist) {
			t.Fatalf("the failed new file is visible: %v", err)
		}
		if got := e.read(t, r1.Entry.ID, 0); !bytes.Equal(got, v1) {
			t.Fatal("current content changed")
		}
		for h, n := range before {
			c, _ := e.meta.GetChunk(ctx, h)
			if c.Refs != n {
				t.Fatalf("chunk %s: %d refs after the failed write, want %d", h, c.Refs, n)
			}
		}
		// Chunks stored by the failed write exist, unreferenced, for GC.
		err = e.store.Walk(ctx, func(ci dfms.ChunkInfo) error {
			h := ci.Hash
			if _, ok := before[h]; ok {
				return nil
			}
			c, err := e.meta.GetChunk(ctx, h)
			if err != nil {
				return err
			}
			if c.Refs != 0 {
				return fmt.Errorf("chunk %s of the failed write has %d refs", h, c.Refs)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if after, _ := e.meta.Changes(ctx, e.user.ID, 0, 1000); len(after) != len(changes) {
			t.Fatalf("journal went from %d to %d rows", len(changes), len(after))
		}
		if u, _ := e.meta.Usage(ctx, e.user.ID); u.LogicalBytes != int64(len(v1)) {
			t.Fatalf("usage %d, want %d", u.LogicalBytes, len(v1))
		}
	})
}

// A chunk corrupted in the store is detected on read and never returned.
func TestCorruptChunkDetected(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		data := testkit.RandBytes(7, 6<<20)
		res := e.write(t, e.user.Root, "victim", data)
		v := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, res.Entry.ID, 0))(t)
		if len(v.Manifest.Chunks) < 2 {
			t.Fatalf("want at least 2 chunks, got %d", len(v.Manifest.Chunks))
		}
		// Replace the second chunk's bytes with same-length garbage.
		bad := v.Manifest.Chunks[1]
		garbage, err := e.store.Get(ctx, bad.Hash, nil)
		if err != nil {
			t.Fatal(err)
		}
		garbage[len(garbage)/2] ^= 0x01
		e.corrupt(bad.Hash, garbage)
		var out bytes.Buffer
		n, err := e.svc.ReadRange(ctx, v, 0, -1, &out)
		if !dfms.Is(err, dfms.Corrupt) {
			t.Fatalf("read error %v, want kind Corrupt", err)
		}
		first := int64(v.Manifest.Chunks[0].Size)
		if n != first || !bytes.Equal(out.Bytes(), data[:first]) {
			t.Fatalf("read returned %d bytes before failing, want exactly the %d good bytes of chunk 0", n, first)
		}
		// A range inside the corrupt chunk fails without returning anything.
		out.Reset()
		n, err = e.svc.ReadRange(ctx, v, first+10, 100, &out)
		if !dfms.Is(err, dfms.Corrupt) || n != 0 || out.Len() != 0 {
			t.Fatalf("range in the bad chunk: %d bytes, err %v; want 0 bytes and Corrupt", n, err)
		}
		if _, err := e.svc.ReadChunk(ctx, bad, nil); !dfms.Is(err, dfms.Corrupt) {
			t.Fatalf("ReadChunk: %v, want Corrupt", err)
		}
	})
}

func TestReadRanges(t *testing.T) {
	forEach(t, files.Options{ReadAhead: 3}, func(t *testing.T, e *env) {
		data := testkit.RandBytes(9, 9<<20+123)
		res := e.write(t, e.user.Root, "r", data)
		v, _ := e.svc.OpenVersion(ctx, e.user.ID, res.Entry.ID, 0)
		r := rand.New(rand.NewPCG(1, 2))
		cases := [][2]int64{{0, 0}, {0, 1}, {int64(len(data)) - 1, 1}, {int64(len(data)), 10}, {5, -1}, {1 << 20, 3 << 20}}
		for range 20 {
			off := r.Int64N(int64(len(data)))
			cases = append(cases, [2]int64{off, r.Int64N(int64(len(data)) - off + 1)})
		}
		for _, c := range cases {
			var out bytes.Buffer
			n, err := e.svc.ReadRange(ctx, v, c[0], c[1], &out)
			if err != nil {
				t.Fatalf("range %v: %v", c, err)
			}
			end := int64(len(data))
			if c[1] >= 0 && c[0]+c[1] < end {
				end = c[0] + c[1]
			}
			if n != end-c[0] || !bytes.Equal(out.Bytes(), data[c[0]:end]) {
				t.Fatalf("range %v: got %d bytes, want %d", c, n, end-c[0])
			}
		}
		if _, err := e.svc.ReadRange(ctx, v, int64(len(data))+1, 1, io.Discard); !dfms.Is(err, dfms.Invalid) {
			t.Fatalf("range past the end: %v, want Invalid", err)
		}
		// A writer that fails stops the read.
		if _, err := e.svc.ReadRange(ctx, v, 0, -1, failWriter{}); err == nil {
			t.Fatal("read into a failing writer succeeded")
		}
	})
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("client went away") }

// Restoring an old version makes a new version with the same chunks and
// stores nothing.
func TestRestoreVersionStoresNothing(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		v1 := testkit.RandBytes(11, 3<<20)
		v2 := testkit.RandBytes(12, 2<<20)
		r := e.write(t, e.user.Root, "f", v1)
		r2 := e.write(t, e.user.Root, "f", v2)
		bytesBefore, chunksBefore := e.storedBytes(t)
		stored := e.svc.Stats().BytesStored.Load()
		ent, ver, err := e.svc.RestoreVersion(ctx, e.user.ID, r.Entry.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if ver.Number != 3 || ver.Base != r2.Version.ID || ent.Size != int64(len(v1)) || ver.SHA256 != dfms.Sum(v1) {
			t.Fatalf("restored: %+v %+v", ent, ver)
		}
		if got := e.read(t, r.Entry.ID, 0); !bytes.Equal(got, v1) {
			t.Fatal("restored content differs from version 1")
		}
		if got := e.read(t, r.Entry.ID, 2); !bytes.Equal(got, v2) {
			t.Fatal("version 2 changed")
		}
		if n, c := e.storedBytes(t); n != bytesBefore || c != chunksBefore || e.svc.Stats().BytesStored.Load() != stored {
			t.Fatalf("restore stored data: %d→%d bytes, %d→%d chunks", bytesBefore, n, chunksBefore, c)
		}
		if vs, _ := e.svc.Versions(ctx, e.user.ID, r.Entry.ID); len(vs) != 3 {
			t.Fatalf("%d versions, want 3", len(vs))
		}
	})
}

func TestWriteLimitsAndErrors(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		data := testkit.RandBytes(3, 2<<20)
		_, err := e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "big", Body: bytes.NewReader(data), MaxSize: 1 << 20})
		if !dfms.Is(err, dfms.TooLarge) {
			t.Fatalf("oversized body: %v, want TooLarge", err)
		}
		if _, err := e.svc.Lookup(ctx, e.user.ID, e.user.Root, "big"); !dfms.Is(err, dfms.NotExist) {
			t.Fatalf("oversized file exists: %v", err)
		}
		// Exactly at the limit is fine.
		if _, err := e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "fits", Body: bytes.NewReader(data), MaxSize: int64(len(data))}); err != nil {
			t.Fatalf("body at the limit: %v", err)
		}
		d, _ := e.svc.Mkdir(ctx, e.user.ID, e.user.Root, "dir", 0)
		for _, tc := range []struct {
			name string
			req  files.WriteRequest
			kind dfms.ErrorKind
		}{
			{"into a missing folder", files.WriteRequest{Parent: 99999, Name: "x"}, dfms.NotExist},
			{"over a directory", files.WriteRequest{Parent: e.user.Root, Name: "dir"}, dfms.IsDir},
			{"bad name", files.WriteRequest{Parent: e.user.Root, Name: ".."}, dfms.Invalid},
			{"reserved name", files.WriteRequest{Parent: e.user.Root, Name: ".versions"}, dfms.Invalid},
			{"directory by id", files.WriteRequest{Entry: d.ID}, dfms.IsDir},
		} {
			tc.req.Owner = e.user.ID
			tc.req.Body = bytes.NewReader([]byte("x"))
			if _, err := e.svc.Write(ctx, tc.req); !dfms.Is(err, tc.kind) {
				t.Errorf("%s: %v, want kind %q", tc.name, err, tc.kind)
			}
		}
		if _, err := e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "r", Body: errReader{}}); err == nil {
			t.Fatal("a failing body was committed")
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestTreeOperations(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		owner := e.user.ID
		a, _ := e.svc.Mkdir(ctx, owner, e.user.Root, "a", 0o700)
		b, _ := e.svc.Mkdir(ctx, owner, a.ID, "b", 0)
		f := e.write(t, b.ID, "report.txt", []byte("hello"))
		l, err := e.svc.Symlink(ctx, owner, a.ID, "link", "b/report.txt")
		if err != nil {
			t.Fatal(err)
		}
		if tgt, err := e.svc.Readlink(ctx, owner, l.ID); err != nil || tgt != "b/report.txt" {
			t.Fatalf("Readlink = %q, %v", tgt, err)
		}
		got, err := e.svc.Resolve(ctx, owner, "/a/b/report.txt")
		if err != nil || got.ID != f.Entry.ID {
			t.Fatalf("Resolve = %+v, %v", got, err)
		}
		if _, err := e.svc.Rename(ctx, owner, a.ID, b.ID, "loop", false); !dfms.Is(err, dfms.Conflict) {
			t.Fatalf("cycle: %v, want Conflict", err)
		}
		if _, err := e.svc.Rename(ctx, owner, f.Entry.ID, e.user.Root, "moved.txt", false); err != nil {
			t.Fatal(err)
		}
		hits, _, _ := e.svc.Search(ctx, owner, meta.SearchQuery{Text: "MOVED"})
		if len(hits) != 1 || hits[0].ID != f.Entry.ID {
			t.Fatalf("search = %v", hits)
		}
		if err := e.svc.Delete(ctx, owner, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Stat(ctx, owner, l.ID); !dfms.Is(err, dfms.NotExist) {
			t.Fatalf("stat in a trashed folder: %v", err)
		}
		tr, _, _ := e.svc.Trash(ctx, owner, 0, 0)
		if len(tr) != 1 || tr[0].ID != a.ID {
			t.Fatalf("trash = %v", tr)
		}
		if _, err := e.svc.Restore(ctx, owner, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Stat(ctx, owner, l.ID); err != nil {
			t.Fatalf("stat after restore: %v", err)
		}
		// A created-but-never-written file reads as empty.
		empty, err := e.meta.CreateEntry(ctx, dfms.Entry{Owner: owner, Parent: e.user.Root, Name: "empty", Kind: dfms.KindFile, Mode: 0o644})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.read(t, empty.ID, 0); len(got) != 0 {
			t.Fatalf("empty file read %d bytes", len(got))
		}
		if _, err := e.svc.OpenVersion(ctx, owner, a.ID, 0); !dfms.Is(err, dfms.IsDir) {
			t.Fatalf("open a directory: %v, want IsDir", err)
		}
	})
}

// Concurrent writers on one file: every write becomes a version.
func TestConcurrentWritersKeepEveryVersion(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		f := e.write(t, e.user.Root, "shared", []byte("v0"))
		const n = 6
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, err := e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Entry: f.Entry.ID, Body: bytes.NewReader(testkit.RandBytes(uint64(i+50), 700<<10))})
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		vs, _ := e.svc.Versions(ctx, e.user.ID, f.Entry.ID)
		if len(vs) != n+1 {
			t.Fatalf("%d versions, want %d", len(vs), n+1)
		}
		seen := map[dfms.Hash]bool{}
		for _, v := range vs[1:] {
			seen[v.SHA256] = true
		}
		if len(seen) != n {
			t.Fatalf("%d distinct contents in history, want %d", len(seen), n)
		}
	})
}

// failingPuts is a chunk store whose writes fail (and that offers no
// batches, so every chunk goes through Put).
type failingPuts struct {
	dfms.ChunkStore
	err error
}

func (f failingPuts) Put(context.Context, dfms.Hash, []byte) error { return f.err }

// A commit that stores its own new chunks (the mount's edit) stores only
// those the store lacks, records them with the version, and changes
// nothing if their bytes cannot be stored.
func TestCommitStoringChunks(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		v1 := testkit.RandBytes(3, 6<<20)
		r1 := e.write(t, e.user.Root, "edited", v1)
		old := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, r1.Entry.ID, 1))(t)
		chunks := old.Manifest.Chunks
		if len(chunks) < 3 {
			t.Fatalf("%d chunks, want 3 or more", len(chunks))
		}
		// Version 2: the second chunk replaced by new bytes.
		fresh := testkit.RandBytes(4, 300<<10)
		freshRef := dfms.ChunkRef{Hash: dfms.Sum(fresh), Size: uint32(len(fresh))}
		m := dfms.Manifest{Chunks: slices.Clone(chunks)}
		m.Chunks[1] = freshRef
		var want []byte
		off := int64(0)
		for i, c := range chunks {
			if i == 1 {
				want = append(want, fresh...)
			} else {
				want = append(want, v1[off:off+int64(c.Size)]...)
			}
			off += int64(c.Size)
		}
		stored, deduped := e.svc.Stats().ChunksStored.Load(), e.svc.Stats().ChunksDeduped.Load()
		first := v1[:chunks[0].Size] // stored already: not stored again
		res, err := e.svc.Commit(ctx, meta.CommitRequest{Owner: e.user.ID, Entry: r1.Entry.ID, Manifest: m, Base: 1},
			files.CommitOptions{Trusted: true, Chunks: []dfms.ChunkData{{Hash: freshRef.Hash, Data: fresh}, {Hash: chunks[0].Hash, Data: first}}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stored != 1 {
			t.Fatalf("Commit says it stored %d chunks, want 1", res.Stored)
		}
		if res.Entry.Version != 2 || res.Version.Number != 2 {
			t.Fatalf("committed version %d (entry at %d), want 2", res.Version.Number, res.Entry.Version)
		}
		if got := e.read(t, r1.Entry.ID, 0); !bytes.Equal(got, want) {
			t.Fatal("version 2 does not read back as committed")
		}
		if n := e.svc.Stats().ChunksStored.Load() - stored; n != 1 {
			t.Fatalf("%d chunks stored, want 1 (the other was stored already)", n)
		}
		if n := e.svc.Stats().ChunksDeduped.Load() - deduped; n != 1 {
			t.Fatalf("%d chunks deduplicated, want 1", n)
		}
		if c := testkit.Must(e.meta.GetChunk(ctx, freshRef.Hash))(t); c.Pending || c.Refs != 1 {
			t.Fatalf("the new chunk is %+v, want stored with one reference", c)
		}

		// The store fails: no version 3, the new chunk is not usable, and
		// the references of the others did not move.
		boom := errors.New("disk on fire")
		broken, err := files.New(e.meta, failingPuts{e.store, boom}, files.Options{})
		if err != nil {
			t.Fatal(err)
		}
		lost := testkit.RandBytes(5, 200<<10)
		lostRef := dfms.ChunkRef{Hash: dfms.Sum(lost), Size: uint32(len(lost))}
		m3 := dfms.Manifest{Chunks: slices.Clone(m.Chunks)}
		m3.Chunks[0] = lostRef
		refs := testkit.Must(e.meta.GetChunk(ctx, chunks[2].Hash))(t).Refs
		_, err = broken.Commit(ctx, meta.CommitRequest{Owner: e.user.ID, Entry: r1.Entry.ID, Manifest: m3, Base: 2},
			files.CommitOptions{Trusted: true, Chunks: []dfms.ChunkData{{Hash: lostRef.Hash, Data: lost}}})
		if !errors.Is(err, boom) {
			t.Fatalf("commit over a failing store: %v, want %v", err, boom)
		}
		if got := testkit.Must(e.svc.Stat(ctx, e.user.ID, r1.Entry.ID))(t); got.Version != 2 {
			t.Fatalf("the failed commit moved the file to version %d", got.Version)
		}
		if c, err := e.meta.GetChunk(ctx, lostRef.Hash); err == nil && (!c.Pending || c.Refs != 0) {
			t.Fatalf("the chunk that was never stored is %+v", c)
		}
		if n := testkit.Must(e.meta.GetChunk(ctx, chunks[2].Hash))(t).Refs; n != refs {
			t.Fatalf("a kept chunk has %d references after the failed commit, want %d", n, refs)
		}

		// Bad input: an empty chunk.
		_, err = e.svc.Commit(ctx, meta.CommitRequest{Owner: e.user.ID, Entry: r1.Entry.ID, Manifest: m, Base: 2},
			files.CommitOptions{Trusted: true, Chunks: []dfms.ChunkData{{Hash: dfms.Sum(nil)}}})
		if !dfms.Is(err, dfms.Invalid) {
			t.Fatalf("an empty chunk: %v, want kind Invalid", err)
		}
	})
}

// gatedPuts is a chunk store whose writes wait for release.
type gatedPuts struct {
	dfms.ChunkStore
	entered chan struct{}
	release chan struct{}
}

func (g gatedPuts) Put(ctx context.Context, h dfms.Hash, data []byte) error {
	g.entered <- struct{}{}
	<-g.release
	return g.ChunkStore.Put(ctx, h, data)
}

// A chunk store that is slow to store a commit's chunks does not hold the
// metadata store's write locks meanwhile: the commit waits outside its
// transaction and is made once the bytes are stored.
func TestCommitStoringSlowStore(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		r1 := e.write(t, e.user.Root, "slow", testkit.RandBytes(6, 100<<10))
		g := gatedPuts{e.store, make(chan struct{}, 1), make(chan struct{})}
		slow, err := files.New(e.meta, g, files.Options{})
		if err != nil {
			t.Fatal(err)
		}
		data := testkit.RandBytes(7, 64<<10)
		ref := dfms.ChunkRef{Hash: dfms.Sum(data), Size: uint32(len(data))}
		type result struct {
			v   dfms.Version
			err error
		}
		res := make(chan result, 1)
		go func() {
			c, err := slow.Commit(ctx, meta.CommitRequest{Owner: e.user.ID, Entry: r1.Entry.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{ref}}, Base: 1},
				files.CommitOptions{Trusted: true, Chunks: []dfms.ChunkData{{Hash: ref.Hash, Data: data}}})
			res <- result{c.Version, err}
		}()
		<-g.entered
		// While the bytes are held back, other metadata writes go through
		// (on SQLite they would wait for the commit's transaction).
		made := make(chan error, 1)
		go func() {
			_, err := e.meta.CreateUser(ctx, meta.User{Email: "bystander@example.com", Active: true})
			made <- err
		}()
		select {
		case err := <-made:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			close(g.release)
			t.Fatal("a metadata write waited for a commit whose chunks were still being stored")
		}
		close(g.release)
		r := <-res
		if r.err != nil || r.v.Number != 2 {
			t.Fatalf("commit after the slow store: version %d, %v", r.v.Number, r.err)
		}
		if got := e.read(t, r1.Entry.ID, 0); !bytes.Equal(got, data) {
			t.Fatal("the commit does not read back")
		}
	})
}

// A checksum computed for a version lands on that version, even if a
// rename over its file renumbered the versions meanwhile: a download of
// version N reads it, then records what it computed.
func TestDeferredChecksumFollowsVersion(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		// A version without a checksum (as the mount commits): the
		// manifest of one written before, committed again.
		again := func(name string, data []byte) (dfms.Entry, dfms.Version) {
			t.Helper()
			r := e.write(t, e.user.Root, name+".src", data)
			v := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, r.Entry.ID, 0))(t)
			c, err := e.svc.Commit(ctx, meta.CommitRequest{Owner: e.user.ID, Parent: e.user.Root, Name: name, Manifest: *v.Manifest}, files.CommitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !c.Version.SHA256.IsZero() {
				t.Fatalf("a deferred commit has checksum %s", c.Version.SHA256)
			}
			return c.Entry, c.Version
		}
		rotated1, rotated2 := []byte("rotated one\n"), []byte("rotated one\nrotated two\n")
		log1, log2 := []byte("line one\n"), []byte("line one\nline two\n")
		again("app.log.1", rotated1)
		again("app.log.1", rotated2)
		again("app.log", log1)
		logE, _ := again("app.log", log2)
		// A download of app.log's version 2 starts…
		v := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, logE.ID, 2))(t)
		// …the log is rotated…
		if _, err := e.svc.Rename(ctx, e.user.ID, logE.ID, e.user.Root, "app.log.1", true); err != nil {
			t.Fatal(err)
		}
		// …and the download records the checksum it computed.
		sum, err := e.svc.Checksum(ctx, e.user.ID, &v)
		if err != nil {
			t.Fatal(err)
		}
		if sum != dfms.Sum(log2) {
			t.Fatalf("checksum %s, want that of app.log's second version", sum)
		}
		vs, err := e.svc.Versions(ctx, e.user.ID, logE.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ver := range vs {
			content := e.read(t, logE.ID, ver.Number)
			if !ver.SHA256.IsZero() && ver.SHA256 != dfms.Sum(content) {
				t.Fatalf("version %d (id %d) records checksum %s, which is not its content's", ver.Number, ver.ID, ver.SHA256)
			}
			if ver.ID == v.ID && ver.SHA256 != sum {
				t.Fatalf("the downloaded version %d (id %d) has no checksum", ver.Number, ver.ID)
			}
		}
	})
}

// A version may hold holes: they read as zeros made here (no chunk is
// fetched for them), commit without any chunk (verified or not), and copy
// and restore as they are.
func TestHolesReadAsZeros(t *testing.T) {
	forEach(t, files.Options{ReadAhead: 2}, func(t *testing.T, e *env) {
		data := testkit.RandBytes(21, 3<<20)
		res := e.write(t, e.user.Root, "data", data)
		v := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, res.Entry.ID, 0))(t)
		var m dfms.Manifest
		m.Chunks = dfms.AppendHole(m.Chunks, 5<<20+3)
		m.Chunks = append(m.Chunks, v.Manifest.Chunks...)
		m.Chunks = dfms.AppendHole(m.Chunks, 7)
		want := slices.Concat(make([]byte, 5<<20+3), data, make([]byte, 7))
		fetched := e.svc.Stats().ChunksRead.Load()
		c, err := e.svc.Commit(ctx, meta.CommitRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "sparse",
			Manifest: m, SHA256: dfms.Sum(want)}, files.CommitOptions{Verify: true})
		if err != nil {
			t.Fatal(err)
		}
		if c.Entry.Size != int64(len(want)) || c.Entry.DataSize != int64(len(data)) {
			t.Fatalf("size %d, data %d", c.Entry.Size, c.Entry.DataSize)
		}
		if got := e.svc.Stats().ChunksRead.Load() - fetched; got != int64(len(v.Manifest.Chunks)) {
			t.Fatalf("the verification fetched %d chunks, want the %d data chunks", got, len(v.Manifest.Chunks))
		}
		if got := e.read(t, c.Entry.ID, 0); !bytes.Equal(got, want) {
			t.Fatal("a version with holes reads back wrong")
		}
		sv := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, c.Entry.ID, 0))(t)
		for _, r := range [][2]int64{{0, 10}, {5 << 20, 10}, {5<<20 + 1, 4}, {int64(len(want)) - 9, 9}, {100, 6 << 20}} {
			var out bytes.Buffer
			if _, err := e.svc.ReadRange(ctx, sv, r[0], r[1], &out); err != nil || !bytes.Equal(out.Bytes(), want[r[0]:r[0]+r[1]]) {
				t.Fatalf("range %v: %v", r, err)
			}
		}
		// Unverified: the checksum is computed on first need.
		c2, err := e.svc.Commit(ctx, meta.CommitRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "sparse2", Manifest: m}, files.CommitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v2 := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, c2.Entry.ID, 0))(t)
		if sum := testkit.Must(e.svc.Checksum(ctx, e.user.ID, &v2))(t); sum != dfms.Sum(want) {
			t.Fatal("the checksum of a version with holes is wrong")
		}
		cp, _, err := e.svc.Copy(ctx, e.user.ID, c.Entry.ID, e.user.Root, "copy")
		if err != nil {
			t.Fatal(err)
		}
		if got := e.read(t, cp.ID, 0); !bytes.Equal(got, want) || cp.DataSize != int64(len(data)) {
			t.Fatal("the copy of a sparse file differs")
		}
		e.write(t, e.user.Root, "sparse", []byte("over"))
		if _, _, err := e.svc.RestoreVersion(ctx, e.user.ID, c.Entry.ID, 1); err != nil {
			t.Fatal(err)
		}
		if got := e.read(t, c.Entry.ID, 0); !bytes.Equal(got, want) {
			t.Fatal("the restored sparse version differs")
		}
		// A terabyte of hole with a byte in it: reading around the byte
		// costs what is read.
		one := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, e.write(t, e.user.Root, "x", []byte("x")).Entry.ID, 0))(t)
		big := dfms.AppendHole(nil, 900<<30)
		big = append(big, one.Manifest.Chunks...)
		big = dfms.AppendHole(big, 100<<30)
		cb, err := e.svc.Commit(ctx, meta.CommitRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "big", Manifest: dfms.Manifest{Chunks: big}}, files.CommitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bv := testkit.Must(e.svc.OpenVersion(ctx, e.user.ID, cb.Entry.ID, 0))(t)
		var out bytes.Buffer
		if _, err := e.svc.ReadRange(ctx, bv, 900<<30-3, 7, &out); err != nil || !bytes.Equal(out.Bytes(), []byte("\x00\x00\x00x\x00\x00\x00")) {
			t.Fatalf("around the byte: %q, %v", out.Bytes(), err)
		}
		got, err := e.svc.ReadChunk(ctx, dfms.Hole(5), nil)
		if err != nil || !bytes.Equal(got, make([]byte, 5)) {
			t.Fatalf("ReadChunk of a hole: %q, %v", got, err)
		}
		_, err = e.svc.ReadChunk(ctx, dfms.Hole(dfms.MaxHole), nil)
		testkit.WantKind(t, err, dfms.Invalid, "ReadChunk of a hole longer than a chunk")
	})
}
