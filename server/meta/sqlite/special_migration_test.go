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
	rows := metatest.Schema12Rows(func(hex string) string { return "x'" + hex + "'" })
	for _, q := range append(rows,
		`UPDATE sqlite_sequence SET seq = 100 WHERE name = 'entries'`, // ids up to 100 were given out
		// The search index as a write's end leaves it.
		`INSERT INTO entries_fts (rowid, name, mime) SELECT e.id, e.name, e.mime FROM entries_fts_pending p JOIN entries e ON e.id = p.id`,
		`DELETE FROM entries_fts_pending`,
	) {
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
