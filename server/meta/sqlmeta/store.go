// Package sqlmeta implements meta.Store over database/sql. It holds the SQL
// shared by the SQLite and PostgreSQL backends; each backend supplies a
// Dialect (placeholders, locking, error classification) and its own
// migrations. Queries are written with '?' placeholders and rebound for
// dialects that number them.
//
// Every exported method runs in one transaction (see write and read) and is
// retried when the dialect classifies the failure as transient.
// Single-statement reads (an entry by id or by name) run without BEGIN and
// COMMIT (readOne), which cost as much as such a read.
package sqlmeta

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Dialect describes what differs between SQL backends.
type Dialect struct {
	Name string
	// Numbered placeholders ($1, $2, …) instead of '?'.
	Numbered bool
	// ForUpdate is appended to SELECTs that lock the rows they read
	// (" FOR UPDATE" on PostgreSQL; SQLite serialises writers instead).
	ForUpdate string
	// SerialWriters says that write transactions run one at a time
	// (SQLite): one statement may then change many rows in any order
	// without the risk of a deadlock with another writer.
	SerialWriters bool
	// ILike is the case-insensitive LIKE operator.
	ILike string
	// Collate is appended to name comparisons and orderings so that every
	// backend orders names bytewise.
	Collate string
	// SearchWord returns the condition that one search word occurs, in any
	// case, in an entry's name or MIME type (a substring, wildcards
	// literal), with its arguments: each backend uses its own index.
	SearchWord func(word string) (cond string, args []any)
	// Lock takes a named lock shared by every process using the database
	// (nil: locks are local to this process, right for SQLite's single
	// server). It returns the release, or kind Conflict if held.
	Lock func(ctx context.Context, db *sql.DB, name string) (func(), error)
	// LazySync and FullSync switch the writer connection between commits
	// that may become durable later (meta.WithLazyDurability) and commits
	// that are durable when they return; the connection is left at
	// FullSync. Empty: every commit is durable, and lazy writes are
	// ordinary ones.
	LazySync, FullSync string
	// Barrier makes every commit so far durable (Sync); nil when every
	// commit is durable anyway.
	Barrier func(ctx context.Context) error
	// ReserveIDs takes n entry ids out of the sequence the entries table
	// draws from, in a write transaction (meta.Tree.ReserveEntryIDs).
	ReserveIDs func(ctx context.Context, tx *sql.Tx, n int) ([]dfms.EntryID, error)
	// SearchPending and SearchFlush keep a search index that is brought up
	// to date once per write transaction: before each commit of one,
	// SearchPending (a query of one boolean) says whether entries changed
	// since the last flush, and if so the SearchFlush statements run in
	// order. Empty when the index keeps itself current.
	SearchPending string
	SearchFlush   []string
	// JournalLock is a statement taking a lock on the change journal of
	// one owner (its one argument) that holds until the transaction
	// ends; a write transaction takes it, for each owner it journals,
	// just before adding its change rows (flushJournal), so that an
	// owner's rows become visible in Seq order. Empty when write
	// transactions run one at a time anyway.
	JournalLock string
	// WriteTx are the options of write transactions.
	WriteTx *sql.TxOptions
	// Classify turns a driver error into a *dfms.Error with a kind:
	// Transient for retryable failures (serialization, deadlock, busy),
	// Exist for unique violations; anything else is returned unchanged.
	Classify func(error) error
}

// Store implements meta.Store.
type Store struct {
	w, r *sql.DB // writer and reader pools (may be the same)
	d    Dialect
	now  func() time.Time

	rebound sync.Map // query text -> rebound text

	// stmts holds prepared statements (stmtKey -> *sql.Stmt); pending the
	// statements to prepare before the next transaction on their pool
	// (stmtKey -> struct{}). Compiling a statement costs more than running
	// most of them. Statements are prepared outside transactions: the
	// SQLite writer pool has one connection, held by the transaction.
	stmts   sync.Map
	pending sync.Map

	// locks are the process-local named locks (dialects without Lock).
	locksMu sync.Mutex
	locks   map[string]bool
}

// Lock implements meta.Sweeper: the dialect's lock (or one of this
// process), then a new epoch for its fence.
func (s *Store) Lock(ctx context.Context, name string) (meta.Fence, func(), error) {
	const op dfms.Op = "meta.Lock"
	unlock, err := s.lock(ctx, name)
	if err != nil {
		return meta.Fence{}, nil, err
	}
	f := meta.Fence{Name: name}
	err = s.write(ctx, op, func(t *tx) error {
		// One counter for every lock: an epoch names one holding of one lock.
		if _, err := t.exec(ctx, `INSERT INTO locks (name, epoch) VALUES (?, (SELECT COALESCE(MAX(epoch), 0) + 1 FROM locks))
			ON CONFLICT (name) DO UPDATE SET epoch = excluded.epoch`, name); err != nil {
			return err
		}
		return t.queryRow(ctx, `SELECT epoch FROM locks WHERE name = ?`, name).Scan(&f.Epoch)
	})
	if err != nil {
		unlock()
		return meta.Fence{}, nil, err
	}
	return f, unlock, nil
}

// lock takes the dialect's named lock, or one local to this process.
func (s *Store) lock(ctx context.Context, name string) (func(), error) {
	if s.d.Lock != nil {
		return s.d.Lock(ctx, s.w, name)
	}
	s.locksMu.Lock()
	defer s.locksMu.Unlock()
	if s.locks[name] {
		return nil, dfms.E("meta.Lock", dfms.Conflict, fmt.Errorf("lock %q is held", name))
	}
	if s.locks == nil {
		s.locks = map[string]bool{}
	}
	s.locks[name] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			s.locksMu.Lock()
			delete(s.locks, name)
			s.locksMu.Unlock()
		})
	}, nil
}

// fenced fails with kind Conflict unless f is its lock's latest fence. A
// write on behalf of a lock runs it in its transaction: on PostgreSQL
// (serializable) the transaction is then ordered either before the next
// taking of the lock, or after it and refused.
func (t *tx) fenced(ctx context.Context, op dfms.Op, f meta.Fence) error {
	var epoch int64
	err := t.queryRow(ctx, `SELECT epoch FROM locks WHERE name = ?`, f.Name).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) || err == nil && epoch != f.Epoch {
		return dfms.E(op, dfms.Conflict, fmt.Errorf("lock %q was taken again since (fence %d, latest %d)", f.Name, f.Epoch, epoch))
	}
	return err
}

var _ meta.Store = (*Store)(nil)

// New returns a Store that writes through w and reads through r.
func New(w, r *sql.DB, d Dialect) *Store {
	return &Store{w: w, r: r, d: d, now: time.Now}
}

// SetClock replaces the store's clock (for tests of time-dependent rules).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Close closes both pools.
func (s *Store) Close() error {
	s.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// Ping checks both pools.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return dfms.E("meta.Ping", dfms.Unavailable, err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return dfms.E("meta.Ping", dfms.Unavailable, err)
	}
	return nil
}

// DB returns the writer pool (for tests and maintenance tools).
func (s *Store) DB() *sql.DB { return s.w }

// q rebinds a query for the dialect, caching the result.
func (s *Store) q(query string) string {
	if !s.d.Numbered {
		return query
	}
	if v, ok := s.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	out := b.String()
	s.rebound.Store(query, out)
	return out
}

// tx is a transaction with the store's helpers.
type tx struct {
	*sql.Tx // nil in readOne: statements run on db
	s       *Store
	db      *sql.DB   // the pool the transaction came from
	now     time.Time // one clock reading per transaction

	// changes are the change rows to write when the transaction ends
	// (journal, flushJournal).
	changes []meta.Change
	// events are the outbox rows it writes as it ends (event,
	// flushEvents).
	events []dfms.Event
}

// stmtKey names a prepared statement: its text on one pool.
type stmtKey struct {
	db *sql.DB
	q  string
}

// maxPreparedLen bounds the statements kept prepared: long ones are IN
// lists of varying length, each distinct.
const maxPreparedLen = 2000

// prepared returns the transaction's handle of the prepared statement q,
// or nil (then q is queued to be prepared before the next transaction).
func (t *tx) prepared(ctx context.Context, q string) *sql.Stmt {
	if len(q) > maxPreparedLen {
		return nil
	}
	key := stmtKey{t.db, q}
	if v, ok := t.s.stmts.Load(key); ok {
		if t.Tx == nil {
			return v.(*sql.Stmt)
		}
		return t.StmtContext(ctx, v.(*sql.Stmt))
	}
	t.s.pending.Store(key, struct{}{})
	return nil
}

// preparePending prepares the statements queued for db.
func (s *Store) preparePending(ctx context.Context, db *sql.DB) {
	s.pending.Range(func(k, _ any) bool {
		key := k.(stmtKey)
		if key.db != db {
			return true
		}
		s.pending.Delete(k)
		if _, ok := s.stmts.Load(key); ok {
			return true
		}
		if st, err := db.PrepareContext(ctx, key.q); err == nil {
			if _, loaded := s.stmts.LoadOrStore(key, st); loaded {
				st.Close()
			}
		}
		return true
	})
}

// conn runs statements: a transaction, the pool itself (for readOne), or
// a prepared statement (stmtConn).
type conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// stmtConn is a prepared statement as a conn: it runs itself, whatever
// the query.
type stmtConn struct{ st *sql.Stmt }

func (c stmtConn) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return c.st.ExecContext(ctx, args...)
}

func (c stmtConn) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return c.st.QueryContext(ctx, args...)
}

func (c stmtConn) QueryRowContext(ctx context.Context, _ string, args ...any) *sql.Row {
	return c.st.QueryRowContext(ctx, args...)
}

// on returns query in the store's dialect and the conn to run it on: its
// prepared statement if it has one, else the transaction or the pool.
func (t *tx) on(ctx context.Context, query string) (conn, string) {
	q := t.s.q(query)
	if st := t.prepared(ctx, q); st != nil {
		return stmtConn{st}, q
	}
	if t.Tx == nil {
		return t.db, q
	}
	return t.Tx, q
}

func (t *tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	c, q := t.on(ctx, query)
	return c.ExecContext(ctx, q, args...)
}

func (t *tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	c, q := t.on(ctx, query)
	return c.QueryRowContext(ctx, q, args...)
}

func (t *tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c, q := t.on(ctx, query)
	return c.QueryContext(ctx, q, args...)
}

// affected runs a statement and returns how many rows it changed.
func (t *tx) affected(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := t.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execOne runs a statement that must change exactly one row; otherwise it
// fails with notFound.
func (t *tx) execOne(ctx context.Context, notFound error, query string, args ...any) error {
	n, err := t.affected(ctx, query, args...)
	if err != nil {
		return err
	}
	if n != 1 {
		return notFound
	}
	return nil
}

const maxAttempts = 30

// write runs fn in a write transaction, retrying transient failures with
// jittered exponential backoff. fn may therefore run more than once and must
// not have effects outside the transaction.
func (s *Store) write(ctx context.Context, op dfms.Op, fn func(t *tx) error) error {
	return s.run(ctx, op, s.w, s.d.WriteTx, fn)
}

// read runs fn in a read-only transaction on the reader pool.
func (s *Store) read(ctx context.Context, op dfms.Op, fn func(t *tx) error) error {
	return s.run(ctx, op, s.r, &sql.TxOptions{ReadOnly: true}, fn)
}

// readOne runs fn on the reader pool without a transaction: each of its
// statements sees the latest commit on its own, which is right for a read
// of one statement (or of one whose answer does not depend on a second),
// and saves the BEGIN and COMMIT that cost as much as a small read.
func (s *Store) readOne(ctx context.Context, op dfms.Op, fn func(t *tx) error) error {
	return s.run(ctx, op, s.r, autocommit, fn)
}

// result runs fn through run (s.read, s.readOne or s.write) and returns
// what its last run returned.
func result[T any](ctx context.Context, run func(context.Context, dfms.Op, func(*tx) error) error, op dfms.Op, fn func(t *tx) (T, error)) (T, error) {
	var v T
	err := run(ctx, op, func(t *tx) error {
		var err error
		v, err = fn(t)
		return err
	})
	return v, err
}

// autocommit marks the transaction options of readOne.
var autocommit = &sql.TxOptions{ReadOnly: true}

func (s *Store) run(ctx context.Context, op dfms.Op, db *sql.DB, opts *sql.TxOptions, fn func(t *tx) error) error {
	backoff := time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.once(ctx, db, opts, fn)
		if err == nil {
			return nil
		}
		err = s.classify(err)
		if !dfms.Is(err, dfms.Transient) || attempt == maxAttempts || ctx.Err() != nil {
			if ctx.Err() != nil && !isKinded(err) {
				return dfms.E(op, dfms.Unavailable, ctx.Err())
			}
			return dfms.E(op, dfms.Other, err)
		}
		sleep := backoff/2 + rand.N(backoff)
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return dfms.E(op, dfms.Unavailable, ctx.Err())
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

func isKinded(err error) bool {
	var e *dfms.Error
	return errors.As(err, &e)
}

func (s *Store) once(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(t *tx) error) (err error) {
	s.preparePending(ctx, db)
	if db == s.w && s.d.LazySync != "" && meta.LazyDurability(ctx) {
		return s.onceLazy(ctx, db, opts, fn)
	}
	if opts == autocommit {
		return fn(&tx{s: s, db: db, now: s.now()})
	}
	sqlTx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	return s.finish(ctx, sqlTx, db, fn)
}

// onceLazy runs fn in a transaction whose commit may become durable
// later: on a connection of its own, switched to LazySync for it and back
// to FullSync after (a connection that cannot be switched back is
// dropped, so that no durable commit ever runs lazily).
func (s *Store) onceLazy(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(t *tx) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Back to FullSync whatever happens from here: a switch that took
	// effect but reported a failure (a cancelled context) included.
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), s.d.FullSync); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if _, err := conn.ExecContext(ctx, s.d.LazySync); err != nil {
		return err
	}
	sqlTx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	return s.finish(ctx, sqlTx, db, fn)
}

// Sync implements meta.Lifecycle.
func (s *Store) Sync(ctx context.Context) error {
	if s.d.Barrier == nil {
		return nil
	}
	if err := s.d.Barrier(ctx); err != nil {
		return dfms.E("meta.Sync", dfms.Other, err)
	}
	return nil
}

// finish runs fn in sqlTx and commits, or rolls back on failure.
func (s *Store) finish(ctx context.Context, sqlTx *sql.Tx, db *sql.DB, fn func(t *tx) error) (err error) {
	t := &tx{Tx: sqlTx, s: s, db: db, now: s.now()}
	defer func() {
		if err != nil {
			_ = sqlTx.Rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	if db == s.w && s.d.SearchPending != "" {
		var pending bool
		if err := t.queryRow(ctx, s.d.SearchPending).Scan(&pending); err != nil {
			return err
		}
		for _, q := range s.d.SearchFlush {
			if !pending {
				break
			}
			if _, err := t.exec(ctx, q); err != nil {
				return err
			}
		}
	}
	if err := t.flushJournal(ctx); err != nil {
		return err
	}
	return sqlTx.Commit()
}

// classify maps driver errors to kinds; errors that already carry a kind
// (returned deliberately by fn) pass through.
func (s *Store) classify(err error) error {
	if isKinded(err) {
		return err
	}
	var mce *meta.MissingChunksError
	if errors.As(err, &mce) {
		return dfms.E("", dfms.Conflict, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return dfms.E("", dfms.NotExist, err)
	}
	return s.d.Classify(err)
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}

// nullNS stores a zero time as NULL.
func nullNS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// EscapeLike escapes LIKE wildcards (with a backslash as the escape character)
// so that user text matches literally.
func EscapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
