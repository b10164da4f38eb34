package gc_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/workers/gc"
)

// A write that dies halfway leaves a temporary file in the disk store
// (".tmp-…" beside the chunks). The collector deletes those older than the
// orphan grace period; younger ones may belong to a write under way.
func TestCollectsStaleTempFiles(t *testing.T) {
	e := newEnv(t)
	data := testkit.RandBytes(20, 3000)
	res := e.write(t, "kept", data)
	var chunk dfms.Hash
	e.store.Walk(ctx, func(ci dfms.ChunkInfo) error { chunk = ci.Hash; return nil })
	dir := e.store.String()[len("file://"):]
	x := chunk.String()
	shard := filepath.Join(dir, x[:2], x[2:4])
	old, young := filepath.Join(shard, ".tmp-died-long-ago"), filepath.Join(shard, ".tmp-being-written")
	for _, name := range []string{old, young} {
		if err := os.WriteFile(name, data[:100], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}

	c := &gc.Collector{Meta: e.meta, Chunks: e.store, Grace: time.Hour}
	st, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("stale temporary file: %v, want it deleted", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("young temporary file: %v, want it kept", err)
	}
	if st.TempFiles != 1 || c.Totals().TempFiles != 1 {
		t.Fatalf("the run reports %d temporary files deleted (%d in all), want 1", st.TempFiles, c.Totals().TempFiles)
	}
	var out bytes.Buffer
	if _, err := e.svc.ReadFile(ctx, e.user.ID, res.Entry.ID, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("the file after the collection: %v", err)
	}
}
