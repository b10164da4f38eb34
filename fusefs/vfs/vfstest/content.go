package vfstest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// testChunking: the parameters are valid ones.
func testChunking(t *testing.T, b vfs.Backend) {
	p := testkit.Must(b.Chunking(ctx))(t)
	if err := p.Validate(); err != nil {
		t.Fatalf("Chunking = %+v: %v", p, err)
	}
	if again := testkit.Must(b.Chunking(ctx))(t); again != p {
		t.Fatalf("Chunking changed: %+v, then %+v", p, again)
	}
}

// testMissingPutChunks: Missing names the chunks not sent yet, once each
// is sent no more; a chunk committed is not missing either.
func testMissingPutChunks(t *testing.T, b vfs.Backend) {
	cs := chunks("alpha", "beta", "gamma")
	hs := []dfms.Hash{cs[0].Hash, cs[1].Hash, cs[2].Hash}
	if got := testkit.Must(b.Missing(ctx, hs))(t); !sameHashes(got, hs) {
		t.Fatalf("Missing before any was sent = %v, want all three", got)
	}
	if got := testkit.Must(b.Missing(ctx, nil))(t); len(got) != 0 {
		t.Fatalf("Missing(nil) = %v", got)
	}
	ok(t, b.PutChunks(ctx, cs[:2]))
	if got := testkit.Must(b.Missing(ctx, hs))(t); !sameHashes(got, hs[2:]) {
		t.Fatalf("Missing after two were sent = %v, want the third", got)
	}
	ok(t, b.PutChunks(ctx, cs[:2])) // sending again is harmless
	ok(t, b.PutChunks(ctx, nil))
	f := create(t, b, root(t, b), "f")
	write(t, b, f.ID, 0, "gamma")
	if got := testkit.Must(b.Missing(ctx, hs))(t); len(got) != 0 {
		t.Fatalf("Missing after all were sent = %v", got)
	}
}

// sameHashes reports whether a and b hold the same hashes, in any order.
func sameHashes(a, b []dfms.Hash) bool {
	key := func(h dfms.Hash) string { return h.String() }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i, h := range a {
		ka[i] = key(h)
	}
	for i, h := range b {
		kb[i] = key(h)
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// testReadChunk: the chunks of a version read back as sent, by the
// version's lasting ID, for each version of a file.
func testReadChunk(t *testing.T, b vfs.Backend) {
	f := create(t, b, root(t, b), "f")
	big := strings.Repeat("0123456789", 10000)
	v1 := write(t, b, f.ID, 0, "head-", big, "-tail").Version
	v2 := write(t, b, f.ID, v1, "second").Version
	if _, s := content(t, b, f.ID, v1); s != "head-"+big+"-tail" {
		t.Fatalf("version 1 reads %d bytes, want %d", len(s), len(big)+10)
	}
	if _, s := content(t, b, f.ID, v2); s != "second" {
		t.Fatalf("version 2 reads %q", s)
	}
	if _, s := content(t, b, f.ID, 0); s != "second" {
		t.Fatalf("the current version reads %q", s)
	}
}

// testNeverWritten: a file never written has version 0 and no chunks, and
// no versions.
func testNeverWritten(t *testing.T, b vfs.Backend) {
	f := create(t, b, root(t, b), "f")
	vi, m, err := b.Manifest(ctx, f.ID, 0)
	if err != nil {
		t.Fatalf("Manifest of a file never written: %v", err)
	}
	if vi.ID != 0 || vi.Number != 0 || vi.Size != 0 || len(m.Chunks) != 0 {
		t.Fatalf("Manifest of a file never written = %+v, %d chunks; want version 0, none", vi, len(m.Chunks))
	}
	if vs := testkit.Must(b.Versions(ctx, f.ID))(t); len(vs) != 0 {
		t.Fatalf("Versions of a file never written = %+v", vs)
	}
	_, _, err = b.Manifest(ctx, noSuchID, 0)
	testkit.WantKind(t, err, dfms.NotExist, "Manifest of no file")
}

// testCommit: a commit makes a new current version; the entry returned
// carries it (its lasting ID, the size) and GetAttr agrees. An empty
// manifest is a commit too.
func testCommit(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	f := create(t, b, r, "f")
	e1 := write(t, b, f.ID, 0, "hello, ", "world")
	if e1.ID != f.ID || e1.Version <= 0 || e1.Size != 12 || !e1.Live {
		t.Fatalf("CommitManifest = %+v, want file %d, a version, size 12", e1, f.ID)
	}
	got := testkit.Must(b.GetAttr(ctx, f.ID))(t)
	if got.Version != e1.Version || got.Size != 12 || got.Name != "f" || got.Parent != r {
		t.Fatalf("GetAttr after a commit = %+v, want version %d size 12", got, e1.Version)
	}
	vi, s := content(t, b, f.ID, 0)
	if vi.ID != e1.Version || vi.Number != 1 || vi.Size != 12 || s != "hello, world" {
		t.Fatalf("Manifest after a commit = %+v %q", vi, s)
	}
	e2 := write(t, b, f.ID, e1.Version)
	if e2.Version <= e1.Version || e2.Size != 0 {
		t.Fatalf("an empty commit = %+v, want a version after %d, size 0", e2, e1.Version)
	}
	if vi, s := content(t, b, f.ID, 0); vi.ID != e2.Version || vi.Number != 2 || s != "" {
		t.Fatalf("after an empty commit: %+v %q", vi, s)
	}
	_, err := b.CommitManifest(ctx, vfs.Commit{ID: noSuchID, Manifest: send(t, b, "x")})
	testkit.WantKind(t, err, dfms.NotExist, "a commit to no file")
}

// testCommitMTime: a commit's mtime is the one given, or now.
func testCommitMTime(t *testing.T, b vfs.Backend) {
	f := create(t, b, root(t, b), "f")
	mt := stamp(72 * time.Hour)
	e, err := b.CommitManifest(ctx, vfs.Commit{ID: f.ID, Manifest: send(t, b, "dated"), MTime: mt})
	ok(t, err)
	if !e.MTime.Equal(mt) {
		t.Fatalf("a commit with mtime %v answered mtime %v", mt, e.MTime)
	}
	if got := testkit.Must(b.GetAttr(ctx, f.ID))(t); !got.MTime.Equal(mt) {
		t.Fatalf("GetAttr after a commit with mtime %v: mtime %v", mt, got.MTime)
	}
	before := time.Now().Add(-time.Minute)
	e = write(t, b, f.ID, e.Version, "now")
	if e.MTime.Before(before) || e.MTime.After(time.Now().Add(time.Minute)) {
		t.Fatalf("a commit without mtime answered mtime %v, want now", e.MTime)
	}
}

// testCommitRequireBase: with RequireBase, a commit edited from a version
// that is no longer current fails with Conflict and makes nothing;
// without it, the commit is made.
func testCommitRequireBase(t *testing.T, b vfs.Backend) {
	f := create(t, b, root(t, b), "f")
	// A file never written is at version 0.
	e, err := b.CommitManifest(ctx, vfs.Commit{ID: f.ID, Manifest: send(t, b, "one"), Base: 0, RequireBase: true})
	ok(t, err)
	v1 := e.Version
	v2 := write(t, b, f.ID, v1, "two").Version
	_, err = b.CommitManifest(ctx, vfs.Commit{ID: f.ID, Manifest: send(t, b, "stale"), Base: v1, RequireBase: true})
	testkit.WantKind(t, err, dfms.Conflict, "a commit on a stale base with RequireBase")
	if vi, s := content(t, b, f.ID, 0); vi.ID != v2 || s != "two" {
		t.Fatalf("a refused commit changed the file: %+v %q", vi, s)
	}
	e, err = b.CommitManifest(ctx, vfs.Commit{ID: f.ID, Manifest: send(t, b, "three"), Base: v2, RequireBase: true})
	ok(t, err)
	if e.Version <= v2 {
		t.Fatalf("a commit on the current base made version %d, after %d", e.Version, v2)
	}
	e, err = b.CommitManifest(ctx, vfs.Commit{ID: f.ID, Manifest: send(t, b, "four"), Base: v1})
	ok(t, err)
	if vi, s := content(t, b, f.ID, 0); vi.ID != e.Version || s != "four" {
		t.Fatalf("a commit on a stale base without RequireBase: %+v %q", vi, s)
	}
}

// testCommitID: a commit with the CommitID of one made already makes
// nothing and answers that one's version.
func testCommitID(t *testing.T, b vfs.Backend) {
	f := create(t, b, root(t, b), "f")
	c := vfs.Commit{ID: f.ID, Manifest: send(t, b, "once"), CommitID: "0123456789abcdef0123456789abcdef"}
	e1 := testkit.Must(b.CommitManifest(ctx, c))(t)
	if e1.Version <= 0 {
		t.Fatalf("a commit with an id = %+v", e1)
	}
	e2 := testkit.Must(b.CommitManifest(ctx, c))(t)
	if e2.Version != e1.Version {
		t.Fatalf("a repeated commit answered version %d, want the first's %d", e2.Version, e1.Version)
	}
	if vs := testkit.Must(b.Versions(ctx, f.ID))(t); len(vs) != 1 {
		t.Fatalf("%d versions after a repeated commit, want 1", len(vs))
	}
	// Another id is another commit, of the same content or not.
	c.CommitID = "fedcba9876543210fedcba9876543210"
	if e3 := testkit.Must(b.CommitManifest(ctx, c))(t); e3.Version <= e1.Version {
		t.Fatalf("a commit with another id answered version %d, want one after %d", e3.Version, e1.Version)
	}
}

// testCommitIDAfterNewerCommit: a repeated commit still makes nothing
// and answers its version once a later commit made another, even with
// RequireBase (its base is stale now).
func testCommitIDAfterNewerCommit(t *testing.T, b vfs.Backend) {
	f := create(t, b, root(t, b), "f")
	c := vfs.Commit{ID: f.ID, Manifest: send(t, b, "once"), CommitID: "0123456789abcdef0123456789abcdef"}
	v1 := testkit.Must(b.CommitManifest(ctx, c))(t).Version
	v2 := write(t, b, f.ID, v1, "next").Version
	again := testkit.Must(b.CommitManifest(ctx, c))(t)
	c.RequireBase = true
	required := testkit.Must(b.CommitManifest(ctx, c))(t)
	vs := versions(t, b, f.ID)
	if len(vs) != 2 || vs[1].ID != v2 {
		t.Fatalf("after the repeats: %+v, want 2 versions, the current %d", vs, v2)
	}
	if got := testkit.Must(b.GetAttr(ctx, f.ID))(t); got.Version != v2 {
		t.Fatalf("a repeated commit made version %d current, want %d still", got.Version, v2)
	}
	if vi, s := content(t, b, f.ID, 0); vi.ID != v2 || s != "next" {
		t.Fatalf("a repeated commit changed the file: %+v %q", vi, s)
	}
	if again.Version != v1 || required.Version != v1 {
		t.Fatalf("the repeats after another commit answered versions %d and %d (with RequireBase), want the first's %d",
			again.Version, required.Version, v1)
	}
}

// testCommitUnsentChunk: a commit naming a chunk never sent fails with
// Conflict and makes nothing; once it is sent the commit is made.
func testCommitUnsentChunk(t *testing.T, b vfs.Backend) {
	f := create(t, b, root(t, b), "f")
	sent := send(t, b, "sent")
	text := neverSent()
	unsent := manifestOf(chunks(text))
	m := dfms.Manifest{Chunks: append(slices.Clone(sent.Chunks), unsent.Chunks...)}
	_, err := b.CommitManifest(ctx, vfs.Commit{ID: f.ID, Manifest: m})
	testkit.WantKind(t, err, dfms.Conflict, "a commit naming an unsent chunk")
	if got := testkit.Must(b.GetAttr(ctx, f.ID))(t); got.Version != 0 || got.Size != 0 {
		t.Fatalf("a refused commit changed the file: %+v", got)
	}
	send(t, b, text)
	e := testkit.Must(b.CommitManifest(ctx, vfs.Commit{ID: f.ID, Manifest: m}))(t)
	if _, s := content(t, b, f.ID, e.Version); s != "sent"+text {
		t.Fatalf("after sending the chunk: %q", s)
	}
}

// testCommitTrashed: a commit to a file in the trash fails with NotExist
// and does not bring it back.
func testCommitTrashed(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	f := create(t, b, r, "f")
	v1 := write(t, b, f.ID, 0, "before").Version
	ok(t, b.Unlink(ctx, r, "f"))
	_, err := b.CommitManifest(ctx, vfs.Commit{ID: f.ID, Manifest: send(t, b, "after"), Base: v1})
	testkit.WantKind(t, err, dfms.NotExist, "a commit to a trashed file")
	got := testkit.Must(b.GetAttr(ctx, f.ID))(t)
	if got.Live || got.Version != v1 {
		t.Fatalf("after a commit to a trashed file: %+v, want it trashed at version %d", got, v1)
	}
	gone(t, b, r, "f")
	// A file renamed over is in the trash as well.
	g := create(t, b, r, "g")
	create(t, b, r, "h")
	ok(t, b.Rename(ctx, r, "h", r, "g", true))
	_, err = b.CommitManifest(ctx, vfs.Commit{ID: g.ID, Manifest: send(t, b, "after")})
	testkit.WantKind(t, err, dfms.NotExist, "a commit to a file renamed over")
}

// testCommitNotAFile: only files have versions.
func testCommitNotAFile(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	d := mkdir(t, b, r, "d")
	_, err := b.CommitManifest(ctx, vfs.Commit{ID: d.ID, Manifest: send(t, b, "x")})
	testkit.WantKind(t, err, dfms.IsDir, "a commit to a directory")
}

// testTrashedStaysReadable: a file unlinked while open is still read, by
// its current version and by lasting ID.
func testTrashedStaysReadable(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	f, vs := history(t, b, r, "f", "first", "second")
	v1, v2 := vs[0], vs[1]
	ok(t, b.Unlink(ctx, r, "f"))
	if vi, s := content(t, b, f.ID, 0); vi.ID != v2 || s != "second" {
		t.Fatalf("the current version of an unlinked file: %+v %q", vi, s)
	}
	if vi, s := content(t, b, f.ID, v1); vi.ID != v1 || s != "first" {
		t.Fatalf("version %d of an unlinked file: %+v %q", v1, vi, s)
	}
}

// testVersions: Versions lists a file's versions oldest first, numbered
// 1, 2, …, with lasting IDs that grow; Manifest finds each by its ID.
func testVersions(t *testing.T, b vfs.Backend) {
	contents := []string{"a", "bb", "ccc"}
	before := time.Now().Add(-time.Minute)
	f, ids := history(t, b, root(t, b), "f", contents...)
	vs := versions(t, b, f.ID)
	if len(vs) != len(contents) {
		t.Fatalf("Versions = %+v, want %d", vs, len(contents))
	}
	for i, v := range vs {
		if v.ID != ids[i] || v.Number != int64(i+1) || v.Size != int64(len(contents[i])) {
			t.Fatalf("version %d = %+v, want id %d number %d size %d", i, v, ids[i], i+1, len(contents[i]))
		}
		if i > 0 && v.ID <= vs[i-1].ID {
			t.Fatalf("lasting IDs do not grow: %+v", vs)
		}
		if v.Time.Before(before) || (i > 0 && v.Time.Before(vs[i-1].Time)) {
			t.Fatalf("version %d was made at %v (the one before at %v)", i, v.Time, vs[max(i-1, 0)].Time)
		}
		vi, s := content(t, b, f.ID, v.ID)
		if vi.ID != v.ID || vi.Number != v.Number || s != contents[i] {
			t.Fatalf("Manifest(%d) = %+v %q, want %+v %q", v.ID, vi, s, v, contents[i])
		}
	}
	_, _, err := b.Manifest(ctx, f.ID, ids[2]+1000)
	testkit.WantKind(t, err, dfms.NotExist, "Manifest of no version")
	_, err = b.Versions(ctx, noSuchID)
	testkit.WantKind(t, err, dfms.NotExist, "Versions of no file")
}

// testVersionsAfterRenameOver: a rename over a file continues its history:
// the file renamed keeps its current version and follows the history of
// the one it replaced; each old version is still found by its lasting ID.
func testVersionsAfterRenameOver(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	dst, ds := history(t, b, r, "dst", "dst one", "dst two")
	d1, d2 := ds[0], ds[1]
	src, ss := history(t, b, r, "src", "src one")
	s1 := ss[0]
	ok(t, b.Rename(ctx, r, "src", r, "dst", true))

	got := testkit.Must(b.Lookup(ctx, r, "dst"))(t)
	if got.ID != src.ID || got.Version != s1 {
		t.Fatalf("after the rename dst is %+v, want file %d at version %d", got, src.ID, s1)
	}
	if vi, s := content(t, b, src.ID, 0); vi.ID != s1 || s != "src one" {
		t.Fatalf("the current version after the rename: %+v %q", vi, s)
	}
	vs := versions(t, b, src.ID)
	var ids []int64
	for i, v := range vs {
		ids = append(ids, v.ID)
		if v.Number != int64(i+1) {
			t.Fatalf("Versions after the rename are not numbered 1, 2, …: %+v", vs)
		}
	}
	if !slices.Equal(ids, []int64{d1, d2, s1}) {
		t.Fatalf("Versions after the rename: IDs %v, want %v (the history taken, then its own)", ids, []int64{d1, d2, s1})
	}
	// The old versions are found by lasting ID, through either file.
	for _, id := range []dfms.EntryID{dst.ID, src.ID} {
		if vi, s := content(t, b, id, d1); vi.ID != d1 || s != "dst one" {
			t.Fatalf("Manifest(%d, %d) after the rename: %+v %q", id, d1, vi, s)
		}
	}
	if vi, s := content(t, b, dst.ID, d2); vi.ID != d2 || s != "dst two" {
		t.Fatalf("Manifest(%d, %d) after the rename: %+v %q", dst.ID, d2, vi, s)
	}
	// A new commit grows the IDs past all of them.
	if e := write(t, b, src.ID, s1, "src two"); e.Version <= max(d2, s1) {
		t.Fatalf("a commit after the rename made version %d", e.Version)
	}
}

// testUsage: a new owner uses nothing and has no quota; committed content
// counts.
func testUsage(t *testing.T, b vfs.Backend) {
	u := testkit.Must(b.Usage(ctx))(t)
	if u.UsedBytes != 0 || u.QuotaBytes != 0 {
		t.Fatalf("a new owner's usage = %+v, want none and no quota", u)
	}
	f := create(t, b, root(t, b), "f")
	write(t, b, f.ID, 0, strings.Repeat("x", 1000), strings.Repeat("y", 234))
	if u := testkit.Must(b.Usage(ctx))(t); u.UsedBytes != 1234 || u.QuotaBytes != 0 {
		t.Fatalf("usage after a commit of 1234 bytes = %+v", u)
	}
}

// testConcurrent: a backend is safe for concurrent use: workers that
// each make, write, read and rename files of their own directory at once
// find what they made.
func testConcurrent(t *testing.T, b vfs.Backend) {
	r := root(t, b)
	const workers, files = 4, 5
	t.Run("workers", func(t *testing.T) {
		for w := range workers {
			t.Run(fmt.Sprint(w), func(t *testing.T) {
				t.Parallel()
				d := mkdir(t, b, r, fmt.Sprintf("d%d", w))
				for i := range files {
					name := fmt.Sprintf("f%d", i)
					f := create(t, b, d.ID, name)
					text := fmt.Sprintf("worker %d file %d", w, i)
					v := write(t, b, f.ID, 0, text, "shared").Version
					if vi, s := content(t, b, f.ID, 0); vi.ID != v || s != text+"shared" {
						t.Fatalf("%s holds %+v %q", name, vi, s)
					}
					ok(t, b.Rename(ctx, d.ID, name, d.ID, name+".done", false))
				}
			})
		}
	})
	if got := names(testkit.Must(b.ReadDir(ctx, r))(t)); len(got) != workers {
		t.Fatalf("the root lists %v, want %d directories", got, workers)
	}
	for w := range workers {
		d := testkit.Must(b.Lookup(ctx, r, fmt.Sprintf("d%d", w)))(t)
		es := testkit.Must(b.ReadDir(ctx, d.ID))(t)
		if len(es) != files {
			t.Fatalf("d%d lists %v, want %d files", w, names(es), files)
		}
		for _, e := range es {
			if !strings.HasSuffix(e.Name, ".done") || e.Version == 0 {
				t.Fatalf("d%d holds %+v", w, e)
			}
		}
	}
}
