package metatest

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

// checkerCases are the cases of meta.Checker, an optional capability:
// they are skipped for a store without it.
var checkerCases = []func(t *testing.T, s meta.Store){
	testCheckerPages,
	testCheckerRecount,
	testCheckerPlaces,
	testCheckerDangling,
}

func checkerOf(t *testing.T, s meta.Store) meta.Checker {
	t.Helper()
	c, isChecker := s.(meta.Checker)
	if !isChecker {
		t.Skipf("%T has no meta.Checker", s)
	}
	return c
}

// rawExec runs a statement straight on the store's database, to make the
// damage a check must find (there is no API for it, by design). query
// uses $1, $2 … placeholders, which both SQLite and PostgreSQL take.
func rawExec(t *testing.T, s meta.Store, query string, args ...any) {
	t.Helper()
	db, hasDB := s.(interface{ DB() *sql.DB })
	if !hasDB {
		t.Skipf("%T gives no access to its database", s)
	}
	res, err := db.DB().ExecContext(ctx, query, args...)
	ok(t, err)
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		t.Fatalf("%s changed %d rows (%v), want some", query, n, err)
	}
}

// Every version, part and chunk row is listed once by the pages, however
// small they are, with their manifests and recorded copies.
func testCheckerPages(t *testing.T, s meta.Store) {
	c := checkerOf(t, s)
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "d")
	var wantVersions []int64
	for i := range 5 {
		ref := chunk(fmt.Sprint("v", i), 10)
		storeChunks(t, s, []dfms.ChunkRef{ref})
		m := dfms.Manifest{Chunks: []dfms.ChunkRef{ref, dfms.Hole(4096), ref}}
		_, v := commit(t, s, u.ID, d.ID, fmt.Sprint("f", i%3), m)
		wantVersions = append(wantVersions, v.ID)
	}
	var got []int64
	after := int64(0)
	for {
		page := testkit.Must(c.CheckVersions(ctx, after, 2))(t)
		for _, cm := range page {
			if cm.Owner != u.ID || len(cm.Manifest.Chunks) != 3 || !cm.Manifest.Chunks[1].IsHole() || cm.Version == 0 {
				t.Fatalf("version %+v", cm)
			}
			got = append(got, cm.Version)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Version
	}
	if !slices.Equal(got, wantVersions) {
		t.Fatalf("versions %v, want %v", got, wantVersions)
	}

	var wantParts []meta.PartKey
	for i := range 2 {
		up := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: d.ID, Name: fmt.Sprint("up", i), PartSize: 10}, 0))(t)
		for n := 1; n <= 2; n++ {
			p := manifest(t, s, chunk(fmt.Sprint("part", i, n), 10))
			ok(t, s.PutPart(ctx, u.ID, up.ID, n, 10, dfms.Sum(nil), p))
			wantParts = append(wantParts, meta.PartKey{Upload: up.ID, Number: n})
		}
	}
	slices.SortFunc(wantParts, func(a, b meta.PartKey) int {
		if c := strings.Compare(a.Upload, b.Upload); c != 0 {
			return c
		}
		return a.Number - b.Number
	})
	var gotParts []meta.PartKey
	var key meta.PartKey
	for {
		page := testkit.Must(c.CheckParts(ctx, key, 3))(t)
		for _, p := range page {
			if p.Owner != u.ID || p.Entry != d.ID || len(p.Manifest.Chunks) != 1 || p.Version != 0 {
				t.Fatalf("part %+v", p)
			}
			key = meta.PartKey{Upload: p.Upload, Number: p.Part}
			gotParts = append(gotParts, key)
		}
		if len(page) < 3 {
			break
		}
	}
	if !slices.Equal(gotParts, wantParts) {
		t.Fatalf("parts %v, want %v", gotParts, wantParts)
	}

	// A pending row is listed too, and copies come with their chunk.
	pending := chunk("pending", 7)
	ok(t, s.ReserveChunks(ctx, []dfms.ChunkRef{pending}))
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "n1", URL: "file:///n1", Weight: 100}))
	ok(t, s.PutNode(ctx, dfms.StorageNode{ID: "n2", URL: "file:///n2", Weight: 100}))
	v0 := chunk("v0", 10)
	ok(t, s.AddReplicas(ctx, []dfms.Replica{{Hash: v0.Hash, Node: "n2"}, {Hash: v0.Hash, Node: "n1"}}))
	var rows []meta.ChunkRecord
	var from dfms.Hash
	for {
		page := testkit.Must(c.CheckChunks(ctx, from, 4))(t)
		rows = append(rows, page...)
		if len(page) < 4 {
			break
		}
		from = next(page[len(page)-1].Hash)
	}
	if len(rows) != 5+4+1 {
		t.Fatalf("%d chunk rows, want 10", len(rows))
	}
	for i, r := range rows {
		if i > 0 && string(rows[i-1].Hash[:]) >= string(r.Hash[:]) {
			t.Fatalf("chunk rows out of order at %d", i)
		}
		switch r.Hash {
		case pending.Hash:
			if !r.Pending || r.Size != 7 {
				t.Fatalf("pending row %+v", r)
			}
		case v0.Hash:
			if !slices.Equal(r.Nodes, []string{"n1", "n2"}) || r.Refs != 2 {
				t.Fatalf("row of v0 %+v, want 2 refs on n1 and n2", r)
			}
		}
	}
	found := testkit.Must(c.LookupChunks(ctx, []dfms.Hash{v0.Hash, chunk("none", 1).Hash, pending.Hash}))(t)
	if len(found) != 2 {
		t.Fatalf("LookupChunks found %d rows, want 2", len(found))
	}
	_, err := c.CheckVersions(ctx, 0, 0)
	testkit.WantKind(t, err, dfms.Invalid, "a page of 0")
}

// next returns the hash after h.
func next(h dfms.Hash) dfms.Hash {
	for i := len(h) - 1; i >= 0; i-- {
		h[i]++
		if h[i] != 0 {
			break
		}
	}
	return h
}

// RecountRefs counts every occurrence in versions and parts, and with
// apply sets skewed counts right (and only them), starting the grace
// period of a count set to zero.
func testCheckerRecount(t *testing.T, s meta.Store) {
	c := checkerOf(t, s)
	u := newUser(t, s)
	a, b, lone := chunk("a", 10), chunk("b", 20), chunk("lone", 5)
	commit(t, s, u.ID, u.Root, "f", manifest(t, s, a, a, b))
	up := testkit.Must(s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: u.Root, Name: "up", PartSize: 10}, 0))(t)
	ok(t, s.PutPart(ctx, u.ID, up.ID, 1, 10, dfms.Sum(nil), manifest(t, s, a)))
	storeChunks(t, s, []dfms.ChunkRef{lone})
	missing := chunk("missing", 3).Hash

	all := []dfms.Hash{a.Hash, b.Hash, lone.Hash, missing}
	want := map[dfms.Hash]int64{a.Hash: 3, b.Hash: 1, lone.Hash: 0, missing: 0}
	check := func(what string, apply bool, recorded map[dfms.Hash]int64) {
		t.Helper()
		rcs := testkit.Must(c.RecountRefs(ctx, all, apply))(t)
		if len(rcs) != len(all) {
			t.Fatalf("%s: %d recounts, want %d", what, len(rcs), len(all))
		}
		for _, rc := range rcs {
			if rc.Counted != want[rc.Hash] || rc.Recorded != recorded[rc.Hash] || rc.Found != (rc.Hash != missing) {
				t.Fatalf("%s: %+v, want counted %d, recorded %d", what, rc, want[rc.Hash], recorded[rc.Hash])
			}
			if rc.Set != (apply && rc.Found && recorded[rc.Hash] != want[rc.Hash]) {
				t.Fatalf("%s: %+v: set %v", what, rc, rc.Set)
			}
		}
	}
	check("healthy", false, want)

	rawExec(t, s, `UPDATE chunks SET refs = refs + 2 WHERE hash = $1`, a.Hash[:])
	rawExec(t, s, `UPDATE chunks SET refs = 0 WHERE hash = $1`, b.Hash[:])
	rawExec(t, s, `UPDATE chunks SET refs = 4, zero_since = NULL WHERE hash = $1`, lone.Hash[:])
	skewed := map[dfms.Hash]int64{a.Hash: 5, b.Hash: 0, lone.Hash: 4}
	check("skewed, dry run", false, skewed)
	if r := refs(t, s, a); r != 5 {
		t.Fatalf("a dry run changed refs(a) to %d", r)
	}
	check("repair", true, skewed)
	check("repaired", false, want)
	if ch := testkit.Must(s.GetChunk(ctx, lone.Hash))(t); ch.ZeroSince.IsZero() {
		t.Fatal("a count set to zero did not start the grace period")
	}
	if ch := testkit.Must(s.GetChunk(ctx, b.Hash))(t); !ch.ZeroSince.IsZero() {
		t.Fatal("a count set above zero left the chunk collectable")
	}
	// The references are right again: purging the file releases them all.
	ok(t, s.AbortUpload(ctx, u.ID, up.ID))
	f := testkit.Must(s.Lookup(ctx, u.ID, u.Root, "f"))(t)
	ok(t, s.Trash(ctx, u.ID, f.ID))
	testkit.Must(s.Purge(ctx, u.ID, f.ID))(t)
	if ra, rb := refs(t, s, a), refs(t, s, b); ra != 0 || rb != 0 {
		t.Fatalf("after the purge refs = %d, %d, want 0", ra, rb)
	}
	_, err := c.RecountRefs(ctx, make([]dfms.Hash, meta.MaxRecount+1), false)
	testkit.WantKind(t, err, dfms.Invalid, "too many hashes")
}

// PlaceOf names the path of the file that shows a file's versions: its
// own, or that of the file that took its name and continues its history.
func testCheckerPlaces(t *testing.T, s meta.Store) {
	c := checkerOf(t, s)
	u := newUser(t, s)
	d := mkdir(t, s, u.ID, u.Root, "docs")
	sub := mkdir(t, s, u.ID, d.ID, "sub")
	f, _ := commit(t, s, u.ID, sub.ID, "report.txt", manifest(t, s, chunk("r1", 10)))
	place := func(id dfms.EntryID, path string, trashed bool) {
		t.Helper()
		p := testkit.Must(c.PlaceOf(ctx, id))(t)
		if p.Path != path || p.Trashed != trashed || p.Owner != u.ID {
			t.Fatalf("PlaceOf(%d) = %+v, want %s (trashed %v) of %d", id, p, path, trashed, u.ID)
		}
	}
	place(f.ID, "/docs/sub/report.txt", false)
	place(u.Root, "/", false)

	// An editor's save: a new file renamed over the old one.
	tmp, _ := commit(t, s, u.ID, sub.ID, ".report.tmp", manifest(t, s, chunk("r2", 10)))
	must2(t)(s.Rename(ctx, u.ID, tmp.ID, sub.ID, "report.txt", true))
	place(f.ID, "/docs/sub/report.txt", false)
	place(tmp.ID, "/docs/sub/report.txt", false)

	ok(t, s.Trash(ctx, u.ID, d.ID))
	place(f.ID, "/docs/sub/report.txt", true)
	_, err := c.PlaceOf(ctx, 1<<40)
	testkit.WantKind(t, err, dfms.NotExist, "no such entry")
}

// DanglingEntries finds the files whose current version is gone, live or
// trashed, and no others.
func testCheckerDangling(t *testing.T, s meta.Store) {
	c := checkerOf(t, s)
	u := newUser(t, s)
	good, _ := commit(t, s, u.ID, u.Root, "good", manifest(t, s, chunk("g", 10)))
	bad, bv := commit(t, s, u.ID, u.Root, "bad", manifest(t, s, chunk("b", 10)))
	gone, gv := commit(t, s, u.ID, u.Root, "gone", manifest(t, s, chunk("x", 10)))
	testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "empty", Kind: dfms.KindFile, Mode: 0o644}))(t)
	if ds := testkit.Must(c.DanglingEntries(ctx, 0, 10))(t); len(ds) != 0 {
		t.Fatalf("healthy store: dangling %+v", ds)
	}
	ok(t, s.Trash(ctx, u.ID, gone.ID))
	rawExec(t, s, `DELETE FROM versions WHERE id = $1 OR id = $2`, bv.ID, gv.ID)
	var got []meta.DanglingEntry
	after := dfms.EntryID(0)
	for {
		page := testkit.Must(c.DanglingEntries(ctx, after, 1))(t)
		got = append(got, page...)
		if len(page) < 1 {
			break
		}
		after = page[len(page)-1].Entry
	}
	want := []meta.DanglingEntry{
		{Entry: bad.ID, Owner: u.ID, VersionID: bv.ID},
		{Entry: gone.ID, Owner: u.ID, VersionID: gv.ID, Trashed: true},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("dangling %+v, want %+v (not %d)", got, want, good.ID)
	}
}
