package vfs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
)

func newWriteBackFS(t *testing.T, b vfs.Backend, cache string) *vfs.FS {
	t.Helper()
	return openFS(t, b, vfs.Options{CacheDir: cache, WriteBack: true})
}

// writeBackLocal is a write-back mount, closed when the test ends, over
// an in-process backend with small chunks; and that backend and its file
// layer.
func writeBackLocal(t *testing.T) (*vfs.FS, *local.Backend, *files.Service) {
	t.Helper()
	l, svc := newLocalParams(t, smallChunks)
	fsys := newWriteBackFS(t, l, t.TempDir())
	t.Cleanup(func() { fsys.Close(ctx) })
	return fsys, l, svc
}

// Closed files are committed in the background: before that the mount
// shows what was written, after Sync the server has every file, one
// version each.
func TestWriteBackCommitsClosedFiles(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	b := &counting{Backend: l}
	fsys := newWriteBackFS(t, b, t.TempDir())
	defer fsys.Close(ctx)
	const n = 300
	attrs := make([]vfs.Attr, n)
	for i := range n {
		attrs[i] = create(t, fsys, fmt.Sprintf("f%03d", i), fmt.Sprintf("content of file %d", i))
		if i%50 == 0 { // as stat and cat right after close would
			want := fmt.Sprintf("content of file %d", i)
			if a, err := fsys.GetAttr(ctx, attrs[i].Ino); err != nil || a.Size != int64(len(want)) {
				t.Fatalf("stat after close: %+v, %v", a, err)
			}
			h := mustOpen(t, fsys, attrs[i].Ino, os.O_RDONLY)
			if got := readAll(t, h); string(got) != want {
				t.Fatalf("read after close: %q", got)
			}
			h.Release(ctx)
		}
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for i, a := range attrs {
		if got := storedContent(t, svc, l, a.Ino); string(got) != fmt.Sprintf("content of file %d", i) {
			t.Fatalf("f%03d on the server: %q", i, got)
		}
		wantVersions(t, b, a.Ino, 1, fmt.Sprintf("f%03d", i))
	}
	t.Logf("%d commits in %d batches", b.commits.Load(), b.commitBatches.Load())
}

// Every close is a version, however soon the file is opened, truncated or
// written again after it.
func TestWriteBackVersionPerClose(t *testing.T) {
	b, svc := newLocalParams(t, smallChunks)
	fsys := newWriteBackFS(t, b, t.TempDir())
	defer fsys.Close(ctx)
	a := create(t, fsys, "f", "one")
	for _, s := range []string{"two", "three"} {
		h := openWrite(t, fsys, a.Ino, os.O_WRONLY|os.O_TRUNC, s)
		h.Flush(ctx)
		h.Release(ctx)
	}
	// Two handles: closing one seals what was written so far; a write
	// through the other starts the next version.
	w1 := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	w2 := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	w1.Write(ctx, []byte("FOUR!"), 0)
	w1.Flush(ctx)
	w1.Release(ctx)
	w2.Write(ctx, []byte("5"), 0)
	// A truncation by path after the last close is a version of its own.
	w2.Flush(ctx)
	w2.Release(ctx)
	size := int64(2)
	if _, err := fsys.SetAttr(ctx, a.Ino, nil, vfs.SetAttrIn{Size: &size}); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"one", "two", "three", "FOUR!", "5OUR!", "5O"}
	vs, err := b.Versions(ctx, dfms.EntryID(a.Ino))
	if err != nil || len(vs) != len(want) {
		var all []string
		for i := range vs {
			all = append(all, string(versionContent(t, svc, b, a.Ino, int64(i+1))))
		}
		t.Fatalf("%d versions %q, %v; want %q", len(vs), all, err, want)
	}
	for i, w := range want {
		if got := versionContent(t, svc, b, a.Ino, int64(i+1)); string(got) != w {
			t.Errorf("v%d = %q, want %q", i+1, got, w)
		}
	}
}

// failingBatch fails commits, batched or not, while fail is set.
type failingBatch struct {
	*local.Backend
	fail atomic.Bool
}

func (f *failingBatch) CommitManifest(ctx context.Context, c vfs.Commit) (vfs.Entry, error) {
	if f.fail.Load() {
		return vfs.Entry{}, dfms.Errorf("test", dfms.Unavailable, "the server is down")
	}
	return f.Backend.CommitManifest(ctx, c)
}

func (f *failingBatch) CommitManifestStoring(ctx context.Context, c vfs.Commit, cs []dfms.ChunkData) (vfs.Entry, int, error) {
	if f.fail.Load() {
		return vfs.Entry{}, 0, dfms.Errorf("test", dfms.Unavailable, "the server is down")
	}
	return f.Backend.CommitManifestStoring(ctx, c, cs)
}

func (f *failingBatch) CommitManifests(ctx context.Context, cs []vfs.Commit) ([]vfs.CommitResult, error) {
	if f.fail.Load() {
		return nil, dfms.Errorf("test", dfms.Unavailable, "the server is down")
	}
	return f.Backend.CommitManifests(ctx, cs)
}

// A background commit that fails is retried until it succeeds; Sync
// reports the files it could not commit; Close commits what is left.
func TestWriteBackRetries(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	b := &failingBatch{Backend: l}
	b.fail.Store(true)
	fsys := newWriteBackFS(t, b, t.TempDir())
	var attrs []vfs.Attr
	for i := range 5 {
		attrs = append(attrs, create(t, fsys, fmt.Sprintf("f%d", i), fmt.Sprintf("precious %d", i)))
	}
	testkit.WantKind(t, fsys.Sync(ctx), dfms.Unavailable, "sync while the server is down")
	b.fail.Store(false)
	testkit.Eventually(t, 20*time.Second, func() bool {
		for _, a := range attrs {
			if vs, err := b.Versions(ctx, dfms.EntryID(a.Ino)); err != nil || len(vs) != 1 {
				return false
			}
		}
		return true
	}, "one version of each file after the server came back")
	for i, a := range attrs {
		if got := storedContent(t, svc, l, a.Ino); string(got) != fmt.Sprintf("precious %d", i) {
			t.Fatalf("f%d: %q", i, got)
		}
	}
	// Down again: Close commits what is queued once it can, or says
	// what it left for the next mount.
	b.fail.Store(true)
	last := create(t, fsys, "last", "closed just before unmount")
	b.fail.Store(false)
	closeFS(t, fsys)
	if got := storedContent(t, svc, l, last.Ino); string(got) != "closed just before unmount" {
		t.Fatalf("after Close the server has %q", got)
	}
}

// A file deleted before its background commit is dropped, without an
// error; its name stays free.
func TestWriteBackUnlinkedBeforeCommit(t *testing.T) {
	b, _ := newLocalParams(t, smallChunks)
	blocked := &failingBatch{Backend: b}
	blocked.fail.Store(true) // keep it queued
	fsys := newWriteBackFS(t, blocked, t.TempDir())
	defer fsys.Close(ctx)
	a := create(t, fsys, "f", "short-lived")
	if err := fsys.Unlink(ctx, fsys.Root(), "f"); err != nil {
		t.Fatal(err)
	}
	blocked.fail.Store(false)
	if err := fsys.Sync(ctx); err != nil {
		t.Fatalf("sync after the unlink: %v", err)
	}
	if vs, _ := b.Versions(ctx, dfms.EntryID(a.Ino)); len(vs) != 0 {
		t.Fatalf("the deleted file got %d versions", len(vs))
	}
	if _, err := fsys.Lookup(ctx, fsys.Root(), "f"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("lookup: %v", err)
	}
}

// Files closed but not yet committed when the mount dies are committed by
// the next mount of the cache directory.
func TestWriteBackCrash(t *testing.T) {
	l, svc := newLocalParams(t, smallChunks)
	b := &failingBatch{Backend: l}
	b.fail.Store(true) // nothing gets committed before the crash
	cache := t.TempDir()
	fsys := newWriteBackFS(t, b, cache)
	var attrs []vfs.Attr
	for i := range 10 {
		attrs = append(attrs, create(t, fsys, fmt.Sprintf("f%d", i), fmt.Sprintf("closed %d", i)))
	}
	fsys.Crash()
	b.fail.Store(false)
	fsys2 := newWriteBackFS(t, b, cache)
	defer fsys2.Close(ctx)
	for i, a := range attrs {
		if got := storedContent(t, svc, l, a.Ino); !bytes.Equal(got, []byte(fmt.Sprintf("closed %d", i))) {
			t.Fatalf("f%d after recovery: %q", i, got)
		}
	}
}

// gatedBatcher holds every batched commit until gate is closed, and
// reports on started when one is waiting.
type gatedBatcher struct {
	*local.Backend
	started chan struct{}
	gate    chan struct{}
}

func (g *gatedBatcher) CommitManifests(ctx context.Context, cs []vfs.Commit) ([]vfs.CommitResult, error) {
	select {
	case g.started <- struct{}{}:
	default:
	}
	<-g.gate
	return g.Backend.CommitManifests(ctx, cs)
}

// stat of files whose write-back commit is under way answers at once,
// with what was written, instead of waiting for the commit.
func TestWriteBackStatDuringCommit(t *testing.T) {
	l, _ := newLocalParams(t, smallChunks)
	b := &gatedBatcher{Backend: l, started: make(chan struct{}, 1), gate: make(chan struct{})}
	fsys := newWriteBackFS(t, b, t.TempDir())
	defer fsys.Close(ctx)
	var attrs []vfs.Attr
	for i := range 3 {
		attrs = append(attrs, create(t, fsys, fmt.Sprintf("f%d", i), fmt.Sprintf("content %d", i)))
	}
	select {
	case <-b.started:
	case <-time.After(30 * time.Second):
		t.Fatal("no commit started")
	}
	done := make(chan error, 1)
	go func() {
		for i, a := range attrs {
			got, err := fsys.GetAttr(ctx, a.Ino)
			if err == nil && got.Size != int64(len(fmt.Sprintf("content %d", i))) {
				err = fmt.Errorf("f%d: size %d during its commit", i, got.Size)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(b.gate)
		t.Fatal("stat waited for the commit of the file")
	}
	close(b.gate)
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// steppedCommits holds each write-back commit (batched or of one file)
// until the test lets it go: a commit reports on started, then waits for
// one value on proceed, or for open to be closed (then commits pass).
// Commits made in a call of the test (its context) are not held.
type steppedCommits struct {
	*local.Backend
	started chan struct{}
	proceed chan struct{}
	open    chan struct{}
}

// steppedFS returns a write-back FS over a steppedCommits backend with
// small chunks, its file layer, and the function that lets every commit
// pass. When the test ends, the commits are let pass and the FS is
// closed.
func steppedFS(t *testing.T) (*steppedCommits, *files.Service, *vfs.FS, func()) {
	t.Helper()
	l, svc := newLocalParams(t, smallChunks)
	b := &steppedCommits{Backend: l, started: make(chan struct{}), proceed: make(chan struct{}), open: make(chan struct{})}
	fsys := newWriteBackFS(t, b, t.TempDir())
	t.Cleanup(func() { fsys.Close(ctx) })
	letGo := sync.OnceFunc(func() { close(b.open) })
	t.Cleanup(letGo) // before Close, which waits for the committers
	return b, svc, fsys, letGo
}

// newStepped is steppedFS with both committers busy, each holding a
// commit (of g1 and g2).
func newStepped(t *testing.T) (*steppedCommits, *files.Service, *vfs.FS, func()) {
	t.Helper()
	b, svc, fsys, letGo := steppedFS(t)
	create(t, fsys, "g1", "held")
	<-b.started
	create(t, fsys, "g2", "held")
	<-b.started
	return b, svc, fsys, letGo
}

func (s *steppedCommits) step(c context.Context) {
	if c == ctx {
		return
	}
	select {
	case s.started <- struct{}{}:
	case <-s.open:
		return
	}
	select {
	case <-s.proceed:
	case <-s.open:
	}
}

func (s *steppedCommits) CommitManifest(ctx context.Context, c vfs.Commit) (vfs.Entry, error) {
	s.step(ctx)
	return s.Backend.CommitManifest(ctx, c)
}

func (s *steppedCommits) CommitManifests(ctx context.Context, cs []vfs.Commit) ([]vfs.CommitResult, error) {
	s.step(ctx)
	return s.Backend.CommitManifests(ctx, cs)
}

// A file reopened, written and closed while the batch that took it is
// still being committed is committed afterwards without anything else
// happening (no open, fsync, sync or unmount).
func TestWriteBackCloseDuringItsBatch(t *testing.T) {
	b, svc, fsys, letGo := newStepped(t) // both committers busy, each with a commit held
	// f and two others queued; f opened again and written before a
	// committer takes them (the write commits what create closed first),
	// so the committer passes over it and commits the others.
	f := create(t, fsys, "f", "one")
	create(t, fsys, "h1", "h1")
	create(t, fsys, "h2", "h2")
	h := mustOpen(t, fsys, f.Ino, os.O_RDWR)
	writeAt(t, h, []byte("two"), 3)
	b.proceed <- struct{}{} // a committer takes f, h1 and h2
	<-b.started             // and commits h1 and h2, held
	// f closed while that batch is in flight.
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	release(t, h)
	letGo() // the held commits end, and later ones pass
	fsys.WaitWriteBack()
	if got := storedContent(t, svc, b.Backend, f.Ino); string(got) != "onetwo" {
		t.Fatalf("after the write-back settled the server has %q, want %q", got, "onetwo")
	}
	wantVersions(t, b, f.Ino, 2, "one per close")
}

// A close is committed right after, even while a reader keeps the file
// open (tail -f of a file that is being replaced): `exec 3< f; echo v2 > f`.
func TestWriteBackCloseWhileReaderOpen(t *testing.T) {
	fsys, l, svc := writeBackLocal(t)
	f := create(t, fsys, "f", "v1")
	fsys.WaitWriteBack()
	r := mustOpen(t, fsys, f.Ino, os.O_RDONLY)
	defer r.Release(ctx)
	for i, content := range []string{"v2", "version three"} {
		w := openWrite(t, fsys, f.Ino, os.O_WRONLY|os.O_TRUNC, content)
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		release(t, w)
		fsys.WaitWriteBack()
		if got := storedContent(t, svc, l, f.Ino); string(got) != content {
			t.Fatalf("close %d: with a reader open, after the write-back settled the server has %q, want %q", i+1, got, content)
		}
	}
	wantVersions(t, l, f.Ino, 3, "one per close")
}

// Regression test; the bug was: the write-back committing a closed file
// while a reader still held it found it unlinked and dropped what was
// written, so the reader's fstat showed the size of before the writes
// and its reads lost them (posixtest FstatDeleted under load). An
// unlinked file's data goes with its last handle, as on a local disk.
func TestWriteBackUnlinkedWhileReaderOpen(t *testing.T) {
	fsys, _, _ := writeBackLocal(t)
	root := fsys.Root()
	fsys.HoldRemovals()
	content := "written, then unlinked while open"
	f := create(t, fsys, "f", content) // closed; its commit is queued
	r := mustOpen(t, fsys, f.Ino, os.O_RDONLY)
	if err := fsys.Unlink(ctx, root, "f"); err != nil {
		t.Fatal(err)
	}
	checkOpenUnlinked(t, fsys, f.Ino, r, content)
	fsys.WaitWriteBack()
	if err := fsys.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if fsys.HasOpenState(f.Ino) {
		t.Error("the unlinked file's open state outlives its last handle")
	}
}

// checkOpenUnlinked checks, once the write-back is done, the unlinked
// file ino that r still has open: fstat shows its size and nlink 0, and r
// reads content. It releases r.
func checkOpenUnlinked(t *testing.T, fsys *vfs.FS, ino vfs.Ino, r *vfs.Handle, content string) {
	t.Helper()
	fsys.WaitWriteBack()
	a, err := fsys.GetAttr(ctx, ino)
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != int64(len(content)) || a.Nlink != 0 {
		t.Errorf("fstat of the open unlinked file: size %d, nlink %d; want %d, 0", a.Size, a.Nlink, len(content))
	}
	if got := string(readAll(t, r)); got != content {
		t.Errorf("the reader reads %q, want %q", got, content)
	}
	release(t, r)
}

// Regression test; the bug was: a file unlinked while the write-back
// was committing it (the committer past its check for an unlink, the
// removal deferred) showed linked (nlink 1) to stat until its removal was
// made. stat had the entry as it was at the unlink, older than the
// version that commit made, took it for stale and read the file again
// from the server, which has it live until the removal is made.
func TestWriteBackUnlinkedDuringItsCommit(t *testing.T) {
	b, _, fsys, letGo := steppedFS(t)
	root := fsys.Root()
	fsys.HoldRemovals()
	content := "committed while it is unlinked"
	a, w, err := fsys.Create(ctx, root, "f", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{UID: 7, GID: 8})
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, w, []byte(content), 0)
	r := mustOpen(t, fsys, a.Ino, os.O_RDONLY) // before a committer can hold f
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	release(t, w) // queued
	<-b.started   // a committer created f on the server and holds its commit
	if err := fsys.Unlink(ctx, root, "f"); err != nil {
		t.Fatal(err)
	}
	letGo() // the commit makes its version; the removal stays held
	checkOpenUnlinked(t, fsys, a.Ino, r, content)
}

// A close is committed right after even when the file is opened for
// writing again before the write-back takes it, as long as that open
// changed nothing (an editor that opens O_RDWR to look): the close does
// not wait for the next one.
func TestWriteBackCloseCommittedUnderIdleWriter(t *testing.T) {
	// Both committers busy, so f is still queued when it is opened again.
	b, svc, fsys, letGo := newStepped(t)
	f := create(t, fsys, "f", "closed")
	h := mustOpen(t, fsys, f.Ino, os.O_RDWR)
	defer h.Release(ctx)
	letGo()
	fsys.WaitWriteBack()
	if got := storedContent(t, svc, b.Backend, f.Ino); string(got) != "closed" {
		t.Fatalf("with the file open for writing and unchanged, the server has %q, want %q", got, "closed")
	}
}
