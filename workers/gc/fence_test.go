package gc_test

import (
	"bytes"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta/postgres"
	"github.com/dfms/dfms/workers/gc"
)

// newPostgresEnv is newEnv on a fresh PostgreSQL database; it also returns
// a connection pool of its own to that database.
func newPostgresEnv(t *testing.T) (*env, *sql.DB) {
	t.Helper()
	url := testenv.Postgres(t)
	m, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close(); m.Close() })
	return envOf(testkit.NewStack(t, testkit.Options{Meta: m, Files: files.Options{Chunking: smallChunks}})), other
}

// A collector whose lock's connection dies while it deletes a chunk's
// bytes goes on without knowing. A second collector then takes the lock:
// it must not finish that deletion in its place, or a write storing the
// same bytes after it could have them deleted under its committed version
// by the first collector.
func TestLostLockCannotDeleteAStoredChunk(t *testing.T) {
	e, db := newPostgresEnv(t)
	data := testkit.RandBytes(12, 3000) // one chunk
	old := e.write(t, "old", data)
	if err := e.meta.Trash(ctx, e.user.ID, old.Entry.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.meta.Purge(ctx, e.user.ID, old.Entry.ID); err != nil {
		t.Fatal(err)
	}

	// Collector A stops in its byte delete of the chunk.
	inDelete, release, aDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	storeA := &hookStore{ChunkStore: e.store, beforeDelete: func() {
		once.Do(func() { close(inDelete); <-release })
	}}
	a := &gc.Collector{Meta: e.meta, Chunks: storeA, Grace: 0, OrphanGrace: time.Hour}
	go func() {
		_, err := a.Run(ctx)
		aDone <- err
	}()
	<-inDelete

	// Its lock's connection dies (a restart, a failover, an idle timeout);
	// the kill waits until the backend has gone.
	var killed int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 1 AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d holders of the GC lock, want 1", killed)
	}

	// Collector B gets the lock and collects.
	b := &gc.Collector{Meta: e.meta, Chunks: e.store, Grace: 0, OrphanGrace: time.Hour}
	if _, err := b.Run(ctx); err != nil {
		t.Fatalf("collector B: %v", err)
	}

	// The same bytes are written again while A is still held: the write
	// either waits for the deletion to finish or completes at once.
	type result struct {
		res files.WriteResult
		err error
	}
	wrote := make(chan result, 1)
	go func() {
		res, err := e.svc.Write(ctx, files.WriteRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "new", Body: bytes.NewReader(data)})
		wrote <- result{res, err}
	}()
	var w result
	written := false
	for range 500 {
		select {
		case w = <-wrote:
			written = true
		case <-time.After(2 * time.Millisecond):
		}
		if written {
			break
		}
	}
	close(release)
	if err := <-aDone; err != nil && !dfms.Is(err, dfms.Conflict) {
		t.Fatalf("collector A: %v", err)
	}
	if !written {
		w = <-wrote
	}
	if w.err != nil {
		t.Fatalf("write of the same bytes: %v", w.err)
	}
	if _, err := b.Run(ctx); err != nil {
		t.Fatalf("collector B again: %v", err)
	}
	var out bytes.Buffer
	if _, err := e.svc.ReadFile(ctx, e.user.ID, w.res.Entry.ID, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("acknowledged write unreadable after the collections: %v", err)
	}
}

// A run beside another collector's fails at once with kind Conflict,
// marked LockHeld; a run refused midway for its lost lock is not LockHeld.
func TestLockHeld(t *testing.T) {
	e := newEnv(t)
	_, unlock, err := e.meta.Lock(ctx, "dfms-gc")
	if err != nil {
		t.Fatal(err)
	}
	c := &gc.Collector{Meta: e.meta, Chunks: e.store, Grace: time.Hour}
	_, err = c.Run(ctx)
	unlock()
	if !dfms.Is(err, dfms.Conflict) || !gc.LockHeld(err) {
		t.Fatalf("run beside a lock holder: got %v (LockHeld %v), want kind Conflict and LockHeld", err, gc.LockHeld(err))
	}
	if _, err := c.Run(ctx); err != nil {
		t.Fatalf("run once the lock is free: %v", err)
	}
	if gc.LockHeld(dfms.E("meta.BeginDelete", dfms.Conflict, errors.New("lock \"dfms-gc\" was taken again since"))) {
		t.Error("a fenced refusal counts as LockHeld")
	}
}
