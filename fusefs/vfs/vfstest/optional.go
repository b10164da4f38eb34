package vfstest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// The optional interfaces: each case skips a backend that does not
// implement its interface.

// testChangeFeed: the changes after a cursor, in order, each with its
// entry, directory, operation (a commit's with the version it made) and,
// from a backend that names its changes (Originator), its origin; the
// cursor returned continues after them.
func testChangeFeed(t *testing.T, b vfs.Backend) {
	cf := as[vfs.ChangeFeed](t, b)
	r := root(t, b)
	cur := testkit.Must(cf.LatestChange(ctx))(t)
	f := create(t, b, r, "f")
	v := write(t, b, f.ID, 0, "changed").Version
	d := mkdir(t, b, r, "d")
	mode := uint32(0o600)
	testkit.Must(b.SetAttr(ctx, f.ID, dfms.SetAttr{Mode: &mode}))(t)
	ok(t, b.SetXattr(ctx, f.ID, "user.x", []byte("x"), dfms.XattrAny))
	ok(t, b.Rename(ctx, r, "f", d.ID, "g", false))
	ok(t, b.Unlink(ctx, d.ID, "g"))
	want := []vfs.Change{
		{Entry: f.ID, Parent: r, Op: dfms.ChangeCreate},
		{Entry: f.ID, Parent: r, Op: dfms.ChangeVersion, Version: v},
		{Entry: d.ID, Parent: r, Op: dfms.ChangeCreate},
		{Entry: f.ID, Parent: r, Op: dfms.ChangeAttr},
		{Entry: f.ID, Parent: r, Op: dfms.ChangeAttr},
		// A move to another directory is reported for each of the two.
		{Entry: f.ID, Parent: d.ID, Op: dfms.ChangeRename},
		{Entry: f.ID, Parent: r, Op: dfms.ChangeRename},
		{Entry: f.ID, Parent: d.ID, Op: dfms.ChangeTrash},
	}
	origin := ""
	if o, ok := b.(vfs.Originator); ok {
		origin = o.Origin()
	}
	for i := range want {
		want[i].Origin = origin
	}
	got, next := changesSince(t, cf, cur, len(want))
	if !slices.Equal(got, want) {
		t.Fatalf("Changes after %d =\n%+v\nwant\n%+v", cur, got, want)
	}
	if next <= cur {
		t.Fatalf("Changes after %d answered cursor %d", cur, next)
	}
	if latest := testkit.Must(cf.LatestChange(ctx))(t); latest != next {
		t.Fatalf("LatestChange = %d after reading to %d", latest, next)
	}
	// Nothing after the latest: an empty answer, the cursor unchanged.
	chs, again, err := cf.Changes(ctx, next, 0)
	ok(t, err)
	if len(chs) != 0 || again != next {
		t.Fatalf("Changes after the latest = %+v, cursor %d; want none, %d", chs, again, next)
	}
}

// changesSince reads the changes after cur until it has n (or a read
// finds no more), and returns them with the cursor after them.
func changesSince(t *testing.T, cf vfs.ChangeFeed, cur int64, n int) ([]vfs.Change, int64) {
	t.Helper()
	var out []vfs.Change
	for len(out) < n {
		chs, next, err := cf.Changes(ctx, cur, 0)
		ok(t, err)
		if len(chs) == 0 {
			break
		}
		out, cur = append(out, chs...), next
	}
	return out, cur
}

// testChangeFeedWait: Changes waits for a change up to its wait, and
// answers one made meanwhile without waiting the rest.
func testChangeFeedWait(t *testing.T, b vfs.Backend) {
	cf := as[vfs.ChangeFeed](t, b)
	r := root(t, b)
	cur := testkit.Must(cf.LatestChange(ctx))(t)
	const wait = time.Second
	start := time.Now()
	chs, next, err := cf.Changes(ctx, cur, wait)
	ok(t, err)
	if len(chs) != 0 || next != cur {
		t.Fatalf("Changes with nothing changed = %+v, cursor %d", chs, next)
	}
	if took := time.Since(start); took < wait/2 {
		t.Fatalf("Changes with nothing changed answered after %v, want it to wait about %v", took, wait)
	}
	made := make(chan vfs.Entry, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		e, err := b.Mkdir(ctx, r, "d", 0o755, 0, 0)
		if err != nil {
			t.Error(err)
		}
		made <- e
	}()
	const long = 20 * time.Second
	start = time.Now()
	chs, next, err = cf.Changes(ctx, cur, long)
	ok(t, err)
	took := time.Since(start)
	d := <-made
	if len(chs) != 1 || chs[0].Entry != d.ID || chs[0].Op != dfms.ChangeCreate || next <= cur {
		t.Fatalf("Changes during a mkdir = %+v, cursor %d; want the mkdir of %d", chs, next, d.ID)
	}
	if took > long/2 {
		t.Fatalf("Changes answered a change after %v, want it at once", took)
	}
}

// testCommitBatcher: CommitManifests makes each commit as CommitManifest
// would, answering each one's entry (with the version made) or error; one
// that fails does not stop the others.
func testCommitBatcher(t *testing.T, b vfs.Backend) {
	cb := as[vfs.CommitBatcher](t, b)
	r := root(t, b)
	f := create(t, b, r, "f")
	g := create(t, b, r, "g")
	trashed := create(t, b, r, "trashed")
	ok(t, b.Unlink(ctx, r, "trashed"))
	d := mkdir(t, b, r, "d")
	mt := stamp(time.Hour)
	cs := []vfs.Commit{
		{ID: f.ID, Manifest: send(t, b, "f's"), MTime: mt},
		{ID: trashed.ID, Manifest: send(t, b, "trashed's")},
		{ID: g.ID, Manifest: manifestOf(chunks(neverSent()))},
		{ID: noSuchID, Manifest: send(t, b, "nobody's")},
		{ID: d.ID, Manifest: send(t, b, "d's")},
		{ID: g.ID, Manifest: send(t, b, "g's", "too")},
	}
	res := testkit.Must(cb.CommitManifests(ctx, cs))(t)
	// A trashed file, an unsent chunk, no file, a directory.
	wantOutcomes(t, "CommitManifests", errsOf(res), succeeds, failsWith(dfms.NotExist), failsWith(dfms.Conflict),
		failsWith(dfms.NotExist), failsWith(dfms.IsDir), succeeds)
	for _, i := range []int{0, 5} {
		e, c := res[i].Entry, cs[i]
		if e.ID != c.ID || e.Version <= 0 || e.Size != c.Manifest.Size() {
			t.Fatalf("result %d = %+v, want file %d with a version and size %d", i, e, c.ID, c.Manifest.Size())
		}
		got := testkit.Must(b.GetAttr(ctx, c.ID))(t)
		if got.Version != e.Version || got.Size != e.Size {
			t.Fatalf("GetAttr after batched commit %d = %+v, want version %d", i, got, e.Version)
		}
	}
	if !res[0].Entry.MTime.Equal(mt) {
		t.Fatalf("a batched commit with mtime %v answered %v", mt, res[0].Entry.MTime)
	}
	if _, s := content(t, b, f.ID, 0); s != "f's" {
		t.Fatalf("f holds %q", s)
	}
	if _, s := content(t, b, g.ID, 0); s != "g'stoo" {
		t.Fatalf("g holds %q", s)
	}
	if live(t, b, trashed.ID) {
		t.Fatal("a batched commit brought a trashed file back")
	}
}

// testCommitBatcherRequireBase: a batched commit with RequireBase on a
// stale base fails with Conflict and makes nothing; on the current base
// it is made.
func testCommitBatcherRequireBase(t *testing.T, b vfs.Backend) {
	cb := as[vfs.CommitBatcher](t, b)
	r := root(t, b)
	stale, ss := history(t, b, r, "stale", "s1", "s2")
	s1, s2 := ss[0], ss[1]
	cur, cs := history(t, b, r, "current", "c1")
	c1 := cs[0]
	res := testkit.Must(cb.CommitManifests(ctx, []vfs.Commit{
		{ID: stale.ID, Manifest: send(t, b, "on s1"), Base: s1, RequireBase: true},
		{ID: cur.ID, Manifest: send(t, b, "on c1"), Base: c1, RequireBase: true},
	}))(t)
	if len(res) != 2 {
		t.Fatalf("%d results for 2 commits", len(res))
	}
	ok(t, res[1].Err)
	if res[1].Entry.Version <= c1 {
		t.Fatalf("a batched commit on the current base made version %d, after %d", res[1].Entry.Version, c1)
	}
	testkit.WantKind(t, res[0].Err, dfms.Conflict, "a batched commit on a stale base with RequireBase")
	if vi, s := content(t, b, stale.ID, 0); vi.ID != s2 || s != "s2" {
		t.Fatalf("a refused batched commit changed the file: %+v %q", vi, s)
	}
}

// testCommitBatcherIdempotent: a batched commit with the CommitID of one
// made already, batched or not, answers that one's version.
func testCommitBatcherIdempotent(t *testing.T, b vfs.Backend) {
	cb := as[vfs.CommitBatcher](t, b)
	r := root(t, b)
	f := create(t, b, r, "f")
	g := create(t, b, r, "g")
	single := vfs.Commit{ID: f.ID, Manifest: send(t, b, "single"), CommitID: "single-0123456789abcdef"}
	v1 := testkit.Must(b.CommitManifest(ctx, single))(t).Version
	batched := vfs.Commit{ID: g.ID, Manifest: send(t, b, "batched"), CommitID: "batched-0123456789abcdef"}
	first := testkit.Must(cb.CommitManifests(ctx, []vfs.Commit{single, batched}))(t)
	wantOutcomes(t, "CommitManifests", errsOf(first), succeeds, succeeds)
	if first[0].Entry.Version != v1 {
		t.Fatalf("a batched repeat of a commit answered version %d, want %d", first[0].Entry.Version, v1)
	}
	again := testkit.Must(cb.CommitManifests(ctx, []vfs.Commit{batched}))(t)
	wantOutcomes(t, "CommitManifests again", errsOf(again), succeeds)
	if again[0].Entry.Version != first[1].Entry.Version {
		t.Fatalf("a repeated batched commit answered version %d, want %d", again[0].Entry.Version, first[1].Entry.Version)
	}
	if e := testkit.Must(b.CommitManifest(ctx, batched))(t); e.Version != first[1].Entry.Version {
		t.Fatalf("a repeat of a batched commit answered version %d, want %d", e.Version, first[1].Entry.Version)
	}
	for _, id := range []dfms.EntryID{f.ID, g.ID} {
		if vs := testkit.Must(b.Versions(ctx, id))(t); len(vs) != 1 {
			t.Fatalf("file %d has %d versions after the repeats, want 1", id, len(vs))
		}
	}
	// Once the file moved on, a batched repeat makes nothing and answers
	// the version it made.
	g2 := write(t, b, g.ID, first[1].Entry.Version, "moved on").Version
	late := testkit.Must(cb.CommitManifests(ctx, []vfs.Commit{batched}))(t)
	wantOutcomes(t, "CommitManifests once moved on", errsOf(late), succeeds)
	if got := testkit.Must(b.GetAttr(ctx, g.ID))(t); got.Version != g2 {
		t.Fatalf("a batched repeat made version %d current, want %d still", got.Version, g2)
	}
	if vs := testkit.Must(b.Versions(ctx, g.ID))(t); len(vs) != 2 {
		t.Fatalf("a batched repeat after another commit: %d versions, want 2", len(vs))
	}
	if late[0].Entry.Version != first[1].Entry.Version {
		t.Fatalf("a batched repeat after another commit answered version %d, want %d", late[0].Entry.Version, first[1].Entry.Version)
	}
}

// testChunkCommitter: CommitManifestStoring stores the chunks the backend
// lacks while it commits, and says how many.
func testChunkCommitter(t *testing.T, b vfs.Backend) {
	cc := as[vfs.ChunkCommitter](t, b)
	r := root(t, b)
	f := create(t, b, r, "f")
	cs := chunks("stored ", "with ", "the commit")
	ok(t, b.PutChunks(ctx, cs[1:2]))
	e, n, err := cc.CommitManifestStoring(ctx, vfs.Commit{ID: f.ID, Manifest: manifestOf(cs)}, cs)
	ok(t, err)
	if n != 2 {
		t.Fatalf("CommitManifestStoring stored %d chunks, want the 2 not sent", n)
	}
	if m := manifestOf(cs); e.ID != f.ID || e.Version <= 0 || e.Size != m.Size() {
		t.Fatalf("CommitManifestStoring = %+v", e)
	}
	if vi, s := content(t, b, f.ID, 0); vi.ID != e.Version || s != "stored with the commit" {
		t.Fatalf("after CommitManifestStoring: %+v %q", vi, s)
	}
	if miss := testkit.Must(b.Missing(ctx, []dfms.Hash{cs[0].Hash, cs[2].Hash}))(t); len(miss) != 0 {
		t.Fatalf("chunks stored with a commit are missing: %v", miss)
	}
	e2, n, err := cc.CommitManifestStoring(ctx, vfs.Commit{ID: f.ID, Manifest: manifestOf(cs), Base: e.Version}, cs)
	ok(t, err)
	if n != 0 || e2.Version <= e.Version {
		t.Fatalf("a second commit of the same chunks stored %d, made version %d after %d", n, e2.Version, e.Version)
	}
	// The contract of CommitManifest holds: a trashed file fails NotExist.
	ok(t, b.Unlink(ctx, r, "f"))
	_, _, err = cc.CommitManifestStoring(ctx, vfs.Commit{ID: f.ID, Manifest: manifestOf(cs)}, cs)
	testkit.WantKind(t, err, dfms.NotExist, "CommitManifestStoring to a trashed file")
}

// testFileCreator: ReserveIDs hands out ids no entry has; CreateFiles
// makes empty files under them, as CreateFile would, one that fails not
// stopping the others.
func testFileCreator(t *testing.T, b vfs.Backend) {
	fc := as[vfs.FileCreator](t, b)
	r := root(t, b)
	existing := create(t, b, r, "taken")
	ids := testkit.Must(fc.ReserveIDs(ctx, 5))(t)
	if len(ids) != 5 {
		t.Fatalf("ReserveIDs(5) = %v", ids)
	}
	seen := map[dfms.EntryID]bool{r: true, existing.ID: true}
	for _, id := range ids {
		if id <= 0 || seen[id] {
			t.Fatalf("ReserveIDs = %v: %d is taken or repeated", ids, id)
		}
		seen[id] = true
	}
	more := testkit.Must(fc.ReserveIDs(ctx, 2))(t)
	for _, id := range more {
		if seen[id] {
			t.Fatalf("a second reservation %v repeats an id of the first %v", more, ids)
		}
	}
	if e := create(t, b, r, "after"); seen[e.ID] {
		t.Fatalf("CreateFile took reserved id %d", e.ID)
	}
	mt := stamp(time.Hour)
	es := []vfs.Entry{
		{ID: ids[0], Parent: r, Name: "a", Mode: 0o640, UID: 3, GID: 4, MTime: mt},
		{ID: ids[1], Parent: r, Name: "taken", Mode: 0o644},
		{ID: ids[2], Parent: noSuchID, Name: "b", Mode: 0o644},
		{ID: ids[3], Parent: existing.ID, Name: "c", Mode: 0o644},
		{ID: ids[4], Parent: r, Name: "d", Mode: 0o600},
	}
	res := testkit.Must(fc.CreateFiles(ctx, es))(t)
	// A taken name, no directory, a file for a directory.
	wantOutcomes(t, "CreateFiles", errsOf(res), succeeds, failsWith(dfms.Exist), failsWith(dfms.NotExist),
		failsWith(dfms.NotDir), succeeds)
	for _, i := range []int{0, 4} {
		want := es[i]
		want.Kind = dfms.KindFile
		wantMade(t, fmt.Sprintf("CreateFiles result %d", i), res[i].Entry, want)
		if l := testkit.Must(b.Lookup(ctx, r, want.Name))(t); l.ID != want.ID {
			t.Fatalf("Lookup(%s) = %+v, want id %d", want.Name, l, want.ID)
		}
	}
	if got := testkit.Must(b.GetAttr(ctx, ids[0]))(t); !got.MTime.Equal(mt) {
		t.Fatalf("CreateFiles with mtime %v: %v", mt, got.MTime)
	}
	if l := testkit.Must(b.Lookup(ctx, r, "taken"))(t); l.ID != existing.ID {
		t.Fatalf("a refused create replaced the name: %+v", l)
	}
	// The files made are files like any other.
	e := write(t, b, ids[0], 0, "created ahead")
	if _, s := content(t, b, ids[0], e.Version); s != "created ahead" {
		t.Fatalf("a file created ahead holds %q", s)
	}
}

// testTrasher: TrashFiles moves each entry to the trash as unlinked at
// the time given; one that fails (NotExist if it is not live) does not
// stop the others, and the directory's times move up to it, not back.
func testTrasher(t *testing.T, b vfs.Backend) {
	tr := as[vfs.Trasher](t, b)
	r := root(t, b)
	d := mkdir(t, b, r, "d")
	f := create(t, b, d.ID, "f")
	l := testkit.Must(b.Symlink(ctx, d.ID, "l", "f", 0, 0))(t)
	old := create(t, b, d.ID, "old")
	ok(t, b.Unlink(ctx, d.ID, "old"))
	before := testkit.Must(b.GetAttr(ctx, d.ID))(t)
	earlier := before.MTime.Add(-time.Hour)
	errs := testkit.Must(tr.TrashFiles(ctx, []dfms.EntryID{f.ID, old.ID, l.ID, noSuchID}, []time.Time{earlier, earlier, earlier, earlier}))(t)
	wantOutcomes(t, "TrashFiles", errs, succeeds, failsWith(dfms.NotExist), succeeds, failsWith(dfms.NotExist))
	for _, e := range []vfs.Entry{f, l} {
		gone(t, b, d.ID, e.Name)
		if live(t, b, e.ID) {
			t.Fatalf("%s is live after TrashFiles", e.Name)
		}
	}
	// Sent again (its answer lost): nothing is trashed twice.
	errs = testkit.Must(tr.TrashFiles(ctx, []dfms.EntryID{f.ID, l.ID}, []time.Time{earlier, earlier}))(t)
	wantOutcomes(t, "TrashFiles again", errs, failsWith(dfms.NotExist), failsWith(dfms.NotExist))
	after := testkit.Must(b.GetAttr(ctx, d.ID))(t)
	if after.MTime.Before(before.MTime) || after.CTime.Before(before.CTime) {
		t.Fatalf("the directory's times went back: %v/%v, before %v/%v", after.MTime, after.CTime, before.MTime, before.CTime)
	}
	// A later time moves them up.
	g := create(t, b, d.ID, "g")
	later := stamp(-time.Hour) // an hour ahead
	errs = testkit.Must(tr.TrashFiles(ctx, []dfms.EntryID{g.ID}, []time.Time{later}))(t)
	wantOutcomes(t, "TrashFiles", errs, succeeds)
	if got := testkit.Must(b.GetAttr(ctx, d.ID))(t); !got.MTime.Equal(later) {
		t.Fatalf("after trashing at %v the directory's mtime is %v", later, got.MTime)
	}
}

// testSyncer: Sync succeeds, with changes to make durable or none.
func testSyncer(t *testing.T, b vfs.Backend) {
	s := as[vfs.Syncer](t, b)
	ok(t, s.Sync(ctx))
	r := root(t, b)
	f := create(t, b, r, "f")
	ok(t, s.Sync(ctx))
	write(t, b, f.ID, 0, "synced")
	ok(t, b.Rename(ctx, r, "f", r, "g", false))
	ok(t, s.Sync(ctx))
	ok(t, s.Sync(ctx))
	if got := testkit.Must(b.Lookup(ctx, r, "g"))(t); got.ID != f.ID {
		t.Fatalf("after Sync: %+v", got)
	}
}

// testOriginator: a backend's origin is not empty and stays the same.
// (ChangeFeed checks that its changes carry it.)
func testOriginator(t *testing.T, b vfs.Backend) {
	o := as[vfs.Originator](t, b)
	origin := o.Origin()
	if origin == "" {
		t.Fatal("Origin is empty")
	}
	create(t, b, root(t, b), "f")
	if again := o.Origin(); again != origin {
		t.Fatalf("Origin changed from %q to %q", origin, again)
	}
}
