package metatest

import (
	"slices"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

// history lists file id's history as (entry, number, id) triples.
func history(t *testing.T, s meta.Store, owner dfms.UserID, id dfms.EntryID) []dfms.Version {
	t.Helper()
	vs := testkit.Must(s.ListVersions(ctx, owner, id))(t)
	for i := range vs {
		vs[i].CreatedAt, vs[i].Manifest = vs[i].CreatedAt.UTC(), nil
	}
	return vs
}

// wantHistory checks that file id's history holds exactly the versions
// with IDs want, in that order, each as it was when made (file, number,
// content): nothing renumbered or moved.
func wantHistory(t *testing.T, s meta.Store, owner dfms.UserID, id dfms.EntryID, made map[int64]dfms.Version, want ...int64) {
	t.Helper()
	got := history(t, s, owner, id)
	var ids []int64
	for _, v := range got {
		ids = append(ids, v.ID)
		if m, ok := made[v.ID]; ok && (v.Entry != m.Entry || v.Number != m.Number || v.Size != m.Size) {
			t.Fatalf("version %d is now %d of entry %d (size %d), was %d of %d (size %d)", v.ID, v.Number, v.Entry, v.Size, m.Number, m.Entry, m.Size)
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("history of %d = %v, want %v", id, ids, want)
	}
	for _, v := range got {
		one := testkit.Must(s.GetVersion(ctx, owner, id, v.Number))(t)
		if one.ID != v.ID {
			t.Fatalf("version %d of %d is id %d, listed as id %d", v.Number, id, one.ID, v.ID)
		}
	}
}

// Versions are facts: an editor's save (a new file renamed over the
// name) continues the replaced file's history without renumbering or
// moving any version; the replaced file holds its versions, out of the
// trash, until the file that continues them is purged.
func testHistoryFollowsTheDocument(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	made := map[int64]dfms.Version{}
	put := func(parent dfms.EntryID, name string, c dfms.ChunkRef) (dfms.Entry, dfms.Version) {
		t.Helper()
		e, v := commit(t, s, u.ID, parent, name, manifest(t, s, c))
		v.CreatedAt, v.Manifest = v.CreatedAt.UTC(), nil
		made[v.ID] = v
		return e, v
	}
	save := func(parent dfms.EntryID, name string, c dfms.ChunkRef) (dfms.Entry, dfms.Version) {
		t.Helper()
		tmp, v := put(parent, "."+name+".swp", c)
		moved, _ := must2(t)(s.Rename(ctx, u.ID, tmp.ID, parent, name, true))
		// The saved file's own version counts after the history it
		// continues: from now on that is its number.
		w := history(t, s, u.ID, moved.ID)
		v = w[len(w)-1]
		made[v.ID] = v
		return moved, v
	}
	doc, d1 := put(u.Root, "doc", chunk("d1", 1))
	_, d2 := put(u.Root, "doc", chunk("d2", 2))
	s1, v3 := save(u.Root, "doc", chunk("s1", 3))
	if v3.Number != 3 || v3.Entry != s1.ID {
		t.Fatalf("the first save's version = %+v", v3)
	}
	s2, v4 := save(u.Root, "doc", chunk("s2", 4))
	wantHistory(t, s, u.ID, s2.ID, made, d1.ID, d2.ID, v3.ID, v4.ID)
	// Each file still lists its own history, as it was when replaced.
	wantHistory(t, s, u.ID, doc.ID, made, d1.ID, d2.ID)
	wantHistory(t, s, u.ID, s1.ID, made, d1.ID, d2.ID, v3.ID)
	if got := testkit.Must(s.Lookup(ctx, u.ID, u.Root, "doc"))(t); got.ID != s2.ID || got.Version != 4 || got.VersionID != v4.ID {
		t.Fatalf("doc = %+v", got)
	}
	// The replaced files are in no listing and not in the trash.
	wantNames(t, s, u.ID, u.Root, "doc")
	if trash := trashOf(t, s, u.ID); len(trash) != 0 {
		t.Fatalf("trash = %v", names(trash))
	}
	// A new version follows; deleting an old one leaves a gap, and no
	// other number moves.
	_, v5 := put(u.Root, "doc", chunk("s3", 5))
	if v5.Number != 5 || v5.Entry != s2.ID {
		t.Fatalf("a commit after the saves = %+v", v5)
	}
	ok(t, s.DeleteVersion(ctx, u.ID, s2.ID, 2))
	delete(made, d2.ID)
	wantHistory(t, s, u.ID, s2.ID, made, d1.ID, v3.ID, v4.ID, v5.ID)
	_, err := s.GetVersion(ctx, u.ID, s2.ID, 2)
	testkit.WantKind(t, err, dfms.NotExist, "a deleted version")
	testkit.WantKind(t, s.DeleteVersion(ctx, u.ID, s2.ID, 5), dfms.Conflict, "the current version")
	if refs(t, s, chunk("d2", 2)) != 0 || refs(t, s, chunk("d1", 1)) != 1 {
		t.Fatal("deleting a version of the history did not release its chunks")
	}
	// A replaced file cannot be purged on its own.
	_, err = s.Purge(ctx, u.ID, doc.ID)
	testkit.WantKind(t, err, dfms.Conflict, "purging a file whose history another continues")
	wantHistory(t, s, u.ID, s2.ID, made, d1.ID, v3.ID, v4.ID, v5.ID)

	// A file that continues a history and is renamed over another file
	// keeps its history; the other goes to the trash with its own.
	other, o1 := put(u.Root, "other", chunk("o1", 6))
	must2(t)(s.Rename(ctx, u.ID, s2.ID, u.Root, "other", true))
	wantHistory(t, s, u.ID, s2.ID, made, d1.ID, v3.ID, v4.ID, v5.ID)
	if trash := trashOf(t, s, u.ID); len(trash) != 1 || trash[0].ID != other.ID {
		t.Fatalf("trash = %v", names(trash))
	}
	wantHistory(t, s, u.ID, other.ID, made, o1.ID)

	// A folder with a replaced file in it: purging the folder keeps that
	// file for the one that continues its history, elsewhere now.
	dir := mkdir(t, s, u.ID, u.Root, "dir")
	_, x1 := put(dir.ID, "x", chunk("x1", 7))
	x2e, x2 := save(dir.ID, "x", chunk("x2", 8))
	must2(t)(s.Rename(ctx, u.ID, x2e.ID, u.Root, "x", false))
	ok(t, s.Trash(ctx, u.ID, dir.ID))
	testkit.Must(s.Purge(ctx, u.ID, dir.ID))(t)
	wantHistory(t, s, u.ID, x2e.ID, made, x1.ID, x2.ID)
	// Trash and restore keep a history; purging its file purges it all.
	ok(t, s.Trash(ctx, u.ID, x2e.ID))
	testkit.Must(s.Restore(ctx, u.ID, x2e.ID))(t)
	wantHistory(t, s, u.ID, x2e.ID, made, x1.ID, x2.ID)
	ok(t, s.Trash(ctx, u.ID, x2e.ID))
	st := testkit.Must(s.Purge(ctx, u.ID, x2e.ID))(t)
	if st.Versions != 2 || st.Bytes != 15 {
		t.Fatalf("purging a file with a history it continues: %+v, want 2 versions, 15 bytes", st)
	}
	if refs(t, s, chunk("x1", 7)) != 0 || refs(t, s, chunk("x2", 8)) != 0 {
		t.Fatal("purged versions still hold their chunks")
	}
	// And every byte is given back once everything is purged.
	ok(t, s.Trash(ctx, u.ID, s2.ID))
	testkit.Must(s.Purge(ctx, u.ID, s2.ID))(t)
	testkit.Must(s.Purge(ctx, u.ID, other.ID))(t)
	for _, id := range []dfms.EntryID{doc.ID, s1.ID} {
		_, err := s.GetEntry(ctx, u.ID, id)
		testkit.WantKind(t, err, dfms.NotExist, "a replaced file after its history was purged")
	}
	if us := testkit.Must(s.Usage(ctx, u.ID))(t); us.LogicalBytes != 0 || us.Versions != 0 {
		t.Fatalf("usage after purging everything = %+v", us)
	}
}
