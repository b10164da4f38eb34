// Package sqlite is the embedded metadata backend: a single SQLite database
// file in WAL mode, through the pure-Go driver modernc.org/sqlite (no cgo,
// no service to run). It is the default of `dfms server`.
//
// URL form: sqlite:///var/lib/dfms/meta.db (or a bare path).
//
// Writes go through one connection (SQLite has a single writer; queueing in
// the pool is cheaper than busy retries) with BEGIN IMMEDIATE transactions;
// reads use a small pool of read-only connections that see every committed
// write. synchronous=FULL makes every commit durable before it returns,
// except those made with meta.WithLazyDurability, which run at
// synchronous=NORMAL on the same connection: written to the write-ahead
// log, so they survive a crash of the process, without waiting for the
// disk. They are durable after the next durable commit or Sync, whose
// barrier is an fsync of the write-ahead log.
//
// The full-text index of names and MIME types (FTS5, trigram tokenizer)
// is brought up to date once per write transaction, just before it
// commits, from the entries whose name or MIME type changed (migration
// 0007): FTS5 writes out what it holds at every statement savepoint, so a
// trigger per row cost an index segment per statement of a batch.
//
// The chunks table keeps its rows in write order (migration 0008), so the
// chunks of one file share a few pages, and a commit takes its chunks'
// references, and records their possession, with one statement per batch
// of hashes: the commit of a 256-chunk file costs 1.7 ms instead of 3.4
// ms (BenchmarkCommitEdit).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/migrations"
	"github.com/dfms/dfms/server/meta/sqlmeta"
	msqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is SQLite's flavour of the shared SQL.
var Dialect = sqlmeta.Dialect{
	Name:  "sqlite",
	ILike: "LIKE", // case-insensitive for ASCII in SQLite
	// One writer connection, BEGIN IMMEDIATE.
	SerialWriters: true,
	SearchWord:    searchWord,
	Classify:      classify,
	// A lazy commit is written to the WAL (so it survives a crash of the
	// process) without waiting for the disk; Open sets the barrier.
	LazySync:   "PRAGMA synchronous=NORMAL",
	FullSync:   "PRAGMA synchronous=FULL",
	ReserveIDs: reserveIDs,
	// The full-text index is updated once per write transaction from the
	// entries its triggers noted (migration 0007): first the old names of
	// entries indexed before, then the current names of those that exist.
	SearchPending: `SELECT EXISTS (SELECT 1 FROM entries_fts_pending)`,
	SearchFlush: []string{
		`INSERT INTO entries_fts (entries_fts, rowid, name, mime)
			SELECT 'delete', id, old_name, old_mime FROM entries_fts_pending WHERE indexed = 1`,
		`INSERT INTO entries_fts (rowid, name, mime)
			SELECT e.id, e.name, e.mime FROM entries_fts_pending p JOIN entries e ON e.id = p.id`,
		`DELETE FROM entries_fts_pending`,
	},
}

// reserveIDs moves the AUTOINCREMENT counter of entries past n ids and
// returns them: SQLite never again picks an id at or below the counter.
func reserveIDs(ctx context.Context, tx *sql.Tx, n int) ([]dfms.EntryID, error) {
	var last int64
	err := tx.QueryRowContext(ctx, `UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(id), 0) FROM entries)) + ?
		WHERE name = 'entries' RETURNING seq`, n).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) { // no entry was ever made
		err = tx.QueryRowContext(ctx, `INSERT INTO sqlite_sequence (name, seq) SELECT 'entries', COALESCE(MAX(id), 0) + ? FROM entries
			RETURNING seq`, n).Scan(&last)
	}
	if err != nil {
		return nil, err
	}
	ids := make([]dfms.EntryID, n)
	for i := range ids {
		ids[i] = dfms.EntryID(last - int64(n) + 1 + int64(i))
	}
	return ids, nil
}

// walBarrier makes every commit to the database at path durable: it
// syncs the write-ahead log, which holds every commit not yet copied to
// the database file (a checkpoint syncs the database file before the log
// starts over, at every synchronous level). A checkpoint is no barrier:
// one that finds a reader in the way copies nothing and syncs nothing.
func walBarrier(path string) func(context.Context) error {
	return func(context.Context) error {
		f, err := os.Open(path + "-wal")
		if errors.Is(err, fs.ErrNotExist) {
			return nil // no log: every commit is in the synced database file
		}
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	}
}

// searchWord matches a word through the FTS5 trigram index (migration
// 0002) when it is long enough to have a trigram, and with LIKE otherwise.
func searchWord(w string) (string, []any) {
	if utf8.RuneCountInString(w) >= 3 {
		// A quoted FTS5 string: every character is literal.
		return `id IN (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?)`, []any{`"` + strings.ReplaceAll(w, `"`, `""`) + `"`}
	}
	like := "%" + sqlmeta.EscapeLike(w) + "%"
	return `(name LIKE ? ESCAPE '\' OR mime LIKE ? ESCAPE '\')`, []any{like, like}
}

// Open opens (creating if needed) the database file at path, applies the
// migrations and returns the store.
func Open(path string) (*sqlmeta.Store, error) {
	const op dfms.Op = "meta/sqlite.Open"
	if path == "" {
		return nil, dfms.Errorf(op, dfms.Invalid, "empty database path")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, dfms.E(op, dfms.Other, err)
		}
	}
	// SQLite would create the file by the umask (usually 0644), and its
	// -wal and -shm files with the database's mode: create it private
	// first. An existing file keeps the mode it has.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	f.Close()
	base := dsn(path, true)
	w, err := sql.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, dfms.E(op, dfms.Other, fmt.Errorf("open %s: %w", path, err))
	}
	if err := migrate(path, 0); err != nil {
		w.Close()
		return nil, dfms.E(op, dfms.Other, err)
	}
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, dfms.E(op, dfms.Other, err)
	}
	r.SetMaxOpenConns(4)
	d := Dialect
	d.Barrier = walBarrier(path)
	return sqlmeta.New(w, r, d), nil
}

// dsn is the data source name of the database file at path, with or
// without foreign keys enforced.
func dsn(path string, foreignKeys bool) string {
	fk := "0"
	if foreignKeys {
		fk = "1"
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(" + fk + ")&_pragma=synchronous(FULL)"
}

// migrate applies the migrations up to target (0: the latest) over a
// connection of its own, since the migrate driver closes its database
// when done. Foreign keys are off while they run, so that a migration
// may build a table anew as SQLite's documentation describes (a new
// table, a copy, a drop and a rename: SQLite cannot change a constraint in
// place); they are checked once all ran.
func migrate(path string, target uint) error {
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	drv, err := msqlite.WithInstance(db, &msqlite.Config{})
	if err != nil {
		return fmt.Errorf("migrate %s: %w", path, err)
	}
	if target == 0 {
		err = migrations.Apply(drv, "sqlite")
	} else {
		err = migrations.ApplyTo(drv, "sqlite", target)
	}
	if err != nil {
		return err
	}
	check, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return err
	}
	defer check.Close()
	var broken int
	if err := check.QueryRow(`SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&broken); err != nil {
		return fmt.Errorf("migrate %s: check foreign keys: %w", path, err)
	}
	if broken > 0 {
		return fmt.Errorf("migrate %s: %d rows refer to rows that do not exist", path, broken)
	}
	return nil
}

// classify maps SQLite result codes to kinds.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return dfms.E("", dfms.Exist, err)
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return dfms.E("", dfms.Transient, err)
	case sqlite3.SQLITE_FULL:
		return dfms.E("", dfms.Unavailable, err)
	}
	return err
}
