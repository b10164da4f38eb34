package vfs_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
)

// gated is a Local whose change feed answers only when let go (a feed
// behind by its latency, or a long poll stuck on a dead connection), and
// whose GetAttr of one entry can be held after it read the entry (a
// stat in flight).
type gated struct {
	heldFeed
	holdID  atomic.Int64
	held    chan struct{}
	release chan struct{}
}

func (g *gated) GetAttr(ctx context.Context, id dfms.EntryID) (vfs.Entry, error) {
	e, err := g.Backend.GetAttr(ctx, id)
	if id != 0 && int64(id) == g.holdID.Load() {
		g.holdID.Store(0)
		close(g.held)
		<-g.release
	}
	return e, err
}

// newGated returns the backend, an FS following its feed, and a create
// by another client.
func newGated(t *testing.T) (*gated, *vfs.FS, func(parent dfms.EntryID, name string)) {
	l, svc := newLocalParams(t, smallChunks)
	g := &gated{heldFeed: heldFeed{Backend: l, feed: make(chan struct{})}, held: make(chan struct{}), release: make(chan struct{})}
	fsys := watched(t, g)
	u := localUser(t, svc)
	other := func(parent dfms.EntryID, name string) {
		if _, err := svc.Meta().CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: parent, Name: name, Kind: dfms.KindFile, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	return g, fsys, other
}

// open(O_CREAT) without O_EXCL of a name another client created in a
// directory this mount made (the feed has not told yet) opens that file:
// the failed create ends the directory's completeness before the lookup.
func TestMetaCacheCreateExistingInCompleteDir(t *testing.T) {
	_, fsys, other := newGated(t)
	d, err := fsys.Mkdir(ctx, fsys.Root(), "d", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	other(dfms.EntryID(d.Ino), "x")
	_, h, err := fsys.Create(ctx, d.Ino, "x", os.O_RDWR|os.O_CREATE, 0o644, vfs.Caller{})
	if err != nil {
		t.Fatalf("open(d/x, O_CREAT) of an existing file: %v", err)
	}
	h.Release(ctx)
}

// A stat in flight across this mount's unlink or rename of an entry the
// cache does not hold by name does not put the old name back (the feed
// skips own changes, so nothing would correct it).
func TestMetaCacheStatRacingUnlink(t *testing.T) {
	for _, op := range []string{"unlink", "rename"} {
		t.Run(op, func(t *testing.T) {
			g, fsys, _ := newGated(t)
			a := create(t, fsys, "x", "data") // its commit dropped the entry
			g.holdID.Store(int64(a.Ino))
			done := make(chan error, 1)
			go func() { _, err := fsys.GetAttr(ctx, a.Ino); done <- err }()
			<-g.held
			var err error
			if op == "unlink" {
				err = fsys.Unlink(ctx, fsys.Root(), "x")
			} else {
				err = fsys.Rename(ctx, fsys.Root(), "x", fsys.Root(), "y", vfs.RenameNoReplace)
			}
			if err != nil {
				t.Fatal(err)
			}
			close(g.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got, err := fsys.Lookup(ctx, fsys.Root(), "x"); err == nil {
				t.Fatalf("after %s, lookup of x = ino %d (the old entry)", op, got.Ino)
			}
		})
	}
}
