package vfs_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/server/meta"
)

// syncCounter counts the metadata store's durability barriers.
type syncCounter struct {
	meta.Store
	syncs atomic.Int64
}

func (s *syncCounter) Sync(ctx context.Context) error {
	s.syncs.Add(1)
	return s.Store.Sync(ctx)
}

// Namespace changes of the in-process backend are lazy: fsync of a file,
// FS.Sync and Close make them durable, with a barrier only when no
// durable version commit has covered them already.
func TestNamespaceChangesDurableOnFsync(t *testing.T) {
	l, sc, m, u := newSyncCounted(t)
	fsys := openFS(t, l, vfs.Options{CacheDir: t.TempDir()})
	want := func(what string, n int64) {
		t.Helper()
		if got := sc.syncs.Load(); got != n {
			t.Fatalf("%s: %d barriers, want %d", what, got, n)
		}
	}

	// Create, write, fsync: the version commit is durable and covers
	// the create before it.
	a, h, err := fsys.Create(ctx, fsys.Root(), "f", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, h, []byte("data"), 0)
	if err := h.Fsync(ctx); err != nil {
		t.Fatal(err)
	}
	want("fsync after a write", 0)

	// A rename, then fsync without a write: only a barrier makes it
	// durable.
	if err := fsys.Rename(ctx, fsys.Root(), "f", fsys.Root(), "g", 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Fsync(ctx); err != nil {
		t.Fatal(err)
	}
	want("fsync after a rename", 1)
	release(t, h)
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want("Sync with nothing new", 1)

	if _, err := fsys.Mkdir(ctx, fsys.Root(), "dir", 0o755, vfs.Caller{}); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want("Sync after mkdir", 2)
	if _, err := fsys.SetAttr(ctx, a.Ino, nil, vfs.SetAttrIn{Mode: ptr(uint32(0o600))}); err != nil {
		t.Fatal(err)
	}
	closeFS(t, fsys)
	want("Close after chmod", 3)
	if e, err := m.Lookup(ctx, u.ID, u.Root, "g"); err != nil || e.Mode != 0o600 {
		t.Fatalf("g after Close: %+v, %v", e, err)
	}
}

func ptr[T any](v T) *T { return &v }

// newSyncCounted is newLocalParams with the barriers counted; it returns
// the store as the file layer sees it, and the user.
func newSyncCounted(t *testing.T) (*local.Backend, *syncCounter, meta.Store, meta.User) {
	t.Helper()
	var sc *syncCounter
	l, svc := newLocalMeta(t, smallChunks, func(m meta.Store) meta.Store {
		sc = &syncCounter{Store: m}
		return sc
	})
	return l, sc, svc.Meta(), localUser(t, svc)
}

// A batch of commits that all fail writes nothing, so it makes nothing
// durable: the next Sync still runs the barrier for the lazy writes
// before it.
func TestFailedCommitBatchIsNoBarrier(t *testing.T) {
	l, sc, _, u := newSyncCounted(t)
	if _, err := l.Mkdir(ctx, u.Root, "lazy-dir", 0o755, 0, 0); err != nil { // lazy
		t.Fatal(err)
	}
	// Two closed files deleted before write-back committed them.
	res, err := l.CommitManifests(ctx, []vfs.Commit{{ID: 999998}, {ID: 999999}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !dfms.Is(r.Err, dfms.NotExist) {
			t.Fatalf("commit result %v", r.Err)
		}
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sc.syncs.Load(); got != 1 {
		t.Fatalf("Sync after a lazy mkdir and an all-failed commit batch ran %d barriers, want 1: the mkdir is acknowledged durable but is not", got)
	}
}
