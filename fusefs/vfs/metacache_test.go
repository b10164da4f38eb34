package vfs_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
)

// watched returns an FS over b that follows the change feed, as a mount
// does, and waits until the metadata cache is on.
func watched(t *testing.T, b vfs.Backend) *vfs.FS {
	t.Helper()
	fsys, _ := newFS(t, b)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fsys.Watch(wctx, func([]vfs.Change) {}) }()
	t.Cleanup(func() { stop(); <-done })
	// The cache is on once a read fills it.
	testkit.Eventually(t, 5*time.Second, func() bool {
		if _, err := fsys.GetAttr(ctx, fsys.Root()); err != nil {
			t.Fatal(err)
		}
		return vfs.MetaCacheOn(fsys)
	}, "the metadata cache turning on")
	return fsys
}

// With the change feed followed, what this mount created, stats and
// opens costs no backend read, and its own changes show at once.
func TestMetaCacheServesOwnEntries(t *testing.T) {
	l, _ := newLocalParams(t, smallChunks)
	b := &counting{Backend: l}
	fsys := watched(t, b)
	var inos []vfs.Ino
	for i := range 20 {
		inos = append(inos, create(t, fsys, fmt.Sprintf("f%02d", i), "x").Ino)
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := b.reads.Load()
	for i, ino := range inos {
		a, err := fsys.Lookup(ctx, fsys.Root(), fmt.Sprintf("f%02d", i))
		if err != nil || a.Ino != ino {
			t.Fatalf("lookup f%02d = %+v, %v", i, a, err)
		}
		if _, err := fsys.GetAttr(ctx, ino); err != nil {
			t.Fatal(err)
		}
	}
	// A commit of one file drops its entry (the answer of a REST commit
	// lacks attributes): the first lookup of each reads it once.
	if n := b.reads.Load() - before; n > int64(len(inos)) {
		t.Fatalf("%d backend reads for %d lookups and stats", n, 2*len(inos))
	}
	before = b.reads.Load()
	for i, ino := range inos {
		if _, err := fsys.Lookup(ctx, fsys.Root(), fmt.Sprintf("f%02d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.GetAttr(ctx, ino); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.reads.Load() - before; n != 0 {
		t.Fatalf("%d backend reads for cached lookups and stats", n)
	}
	if a, err := fsys.GetAttr(ctx, inos[0]); err != nil || a.Size != 1 {
		t.Fatalf("stat of a committed file = %+v, %v", a, err)
	}

	// Own changes show at once, without waiting for the feed.
	if err := fsys.Rename(ctx, fsys.Root(), "f00", fsys.Root(), "g00", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Lookup(ctx, fsys.Root(), "f00"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("lookup of a renamed name: %v", err)
	}
	if a, err := fsys.Lookup(ctx, fsys.Root(), "g00"); err != nil || a.Ino != inos[0] {
		t.Fatalf("lookup of the new name = %+v, %v", a, err)
	}
	if err := fsys.Unlink(ctx, fsys.Root(), "f01"); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Lookup(ctx, fsys.Root(), "f01"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("lookup of an unlinked name: %v", err)
	}
	if a, err := fsys.GetAttr(ctx, inos[1]); err != nil || a.Nlink != 0 {
		t.Fatalf("stat of an unlinked file = %+v, %v", a, err)
	}
	mode := uint32(0o600)
	if _, err := fsys.SetAttr(ctx, inos[2], nil, vfs.SetAttrIn{Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	if a, err := fsys.GetAttr(ctx, inos[2]); err != nil || a.Mode&0o777 != 0o600 {
		t.Fatalf("stat after chmod = %+v, %v", a, err)
	}
	h, err := fsys.Open(ctx, inos[3], 1 /* O_WRONLY */)
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, h, []byte("longer content"), 0)
	release(t, h)
	if a, err := fsys.GetAttr(ctx, inos[3]); err != nil || a.Size != int64(len("longer content")) {
		t.Fatalf("stat after a write = %+v, %v", a, err)
	}
}

// Changes made by others (here the server's file layer, as the REST API
// makes them) reach the cache through the feed: a cached entry shows the
// change within the feed's latency.
func TestMetaCacheFollowsOthers(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	fsys := watched(t, l)
	a := create(t, fsys, "doc", "one")
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.GetAttr(ctx, a.Ino); err != nil { // cached now
		t.Fatal(err)
	}
	owner := localUser(t, svc).ID
	if _, err := svc.Write(ctx, files.WriteRequest{Owner: owner, Entry: dfms.EntryID(a.Ino), Body: strings.NewReader("two, longer")}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*time.Second, func() bool {
		got, err := fsys.GetAttr(ctx, a.Ino)
		return err == nil && got.Size == int64(len("two, longer"))
	}, "the size written by another client")

	if err := svc.Delete(ctx, owner, dfms.EntryID(a.Ino)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*time.Second, func() bool {
		_, err := fsys.Lookup(ctx, fsys.Root(), "doc")
		return dfms.Is(err, dfms.NotExist)
	}, "a file deleted by another client")

	// A directory this mount made answers lookups of absent names itself,
	// until someone else adds one.
	d, err := fsys.Mkdir(ctx, fsys.Root(), "new", 0o755, vfs.Caller{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Lookup(ctx, d.Ino, "x"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("lookup in a new directory: %v", err)
	}
	if _, err := svc.Write(ctx, files.WriteRequest{Owner: owner, Parent: dfms.EntryID(d.Ino), Name: "x", Body: strings.NewReader("from elsewhere")}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*time.Second, func() bool {
		a, err := fsys.Lookup(ctx, d.Ino, "x")
		return err == nil && a.Size == int64(len("from elsewhere"))
	}, "a file created by another client in a new directory")

}

// Batched write-back commits leave the committed entries in the cache.
func TestMetaCacheKeepsBatchCommits(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	b := &counting{Backend: l}
	fsys := openFS(t, b, vfs.Options{CacheDir: t.TempDir(), WriteBack: true})
	defer fsys.Close(ctx)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fsys.Watch(wctx, func([]vfs.Change) {}) }()
	defer func() { stop(); <-done }()
	testkit.Eventually(t, 2*time.Second, func() bool { return vfs.MetaCacheOn(fsys) }, "the metadata cache")
	var inos []vfs.Ino
	for i := range 50 {
		inos = append(inos, create(t, fsys, fmt.Sprintf("f%02d", i), fmt.Sprintf("content %d", i)).Ino)
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := b.reads.Load()
	for i, ino := range inos {
		a, err := fsys.GetAttr(ctx, ino)
		if want := int64(len(fmt.Sprintf("content %d", i))); err != nil || a.Size != want {
			t.Fatalf("stat f%02d = %+v, %v; want size %d", i, a, err, want)
		}
	}
	t.Logf("%d backend reads for %d stats", b.reads.Load()-before, len(inos))
	// Batches of one go through the single commit, which drops.
	if n := b.reads.Load() - before; n > int64(len(inos))/2 {
		t.Fatalf("%d backend reads for %d stats after batched commits", n, len(inos))
	}
	// Reading them back needs no manifest from the backend either: the
	// commits left theirs.
	before = b.manifests.Load()
	for i, ino := range inos {
		h := mustOpen(t, fsys, ino, os.O_RDONLY)
		if got, want := string(readAll(t, h)), fmt.Sprintf("content %d", i); got != want {
			t.Fatalf("read f%02d = %q, want %q", i, got, want)
		}
		release(t, h)
	}
	if n := b.manifests.Load() - before; n != 0 {
		t.Fatalf("%d manifests fetched to read back %d committed files", n, len(inos))
	}
	// A change elsewhere drops the manifest with the entry: the new
	// content is read.
	owner := localUser(t, svc).ID
	if _, err := svc.Write(ctx, files.WriteRequest{Owner: owner, Entry: dfms.EntryID(inos[0]), Body: strings.NewReader("rewritten elsewhere")}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 2*time.Second, func() bool {
		h, err := fsys.Open(ctx, inos[0], os.O_RDONLY)
		if err != nil {
			return false
		}
		defer h.Release(ctx)
		return string(readAll(t, h)) == "rewritten elsewhere"
	}, "content written elsewhere")

}

// The cache holds the root's entry once the feed is followed, without a
// read of it: the kernel may have read it before (and not again until its
// copy expires), and a server outage then would fail every path walk.
func TestMetaCacheWarmsTheRoot(t *testing.T) {
	l, _ := newLocalParams(t, smallChunks)
	b := &counting{Backend: l}
	fsys, _ := newFS(t, b)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fsys.Watch(wctx, func([]vfs.Change) {}) }()
	t.Cleanup(func() { stop(); <-done })
	testkit.Eventually(t, 5*time.Second, func() bool { return vfs.MetaCacheHas(fsys, fsys.Root()) }, "the root in the metadata cache")
	before := b.reads.Load()
	if _, err := fsys.GetAttr(ctx, fsys.Root()); err != nil {
		t.Fatal(err)
	}
	if n := b.reads.Load() - before; n != 0 {
		t.Fatalf("%d backend reads for a stat of the root", n)
	}
}
