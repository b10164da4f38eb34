package fsck_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/fsck"
)

var ctx = context.Background()

var smallChunks = chunking.Params{Algorithm: chunking.Gear, Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}

type env struct {
	*testkit.Stack
	t *testing.T
}

func (e *env) write(name string, data []byte) files.WriteResult {
	e.t.Helper()
	dir := e.User.Root
	if d, base, ok := strings.Cut(name, "/"); ok {
		ent, err := e.Meta.Lookup(ctx, e.User.ID, e.User.Root, d)
		if err != nil {
			ent = testkit.Must(e.Meta.CreateEntry(ctx, dfms.Entry{Owner: e.User.ID, Parent: e.User.Root, Name: d, Kind: dfms.KindDir, Mode: 0o755}))(e.t)
		}
		dir, name = ent.ID, base
	}
	res, err := e.Files.Write(ctx, files.WriteRequest{Owner: e.User.ID, Parent: dir, Name: name, Body: bytes.NewReader(data)})
	testkit.OK(e.t, err)
	return res
}

// chunks returns the distinct chunks of a written file's manifest.
func (e *env) chunks(res files.WriteResult) []dfms.Hash {
	e.t.Helper()
	v := testkit.Must(e.Meta.GetVersion(ctx, e.User.ID, res.Entry.ID, 0))(e.t)
	var out []dfms.Hash
	seen := map[dfms.Hash]bool{}
	for _, c := range v.Manifest.Chunks {
		if !c.IsHole() && !seen[c.Hash] {
			seen[c.Hash] = true
			out = append(out, c.Hash)
		}
	}
	if len(out) < 2 {
		e.t.Fatalf("%d chunks, want a few", len(out))
	}
	return out
}

// sql runs a statement on the SQLite metadata store: the damage no API
// makes.
func (e *env) sql(query string, args ...any) {
	e.t.Helper()
	res, err := e.Meta.(interface{ DB() *sql.DB }).DB().ExecContext(ctx, query, args...)
	testkit.OK(e.t, err)
	if n, _ := res.RowsAffected(); n == 0 {
		e.t.Fatalf("%s changed nothing", query)
	}
}

func (e *env) check(c fsck.Checker) *fsck.Report {
	e.t.Helper()
	c.Meta = e.Meta.(fsck.Meta)
	rep, err := c.Run(ctx)
	testkit.OK(e.t, err)
	// The report survives its JSON form.
	b := testkit.Must(json.Marshal(rep))(e.t)
	var back fsck.Report
	testkit.OK(e.t, json.Unmarshal(b, &back))
	if back.Damage != rep.Damage || back.Clean != rep.Clean {
		e.t.Fatalf("JSON round trip: %+v, want %+v", back.Damage, rep.Damage)
	}
	return rep
}

func wantDamage(t *testing.T, what string, rep *fsck.Report, want fsck.Damage) {
	t.Helper()
	if rep.Damage != want {
		var b strings.Builder
		rep.WriteText(&b)
		t.Fatalf("%s: damage %+v, want %+v\n%s", what, rep.Damage, want, b.String())
	}
	if rep.Clean != (want.Total() == 0) {
		t.Fatalf("%s: clean %v with damage %+v", what, rep.Clean, rep.Damage)
	}
}

func paths(fs []fsck.File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

// One SQLite store and one disk store: a corrupt chunk is lost (there is
// no other copy), a chunk without a row is missing, a skewed count and a
// file whose version is gone are found; repair sets the count right and
// says what it cannot fix, with the files' paths.
func TestSingleStore(t *testing.T) {
	e := &env{testkit.NewStack(t, testkit.Options{Files: files.Options{Chunking: smallChunks}}), t}
	a := e.write("docs/a", testkit.RandBytes(1, 200<<10))
	b := e.write("b", testkit.RandBytes(2, 200<<10))
	c := e.write("c", testkit.RandBytes(3, 100<<10))
	d := e.write("d", nil)
	e.write("docs/c-copy", testkit.RandBytes(3, 100<<10)) // shares c's chunks

	s := fsck.Checker{Store: e.Chunks}
	rep := e.check(s)
	wantDamage(t, "healthy", rep, fsck.Damage{})
	if rep.Versions != 5 || rep.Chunks == 0 || rep.Copies != rep.Chunks || rep.Bytes != rep.CopyBytes || rep.Bytes != 500<<10 {
		t.Fatalf("healthy: checked %+v", rep)
	}

	lostChunk := e.chunks(a)[1]
	testkit.CorruptFile(t, e.ChunkDir, lostChunk.String())
	gone := e.chunks(b)[0]
	e.sql(`DELETE FROM chunks WHERE hash = ?`, gone[:])
	skewed := e.chunks(c)[0]
	e.sql(`UPDATE chunks SET refs = refs + 3 WHERE hash = ?`, skewed[:])
	e.sql(`DELETE FROM versions WHERE id = ?`, d.Version.ID)

	want := fsck.Damage{LostChunks: 1, MissingChunks: 1, RefCounts: 1, DanglingFiles: 1, Unrepaired: 4}
	rep = e.check(s)
	wantDamage(t, "damaged", rep, want)
	if len(rep.LostChunks) != 1 || rep.LostChunks[0].Chunk != lostChunk.String() || !slicesEqual(paths(rep.LostChunks[0].Files), "/docs/a") ||
		rep.LostChunks[0].Files[0].Version != a.Version.ID {
		t.Fatalf("lost chunks %+v, want %s of /docs/a", rep.LostChunks, lostChunk)
	}
	if bcs := rep.LostChunks[0].Copies; len(bcs) != 1 || bcs[0].Problem != fsck.ProblemCorrupt || bcs[0].Chunk != lostChunk.String() || bcs[0].Repaired {
		t.Fatalf("copies of the lost chunk %+v, want the corrupt one", bcs)
	}
	if len(rep.MissingChunks) != 1 || rep.MissingChunks[0].Chunk != gone.String() || !slicesEqual(paths(rep.MissingChunks[0].Files), "/b") {
		t.Fatalf("missing chunks %+v, want %s of /b", rep.MissingChunks, gone)
	}
	if rc := rep.RefCounts[0]; rc.Chunk != skewed.String() || rc.Recorded != rc.Counted+3 || rc.Counted != 2 || rc.Repaired {
		t.Fatalf("reference count %+v, want %s 3 over its 2 references", rc, skewed)
	}
	if df := rep.DanglingFiles[0]; df.Path != "/d" || df.Version != d.Version.ID || df.Trashed {
		t.Fatalf("dangling %+v, want /d", df)
	}
	var text strings.Builder
	testkit.OK(t, rep.WriteText(&text))
	for _, w := range []string{"lost chunk " + lostChunk.String(), "needed by /docs/a", "missing chunk " + gone.String(), "needed by /b",
		"dangling file /d", "reference count of chunk " + skewed.String()} {
		if !strings.Contains(text.String(), w) {
			t.Fatalf("the text report lacks %q:\n%s", w, text.String())
		}
	}

	s.Repair = true
	rep = e.check(s)
	want.Repaired, want.Unrepaired = 1, 3
	wantDamage(t, "repair", rep, want)
	if !rep.RefCounts[0].Repaired || testkit.Must(e.Meta.GetChunk(ctx, skewed))(t).Refs != 2 {
		t.Fatalf("the count was not repaired: %+v", rep.RefCounts)
	}
	s.Repair = false
	rep = e.check(s)
	wantDamage(t, "after repair", rep, fsck.Damage{LostChunks: 1, MissingChunks: 1, DanglingFiles: 1, Unrepaired: 3})
}

func slicesEqual(got []string, want ...string) bool {
	return strings.Join(got, "\n") == strings.Join(want, "\n")
}

// diskCluster returns a cluster of n disk nodes (R = 2), registered in m,
// with the nodes' directories.
func diskCluster(t *testing.T, m meta.Store, n int) (*placement.Cluster, map[string]string) {
	t.Helper()
	var ms []placement.Member
	dirs := map[string]string{}
	for i := range n {
		dir := t.TempDir()
		d := testkit.Must(disk.Open(dir))(t)
		sn := dfms.StorageNode{ID: fmt.Sprintf("n%d", i), URL: fmt.Sprint("file:///n", i), Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp}
		testkit.OK(t, m.PutNode(ctx, sn))
		ms = append(ms, placement.Member{StorageNode: sn, Store: d})
		dirs[sn.ID] = dir
	}
	cl, err := placement.NewCluster(ms, placement.Options{Replicas: 2, Log: m})
	testkit.OK(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl, dirs
}

// A cluster of three disk nodes with two copies: a corrupt copy and a
// copy missing on one owner are replaced from the good copy; a chunk
// deleted from every node is lost, with its file's path.
func TestCluster(t *testing.T) {
	m := testkit.OpenSQLite(t)
	cl, dirs := diskCluster(t, m, 3)
	e := &env{testkit.NewStack(t, testkit.Options{Meta: m, Chunks: cl, Files: files.Options{Chunking: smallChunks}}), t}
	a := e.write("a", testkit.RandBytes(4, 300<<10))
	b := e.write("sub/b", testkit.RandBytes(5, 300<<10))
	s := fsck.Checker{Nodes: cl}
	rep := e.check(s)
	wantDamage(t, "healthy", rep, fsck.Damage{})
	if rep.Copies != 2*rep.Chunks {
		t.Fatalf("checked %d copies of %d chunks, want 2 each", rep.Copies, rep.Chunks)
	}

	corrupt := e.chunks(a)[0]
	corruptNode := cl.Owners(corrupt)[0]
	testkit.CorruptFile(t, dirs[corruptNode], corrupt.String())
	missing := e.chunks(a)[1]
	missingNode := cl.Owners(missing)[1]
	st, _ := cl.Node(missingNode)
	testkit.OK(t, st.Delete(ctx, missing))
	lost := e.chunks(b)[2]
	for _, mb := range cl.Members() {
		testkit.OK(t, mb.Store.Delete(ctx, lost))
	}
	skewed := e.chunks(b)[0]
	e.sql(`UPDATE chunks SET refs = 0 WHERE hash = ?`, skewed[:])

	rep = e.check(s)
	wantDamage(t, "damaged", rep, fsck.Damage{BadCopies: 2, LostChunks: 1, RefCounts: 1, Unrepaired: 4})
	if len(rep.LostChunks) != 1 || rep.LostChunks[0].Chunk != lost.String() || !slicesEqual(paths(rep.LostChunks[0].Files), "/sub/b") {
		t.Fatalf("lost %+v, want %s of /sub/b", rep.LostChunks, lost)
	}
	if cs := rep.LostChunks[0].Copies; len(cs) != 2 || cs[0].Problem != fsck.ProblemMissing || cs[1].Problem != fsck.ProblemMissing {
		t.Fatalf("copies of the lost chunk %+v, want 2 missing", cs)
	}

	s.Repair = true
	rep = e.check(s)
	wantDamage(t, "repair", rep, fsck.Damage{BadCopies: 2, LostChunks: 1, RefCounts: 1, Repaired: 3, Unrepaired: 1})
	for _, bc := range rep.BadCopies {
		fixed := bc.Chunk == corrupt.String() && bc.Node == corruptNode && bc.Problem == fsck.ProblemCorrupt ||
			bc.Chunk == missing.String() && bc.Node == missingNode && bc.Problem == fsck.ProblemMissing
		if bc.Repaired != fixed {
			t.Fatalf("bad copy %+v: repaired %v, want %v", bc, bc.Repaired, fixed)
		}
	}
	for _, h := range []dfms.Hash{corrupt, missing} {
		for _, id := range cl.Owners(h) {
			st, _ := cl.Node(id)
			data := testkit.Must(st.Get(ctx, h, nil))(t)
			if dfms.Sum(data) != h {
				t.Fatalf("copy of %s on %s still bad", h, id)
			}
		}
		if nodes := testkit.Must(m.ChunkReplicas(ctx, h))(t); len(nodes) < 2 {
			t.Fatalf("copies of %s recorded on %v", h, nodes)
		}
	}
	if r := testkit.Must(m.GetChunk(ctx, skewed))(t); r.Refs != 1 || !r.ZeroSince.IsZero() {
		t.Fatalf("skewed chunk after repair: %+v", r)
	}
	s.Repair = false
	rep = e.check(s)
	wantDamage(t, "after repair", rep, fsck.Damage{LostChunks: 1, Unrepaired: 1})
}

// The recount in several spans of the hash space (a bound of a few
// chunks per span forces many, and splits) finds exactly the skewed
// counts, and nothing on a healthy store.
func TestRecountInSpans(t *testing.T) {
	e := &env{testkit.NewStack(t, testkit.Options{Files: files.Options{Chunking: smallChunks}}), t}
	var all []dfms.Hash
	for i := range 6 {
		all = append(all, e.chunks(e.write(fmt.Sprint("f", i), testkit.RandBytes(uint64(10+i), 150<<10)))...)
	}
	up := testkit.Must(e.Meta.CreateUpload(ctx, meta.Upload{Owner: e.User.ID, Parent: e.User.Root, Name: "up", PartSize: 1 << 20}, 0))(t)
	testkit.Must(e.Files.WritePart(ctx, e.User.ID, up.ID, 1, bytes.NewReader(testkit.RandBytes(10, 150<<10)), 1<<20))(t)
	cm := &countingMeta{Meta: e.Meta.(fsck.Meta)}
	s := fsck.Checker{Store: e.Chunks, MaxCounts: 4, Page: 3}
	rep := testkit.Must((&fsck.Checker{Meta: cm, Store: e.Chunks, MaxCounts: 4, Page: 3}).Run(ctx))(t)
	wantDamage(t, "healthy", rep, fsck.Damage{})
	// Pass 2 reads the manifests once, pass 3 once per span.
	if spans := cm.starts - 1; spans < int(rep.Chunks)/4 {
		t.Fatalf("%d spans for %d chunks, at most 4 counts each", spans, rep.Chunks)
	}
	if rep.Parts != 1 || rep.Versions != 6 {
		t.Fatalf("read %d versions and %d parts, want 6 and 1", rep.Versions, rep.Parts)
	}
	lone := all[len(all)-1] // f5's: one reference
	e.sql(`UPDATE chunks SET refs = refs + 1 WHERE hash = ?`, lone[:])
	e.sql(`UPDATE chunks SET refs = refs - 1 WHERE hash = ?`, all[0][:]) // shared with the part: 2 references
	rep = e.check(s)
	wantDamage(t, "skewed", rep, fsck.Damage{RefCounts: 2, Unrepaired: 2})
	got := map[string]fsck.RefCount{}
	for _, rc := range rep.RefCounts {
		got[rc.Chunk] = rc
	}
	if rc := got[lone.String()]; rc.Recorded != 2 || rc.Counted != 1 {
		t.Fatalf("count of %s: %+v", lone, rc)
	}
	if rc := got[all[0].String()]; rc.Recorded != 1 || rc.Counted != 2 {
		t.Fatalf("count of %s: %+v", all[0], rc)
	}
}

// Manifests that name many more chunks than there are rows (the rows
// were lost) overflow the bound of a span: it is halved until each half
// fits, and the counts stay exact.
func TestRecountSplitsSpans(t *testing.T) {
	e := &env{testkit.NewStack(t, testkit.Options{Files: files.Options{Chunking: smallChunks}}), t}
	hs := e.chunks(e.write("f", testkit.RandBytes(40, 400<<10)))
	for _, h := range hs[2:] {
		e.sql(`DELETE FROM chunks WHERE hash = ?`, h[:])
	}
	e.sql(`UPDATE chunks SET refs = 7 WHERE hash = ?`, hs[1][:])
	cm := &countingMeta{Meta: e.Meta.(fsck.Meta)}
	rep := testkit.Must((&fsck.Checker{Meta: cm, Store: e.Chunks, MaxCounts: 3}).Run(ctx))(t)
	wantDamage(t, "rows lost", rep, fsck.Damage{MissingChunks: len(hs) - 2, RefCounts: 1, Unrepaired: len(hs) - 1})
	if rc := rep.RefCounts[0]; rc.Chunk != hs[1].String() || rc.Recorded != 7 || rc.Counted != 1 {
		t.Fatalf("count %+v", rc)
	}
	// One span to start with (two rows), split until 3 counts fit.
	if spans := cm.starts - 1; spans < len(hs)/3 {
		t.Fatalf("%d passes over the manifests for %d chunks at most 3 a span", spans, len(hs))
	}
}

// countingMeta counts the passes over the versions.
type countingMeta struct {
	fsck.Meta
	starts int
}

func (c *countingMeta) CheckVersions(ctx context.Context, after int64, limit int) ([]meta.CheckedManifest, error) {
	if after == 0 {
		c.starts++
	}
	return c.Meta.CheckVersions(ctx, after, limit)
}

// A repair racing commits and purges changes no count that was right: a
// check after them finds nothing.
func TestRepairRacesWrites(t *testing.T) {
	e := &env{testkit.NewStack(t, testkit.Options{Files: files.Options{Chunking: smallChunks}}), t}
	shared := testkit.RandBytes(20, 100<<10)
	for i := range 4 {
		e.write(fmt.Sprint("base", i), shared)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprint("w", i%3)
			res, err := e.Files.Write(ctx, files.WriteRequest{Owner: e.User.ID, Parent: e.User.Root, Name: name, Body: bytes.NewReader(shared)})
			if err != nil {
				t.Error(err)
				return
			}
			if i%2 == 1 {
				if err := e.Files.Delete(ctx, e.User.ID, res.Entry.ID); err != nil {
					t.Error(err)
					return
				}
				if _, err := e.Files.Purge(ctx, e.User.ID, res.Entry.ID); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	for range 5 {
		e.check(fsck.Checker{Store: e.Chunks, Repair: true})
	}
	close(stop)
	wg.Wait()
	wantDamage(t, "after the race", e.check(fsck.Checker{Store: e.Chunks}), fsck.Damage{})
}

// staleMeta answers the check's pages as they were a moment ago: with a
// chunk row and a version that GC and a purge have removed since.
type staleMeta struct {
	fsck.Meta
	gone dfms.Hash
}

func (m staleMeta) CheckChunks(ctx context.Context, from dfms.Hash, limit int) ([]meta.ChunkRecord, error) {
	rows, err := m.Meta.CheckChunks(ctx, from, limit)
	if from == (dfms.Hash{}) {
		rows = append([]meta.ChunkRecord{{Chunk: meta.Chunk{Hash: m.gone, Size: 5, Refs: 1}}}, rows...)
	}
	return rows, err
}

func (m staleMeta) CheckVersions(ctx context.Context, after int64, limit int) ([]meta.CheckedManifest, error) {
	page, err := m.Meta.CheckVersions(ctx, after, limit)
	if after == 0 && limit > 1 {
		page = append(page, meta.CheckedManifest{Version: 1 << 40, Entry: 1, Owner: 1,
			Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{{Hash: m.gone, Size: 5}}}})
	}
	return page, err
}

// What a live store changed between a page and its check (a chunk row
// gone, a version purged) is not reported as damage.
func TestStalePagesAreNoDamage(t *testing.T) {
	e := &env{testkit.NewStack(t, testkit.Options{Files: files.Options{Chunking: smallChunks}}), t}
	e.write("a", testkit.RandBytes(30, 100<<10))
	m := staleMeta{Meta: e.Meta.(fsck.Meta), gone: dfms.Sum([]byte("gone"))}
	rep := testkit.Must((&fsck.Checker{Meta: m, Store: e.Chunks, Page: 1000}).Run(ctx))(t)
	wantDamage(t, "stale pages", rep, fsck.Damage{})
	if rep.Versions != 2 {
		t.Fatalf("read %d versions, want the stale one too", rep.Versions)
	}
}

func TestBadInput(t *testing.T) {
	_, err := (&fsck.Checker{}).Run(ctx)
	testkit.WantKind(t, err, dfms.Invalid, "no stores")
}
