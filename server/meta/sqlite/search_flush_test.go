package sqlite_test

import (
	"database/sql"
	"testing"

	"github.com/dfms/dfms/server/meta/sqlite"
)

// TestSearchFlushSequences runs, each in one transaction, sequences
// of changes to the same entries that the store's operations can make
// (several renames, rename and back, create then rename, rename then
// delete, delete and re-insert under the same id, changes rolled back to
// a savepoint after the first change was noted, and before it), then the
// dialect's flush as the store runs it before COMMIT, and checks the
// index against the entries with FTS5's integrity check.
func TestSearchFlushSequences(t *testing.T) {
	s, u := openWithUser(t)
	db := s.DB()
	ins := func(tx *sql.Tx, id int64, name string) {
		t.Helper()
		if _, err := tx.Exec(`INSERT INTO entries (id, owner_id, parent_id, name, kind, mode, mtime_ns, ctime_ns, mime)
			VALUES (?, ?, ?, ?, 2, 420, 1, 1, 'text/plain')`, id, u.ID, u.Root, name); err != nil {
			t.Fatal(err)
		}
	}
	exec := func(tx *sql.Tx, q string, args ...any) {
		t.Helper()
		if _, err := tx.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	run := func(step string, fn func(tx *sql.Tx)) {
		t.Helper()
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		fn(tx)
		for _, q := range sqlite.Dialect.SearchFlush {
			exec(tx, q)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO entries_fts (entries_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
			t.Fatalf("%s: the index does not match the entries: %v", step, err)
		}
	}
	const a, b, c = 1000, 1001, 1002
	run("create", func(tx *sql.Tx) { ins(tx, a, "one"); ins(tx, b, "two"); ins(tx, c, "three") })
	run("create and rename", func(tx *sql.Tx) {
		ins(tx, 1003, "four")
		exec(tx, `UPDATE entries SET name = 'four2' WHERE id = 1003`)
	})
	run("rename twice, mime too", func(tx *sql.Tx) {
		exec(tx, `UPDATE entries SET name = 'uno' WHERE id = ?`, a)
		exec(tx, `UPDATE entries SET name = 'eins', mime = 'x/y' WHERE id = ?`, a)
	})
	run("rename and back", func(tx *sql.Tx) {
		exec(tx, `UPDATE entries SET name = 'zwei' WHERE id = ?`, b)
		exec(tx, `UPDATE entries SET name = 'two' WHERE id = ?`, b)
	})
	run("rename then delete", func(tx *sql.Tx) {
		exec(tx, `UPDATE entries SET name = 'drei' WHERE id = ?`, c)
		exec(tx, `DELETE FROM entries WHERE id = ?`, c)
	})
	run("delete and re-insert the id", func(tx *sql.Tx) {
		exec(tx, `DELETE FROM entries WHERE id = ?`, b)
		ins(tx, b, "deux")
	})
	run("first change rolled back", func(tx *sql.Tx) {
		exec(tx, `SAVEPOINT item`)
		exec(tx, `UPDATE entries SET name = 'one-x' WHERE id = ?`, a)
		exec(tx, `ROLLBACK TO SAVEPOINT item`)
		exec(tx, `RELEASE SAVEPOINT item`)
		exec(tx, `UPDATE entries SET name = 'one-y' WHERE id = ?`, a)
	})
	run("later change rolled back", func(tx *sql.Tx) {
		exec(tx, `UPDATE entries SET name = 'p' WHERE id = ?`, b)
		exec(tx, `SAVEPOINT item`)
		exec(tx, `UPDATE entries SET name = 'q' WHERE id = ?`, b)
		exec(tx, `DELETE FROM entries WHERE id = ?`, b)
		exec(tx, `ROLLBACK TO SAVEPOINT item`)
		exec(tx, `RELEASE SAVEPOINT item`)
	})
	run("insert rolled back, id reused", func(tx *sql.Tx) {
		exec(tx, `SAVEPOINT item`)
		ins(tx, 1004, "five")
		exec(tx, `ROLLBACK TO SAVEPOINT item`)
		exec(tx, `RELEASE SAVEPOINT item`)
		ins(tx, 1004, "fuenf")
	})
}
