package metatest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

// testSearchBadText: search text and MIME filters that no entry can hold
// (a NUL byte, bytes that are not UTF-8) fail with kind Invalid on every
// backend, instead of reaching the database (an FTS syntax error on
// SQLite, an encoding error on PostgreSQL).
func testSearchBadText(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "abcdef", Kind: dfms.KindFile, Mode: 0o644}))(t)
	for _, q := range []meta.SearchQuery{
		{Text: "abc\x00def"},
		{Text: "\x00"},
		{Text: "abc \xff\xfe"},
		{MIME: "text/\x00"},
		{MIME: "image/\xff"},
	} {
		_, _, err := s.Search(ctx, u.ID, q)
		testkit.WantKind(t, err, dfms.Invalid, fmt.Sprintf("Search %+q", q.Text+q.MIME))
	}
	if es, _, err := s.Search(ctx, u.ID, meta.SearchQuery{Text: "abc"}); err != nil || len(es) != 1 {
		t.Fatalf("Search abc after the bad queries: got %d entries, %v; want 1", len(es), err)
	}
}

// testLastAdmin: an update that would leave no active administrator (the
// last one demoted or deactivated) fails with kind Conflict and changes
// nothing; with another active administrator it is fine.
func testLastAdmin(t *testing.T, s meta.Store) {
	a := newUser(t, s)
	a.Role = meta.RoleAdmin
	ok(t, s.UpdateUser(ctx, a))
	u := newUser(t, s)
	ok(t, s.UpdateUser(ctx, u)) // other users are not concerned

	demoted, inactive := a, a
	demoted.Role = meta.RoleUser
	inactive.Active = false
	testkit.WantKind(t, s.UpdateUser(ctx, demoted), dfms.Conflict, "demote the last admin")
	testkit.WantKind(t, s.UpdateUser(ctx, inactive), dfms.Conflict, "deactivate the last admin")
	if got := testkit.Must(s.GetUser(ctx, a.ID))(t); got.Role != meta.RoleAdmin || !got.Active {
		t.Fatalf("after the refused updates: %+v, want an active admin", got)
	}
	// An inactive admin does not count, and may be changed freely.
	c := newUser(t, s)
	c.Role, c.Active = meta.RoleAdmin, false
	ok(t, s.UpdateUser(ctx, c))
	testkit.WantKind(t, s.UpdateUser(ctx, demoted), dfms.Conflict, "demote the last active admin")
	c.Role = meta.RoleUser
	ok(t, s.UpdateUser(ctx, c))

	b := newUser(t, s)
	b.Role = meta.RoleAdmin
	ok(t, s.UpdateUser(ctx, b))
	ok(t, s.UpdateUser(ctx, inactive)) // b remains
	b.Role = meta.RoleUser
	testkit.WantKind(t, s.UpdateUser(ctx, b), dfms.Conflict, "demote the admin that remains")
	b.Role = meta.RoleAdmin
	ok(t, s.UpdateUser(ctx, b)) // no change to an admin is fine
}

// testLastAdminRace: two active administrators demoting each other at
// once leave one of them (on PostgreSQL, serializable transactions must
// catch the write skew).
func testLastAdminRace(t *testing.T, s meta.Store) {
	var survivor meta.User
	for round := range 5 {
		var admins [2]meta.User
		for i := range admins {
			admins[i] = newUser(t, s)
			admins[i].Role = meta.RoleAdmin
			ok(t, s.UpdateUser(ctx, admins[i]))
		}
		if survivor.ID != 0 { // the last round's, which must not count
			survivor.Role = meta.RoleUser
			ok(t, s.UpdateUser(ctx, survivor))
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, a := range admins {
			a.Role = meta.RoleUser
			wg.Go(func() { errs[i] = s.UpdateUser(ctx, a) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: two admins demoting each other: got %v and %v, want exactly one refused", round, errs[0], errs[1])
		}
		for i, err := range errs {
			if err != nil {
				testkit.WantKind(t, err, dfms.Conflict, "the second demotion")
				survivor = admins[i]
			}
		}
		if got := testkit.Must(s.GetUser(ctx, survivor.ID))(t); got.Role != meta.RoleAdmin || !got.Active {
			t.Fatalf("round %d: the survivor is %+v, want an active admin", round, got)
		}
	}
}

// trashOf is the owner's whole trash (one page of the maximum size).
func trashOf(t *testing.T, s meta.Store, owner dfms.UserID) []dfms.Entry {
	t.Helper()
	es, total, err := s.ListTrash(ctx, owner, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if total != len(es) {
		t.Fatalf("ListTrash: %d entries of %d; want the whole trash in one page", len(es), total)
	}
	return es
}

// testListPages: ListTrash pages newest first with the total, and its
// page size is bounded; ListDir with ByName and After walks a directory in
// plain byte order of names, directories not first.
func testListPages(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	var trashed []dfms.EntryID
	for i := range 5 {
		d := testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: fmt.Sprintf("t%d", i), Kind: dfms.KindDir, Mode: 0o755}))(t)
		ok(t, s.Trash(ctx, u.ID, d.ID))
		trashed = append([]dfms.EntryID{d.ID}, trashed...) // newest first
	}
	var got []dfms.EntryID
	for off := 0; off < 6; off += 2 {
		es, total, err := s.ListTrash(ctx, u.ID, off, 2)
		ok(t, err)
		if total != 5 || len(es) > 2 {
			t.Fatalf("ListTrash(%d, 2): %d entries of %d, want at most 2 of 5", off, len(es), total)
		}
		for _, e := range es {
			got = append(got, e.ID)
		}
	}
	if !slices.Equal(got, trashed) {
		t.Fatalf("ListTrash pages: %v, want %v", got, trashed)
	}
	_, _, err := s.ListTrash(ctx, u.ID, -1, 0)
	testkit.WantKind(t, err, dfms.Invalid, "ListTrash at a negative offset")

	// Names whose byte order differs from "directories first".
	for i, n := range []string{"b", "A", "c", "a", "é"} {
		kind := dfms.KindFile
		if i%2 == 0 {
			kind = dfms.KindDir
		}
		testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: n, Kind: kind, Mode: 0o755}))(t)
	}
	var walked []string
	opts := meta.ListOptions{ByName: true, Limit: 2}
	for range 10 {
		es := testkit.Must(s.ListDir(ctx, u.ID, u.Root, opts))(t)
		walked = append(walked, names(es)...)
		if len(es) < 2 {
			break
		}
		opts.After = es[len(es)-1].Name
	}
	if want := []string{"A", "a", "b", "c", "é"}; !slices.Equal(walked, want) {
		t.Fatalf("ListDir ByName in pages of 2: %q, want %q", walked, want)
	}
}
