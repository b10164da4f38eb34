package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/dfms/dfms/server/meta/metatest"
	"github.com/dfms/dfms/server/meta/sqlite"
)

// Migration 0013 builds the entries table anew (SQLite cannot widen a
// CHECK in place): a store the releases before it filled keeps what
// metatest.CheckUpgradedSchema12 checks, the id counter included (an id is
// never given out twice), and its foreign keys hold again.
func TestSpecialFilesMigrationKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	if err := sqlite.MigrateTo(path, 12); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", sqlite.DSN(path, true))
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

	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	metatest.CheckUpgradedSchema12(t, s)
	// Foreign keys hold again.
	if _, err := s.DB().Exec(`INSERT INTO versions (entry_id, number, size, sha256, manifest, chunk_count, created_at, created_by)
		VALUES (999, 1, 0, x'00', x'', 0, 1, 1)`); err == nil {
		t.Error("a version of an entry that does not exist was accepted")
	}
}
