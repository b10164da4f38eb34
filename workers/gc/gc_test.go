package gc_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/gc"
)

var ctx = context.Background()

type env struct {
	svc   *files.Service
	meta  meta.Store
	store *disk.Disk
	user  meta.User
}

// small chunks keep the race test fast while exercising many chunks.
var smallChunks = chunking.Params{Algorithm: chunking.Gear, Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}

func newEnv(t *testing.T) *env {
	t.Helper()
	return envOf(testkit.NewStack(t, testkit.Options{Files: files.Options{Chunking: smallChunks}}))
}

// envOf is the env of a stack on a disk chunk store.
func envOf(s *testkit.Stack) *env {
	return &env{svc: s.Files, meta: s.Meta, store: s.Disk, user: s.User}
}

func (e *env) write(t *testing.T, name string, data []byte) files.WriteResult {
	t.Helper()
	res, err := e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Parent: e.user.Root, Name: name, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) count(t *testing.T) (n int) {
	t.Helper()
	e.store.Walk(ctx, func(dfms.ChunkInfo) error { n++; return nil })
	return n
}

func TestSweepAfterGracePeriod(t *testing.T) {
	e := newEnv(t)
	shared := testkit.RandBytes(1, 200<<10)
	a := e.write(t, "a", append(testkit.RandBytes(2, 300<<10), shared...))
	b := e.write(t, "b", shared)
	total := e.count(t)
	if err := e.svc.Delete(ctx, e.user.ID, a.Entry.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Purge(ctx, e.user.ID, a.Entry.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := &gc.Collector{Meta: e.meta, Chunks: e.store, Grace: time.Hour, Now: func() time.Time { return now }}
	st, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunks != 0 || e.count(t) != total {
		t.Fatalf("deleted %d chunks inside the grace period", st.Chunks)
	}
	now = now.Add(2 * time.Hour)
	st, err = c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunks == 0 || e.count(t) != total-st.Chunks {
		t.Fatalf("swept %d chunks; store went from %d to %d", st.Chunks, total, e.count(t))
	}
	var out bytes.Buffer
	if _, err := e.svc.ReadFile(ctx, e.user.ID, b.Entry.ID, &out); err != nil || !bytes.Equal(out.Bytes(), shared) {
		t.Fatalf("b after GC: %v", err)
	}
	// Every remaining chunk is referenced.
	e.store.Walk(ctx, func(ci dfms.ChunkInfo) error {
		h := ci.Hash
		if c, err := e.meta.GetChunk(ctx, h); err != nil || c.Refs == 0 {
			t.Errorf("chunk %s left with %+v, %v", h, c, err)
		}
		return nil
	})
}

func TestOrphansAndExpiredUploads(t *testing.T) {
	e := newEnv(t)
	orphan := testkit.RandBytes(3, 1000)
	h := dfms.Sum(orphan)
	if err := e.store.Put(ctx, h, orphan); err != nil {
		t.Fatal(err)
	}
	m := dfms.Manifest{Chunks: []dfms.ChunkRef{{Hash: dfms.Sum([]byte("part")), Size: 4}}}
	if err := e.store.Put(ctx, m.Chunks[0].Hash, []byte("part")); err != nil {
		t.Fatal(err)
	}
	if err := e.meta.ReserveChunks(ctx, m.Chunks); err != nil {
		t.Fatal(err)
	}
	if err := e.meta.AddChunks(ctx, m.Chunks); err != nil {
		t.Fatal(err)
	}
	up, err := e.meta.CreateUpload(ctx, meta.Upload{Owner: e.user.ID, Parent: e.user.Root, Name: "u", PartSize: 4, ExpiresAt: time.Now().Add(time.Minute)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.meta.PutPart(ctx, e.user.ID, up.ID, 1, 4, dfms.Hash{}, m); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := &gc.Collector{Meta: e.meta, Chunks: e.store, Grace: time.Hour, Now: func() time.Time { return now }}
	if st, err := c.Run(ctx); err != nil || st.Orphans != 0 || st.ExpiredUploads != 0 {
		t.Fatalf("first run: %+v, %v", st, err)
	}
	now = now.Add(30 * time.Minute)
	if st, _ := c.Run(ctx); st.Orphans != 0 || st.ExpiredUploads != 1 {
		t.Fatalf("second run: %+v; want the upload expired and the orphan kept", st)
	}
	now = now.Add(2 * time.Hour)
	st, err := c.Run(ctx)
	if err != nil || st.Orphans != 1 || st.Chunks != 1 {
		t.Fatalf("third run: %+v, %v; want the orphan and the expired part's chunk collected", st, err)
	}
	if n := e.count(t); n != 0 {
		t.Fatalf("%d chunks left", n)
	}
}

// GC racing uploads of the same content, with no grace period at all: a
// write either fails cleanly (kind Conflict, nothing committed) or
// commits a version whose every chunk stays readable.
func TestGCRacingUploads(t *testing.T) {
	e := newEnv(t)
	contents := [][]byte{testkit.RandBytes(10, 256<<10), testkit.RandBytes(11, 256<<10)}
	// No grace at all for unreferenced chunks: the race is as tight as it
	// gets. Row-less chunks keep a grace period: they are uploads in flight.
	c := &gc.Collector{Meta: e.meta, Chunks: e.store, Grace: 0, OrphanGrace: time.Hour}
	stop := make(chan struct{})
	var sweeps, deleted atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			st, err := c.Run(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			sweeps.Add(1)
			deleted.Add(int64(st.Chunks))
		}
	})
	var committed, conflicts atomic.Int64
	var kept sync.Map // name -> content
	var writers sync.WaitGroup
	for w := range 3 {
		writers.Go(func() {
			// Run until the sweeper has deleted shared chunks a few times
			// (bounded, so the test always ends).
			for i := 0; i < 300 && (i < 15 || deleted.Load() < 5); i++ {
				name := fmt.Sprint("w", w, "-", i)
				// Most writes upload shared content and are purged at once,
				// so its chunks keep dropping to zero references while other
				// writers upload them again; every fifth is unique and kept.
				data, keep := contents[(w+i)%2], i%5 == 4
				if keep {
					data = testkit.RandBytes(uint64(1000+100*w+i), 64<<10)
				}
				res, err := e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Parent: e.user.Root, Name: name, Body: bytes.NewReader(data)})
				if dfms.Is(err, dfms.Conflict) {
					conflicts.Add(1)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				committed.Add(1)
				// Read it back at once: the chunks must be there.
				var out bytes.Buffer
				if _, err := e.svc.ReadFile(ctx, e.user.ID, res.Entry.ID, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
					t.Errorf("%s right after commit: %v", name, err)
					return
				}
				if keep {
					kept.Store(name, data)
					continue
				}
				if err := e.svc.Delete(ctx, e.user.ID, res.Entry.ID); err != nil {
					t.Error(err)
					return
				}
				if _, err := e.svc.Purge(ctx, e.user.ID, res.Entry.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	t.Logf("%d commits, %d clean conflicts, %d sweeps deleted %d chunks", committed.Load(), conflicts.Load(), sweeps.Load(), deleted.Load())
	if deleted.Load() == 0 {
		t.Fatal("GC never deleted anything: the race was not exercised")
	}
	// After a final sweep, every kept file reads back exactly (each chunk
	// is re-hashed on the way).
	if _, err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	kept.Range(func(k, v any) bool {
		ent, err := e.svc.Lookup(ctx, e.user.ID, e.user.Root, k.(string))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := e.svc.ReadFile(ctx, e.user.ID, ent.ID, &out); err != nil || !bytes.Equal(out.Bytes(), v.([]byte)) {
			t.Fatalf("%s after the race: %v", k, err)
		}
		return true
	})
}
