package gc_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/gc"
)

// These tests pin interleavings of writes and collections that once lost
// acknowledged data, with hooks that stop each side at the worst moment.

type hookMeta struct {
	meta.Store
	beforeAdd func()
}

func (h *hookMeta) AddChunks(ctx context.Context, refs []dfms.ChunkRef) error {
	if h.beforeAdd != nil {
		h.beforeAdd()
	}
	return h.Store.AddChunks(ctx, refs)
}

type hookStore struct {
	dfms.ChunkStore
	afterWalk    func()
	beforeDelete func()
}

func (s *hookStore) Walk(ctx context.Context, fn func(dfms.ChunkInfo) error) error {
	err := s.ChunkStore.Walk(ctx, fn)
	if s.afterWalk != nil {
		s.afterWalk()
	}
	return err
}

func (s *hookStore) Delete(ctx context.Context, h dfms.Hash) error {
	if s.beforeDelete != nil {
		s.beforeDelete()
	}
	return s.ChunkStore.Delete(ctx, h)
}

// An old orphan (bytes without a row) is being re-uploaded when the
// collector decides to delete it: the write's reservation must win.
func TestOrphanCollectionSparesAWriteInFlight(t *testing.T) {
	e := newEnv(t)
	data := testkit.RandBytes(7, 3000) // one chunk
	h := dfms.Sum(data)
	if err := e.store.Put(ctx, h, data); err != nil { // left by an earlier failed write
		t.Fatal(err)
	}
	walked, putDone, gcDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	gstore := &hookStore{ChunkStore: e.store, afterWalk: func() { close(walked); <-putDone }}
	later := time.Now().Add(3 * time.Hour)
	c := &gc.Collector{Meta: e.meta, Chunks: gstore, Grace: time.Hour, Now: func() time.Time { return later }}
	hm := &hookMeta{Store: e.meta, beforeAdd: func() { close(putDone); <-gcDone }}
	svc, err := files.New(hm, e.store, files.Options{Chunking: smallChunks})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(gcDone)
		if _, err := c.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	<-walked
	res, err := svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "f", Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	var out bytes.Buffer
	if _, err := e.svc.ReadFile(ctx, e.user.ID, res.Entry.ID, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("acknowledged write unreadable: %v", err)
	}
}

// Two collectors never run at once: the second is refused while the first
// is between marking a chunk and deleting it, so it cannot act on a stale
// candidate after a write stored the chunk again.
func TestCollectorsAreExclusive(t *testing.T) {
	e := newEnv(t)
	data := testkit.RandBytes(8, 3000)
	res := e.write(t, "old", data)
	if err := e.meta.Trash(ctx, e.user.ID, res.Entry.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.meta.Purge(ctx, e.user.ID, res.Entry.ID); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(3 * time.Hour)
	now := func() time.Time { return later }
	inDelete, release, bDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	storeB := &hookStore{ChunkStore: e.store, beforeDelete: func() { close(inDelete); <-release }}
	b := &gc.Collector{Meta: e.meta, Chunks: storeB, Grace: time.Hour, Now: now}
	a := &gc.Collector{Meta: e.meta, Chunks: e.store, Grace: time.Hour, Now: now}
	go func() {
		defer close(bDone)
		if st, err := b.Run(ctx); err != nil || st.Chunks != 1 {
			t.Errorf("collector B: %+v, %v", st, err)
		}
	}()
	<-inDelete
	if _, err := a.Run(ctx); !dfms.Is(err, dfms.Conflict) {
		t.Fatalf("a second collector ran beside the first: %v", err)
	}
	close(release)
	<-bDone
	w := e.write(t, "new", data)
	if _, err := e.svc.ReadFile(ctx, e.user.ID, w.Entry.ID, io.Discard); err != nil {
		t.Fatalf("acknowledged write unreadable: %v", err)
	}
	if st, err := a.Run(ctx); err != nil || st.Chunks != 0 {
		t.Fatalf("collector A afterwards: %+v, %v", st, err)
	}
}

type raceMeta struct {
	meta.Store
	svc  *files.Service
	part []byte
}

// CompleteUpload replaces part 1 just before the store completes.
func (r *raceMeta) CompleteUpload(ctx context.Context, owner dfms.UserID, id string, sum dfms.Hash, mime string, expect *dfms.Manifest) (dfms.Entry, dfms.Version, error) {
	if _, err := r.svc.WritePart(ctx, owner, id, 1, bytes.NewReader(r.part), 0); err != nil {
		return dfms.Entry{}, dfms.Version{}, err
	}
	return r.Store.CompleteUpload(ctx, owner, id, sum, mime, expect)
}

// A part replaced while an upload completes fails the completion rather
// than committing the new content under the old checksum.
func TestCompleteUploadRefusesAChangedPart(t *testing.T) {
	e := newEnv(t)
	rm := &raceMeta{Store: e.meta, part: testkit.RandBytes(10, 5000)}
	svc, err := files.New(rm, e.store, files.Options{Chunking: smallChunks})
	if err != nil {
		t.Fatal(err)
	}
	rm.svc = svc
	up, err := e.meta.CreateUpload(ctx, meta.Upload{Owner: e.user.ID, Parent: e.user.Root, Name: "mp", PartSize: 5000}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WritePart(ctx, e.user.ID, up.ID, 1, bytes.NewReader(testkit.RandBytes(9, 5000)), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CompleteUpload(ctx, e.user.ID, up.ID, "", 0); !dfms.Is(err, dfms.Conflict) {
		t.Fatalf("completion over a changed part: %v, want kind Conflict", err)
	}
	if _, err := e.meta.Lookup(ctx, e.user.ID, e.user.Root, "mp"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("a version was committed: %v", err)
	}
	// Completing again (no race now) records the right checksum.
	rm.part = nil
	ent, v, err := e.svc.CompleteUpload(ctx, e.user.ID, up.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := e.svc.ReadFile(ctx, e.user.ID, ent.ID, &out); err != nil || dfms.Sum(out.Bytes()) != v.SHA256 {
		t.Fatalf("checksum %s does not match the content (%v)", v.SHA256, err)
	}
}
