// Package postgres is the production metadata backend: PostgreSQL through
// pgx/v5 (its database/sql driver, sharing the SQL of package sqlmeta).
//
// URL form: postgres://user:password@host:5432/dbname?sslmode=disable
//
// Write transactions run SERIALIZABLE, so concurrent gateways cannot
// interleave into an inconsistent tree (two renames forming a cycle, two
// commits taking one version number); serialization failures and deadlocks
// are retried by the store.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/migrations"
	"github.com/dfms/dfms/server/meta/sqlmeta"
	mpgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Dialect is PostgreSQL's flavour of the shared SQL.
var Dialect = sqlmeta.Dialect{
	Name:      "postgres",
	Numbered:  true,
	ForUpdate: " FOR UPDATE",
	ILike:     "ILIKE",
	Collate:   ` COLLATE "C"`,
	SearchWord: func(w string) (string, []any) {
		// ILIKE '%w%' is served by the trigram indexes (migration 0002);
		// the tsvector catches the same words as whole words cheaply.
		like := "%" + sqlmeta.EscapeLike(w) + "%"
		return `(search @@ plainto_tsquery('simple', ?) OR name ILIKE ? ESCAPE '\' OR mime ILIKE ? ESCAPE '\')`, []any{w, like, like}
	},
	// A transaction-level advisory lock per owner, in a key space of its
	// own: two int4 keys, the first "DFMS" in ASCII (the GC lock uses one
	// bigint key).
	JournalLock: `SELECT pg_advisory_xact_lock(1145458003, CAST(CAST(? AS BIGINT) % 2147483647 AS INTEGER))`,
	WriteTx:     &sql.TxOptions{Isolation: sql.LevelSerializable},
	Lock:        advisoryLock,
	Classify:    classify,
	ReserveIDs:  reserveIDs,
}

// reserveIDs draws n values from the identity sequence of entries (not
// necessarily consecutive: other sessions draw too).
func reserveIDs(ctx context.Context, tx *sql.Tx, n int) ([]dfms.EntryID, error) {
	rows, err := tx.QueryContext(ctx, `SELECT nextval(pg_get_serial_sequence('entries', 'id')) FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := make([]dfms.EntryID, 0, n)
	for rows.Next() {
		var id dfms.EntryID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Options tunes the connection pool.
type Options struct {
	MaxConns int // default 16
}

// Open connects to the database at url, applies the migrations and returns
// the store.
func Open(ctx context.Context, url string, opts Options) (*sqlmeta.Store, error) {
	const op dfms.Op = "meta/postgres.Open"
	// A URL that cannot be parsed is a configuration error, not an
	// unreachable server (the driver would only find out on connecting).
	// pgconn's message hides the password.
	if _, err := pgconn.ParseConfig(url); err != nil {
		return nil, dfms.E(op, dfms.Invalid, err)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, err)
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 16
	}
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, dfms.E(op, dfms.Unavailable, err)
	}
	if err := migrate(url, 0); err != nil {
		db.Close()
		return nil, dfms.E(op, dfms.Other, err)
	}
	return sqlmeta.New(db, db, Dialect), nil
}

// migrate runs the migrations up to target (0: the latest) through a pool
// of its own (the migrate driver closes its database when done). The
// driver holds an advisory lock while it works, so two servers starting
// together migrate once.
func migrate(url string, target uint) error {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return err
	}
	defer db.Close()
	drv, err := mpgx.WithInstance(db, &mpgx.Config{})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer drv.Close()
	if target == 0 {
		return migrations.Apply(drv, "postgres")
	}
	return migrations.ApplyTo(drv, "postgres", target)
}

// classify maps SQLSTATE codes to kinds.
func classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return dfms.E("", dfms.Transient, err)
	case "23505": // unique_violation
		return dfms.E("", dfms.Exist, err)
	case "53100", "53200", "53300", "57P03": // disk full, out of memory, too many connections, cannot connect now
		return dfms.E("", dfms.Unavailable, err)
	}
	return err
}

// advisoryLock takes a session-level advisory lock on a connection of its
// own, held until the release (or until the connection dies, which frees
// the lock: a crashed holder never blocks the others).
func advisoryLock(ctx context.Context, db *sql.DB, name string) (func(), error) {
	const op dfms.Op = "meta/postgres.Lock"
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, dfms.E(op, dfms.Unavailable, err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, name).Scan(&ok); err != nil {
		conn.Close()
		return nil, dfms.E(op, dfms.Unavailable, err)
	}
	if !ok {
		conn.Close()
		return nil, dfms.E(op, dfms.Conflict, fmt.Errorf("lock %q is held", name))
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn.ExecContext(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, name)
			conn.Close()
		})
	}, nil
}
