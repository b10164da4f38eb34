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
	rows := metatest.Schema12Rows(func(hex string) string { return `'\x` + hex + `'` })
	for _, q := range append(rows,
		`SELECT setval(pg_get_serial_sequence('entries', 'id'), 100)`, // ids up to 100 were given out
		`SELECT setval(pg_get_serial_sequence('versions', 'id'), 1)`,
	) {
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
