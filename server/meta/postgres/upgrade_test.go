package postgres

import (
	"context"
	"database/sql"
	"testing"

	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/server/meta/metatest"
)

// A store the releases before special files, hard links and holes filled
// (schema 12) keeps, once migrated, what metatest.CheckUpgradedSchema12
// checks.
func TestUpgradeFromSchema12KeepsEverything(t *testing.T) {
	ctx := context.Background()
	url := testenv.Postgres(t)
	if err := migrate(url, 12); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", url)
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
			VALUES (1, 3, 1, 3, '\x00', '\x', 0, 13, 1)`,
		`INSERT INTO xattrs (entry_id, name, value, size) VALUES (3, 'user.tag', '\x6869', 10)`,
		`SELECT setval(pg_get_serial_sequence('entries', 'id'), 100)`, // ids up to 100 were given out
		`SELECT setval(pg_get_serial_sequence('versions', 'id'), 1)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	metatest.CheckUpgradedSchema12(t, s)
}
