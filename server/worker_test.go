package server

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement/store"
)

// serveWorker runs w on a loopback listener until the test ends, and
// returns the base URL of its ops endpoints.
func serveWorker(t *testing.T, w *Worker) string { return serveOn(t, "Worker.Serve", w.Serve) }

// metricOf returns the value of an unlabelled metric, or -1.
func metricOf(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			var f float64
			if err := json.Unmarshal([]byte(v), &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// A gateway serves the API but runs no collection of its own: a purged
// file's chunks stay until a `dfms worker gc` (same configuration)
// collects them. The worker answers /health with its role, /ready with
// the backends it needs, and /metrics with what it collected.
func TestGatewayLeavesGCToTheWorker(t *testing.T) {
	cfg := testConfig(t)
	cfg.Admin.Email, cfg.Admin.Password = "admin@example.com", "a long password"
	cfg.GC.Interval, cfg.GC.Grace = 50*time.Millisecond, time.Second
	ctx := context.Background()
	gw := testkit.Must(NewGateway(ctx, cfg, quiet))(t)
	t.Cleanup(func() { gw.Close() })
	gwURL := serve(t, gw)

	kept := filesWrite(t, gw)
	keptData := strings.Repeat("kept ", 5000)
	kept.Body = strings.NewReader(keptData)
	kres := testkit.Must(gw.Files().Write(ctx, kept))(t)
	doomed := filesWrite(t, gw)
	doomed.Name, doomed.Body = "doomed", strings.NewReader(strings.Repeat("doomed ", 9000))
	dres := testkit.Must(gw.Files().Write(ctx, doomed))(t)
	if err := gw.Files().Delete(ctx, doomed.Owner, dres.Entry.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Files().Purge(ctx, doomed.Owner, dres.Entry.ID); err != nil {
		t.Fatal(err)
	}
	chunks := testkit.Must(store.Open(ctx, cfg.Chunks.URL))(t)
	defer chunks.Close()
	count := func() (n int) {
		chunks.Walk(ctx, func(dfms.ChunkInfo) error { n++; return nil })
		return n
	}
	before := count()

	// Many of its intervals and grace periods later, the gateway has run
	// no collection.
	time.Sleep(1500 * time.Millisecond)
	if runs := metricOf(t, gwURL, "dfms_gc_runs_total"); runs != 0 {
		t.Fatalf("the gateway ran %v collections, want none", runs)
	}
	if n := count(); n != before {
		t.Fatalf("%d chunks became %d with only the gateway running", before, n)
	}

	cfg.Worker.Addr = "127.0.0.1:0"
	w := testkit.Must(NewWorker(ctx, "gc", cfg, quiet))(t)
	wURL := serveWorker(t, w)
	code, body := get(t, wURL+"/health")
	if code != 200 || !strings.Contains(body, `"role":"worker gc"`) {
		t.Errorf("worker /health: got %d %s, want 200 with role worker gc", code, body)
	}
	code, body = get(t, wURL+"/ready")
	if code != 200 || !strings.Contains(body, `"metadata":"ok"`) || !strings.Contains(body, `"chunks":"ok"`) {
		t.Errorf("worker /ready: got %d %s, want 200 with metadata and chunks ok", code, body)
	}
	testkit.Eventually(t, 30*time.Second, func() bool { return count() < before }, "the worker collecting the purged file's chunks")
	testkit.Eventually(t, 30*time.Second, func() bool { return metricOf(t, wURL, "dfms_gc_chunks_deleted_total") > 0 },
		"the worker's metrics counting the collection")
	var out bytes.Buffer
	if _, err := gw.Files().ReadFile(ctx, kept.Owner, kres.Entry.ID, &out); err != nil || out.String() != keptData {
		t.Fatalf("the kept file after the collection: %v (%d bytes, want %d)", err, out.Len(), len(keptData))
	}
}
