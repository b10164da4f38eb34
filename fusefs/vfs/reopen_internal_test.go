package vfs

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
)

// TestReopenSealsOnlyClosedChanges: an open of a file nobody holds seals
// the changes it finds (they were closed: each close is a version of its
// own), but not changes another open made after it took its reference
// and before it got to the file: those are still being written. Before,
// a reader's open could seal a writer's open(O_TRUNC), and the writer's
// first write then committed the empty file as a version.
func TestReopenSealsOnlyClosedChanges(t *testing.T) {
	ctx := context.Background()
	fsys := &FS{log: slog.New(slog.DiscardHandler), open: map[dfms.EntryID]*openFile{}, cachedVersion: map[dfms.EntryID]int64{}}
	e := Entry{ID: 1, Kind: dfms.KindFile, Live: true, Version: 1, Size: 5}
	refs := func(f *openFile) int {
		fsys.mu.Lock()
		defer fsys.mu.Unlock()
		return f.refs
	}

	// Closed changes, and nobody else: sealed.
	f := &openFile{fsys: fsys, id: 1, init: true, version: 1, size: 3, limit: 3, changed: true}
	fsys.open[1] = f
	if _, err := fsys.acquireEntry(ctx, e, false, false); err != nil {
		t.Fatal(err)
	}
	if !f.sealed {
		t.Error("changes closed before the open were not sealed")
	}

	// A reader takes its reference on a clean file; a writer opens it
	// with O_TRUNC and truncates before the reader gets to f.mu.
	f = &openFile{fsys: fsys, id: 1, init: true, version: 1, size: 5, limit: 5}
	fsys.open[1] = f
	f.mu.Lock()
	done := make(chan error)
	go func() {
		_, err := fsys.acquireEntry(ctx, e, false, false)
		done <- err
	}()
	testkit.Eventually(t, 60*time.Second, func() bool { return refs(f) == 1 }, "the reader's reference")
	fsys.mu.Lock()
	f.refs++ // the writer's
	fsys.mu.Unlock()
	f.size, f.limit, f.changed = 0, 0, true // its O_TRUNC
	f.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.sealed {
		t.Error("a reader's open sealed the changes of a writer that has not closed: its next write commits them as a version")
	}
}
