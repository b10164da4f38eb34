package files_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

// recordingMeta is a metadata store that notes which of the chunk
// methods a write calls, in order, each marked "(lazy)" if it may become
// durable later (meta.WithLazyDurability).
type recordingMeta struct {
	meta.Store
	mu    sync.Mutex
	calls []string
}

func (r *recordingMeta) note(ctx context.Context, name string) {
	if meta.LazyDurability(ctx) {
		name += " (lazy)"
	}
	r.mu.Lock()
	r.calls = append(r.calls, name)
	r.mu.Unlock()
}

func (r *recordingMeta) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func (r *recordingMeta) MissingChunks(ctx context.Context, hs []dfms.Hash) ([]dfms.Hash, error) {
	r.note(ctx, "MissingChunks")
	return r.Store.MissingChunks(ctx, hs)
}

func (r *recordingMeta) UnownedChunks(ctx context.Context, owner dfms.UserID, hs []dfms.Hash) ([]dfms.Hash, error) {
	r.note(ctx, "UnownedChunks")
	return r.Store.UnownedChunks(ctx, owner, hs)
}

func (r *recordingMeta) ReserveChunks(ctx context.Context, refs []dfms.ChunkRef) error {
	r.note(ctx, "ReserveChunks")
	return r.Store.ReserveChunks(ctx, refs)
}

func (r *recordingMeta) AddChunks(ctx context.Context, refs []dfms.ChunkRef) error {
	r.note(ctx, "AddChunks")
	return r.Store.AddChunks(ctx, refs)
}

func (r *recordingMeta) KeepChunks(ctx context.Context, hs []dfms.Hash) error {
	r.note(ctx, "KeepChunks")
	return r.Store.KeepChunks(ctx, hs)
}

func (r *recordingMeta) OwnChunks(ctx context.Context, owner dfms.UserID, hs []dfms.Hash) error {
	r.note(ctx, "OwnChunks")
	return r.Store.OwnChunks(ctx, owner, hs)
}

func (r *recordingMeta) HoldChunks(ctx context.Context, owner dfms.UserID, refs []dfms.ChunkRef, hold time.Duration) error {
	r.note(ctx, "HoldChunks")
	return r.Store.HoldChunks(ctx, owner, refs, hold)
}

func (r *recordingMeta) CommitVersion(ctx context.Context, c meta.CommitRequest) (dfms.Entry, dfms.Version, error) {
	r.note(ctx, "CommitVersion")
	return r.Store.CommitVersion(ctx, c)
}

// countingStore is a chunk store that counts the bytes it is given to
// store (through Put, or PutBatch where the store takes batches).
type countingStore struct {
	dfms.ChunkStore
	mu    sync.Mutex
	bytes int64
}

func (c *countingStore) add(n int) {
	c.mu.Lock()
	c.bytes += int64(n)
	c.mu.Unlock()
}

func (c *countingStore) take() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.bytes
	c.bytes = 0
	return n
}

func (c *countingStore) Put(ctx context.Context, h dfms.Hash, data []byte) error {
	c.add(len(data))
	return c.ChunkStore.Put(ctx, h, data)
}

func (c *countingStore) PutBatch(ctx context.Context, cs []dfms.ChunkData) error {
	for _, d := range cs {
		c.add(len(d.Data))
	}
	if bp, ok := c.ChunkStore.(dfms.BatchPutter); ok {
		return bp.PutBatch(ctx, cs)
	}
	for _, d := range cs {
		if err := c.ChunkStore.Put(ctx, d.Hash, d.Data); err != nil {
			return err
		}
	}
	return nil
}

// A user who sends a chunk it does not possess gets it stored with the
// same work whether or not another user stores it already: the bytes go
// to the chunk store and the metadata store is asked the same questions,
// so that the answer's timing does not tell what others store.
func TestPutChunkWorkIndependentOfOthers(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			var rec *recordingMeta
			var cs *countingStore
			svc := newEnv(t, b, testkit.Options{
				NoUser:     true,
				WrapMeta:   func(m meta.Store) meta.Store { rec = &recordingMeta{Store: m}; return rec },
				WrapChunks: func(c dfms.ChunkStore) dfms.ChunkStore { cs = &countingStore{ChunkStore: c}; return cs },
			}).svc
			m := rec.Store // unrecorded
			alice := testkit.Must(m.CreateUser(ctx, meta.User{Email: "alice@example.com", Active: true}))(t)
			bob := testkit.Must(m.CreateUser(ctx, meta.User{Email: "bob@example.com", Active: true}))(t)
			theirs, nobodys := testkit.RandBytes(40, 5000), testkit.RandBytes(41, 5000)
			if _, err := svc.PutChunk(ctx, alice.ID, dfms.Sum(theirs), theirs); err != nil {
				t.Fatal(err)
			}
			put := func(data []byte) (calls []string, stored int64) {
				t.Helper()
				rec.take()
				cs.take()
				isNew, err := svc.PutChunk(ctx, bob.ID, dfms.Sum(data), data)
				if err != nil || !isNew {
					t.Fatalf("PutChunk: new %v, %v; want a new chunk for bob", isNew, err)
				}
				return rec.take(), cs.take()
			}
			callsNew, storedNew := put(nobodys)
			callsDup, storedDup := put(theirs)
			if !slices.Equal(callsNew, callsDup) || storedNew != storedDup || storedDup != int64(len(theirs)) {
				t.Fatalf("a chunk nobody stores: %v and %d bytes stored; one another user stores: %v and %d bytes; want the same, %d bytes",
					callsNew, storedNew, callsDup, storedDup, len(theirs))
			}
			if un := testkit.Must(m.UnownedChunks(ctx, bob.ID, []dfms.Hash{dfms.Sum(theirs), dfms.Sum(nobodys)}))(t); len(un) != 0 {
				t.Fatalf("bob does not possess the chunks he sent: %v", un)
			}
			// What the caller possesses already may cost less: that tells
			// it nothing about others.
			rec.take()
			if isNew, err := svc.PutChunk(ctx, bob.ID, dfms.Sum(theirs), theirs); err != nil || isNew {
				t.Fatalf("PutChunk again: new %v, %v; want not new", isNew, err)
			}
		})
	}
}
