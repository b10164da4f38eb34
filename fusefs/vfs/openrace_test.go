package vfs_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
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
	w, err := fsys.Open(ctx, a.Ino, os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(ctx, []byte("SAVED"), 0)
	// Another process opens the file; its GetAttr answers v1, then the
	// writer's close commits v2, then the open proceeds.
	flush := func() {
		if err := w.Flush(ctx); err != nil {
			t.Error(err)
		}
	}
	b.hook.Store(&flush)
	r, err := fsys.Open(ctx, a.Ino, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx)
	if got := string(readAll(t, w)); got != "SAVEDntent" {
		t.Errorf("the writer's own handle reads %q after its commit, want %q", got, "SAVEDntent")
	}
	// The writer goes on (saves again): the commit is based on v1.
	w.Write(ctx, []byte("!"), 10)
	if err := w.Release(ctx); err != nil {
		t.Fatal(err)
	}
	x, _ := fsys.Open(ctx, a.Ino, os.O_RDONLY)
	defer x.Release(ctx)
	if got := string(readAll(t, x)); got != "SAVEDntent!" {
		t.Fatalf("stored %q, want %q: the first save was lost", got, "SAVEDntent!")
	}
}
