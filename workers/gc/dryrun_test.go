package gc_test

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/gc"
)

// storeState is what a collection may change: the chunks a store holds
// (hash → size), the rows of the chunks, whether the upload and the
// temporary files are still there.
type storeState struct {
	chunks   map[dfms.Hash]int64
	rows     map[dfms.Hash]meta.Chunk
	upload   error
	tempLeft int
}

func (e *env) state(t *testing.T, uploadID string, temps []string, hashes []dfms.Hash) storeState {
	t.Helper()
	s := storeState{chunks: map[dfms.Hash]int64{}, rows: map[dfms.Hash]meta.Chunk{}}
	if err := e.store.Walk(ctx, func(ci dfms.ChunkInfo) error { s.chunks[ci.Hash] = ci.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, h := range hashes {
		if c, err := e.meta.GetChunk(ctx, h); err == nil {
			s.rows[h] = c
		}
	}
	_, s.upload = e.meta.GetUpload(ctx, e.user.ID, uploadID)
	for _, p := range temps {
		if _, err := os.Stat(p); err == nil {
			s.tempLeft++
		}
	}
	return s
}

// A dry run reports every kind of garbage a real run would collect, and
// changes nothing: the same chunks, rows, upload and temporary files stay,
// and it runs while another collector holds the lock (it takes none). A
// real run then deletes exactly what the dry run counted.
func TestDryRunDeletesNothingAndCountsWhatRunDeletes(t *testing.T) {
	e := newEnv(t)
	// Garbage of every kind: a purged file's chunks (a part shared with a
	// live file stays), a chunk without a row, an upload that expires, a
	// temporary file of a write that died.
	shared := testkit.RandBytes(30, 100<<10)
	gone := e.write(t, "gone", append(testkit.RandBytes(31, 200<<10), shared...))
	live := e.write(t, "live", shared)
	if err := e.svc.Delete(ctx, e.user.ID, gone.Entry.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Purge(ctx, e.user.ID, gone.Entry.ID); err != nil {
		t.Fatal(err)
	}
	orphan := testkit.RandBytes(32, 5000)
	if err := e.store.Put(ctx, dfms.Sum(orphan), orphan); err != nil {
		t.Fatal(err)
	}
	up, err := e.meta.CreateUpload(ctx, meta.Upload{Owner: e.user.ID, Parent: e.user.Root, Name: "u", PartSize: 4,
		ExpiresAt: time.Now().Add(time.Minute)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []dfms.Hash
	e.store.Walk(ctx, func(ci dfms.ChunkInfo) error { hashes = append(hashes, ci.Hash); return nil })
	x := hashes[0].String()
	temp := filepath.Join(e.store.String()[len("file://"):], x[:2], x[2:4], ".tmp-died")
	if err := os.WriteFile(temp, orphan[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(temp, long, long); err != nil {
		t.Fatal(err)
	}

	later := time.Now().Add(3 * time.Hour) // past every grace period
	c := &gc.Collector{Meta: e.meta, Chunks: e.store, Grace: time.Hour, Now: func() time.Time { return later }}
	before := e.state(t, up.ID, []string{temp}, hashes)
	_, unlock, err := e.meta.Lock(ctx, "dfms-gc") // another collector's
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.DryRun(ctx)
	unlock()
	if err != nil {
		t.Fatalf("dry run while another collector holds the lock: %v", err)
	}
	after := e.state(t, up.ID, []string{temp}, hashes)
	if !maps.Equal(before.chunks, after.chunks) || !maps.Equal(before.rows, after.rows) ||
		(before.upload == nil) != (after.upload == nil) || before.tempLeft != after.tempLeft {
		t.Fatalf("the dry run changed the store:\nbefore %+v\nafter  %+v", before, after)
	}
	if plan.Chunks == 0 || plan.Bytes == 0 || plan.Orphans != 1 || plan.OrphanBytes != int64(len(orphan)) ||
		plan.ExpiredUploads != 1 || plan.TempFiles != 1 {
		t.Fatalf("dry run: got %+v, want purged chunks with their bytes, 1 orphan of %d bytes, 1 expired upload, 1 temporary file",
			plan, len(orphan))
	}
	if c.Totals() != (gc.Stats{}) {
		t.Errorf("the dry run counts in the collector's totals: %+v", c.Totals())
	}

	got, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != plan {
		t.Fatalf("the run deleted %+v, the dry run before it reported %+v", got, plan)
	}
	end := e.state(t, up.ID, []string{temp}, hashes)
	if n := len(before.chunks) - len(end.chunks); n != plan.Chunks+plan.Orphans {
		t.Errorf("the store lost %d chunks, the dry run reported %d + %d orphans", n, plan.Chunks, plan.Orphans)
	}
	var out bytes.Buffer
	if _, err := e.svc.ReadFile(ctx, e.user.ID, live.Entry.ID, &out); err != nil || !bytes.Equal(out.Bytes(), shared) {
		t.Fatalf("the live file after the run: %v (%d bytes, want %d)", err, out.Len(), len(shared))
	}
}
