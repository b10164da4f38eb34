package vfs

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/integration/testkit"
)

// gatedBackend answers that every chunk is missing and holds each
// PutChunks until the test releases it, in the order they arrived.
type gatedBackend struct {
	Backend
	mu    sync.Mutex
	gates []chan struct{}
}

func (b *gatedBackend) Missing(_ context.Context, hs []dfms.Hash) ([]dfms.Hash, error) {
	return hs, nil
}

func (b *gatedBackend) PutChunks(ctx context.Context, _ []dfms.ChunkData) error {
	g := make(chan struct{})
	b.mu.Lock()
	b.gates = append(b.gates, g)
	b.mu.Unlock()
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *gatedBackend) calls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.gates)
}

func (b *gatedBackend) release(i int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.gates[i])
}

// drain lets every upload of f finish, those started meanwhile too, and
// waits for its workers: whatever the test did, nothing is left running.
func (b *gatedBackend) drain(f *openFile) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			b.mu.Lock()
			for _, g := range b.gates {
				select {
				case <-g:
				default:
					close(g)
				}
			}
			b.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	f.fsys.workers.Wait()
	close(done)
}

// newPrecutTestFile returns an open file whose stage holds size written
// bytes (a sparse file: zeros), on an FS over b.
func newPrecutTestFile(t *testing.T, b Backend, size int64) *openFile {
	t.Helper()
	// A memory cache too small for any chunk: what the test measures is
	// what the pre-cut itself keeps.
	fsys := &FS{b: b, log: slog.New(slog.DiscardHandler), cache: newChunkCache(1, nil, false, 8),
		open: map[dfms.EntryID]*openFile{}, cachedVersion: map[dfms.EntryID]int64{}}
	fsys.chunkP = chunking.Params{Algorithm: chunking.Gear, Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
	stage, err := os.CreateTemp(t.TempDir(), "stage")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stage.Close() })
	if err := stage.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return &openFile{fsys: fsys, id: 1, init: true, size: size, changed: true, stage: stage,
		dirty: extents{{0, size}}}
}

// notePrefixWrite tells f of a write whose lowest changed offset is off,
// holding f.mu as a write does.
func notePrefixWrite(f *openFile, off int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notePrefixWriteLocked(off)
}

// heapNow returns the bytes of live heap objects, after a collection.
func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func waitUpTo(d time.Duration, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPrecutRoundsNotRetained: a round that is recorded must not
// stay reachable (its 32 MiB read buffer with it) just because later
// rounds were started while it was still uploading (a writer faster than
// the network would otherwise keep all it wrote in memory until the
// commit).
func TestPrecutRoundsNotRetained(t *testing.T) {
	base := heapNow()
	b := &gatedBackend{}
	f := newPrecutTestFile(t, b, 5*precutRound)
	defer b.drain(f)
	notePrefixWrite(f, f.size)

	// As many rounds uploading as allowed, then the first two recorded:
	// the worker starts two more.
	testkit.Eventually(t, 60*time.Second, func() bool { return b.calls() >= precutSends }, "the first uploads")
	b.release(0)
	testkit.Eventually(t, 60*time.Second, func() bool { return b.calls() >= precutSends+1 }, "one more upload")
	b.release(1)
	testkit.Eventually(t, 60*time.Second, func() bool { return b.calls() >= precutSends+2 }, "two more uploads")

	f.pmu.Lock()
	end, active := f.pre.end, f.pre.active
	f.pmu.Unlock()
	if end == 0 {
		t.Fatal("no round was recorded")
	}
	// What the rounds in flight need: their reads of precutRound bytes.
	// Anything more is rounds recorded already and kept alive.
	need := uint64(active) * precutRound
	heap := heapNow()
	heap -= min(base, heap)
	t.Logf("pre-cut end %d MiB, %d rounds in flight; heap grew by %d MiB", end>>20, active, heap>>20)
	if heap > need+precutRound/2 {
		t.Errorf("heap grew by %d MiB while the %d rounds in flight need %d MiB: recorded rounds are kept alive",
			heap>>20, active, need>>20)
	}
}

// TestPrecutDiscardBoundsUploads: a writer that keeps touching the
// start of a long file it writes (a header updated as it goes) discards
// the pre-cut each time. The uploads of a discarded generation go on in
// the background, and the worker that started them exits at once, so the
// next write starts a new worker from offset 0: the bound of precutSends
// uploads (and their 32 MiB reads) holds per generation only, and the
// rounds in flight grow with every discard while the network is slow.
func TestPrecutDiscardBoundsUploads(t *testing.T) {
	b := &gatedBackend{}
	f := newPrecutTestFile(t, b, 4*precutRound)
	defer b.drain(f)
	const discards = 3
	for i := 0; i <= discards; i++ {
		// An append far from the start starts a worker (if none runs)...
		before := b.calls()
		notePrefixWrite(f, f.size)
		waitUpTo(500*time.Millisecond, func() bool { return b.calls() >= before+2 })
		t.Logf("round %d: %d uploads", i, b.calls())
		if i == discards {
			break
		}
		// ...a write of the header discards what it does.
		notePrefixWrite(f, 0)
		waitUpTo(time.Second, func() bool {
			f.pmu.Lock()
			defer f.pmu.Unlock()
			return !f.pre.busy
		})
	}
	time.Sleep(50 * time.Millisecond)
	if n := b.calls(); n > precutSends {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Errorf("%d pre-cut uploads in flight for one file after %d discards (bound %d); heap %d MiB",
			n, discards, precutSends, ms.HeapAlloc>>20)
	}
}

// TestPrecutCommitHonoursContext: a commit waits for the pre-cut
// rounds in flight holding f.mu, whatever its context says; with a
// backend that does not answer, fsync or Close with a deadline (and every
// read or stat of the file, which need f.mu) hang with it.
func TestPrecutCommitHonoursContext(t *testing.T) {
	b := &gatedBackend{}
	f := newPrecutTestFile(t, b, 2*precutRound)
	defer b.drain(f)
	notePrefixWrite(f, f.size)
	testkit.Eventually(t, 60*time.Second, func() bool { return b.calls() >= 1 }, "an upload in flight")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	ret := make(chan error, 1)
	go func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		_, err := f.cutLocked(ctx, nil, nil)
		ret <- err
	}()
	select {
	case <-ret:
	case <-time.After(3 * time.Second):
		t.Errorf("a commit whose context expired is still waiting (holding f.mu) for pre-cut uploads that do not end")
	}
}

// openBackend answers that every chunk is missing and stores nothing.
type openBackend struct{ Backend }

func (openBackend) Missing(_ context.Context, hs []dfms.Hash) ([]dfms.Hash, error) { return hs, nil }
func (openBackend) PutChunks(context.Context, []dfms.ChunkData) error              { return nil }

// TestPrecutCachePinsRounds: the chunks a round uploads go to the
// memory cache as they are, slices of the round's 32 MiB read; one chunk
// kept by the cache keeps the whole read alive, far beyond the cache's
// bound (which counts the chunk's own length).
func TestPrecutCachePinsRounds(t *testing.T) {
	base := heapNow()
	f := newPrecutTestFile(t, openBackend{}, 2*precutRound)
	// Room for one chunk of the largest size.
	f.fsys.cache = newChunkCache(int64(f.fsys.chunkP.Max), nil, false, 8)
	notePrefixWrite(f, f.size)
	testkit.Eventually(t, 60*time.Second, func() bool {
		f.pmu.Lock()
		defer f.pmu.Unlock()
		return !f.pre.busy && f.pre.active == 0
	}, "the worker")

	f.fsys.workers.Wait()
	f.mu.Lock()
	_, end := f.takePrecutLocked(context.Background())
	f.mu.Unlock()
	if end == 0 {
		t.Fatal("nothing was pre-cut")
	}
	heap := heapNow()
	heap -= min(base, heap)
	f.fsys.cache.mu.Lock()
	cached := f.fsys.cache.memBytes
	f.fsys.cache.mu.Unlock()
	t.Logf("pre-cut %d MiB; cache holds %d KiB; heap grew by %d MiB", end>>20, cached>>10, heap>>20)
	if heap > uint64(cached)+precutRound/2 {
		t.Errorf("heap grew by %d MiB with nothing in flight and %d KiB in the cache: the cached chunk keeps its round's read alive",
			heap>>20, cached>>10)
	}
}
