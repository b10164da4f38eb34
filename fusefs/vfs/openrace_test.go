package vfs_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// hooked runs hook once, after a GetAttr read its answer and before it
// returns it: the interleaving of an open whose GetAttr answered just
// before a commit of this mount.
type hooked struct {
	vfs.Backend
	hook atomic.Pointer[func()]
}

func (h *hooked) GetAttr(ctx context.Context, id dfms.EntryID) (vfs.Entry, error) {
	e, err := h.Backend.GetAttr(ctx, id)
	if f := h.hook.Swap(nil); f != nil {
		(*f)()
	}
	return e, err
}

func TestOpenRacingCommit(t *testing.T) {
	b := &hooked{Backend: newLocal(t)}
	fsys, _ := newFS(t, b)
	a := create(t, fsys, "f", "v1 content")
	w := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	w.Write(ctx, []byte("SAVED"), 0)
	// Another process opens the file; its GetAttr answers v1, then the
	// writer's close commits v2, then the open proceeds.
	flush := func() {
		if err := w.Flush(ctx); err != nil {
			t.Error(err)
		}
	}
	b.hook.Store(&flush)
	r := mustOpen(t, fsys, a.Ino, os.O_RDONLY)
	defer r.Release(ctx)
	if got := string(readAll(t, w)); got != "SAVEDntent" {
		t.Errorf("the writer's own handle reads %q after its commit, want %q", got, "SAVEDntent")
	}
	// The writer goes on (saves again): the commit is based on v1.
	w.Write(ctx, []byte("!"), 10)
	release(t, w)
	x, _ := fsys.Open(ctx, a.Ino, os.O_RDONLY)
	defer x.Release(ctx)
	if got := string(readAll(t, x)); got != "SAVEDntent!" {
		t.Fatalf("stored %q, want %q: the first save was lost", got, "SAVEDntent!")
	}
}

// TestOpenRacingRetire: an open whose entry was read before a commit of
// this mount reads the entry again, and meanwhile another open and
// release of the file must not retire the open state it is about to use.
// Before, it was retired: what this open wrote went to a state that was
// no longer the file's, the write-back never committed it, and the next
// open did not see it.
func TestOpenRacingRetire(t *testing.T) {
	b := &hooked{Backend: newLocal(t)}
	fsys := newWriteBackFS(t, b, t.TempDir())
	a := create(t, fsys, "f", "v1")
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	w := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	w.Write(ctx, []byte("v2"), 0)
	// The open below reads v1; then w's close is committed (v2) and its
	// open state retired; then, while the open reads the entry again,
	// another process opens and closes the file.
	other := func() {
		x, err := fsys.Open(ctx, a.Ino, os.O_RDONLY)
		if err != nil {
			t.Error(err)
			return
		}
		x.Release(ctx)
	}
	commit := func() {
		w.Flush(ctx)
		w.Release(ctx)
		testkit.Eventually(t, 2*time.Second, func() bool { return !fsys.HasOpenState(a.Ino) }, "the write-back commit of w's close")
		b.hook.Store(&other)
	}
	b.hook.Store(&commit)
	r := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	if b.hook.Load() != nil {
		t.Fatal("the open did not read the entry again")
	}
	writeAt(t, r, []byte("v3"), 0)
	r.Flush(ctx)
	r.Release(ctx)
	x := mustOpen(t, fsys, a.Ino, os.O_RDONLY)
	if got := string(readAll(t, x)); got != "v3" {
		t.Errorf("the next open reads %q, want the close before it (%q)", got, "v3")
	}
	x.Release(ctx)
	closeFS(t, fsys)
	vs, err := b.Versions(ctx, dfms.EntryID(a.Ino))
	if err != nil || len(vs) != 3 {
		t.Fatalf("%d versions (%v), want 3: v1, v2, v3", len(vs), err)
	}
}
