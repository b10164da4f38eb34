package api

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/server/auth"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta/sqlite"
	"github.com/dfms/dfms/workers/gc"
)

// The temporary files of dead writes that GC deletes are counted in
// dfms_gc_temp_files_removed_total, whether the run was asked for
// (POST /admin/gc) or the server's timer started it.
func TestMetricGCTempFiles(t *testing.T) {
	dir := t.TempDir()
	m, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	chunks, err := disk.Open(filepath.Join(dir, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := files.New(m, chunks, files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	collector := &gc.Collector{Meta: m, Chunks: chunks, Grace: time.Hour}
	a := New(Deps{Files: fs, Keys: keys, Auth: auth.New(m, keys, auth.Config{BcryptCost: 4}), GC: collector,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, Config{})
	hs := &harness{api: a, h: a.Handler()}

	metric := func() string {
		t.Helper()
		rec := hs.do("GET", "/metrics", nil)
		for line := range strings.Lines(rec.Body.String()) {
			if strings.HasPrefix(line, "dfms_gc_temp_files_removed_total ") {
				return strings.TrimSpace(line)
			}
		}
		t.Fatalf("no dfms_gc_temp_files_removed_total in /metrics:\n%s", rec.Body)
		return ""
	}
	if got := metric(); got != "dfms_gc_temp_files_removed_total 0" {
		t.Fatalf("before any run: %q", got)
	}
	shard := filepath.Join(dir, "chunks", "ab", "cd")
	if err := os.MkdirAll(shard, 0o700); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{".tmp-1", ".tmp-2"} {
		p := filepath.Join(shard, name)
		if err := os.WriteFile(p, []byte("half a chunk"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, long, long); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := collector.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := metric(); got != "dfms_gc_temp_files_removed_total 2" {
		t.Fatalf("after a run that removed 2: %q", got)
	}
}
