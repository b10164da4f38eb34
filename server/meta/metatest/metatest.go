// Package metatest is the conformance suite of meta.Store. Every backend
// runs all of it:
//
//	metatest.Run(t, func(t *testing.T) meta.Store { return openFresh(t) })
//
// open must return an empty store of its own for each call; the suite closes
// it. A bug found in one backend becomes a case here.
package metatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

// Run runs every case against stores made by open.
func Run(t *testing.T, open func(t *testing.T) meta.Store) {
	opened := func(t *testing.T) meta.Store { // closed when its case ends
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	testkit.RunCases(t, opened,
		testUsers,
		testLastAdmin,
		testLastAdminRace,
		testTreeBasics,
		testSpecialFiles,
		testHardLinks,
		testHistoryFollowsTheDocument,
		testNames,
		testIsolation,
		testSetAttr,
		testRename,
		testRenameReplace,
		testTrashRestorePurge,
		testTrashRestoreConflicts,
		testCommitVersions,
		testCommitBatch,
		testRefsPerOccurrence,
		testCommitMissingChunk,
		testCommitErrors,
		testQuota,
		testDeleteVersion,
		testXattrs,
		testDirTimes,
		testMissingChunks,
		testSweepProtocol,
		testMultipart,
		testMultipartErrors,
		testSearch,
		testSearchBadText,
		testChanges,
		testChangesInCommitOrder,
		testChangesConcurrentWriters,
		testNodes,
		testNodeDraining,
		testRemoveNode,
		testReplicas,
		testConcurrentCommits,
		testConcurrentRenames,
		testUsage,
		testRefreshTokens,
		testListSortPage,
		testListPages,
		testChunkOwners,
		testPossessionGoesWithTheChunk,
		testPendingChunks,
		testLock,
		testLockFencing,
		testLazyDurability,
		testReservedIDs,
		testTrashEntries,
		testManyChunks,
		testCommitStoring,
		testVersionIdentity,
		testCommitIdempotent,
		testTimesOutOfRange,
		testQuotaHolds,
		testQuotaHoldsExpire,
		testQuotaParts,
		testQuotaXattrs,
		testUploadLifetime,
		testUploadCap,
		testHoles,
		testOutbox,
	)
	testkit.RunCases(t, opened, checkerCases...)
}

var ctx = context.Background()

// ok fails t at once if err is not nil.
var ok = testkit.OK

var userSeq struct {
	sync.Mutex
	n int
}

func newUser(t *testing.T, s meta.Store) meta.User {
	t.Helper()
	userSeq.Lock()
	userSeq.n++
	n := userSeq.n
	userSeq.Unlock()
	return testkit.Must(s.CreateUser(ctx, meta.User{Email: fmt.Sprintf("user%d@example.com", n), Active: true, DisplayName: "U"}))(t)
}

func mkdir(t *testing.T, s meta.Store, owner dfms.UserID, parent dfms.EntryID, name string) dfms.Entry {
	t.Helper()
	return testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: owner, Parent: parent, Name: name, Kind: dfms.KindDir, Mode: 0o755}))(t)
}

// chunk returns a ChunkRef for a made-up chunk named by s.
func chunk(s string, size uint32) dfms.ChunkRef {
	return dfms.ChunkRef{Hash: dfms.Sum([]byte(s)), Size: size}
}

// storeChunks records chunks as a write does: reserved, then stored.
func storeChunks(t *testing.T, s meta.Store, refs []dfms.ChunkRef) {
	t.Helper()
	ok(t, s.ReserveChunks(ctx, refs))
	ok(t, s.AddChunks(ctx, refs))
}

// manifest builds a manifest from refs and registers its chunks.
func manifest(t *testing.T, s meta.Store, refs ...dfms.ChunkRef) dfms.Manifest {
	t.Helper()
	storeChunks(t, s, refs)
	return dfms.Manifest{Chunks: refs}
}

func commit(t *testing.T, s meta.Store, owner dfms.UserID, parent dfms.EntryID, name string, m dfms.Manifest) (dfms.Entry, dfms.Version) {
	t.Helper()
	e, v, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: owner, Parent: parent, Name: name, Manifest: m,
		SHA256: dfms.Sum([]byte(name)), Mode: 0o644})
	if err != nil {
		t.Fatalf("commit %s: %v", name, err)
	}
	return e, v
}

func refs(t *testing.T, s meta.Store, r dfms.ChunkRef) int64 {
	t.Helper()
	return testkit.Must(s.GetChunk(ctx, r.Hash))(t).Refs
}

func names(es []dfms.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func testUsers(t *testing.T, s meta.Store) {
	u := testkit.Must(s.CreateUser(ctx, meta.User{Email: "Alice@Example.com", PasswordHash: "h", DisplayName: "Alice", Active: true, QuotaBytes: 100}))(t)
	if u.ID == 0 || u.Root == 0 || u.Role != meta.RoleUser || !u.Active || u.QuotaBytes != 100 {
		t.Fatalf("created user = %+v", u)
	}
	root := testkit.Must(s.GetEntry(ctx, u.ID, u.Root))(t)
	if root.Kind != dfms.KindDir || root.Parent != 0 || root.Name != "" {
		t.Fatalf("root = %+v, want a parentless directory", root)
	}
	got := testkit.Must(s.GetUserByEmail(ctx, "alice@EXAMPLE.com"))(t)
	if got.ID != u.ID || got.Email != "Alice@Example.com" {
		t.Fatalf("by email: got %+v, want id %d", got, u.ID)
	}
	_, err := s.CreateUser(ctx, meta.User{Email: "ALICE@example.COM"})
	testkit.WantKind(t, err, dfms.Exist, "duplicate email in another case")
	_, err = s.CreateUser(ctx, meta.User{Email: " "})
	testkit.WantKind(t, err, dfms.Invalid, "empty email")
	_, err = s.CreateUser(ctx, meta.User{Email: "x@y", Role: "root"})
	testkit.WantKind(t, err, dfms.Invalid, "bad role")
	_, err = s.GetUser(ctx, u.ID+1000)
	testkit.WantKind(t, err, dfms.NotExist, "missing user")

	got.Role, got.Active, got.QuotaBytes, got.PasswordHash = meta.RoleAdmin, false, 5, "h2"
	ok(t, s.UpdateUser(ctx, got))
	got = testkit.Must(s.GetUser(ctx, u.ID))(t)
	if got.Role != meta.RoleAdmin || got.Active || got.QuotaBytes != 5 || got.PasswordHash != "h2" {
		t.Fatalf("after update: %+v", got)
	}
	testkit.WantKind(t, s.UpdateUser(ctx, meta.User{ID: 9999, Email: "a@b"}), dfms.NotExist, "update missing")
	b := newUser(t, s)
	all := testkit.Must(s.ListUsers(ctx))(t)
	if len(all) != 2 || all[0].ID != u.ID || all[1].ID != b.ID {
		t.Fatalf("ListUsers = %v", all)
	}
}

func testTreeBasics(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "docs")
	mkdir(t, s, u.ID, u.Root, "b")
	mkdir(t, s, u.ID, u.Root, "a")
	f := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "empty", Kind: dfms.KindFile, Mode: 0o600}))(t)
	if f.Size != 0 || f.Version != 0 || f.Mode != 0o600 {
		t.Fatalf("empty file = %+v", f)
	}
	l := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: "link", Kind: dfms.KindSymlink, Mode: 0o777, Target: "../a"}))(t)
	if l.Size != 4 || l.Target != "../a" {
		t.Fatalf("symlink = %+v", l)
	}
	_, err := s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: "bad", Kind: dfms.KindSymlink})
	testkit.WantKind(t, err, dfms.Invalid, "symlink without target")

	got := testkit.Must(s.Lookup(ctx, u.ID, u.Root, "docs"))(t)
	if got.ID != d.ID || got.Kind != dfms.KindDir || got.Parent != u.Root {
		t.Fatalf("Lookup docs = %+v", got)
	}
	_, err = s.Lookup(ctx, u.ID, u.Root, "nope")
	testkit.WantKind(t, err, dfms.NotExist, "lookup missing")
	_, err = s.Lookup(ctx, u.ID, f.ID, "x")
	testkit.WantKind(t, err, dfms.NotDir, "lookup in a file")

	list := testkit.Must(s.ListDir(ctx, u.ID, u.Root, meta.ListOptions{}))(t)
	if want := []string{"a", "b", "docs", "empty"}; !slices.Equal(names(list), want) {
		t.Fatalf("ListDir = %v, want %v", names(list), want)
	}
	page := testkit.Must(s.ListDir(ctx, u.ID, u.Root, meta.ListOptions{After: "a", Limit: 2}))(t)
	if want := []string{"b", "docs"}; !slices.Equal(names(page), want) {
		t.Fatalf("ListDir page = %v, want %v", names(page), want)
	}
	_, err = s.ListDir(ctx, u.ID, f.ID, meta.ListOptions{})
	testkit.WantKind(t, err, dfms.NotDir, "list a file")

	_, err = s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "docs", Kind: dfms.KindFile})
	testkit.WantKind(t, err, dfms.Exist, "duplicate name")
	_, err = s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: f.ID, Name: "x", Kind: dfms.KindFile})
	testkit.WantKind(t, err, dfms.NotDir, "create under a file")
	_, err = s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: 987654, Name: "x", Kind: dfms.KindFile})
	testkit.WantKind(t, err, dfms.NotExist, "create under a missing parent")
	_, err = s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "x", Kind: 9})
	testkit.WantKind(t, err, dfms.Invalid, "bad kind")
}

func testNames(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	for _, name := range []string{"", ".", "..", ".versions", "a/b", "a\x00b", strings.Repeat("n", 256)} {
		_, err := s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: name, Kind: dfms.KindDir})
		testkit.WantKind(t, err, dfms.Invalid, fmt.Sprintf("create %q", name))
	}
	long := strings.Repeat("n", 255)
	mkdir(t, s, u.ID, u.Root, long)
	mkdir(t, s, u.ID, u.Root, "ünïcödé ☃")
	if list := testkit.Must(s.ListDir(ctx, u.ID, u.Root, meta.ListOptions{}))(t); len(list) != 2 {
		t.Fatalf("got %d entries, want 2", len(list))
	}
	// Names are bytes, and sort bytewise on every backend.
	mkdir(t, s, u.ID, u.Root, "B")
	mkdir(t, s, u.ID, u.Root, "a")
	list := testkit.Must(s.ListDir(ctx, u.ID, u.Root, meta.ListOptions{}))(t)
	if want := []string{"B", "a", long, "ünïcödé ☃"}; !slices.Equal(names(list), want) {
		t.Fatalf("order = %q, want %q", names(list), want)
	}
}

// Another owner's ids behave exactly as missing ones.
func testIsolation(t *testing.T, s meta.Store) {
	a, b := newUser(t, s), newUser(t, s)
	d := mkdir(t, s, a.ID, a.Root, "private")
	m := manifest(t, s, chunk("iso", 10))
	f, _ := commit(t, s, a.ID, d.ID, "secret.txt", m)

	_, err := s.GetEntry(ctx, b.ID, f.ID)
	testkit.WantKind(t, err, dfms.NotExist, "GetEntry")
	_, err = s.Lookup(ctx, b.ID, d.ID, "secret.txt")
	testkit.WantKind(t, err, dfms.NotExist, "Lookup")
	_, err = s.ListDir(ctx, b.ID, d.ID, meta.ListOptions{})
	testkit.WantKind(t, err, dfms.NotExist, "ListDir")
	_, err = s.CreateEntry(ctx, dfms.Entry{Owner: b.ID, Parent: d.ID, Name: "x", Kind: dfms.KindFile})
	testkit.WantKind(t, err, dfms.NotExist, "CreateEntry")
	_, err = s.GetVersion(ctx, b.ID, f.ID, 1)
	testkit.WantKind(t, err, dfms.NotExist, "GetVersion")
	_, err = s.ListVersions(ctx, b.ID, f.ID)
	testkit.WantKind(t, err, dfms.NotExist, "ListVersions")
	_, _, err = s.Rename(ctx, b.ID, f.ID, b.Root, "mine", false)
	testkit.WantKind(t, err, dfms.NotExist, "Rename")
	_, _, err = s.Rename(ctx, a.ID, f.ID, b.Root, "gift", false)
	testkit.WantKind(t, err, dfms.NotExist, "Rename into another's folder")
	testkit.WantKind(t, s.Trash(ctx, b.ID, f.ID), dfms.NotExist, "Trash")
	_, err = s.SetAttr(ctx, b.ID, f.ID, dfms.SetAttr{})
	testkit.WantKind(t, err, dfms.NotExist, "SetAttr")
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: b.ID, Entry: f.ID, Manifest: m})
	testkit.WantKind(t, err, dfms.NotExist, "CommitVersion by id")
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: b.ID, Parent: d.ID, Name: "x", Manifest: m})
	testkit.WantKind(t, err, dfms.NotExist, "CommitVersion into another's folder")
	_, err = s.CreateUpload(ctx, meta.Upload{Owner: b.ID, Parent: d.ID, Name: "x", PartSize: 1}, 0)
	testkit.WantKind(t, err, dfms.NotExist, "CreateUpload into another's folder")
	if hits, _, _ := s.Search(ctx, b.ID, meta.SearchQuery{Text: "secret"}); len(hits) != 0 {
		t.Fatalf("b's search found %v", names(hits))
	}
	if ch := testkit.Must(s.Changes(ctx, b.ID, 0, 100))(t); len(ch) != 0 {
		t.Fatalf("b sees %d of a's changes", len(ch))
	}
	// a's data is unchanged.
	if v := testkit.Must(s.GetVersion(ctx, a.ID, f.ID, 0))(t); v.Number != 1 || v.Size != 10 {
		t.Fatalf("a's version after b's attempts: %+v", v)
	}
}

func testSetAttr(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	f := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "f", Kind: dfms.KindFile, Mode: 0o644}))(t)
	mode, uid, gid := uint32(0o4750), uint32(1000), uint32(100)
	mt := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	e := testkit.Must(s.SetAttr(ctx, u.ID, f.ID, dfms.SetAttr{Mode: &mode, UID: &uid, GID: &gid, MTime: &mt}))(t)
	if e.Mode != 0o4750 || e.UID != 1000 || e.GID != 100 || !e.MTime.Equal(mt) {
		t.Fatalf("after SetAttr: %+v", e)
	}
	e = testkit.Must(s.GetEntry(ctx, u.ID, f.ID))(t)
	if !e.MTime.Equal(mt) || e.MTime.Nanosecond() != 789 {
		t.Fatalf("mtime stored as %v, want %v (nanoseconds kept)", e.MTime, mt)
	}
	if !f.ATime.Equal(f.MTime) {
		t.Fatalf("a new entry's atime %v, want its mtime %v", f.ATime, f.MTime)
	}
	if !e.ATime.Equal(f.ATime) {
		t.Fatalf("an mtime change moved the atime: %v, was %v", e.ATime, f.ATime)
	}
	at := time.Date(2038, 1, 19, 3, 14, 8, 123, time.UTC)
	e = testkit.Must(s.SetAttr(ctx, u.ID, f.ID, dfms.SetAttr{ATime: &at}))(t)
	if !e.ATime.Equal(at) || !e.MTime.Equal(mt) {
		t.Fatalf("after an atime change: atime %v mtime %v, want %v, %v", e.ATime, e.MTime, at, mt)
	}
	if e = testkit.Must(s.GetEntry(ctx, u.ID, f.ID))(t); !e.ATime.Equal(at) || e.ATime.Nanosecond() != 123 {
		t.Fatalf("atime stored as %v, want %v", e.ATime, at)
	}
	// An access (a read) moves the atime only forward and as relatime
	// says, and neither the ctime nor the change journal. The atime is
	// later than the mtime and ctime: an access moves it once it is a
	// day old.
	before := testkit.Must(s.Changes(ctx, u.ID, 0, 1000))(t)
	earlier, soon, later := at.Add(-time.Hour), at.Add(time.Hour), at.Add(dfms.RelatimeAge)
	if e = testkit.Must(s.SetAttr(ctx, u.ID, f.ID, dfms.SetAttr{ATime: &soon, Accessed: true}))(t); !e.ATime.Equal(at) {
		t.Fatalf("an access within a day of the last moved the atime to %v", e.ATime)
	}
	if e = testkit.Must(s.SetAttr(ctx, u.ID, f.ID, dfms.SetAttr{ATime: &earlier, Accessed: true}))(t); !e.ATime.Equal(at) {
		t.Fatalf("an earlier access moved the atime to %v", e.ATime)
	}
	ctime := e.CTime
	if e = testkit.Must(s.SetAttr(ctx, u.ID, f.ID, dfms.SetAttr{ATime: &later, Accessed: true}))(t); !e.ATime.Equal(later) || !e.CTime.Equal(ctime) {
		t.Fatalf("after an access: atime %v ctime %v, want %v, %v", e.ATime, e.CTime, later, ctime)
	}
	if after := testkit.Must(s.Changes(ctx, u.ID, 0, 1000))(t); len(after) != len(before) {
		t.Fatalf("an access journaled %d changes", len(after)-len(before))
	}
	rw := uint32(0o600)
	_, err := s.SetAttr(ctx, u.ID, f.ID, dfms.SetAttr{Mode: &rw, ATime: &later, Accessed: true})
	testkit.WantKind(t, err, dfms.Invalid, "an access with a mode")
	_, err = s.SetAttr(ctx, u.ID, f.ID, dfms.SetAttr{Accessed: true})
	testkit.WantKind(t, err, dfms.Invalid, "an access without an atime")
	size := int64(5)
	_, err = s.SetAttr(ctx, u.ID, f.ID, dfms.SetAttr{Size: &size})
	testkit.WantKind(t, err, dfms.Invalid, "SetAttr size")
}

func testRename(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	a := mkdir(t, s, u.ID, u.Root, "a")
	b := mkdir(t, s, u.ID, a.ID, "b")
	c := mkdir(t, s, u.ID, b.ID, "c")
	f := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: c.ID, Name: "f", Kind: dfms.KindFile}))(t)

	moved, replaced := must2(t)(s.Rename(ctx, u.ID, f.ID, u.Root, "g", false))
	if moved.Parent != u.Root || moved.Name != "g" || replaced.ID != 0 {
		t.Fatalf("moved %+v replaced %+v", moved, replaced)
	}
	_, err := s.Lookup(ctx, u.ID, c.ID, "f")
	testkit.WantKind(t, err, dfms.NotExist, "old name after rename")

	for _, tc := range []struct {
		what   string
		id, to dfms.EntryID
		name   string
		want   dfms.ErrorKind
	}{
		{"move into a descendant", a.ID, c.ID, "loop", dfms.Conflict},
		{"move into itself", a.ID, a.ID, "self", dfms.Conflict},
		{"move the root", u.Root, a.ID, "root", dfms.Invalid},
		{"rename onto an existing name", c.ID, u.Root, "a", dfms.Exist},
		{"rename to ..", c.ID, u.Root, "..", dfms.Invalid},
		{"rename under a file", c.ID, moved.ID, "x", dfms.NotDir},
	} {
		_, _, err = s.Rename(ctx, u.ID, tc.id, tc.to, tc.name, false)
		testkit.WantKind(t, err, tc.want, tc.what)
	}

	// Moving a subtree up keeps its content.
	m2, _ := must2(t)(s.Rename(ctx, u.ID, c.ID, u.Root, "c2", false))
	if m2.Parent != u.Root {
		t.Fatalf("c2 parent %d", m2.Parent)
	}
	// Renaming onto itself is a no-op.
	m3, _ := must2(t)(s.Rename(ctx, u.ID, c.ID, u.Root, "c2", false))
	if m3.ID != c.ID || m3.Name != "c2" {
		t.Fatalf("self rename: %+v", m3)
	}
}

func must2(t *testing.T) func(a, b dfms.Entry, err error) (dfms.Entry, dfms.Entry) {
	return func(a, b dfms.Entry, err error) (dfms.Entry, dfms.Entry) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func testRenameReplace(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	m1 := manifest(t, s, chunk("old", 3))
	m2 := manifest(t, s, chunk("new", 5))
	old, _ := commit(t, s, u.ID, u.Root, "file", m1)
	tmp, _ := commit(t, s, u.ID, u.Root, ".file.swp", m2)

	_, _, err := s.Rename(ctx, u.ID, tmp.ID, u.Root, "file", false)
	testkit.WantKind(t, err, dfms.Exist, "replace without flag")
	moved, replaced := must2(t)(s.Rename(ctx, u.ID, tmp.ID, u.Root, "file", true))
	if moved.ID != tmp.ID || replaced.ID != old.ID {
		t.Fatalf("moved %d replaced %d, want %d and %d", moved.ID, replaced.ID, tmp.ID, old.ID)
	}
	got := testkit.Must(s.Lookup(ctx, u.ID, u.Root, "file"))(t)
	if got.ID != tmp.ID || got.Size != 5 || got.Version != 2 {
		t.Fatalf("file after replace = %+v", got)
	}
	// The moved file continues the replaced one's history (an editor's
	// save): its version 1 is the old content, version 2 its own.
	vs := testkit.Must(s.ListVersions(ctx, u.ID, tmp.ID))(t)
	if len(vs) != 2 || vs[0].Number != 1 || vs[0].Size != 3 || vs[1].Number != 2 || vs[1].Size != 5 {
		t.Fatalf("versions after replace = %+v", vs)
	}
	if v := testkit.Must(s.GetVersion(ctx, u.ID, tmp.ID, 1))(t); v.Manifest == nil || !slices.Equal(v.Manifest.Chunks, m1.Chunks) {
		t.Fatalf("version 1 after replace = %+v", v)
	}
	// The replaced file keeps its version (open handles still read it)
	// and is not in the trash: its history is the start of this one's.
	if trash := trashOf(t, s, u.ID); len(trash) != 0 {
		t.Fatalf("trash = %v", names(trash))
	}
	if ov := testkit.Must(s.ListVersions(ctx, u.ID, old.ID))(t); len(ov) != 1 || ov[0].Number != 1 || ov[0].Size != 3 || ov[0].Entry != old.ID {
		t.Fatalf("the replaced file's versions = %+v", ov)
	}
	if refs(t, s, chunk("old", 3)) != 1 || refs(t, s, chunk("new", 5)) != 1 {
		t.Fatalf("refs = %d, %d; want 1, 1", refs(t, s, chunk("old", 3)), refs(t, s, chunk("new", 5)))
	}
	if us := testkit.Must(s.Usage(ctx, u.ID))(t); us.LogicalBytes != 8 {
		t.Fatalf("usage after replace = %+v", us)
	}
	// Again, with more versions on both sides: numbers and bases follow.
	a, _ := commit(t, s, u.ID, u.Root, "a", m1)
	commit(t, s, u.ID, u.Root, "a", m2) // a: v1 old, v2 new
	b, bv1 := commit(t, s, u.ID, u.Root, "b", m2)
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: b.ID, Manifest: m1, Base: bv1.ID}) // b: v1 new, v2 old (base v1)
	ok(t, err)
	must2(t)(s.Rename(ctx, u.ID, b.ID, u.Root, "a", true))
	vs = testkit.Must(s.ListVersions(ctx, u.ID, b.ID))(t)
	if len(vs) != 4 || vs[3].Number != 4 || vs[3].Base != bv1.ID || vs[2].ID != bv1.ID || vs[3].Size != 3 || vs[2].Size != 5 || vs[0].Size != 3 {
		t.Fatalf("versions after the second replace = %+v", vs)
	}
	if cur := testkit.Must(s.GetEntry(ctx, u.ID, b.ID))(t); cur.Version != 4 || cur.Size != 3 {
		t.Fatalf("b after replace = %+v", cur)
	}
	if ae := testkit.Must(s.GetEntry(ctx, u.ID, a.ID))(t); ae.Live() || ae.Version != 2 {
		t.Fatalf("the second replaced entry = %+v", ae)
	}
	// A file with no version yet replacing one: an empty version on top.
	fresh := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "fresh", Kind: dfms.KindFile, Mode: 0o644}))(t)
	must2(t)(s.Rename(ctx, u.ID, fresh.ID, u.Root, "a", true))
	if cur := testkit.Must(s.GetEntry(ctx, u.ID, fresh.ID))(t); cur.Version != 5 || cur.Size != 0 {
		t.Fatalf("an empty file after replace = %+v", cur)
	}
	if v := testkit.Must(s.GetVersion(ctx, u.ID, fresh.ID, 0))(t); v.Number != 5 || v.Size != 0 || v.Manifest == nil || len(v.Manifest.Chunks) != 0 {
		t.Fatalf("its current version = %+v", v)
	}
	// A symlink replaced by a file goes to the trash, restorable once the
	// name is free.
	l := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "link", Kind: dfms.KindSymlink, Target: "x"}))(t)
	other, _ := commit(t, s, u.ID, u.Root, "other", m2)
	must2(t)(s.Rename(ctx, u.ID, other.ID, u.Root, "link", true))
	if trash := trashOf(t, s, u.ID); !slices.ContainsFunc(trash, func(e dfms.Entry) bool { return e.ID == l.ID }) {
		t.Fatalf("trash = %v", names(trash))
	}

	d := mkdir(t, s, u.ID, u.Root, "d")
	e := mkdir(t, s, u.ID, u.Root, "e")
	mkdir(t, s, u.ID, e.ID, "child")
	_, _, err = s.Rename(ctx, u.ID, d.ID, u.Root, "e", true)
	testkit.WantKind(t, err, dfms.NotEmpty, "replace a non-empty dir")
	_, _, err = s.Rename(ctx, u.ID, d.ID, u.Root, "file", true)
	testkit.WantKind(t, err, dfms.NotDir, "replace a file with a dir")
	_, _, err = s.Rename(ctx, u.ID, tmp.ID, u.Root, "d", true)
	testkit.WantKind(t, err, dfms.IsDir, "replace a dir with a file")
	empty := mkdir(t, s, u.ID, u.Root, "empty")
	_, replaced = must2(t)(s.Rename(ctx, u.ID, d.ID, u.Root, "empty", true))
	if replaced.ID != empty.ID {
		t.Fatalf("replaced %d, want the empty dir %d", replaced.ID, empty.ID)
	}
}

func testTrashRestorePurge(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	top := mkdir(t, s, u.ID, u.Root, "top")
	sub := mkdir(t, s, u.ID, top.ID, "sub")
	c1, c2 := chunk("t1", 100), chunk("t2", 50)
	m := manifest(t, s, c1, c2, c1)
	f1, _ := commit(t, s, u.ID, top.ID, "f1", m)
	f2, _ := commit(t, s, u.ID, sub.ID, "f2", m)
	commit(t, s, u.ID, sub.ID, "f2", dfms.Manifest{Chunks: []dfms.ChunkRef{c2}})
	if got := refs(t, s, c1); got != 4 {
		t.Fatalf("refs(c1) = %d, want 4", got)
	}
	usage := testkit.Must(s.Usage(ctx, u.ID))(t)
	if usage.LogicalBytes != 250+250+50 {
		t.Fatalf("used = %d, want 550", usage.LogicalBytes)
	}

	ok(t, s.Trash(ctx, u.ID, top.ID))
	for _, id := range []dfms.EntryID{top.ID, sub.ID, f1.ID, f2.ID} {
		e := testkit.Must(s.GetEntry(ctx, u.ID, id))(t)
		if e.Live() || e.TrashRoot != top.ID {
			t.Fatalf("entry %d after trashing its folder: deleted %v root %d", id, e.DeletedAt, e.TrashRoot)
		}
	}
	_, err := s.Lookup(ctx, u.ID, u.Root, "top")
	testkit.WantKind(t, err, dfms.NotExist, "lookup trashed")
	_, err = s.ListDir(ctx, u.ID, sub.ID, meta.ListOptions{})
	testkit.WantKind(t, err, dfms.NotExist, "list a trashed dir")
	if hits, _, _ := s.Search(ctx, u.ID, meta.SearchQuery{Text: "f"}); len(hits) != 0 {
		t.Fatalf("search finds trashed entries: %v", names(hits))
	}
	trash := trashOf(t, s, u.ID)
	if len(trash) != 1 || trash[0].ID != top.ID {
		t.Fatalf("trash = %v, want [top]", names(trash))
	}
	// Trashing keeps data: counts unchanged.
	if got := refs(t, s, c1); got != 4 {
		t.Fatalf("refs(c1) after trash = %d, want 4", got)
	}
	_, err = s.Restore(ctx, u.ID, sub.ID)
	testkit.WantKind(t, err, dfms.NotExist, "restore a non-root of the trash")

	r := testkit.Must(s.Restore(ctx, u.ID, top.ID))(t)
	if !r.Live() {
		t.Fatal("restored entry still trashed")
	}
	if got := testkit.Must(s.Lookup(ctx, u.ID, sub.ID, "f2"))(t); got.Version != 2 {
		t.Fatalf("f2 after restore: %+v", got)
	}

	_, err = s.Purge(ctx, u.ID, top.ID)
	testkit.WantKind(t, err, dfms.Conflict, "purge a live entry")
	ok(t, s.Trash(ctx, u.ID, f1.ID)) // trashed on its own first
	ok(t, s.Trash(ctx, u.ID, top.ID))
	st := testkit.Must(s.Purge(ctx, u.ID, top.ID))(t)
	if st.Entries != 4 || st.Versions != 3 || st.Bytes != 550 {
		t.Fatalf("purge stats = %+v, want 4 entries, 3 versions, 550 bytes", st)
	}
	for _, c := range []dfms.ChunkRef{c1, c2} {
		ch := testkit.Must(s.GetChunk(ctx, c.Hash))(t)
		if ch.Refs != 0 || ch.ZeroSince.IsZero() {
			t.Fatalf("chunk after purge: %+v, want 0 refs and a zero-since time", ch)
		}
	}
	if u2 := testkit.Must(s.Usage(ctx, u.ID))(t); u2.LogicalBytes != 0 || u2.Files != 0 {
		t.Fatalf("usage after purge = %+v", u2)
	}
	_, err = s.GetEntry(ctx, u.ID, f2.ID)
	testkit.WantKind(t, err, dfms.NotExist, "purged entry")
	if trash := trashOf(t, s, u.ID); len(trash) != 0 {
		t.Fatalf("trash after purge = %v", names(trash))
	}
}

func testTrashRestoreConflicts(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "d")
	f := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: "f", Kind: dfms.KindFile}))(t)
	ok(t, s.Trash(ctx, u.ID, f.ID))
	// The name is free again while f is in the trash.
	again := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: "f", Kind: dfms.KindFile}))(t)
	_, err := s.Restore(ctx, u.ID, f.ID)
	testkit.WantKind(t, err, dfms.Exist, "restore over a taken name")
	ok(t, s.Trash(ctx, u.ID, again.ID))
	ok(t, s.Trash(ctx, u.ID, d.ID))
	_, err = s.Restore(ctx, u.ID, f.ID)
	testkit.WantKind(t, err, dfms.Conflict, "restore into a trashed folder")
	testkit.Must(s.Restore(ctx, u.ID, d.ID))(t)
	testkit.Must(s.Restore(ctx, u.ID, f.ID))(t)
	testkit.WantKind(t, s.Trash(ctx, u.ID, u.Root), dfms.Invalid, "trash the root")
	testkit.WantKind(t, s.Trash(ctx, u.ID, again.ID), dfms.NotExist, "trash twice")
}

func testCommitVersions(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "sub")
	c1, c2 := chunk("v1", 10), chunk("v2", 20)
	m1 := manifest(t, s, c1)
	e, v := commit(t, s, u.ID, d.ID, "doc", m1)
	if v.Number != 1 || e.Version != 1 || e.Size != 10 || e.Kind != dfms.KindFile || e.Mode != 0o644 {
		t.Fatalf("first commit: entry %+v version %+v", e, v)
	}
	m2 := manifest(t, s, c1, c2)
	mt := time.Unix(1700000000, 5)
	e2, v2, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: e.ID, Manifest: m2, SHA256: dfms.Sum([]byte("x")),
		Base: v.ID, RequireBase: true, MTime: mt, MIME: "text/plain"})
	ok(t, err)
	if v2.Number != 2 || e2.ID != e.ID || e2.Size != 30 || !e2.MTime.Equal(mt) || e2.MIME != "text/plain" || v2.Base != v.ID ||
		v2.ID == v.ID || e2.VersionID != v2.ID || e.VersionID != v.ID {
		t.Fatalf("second commit: entry %+v version %+v", e2, v2)
	}
	// What a commit returns is the entry as stored, for a new file and
	// for a new version of an existing one.
	if stored := testkit.Must(s.GetEntry(ctx, u.ID, e.ID))(t); !sameEntry(stored, e2) {
		t.Fatalf("second commit returned %+v, GetEntry reads %+v", e2, stored)
	}
	ne, _ := commit(t, s, u.ID, d.ID, "new", manifest(t, s, chunk("v4", 7)))
	if stored := testkit.Must(s.GetEntry(ctx, u.ID, ne.ID))(t); !sameEntry(stored, ne) {
		t.Fatalf("a new file's commit returned %+v, GetEntry reads %+v", ne, stored)
	}
	// By name in a subfolder, an upload to an existing name is a new version.
	_, v3 := commit(t, s, u.ID, d.ID, "doc", m1)
	if v3.Number != 3 {
		t.Fatalf("third commit number %d", v3.Number)
	}
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: e.ID, Manifest: m1, Base: v2.ID, RequireBase: true})
	testkit.WantKind(t, err, dfms.Conflict, "stale base")

	vs := testkit.Must(s.ListVersions(ctx, u.ID, e.ID))(t)
	if len(vs) != 3 || vs[0].Number != 1 || vs[2].Number != 3 || vs[1].Size != 30 || vs[1].ChunkCount != 2 {
		t.Fatalf("versions = %+v", vs)
	}
	got := testkit.Must(s.GetVersion(ctx, u.ID, e.ID, 2))(t)
	if got.Manifest == nil || !slices.Equal(got.Manifest.Chunks, m2.Chunks) || got.SHA256 != dfms.Sum([]byte("x")) {
		t.Fatalf("GetVersion(2) = %+v", got)
	}
	cur := testkit.Must(s.GetVersion(ctx, u.ID, e.ID, 0))(t)
	if cur.Number != 3 {
		t.Fatalf("current version %d, want 3", cur.Number)
	}
	_, err = s.GetVersion(ctx, u.ID, e.ID, 4)
	testkit.WantKind(t, err, dfms.NotExist, "missing version")
	if r := refs(t, s, c1); r != 3 {
		t.Fatalf("refs(c1) = %d, want 3", r)
	}
	// The empty file: a version with no chunks.
	ee, ev := commit(t, s, u.ID, u.Root, "empty", dfms.Manifest{})
	if ev.Size != 0 || ee.Size != 0 || ev.ChunkCount != 0 {
		t.Fatalf("empty commit: %+v %+v", ee, ev)
	}
}

// sameEntry reports whether a and b are equal, times compared as instants.
func sameEntry(a, b dfms.Entry) bool {
	times := [][2]time.Time{{a.MTime, b.MTime}, {a.CTime, b.CTime}, {a.DeletedAt, b.DeletedAt}}
	for _, p := range times {
		if !p[0].Equal(p[1]) {
			return false
		}
	}
	a.MTime, a.CTime, a.DeletedAt = b.MTime, b.CTime, b.DeletedAt
	return a == b
}

// A batch of commits: each one that fails changes nothing, the others
// are made as CommitVersion makes them.
func testCommitBatch(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	a := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "a", Kind: dfms.KindFile, Mode: 0o644}))(t)
	d := mkdir(t, s, u.ID, u.Root, "d")
	have := chunk("batch-have", 10)
	m := manifest(t, s, have)
	ghost := chunk("batch-ghost", 7)
	before := testkit.Must(s.Changes(ctx, u.ID, 0, 1000))(t)
	res, err := s.CommitVersions(ctx, []meta.CommitRequest{
		{Owner: u.ID, Entry: a.ID, Manifest: m, MTime: time.Unix(1700000000, 0)},                  // ok
		{Owner: u.ID, Entry: a.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{have, ghost}}}, // missing chunk
		{Owner: u.ID, Entry: d.ID, Manifest: m},                                                   // a directory
		{Owner: u.ID, Entry: a.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{{Size: 0}}}},   // bad manifest
		{Owner: u.ID, Entry: 1 << 40, Manifest: m},                                                // no such entry
		{Owner: u.ID, Parent: u.Root, Name: "b", Manifest: m, Mode: 0o600},                        // created by name
		{Owner: u.ID, Entry: a.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{have, have}}},  // ok, second version
	})
	ok(t, err)
	if len(res) != 7 {
		t.Fatalf("%d results, want 7", len(res))
	}
	for _, i := range []int{0, 5, 6} {
		if res[i].Err != nil {
			t.Fatalf("commit %d: %v", i, res[i].Err)
		}
	}
	var mce *meta.MissingChunksError
	if !errors.As(res[1].Err, &mce) || !dfms.Is(res[1].Err, dfms.Conflict) {
		t.Fatalf("commit 1: %v, want a MissingChunksError", res[1].Err)
	}
	testkit.WantKind(t, res[2].Err, dfms.IsDir, "commit 2 (a directory)")
	testkit.WantKind(t, res[3].Err, dfms.Invalid, "commit 3 (empty chunk)")
	testkit.WantKind(t, res[4].Err, dfms.NotExist, "commit 4 (no entry)")
	if res[0].Version.Number != 1 || res[6].Version.Number != 2 || res[6].Entry.Size != 20 || !res[0].Entry.MTime.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("results %+v / %+v", res[0], res[6])
	}
	b := testkit.Must(s.Lookup(ctx, u.ID, u.Root, "b"))(t)
	if b.ID != res[5].Entry.ID || b.Version != 1 || b.Mode != 0o600 {
		t.Fatalf("b = %+v", b)
	}
	if r := refs(t, s, have); r != 4 { // a v1, a v2 (twice), b
		t.Fatalf("refs = %d, want 4", r)
	}
	if us := testkit.Must(s.Usage(ctx, u.ID))(t); us.LogicalBytes != 40 {
		t.Fatalf("usage %d, want 40", us.LogicalBytes)
	}
	// One journal row per commit made (a v1, b created and v1, a v2).
	after := testkit.Must(s.Changes(ctx, u.ID, 0, 1000))(t)
	var versions int
	for _, c := range after[len(before):] {
		if c.Op == dfms.ChangeVersion {
			versions++
		}
	}
	if versions != 3 {
		t.Fatalf("%d version changes in the journal, want 3: %+v", versions, after[len(before):])
	}
	if ws := testkit.Must(s.UnownedChunks(ctx, u.ID, []dfms.Hash{have.Hash}))(t); len(ws) != 0 {
		t.Fatalf("the committer does not own the chunk: %v", ws)
	}
	// An empty batch is fine.
	res, err = s.CommitVersions(ctx, nil)
	if err != nil || len(res) != 0 {
		t.Fatalf("empty batch: %v, %v", res, err)
	}
}

// Reference counts are per occurrence, so 64 MiB of zeros (16 identical
// 4 MiB chunks) holds 16 references, and releasing it returns to 0 exactly.
func testRefsPerOccurrence(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	z := chunk("zeros", 4<<20)
	var m dfms.Manifest
	for range 16 {
		m.Chunks = append(m.Chunks, z)
	}
	storeChunks(t, s, []dfms.ChunkRef{z})
	e, _ := commit(t, s, u.ID, u.Root, "zeros", m)
	if r := refs(t, s, z); r != 16 {
		t.Fatalf("refs = %d, want 16", r)
	}
	commit(t, s, u.ID, u.Root, "zeros", m)
	if r := refs(t, s, z); r != 32 {
		t.Fatalf("refs after overwrite = %d, want 32", r)
	}
	ok(t, s.DeleteVersion(ctx, u.ID, e.ID, 1))
	if r := refs(t, s, z); r != 16 {
		t.Fatalf("refs after deleting v1 = %d, want 16", r)
	}
	ok(t, s.Trash(ctx, u.ID, e.ID))
	testkit.Must(s.Purge(ctx, u.ID, e.ID))(t)
	if r := refs(t, s, z); r != 0 {
		t.Fatalf("refs after purge = %d, want 0", r)
	}
}

// A commit that references an unstored chunk changes nothing.
func testCommitMissingChunk(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	have := chunk("have", 10)
	m := manifest(t, s, have)
	e, _ := commit(t, s, u.ID, u.Root, "f", m)
	before := testkit.Must(s.Changes(ctx, u.ID, 0, 1000))(t)
	ghost := chunk("ghost", 10)
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: e.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{have, ghost}}})
	var mce *meta.MissingChunksError
	if !errors.As(err, &mce) || len(mce.Hashes) != 1 || mce.Hashes[0] != ghost.Hash {
		t.Fatalf("got %v, want a MissingChunksError naming the ghost chunk", err)
	}
	testkit.WantKind(t, err, dfms.Conflict, "missing chunk")
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "new", Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{ghost}}})
	if !errors.As(err, &mce) {
		t.Fatalf("new file with a missing chunk: %v", err)
	}
	if r := refs(t, s, have); r != 1 {
		t.Fatalf("refs(have) = %d, want 1 (unchanged)", r)
	}
	if vs := testkit.Must(s.ListVersions(ctx, u.ID, e.ID))(t); len(vs) != 1 {
		t.Fatalf("%d versions, want 1", len(vs))
	}
	_, err = s.Lookup(ctx, u.ID, u.Root, "new")
	testkit.WantKind(t, err, dfms.NotExist, "file of a failed commit")
	if after := testkit.Must(s.Changes(ctx, u.ID, 0, 1000))(t); len(after) != len(before) {
		t.Fatalf("journal grew from %d to %d rows", len(before), len(after))
	}
	if us := testkit.Must(s.Usage(ctx, u.ID))(t); us.LogicalBytes != 10 {
		t.Fatalf("usage %d, want 10", us.LogicalBytes)
	}
}

func testCommitErrors(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "d")
	l := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "l", Kind: dfms.KindSymlink, Target: "d"}))(t)
	m := manifest(t, s, chunk("ce", 1))
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: d.ID, Manifest: m})
	testkit.WantKind(t, err, dfms.IsDir, "commit to a dir")
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "d", Manifest: m})
	testkit.WantKind(t, err, dfms.IsDir, "commit to a dir by name")
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: l.ID, Manifest: m})
	testkit.WantKind(t, err, dfms.Invalid, "commit to a symlink")
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "a/b", Manifest: m})
	testkit.WantKind(t, err, dfms.Invalid, "bad name")
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "z", Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{{Size: 0}}}})
	testkit.WantKind(t, err, dfms.Invalid, "empty chunk")
}

func testQuota(t *testing.T, s meta.Store) {
	u := testkit.Must(s.CreateUser(ctx, meta.User{Email: "quota@example.com", QuotaBytes: 100, Active: true}))(t)
	m60 := manifest(t, s, chunk("q60", 60))
	commit(t, s, u.ID, u.Root, "a", m60)
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "b", Manifest: m60})
	testkit.WantKind(t, err, dfms.Quota, "over quota")
	if _, err := s.Lookup(ctx, u.ID, u.Root, "b"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("the rejected file exists: %v", err)
	}
	if r := refs(t, s, chunk("q60", 60)); r != 1 {
		t.Fatalf("refs = %d after a rejected commit, want 1", r)
	}
	m40 := manifest(t, s, chunk("q40", 40))
	commit(t, s, u.ID, u.Root, "b", m40) // exactly at quota
}

func testDeleteVersion(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	a, b := chunk("dv-a", 7), chunk("dv-b", 9)
	e, _ := commit(t, s, u.ID, u.Root, "f", manifest(t, s, a))
	commit(t, s, u.ID, u.Root, "f", manifest(t, s, b))
	testkit.WantKind(t, s.DeleteVersion(ctx, u.ID, e.ID, 2), dfms.Conflict, "delete current")
	testkit.WantKind(t, s.DeleteVersion(ctx, u.ID, e.ID, 9), dfms.NotExist, "delete missing")
	ok(t, s.DeleteVersion(ctx, u.ID, e.ID, 1))
	if r := refs(t, s, a); r != 0 {
		t.Fatalf("refs(a) = %d, want 0", r)
	}
	if us := testkit.Must(s.Usage(ctx, u.ID))(t); us.LogicalBytes != 9 || us.Versions != 1 {
		t.Fatalf("usage = %+v", us)
	}
	// Numbers are never reused.
	_, v := commit(t, s, u.ID, u.Root, "f", manifest(t, s, a))
	if v.Number != 3 {
		t.Fatalf("next version %d, want 3", v.Number)
	}
}

func testMissingChunks(t *testing.T, s meta.Store) {
	var hs []dfms.Hash
	var stored []dfms.ChunkRef
	for i := range 1200 { // more than one query batch
		c := chunk(fmt.Sprint("mc", i), uint32(i+1))
		hs = append(hs, c.Hash)
		if i%3 == 0 {
			stored = append(stored, c)
		}
	}
	storeChunks(t, s, stored)
	storeChunks(t, s, stored[:10]) // idempotent
	miss := testkit.Must(s.MissingChunks(ctx, append(hs, hs[1])))(t)
	if len(miss) != 800 {
		t.Fatalf("%d missing, want 800", len(miss))
	}
	if miss[0] != hs[1] || miss[1] != hs[2] {
		t.Fatal("missing hashes not in input order")
	}
	if got := testkit.Must(s.MissingChunks(ctx, nil))(t); len(got) != 0 {
		t.Fatalf("MissingChunks(nil) = %v", got)
	}
	c := testkit.Must(s.GetChunk(ctx, stored[0].Hash))(t)
	if c.Refs != 0 || c.Size != 1 || c.ZeroSince.IsZero() || c.Deleting {
		t.Fatalf("new chunk row = %+v", c)
	}
	_, err := s.GetChunk(ctx, hs[1])
	testkit.WantKind(t, err, dfms.NotExist, "GetChunk missing")
}

// The GC protocol: only unreferenced chunks past the grace period can be
// deleted, and a commit can never reference a chunk being deleted.
func testSweepProtocol(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	f := lock(t, s, "gc")
	live, orphan := chunk("live", 5), chunk("orphan", 6)
	storeChunks(t, s, []dfms.ChunkRef{live, orphan})
	commit(t, s, u.ID, u.Root, "f", dfms.Manifest{Chunks: []dfms.ChunkRef{live}})

	past := time.Now().Add(-time.Hour)
	if c := testkit.Must(s.SweepCandidates(ctx, past, 10))(t); len(c) != 0 {
		t.Fatalf("candidates inside the grace period: %v", c)
	}
	if did := testkit.Must(s.BeginDelete(ctx, f, orphan.Hash, past, time.Time{}))(t); did {
		t.Fatal("BeginDelete inside the grace period succeeded")
	}
	future := time.Now().Add(time.Hour)
	cands := testkit.Must(s.SweepCandidates(ctx, future, 10))(t)
	if len(cands) != 1 || cands[0].Hash != orphan.Hash {
		t.Fatalf("candidates = %v, want only the orphan", cands)
	}
	if did := testkit.Must(s.BeginDelete(ctx, f, live.Hash, future, time.Time{}))(t); did {
		t.Fatal("BeginDelete of a referenced chunk succeeded")
	}
	if !testkit.Must(s.BeginDelete(ctx, f, orphan.Hash, future, time.Time{}))(t) {
		t.Fatal("BeginDelete of the orphan failed")
	}
	// While deleting: commits, AddChunks and MissingChunks refuse it.
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "g", Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{orphan}}})
	var mce *meta.MissingChunksError
	if !errors.As(err, &mce) {
		t.Fatalf("commit of a deleting chunk: %v, want MissingChunksError", err)
	}
	testkit.WantKind(t, s.AddChunks(ctx, []dfms.ChunkRef{orphan}), dfms.Conflict, "AddChunks of a deleting chunk")
	_, err = s.MissingChunks(ctx, []dfms.Hash{live.Hash, orphan.Hash})
	testkit.WantKind(t, err, dfms.Conflict, "MissingChunks of a deleting chunk")
	// An interrupted sweep finds it again.
	if c := testkit.Must(s.SweepCandidates(ctx, past, 10))(t); len(c) != 1 || !c[0].Deleting {
		t.Fatalf("deleting rows are not candidates: %v", c)
	}
	ok(t, s.FinishDelete(ctx, f, orphan.Hash))
	_, err = s.GetChunk(ctx, orphan.Hash)
	testkit.WantKind(t, err, dfms.NotExist, "chunk after FinishDelete")
	testkit.WantKind(t, s.FinishDelete(ctx, f, orphan.Hash), dfms.Conflict, "FinishDelete twice")
	// Storing it again works.
	storeChunks(t, s, []dfms.ChunkRef{orphan})
	commit(t, s, u.ID, u.Root, "g", dfms.Manifest{Chunks: []dfms.ChunkRef{orphan}})

	// An orphan (bytes without a row) can be claimed once; a recorded
	// chunk cannot be claimed at all.
	ghost := chunk("ghost-orphan", 7)
	if !testkit.Must(s.ClaimOrphan(ctx, f, ghost.Hash, 7))(t) {
		t.Fatal("ClaimOrphan of a row-less chunk failed")
	}
	testkit.WantKind(t, s.AddChunks(ctx, []dfms.ChunkRef{ghost}), dfms.Conflict, "AddChunks of a claimed orphan")
	if testkit.Must(s.ClaimOrphan(ctx, f, live.Hash, 5))(t) {
		t.Fatal("ClaimOrphan of a referenced chunk succeeded")
	}
	ok(t, s.FinishDelete(ctx, f, ghost.Hash))

	// KeepChunks re-arms present chunks and refuses gone or deleting ones.
	ok(t, s.KeepChunks(ctx, []dfms.Hash{live.Hash, orphan.Hash}))
	testkit.WantKind(t, s.KeepChunks(ctx, []dfms.Hash{chunk("never", 1).Hash}), dfms.Conflict, "KeepChunks of an unknown chunk")
	if !testkit.Must(s.ClaimOrphan(ctx, f, chunk("claimed", 2).Hash, 2))(t) {
		t.Fatal("claim failed")
	}
	testkit.WantKind(t, s.KeepChunks(ctx, []dfms.Hash{chunk("claimed", 2).Hash}), dfms.Conflict, "KeepChunks of a deleting chunk")
	if c := testkit.Must(s.GetChunk(ctx, live.Hash))(t); !c.ZeroSince.IsZero() {
		t.Fatalf("KeepChunks set zero-since on a referenced chunk: %+v", c)
	}

	// AddChunks of an existing unreferenced chunk restarts its grace period.
	stale := chunk("stale", 3)
	storeChunks(t, s, []dfms.ChunkRef{stale})
	first := testkit.Must(s.GetChunk(ctx, stale.Hash))(t).ZeroSince
	time.Sleep(2 * time.Millisecond)
	storeChunks(t, s, []dfms.ChunkRef{stale})
	if again := testkit.Must(s.GetChunk(ctx, stale.Hash))(t).ZeroSince; !again.After(first) {
		t.Fatalf("zero-since %v not refreshed (was %v)", again, first)
	}
}

func testMultipart(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "videos")
	up := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: d.ID, Name: "big.mp4", Size: 60, PartSize: 30}, 0))(t)
	if up.ID == "" || up.ExpiresAt.Before(up.CreatedAt) {
		t.Fatalf("upload = %+v", up)
	}
	if got := testkit.Must(s.GetUpload(ctx, u.ID, up.ID))(t); got.Name != "big.mp4" || got.Size != 60 {
		t.Fatalf("GetUpload = %+v", got)
	}
	p1 := manifest(t, s, chunk("p1a", 10), chunk("p1b", 20))
	p2 := manifest(t, s, chunk("p2", 30))
	ok(t, s.PutPart(ctx, u.ID, up.ID, 2, 30, dfms.Sum([]byte("p2")), p2))
	// Re-sending a part replaces it and its references.
	ok(t, s.PutPart(ctx, u.ID, up.ID, 2, 30, dfms.Sum([]byte("p2")), p2))
	if r := refs(t, s, chunk("p2", 30)); r != 1 {
		t.Fatalf("refs(p2) after re-put = %d, want 1", r)
	}
	_, _, err := s.CompleteUpload(ctx, u.ID, up.ID, dfms.Hash{}, "", nil)
	testkit.WantKind(t, err, dfms.Invalid, "complete with a gap")
	ok(t, s.PutPart(ctx, u.ID, up.ID, 1, 30, dfms.Sum([]byte("p1")), p1))
	parts := testkit.Must(s.ListParts(ctx, u.ID, up.ID))(t)
	if len(parts) != 2 || parts[0].Number != 1 || parts[1].Size != 30 || parts[1].SHA256 != dfms.Sum([]byte("p2")) {
		t.Fatalf("parts = %+v", parts)
	}
	pm := testkit.Must(s.PartManifests(ctx, u.ID, up.ID))(t)
	if len(pm) != 2 || pm[0].Manifest == nil || !slices.Equal(pm[0].Manifest.Chunks, p1.Chunks) {
		t.Fatalf("PartManifests = %+v", pm)
	}
	_, err = s.PartManifests(ctx, newUser(t, s).ID, up.ID)
	testkit.WantKind(t, err, dfms.NotExist, "another owner's part manifests")
	e, v, err := s.CompleteUpload(ctx, u.ID, up.ID, dfms.Sum([]byte("whole")), "video/mp4", nil)
	ok(t, err)
	if e.Name != "big.mp4" || e.Parent != d.ID || v.Size != 60 || v.ChunkCount != 3 || e.MIME != "video/mp4" {
		t.Fatalf("completed: %+v %+v", e, v)
	}
	for _, c := range []dfms.ChunkRef{chunk("p1a", 10), chunk("p2", 30)} {
		if r := refs(t, s, c); r != 1 {
			t.Fatalf("refs(%v) after complete = %d, want 1", c, r)
		}
	}
	_, err = s.GetUpload(ctx, u.ID, up.ID)
	testkit.WantKind(t, err, dfms.NotExist, "upload after complete")

	// Abort releases the parts' references.
	up2 := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: d.ID, Name: "x", PartSize: 10}, 0))(t)
	ok(t, s.PutPart(ctx, u.ID, up2.ID, 1, 30, dfms.Hash{}, p2))
	if r := refs(t, s, chunk("p2", 30)); r != 2 {
		t.Fatalf("refs(p2) with a part = %d, want 2", r)
	}
	ok(t, s.AbortUpload(ctx, u.ID, up2.ID))
	if r := refs(t, s, chunk("p2", 30)); r != 1 {
		t.Fatalf("refs(p2) after abort = %d, want 1", r)
	}
	// Expiry.
	up3 := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: d.ID, Name: "y", PartSize: 10, ExpiresAt: time.Now().Add(time.Minute)}, 0))(t)
	if exp := testkit.Must(s.ExpiredUploads(ctx, time.Now(), 10))(t); len(exp) != 0 {
		t.Fatalf("expired too early: %v", exp)
	}
	if exp := testkit.Must(s.ExpiredUploads(ctx, time.Now().Add(2*time.Minute), 10))(t); len(exp) != 1 || exp[0].ID != up3.ID {
		t.Fatalf("expired = %v", exp)
	}
	// Purging a folder aborts uploads into it.
	ok(t, s.PutPart(ctx, u.ID, up3.ID, 1, 30, dfms.Hash{}, p2))
	ok(t, s.Trash(ctx, u.ID, d.ID))
	testkit.Must(s.Purge(ctx, u.ID, d.ID))(t)
	if r := refs(t, s, chunk("p2", 30)); r != 0 {
		t.Fatalf("refs(p2) after purging the folder = %d, want 0", r)
	}
}

func testMultipartErrors(t *testing.T, s meta.Store) {
	a, b := newUser(t, s), newUser(t, s)
	up := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: a.ID, Parent: a.Root, Name: "f", PartSize: 10, Size: 99}, 0))(t)
	p := manifest(t, s, chunk("mpe", 10))
	testkit.WantKind(t, s.PutPart(ctx, a.ID, up.ID, 0, 10, dfms.Hash{}, p), dfms.Invalid, "part 0")
	testkit.WantKind(t, s.PutPart(ctx, a.ID, up.ID, 10001, 10, dfms.Hash{}, p), dfms.Invalid, "part 10001")
	testkit.WantKind(t, s.PutPart(ctx, a.ID, up.ID, 1, 11, dfms.Hash{}, p), dfms.Invalid, "size mismatch")
	testkit.WantKind(t, s.PutPart(ctx, b.ID, up.ID, 1, 10, dfms.Hash{}, p), dfms.NotExist, "other owner's part")
	_, err := s.ListParts(ctx, b.ID, up.ID)
	testkit.WantKind(t, err, dfms.NotExist, "other owner's list")
	_, _, err = s.CompleteUpload(ctx, b.ID, up.ID, dfms.Hash{}, "", nil)
	testkit.WantKind(t, err, dfms.NotExist, "other owner's complete")
	testkit.WantKind(t, s.AbortUpload(ctx, b.ID, up.ID), dfms.NotExist, "other owner's abort")
	_, _, err = s.CompleteUpload(ctx, a.ID, up.ID, dfms.Hash{}, "", nil)
	testkit.WantKind(t, err, dfms.Invalid, "complete with no parts")
	ok(t, s.PutPart(ctx, a.ID, up.ID, 1, 10, dfms.Hash{}, p))
	_, _, err = s.CompleteUpload(ctx, a.ID, up.ID, dfms.Hash{}, "", nil)
	testkit.WantKind(t, err, dfms.Invalid, "complete with a size other than declared")
	_, err = s.CreateUpload(ctx, meta.Upload{Owner: a.ID, Parent: a.Root, Name: "..", PartSize: 10}, 0)
	testkit.WantKind(t, err, dfms.Invalid, "bad name")
	_, err = s.CreateUpload(ctx, meta.Upload{Owner: a.ID, Parent: a.Root, Name: "f", PartSize: 0}, 0)
	testkit.WantKind(t, err, dfms.Invalid, "zero part size")
}

func testSearch(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "Reports")
	sub := mkdir(t, s, u.ID, d.ID, "2024")
	for _, n := range []string{"report-2024.pdf", "REPORT_final.txt", "notes.md", "100%.txt", "a_b.txt", "axb.txt"} {
		testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: n, Kind: dfms.KindFile}))(t)
	}
	base := time.Unix(1700000000, 0)
	m := manifest(t, s, chunk("search", 5000))
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: sub.ID, Name: "annual report.png", Manifest: m, MIME: "image/png", MTime: base})
	ok(t, err)
	search := func(q meta.SearchQuery) ([]string, int) {
		t.Helper()
		es, total, err := s.Search(ctx, u.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		return names(es), total
	}
	for _, tc := range []struct {
		q    meta.SearchQuery
		want []string
	}{
		{meta.SearchQuery{Text: "report"}, []string{"REPORT_final.txt", "Reports", "annual report.png", "report-2024.pdf"}},
		{meta.SearchQuery{Text: "report", Kind: dfms.KindFile}, []string{"REPORT_final.txt", "annual report.png", "report-2024.pdf"}},
		{meta.SearchQuery{Text: "%"}, []string{"100%.txt"}},  // wildcards are literal
		{meta.SearchQuery{Text: "a_b"}, []string{"a_b.txt"}}, // so is _
		{meta.SearchQuery{Text: "annual png"}, []string{"annual report.png"}},
		{meta.SearchQuery{Text: "image"}, []string{"annual report.png"}}, // MIME type matches
		{meta.SearchQuery{MIME: "image/"}, []string{"annual report.png"}},
		{meta.SearchQuery{MIME: "image/jpeg"}, nil},
		{meta.SearchQuery{MinSize: 4000}, []string{"annual report.png"}},
		{meta.SearchQuery{MaxSize: 10, Kind: dfms.KindFile, Text: "report"}, []string{"REPORT_final.txt", "report-2024.pdf"}},
		{meta.SearchQuery{After: base, Kind: dfms.KindFile, MaxSize: 1 << 20, MinSize: 1}, []string{"annual report.png"}},
		{meta.SearchQuery{Before: base, Text: "annual"}, nil},
		{meta.SearchQuery{Folder: sub.ID}, []string{"annual report.png"}},
		{meta.SearchQuery{Folder: d.ID, Text: "2024"}, []string{"2024", "report-2024.pdf"}},
	} {
		if got, total := search(tc.q); !slices.Equal(got, tc.want) || total != len(tc.want) {
			t.Errorf("Search(%+v) = %v (total %d), want %v", tc.q, got, total, tc.want)
		}
	}
	// The index follows renames and purges.
	notes := testkit.Must(s.Lookup(ctx, u.ID, d.ID, "notes.md"))(t)
	must2(t)(s.Rename(ctx, u.ID, notes.ID, d.ID, "minutes.md", false))
	if got, _ := search(meta.SearchQuery{Text: "notes"}); len(got) != 0 {
		t.Fatalf("old name still found: %v", got)
	}
	if got, _ := search(meta.SearchQuery{Text: "minutes"}); !slices.Equal(got, []string{"minutes.md"}) {
		t.Fatalf("new name not found: %v", got)
	}
	ok(t, s.Trash(ctx, u.ID, notes.ID))
	testkit.Must(s.Purge(ctx, u.ID, notes.ID))(t)
	if got, _ := search(meta.SearchQuery{Text: "minutes"}); len(got) != 0 {
		t.Fatalf("purged entry found: %v", got)
	}
	got, total := search(meta.SearchQuery{Text: "t", Limit: 2, Offset: 1})
	if len(got) != 2 || total < 5 {
		t.Fatalf("paged search = %v of %d", got, total)
	}
	_, _, err = s.Search(ctx, u.ID, meta.SearchQuery{Offset: -1})
	testkit.WantKind(t, err, dfms.Invalid, "negative offset")
}

func testChanges(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "d")
	f, _ := commit(t, s, u.ID, d.ID, "f", manifest(t, s, chunk("ch", 1)))
	must2(t)(s.Rename(ctx, u.ID, f.ID, u.Root, "g", false))
	ok(t, s.Trash(ctx, u.ID, f.ID))
	ch := testkit.Must(s.Changes(ctx, u.ID, 0, 100))(t)
	var ops []string
	for i, c := range ch {
		ops = append(ops, c.Op)
		if i > 0 && c.Seq <= ch[i-1].Seq {
			t.Fatal("changes not in sequence order")
		}
		if c.Owner != u.ID || c.At.IsZero() {
			t.Fatalf("change %+v", c)
		}
	}
	want := []string{dfms.ChangeCreate, dfms.ChangeCreate, dfms.ChangeVersion, dfms.ChangeRename, dfms.ChangeRename, dfms.ChangeTrash}
	if !slices.Equal(ops, want) {
		t.Fatalf("ops = %v, want %v", ops, want)
	}
	if ch[2].Version != 1 || ch[2].Entry != f.ID || ch[2].Parent != d.ID {
		t.Fatalf("version change = %+v", ch[2])
	}
	rest := testkit.Must(s.Changes(ctx, u.ID, ch[3].Seq, 100))(t)
	if len(rest) != 2 || rest[0].Seq != ch[4].Seq {
		t.Fatalf("changes after %d = %v", ch[3].Seq, rest)
	}
	for _, c := range ch {
		if c.Origin != "" {
			t.Fatalf("change without an origin reports %q", c.Origin)
		}
	}
	// The origin of the context is reported with the change.
	mine := meta.WithOrigin(ctx, "mount-1")
	if meta.Origin(mine) != "mount-1" || meta.Origin(ctx) != "" {
		t.Fatal("Origin does not report what the context carries")
	}
	h := testkit.Must(s.CreateEntry(mine, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "h", Kind: dfms.KindFile}))(t)
	last := ch[len(ch)-1].Seq
	got := testkit.Must(s.Changes(ctx, u.ID, last, 100))(t)
	if len(got) != 1 || got[0].Entry != h.ID || got[0].Origin != "mount-1" {
		t.Fatalf("changes after a create with an origin = %+v", got)
	}
}

// feedReader follows an owner's change feed as a client does: from a
// cursor, in pages, each page's last Seq the next cursor.
type feedReader struct {
	s      meta.Store
	owner  dfms.UserID
	start  int64 // the first cursor
	cursor int64
	seen   map[int64]bool
}

// poll reads what follows the cursor and fails t if a change comes twice
// or out of order.
func (r *feedReader) poll(t *testing.T) {
	t.Helper()
	for {
		page := testkit.Must(r.s.Changes(ctx, r.owner, r.cursor, 7))(t)
		for _, c := range page {
			if c.Seq <= r.cursor || r.seen[c.Seq] {
				t.Fatalf("change %d delivered again or out of order (cursor %d)", c.Seq, r.cursor)
			}
			r.seen[c.Seq] = true
			r.cursor = c.Seq
		}
		if len(page) < 7 {
			return
		}
	}
}

// missed returns the owner's changes after the first cursor that the
// reader has not seen, and how many there are.
func (r *feedReader) missed(t *testing.T) (missed []int64, total int) {
	t.Helper()
	all := testkit.Must(r.s.Changes(ctx, r.owner, r.start, 10000))(t)
	for _, c := range all {
		if !r.seen[c.Seq] {
			missed = append(missed, c.Seq)
		}
	}
	return missed, len(all)
}

// A change that becomes visible after a later-numbered one must not be
// passed by a reader's cursor: a commit held open after its work (its
// Durable waits) while another commit of the owner completes.
func testChangesInCommitOrder(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	da, db := mkdir(t, s, u.ID, u.Root, "a"), mkdir(t, s, u.ID, u.Root, "b")
	f, _ := commit(t, s, u.ID, da.ID, "f", manifest(t, s, chunk("order", 3)))
	last := testkit.Must(s.LastChange(ctx, u.ID))(t)
	r := &feedReader{s: s, owner: u.ID, start: last, cursor: last, seen: map[int64]bool{}}
	inA, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	errA, errB := make(chan error, 1), make(chan error, 1)
	go func() {
		_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: f.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{chunk("order", 3)}},
			Durable: func() error {
				once.Do(func() { close(inA) })
				<-release
				return nil
			}})
		errA <- err
	}()
	<-inA
	go func() {
		mode := uint32(0o700)
		_, err := s.SetAttr(ctx, u.ID, db.ID, dfms.SetAttr{Mode: &mode})
		errB <- err
	}()
	// The second write completes while the first is held (or, on a store
	// with one writer at a time, waits for it): follow the feed meanwhile.
	bDone := false
	for range 200 {
		r.poll(t)
		select {
		case err := <-errB:
			ok(t, err)
			bDone = true
		case <-time.After(time.Millisecond):
		}
		if bDone {
			break
		}
	}
	r.poll(t)
	close(release)
	ok(t, <-errA)
	if !bDone {
		ok(t, <-errB)
	}
	r.poll(t)
	if missed, total := r.missed(t); len(missed) > 0 {
		t.Fatalf("the reader missed changes %v of %d", missed, total)
	}
	if len(r.seen) != 2 {
		t.Fatalf("the reader saw %d changes, want 2", len(r.seen))
	}
}

// Concurrent writers and a reader following the cursor: the reader sees
// every change exactly once, in increasing Seq.
func testChangesConcurrentWriters(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	base := manifest(t, s, chunk("feed", 5))
	const writers, each = 6, 15
	dirs := make([]dfms.Entry, writers)
	files := make([]dfms.Entry, writers)
	for w := range writers {
		dirs[w] = mkdir(t, s, u.ID, u.Root, fmt.Sprint("d", w))
		files[w], _ = commit(t, s, u.ID, dirs[w].ID, "f", base)
	}
	r := &feedReader{s: s, owner: u.ID, seen: map[int64]bool{}}
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				var err error
				switch i % 3 {
				case 0:
					_, err = s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: dirs[w].ID, Name: fmt.Sprint("e", i), Kind: dfms.KindDir, Mode: 0o755})
				case 1:
					// A commit that stays open a moment after its work.
					_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: files[w].ID, Manifest: base,
						Durable: func() error { time.Sleep(time.Duration(i%4) * time.Millisecond); return nil }})
				case 2:
					mode := uint32(0o700 + i)
					_, err = s.SetAttr(ctx, u.ID, dirs[w].ID, dfms.SetAttr{Mode: &mode})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for following := true; following; {
		select {
		case <-done:
			following = false
		default:
		}
		r.poll(t)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r.poll(t)
	if missed, total := r.missed(t); len(missed) > 0 {
		t.Fatalf("the reader missed %d of %d changes: %v", len(missed), total, missed)
	}
}

func testNodes(t *testing.T, s meta.Store) {
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "n2", URL: "s3://b.example/bucket", Weight: 200}))
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "n1", URL: "file:///a", Weight: 100, State: dfms.NodeDraining}))
	probe := time.Now()
	testkit.Must(s.SetNodeState(ctx, "n1", dfms.NodeUp, 2, probe))(t)
	// A registration again replaces the description, and keeps the state
	// and probe record.
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "n1", URL: "file:///a2", Weight: 50, Zone: "z1", State: dfms.NodeUp}))
	for _, bad := range []dfms.StorageNode{
		{ID: "n3"},
		{ID: "n3", URL: "file:///x", State: "gone"},
		{ID: "n3", URL: "grpc://chunks:9090"},
		{ID: "n 3", URL: "file:///x"},
		{ID: "n3", URL: "file:///x", Weight: -1},
		{ID: "n3", URL: "file:///x", Zone: strings.Repeat("z", 129)},
	} {
		testkit.WantKind(t, s.PutNode(ctx, bad), dfms.Invalid, fmt.Sprintf("PutNode(%+v)", bad))
		testkit.WantKind(t, s.AddNode(ctx, bad), dfms.Invalid, fmt.Sprintf("AddNode(%+v)", bad))
	}
	testkit.Must(s.SetNodeState(ctx, "n2", dfms.NodeDown, 3, probe))(t)
	_, err := s.SetNodeState(ctx, "n9", dfms.NodeUp, 0, probe)
	testkit.WantKind(t, err, dfms.NotExist, "state of a missing node")
	_, err = s.SetNodeState(ctx, "n2", "gone", 0, probe)
	testkit.WantKind(t, err, dfms.Invalid, "an unknown state")
	ns := testkit.Must(s.ListNodes(ctx))(t)
	if len(ns) != 2 || ns[0].ID != "n1" || ns[0].URL != "file:///a2" || ns[0].Weight != 50 || ns[0].Zone != "z1" ||
		ns[0].State != dfms.NodeDraining || ns[0].Failures != 2 || !ns[0].LastProbe.Equal(probe) || ns[0].CreatedAt.IsZero() {
		t.Fatalf("n1 = %+v", ns[0])
	}
	if ns[1].State != dfms.NodeDown || ns[1].Failures != 3 || !ns[1].LastProbe.Equal(probe) {
		t.Fatalf("n2 = %+v", ns[1])
	}

	// AddNode registers only new nodes.
	ok(t, s.AddNode(ctx, dfms.StorageNode{ID: "n3", URL: "s3://k:secret@h:9000/c?secure=false", Weight: 0}))
	testkit.WantKind(t, s.AddNode(ctx, dfms.StorageNode{ID: "n3", URL: "file:///other"}), dfms.Exist, "AddNode of a known id")
	testkit.WantKind(t, s.AddNode(ctx, dfms.StorageNode{ID: "n1", URL: "file:///a2", Weight: 50, Zone: "z1"}), dfms.Exist, "AddNode of a known id, same description")

	// UpdateNode changes what it is given, and nothing on bad input.
	w, zone, url := 7, "z2", "file:///n3"
	n3 := testkit.Must(s.UpdateNode(ctx, "n3", meta.NodeChange{Weight: &w, Zone: &zone}))(t)
	if n3.Weight != 7 || n3.Zone != "z2" || n3.URL != "s3://k:secret@h:9000/c?secure=false" || n3.State != dfms.NodeUp {
		t.Fatalf("n3 after UpdateNode = %+v", n3)
	}
	n3 = testkit.Must(s.UpdateNode(ctx, "n3", meta.NodeChange{URL: &url}))(t)
	if n3.Weight != 7 || n3.URL != url {
		t.Fatalf("n3 after a new URL = %+v", n3)
	}
	neg, grpc := -1, "grpc://x:1"
	_, err = s.UpdateNode(ctx, "n3", meta.NodeChange{Weight: &neg, Zone: &zone})
	testkit.WantKind(t, err, dfms.Invalid, "a negative weight")
	_, err = s.UpdateNode(ctx, "n3", meta.NodeChange{URL: &grpc})
	testkit.WantKind(t, err, dfms.Invalid, "a grpc URL")
	_, err = s.UpdateNode(ctx, "n9", meta.NodeChange{Weight: &w})
	testkit.WantKind(t, err, dfms.NotExist, "UpdateNode of a missing node")
	if got := nodeByID(t, s, "n3"); got.Weight != 7 || got.URL != url || got.Zone != "z2" {
		t.Fatalf("n3 after refused updates = %+v", got)
	}
}

func nodeByID(t *testing.T, s meta.Nodes, id string) dfms.StorageNode {
	t.Helper()
	for _, n := range testkit.Must(s.ListNodes(ctx))(t) {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no node %q", id)
	return dfms.StorageNode{}
}

// Draining is the operator's (SetNodeDraining); SetNodeState, the health
// monitor's write, neither overwrites nor sets it, so that an operator's
// drain, or its end, between the monitor's read and its write stays.
func testNodeDraining(t *testing.T, s meta.Store) {
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "a", URL: "file:///a"}))
	probe := time.Now()
	state := func(id string) (dfms.NodeState, int) {
		n := nodeByID(t, s, id)
		return n.State, n.Failures
	}

	n := testkit.Must(s.SetNodeDraining(ctx, "a", true))(t)
	if n.State != dfms.NodeDraining {
		t.Fatalf("after a drain: %+v", n)
	}
	testkit.Must(s.SetNodeDraining(ctx, "a", true))(t) // again: no change
	// The monitor read "up" before the drain and writes what it made of
	// a failed probe: the failures and the time are recorded, the drain
	// stays, and the state recorded is returned.
	for _, st := range []dfms.NodeState{dfms.NodeSuspect, dfms.NodeDown, dfms.NodeUp} {
		got := testkit.Must(s.SetNodeState(ctx, "a", st, 1, probe))(t)
		if got != dfms.NodeDraining {
			t.Fatalf("SetNodeState(%s) of a draining node returned %s, want draining", st, got)
		}
	}
	if st, f := state("a"); st != dfms.NodeDraining || f != 1 {
		t.Fatalf("draining node after probes: %s with %d failures", st, f)
	}
	// The end of a drain: suspect, since the last probe failed.
	if n := testkit.Must(s.SetNodeDraining(ctx, "a", false))(t); n.State != dfms.NodeSuspect || n.Failures != 1 {
		t.Fatalf("after the end of a drain with a failure: %+v, want suspect", n)
	}
	// The monitor read "draining" before the end of the drain and writes
	// it back: the end stays.
	if got := testkit.Must(s.SetNodeState(ctx, "a", dfms.NodeDraining, 0, probe))(t); got != dfms.NodeSuspect {
		t.Fatalf("SetNodeState(draining) of a suspect node returned %s, want suspect", got)
	}
	if st, f := state("a"); st != dfms.NodeSuspect || f != 0 {
		t.Fatalf("after SetNodeState(draining): %s with %d failures, want suspect with 0", st, f)
	}
	// Otherwise the monitor's states are recorded as they are.
	for _, st := range []dfms.NodeState{dfms.NodeDown, dfms.NodeUp, dfms.NodeSuspect, dfms.NodeUp} {
		if got := testkit.Must(s.SetNodeState(ctx, "a", st, 0, probe))(t); got != st {
			t.Fatalf("SetNodeState(%s) returned %s", st, got)
		}
	}
	// Drain and end of drain with no failure: up. Ending the drain of a
	// node that is not draining leaves it as it is.
	testkit.Must(s.SetNodeDraining(ctx, "a", true))(t)
	if n := testkit.Must(s.SetNodeDraining(ctx, "a", false))(t); n.State != dfms.NodeUp {
		t.Fatalf("after the end of a drain without failures: %+v, want up", n)
	}
	testkit.Must(s.SetNodeState(ctx, "a", dfms.NodeDown, 3, probe))(t)
	if n := testkit.Must(s.SetNodeDraining(ctx, "a", false))(t); n.State != dfms.NodeDown {
		t.Fatalf("undrain of a down node: %+v, want it down still", n)
	}
	_, err := s.SetNodeDraining(ctx, "nobody", true)
	testkit.WantKind(t, err, dfms.NotExist, "drain of a missing node")
	_, err = s.SetNodeDraining(ctx, "nobody", false)
	testkit.WantKind(t, err, dfms.NotExist, "undrain of a missing node")
}

// RemoveNode removes only a draining node that holds no copies.
func testRemoveNode(t *testing.T, s meta.Store) {
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "a", URL: "file:///a"}))
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "b", URL: "file:///b"}))
	storeChunks(t, s, []dfms.ChunkRef{chunk("one", 3)})
	h := chunk("one", 3).Hash
	ok(t, s.AddReplicas(ctx, []dfms.Replica{{Hash: h, Node: "a"}, {Hash: h, Node: "b"}}))

	testkit.WantKind(t, s.RemoveNode(ctx, "a"), dfms.Conflict, "removal of a node that is up")
	testkit.Must(s.SetNodeDraining(ctx, "a", true))(t)
	err := s.RemoveNode(ctx, "a")
	testkit.WantKind(t, err, dfms.Conflict, "removal of a node that holds a copy")
	if err != nil && !strings.Contains(err.Error(), "1 chunk copies") {
		t.Errorf("removal of a node with a copy: %v, want it to say how many", err)
	}
	testkit.WantKind(t, s.RemoveNode(ctx, "nobody"), dfms.NotExist, "removal of a missing node")
	if got := len(testkit.Must(s.ListNodes(ctx))(t)); got != 2 {
		t.Fatalf("%d nodes after refused removals, want 2", got)
	}

	// Once its copy moved, it goes, and its id can be registered again.
	ok(t, s.DropReplicas(ctx, []dfms.Replica{{Hash: h, Node: "a"}}))
	ok(t, s.RemoveNode(ctx, "a"))
	testkit.WantKind(t, s.RemoveNode(ctx, "a"), dfms.NotExist, "a second removal")
	ns := testkit.Must(s.ListNodes(ctx))(t)
	if len(ns) != 1 || ns[0].ID != "b" {
		t.Fatalf("nodes after the removal = %+v", ns)
	}
	if u := testkit.Must(s.NodeUsage(ctx))(t); len(u) != 1 || u["b"].Chunks != 1 {
		t.Fatalf("usage after the removal = %+v", u)
	}
	testkit.WantKind(t, s.AddReplicas(ctx, []dfms.Replica{{Hash: h, Node: "a"}}), dfms.Other, "a copy on a removed node")
	ok(t, s.AddNode(ctx, dfms.StorageNode{ID: "a", URL: "file:///a-new"}))
	if n := nodeByID(t, s, "a"); n.State != dfms.NodeUp || n.Failures != 0 || !n.LastProbe.IsZero() || n.URL != "file:///a-new" {
		t.Fatalf("a registered again = %+v, want a new node", n)
	}
}

func testReplicas(t *testing.T, s meta.Store) {
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "a", URL: "file:///a"}))
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "b", URL: "file:///b"}))
	h1, h2 := dfms.Sum([]byte("one")), dfms.Sum([]byte("two"))
	ok(t, s.ReserveChunks(ctx, []dfms.ChunkRef{{Hash: h1, Size: 3}}))
	ok(t, s.AddChunks(ctx, []dfms.ChunkRef{{Hash: h1, Size: 3}}))
	ok(t, s.AddReplicas(ctx, []dfms.Replica{{Hash: h1, Node: "b"}, {Hash: h1, Node: "a"}, {Hash: h2, Node: "a"}, {Hash: h1, Node: "a"}}))
	ok(t, s.AddReplicas(ctx, []dfms.Replica{{Hash: h1, Node: "a"}})) // again: no error
	if got := testkit.Must(s.ChunkReplicas(ctx, h1))(t); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("replicas of h1 = %v, want [a b]", got)
	}
	u := testkit.Must(s.NodeUsage(ctx))(t)
	// h2 has no chunk row: its copy counts, with no bytes.
	if u["a"] != (dfms.NodeUsage{Chunks: 2, Bytes: 3}) || u["b"] != (dfms.NodeUsage{Chunks: 1, Bytes: 3}) || len(u) != 2 {
		t.Fatalf("usage = %+v", u)
	}
	ok(t, s.DropReplicas(ctx, []dfms.Replica{{Hash: h1, Node: "a"}, {Hash: h1, Node: "z"}}))
	if got := testkit.Must(s.ChunkReplicas(ctx, h1))(t); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("replicas of h1 after a drop = %v, want [b]", got)
	}
	if got := testkit.Must(s.ChunkReplicas(ctx, dfms.Sum(nil)))(t); len(got) != 0 {
		t.Fatalf("replicas of an unknown chunk = %v", got)
	}
	testkit.WantKind(t, s.AddReplicas(ctx, []dfms.Replica{{Hash: h1, Node: "nobody"}}), dfms.Other, "a copy on an unregistered node")

	// Two ids on one chunk store are refused.
	testkit.WantKind(t, s.PutNode(ctx, dfms.StorageNode{ID: "a2", URL: "file:///a"}), dfms.Exist, "a second node on a's store")

	// A surplus copy is forgotten only while enough others stay: h1 is
	// recorded on b only now.
	ok(t, s.AddReplicas(ctx, []dfms.Replica{{Hash: h1, Node: "a"}}))
	if dropped := testkit.Must(s.DropSurplusReplica(ctx, dfms.Replica{Hash: h1, Node: "a"}, 2))(t); dropped {
		t.Fatal("dropped a copy that left one other, keeping 2")
	}
	if dropped := testkit.Must(s.DropSurplusReplica(ctx, dfms.Replica{Hash: h1, Node: "a"}, 1))(t); !dropped {
		t.Fatal("kept a copy that left one other, keeping 1")
	}
	if got := testkit.Must(s.ChunkReplicas(ctx, h1))(t); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("replicas of h1 after a surplus drop = %v, want [b]", got)
	}
	// Three processes dropping one copy each, keeping 2 of 3: one wins.
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "c", URL: "file:///c"}))
	ok(t, s.AddReplicas(ctx, []dfms.Replica{{Hash: h1, Node: "a"}, {Hash: h1, Node: "c"}}))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for _, n := range []string{"a", "b", "c"} {
		wg.Go(func() {
			for {
				dropped, err := s.DropSurplusReplica(ctx, dfms.Replica{Hash: h1, Node: n}, 2)
				if dfms.Is(err, dfms.Transient) || dfms.Is(err, dfms.Conflict) {
					continue
				}
				if err != nil {
					t.Error(err)
				} else if dropped {
					wins.Add(1)
				}
				return
			}
		})
	}
	wg.Wait()
	if n := len(testkit.Must(s.ChunkReplicas(ctx, h1))(t)); wins.Load() != 1 || n != 2 {
		t.Fatalf("concurrent surplus drops: %d won, %d copies left; want 1 and 2", wins.Load(), n)
	}

	// The pass over the chunk index: stored chunks only, in hash order,
	// with their copies; h3 is pending, so not listed.
	h3 := dfms.Sum([]byte("three"))
	ok(t, s.ReserveChunks(ctx, []dfms.ChunkRef{{Hash: h2, Size: 3}, {Hash: h3, Size: 5}}))
	ok(t, s.AddChunks(ctx, []dfms.ChunkRef{{Hash: h2, Size: 3}}))
	var got []meta.ChunkCopies
	var after dfms.Hash
	for {
		page := testkit.Must(s.ChunkCopies(ctx, after, 1))(t)
		if len(page) == 0 {
			break
		}
		if len(page) > 1 {
			t.Fatalf("a page of 1 has %d chunks", len(page))
		}
		got = append(got, page...)
		after = page[len(page)-1].Hash
	}
	want := []meta.ChunkCopies{{Hash: h1, Size: 3, Nodes: testkit.Must(s.ChunkReplicas(ctx, h1))(t)}, {Hash: h2, Size: 3, Nodes: []string{"a"}}}
	if bytes.Compare(h2[:], h1[:]) < 0 {
		want[0], want[1] = want[1], want[0]
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("chunk copies = %+v, want %+v", got, want)
	}
}

// Racing writers on one file: every commit becomes its own version and the
// counts stay exact.
func testConcurrentCommits(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	shared := chunk("shared", 8)
	storeChunks(t, s, []dfms.ChunkRef{shared})
	e := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "hot", Kind: dfms.KindFile}))(t)
	const writers, each = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				own := chunk(fmt.Sprint("cc", w, i), 4)
				if err := s.ReserveChunks(ctx, []dfms.ChunkRef{own}); err != nil {
					errs <- err
					return
				}
				if err := s.AddChunks(ctx, []dfms.ChunkRef{own}); err != nil {
					errs <- err
					return
				}
				_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: e.ID,
					Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{shared, own, shared}}})
				if err != nil {
					errs <- err
				}
				// A second file per writer exercises the name index too.
				if _, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: fmt.Sprint("w", w),
					Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{shared}}}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	vs := testkit.Must(s.ListVersions(ctx, u.ID, e.ID))(t)
	if len(vs) != writers*each {
		t.Fatalf("%d versions, want %d", len(vs), writers*each)
	}
	for i, v := range vs {
		if v.Number != int64(i+1) {
			t.Fatalf("version %d has number %d", i, v.Number)
		}
	}
	if r := refs(t, s, shared); r != 2*writers*each+writers*each {
		t.Fatalf("refs(shared) = %d, want %d", r, 3*writers*each)
	}
	if us := testkit.Must(s.Usage(ctx, u.ID))(t); us.LogicalBytes != int64(writers*each*(20+8)) {
		t.Fatalf("usage %d, want %d", us.LogicalBytes, writers*each*28)
	}
}

// Two renames that would together form a cycle: at most one succeeds.
func testConcurrentRenames(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	for i := range 10 {
		a := mkdir(t, s, u.ID, u.Root, fmt.Sprint("a", i))
		b := mkdir(t, s, u.ID, u.Root, fmt.Sprint("b", i))
		var wg sync.WaitGroup
		var errA, errB error
		wg.Go(func() { _, _, errA = s.Rename(ctx, u.ID, a.ID, b.ID, "a", false) })
		wg.Go(func() { _, _, errB = s.Rename(ctx, u.ID, b.ID, a.ID, "b", false) })
		wg.Wait()
		if errA == nil && errB == nil {
			t.Fatal("both renames succeeded: a cycle detached from the root")
		}
		for _, err := range []error{errA, errB} {
			if err != nil && !dfms.Is(err, dfms.Conflict) {
				t.Fatalf("rename failed with %v, want Conflict", err)
			}
		}
	}
}

func testUsage(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "d")
	commit(t, s, u.ID, d.ID, "f", manifest(t, s, chunk("u1", 100)))
	commit(t, s, u.ID, d.ID, "f", manifest(t, s, chunk("u2", 50)))
	testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "l", Kind: dfms.KindSymlink, Target: "d"}))(t)
	us := testkit.Must(s.Usage(ctx, u.ID))(t)
	if us.LogicalBytes != 150 || us.Files != 1 || us.Dirs != 1 || us.Versions != 2 {
		t.Fatalf("usage = %+v", us)
	}
	_, err := s.Usage(ctx, 987654)
	testkit.WantKind(t, err, dfms.NotExist, "usage of a missing user")
	// Two versions sharing nothing, then a copy sharing everything.
	commit(t, s, u.ID, u.Root, "g", dfms.Manifest{Chunks: []dfms.ChunkRef{chunk("u1", 100), chunk("u1", 100)}})
	if n := testkit.Must(s.StoredBytes(ctx, u.ID))(t); n != 150 {
		t.Fatalf("StoredBytes = %d, want 150", n)
	}
}

func testRefreshTokens(t *testing.T, s meta.Store) {
	u, v := newUser(t, s), newUser(t, s)
	exp := time.Now().Add(time.Hour)
	ok(t, s.CreateRefreshToken(ctx, meta.RefreshToken{ID: "t1", User: u.ID, Family: "f1", ExpiresAt: exp}))
	testkit.WantKind(t, s.CreateRefreshToken(ctx, meta.RefreshToken{ID: "x", User: u.ID, ExpiresAt: exp}), dfms.Invalid, "token without family")

	old := testkit.Must(s.RotateRefreshToken(ctx, "t1", meta.RefreshToken{ID: "t2", ExpiresAt: exp}))(t)
	if old.ID != "t1" || old.User != u.ID || old.Family != "f1" {
		t.Fatalf("rotated token = %+v", old)
	}
	next := testkit.Must(s.RotateRefreshToken(ctx, "t2", meta.RefreshToken{ID: "t3", ExpiresAt: exp}))(t)
	if next.User != u.ID {
		t.Fatalf("t2 belongs to %d", next.User)
	}
	// Presenting t1 again: reuse, the family is revoked, t3 is dead too.
	_, err := s.RotateRefreshToken(ctx, "t1", meta.RefreshToken{ID: "t4", ExpiresAt: exp})
	testkit.WantKind(t, err, dfms.Permission, "reused token")
	_, err = s.RotateRefreshToken(ctx, "t3", meta.RefreshToken{ID: "t5", ExpiresAt: exp})
	testkit.WantKind(t, err, dfms.Permission, "token of a revoked family")
	_, err = s.RotateRefreshToken(ctx, "nope", meta.RefreshToken{ID: "t6", ExpiresAt: exp})
	testkit.WantKind(t, err, dfms.NotExist, "unknown token")

	ok(t, s.CreateRefreshToken(ctx, meta.RefreshToken{ID: "old", User: u.ID, Family: "f2", ExpiresAt: time.Now().Add(-time.Second)}))
	_, err = s.RotateRefreshToken(ctx, "old", meta.RefreshToken{ID: "t7", ExpiresAt: exp})
	testkit.WantKind(t, err, dfms.Permission, "expired token")

	// Logout revokes a family; a password change revokes a user's tokens.
	ok(t, s.CreateRefreshToken(ctx, meta.RefreshToken{ID: "l1", User: u.ID, Family: "f3", ExpiresAt: exp}))
	ok(t, s.RevokeRefreshToken(ctx, "l1"))
	_, err = s.RotateRefreshToken(ctx, "l1", meta.RefreshToken{ID: "l2", ExpiresAt: exp})
	testkit.WantKind(t, err, dfms.Permission, "logged-out token")
	testkit.WantKind(t, s.RevokeRefreshToken(ctx, "zzz"), dfms.NotExist, "revoke unknown")

	ok(t, s.CreateRefreshToken(ctx, meta.RefreshToken{ID: "a1", User: u.ID, Family: "f4", ExpiresAt: exp}))
	ok(t, s.CreateRefreshToken(ctx, meta.RefreshToken{ID: "b1", User: v.ID, Family: "f5", ExpiresAt: exp}))
	ok(t, s.RevokeUserRefreshTokens(ctx, u.ID))
	_, err = s.RotateRefreshToken(ctx, "a1", meta.RefreshToken{ID: "a2", ExpiresAt: exp})
	testkit.WantKind(t, err, dfms.Permission, "token after password change")
	if _, err := s.RotateRefreshToken(ctx, "b1", meta.RefreshToken{ID: "b2", ExpiresAt: exp}); err != nil {
		t.Fatalf("another user's token was revoked: %v", err)
	}
}

func testListSortPage(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	mkdir(t, s, u.ID, u.Root, "zdir")
	base := time.Unix(1700000000, 0)
	for i, n := range []string{"c", "a", "b"} {
		m := manifest(t, s, chunk("lsp"+n, uint32(10*(3-i))))
		_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: n, Manifest: m,
			MTime: base.Add(time.Duration(i) * time.Hour)})
		ok(t, err)
	}
	list := func(o meta.ListOptions) []string { return names(testkit.Must(s.ListDir(ctx, u.ID, u.Root, o))(t)) }
	for _, tc := range []struct {
		o    meta.ListOptions
		want []string
	}{
		{meta.ListOptions{}, []string{"zdir", "a", "b", "c"}},
		{meta.ListOptions{Desc: true}, []string{"zdir", "c", "b", "a"}},
		{meta.ListOptions{Sort: meta.SortSize}, []string{"zdir", "b", "a", "c"}},
		{meta.ListOptions{Sort: meta.SortSize, Desc: true}, []string{"zdir", "c", "a", "b"}},
		{meta.ListOptions{Sort: meta.SortMTime, Desc: true}, []string{"zdir", "b", "a", "c"}},
		{meta.ListOptions{Offset: 1, Limit: 2}, []string{"a", "b"}},
		{meta.ListOptions{Offset: 3}, []string{"c"}},
		{meta.ListOptions{Offset: 10, Limit: 5}, nil},
	} {
		if got := list(tc.o); !slices.Equal(got, tc.want) {
			t.Errorf("ListDir(%+v) = %v, want %v", tc.o, got, tc.want)
		}
	}
	_, err := s.ListDir(ctx, u.ID, u.Root, meta.ListOptions{Sort: "colour"})
	testkit.WantKind(t, err, dfms.Invalid, "unknown sort")
	_, err = s.ListDir(ctx, u.ID, u.Root, meta.ListOptions{Offset: -1})
	testkit.WantKind(t, err, dfms.Invalid, "negative offset")
	if n := testkit.Must(s.CountDir(ctx, u.ID, u.Root))(t); n != 4 {
		t.Fatalf("CountDir = %d, want 4", n)
	}
	_, err = s.CountDir(ctx, newUser(t, s).ID, u.Root)
	testkit.WantKind(t, err, dfms.NotExist, "CountDir of another's folder")
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "a", CreateOnly: true})
	testkit.WantKind(t, err, dfms.Exist, "create-only over an existing file")
}

// Possession: a user may only reference chunks it sent or committed.
func testChunkOwners(t *testing.T, s meta.Store) {
	a, b := newUser(t, s), newUser(t, s)
	x, y, z := chunk("own-x", 1), chunk("own-y", 2), chunk("own-z", 3)
	storeChunks(t, s, []dfms.ChunkRef{x, y})
	hs := []dfms.Hash{x.Hash, y.Hash, z.Hash, x.Hash}
	if got := testkit.Must(s.UnownedChunks(ctx, a.ID, hs))(t); !slices.Equal(got, []dfms.Hash{x.Hash, y.Hash, z.Hash}) {
		t.Fatalf("unowned before anything = %v", got)
	}
	commit(t, s, a.ID, a.Root, "f", dfms.Manifest{Chunks: []dfms.ChunkRef{x}})
	ok(t, s.OwnChunks(ctx, a.ID, []dfms.Hash{y.Hash, z.Hash}))
	// z is owned but not stored: still unusable.
	if got := testkit.Must(s.UnownedChunks(ctx, a.ID, hs))(t); !slices.Equal(got, []dfms.Hash{z.Hash}) {
		t.Fatalf("unowned for a = %v, want only the unstored z", got)
	}
	if got := testkit.Must(s.UnownedChunks(ctx, b.ID, hs))(t); len(got) != 3 {
		t.Fatalf("b owns %d of a's chunks", 3-len(got))
	}
	up := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: b.ID, Parent: b.Root, Name: "p", PartSize: 2}, 0))(t)
	ok(t, s.PutPart(ctx, b.ID, up.ID, 1, 2, dfms.Hash{}, dfms.Manifest{Chunks: []dfms.ChunkRef{y}}))
	if got := testkit.Must(s.UnownedChunks(ctx, b.ID, []dfms.Hash{y.Hash}))(t); len(got) != 0 {
		t.Fatalf("a part did not record possession: %v", got)
	}
}

// Possession is of bytes: when GC deletes a chunk, every user's
// possession of it goes with it, and storing the same bytes later (by
// someone else) does not bring it back. Otherwise "which chunks am I
// missing" would tell a user whether others store a chunk it once had.
func testPossessionGoesWithTheChunk(t *testing.T, s meta.Store) {
	a, b := newUser(t, s), newUser(t, s)
	f := lock(t, s, "gc")
	future := time.Now().Add(time.Hour)
	swept, orphan, deleting := chunk("possession: swept", 3), chunk("possession: orphan", 4), chunk("possession: deleting", 5)
	storeChunks(t, s, []dfms.ChunkRef{swept, deleting})
	ok(t, s.OwnChunks(ctx, a.ID, []dfms.Hash{swept.Hash, deleting.Hash}))
	// a once sent orphan's bytes, whose row is gone (collected, or the
	// write died before recording them).
	ok(t, s.OwnChunks(ctx, a.ID, []dfms.Hash{orphan.Hash}))

	// GC deletes swept (unreferenced) and orphan (bytes without a row).
	if !testkit.Must(s.BeginDelete(ctx, f, swept.Hash, future, time.Time{}))(t) {
		t.Fatal("BeginDelete of an unreferenced chunk failed")
	}
	ok(t, s.FinishDelete(ctx, f, swept.Hash))
	if !testkit.Must(s.ClaimOrphan(ctx, f, orphan.Hash, 4))(t) {
		t.Fatal("ClaimOrphan of a row-less chunk failed")
	}
	ok(t, s.FinishDelete(ctx, f, orphan.Hash))
	// Possession recorded while a chunk is being deleted is of bytes
	// about to vanish.
	if !testkit.Must(s.BeginDelete(ctx, f, deleting.Hash, future, time.Time{}))(t) {
		t.Fatal("BeginDelete failed")
	}
	ok(t, s.OwnChunks(ctx, b.ID, []dfms.Hash{deleting.Hash}))
	ok(t, s.FinishDelete(ctx, f, deleting.Hash))

	// b stores all three; a's possession does not come back, nor b's
	// from before the deletion.
	all := []dfms.ChunkRef{swept, orphan, deleting}
	storeChunks(t, s, all)
	ok(t, s.OwnChunks(ctx, b.ID, []dfms.Hash{swept.Hash, orphan.Hash}))
	hs := []dfms.Hash{swept.Hash, orphan.Hash, deleting.Hash}
	if got := testkit.Must(s.UnownedChunks(ctx, a.ID, hs))(t); !slices.Equal(got, hs) {
		t.Fatalf("a still possesses %d of the chunks GC deleted (unowned %v)", len(hs)-len(got), got)
	}
	if got := testkit.Must(s.UnownedChunks(ctx, b.ID, hs))(t); !slices.Equal(got, []dfms.Hash{deleting.Hash}) {
		t.Fatalf("unowned for b = %v, want only the chunk it claimed while it was being deleted", got)
	}
}

// A reserved chunk is pending: not usable, not claimable as an orphan,
// and collected like an unreferenced chunk once stale.
func testPendingChunks(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	f := lock(t, s, "gc")
	p := chunk("pending", 9)
	ok(t, s.ReserveChunks(ctx, []dfms.ChunkRef{p}))
	if c := testkit.Must(s.GetChunk(ctx, p.Hash))(t); !c.Pending || c.Refs != 0 {
		t.Fatalf("reserved chunk = %+v", c)
	}
	if miss := testkit.Must(s.MissingChunks(ctx, []dfms.Hash{p.Hash}))(t); len(miss) != 1 {
		t.Fatal("a pending chunk is reported stored")
	}
	if testkit.Must(s.ClaimOrphan(ctx, f, p.Hash, 9))(t) {
		t.Fatal("the orphan collector claimed a reserved chunk")
	}
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "f", Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{p}}})
	var mce *meta.MissingChunksError
	if !errors.As(err, &mce) {
		t.Fatalf("commit of a pending chunk: %v, want MissingChunksError", err)
	}
	testkit.WantKind(t, s.KeepChunks(ctx, []dfms.Hash{p.Hash}), dfms.Conflict, "KeepChunks of a pending chunk")
	ok(t, s.ReserveChunks(ctx, []dfms.ChunkRef{p})) // a second writer
	ok(t, s.AddChunks(ctx, []dfms.ChunkRef{p}))
	commit(t, s, u.ID, u.Root, "f", dfms.Manifest{Chunks: []dfms.ChunkRef{p}})
	// AddChunks without a reservation: the row may have been collected.
	testkit.WantKind(t, s.AddChunks(ctx, []dfms.ChunkRef{chunk("never reserved", 1)}), dfms.Conflict, "AddChunks without a reservation")
	// A stale reservation is swept.
	stale := chunk("stale reservation", 4)
	ok(t, s.ReserveChunks(ctx, []dfms.ChunkRef{stale}))
	future := time.Now().Add(time.Hour)
	if !testkit.Must(s.BeginDelete(ctx, f, stale.Hash, future, time.Time{}))(t) {
		t.Fatal("a stale reservation cannot be collected")
	}
	ok(t, s.FinishDelete(ctx, f, stale.Hash))
}

// A commit can record chunks whose bytes are still being stored
// (CommitRequest.Stored): it marks them stored in its own transaction and
// commits only once Durable returns; a failure there changes nothing.
func testCommitStoring(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	old := chunk("storing: kept", 7)
	first := manifest(t, s, old)
	e, _ := commit(t, s, u.ID, u.Root, "f", first)
	fresh := chunk("storing: new", 11)
	ok(t, s.ReserveChunks(ctx, []dfms.ChunkRef{fresh}))
	m := dfms.Manifest{Chunks: []dfms.ChunkRef{old, fresh, fresh}}

	// Stored needs Durable.
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: e.ID, Manifest: m, Stored: []dfms.ChunkRef{fresh}})
	testkit.WantKind(t, err, dfms.Invalid, "Stored without Durable")

	// The bytes could not be stored: nothing changes, the row stays pending.
	calls := 0
	failed := errors.New("disk full")
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: e.ID, Manifest: m, Base: 1,
		Stored: []dfms.ChunkRef{fresh}, Durable: func() error { calls++; return failed }})
	if !errors.Is(err, failed) || calls == 0 {
		t.Fatalf("commit whose chunks failed: %v (Durable called %d times), want %v", err, calls, failed)
	}
	if c := testkit.Must(s.GetChunk(ctx, fresh.Hash))(t); !c.Pending || c.Refs != 0 {
		t.Fatalf("after a failed commit the new chunk is %+v, want pending with no references", c)
	}
	if got := testkit.Must(s.GetEntry(ctx, u.ID, e.ID))(t); got.Version != 1 {
		t.Fatalf("a failed commit moved the file to version %d", got.Version)
	}
	if refs(t, s, old) != 1 {
		t.Fatalf("a failed commit left %d references to the kept chunk, want 1", refs(t, s, old))
	}

	// Durable is called after the commit's work: the version is not
	// visible to others until it returns.
	calls = 0
	got, v, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: e.ID, Manifest: m, Base: 1,
		Stored: []dfms.ChunkRef{fresh}, Durable: func() error { calls++; return nil }})
	ok(t, err)
	if calls == 0 || got.Version != 2 || v.Number != 2 {
		t.Fatalf("commit: entry version %d, version %d, Durable called %d times", got.Version, v.Number, calls)
	}
	if c := testkit.Must(s.GetChunk(ctx, fresh.Hash))(t); c.Pending || c.Refs != 2 {
		t.Fatalf("after the commit the new chunk is %+v, want stored with 2 references", c)
	}
	if refs(t, s, old) != 2 {
		t.Fatalf("kept chunk has %d references, want 2", refs(t, s, old))
	}
	if un := testkit.Must(s.UnownedChunks(ctx, u.ID, []dfms.Hash{fresh.Hash}))(t); len(un) != 0 {
		t.Fatal("the commit did not record possession of the chunk it stored")
	}

	// A chunk that was never reserved (its reservation was collected)
	// fails the commit as AddChunks would.
	lost := chunk("storing: never reserved", 3)
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: e.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{lost}},
		Stored: []dfms.ChunkRef{lost}, Durable: func() error { return nil }})
	testkit.WantKind(t, err, dfms.Conflict, "commit storing an unreserved chunk")

	// In a batch, a failing Durable fails only its own commit.
	other, _ := commit(t, s, u.ID, u.Root, "g", first)
	also := chunk("storing: batch", 5)
	ok(t, s.ReserveChunks(ctx, []dfms.ChunkRef{also}))
	res := testkit.Must(s.CommitVersions(ctx, []meta.CommitRequest{
		{Owner: u.ID, Entry: e.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{also}}, Stored: []dfms.ChunkRef{also}, Durable: func() error { return failed }},
		{Owner: u.ID, Entry: other.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{old}}},
	}))(t)
	if !errors.Is(res[0].Err, failed) || res[1].Err != nil || res[1].Entry.Version != 2 {
		t.Fatalf("batch: %v / %v (version %d)", res[0].Err, res[1].Err, res[1].Entry.Version)
	}
	if c := testkit.Must(s.GetChunk(ctx, also.Hash))(t); !c.Pending {
		t.Fatalf("the failed commit of a batch recorded its chunk: %+v", c)
	}
}

// lock takes the named lock for the rest of the test and returns its
// fence.
func lock(t *testing.T, s meta.Store, name string) meta.Fence {
	t.Helper()
	f, unlock, err := s.Lock(ctx, name)
	ok(t, err)
	t.Cleanup(unlock)
	return f
}

func testLock(t *testing.T, s meta.Store) {
	f, unlock, err := s.Lock(ctx, "gc")
	ok(t, err)
	_, _, err = s.Lock(ctx, "gc")
	testkit.WantKind(t, err, dfms.Conflict, "second lock")
	o, other, err := s.Lock(ctx, "other")
	ok(t, err)
	unlock()
	unlock() // idempotent
	g, again, err := s.Lock(ctx, "gc")
	ok(t, err)
	if f.Name != "gc" || o.Name != "other" || !(f.Epoch < o.Epoch && o.Epoch < g.Epoch) {
		t.Fatalf("fences %+v, %+v, %+v: want names gc, other, gc and growing epochs", f, o, g)
	}
	again()
	other()
}

// A holder that lost its lock changes nothing with its fence, and a
// chunk's deletion mark belongs to the holder that made it until it is
// old.
func testLockFencing(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	x, y := chunk("fence-x", 4), chunk("fence-y", 5)
	storeChunks(t, s, []dfms.ChunkRef{x, y})
	future, past := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)

	old, unlock, err := s.Lock(ctx, "gc")
	ok(t, err)
	unlock() // as if its connection died: the lock is free
	f, unlockF, err := s.Lock(ctx, "gc")
	ok(t, err)
	_, err = s.BeginDelete(ctx, old, x.Hash, future, past)
	testkit.WantKind(t, err, dfms.Conflict, "BeginDelete with a stale fence")
	_, err = s.ClaimOrphan(ctx, old, chunk("fence-orphan", 1).Hash, 1)
	testkit.WantKind(t, err, dfms.Conflict, "ClaimOrphan with a stale fence")
	if c := testkit.Must(s.GetChunk(ctx, x.Hash))(t); c.Deleting {
		t.Fatal("a stale fence marked a chunk deleting")
	}
	if _, err := s.GetChunk(ctx, chunk("fence-orphan", 1).Hash); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("a stale fence claimed an orphan: %v", err)
	}

	// f marks x, and may ask again (an interrupted run of its own).
	if !testkit.Must(s.BeginDelete(ctx, f, x.Hash, future, past))(t) || !testkit.Must(s.BeginDelete(ctx, f, x.Hash, future, past))(t) {
		t.Fatal("the lock's holder could not mark an unreferenced chunk")
	}
	testkit.WantKind(t, s.FinishDelete(ctx, old, x.Hash), dfms.Conflict, "FinishDelete by a fence that did not mark it")
	if !testkit.Must(s.ClaimOrphan(ctx, f, chunk("fence-orphan", 1).Hash, 1))(t) {
		t.Fatal("the lock's holder could not claim an orphan")
	}

	// f loses the lock to g: g leaves f's young marks alone, and takes
	// them over once they are older than its stale.
	unlockF()
	g := lock(t, s, "gc")
	if testkit.Must(s.BeginDelete(ctx, g, x.Hash, future, past))(t) {
		t.Fatal("a young mark of another holder was taken over")
	}
	testkit.WantKind(t, must1Err(s.BeginDelete(ctx, f, y.Hash, future, past)), dfms.Conflict, "f marking after losing the lock")
	ok(t, s.FinishDelete(ctx, f, chunk("fence-orphan", 1).Hash)) // its own mark: f deleted the bytes
	if !testkit.Must(s.BeginDelete(ctx, g, x.Hash, future, future))(t) {
		t.Fatal("an old mark of another holder was not taken over")
	}
	testkit.WantKind(t, s.FinishDelete(ctx, f, x.Hash), dfms.Conflict, "FinishDelete by the holder whose mark was taken over")
	ok(t, s.FinishDelete(ctx, g, x.Hash))
	_, err = s.GetChunk(ctx, x.Hash)
	testkit.WantKind(t, err, dfms.NotExist, "chunk after FinishDelete")

	// Referenced chunks are never marked, whoever asks.
	commit(t, s, u.ID, u.Root, "f", dfms.Manifest{Chunks: []dfms.ChunkRef{y}})
	if testkit.Must(s.BeginDelete(ctx, g, y.Hash, future, future))(t) {
		t.Fatal("a referenced chunk was marked")
	}
}

func testXattrs(t *testing.T, s meta.Store) {
	u, other := newUser(t, s), newUser(t, s)
	f := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "x", Kind: dfms.KindFile, Mode: 0o644}))(t)
	if v, found, err := s.GetXattr(ctx, u.ID, f.ID, "user.a"); err != nil || found || v != nil {
		t.Fatalf("get of a missing attribute: %q %v %v", v, found, err)
	}
	testkit.WantKind(t, s.SetXattr(ctx, u.ID, f.ID, "user.a", []byte("1"), dfms.XattrReplace), dfms.NotExist, "replace a missing attribute")
	ok(t, s.SetXattr(ctx, u.ID, f.ID, "user.a", []byte("1"), dfms.XattrCreate))
	testkit.WantKind(t, s.SetXattr(ctx, u.ID, f.ID, "user.a", []byte("2"), dfms.XattrCreate), dfms.Exist, "create an existing attribute")
	ok(t, s.SetXattr(ctx, u.ID, f.ID, "user.a", []byte("2"), dfms.XattrReplace))
	ok(t, s.SetXattr(ctx, u.ID, f.ID, "user.empty", nil, dfms.XattrAny))
	ok(t, s.SetXattr(ctx, u.ID, f.ID, "trusted.b", []byte{0, 1, 2}, dfms.XattrAny))
	if v, found, err := s.GetXattr(ctx, u.ID, f.ID, "user.a"); err != nil || !found || string(v) != "2" {
		t.Fatalf("get: %q %v %v", v, found, err)
	}
	if v, found, err := s.GetXattr(ctx, u.ID, f.ID, "user.empty"); err != nil || !found || v == nil || len(v) != 0 {
		t.Fatalf("get of an empty value: %q %v %v", v, found, err)
	}
	if names := testkit.Must(s.ListXattrs(ctx, u.ID, f.ID))(t); !slices.Equal(names, []string{"trusted.b", "user.a", "user.empty"}) {
		t.Fatalf("list: %q", names)
	}
	testkit.WantKind(t, s.SetXattr(ctx, u.ID, f.ID, "user.big", make([]byte, dfms.MaxXattrValue+1), dfms.XattrAny), dfms.TooLarge, "too long a value")
	testkit.WantKind(t, s.SetXattr(ctx, u.ID, f.ID, "", nil, dfms.XattrAny), dfms.Invalid, "an empty name")
	// Another user sees no entry.
	_, _, err := s.GetXattr(ctx, other.ID, f.ID, "user.a")
	testkit.WantKind(t, err, dfms.NotExist, "another user's get")
	testkit.WantKind(t, s.SetXattr(ctx, other.ID, f.ID, "user.a", nil, dfms.XattrAny), dfms.NotExist, "another user's set")
	ok(t, s.RemoveXattr(ctx, u.ID, f.ID, "user.a"))
	testkit.WantKind(t, s.RemoveXattr(ctx, u.ID, f.ID, "user.a"), dfms.NotExist, "remove a missing attribute")
	// Purging the entry takes its attributes.
	ok(t, s.Trash(ctx, u.ID, f.ID))
	testkit.Must(s.Purge(ctx, u.ID, f.ID))(t)
	_, _, err = s.GetXattr(ctx, u.ID, f.ID, "trusted.b")
	testkit.WantKind(t, err, dfms.NotExist, "get after purge")
}

func testDirTimes(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "d")
	d2 := mkdir(t, s, u.ID, u.Root, "d2")
	past := time.Unix(1000000000, 0)
	for _, id := range []dfms.EntryID{d.ID, d2.ID} {
		testkit.Must(s.SetAttr(ctx, u.ID, id, dfms.SetAttr{MTime: &past}))(t)
	}
	changed := func(what string, ids ...dfms.EntryID) {
		t.Helper()
		for _, id := range ids {
			e := testkit.Must(s.GetEntry(ctx, u.ID, id))(t)
			if !e.MTime.After(past) || !e.CTime.After(past) {
				t.Errorf("%s: directory %d has mtime %v, ctime %v; want both moved", what, id, e.MTime, e.CTime)
			}
			testkit.Must(s.SetAttr(ctx, u.ID, id, dfms.SetAttr{MTime: &past}))(t)
		}
	}
	f := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: "f", Kind: dfms.KindFile, Mode: 0o644}))(t)
	changed("create", d.ID)
	_, _, err := s.Rename(ctx, u.ID, f.ID, d2.ID, "g", false)
	ok(t, err)
	changed("rename across", d.ID, d2.ID)
	ok(t, s.Trash(ctx, u.ID, f.ID))
	changed("trash", d2.ID)
}

// testLazyDurability: writes made with meta.WithLazyDurability behave as
// any other (visible at once, atomic, failing cleanly), also when they
// interleave with durable ones, and Sync makes them durable.
func testLazyDurability(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	lazy := meta.WithLazyDurability(ctx)
	if !meta.LazyDurability(lazy) || meta.LazyDurability(ctx) {
		t.Fatal("LazyDurability does not report what the context carries")
	}
	d := testkit.Must(s.CreateEntry(lazy, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "d", Kind: dfms.KindDir, Mode: 0o755}))(t)
	got := testkit.Must(s.Lookup(ctx, u.ID, u.Root, "d"))(t)
	if got.ID != d.ID {
		t.Fatalf("a lazy create is not visible: %+v", got)
	}
	_, err := s.CreateEntry(lazy, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "d", Kind: dfms.KindFile})
	testkit.WantKind(t, err, dfms.Exist, "lazy create of a taken name")

	// Lazy and durable writes at once: each lands once, in its place.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.CreateEntry(lazy, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: fmt.Sprintf("lazy%02d", i), Kind: dfms.KindFile, Mode: 0o644})
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: fmt.Sprintf("sync%02d", i), Kind: dfms.KindFile, Mode: 0o644})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		ok(t, err)
	}
	if list := testkit.Must(s.ListDir(ctx, u.ID, d.ID, meta.ListOptions{}))(t); len(list) != 40 {
		t.Fatalf("ListDir after mixed creates: %d names, want 40", len(list))
	}
	f := testkit.Must(s.Lookup(ctx, u.ID, d.ID, "lazy00"))(t)
	mode := uint32(0o600)
	testkit.Must(s.SetAttr(lazy, u.ID, f.ID, dfms.SetAttr{Mode: &mode}))(t)
	ok(t, s.Sync(ctx))
	if got := testkit.Must(s.GetEntry(ctx, u.ID, f.ID))(t); got.Mode != 0o600 {
		t.Fatalf("mode after a lazy SetAttr and Sync = %o", got.Mode)
	}
	ok(t, s.Sync(ctx)) // nothing left to sync
}

func testReservedIDs(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "d")
	testkit.WantKind(t, must1Err(s.ReserveEntryIDs(ctx, u.ID, 0)), dfms.Invalid, "reserve 0")
	ids := testkit.Must(s.ReserveEntryIDs(ctx, u.ID, 3))(t)
	more := testkit.Must(s.ReserveEntryIDs(ctx, u.ID, 2))(t)
	seen := map[dfms.EntryID]bool{d.ID: true, u.Root: true}
	for _, id := range append(slices.Clone(ids), more...) {
		if id <= 0 || seen[id] {
			t.Fatalf("reserved ids %v then %v: %d is taken or repeated", ids, more, id)
		}
		seen[id] = true
	}
	// Entries made the ordinary way never take a reserved id.
	for i := range 3 {
		e := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: fmt.Sprintf("plain%d", i), Kind: dfms.KindFile}))(t)
		if seen[e.ID] {
			t.Fatalf("CreateEntry picked reserved id %d", e.ID)
		}
	}
	mine := meta.WithOrigin(ctx, "mount-9")
	var last int64
	if ch := testkit.Must(s.Changes(ctx, u.ID, 0, 1000))(t); len(ch) > 0 {
		last = ch[len(ch)-1].Seq
	}
	res := testkit.Must(s.CreateEntries(mine, []dfms.Entry{
		{ID: ids[0], Owner: u.ID, Parent: d.ID, Name: "a", Kind: dfms.KindFile, Mode: 0o640, UID: 7, GID: 8, MTime: time.Unix(1e9, 0)},
		{ID: ids[1], Owner: u.ID, Parent: d.ID, Name: "plain0", Kind: dfms.KindFile},
		{ID: ids[2], Owner: u.ID, Parent: ids[0], Name: "x", Kind: dfms.KindFile},
		{ID: more[0], Owner: u.ID, Parent: 1 << 40, Name: "y", Kind: dfms.KindFile},
		{ID: more[1], Owner: u.ID, Parent: d.ID, Name: "bad/name", Kind: dfms.KindFile},
		{Owner: u.ID, Parent: d.ID, Name: "noid", Kind: dfms.KindFile},
	}))(t)
	if len(res) != 6 {
		t.Fatalf("%d results for 6 entries", len(res))
	}
	ok(t, res[0].Err)
	a := res[0].Entry
	if a.ID != ids[0] || a.Name != "a" || a.Mode != 0o640 || a.UID != 7 || a.GID != 8 || !a.MTime.Equal(time.Unix(1e9, 0)) || a.Version != 0 {
		t.Fatalf("created %+v", a)
	}
	if got := testkit.Must(s.Lookup(ctx, u.ID, d.ID, "a"))(t); got.ID != ids[0] || got.Mode != 0o640 {
		t.Fatalf("lookup of the created entry = %+v", got)
	}
	testkit.WantKind(t, res[1].Err, dfms.Exist, "taken name")
	testkit.WantKind(t, res[2].Err, dfms.NotDir, "file as parent")
	testkit.WantKind(t, res[3].Err, dfms.NotExist, "missing parent")
	testkit.WantKind(t, res[4].Err, dfms.Invalid, "bad name")
	testkit.WantKind(t, res[5].Err, dfms.Invalid, "no id")
	// A failed entry left nothing behind, and its id stays unused.
	if _, err := s.GetEntry(ctx, u.ID, ids[1]); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("entry of a failed create: %v", err)
	}
	// The create is in the change feed with its origin, and the
	// directory's times moved.
	ch := testkit.Must(s.Changes(ctx, u.ID, last, 100))(t)
	if len(ch) != 1 || ch[0].Entry != ids[0] || ch[0].Op != dfms.ChangeCreate || ch[0].Parent != d.ID || ch[0].Origin != "mount-9" {
		t.Fatalf("changes = %+v", ch)
	}
	if got := testkit.Must(s.GetEntry(ctx, u.ID, d.ID))(t); !got.MTime.After(d.MTime) && !got.MTime.Equal(d.MTime) {
		t.Fatalf("directory mtime went back: %v < %v", got.MTime, d.MTime)
	}
	// A reserved id already used is not taken twice.
	res = testkit.Must(s.CreateEntries(ctx, []dfms.Entry{{ID: ids[0], Owner: u.ID, Parent: d.ID, Name: "again", Kind: dfms.KindFile}}))(t)
	if res[0].Err == nil {
		t.Fatal("a used id was taken again")
	}
	// The same create sent again (its answer lost) is answered as made,
	// and makes nothing twice.
	res = testkit.Must(s.CreateEntries(ctx, []dfms.Entry{{ID: ids[0], Owner: u.ID, Parent: d.ID, Name: "a", Kind: dfms.KindFile}}))(t)
	if res[0].Err != nil || res[0].Entry.ID != ids[0] || res[0].Entry.Mode != 0o640 {
		t.Fatalf("the create sent again: %+v, %v", res[0].Entry, res[0].Err)
	}
	// An id is reserved for its owner alone.
	other := newUser(t, s)
	theirs := testkit.Must(s.ReserveEntryIDs(ctx, other.ID, 1))(t)
	res = testkit.Must(s.CreateEntries(ctx, []dfms.Entry{
		{ID: theirs[0], Owner: u.ID, Parent: d.ID, Name: "squat", Kind: dfms.KindFile},
		{ID: ids[1] + 1<<30, Owner: u.ID, Parent: d.ID, Name: "unreserved", Kind: dfms.KindFile},
	}))(t)
	testkit.WantKind(t, res[0].Err, dfms.Invalid, "another owner's reserved id")
	testkit.WantKind(t, res[1].Err, dfms.Invalid, "an id never reserved")
	// The embedded mount's journal may name ids reserved before
	// reservations were kept per owner: it may use an id not taken.
	res = testkit.Must(s.CreateEntries(meta.WithUnreservedIDs(ctx), []dfms.Entry{
		{ID: ids[1] + 1<<30, Owner: u.ID, Parent: d.ID, Name: "from-an-old-journal", Kind: dfms.KindFile},
		{ID: ids[0], Owner: u.ID, Parent: d.ID, Name: "taken-id", Kind: dfms.KindFile},
	}))(t)
	ok(t, res[0].Err)
	if res[1].Err == nil {
		t.Fatal("an unreserved create took an id in use")
	}
	res = testkit.Must(s.CreateEntries(ctx, []dfms.Entry{{ID: theirs[0], Owner: other.ID, Parent: other.Root, Name: "mine", Kind: dfms.KindFile}}))(t)
	ok(t, res[0].Err)
	// An owner holds at most MaxReservedIDs: the oldest go first.
	held := testkit.Must(s.ReserveEntryIDs(ctx, other.ID, meta.MaxReservedIDs))(t)
	newest := testkit.Must(s.ReserveEntryIDs(ctx, other.ID, 1))(t)
	res = testkit.Must(s.CreateEntries(ctx, []dfms.Entry{
		{ID: held[0], Owner: other.ID, Parent: other.Root, Name: "oldest", Kind: dfms.KindFile},
		{ID: held[1], Owner: other.ID, Parent: other.Root, Name: "kept", Kind: dfms.KindFile},
		{ID: newest[0], Owner: other.ID, Parent: other.Root, Name: "newest", Kind: dfms.KindFile},
	}))(t)
	testkit.WantKind(t, res[0].Err, dfms.Invalid, "the oldest reserved id past the bound")
	ok(t, res[1].Err)
	ok(t, res[2].Err)
	// Versions commit on top of an entry made this way.
	m := manifest(t, s, chunk("reserved", 5))
	_, v, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: ids[0], Manifest: m})
	ok(t, err)
	if v.Number != 1 {
		t.Fatalf("first version of a reserved-id entry is %d", v.Number)
	}
}

func must1Err[T any](_ T, err error) error { return err }

func testTrashEntries(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "d")
	sub := mkdir(t, s, u.ID, d.ID, "sub")
	f, _ := commit(t, s, u.ID, d.ID, "f", manifest(t, s, chunk("te", 3)))
	g := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: sub.ID, Name: "g", Kind: dfms.KindFile}))(t)
	ok(t, s.Trash(ctx, u.ID, testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: d.ID, Name: "gone", Kind: dfms.KindFile}))(t).ID))
	gone := trashOf(t, s, u.ID)[0]
	other := newUser(t, s)
	theirs := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: other.ID, Parent: other.Root, Name: "t", Kind: dfms.KindFile}))(t)

	at := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	var items []meta.TrashItem
	for _, id := range []dfms.EntryID{f.ID, gone.ID, sub.ID, u.Root, theirs.ID, 1 << 40} {
		items = append(items, meta.TrashItem{ID: id})
	}
	items[0].At = at // deleted an hour ago, told now
	dBefore := testkit.Must(s.GetEntry(ctx, u.ID, d.ID))(t)
	errs := testkit.Must(s.TrashEntries(ctx, u.ID, items))(t)
	if len(errs) != 6 {
		t.Fatalf("%d results for 6 entries", len(errs))
	}
	ok(t, errs[0])
	testkit.WantKind(t, errs[1], dfms.NotExist, "already trashed")
	ok(t, errs[2])
	testkit.WantKind(t, errs[3], dfms.Invalid, "root")
	testkit.WantKind(t, errs[4], dfms.NotExist, "another owner's entry")
	testkit.WantKind(t, errs[5], dfms.NotExist, "no such entry")
	// The file and the directory went, the directory with what it held;
	// the other owner's file stayed.
	for _, id := range []dfms.EntryID{f.ID, sub.ID, g.ID} {
		if e := testkit.Must(s.GetEntry(ctx, u.ID, id))(t); e.Live() {
			t.Fatalf("entry %d is still live", id)
		}
	}
	if e := testkit.Must(s.GetEntry(ctx, other.ID, theirs.ID))(t); !e.Live() {
		t.Fatal("another owner's entry was trashed")
	}
	if names := names(trashOf(t, s, u.ID)); !slices.Contains(names, "f") || !slices.Contains(names, "sub") || slices.Contains(names, "g") {
		t.Fatalf("trash holds %v", names)
	}
	// The file's deletion time is the one given; its directory's times
	// did not go back to it.
	if e := testkit.Must(s.GetEntry(ctx, u.ID, f.ID))(t); !e.DeletedAt.Equal(at) {
		t.Fatalf("deleted at %v, want %v", e.DeletedAt, at)
	}
	if e := testkit.Must(s.GetEntry(ctx, u.ID, d.ID))(t); e.MTime.Before(dBefore.MTime) || e.CTime.Before(dBefore.CTime) {
		t.Fatalf("directory times went back: %v/%v, before %v/%v", e.MTime, e.CTime, dBefore.MTime, dBefore.CTime)
	}
	// Trashed files restore with their versions.
	r := testkit.Must(s.Restore(ctx, u.ID, f.ID))(t)
	if r.Version != 1 || r.Name != "f" {
		t.Fatalf("restored %+v", r)
	}
}

// A manifest of many chunks (several statements' worth, the wrong size in
// the second): all references are taken, or none.
func testManyChunks(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	var cs []dfms.ChunkRef
	for i := range 600 {
		cs = append(cs, chunk(fmt.Sprint("many-", i), uint32(100+i)))
	}
	storeChunks(t, s, cs[:560])
	late := chunk("many-late", 7)
	m := dfms.Manifest{Chunks: append(append(slices.Clone(cs[:560]), late), cs[3], cs[3])}
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "f", Manifest: m})
	var mc *meta.MissingChunksError
	if !errors.As(err, &mc) || len(mc.Hashes) != 1 || mc.Hashes[0] != late.Hash {
		t.Fatalf("commit with one chunk missing: %v", err)
	}
	for _, r := range cs[:560] {
		if n := refs(t, s, r); n != 0 {
			t.Fatalf("a failed commit left %d references on %s", n, r.Hash)
		}
	}
	// A size that does not match the stored chunk's.
	bad := dfms.Manifest{Chunks: slices.Clone(cs[:400])}
	bad.Chunks[390].Size++
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "f", Manifest: bad})
	testkit.WantKind(t, err, dfms.Invalid, "commit with a wrong chunk size")
	storeChunks(t, s, []dfms.ChunkRef{late})
	if _, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "f", Manifest: m}); err != nil {
		t.Fatal(err)
	}
	for i, r := range cs[:560] {
		want := int64(1)
		if i == 3 {
			want = 3 // per occurrence
		}
		if n := refs(t, s, r); n != want {
			t.Fatalf("chunk %d has %d references, want %d", i, n, want)
		}
	}
	if n := refs(t, s, late); n != 1 {
		t.Fatalf("late chunk has %d references", n)
	}
	// The commit recorded the owner's possession of every chunk.
	hs := make([]dfms.Hash, 0, len(m.Chunks))
	for _, r := range m.Chunks {
		hs = append(hs, r.Hash)
	}
	if un := testkit.Must(s.UnownedChunks(ctx, u.ID, hs))(t); len(un) != 0 {
		t.Fatalf("after the commit, %d chunks are not the owner's", len(un))
	}
}

// A version is for good: a rename over a file (the moved file continues
// the replaced one's history) changes no version's ID, file, number or
// content; a checksum recorded by ID lands on that content, and no ID is
// reused.
func testVersionIdentity(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	content := map[int64]dfms.Manifest{}
	before := map[int64]dfms.Version{}
	put := func(name string, parts ...string) (dfms.Entry, dfms.Version) {
		t.Helper()
		var refs []dfms.ChunkRef
		for _, p := range parts {
			refs = append(refs, chunk(p, uint32(len(p))))
		}
		// No checksum: computed later (SetChecksum), as for the mount's.
		e, v, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: name, Manifest: manifest(t, s, refs...)})
		ok(t, err)
		content[v.ID] = dfms.Manifest{Chunks: refs}
		before[v.ID] = v
		return e, v
	}
	// app.log.1 has two versions; app.log (the file an appender holds
	// open) three.
	old, _ := put("app.log.1", "old one")
	_, o2 := put("app.log.1", "old one", "old two")
	cur, _ := put("app.log", "new one")
	put("app.log", "new one", "new two")
	_, c3 := put("app.log", "new one", "new two", "new three")
	if c3.ID != testkit.Must(s.GetEntry(ctx, u.ID, cur.ID))(t).VersionID {
		t.Fatal("an entry's VersionID is not its current version's ID")
	}
	must2(t)(s.Rename(ctx, u.ID, cur.ID, u.Root, "app.log.1", true))
	// Every ID still names its content, in the file it was committed to;
	// the replaced file's keep their numbers, and the moved file's count
	// after them (its history starts with the two it continues).
	for id, m := range content {
		v, err := s.VersionByID(ctx, u.ID, id)
		ok(t, err)
		b := before[id]
		if b.Entry == cur.ID {
			b.Number += 2
		}
		if v.ID != id || v.Entry != b.Entry || v.Number != b.Number || !slices.Equal(v.Manifest.Chunks, m.Chunks) {
			t.Fatalf("version %d after the rename = %+v, want the content it was committed with, as %d of %d", id, v, b.Number, b.Entry)
		}
	}
	// The history of app.log.1 now: the replaced file's two versions,
	// then the moved file's three, numbered after them; its current
	// version is the same version as before.
	e := testkit.Must(s.GetEntry(ctx, u.ID, cur.ID))(t)
	if e.VersionID != c3.ID || e.Version != 5 {
		t.Fatalf("the moved file = version %d id %d, want 5 and id %d", e.Version, e.VersionID, c3.ID)
	}
	vs := testkit.Must(s.ListVersions(ctx, u.ID, cur.ID))(t)
	if len(vs) != 5 || vs[0].Entry != old.ID || vs[1].ID != o2.ID || vs[2].Entry != cur.ID || vs[4].ID != c3.ID {
		t.Fatalf("history of the moved file = %+v", vs)
	}
	for i, v := range vs {
		if v.Number != int64(i+1) {
			t.Fatalf("history of the moved file numbers %d as %d", i+1, v.Number)
		}
	}
	if v := testkit.Must(s.GetVersion(ctx, u.ID, cur.ID, 2))(t); v.ID != o2.ID || !slices.Equal(v.Manifest.Chunks, content[o2.ID].Chunks) {
		t.Fatalf("version 2 of the moved file = %+v, want the replaced file's last", v)
	}
	// The replaced file keeps its own versions, its current one included.
	oe := testkit.Must(s.GetEntry(ctx, u.ID, old.ID))(t)
	if oe.VersionID != o2.ID || oe.Version != 2 || oe.Live() {
		t.Fatalf("the replaced file = %+v", oe)
	}
	// A checksum recorded by ID goes to that version, not to whatever
	// holds its old number now.
	sum := dfms.Sum([]byte("the content of c3"))
	ok(t, s.SetChecksum(ctx, u.ID, c3.ID, sum))
	for _, v := range testkit.Must(s.ListVersions(ctx, u.ID, cur.ID))(t) {
		if (v.SHA256 == sum) != (v.ID == c3.ID) {
			t.Fatalf("after SetChecksum(%d), version %d (id %d) has checksum %s", c3.ID, v.Number, v.ID, v.SHA256)
		}
	}
	// Bases are IDs: a commit on the moved file based on its current
	// version records that ID, and RequireBase compares IDs.
	m := manifest(t, s, chunk("appended", 8))
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: cur.ID, Manifest: m, Base: o2.ID, RequireBase: true})
	testkit.WantKind(t, err, dfms.Conflict, "a base that is not current")
	ne, nv, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: cur.ID, Manifest: m, Base: c3.ID, RequireBase: true})
	ok(t, err)
	if nv.Base != c3.ID || nv.Number != 6 || ne.VersionID != nv.ID {
		t.Fatalf("a commit after the rename: %+v %+v", ne, nv)
	}
	for id := range content {
		if nv.ID == id {
			t.Fatalf("a new version reuses id %d", id)
		}
	}
	// Another user's IDs do not exist for this one.
	other := newUser(t, s)
	_, err = s.VersionByID(ctx, other.ID, c3.ID)
	testkit.WantKind(t, err, dfms.NotExist, "another user's version")
	testkit.WantKind(t, s.SetChecksum(ctx, other.ID, nv.ID, sum), dfms.NotExist, "a checksum of another user's version")
	if v := testkit.Must(s.VersionByID(ctx, u.ID, nv.ID))(t); !v.SHA256.IsZero() && v.SHA256 == sum {
		t.Fatal("another user set a checksum")
	}
}

// A commit with a CommitID is made once: a retry (a lost answer, a crash
// right after the commit) answers the version the first attempt made.
func testCommitIdempotent(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	c := chunk("idem", 4)
	m := manifest(t, s, c)
	req := meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "f", Manifest: m, CommitID: "0123456789abcdef0123456789abcdef"}
	e1, v1, err := s.CommitVersion(ctx, req)
	ok(t, err)
	e2, v2, err := s.CommitVersion(ctx, req)
	ok(t, err)
	if v2.ID != v1.ID || v2.Number != 1 || e2.ID != e1.ID || e2.VersionID != v1.ID || v2.CommitID != req.CommitID {
		t.Fatalf("a retried commit made %+v, want the first one %+v", v2, v1)
	}
	if vs := testkit.Must(s.ListVersions(ctx, u.ID, e1.ID))(t); len(vs) != 1 {
		t.Fatalf("%d versions after a retried commit", len(vs))
	}
	if r := refs(t, s, c); r != 1 {
		t.Fatalf("refs = %d after a retried commit, want 1", r)
	}
	if us := testkit.Must(s.Usage(ctx, u.ID))(t); us.LogicalBytes != 4 {
		t.Fatalf("usage after a retried commit = %+v", us)
	}
	// Once the file moved on, a retry based on the old version still
	// answers what it made, even with RequireBase.
	commit(t, s, u.ID, u.Root, "f", m)
	byID := req
	byID.Parent, byID.Name, byID.Entry, byID.Base, byID.RequireBase = 0, "", e1.ID, 0, true
	_, v3, err := s.CommitVersion(ctx, byID)
	ok(t, err)
	if v3.ID != v1.ID {
		t.Fatalf("a retry after the file moved on made %+v", v3)
	}
	// The same ID for other content is refused.
	other := req
	other.Manifest = manifest(t, s, chunk("other", 5))
	_, _, err = s.CommitVersion(ctx, other)
	testkit.WantKind(t, err, dfms.Conflict, "the same commit id for other content")
	// In a batch too.
	res, err := s.CommitVersions(ctx, []meta.CommitRequest{byID, {Owner: u.ID, Entry: e1.ID, Manifest: m, CommitID: "b2"}})
	ok(t, err)
	if res[0].Err != nil || res[0].Version.ID != v1.ID || res[1].Err != nil {
		t.Fatalf("batch = %+v", res)
	}
	res2, err := s.CommitVersions(ctx, []meta.CommitRequest{{Owner: u.ID, Entry: e1.ID, Manifest: m, CommitID: "b2"}})
	ok(t, err)
	if res2[0].Err != nil || res2[0].Version.ID != res[1].Version.ID {
		t.Fatalf("a retried batch = %+v, want %+v", res2, res[1])
	}
	if vs := testkit.Must(s.ListVersions(ctx, u.ID, e1.ID))(t); len(vs) != 3 {
		t.Fatalf("%d versions, want 3", len(vs))
	}
	// After a rename over f, a retry of a commit to f answers the
	// version (still f's) and the file whose history holds it now: the
	// one that replaced f.
	tmp, _ := commit(t, s, u.ID, u.Root, "f.tmp", m)
	must2(t)(s.Rename(ctx, u.ID, tmp.ID, u.Root, "f", true))
	e4, v4, err := s.CommitVersion(ctx, byID)
	ok(t, err)
	if v4.ID != v1.ID || e4.ID != tmp.ID || v4.Entry != e1.ID {
		t.Fatalf("a retry after a rename over the file: entry %d version %+v", e4.ID, v4)
	}
	// Commit IDs are per user: another user's same ID is theirs.
	o := newUser(t, s)
	oe, ov, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: o.ID, Parent: o.Root, Name: "f", Manifest: m, CommitID: req.CommitID})
	ok(t, err)
	if ov.ID == v1.ID || oe.Owner != o.ID {
		t.Fatalf("another user's commit with the same id answered %+v", ov)
	}
	long := req
	long.CommitID = strings.Repeat("x", meta.MaxCommitIDLen+1)
	_, _, err = s.CommitVersion(ctx, long)
	testkit.WantKind(t, err, dfms.Invalid, "a commit id too long")
}

// fakeClock makes s read the time from a clock the test moves, or skips
// the test if s cannot.
func fakeClock(t *testing.T, s meta.Store) *testkit.Clock {
	t.Helper()
	cs, ok := s.(interface{ SetClock(func() time.Time) })
	if !ok {
		t.Skipf("%T has no SetClock", s)
	}
	c := testkit.NewClock(time.Now())
	cs.SetClock(c.Now)
	t.Cleanup(func() { cs.SetClock(time.Now) })
	return c
}

// charges returns an owner's used and held bytes, as Usage and GetUser
// report them (which must agree).
func charges(t *testing.T, s meta.Store, owner dfms.UserID) (used, held int64) {
	t.Helper()
	us := testkit.Must(s.Usage(ctx, owner))(t)
	u := testkit.Must(s.GetUser(ctx, owner))(t)
	if u.UsedBytes != us.LogicalBytes || u.HeldBytes != us.HeldBytes {
		t.Fatalf("GetUser says used %d, held %d; Usage %d, %d", u.UsedBytes, u.HeldBytes, us.LogicalBytes, us.HeldBytes)
	}
	return us.LogicalBytes, us.HeldBytes
}

func wantCharges(t *testing.T, what string, s meta.Store, owner dfms.UserID, used, held int64) {
	t.Helper()
	if u, h := charges(t, s, owner); u != used || h != held {
		t.Fatalf("%s: used %d, held %d; want %d, %d", what, u, h, used, held)
	}
}

// testQuotaHolds: chunks an owner stores that nothing references are held
// bytes until one of its commits references them; each hold is charged
// once, a referenced chunk not at all, and a hold that does not fit is
// refused whole.
func testQuotaHolds(t *testing.T, s meta.Store) {
	u := testkit.Must(s.CreateUser(ctx, meta.User{Email: "holds@example.com", QuotaBytes: 100, Active: true}))(t)
	other := newUser(t, s)
	a, b, c := chunk("hold-a", 40), chunk("hold-b", 40), chunk("hold-c", 30)
	ok(t, s.HoldChunks(ctx, u.ID, []dfms.ChunkRef{a, b, a}, time.Hour))
	wantCharges(t, "two chunks held", s, u.ID, 0, 80)
	testkit.WantKind(t, s.HoldChunks(ctx, u.ID, []dfms.ChunkRef{c, a}, time.Hour), dfms.Quota, "a hold past the quota")
	wantCharges(t, "after the refused hold", s, u.ID, 0, 80)
	ok(t, s.HoldChunks(ctx, u.ID, []dfms.ChunkRef{a}, time.Hour)) // renewed, not charged again
	wantCharges(t, "a renewed hold", s, u.ID, 0, 80)
	// A chunk some version references is kept anyway: no charge.
	r := chunk("hold-referenced", 30)
	commit(t, s, other.ID, other.Root, "r", manifest(t, s, r))
	ok(t, s.HoldChunks(ctx, u.ID, []dfms.ChunkRef{r}, time.Hour))
	wantCharges(t, "a referenced chunk", s, u.ID, 0, 80)
	// A commit moves the bytes of the chunks it references from held to
	// used; one that does not fit changes nothing.
	storeChunks(t, s, []dfms.ChunkRef{a, b})
	commit(t, s, u.ID, u.Root, "a", dfms.Manifest{Chunks: []dfms.ChunkRef{a}})
	wantCharges(t, "after a commit of a", s, u.ID, 40, 40)
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "bb", Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{b, b}}})
	testkit.WantKind(t, err, dfms.Quota, "a commit past the quota")
	wantCharges(t, "after the refused commit", s, u.ID, 40, 40)
	commit(t, s, u.ID, u.Root, "b", dfms.Manifest{Chunks: []dfms.ChunkRef{b}})
	wantCharges(t, "after a commit of b", s, u.ID, 80, 0)
	testkit.WantKind(t, s.HoldChunks(ctx, u.ID, []dfms.ChunkRef{c}, time.Hour), dfms.Quota, "a hold with the quota used")
	// An owner without a quota is not charged.
	ok(t, s.HoldChunks(ctx, other.ID, []dfms.ChunkRef{c}, time.Hour))
	wantCharges(t, "an owner without a quota", s, other.ID, 30, 0)
	testkit.WantKind(t, s.HoldChunks(ctx, 987654, []dfms.ChunkRef{c}, time.Hour), dfms.NotExist, "a missing owner")
}

// testQuotaHoldsExpire: a hold ends when its time is up, and its bytes
// stop counting at once.
func testQuotaHoldsExpire(t *testing.T, s meta.Store) {
	clk := fakeClock(t, s)
	u := testkit.Must(s.CreateUser(ctx, meta.User{Email: "expire@example.com", QuotaBytes: 100, Active: true}))(t)
	a, b := chunk("exp-a", 60), chunk("exp-b", 60)
	ok(t, s.HoldChunks(ctx, u.ID, []dfms.ChunkRef{a}, time.Hour))
	testkit.WantKind(t, s.HoldChunks(ctx, u.ID, []dfms.ChunkRef{b}, time.Hour), dfms.Quota, "a second hold")
	clk.Advance(59 * time.Minute)
	ok(t, s.HoldChunks(ctx, u.ID, []dfms.ChunkRef{a}, time.Hour)) // renewed for another hour
	clk.Advance(59 * time.Minute)
	wantCharges(t, "a renewed hold", s, u.ID, 0, 60)
	clk.Advance(2 * time.Minute)
	wantCharges(t, "an ended hold", s, u.ID, 0, 0)
	ok(t, s.HoldChunks(ctx, u.ID, []dfms.ChunkRef{b}, time.Hour))
	wantCharges(t, "a new hold after it", s, u.ID, 0, 60)
}

// testQuotaParts: the parts of an open upload are held bytes until it
// completes (then used) or is aborted; a part that does not fit is refused
// and changes nothing.
func testQuotaParts(t *testing.T, s meta.Store) {
	u := testkit.Must(s.CreateUser(ctx, meta.User{Email: "parts@example.com", QuotaBytes: 100, Active: true}))(t)
	d := mkdir(t, s, u.ID, u.Root, "d")
	up := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: d.ID, Name: "f", PartSize: 60}, 0))(t)
	p60, p50, p30 := manifest(t, s, chunk("qp60", 60)), manifest(t, s, chunk("qp50", 50)), manifest(t, s, chunk("qp30", 30))
	ok(t, s.HoldChunks(ctx, u.ID, p60.Chunks, time.Hour))
	wantCharges(t, "a part's chunk held", s, u.ID, 0, 60)
	ok(t, s.PutPart(ctx, u.ID, up.ID, 1, 60, dfms.Hash{}, p60)) // the part's bytes replace its chunk's hold
	wantCharges(t, "one part", s, u.ID, 0, 60)
	testkit.WantKind(t, s.PutPart(ctx, u.ID, up.ID, 2, 50, dfms.Hash{}, p50), dfms.Quota, "a part past the quota")
	if r := refs(t, s, chunk("qp50", 50)); r != 0 {
		t.Fatalf("the refused part took %d references", r)
	}
	ok(t, s.PutPart(ctx, u.ID, up.ID, 1, 30, dfms.Hash{}, p30))
	wantCharges(t, "a part replaced by a smaller one", s, u.ID, 0, 30)
	ok(t, s.PutPart(ctx, u.ID, up.ID, 2, 50, dfms.Hash{}, p50))
	wantCharges(t, "two parts", s, u.ID, 0, 80)
	must3(s.CompleteUpload(ctx, u.ID, up.ID, dfms.Hash{}, "", nil))(t)
	wantCharges(t, "completed", s, u.ID, 80, 0)
	up2 := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: d.ID, Name: "g", PartSize: 20}, 0))(t)
	ok(t, s.PutPart(ctx, u.ID, up2.ID, 1, 20, dfms.Hash{}, manifest(t, s, chunk("qp20", 20))))
	wantCharges(t, "a second upload", s, u.ID, 80, 20)
	ok(t, s.AbortUpload(ctx, u.ID, up2.ID))
	wantCharges(t, "aborted", s, u.ID, 80, 0)
	up3 := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: d.ID, Name: "h", PartSize: 20}, 0))(t)
	ok(t, s.PutPart(ctx, u.ID, up3.ID, 1, 20, dfms.Hash{}, manifest(t, s, chunk("qp20", 20))))
	ok(t, s.Trash(ctx, u.ID, d.ID))
	testkit.Must(s.Purge(ctx, u.ID, d.ID))(t)
	wantCharges(t, "the folder purged with an upload into it", s, u.ID, 0, 0)
}

func must3[A, B any](a A, b B, err error) func(t *testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

// testQuotaXattrs: an extended attribute's name and value are used bytes,
// from when it is set until it is removed or its entry purged.
func testQuotaXattrs(t *testing.T, s meta.Store) {
	u := testkit.Must(s.CreateUser(ctx, meta.User{Email: "xattr-quota@example.com", QuotaBytes: 100, Active: true}))(t)
	f := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "x", Kind: dfms.KindFile, Mode: 0o644}))(t)
	ok(t, s.SetXattr(ctx, u.ID, f.ID, "user.a", make([]byte, 40), dfms.XattrAny))
	wantCharges(t, "one attribute", s, u.ID, 46, 0)
	testkit.WantKind(t, s.SetXattr(ctx, u.ID, f.ID, "user.b", make([]byte, 60), dfms.XattrAny), dfms.Quota, "an attribute past the quota")
	if _, found, _ := s.GetXattr(ctx, u.ID, f.ID, "user.b"); found {
		t.Fatal("the refused attribute was set")
	}
	ok(t, s.SetXattr(ctx, u.ID, f.ID, "user.a", make([]byte, 10), dfms.XattrReplace))
	wantCharges(t, "a smaller value", s, u.ID, 16, 0)
	ok(t, s.SetXattr(ctx, u.ID, f.ID, "user.b", make([]byte, 60), dfms.XattrAny))
	wantCharges(t, "two attributes", s, u.ID, 82, 0)
	ok(t, s.RemoveXattr(ctx, u.ID, f.ID, "user.a"))
	wantCharges(t, "one removed", s, u.ID, 66, 0)
	ok(t, s.Trash(ctx, u.ID, f.ID))
	wantCharges(t, "in the trash", s, u.ID, 66, 0)
	if st := testkit.Must(s.Purge(ctx, u.ID, f.ID))(t); st.Bytes != 66 {
		t.Fatalf("purge released %d bytes, want 66", st.Bytes)
	}
	wantCharges(t, "purged", s, u.ID, 0, 0)
}

// testUploadLifetime: parts push an upload's expiry out, never past its
// deadline; an expired upload takes no part and cannot complete.
func testUploadLifetime(t *testing.T, s meta.Store) {
	clk := fakeClock(t, s)
	u := newUser(t, s)
	start := clk.Now()
	up := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: u.Root, Name: "f", PartSize: 10,
		ExpiresAt: start.Add(time.Hour), Deadline: start.Add(90 * time.Minute)}, 0))(t)
	if !up.Deadline.Equal(start.Add(90*time.Minute)) || !up.ExpiresAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("created %+v", up)
	}
	p := manifest(t, s, chunk("life", 10))
	clk.Advance(20 * time.Minute)
	ok(t, s.PutPart(ctx, u.ID, up.ID, 1, 10, dfms.Hash{}, p))
	if got := testkit.Must(s.GetUpload(ctx, u.ID, up.ID))(t).ExpiresAt; !got.Equal(start.Add(80 * time.Minute)) {
		t.Fatalf("expiry after a part at +20m: %v, want +80m", got.Sub(start))
	}
	clk.Advance(50 * time.Minute)
	ok(t, s.PutPart(ctx, u.ID, up.ID, 2, 10, dfms.Hash{}, p))
	if got := testkit.Must(s.GetUpload(ctx, u.ID, up.ID))(t).ExpiresAt; !got.Equal(up.Deadline) {
		t.Fatalf("expiry after a part at +70m: %v, want the deadline (+90m)", got.Sub(start))
	}
	clk.Advance(21 * time.Minute)
	testkit.WantKind(t, s.PutPart(ctx, u.ID, up.ID, 3, 10, dfms.Hash{}, p), dfms.NotExist, "a part after the deadline")
	_, _, err := s.CompleteUpload(ctx, u.ID, up.ID, dfms.Hash{}, "", nil)
	testkit.WantKind(t, err, dfms.NotExist, "completing after the deadline")
	if exp := testkit.Must(s.ExpiredUploads(ctx, clk.Now(), 10))(t); len(exp) != 1 || exp[0].ID != up.ID {
		t.Fatalf("expired: %+v", exp)
	}
	ok(t, s.AbortUpload(ctx, u.ID, up.ID)) // what GC does
	// Without a deadline: a week, or the expiry if later.
	def := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: u.Root, Name: "g", PartSize: 10}, 0))(t)
	if got := def.Deadline.Sub(def.CreatedAt); got != 7*24*time.Hour {
		t.Fatalf("default lifetime %v, want a week", got)
	}
	long := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: u.Root, Name: "h", PartSize: 10, ExpiresAt: clk.Now().Add(30 * 24 * time.Hour)}, 0))(t)
	if !long.Deadline.Equal(long.ExpiresAt) {
		t.Fatalf("an expiry past a week: deadline %v, expiry %v", long.Deadline, long.ExpiresAt)
	}
}

// testUploadCap: an owner may have at most maxOpen uploads that have not
// expired; others' uploads do not count.
func testUploadCap(t *testing.T, s meta.Store) {
	clk := fakeClock(t, s)
	u, other := newUser(t, s), newUser(t, s)
	create := func(owner meta.User, name string) (meta.Upload, error) {
		return s.CreateUpload(ctx, meta.Upload{Owner: owner.ID, Parent: owner.Root, Name: name, PartSize: 10, ExpiresAt: clk.Now().Add(time.Hour)}, 2)
	}
	first := testkit.Must(create(u, "a"))(t)
	testkit.Must(create(u, "b"))(t)
	_, err := create(u, "c")
	testkit.WantKind(t, err, dfms.Quota, "a third upload")
	testkit.Must(create(other, "a"))(t)
	ok(t, s.AbortUpload(ctx, u.ID, first.ID))
	testkit.Must(create(u, "c"))(t)
	clk.Advance(2 * time.Hour) // both expire; GC has not aborted them yet
	testkit.Must(create(u, "d"))(t)
	testkit.Must(create(u, "e"))(t)
	_, err = create(u, "f")
	testkit.WantKind(t, err, dfms.Quota, "a third live upload")
}

// A time the store cannot keep (64-bit nanoseconds since 1970) is
// refused, whichever way it comes, instead of wrapping around.
func testTimesOutOfRange(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	e, _ := commit(t, s, u.ID, u.Root, "f", manifest(t, s, chunk("times", 5)))
	for _, bad := range []time.Time{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)} {
		_, err := s.SetAttr(ctx, u.ID, e.ID, dfms.SetAttr{MTime: &bad})
		testkit.WantKind(t, err, dfms.Invalid, "SetAttr of "+bad.String())
		_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Entry: e.ID, Manifest: dfms.Manifest{}, MTime: bad})
		testkit.WantKind(t, err, dfms.Invalid, "a commit at "+bad.String())
		_, err = s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "d" + bad.Format("2006"), Kind: dfms.KindDir, Mode: 0o755, MTime: bad})
		testkit.WantKind(t, err, dfms.Invalid, "a create at "+bad.String())
	}
	if got := testkit.Must(s.GetEntry(ctx, u.ID, e.ID))(t); got.Version != 1 || got.MTime.Year() < 2000 {
		t.Fatalf("after refused changes the file is %+v", got)
	}
	edge := dfms.MaxTime
	got, err := s.SetAttr(ctx, u.ID, e.ID, dfms.SetAttr{MTime: &edge})
	ok(t, err)
	if !got.MTime.Equal(edge) {
		t.Fatalf("the latest time the store keeps reads back as %v", got.MTime)
	}
}

// testHoles: a manifest's holes (zero hash) are extents of zeros that
// reference no chunk: a commit takes no reference for them and needs no
// chunk row, GC never sees them, and the quota charges only data bytes
// (commit, replace, version deletion and purge alike).
func testHoles(t *testing.T, s meta.Store) {
	u := testkit.Must(s.CreateUser(ctx, meta.User{Email: "holes@example.com", QuotaBytes: 100, Active: true}))(t)
	a := chunk("hole-a", 10)
	storeChunks(t, s, []dfms.ChunkRef{a})
	const tib = int64(1) << 40
	refsOf := append(append([]dfms.ChunkRef{a}, dfms.AppendHole(nil, tib)...), a, dfms.Hole(5))
	m := dfms.Manifest{Chunks: refsOf}
	e, v := commit(t, s, u.ID, u.Root, "sparse", m)
	if e.Size != tib+25 || e.DataSize != 20 {
		t.Fatalf("entry size %d, data %d; want %d, 20", e.Size, e.DataSize, tib+25)
	}
	if v.Size != tib+25 || v.ChunkCount != 2 {
		t.Fatalf("version size %d, %d chunks; want %d, 2", v.Size, v.ChunkCount, tib+25)
	}
	if r := refs(t, s, a); r != 2 {
		t.Fatalf("refs(a) = %d, want 2", r)
	}
	_, err := s.GetChunk(ctx, dfms.Hash{})
	testkit.WantKind(t, err, dfms.NotExist, "a chunk row for holes")
	wantCharges(t, "a sparse file", s, u.ID, 20, 0)
	got := testkit.Must(s.GetVersion(ctx, u.ID, e.ID, 0))(t)
	if fmt.Sprint(got.Manifest.Chunks) != fmt.Sprint(m.Chunks) {
		t.Fatal("the manifest does not read back as committed")
	}
	for _, g := range []dfms.Entry{
		testkit.Must(s.GetEntry(ctx, u.ID, e.ID))(t),
		testkit.Must(s.Lookup(ctx, u.ID, u.Root, "sparse"))(t),
	} {
		if g.Size != tib+25 || g.DataSize != 20 {
			t.Fatalf("entry read back: size %d, data %d", g.Size, g.DataSize)
		}
	}
	list := testkit.Must(s.ListDir(ctx, u.ID, u.Root, meta.ListOptions{}))(t)
	if len(list) != 1 || list[0].DataSize != 20 {
		t.Fatalf("listing: %+v", list)
	}
	if n := testkit.Must(s.StoredBytes(ctx, u.ID))(t); n != 10 {
		t.Fatalf("stored bytes %d, want 10", n)
	}
	// Only holes: nothing referenced, nothing charged.
	h, _ := commit(t, s, u.ID, u.Root, "holes", dfms.Manifest{Chunks: []dfms.ChunkRef{dfms.Hole(100)}})
	if h.Size != 100 || h.DataSize != 0 {
		t.Fatalf("a file of one hole: size %d, data %d", h.Size, h.DataSize)
	}
	wantCharges(t, "a file of holes", s, u.ID, 20, 0)
	// The quota admits data bytes: 90 more do not fit however small the
	// file, a big hole does.
	b := chunk("hole-b", 90)
	storeChunks(t, s, []dfms.ChunkRef{b})
	_, _, err = s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "b", Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{b}}})
	testkit.WantKind(t, err, dfms.Quota, "data past the quota")
	commit(t, s, u.ID, u.Root, "holes", dfms.Manifest{Chunks: dfms.AppendHole([]dfms.ChunkRef{a}, 4*tib)})
	wantCharges(t, "a second version with a hole", s, u.ID, 30, 0)
	// GC: the only candidates are unreferenced chunks, never a hole.
	for _, c := range testkit.Must(s.SweepCandidates(ctx, time.Now().Add(time.Hour), 100))(t) {
		if c.Hash.IsZero() {
			t.Fatal("a hole is a sweep candidate")
		}
	}
	// Deleting a version and purging give back what was charged.
	ok(t, s.DeleteVersion(ctx, u.ID, h.ID, 1))
	wantCharges(t, "after deleting the version of holes", s, u.ID, 30, 0)
	ok(t, s.Trash(ctx, u.ID, e.ID))
	testkit.Must(s.Purge(ctx, u.ID, e.ID))(t)
	wantCharges(t, "after purging the sparse file", s, u.ID, 10, 0)
	if r := refs(t, s, a); r != 1 {
		t.Fatalf("refs(a) after the purge = %d, want 1", r)
	}
	// Replacing a sparse file by rename charges nothing more (its
	// versions stay, as the start of the history of the file that took
	// its name), and purging that file gives back both.
	f, _ := commit(t, s, u.ID, u.Root, "f", dfms.Manifest{Chunks: dfms.AppendHole([]dfms.ChunkRef{a}, tib)})
	wantCharges(t, "another sparse file", s, u.ID, 20, 0)
	if _, _, err := s.Rename(ctx, u.ID, h.ID, u.Root, "f", true); err != nil {
		t.Fatal(err)
	}
	wantCharges(t, "after a rename over it", s, u.ID, 20, 0)
	ok(t, s.Trash(ctx, u.ID, h.ID))
	testkit.Must(s.Purge(ctx, u.ID, h.ID))(t)
	wantCharges(t, "after purging both", s, u.ID, 0, 0)
	_, err = s.Purge(ctx, u.ID, f.ID)
	testkit.WantKind(t, err, dfms.NotExist, "the replaced file after its history was purged")
	if r := refs(t, s, a); r != 0 {
		t.Fatalf("refs(a) at the end = %d, want 0", r)
	}
}
