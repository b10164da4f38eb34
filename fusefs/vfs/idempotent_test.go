package vfs_test

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/server/files"
)

// lostReplies is a backend that makes commits but answers the next few
// with an error, as when the server's answer is lost: a connection cut
// after the commit, or a crash of the mount right after it.
type lostReplies struct {
	*local.Backend
	lose atomic.Int32 // commits still to answer with an error once made
}

func (l *lostReplies) lost() bool { return l.lose.Add(-1) >= 0 }

var errLost = dfms.Errorf("test", dfms.Unavailable, "the answer was lost")

func (l *lostReplies) CommitManifest(ctx context.Context, c vfs.Commit) (vfs.Entry, error) {
	e, err := l.Backend.CommitManifest(ctx, c)
	if err == nil && l.lost() {
		return vfs.Entry{}, errLost
	}
	return e, err
}

func (l *lostReplies) CommitManifestStoring(ctx context.Context, c vfs.Commit, cs []dfms.ChunkData) (vfs.Entry, int, error) {
	e, n, err := l.Backend.CommitManifestStoring(ctx, c, cs)
	if err == nil && l.lost() {
		return vfs.Entry{}, n, errLost
	}
	return e, n, err
}

func (l *lostReplies) CommitManifests(ctx context.Context, cs []vfs.Commit) ([]vfs.CommitResult, error) {
	res, err := l.Backend.CommitManifests(ctx, cs)
	if err == nil && l.lost() {
		return nil, errLost
	}
	return res, err
}

// versionCount returns how many versions file ino has on the server.
func versionCount(t *testing.T, b vfs.Backend, ino vfs.Ino) int {
	t.Helper()
	vs, err := b.Versions(ctx, dfms.EntryID(ino))
	if err != nil {
		t.Fatal(err)
	}
	return len(vs)
}

// wantVersions fails t unless file ino has n versions on the server;
// when says when this is checked.
func wantVersions(t *testing.T, b vfs.Backend, ino vfs.Ino, n int, when string) {
	t.Helper()
	if got := versionCount(t, b, ino); got != n {
		t.Fatalf("%s: %d versions, want %d", when, got, n)
	}
}

// rootNames lists the root directory of fsys.
func rootNames(t *testing.T, fsys *vfs.FS) []string {
	t.Helper()
	des, err := fsys.ReadDir(ctx, fsys.Root())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name)
	}
	return out
}

// flushAnswerLost flushes h with the answer to its commit lost: the
// commit is made, and the flush must fail.
func flushAnswerLost(t *testing.T, b *lostReplies, h *vfs.Handle) {
	t.Helper()
	b.lose.Store(1)
	if err := h.Flush(ctx); err == nil {
		t.Fatal("a commit whose answer was lost succeeded")
	}
}

// wantCommittedOnce fails t unless file ino has two versions on the
// server, the second holding content: the commit whose answer was lost
// was made once. when says when this is checked.
func wantCommittedOnce(t *testing.T, svc *files.Service, l *local.Backend, ino vfs.Ino, content, when string) {
	t.Helper()
	if n := versionCount(t, l, ino); n != 2 {
		t.Fatalf("%d versions %s, want 2", n, when)
	}
	if got := storedContent(t, svc, l, ino); string(got) != content {
		t.Fatalf("the server holds %q", got)
	}
}

// A commit made but not acknowledged (its answer lost) and tried again
// makes one version, not two.
func TestCommitRetryAfterLostAnswer(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	b := &lostReplies{Backend: l}
	fsys, _ := newFS(t, b)
	a := create(t, fsys, "f", "first")
	h := openWrite(t, fsys, a.Ino, os.O_WRONLY|os.O_TRUNC, "second")
	flushAnswerLost(t, b, h)
	release(t, h) // the retry
	wantCommittedOnce(t, svc, l, a.Ino, "second", "after a retried commit")
}

// A mount that crashes right after a commit it was not told of leaves the
// commit's journal: the next mount finds that commit made, and neither
// commits it again nor keeps it as a conflict copy.
func TestRecoveryFindsCommitMade(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	b := &lostReplies{Backend: l}
	cache := t.TempDir()
	fsys := openFS(t, b, vfs.Options{CacheDir: cache})
	a := create(t, fsys, "report.txt", "first")
	h := openWrite(t, fsys, a.Ino, os.O_RDWR, "SECOND")
	flushAnswerLost(t, b, h)
	fsys2 := remountAfterCrash(t, fsys, b, cache)
	if names := rootNames(t, fsys2); len(names) != 1 || names[0] != "report.txt" {
		t.Fatalf("after recovery the root holds %q, want only report.txt (no conflict copy)", names)
	}
	wantCommittedOnce(t, svc, l, a.Ino, "SECOND", "after recovery")
}

// The same through the write-back's batches: a batch whose answer was
// lost is retried without duplicates.
func TestWriteBackRetryAfterLostAnswer(t *testing.T) {
	l, _ := newLocalParams(t, smallChunks)
	b := &lostReplies{Backend: l}
	fsys := openFS(t, b, vfs.Options{CacheDir: t.TempDir(), WriteBack: true})
	defer fsys.Close(ctx)
	var inos []vfs.Ino
	for _, name := range []string{"a", "b", "c"} {
		a, h, err := fsys.Create(ctx, fsys.Root(), name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		writeAt(t, h, []byte("content of "+name), 0)
		inos = append(inos, a.Ino)
		b.lose.Store(1) // the first commit (batched or not) after the last close
		if err := h.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		release(t, h)
	}
	// A sync that meets a lost answer reports it; the next one commits
	// what is left.
	err := fsys.Sync(ctx)
	for i := 0; err != nil && i < 3; i++ {
		err = fsys.Sync(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, ino := range inos {
		if n := versionCount(t, b, ino); n != 1 {
			t.Fatalf("file %v has %d versions after a retried write-back, want 1", ino, n)
		}
	}
}
