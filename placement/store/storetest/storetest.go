// Package storetest is the conformance suite of [dfms.ChunkStore]. Every
// backend runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) dfms.ChunkStore {
//			s, err := disk.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Backends that persist (all real ones) also run [RunReopen], which checks
// that a second handle over the same place sees what the first one stored.
//
// The suite also checks the optional interfaces a store may implement, each
// found by type assertion on the store that open returns: [dfms.BatchPutter]
// (PutBatch…) and RemoveStaleTemp (as the garbage collector in workers/gc
// calls it). A store without one skips those cases, saying so.
//
// A bug found in one backend becomes a new case here, so that every backend
// is checked for it.
//
// The suite only ever stores data under its true hash ([dfms.Sum]): a backend
// may reject bytes that do not match their hash (the s3 backend lets the
// server check them), although it need not.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
)

// Run runs the suite. open must return a new, empty store for each call (each
// subtest calls it once); the suite closes the stores it opens.
func Run(t *testing.T, open func(t *testing.T) dfms.ChunkStore) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s dfms.ChunkStore)
	}{
		{"RoundTrip", testRoundTrip},
		{"GetAppends", testGetAppends},
		{"PutIdempotent", testPutIdempotent},
		{"PutCopiesData", testPutCopiesData},
		{"Missing", testMissing},
		{"DeleteThenGet", testDeleteThenGet},
		{"DeleteMissing", testDeleteMissing},
		{"Walk", testWalk},
		{"ModTime", testModTime},
		{"WalkStops", testWalkStops},
		{"Large", testLarge},
		{"Concurrent", testConcurrent},
		{"Cancelled", testCancelled},
		// Optional interfaces.
		{"PutBatch", testPutBatch},
		{"PutBatchConcurrent", testPutBatchConcurrent},
		{"PutBatchCancelled", testPutBatchCancelled},
		{"RemoveStaleTemp", testRemoveStaleTemp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, s)
		})
	}
}

// RunReopen checks that stores persist. place is called once; it returns a
// function that opens a new handle over one and the same place (a directory,
// a bucket), empty before the first call. The suite closes the handles it
// opens.
func RunReopen(t *testing.T, place func(t *testing.T) (open func(t *testing.T) dfms.ChunkStore)) {
	t.Run("Reopen", func(t *testing.T) {
		ctx := context.Background()
		open := place(t)
		chunks := makeChunks(t, 1, 3, 1000)

		s1 := open(t)
		putAll(t, s1, chunks)
		if err := s1.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s2 := open(t)
		for _, c := range chunks {
			checkGet(t, s2, c)
		}
		checkWalk(t, s2, chunks)
		if err := s2.Delete(ctx, chunks[0].hash); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := s2.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s3 := open(t)
		defer s3.Close()
		checkMissing(t, s3, chunks[0].hash)
		checkWalk(t, s3, chunks[1:])
	})
}

// chunk is test data and its hash.
type chunk struct {
	hash dfms.Hash
	data []byte
}

// newChunk returns size pseudo-random bytes drawn from seed, and their hash.
func newChunk(seed uint64, size int) chunk {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)}))
	data := make([]byte, size)
	for i := 0; i < size; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < size; j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	return chunk{dfms.Sum(data), data}
}

// makeChunks returns n distinct chunks of the given size, seeded from seed
// onwards.
func makeChunks(t *testing.T, seed uint64, n, size int) []chunk {
	t.Helper()
	cs := make([]chunk, n)
	for i := range cs {
		cs[i] = newChunk(seed+uint64(i), size)
	}
	return cs
}

func putAll(t *testing.T, s dfms.ChunkStore, cs []chunk) {
	t.Helper()
	for _, c := range cs {
		if err := s.Put(context.Background(), c.hash, c.data); err != nil {
			t.Fatalf("Put(%s, %d bytes): %v", c.hash, len(c.data), err)
		}
	}
}

// checkGet checks that Get and Stat return c.
func checkGet(t *testing.T, s dfms.ChunkStore, c chunk) {
	t.Helper()
	ctx := context.Background()
	got, err := s.Get(ctx, c.hash, nil)
	if err != nil {
		t.Fatalf("Get(%s): %v", c.hash, err)
	}
	if !bytes.Equal(got, c.data) {
		t.Fatalf("Get(%s): got %d bytes (%s), want %d bytes (%s)", c.hash, len(got), dfms.Sum(got), len(c.data), c.hash)
	}
	size, err := s.Stat(ctx, c.hash)
	if err != nil {
		t.Fatalf("Stat(%s): %v", c.hash, err)
	}
	if size != int64(len(c.data)) {
		t.Fatalf("Stat(%s): got %d, want %d", c.hash, size, len(c.data))
	}
}

// checkMissing checks that Get and Stat of h fail with kind NotExist.
func checkMissing(t *testing.T, s dfms.ChunkStore, h dfms.Hash) {
	t.Helper()
	ctx := context.Background()
	if got, err := s.Get(ctx, h, nil); !dfms.Is(err, dfms.NotExist) {
		t.Errorf("Get(%s): got %d bytes, error %v (kind %v), want kind %v", h, len(got), err, dfms.KindOf(err), dfms.NotExist)
	}
	if size, err := s.Stat(ctx, h); !dfms.Is(err, dfms.NotExist) {
		t.Errorf("Stat(%s): got %d, error %v (kind %v), want kind %v", h, size, err, dfms.KindOf(err), dfms.NotExist)
	}
}

// checkWalk checks that Walk lists exactly cs, each once.
func checkWalk(t *testing.T, s dfms.ChunkStore, cs []chunk) {
	t.Helper()
	want := make(map[dfms.Hash]int64, len(cs))
	for _, c := range cs {
		want[c.hash] = int64(len(c.data))
	}
	got := make(map[dfms.Hash]int64)
	err := s.Walk(context.Background(), func(ci dfms.ChunkInfo) error {
		h := ci.Hash
		size := ci.Size
		if _, dup := got[h]; dup {
			return fmt.Errorf("chunk %s listed twice", h)
		}
		got[h] = size
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	for h, size := range got {
		if w, ok := want[h]; !ok {
			t.Errorf("Walk: got unexpected chunk %s (%d bytes)", h, size)
		} else if size != w {
			t.Errorf("Walk: chunk %s: got size %d, want %d", h, size, w)
		}
	}
	for h, size := range want {
		if _, ok := got[h]; !ok {
			t.Errorf("Walk: chunk %s (%d bytes) missing", h, size)
		}
	}
}

// testRoundTrip stores chunks of several sizes, including zero: our chunker
// never emits an empty chunk, but the empty file's chunk is a valid one and
// every store must keep it.
func testRoundTrip(t *testing.T, s dfms.ChunkStore) {
	var cs []chunk
	for i, size := range []int{0, 1, 7, 4096, 65537, 1 << 20} {
		c := newChunk(uint64(100+i), size)
		cs = append(cs, c)
		putAll(t, s, []chunk{c})
		checkGet(t, s, c)
	}
	checkWalk(t, s, cs)
}

func testGetAppends(t *testing.T, s dfms.ChunkStore) {
	ctx := context.Background()
	c := newChunk(200, 3000)
	putAll(t, s, []chunk{c})
	prefix := []byte("prefix:")

	for _, spare := range []int{0, 10, 4000} {
		buf := make([]byte, len(prefix), len(prefix)+spare)
		copy(buf, prefix)
		got, err := s.Get(ctx, c.hash, buf)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if len(got) != len(prefix)+len(c.data) {
			t.Fatalf("spare %d: got length %d, want %d", spare, len(got), len(prefix)+len(c.data))
		}
		if !bytes.Equal(got[:len(prefix)], prefix) {
			t.Errorf("spare %d: got prefix %q, want %q", spare, got[:len(prefix)], prefix)
		}
		if !bytes.Equal(got[len(prefix):], c.data) {
			t.Errorf("spare %d: appended bytes differ from the stored chunk", spare)
		}
		if spare >= len(c.data) && &got[0] != &buf[0] {
			t.Errorf("spare %d: Get reallocated a buffer with room for the chunk", spare)
		}
	}

	// Get's result belongs to the caller: changing it must not change the
	// stored chunk.
	got, err := s.Get(ctx, c.hash, nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	clear(got)
	checkGet(t, s, c)
}

func testPutIdempotent(t *testing.T, s dfms.ChunkStore) {
	c := newChunk(300, 5000)
	for range 3 {
		putAll(t, s, []chunk{c})
	}
	checkGet(t, s, c)
	checkWalk(t, s, []chunk{c})
}

// testPutCopiesData checks that a store does not keep the caller's slice.
func testPutCopiesData(t *testing.T, s dfms.ChunkStore) {
	c := newChunk(350, 2000)
	data := bytes.Clone(c.data)
	if err := s.Put(context.Background(), c.hash, data); err != nil {
		t.Fatalf("Put: %v", err)
	}
	clear(data)
	checkGet(t, s, c)
}

func testMissing(t *testing.T, s dfms.ChunkStore) {
	present := newChunk(400, 100)
	putAll(t, s, []chunk{present})
	absent := newChunk(401, 100)
	checkMissing(t, s, absent.hash)
	checkMissing(t, s, dfms.Hash{})
	// A hash sharing the stored chunk's leading bytes (its shard, in the
	// sharded backends) is still a different chunk.
	near := present.hash
	near[dfms.HashSize-1] ^= 1
	checkMissing(t, s, near)
}

func testDeleteThenGet(t *testing.T, s dfms.ChunkStore) {
	ctx := context.Background()
	cs := makeChunks(t, 500, 2, 1000)
	putAll(t, s, cs)
	if err := s.Delete(ctx, cs[0].hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkMissing(t, s, cs[0].hash)
	checkGet(t, s, cs[1])

	// A deleted chunk can be stored again.
	putAll(t, s, cs[:1])
	checkGet(t, s, cs[0])
}

func testDeleteMissing(t *testing.T, s dfms.ChunkStore) {
	ctx := context.Background()
	c := newChunk(600, 10)
	for i := range 2 {
		if err := s.Delete(ctx, c.hash); err != nil {
			t.Errorf("Delete #%d of a missing chunk: got %v, want nil", i+1, err)
		}
	}
	putAll(t, s, []chunk{c})
	for i := range 2 {
		if err := s.Delete(ctx, c.hash); err != nil {
			t.Errorf("Delete #%d of a stored chunk: got %v, want nil", i+1, err)
		}
	}
	checkMissing(t, s, c.hash)
}

func testWalk(t *testing.T, s dfms.ChunkStore) {
	ctx := context.Background()
	checkWalk(t, s, nil)
	var cs []chunk
	for i := range 40 {
		cs = append(cs, newChunk(uint64(700+i), 10*i))
	}
	putAll(t, s, cs)
	checkWalk(t, s, cs)

	for _, c := range cs[:20] {
		if err := s.Delete(ctx, c.hash); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	checkWalk(t, s, cs[20:])
	for _, c := range cs[20:] {
		if err := s.Delete(ctx, c.hash); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	checkWalk(t, s, nil)
}

// testWalkStops checks that Walk stops at fn's first error and returns it.
func testWalkStops(t *testing.T, s dfms.ChunkStore) {
	putAll(t, s, makeChunks(t, 800, 5, 10))
	stop := errors.New("stop here")
	calls := 0
	err := s.Walk(context.Background(), func(dfms.ChunkInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("Walk: got error %v, want %v", err, stop)
	}
	if calls != 1 {
		t.Errorf("Walk: got %d calls of fn, want 1", calls)
	}
}

// testLarge stores a chunk of the chunker's default maximum size.
func testLarge(t *testing.T, s dfms.ChunkStore) {
	c := newChunk(900, 4<<20)
	putAll(t, s, []chunk{c})
	checkGet(t, s, c)
	checkWalk(t, s, []chunk{c})
}

// testConcurrent runs puts, gets, stats and walks from 16 goroutines, on
// chunks they share and chunks of their own. Run it with -race.
func testConcurrent(t *testing.T, s dfms.ChunkStore) {
	const workers = 16
	ctx := context.Background()
	shared := makeChunks(t, 1000, 4, 64<<10)
	own := make([][]chunk, workers)
	for w := range own {
		own[w] = makeChunks(t, uint64(2000+10*w), 3, 16<<10+w)
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			mine := append(append([]chunk(nil), shared...), own[w]...)
			var buf []byte
			for round := range 2 {
				for i := range mine {
					c := mine[(i+w)%len(mine)]
					if err := s.Put(ctx, c.hash, c.data); err != nil {
						t.Errorf("worker %d: Put: %v", w, err)
						return
					}
					var err error
					buf, err = s.Get(ctx, c.hash, buf[:0])
					if err != nil {
						t.Errorf("worker %d: Get: %v", w, err)
						return
					}
					if !bytes.Equal(buf, c.data) {
						t.Errorf("worker %d: Get(%s): got %d bytes (%s), want %d bytes", w, c.hash, len(buf), dfms.Sum(buf), len(c.data))
						return
					}
					if size, err := s.Stat(ctx, c.hash); err != nil || size != int64(len(c.data)) {
						t.Errorf("worker %d: Stat(%s): got %d, %v; want %d, nil", w, c.hash, size, err, len(c.data))
						return
					}
				}
				if round == 0 && w%4 == 0 {
					err := s.Walk(ctx, func(dfms.ChunkInfo) error { return nil })
					if err != nil {
						t.Errorf("worker %d: Walk: %v", w, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	all := append([]chunk(nil), shared...)
	for _, cs := range own {
		all = append(all, cs...)
	}
	checkWalk(t, s, all)
}

// testCancelled checks that every method fails on a cancelled context, with
// an error that says so.
func testCancelled(t *testing.T, s dfms.ChunkStore) {
	c := newChunk(3000, 100)
	putAll(t, s, []chunk{c})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	other := newChunk(3001, 100)

	check := func(method string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: got error %v, want one wrapping %v", method, err, context.Canceled)
		}
	}
	check("Put", s.Put(ctx, other.hash, other.data))
	_, err := s.Get(ctx, c.hash, nil)
	check("Get", err)
	_, err = s.Stat(ctx, c.hash)
	check("Stat", err)
	check("Delete", s.Delete(ctx, c.hash))
	check("Walk", s.Walk(ctx, func(dfms.ChunkInfo) error { return nil }))

	// The store still works with a live context, and the cancelled Delete
	// did not happen.
	checkGet(t, s, c)
}

// testModTime checks that Walk reports when a chunk was last Put, and that
// putting it again refreshes that time (GC spares chunks being uploaded by
// it). Object stores keep whole seconds, hence the pause.
func testModTime(t *testing.T, s dfms.ChunkStore) {
	ctx := context.Background()
	data := []byte("modtime")
	h := dfms.Sum(data)
	start := time.Now().Add(-2 * time.Second)
	if err := s.Put(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	first := modTime(t, s, h)
	if first.Before(start) || first.After(time.Now().Add(2*time.Second)) {
		t.Fatalf("ModTime = %v, want about %v", first, time.Now())
	}
	time.Sleep(1100 * time.Millisecond)
	if err := s.Put(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	if again := modTime(t, s, h); !again.After(first) {
		t.Fatalf("ModTime after a second Put = %v, want after %v", again, first)
	}
}

func modTime(t *testing.T, s dfms.ChunkStore, h dfms.Hash) time.Time {
	t.Helper()
	mt := modTimes(t, s)[h]
	if mt.IsZero() {
		t.Fatalf("Walk did not list %s with a modification time", h)
	}
	return mt
}

// modTimes returns the modification time of every chunk, as Walk lists
// them.
func modTimes(t *testing.T, s dfms.ChunkStore) map[dfms.Hash]time.Time {
	t.Helper()
	mt := make(map[dfms.Hash]time.Time)
	err := s.Walk(context.Background(), func(ci dfms.ChunkInfo) error {
		mt[ci.Hash] = ci.ModTime
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mt
}

// batchPutter returns s as a dfms.BatchPutter, or skips the test if it is
// not one.
func batchPutter(t *testing.T, s dfms.ChunkStore) dfms.BatchPutter {
	t.Helper()
	bp, ok := s.(dfms.BatchPutter)
	if !ok {
		t.Skipf("%T does not implement dfms.BatchPutter: its chunks are stored one Put at a time", s)
	}
	return bp
}

// batch returns cs as PutBatch takes them, with their bytes copied: the
// caller's slices are cleared after the call, and the store must not have
// kept them.
func batch(cs []chunk) []dfms.ChunkData {
	b := make([]dfms.ChunkData, len(cs))
	for i, c := range cs {
		b[i] = dfms.ChunkData{Hash: c.hash, Data: bytes.Clone(c.data)}
	}
	return b
}

// putBatch calls PutBatch with a copy of cs, which it then clears.
func putBatch(t *testing.T, bp dfms.BatchPutter, cs []chunk) {
	t.Helper()
	b := batch(cs)
	if err := bp.PutBatch(context.Background(), b); err != nil {
		t.Fatalf("PutBatch of %d chunks: %v", len(cs), err)
	}
	for _, c := range b {
		clear(c.Data)
	}
}

// testPutBatch checks that PutBatch stores every chunk as Put would: over
// chunks stored already, with the same chunk twice in a batch, again
// (idempotent), and with a fresh modification time. It runs on small
// chunks and on large ones, since a backend may make them durable
// differently (the disk store syncs chunks from 256 KiB file by file, and
// smaller ones with the whole file system).
func testPutBatch(t *testing.T, s dfms.ChunkStore) {
	bp := batchPutter(t, s)
	ctx := context.Background()
	if err := bp.PutBatch(ctx, nil); err != nil {
		t.Fatalf("PutBatch of no chunks: %v", err)
	}
	var all []chunk
	for _, b := range []struct {
		name string
		seed uint64
		size func(i int) int
		n    int
	}{
		{"small", 4000, func(i int) int { return 100 * i }, 40}, // the first one empty
		{"large", 4100, func(i int) int { return 1<<20 + i }, 8},
	} {
		cs := make([]chunk, b.n)
		for i := range cs {
			cs[i] = newChunk(b.seed+uint64(i), b.size(i))
		}
		putAll(t, s, cs[:1]) // one is stored already
		before := time.Now().Add(-time.Second)
		putBatch(t, bp, append(cs, cs[1])) // and one is in the batch twice
		putBatch(t, bp, cs[:5])            // idempotent
		mt := modTimes(t, s)
		for _, c := range cs {
			checkGet(t, s, c)
			if mt[c.hash].Before(before) {
				t.Errorf("%s: chunk %s has modification time %v, before the batch (%v)", b.name, c.hash, mt[c.hash], before)
			}
		}
		all = append(all, cs...)
		checkWalk(t, s, all)
	}
}

// testPutBatchConcurrent runs batches from 8 goroutines, on chunks they
// share and chunks of their own. Run it with -race.
func testPutBatchConcurrent(t *testing.T, s dfms.ChunkStore) {
	bp := batchPutter(t, s)
	const workers = 8
	shared := makeChunks(t, 5000, 6, 8<<10)
	all := append([]chunk(nil), shared...)
	own := make([][]chunk, workers)
	for w := range own {
		own[w] = makeChunks(t, uint64(6000+10*w), 4, 4<<10+w)
		all = append(all, own[w]...)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			b := batch(append(append([]chunk(nil), own[w]...), shared[w%3:]...))
			if err := bp.PutBatch(context.Background(), b); err != nil {
				t.Errorf("worker %d: PutBatch: %v", w, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, c := range all {
		checkGet(t, s, c)
	}
	checkWalk(t, s, all)
}

// testPutBatchCancelled checks that PutBatch fails on a cancelled context,
// with an error that says so, and that the store still works after it.
func testPutBatchCancelled(t *testing.T, s dfms.ChunkStore) {
	bp := batchPutter(t, s)
	cs := makeChunks(t, 7000, 3, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := bp.PutBatch(ctx, batch(cs)); !errors.Is(err, context.Canceled) {
		t.Errorf("PutBatch with a cancelled context: got error %v, want one wrapping %v", err, context.Canceled)
	}
	putBatch(t, bp, cs)
	for _, c := range cs {
		checkGet(t, s, c)
	}
	checkWalk(t, s, cs)
}

// tempRemover is implemented by stores that write a chunk through a
// temporary file, which a write that dies leaves behind (the disk store);
// the garbage collector removes those once they are old.
type tempRemover interface {
	RemoveStaleTemp(ctx context.Context, cutoff time.Time) (int, error)
}

// testRemoveStaleTemp checks what RemoveStaleTemp must do on any store: it
// never takes a chunk, however late the cutoff, finds nothing to remove
// where every write completed, and fails on a cancelled context. Where a
// backend leaves its temporary files, and so which ones it removes, is the
// backend's own test.
func testRemoveStaleTemp(t *testing.T, s dfms.ChunkStore) {
	tr, ok := s.(tempRemover)
	if !ok {
		t.Skipf("%T has no RemoveStaleTemp: it leaves no temporary files behind", s)
	}
	ctx := context.Background()
	cs := makeChunks(t, 8000, 5, 3000)
	putAll(t, s, cs)
	if bp, ok := s.(dfms.BatchPutter); ok {
		more := makeChunks(t, 8100, 5, 3000)
		putBatch(t, bp, more)
		cs = append(cs, more...)
	}
	for _, cutoff := range []time.Time{time.Now().Add(-time.Hour), time.Now().Add(time.Hour)} {
		if n, err := tr.RemoveStaleTemp(ctx, cutoff); n != 0 || err != nil {
			t.Errorf("RemoveStaleTemp(%v) after completed writes: got %d, %v; want 0, nil", time.Until(cutoff).Round(time.Minute), n, err)
		}
	}
	for _, c := range cs {
		checkGet(t, s, c)
	}
	checkWalk(t, s, cs)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tr.RemoveStaleTemp(cctx, time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("RemoveStaleTemp with a cancelled context: got error %v, want one wrapping %v", err, context.Canceled)
	}
	checkWalk(t, s, cs)
}
