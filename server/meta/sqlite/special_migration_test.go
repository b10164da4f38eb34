package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Migration 0013 builds the entries table anew (SQLite cannot widen a
// CHECK in place): a store the releases before it filled keeps every
// entry with its id and fields, every version, attribute, trashed entry
// and search hit, and the id counter (an id is never given out twice);
// the access time starts as the modification time.
func TestSpecialFilesMigrationKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	if err := migrate(path, 12); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO users (id, email, email_key, created_at, root_id) VALUES (1, 'a@example.com', 'a@example.com', 1, 1)`,
		`INSERT INTO entries (id, owner_id, parent_id, name, kind, mode, uid, gid, size, mtime_ns, ctime_ns, mime, cur_version, cur_version_id)
			VALUES (1, 1, NULL, '', 1, 493, 0, 0, 0, 10, 10, '', 0, 0),
			       (2, 1, 1, 'docs', 1, 448, 5, 6, 0, 11, 12, '', 0, 0),
			       (3, 1, 2, 'report.txt', 2, 420, 5, 6, 3, 13, 14, 'text/plain', 1, 1)`,
		`INSERT INTO entries (id, owner_id, parent_id, name, kind, mode, size, mtime_ns, ctime_ns, target)
			VALUES (4, 1, 1, 'link', 3, 511, 4, 15, 16, 'docs')`,
		`INSERT INTO entries (id, owner_id, parent_id, name, kind, mode, size, mtime_ns, ctime_ns, deleted_at, trash_root)
			VALUES (5, 1, 1, 'old.txt', 2, 420, 0, 17, 18, 19, 5)`,
		`INSERT INTO versions (id, entry_id, number, size, sha256, manifest, chunk_count, created_at, created_by)
			VALUES (1, 3, 1, 3, x'00', x'', 0, 13, 1)`,
		`INSERT INTO xattrs (entry_id, name, value, size) VALUES (3, 'user.tag', x'6869', 10)`,
		`UPDATE sqlite_sequence SET seq = 100 WHERE name = 'entries'`, // ids up to 100 were given out
		// The search index as a write's end leaves it.
		`INSERT INTO entries_fts (rowid, name, mime) SELECT e.id, e.name, e.mime FROM entries_fts_pending p JOIN entries e ON e.id = p.id`,
		`DELETE FROM entries_fts_pending`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []dfms.Entry{
		{ID: 2, Parent: 1, Name: "docs", Kind: dfms.KindDir, Mode: 0o700, UID: 5, GID: 6},
		{ID: 3, Parent: 2, Name: "report.txt", Kind: dfms.KindFile, Mode: 0o644, UID: 5, GID: 6, Size: 3, MIME: "text/plain", Version: 1, VersionID: 1},
		{ID: 4, Parent: 1, Name: "link", Kind: dfms.KindSymlink, Mode: 0o777, Size: 4, Target: "docs"},
		{ID: 5, Parent: 1, Name: "old.txt", Kind: dfms.KindFile, Mode: 0o644, TrashRoot: 5},
	}
	for _, w := range want {
		got, err := s.GetEntry(ctx, 1, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Parent != w.Parent || got.Name != w.Name || got.Kind != w.Kind || got.Mode != w.Mode || got.UID != w.UID ||
			got.GID != w.GID || got.Size != w.Size || got.MIME != w.MIME || got.Target != w.Target ||
			got.Version != w.Version || got.VersionID != w.VersionID || got.TrashRoot != w.TrashRoot || got.MTime.IsZero() ||
			!got.ATime.Equal(got.MTime) {
			t.Errorf("entry %d after the migration: %+v, want %+v", w.ID, got, w)
		}
	}
	if vs, err := s.ListVersions(ctx, 1, 3); err != nil || len(vs) != 1 || vs[0].ID != 1 || vs[0].Size != 3 {
		t.Errorf("versions of report.txt: %+v, %v", vs, err)
	}
	if v, found, err := s.GetXattr(ctx, 1, 3, "user.tag"); err != nil || !found || string(v) != "hi" {
		t.Errorf("xattr: %q %v %v", v, found, err)
	}
	if tr, n, err := s.ListTrash(ctx, 1, 0, 10); err != nil || n != 1 || tr[0].ID != 5 {
		t.Errorf("trash: %+v %d %v", tr, n, err)
	}
	if hits, _, err := s.Search(ctx, 1, meta.SearchQuery{Text: "report"}); err != nil || len(hits) != 1 || hits[0].ID != 3 {
		t.Errorf("search for report: %+v, %v", hits, err)
	}
	// The new kinds fit, and the counter went on from 100.
	p, err := s.CreateEntry(ctx, dfms.Entry{Owner: 1, Parent: 2, Name: "pipe", Kind: dfms.KindFIFO, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID <= 100 {
		t.Errorf("a new entry got id %d, at or below ids given out before", p.ID)
	}
	// Foreign keys hold again.
	if _, err := s.DB().Exec(`INSERT INTO versions (entry_id, number, size, sha256, manifest, chunk_count, created_at, created_by)
		VALUES (999, 1, 0, x'00', x'', 0, 1, 1)`); err == nil {
		t.Error("a version of an entry that does not exist was accepted")
	}
}
