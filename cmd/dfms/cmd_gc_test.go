package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store/disk"
)

// gcResult is the JSON `dfms gc --json` prints.
type gcResult struct {
	DryRun      bool  `json:"dry_run"`
	Chunks      int   `json:"chunks"`
	Orphans     int   `json:"orphans"`
	OrphanBytes int64 `json:"orphan_bytes"`
}

// `dfms gc` on the embedded default: --dry-run reports an old chunk that
// no metadata row knows and leaves it; the collection then deletes it and
// reports the same; a second collection finds nothing.
func TestGCCommand(t *testing.T) {
	env(t)
	data := t.TempDir()
	gcJSON := func(args ...string) gcResult {
		t.Helper()
		var r gcResult
		out := must(t, append([]string{"gc", "--data", data, "--json", "--log-level", "warn"}, args...)...)
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("dfms gc %v: %v in %q", args, err, out)
		}
		return r
	}
	if r := gcJSON("--dry-run"); r != (gcResult{DryRun: true}) {
		t.Fatalf("dry run on an empty store: got %+v, want nothing", r)
	}
	// An orphan from a write that died two days ago.
	st, err := disk.Open(filepath.Join(data, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	orphan := []byte(strings.Repeat("orphan ", 700))
	h := dfms.Sum(orphan)
	if err := st.Put(context.Background(), h, orphan); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var path string
	filepath.WalkDir(filepath.Join(data, "chunks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == h.String() {
			path = p
		}
		return nil
	})
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}

	want := gcResult{DryRun: true, Orphans: 1, OrphanBytes: int64(len(orphan))}
	if r := gcJSON("--dry-run"); r != want {
		t.Fatalf("dry run: got %+v, want %+v", r, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the orphan after the dry run: %v, want it kept", err)
	}
	human := must(t, "gc", "--data", data, "--dry-run", "--log-level", "warn")
	if !strings.Contains(human, "would delete") || !strings.Contains(human, "1 orphaned chunks") {
		t.Errorf("human dry-run output:\n%s\nwant 'would delete' and '1 orphaned chunks'", human)
	}
	want.DryRun = false
	if r := gcJSON(); r != want {
		t.Fatalf("collection: got %+v, want %+v", r, want)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the orphan after the collection: %v, want it deleted", err)
	}
	if r := gcJSON(); r != (gcResult{}) {
		t.Fatalf("second collection: got %+v, want nothing", r)
	}
	if code, _, errs := dfmsRun(t, "gc", "--data", data, "--dry-run=maybe"); code != 2 {
		t.Errorf("dfms gc --dry-run=maybe: exit %d (%s), want 2", code, errs)
	}
	if code, _, errs := dfmsRun(t, "gc", "--data", data, "extra"); code != 2 {
		t.Errorf("dfms gc extra: exit %d (%s), want 2", code, errs)
	}
}
