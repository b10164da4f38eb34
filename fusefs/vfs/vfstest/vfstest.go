// Package vfstest is the conformance suite of [vfs.Backend]: the doc
// comments of the interface and of its optional interfaces are the
// contract, and every backend runs all of it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		vfstest.Run(t, func(t *testing.T) vfs.Backend {
//			srv := clienttest.NewServer(t, clienttest.Options{})
//			return remote.New(srv.Login(t))
//		})
//	}
//
// newBackend must return, for each call, a backend over an owner's tree of
// its own that is empty (only its root) and has no quota; the owners may
// share a server (fusefs/local and fusefs/remote make one owner a case on
// one server). The optional
// interfaces a backend implements (vfs.ChangeFeed, vfs.CommitBatcher,
// vfs.ChunkCommitter, vfs.FileCreator, vfs.Trasher, vfs.Syncer,
// vfs.Originator) are found by type assertion; the cases of those it does
// not implement are skipped.
//
// A bug found in one backend becomes a case here, so that every backend is
// checked for it.
package vfstest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// Run runs the suite on backends made by newBackend (one per subtest).
func Run(t *testing.T, newBackend func(t *testing.T) vfs.Backend) {
	testkit.RunCases(t, newBackend,
		testRoot,
		testCreateFile,
		testMkdir,
		testSymlinkReadlink,
		testMknod,
		testLink,
		testNames,
		testLookup,
		testReadDir,
		testUnlink,
		testRmdir,
		testRename,
		testRenameReplace,
		testRenameUnderItself,
		testSetAttr,
		testXattrs,
		testChunking,
		testMissingPutChunks,
		testReadChunk,
		testNeverWritten,
		testCommit,
		testCommitMTime,
		testCommitRequireBase,
		testCommitID,
		testCommitIDAfterNewerCommit,
		testCommitUnsentChunk,
		testCommitTrashed,
		testCommitNotAFile,
		testTrashedStaysReadable,
		testVersions,
		testVersionsAfterRenameOver,
		testUsage,
		testConcurrent,
		testChangeFeed,
		testChangeFeedWait,
		testCommitBatcher,
		testCommitBatcherRequireBase,
		testCommitBatcherIdempotent,
		testChunkCommitter,
		testFileCreator,
		testTrasher,
		testSyncer,
		testOriginator,
		testHoles,
		testSparseFile,
	)
}

var ctx = context.Background()

// ok fails t at once if err is not nil.
var ok = testkit.OK

// outcome is what a case wants of one item of a batch: success, or an
// error of a kind.
type outcome struct {
	fails bool
	kind  dfms.ErrorKind
}

// succeeds is the outcome of an item that succeeds.
var succeeds outcome

// failsWith is the outcome of an item that fails with kind k.
func failsWith(k dfms.ErrorKind) outcome { return outcome{fails: true, kind: k} }

// wantOutcomes fails t unless errs holds one error for each of want, as
// it says: the results of a batch (what) whose items fail alone.
func wantOutcomes(t *testing.T, what string, errs []error, want ...outcome) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("%s: %d results for %d items", what, len(errs), len(want))
	}
	for i, w := range want {
		switch {
		case !w.fails && errs[i] != nil:
			t.Fatalf("%s: item %d failed: %v", what, i, errs[i])
		case w.fails:
			testkit.WantKind(t, errs[i], w.kind, fmt.Sprintf("%s: item %d", what, i))
		}
	}
}

// errsOf returns the errors of res, in order.
func errsOf(res []vfs.CommitResult) []error {
	errs := make([]error, len(res))
	for i, r := range res {
		errs[i] = r.Err
	}
	return errs
}

// wantMade fails t unless got, the answer of a create (what), is a live
// entry as want says: its id (any but 0 if want has none), directory,
// name, kind, attributes and, for a symlink, target and size; a new file
// is empty, with no version.
func wantMade(t *testing.T, what string, got, want vfs.Entry) {
	t.Helper()
	if got.ID == 0 || (want.ID != 0 && got.ID != want.ID) || got.Parent != want.Parent || got.Name != want.Name ||
		got.Kind != want.Kind || !got.Live || got.Mode != want.Mode || got.UID != want.UID || got.GID != want.GID ||
		got.Target != want.Target || got.Rdev != want.Rdev || got.Size != int64(len(want.Target)) || got.Version != 0 {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

// as returns b as an I, skipping t if b does not implement it.
func as[I any](t *testing.T, b vfs.Backend) I {
	t.Helper()
	i, ok := b.(I)
	if !ok {
		t.Skipf("the backend does not implement %v", reflect.TypeFor[I]())
	}
	return i
}

// root returns the id of b's root directory.
func root(t *testing.T, b vfs.Backend) dfms.EntryID {
	t.Helper()
	return testkit.Must(b.Root(ctx))(t).ID
}

func mkdir(t *testing.T, b vfs.Backend, parent dfms.EntryID, name string) vfs.Entry {
	t.Helper()
	return testkit.Must(b.Mkdir(ctx, parent, name, 0o755, 1000, 1000))(t)
}

func create(t *testing.T, b vfs.Backend, parent dfms.EntryID, name string) vfs.Entry {
	t.Helper()
	return testkit.Must(b.CreateFile(ctx, parent, name, 0o644, 1000, 1000))(t)
}

// chunks cuts each of parts into a chunk of its own.
func chunks(parts ...string) []dfms.ChunkData {
	cs := make([]dfms.ChunkData, len(parts))
	for i, p := range parts {
		cs[i] = dfms.ChunkData{Hash: dfms.Sum([]byte(p)), Data: []byte(p)}
	}
	return cs
}

// neverSent returns content no one has sent (a backend may serve several
// owners from one store, and need not ask an owner for chunks another
// one stored).
func neverSent() string {
	return fmt.Sprintf("never sent: %d", time.Now().UnixNano())
}

// manifestOf lists cs in order.
func manifestOf(cs []dfms.ChunkData) dfms.Manifest {
	m := dfms.Manifest{Chunks: make([]dfms.ChunkRef, len(cs))}
	for i, c := range cs {
		m.Chunks[i] = dfms.ChunkRef{Hash: c.Hash, Size: uint32(len(c.Data))}
	}
	return m
}

// send puts the chunks of parts the backend says are missing, and returns
// the manifest of parts, one chunk each.
func send(t *testing.T, b vfs.Backend, parts ...string) dfms.Manifest {
	t.Helper()
	cs := chunks(parts...)
	m := manifestOf(cs)
	hs := make([]dfms.Hash, len(cs))
	for i, c := range cs {
		hs[i] = c.Hash
	}
	missing := testkit.Must(b.Missing(ctx, hs))(t)
	var put []dfms.ChunkData
	for _, c := range cs {
		if slices.Contains(missing, c.Hash) {
			put = append(put, c)
		}
	}
	if len(put) > 0 {
		ok(t, b.PutChunks(ctx, put))
	}
	return m
}

// write commits parts (one chunk each) as the new content of file id,
// edited from its version base, and returns the entry the commit answers.
func write(t *testing.T, b vfs.Backend, id dfms.EntryID, base int64, parts ...string) vfs.Entry {
	t.Helper()
	m := send(t, b, parts...)
	e, err := b.CommitManifest(ctx, vfs.Commit{ID: id, Manifest: m, Base: base})
	if err != nil {
		t.Fatalf("commit of %q to %d: %v", parts, id, err)
	}
	return e
}

// history creates the file name in parent and commits each of contents
// to it in turn (one chunk each), each edited from the one before. It
// returns the file and the lasting IDs of its versions, oldest first.
func history(t *testing.T, b vfs.Backend, parent dfms.EntryID, name string, contents ...string) (vfs.Entry, []int64) {
	t.Helper()
	f := create(t, b, parent, name)
	var ids []int64
	var base int64
	for _, c := range contents {
		base = write(t, b, f.ID, base, c).Version
		ids = append(ids, base)
	}
	return f, ids
}

// content reads the version with lasting ID version of file id (0: the
// current one) through Manifest and ReadChunk, and returns it with the
// version's description.
func content(t *testing.T, b vfs.Backend, id dfms.EntryID, version int64) (vfs.VersionInfo, string) {
	t.Helper()
	vi, m, err := b.Manifest(ctx, id, version)
	if err != nil {
		t.Fatalf("Manifest(%d, %d): %v", id, version, err)
	}
	var buf bytes.Buffer
	for _, ref := range m.Chunks {
		if ref.IsHole() {
			buf.Write(make([]byte, ref.Size))
			continue
		}
		data, err := b.ReadChunk(ctx, id, vi.ID, ref)
		if err != nil {
			t.Fatalf("ReadChunk(%d, %d, %s): %v", id, vi.ID, ref.Hash, err)
		}
		if dfms.Sum(data) != ref.Hash || len(data) != int(ref.Size) {
			t.Fatalf("ReadChunk(%d, %d, %s) returned other bytes (%d of them)", id, vi.ID, ref.Hash, len(data))
		}
		buf.Write(data)
	}
	if vi.Size != m.Size() {
		t.Fatalf("Manifest(%d, %d): size %d, but its chunks hold %d bytes", id, version, vi.Size, m.Size())
	}
	return vi, buf.String()
}

// versions returns the versions of file id.
func versions(t *testing.T, b vfs.Backend, id dfms.EntryID) []vfs.VersionInfo {
	t.Helper()
	vs := testkit.Must(b.Versions(ctx, id))(t)
	return vs
}

// names returns the names of es, sorted.
func names(es []vfs.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	slices.Sort(out)
	return out
}

// live reports whether entry id is live, failing t if GetAttr cannot find
// it.
func live(t *testing.T, b vfs.Backend, id dfms.EntryID) bool {
	t.Helper()
	return testkit.Must(b.GetAttr(ctx, id))(t).Live
}

// gone fails t unless parent/name is not found.
func gone(t *testing.T, b vfs.Backend, parent dfms.EntryID, name string) {
	t.Helper()
	_, err := b.Lookup(ctx, parent, name)
	testkit.WantKind(t, err, dfms.NotExist, "Lookup of "+name)
}

// stamp returns a time in the past at the precision backends keep
// (microseconds), in UTC.
func stamp(ago time.Duration) time.Time {
	return time.Now().Add(-ago).Truncate(time.Microsecond).UTC()
}

// noSuchID is an entry id no test makes.
const noSuchID dfms.EntryID = 1 << 40
