package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/metatest"
	"github.com/dfms/dfms/server/meta/sqlite"
)

func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Reopening keeps data, and the migrations run once.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "meta.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(context.Background(), meta.User{Email: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetUser(context.Background(), u.ID)
	if err != nil || got.Email != "a@b.c" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

// A database migrated by a newer binary is refused, not guessed at.
func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(`UPDATE schema_migrations SET version = 9999`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := sqlite.Open(path); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	}
}

// A lazy write runs at synchronous=NORMAL and leaves the writer connection
// at FULL, so that the durable commits after it wait for the disk; it
// survives closing and reopening the database.
func TestLazyDurabilityRestoresFull(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, meta.User{Email: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.CreateEntry(meta.WithLazyDurability(ctx), meta.Entry{Owner: u.ID, Parent: u.Root, Name: "f", Kind: meta.KindFile})
	if err != nil {
		t.Fatal(err)
	}
	var level int
	if err := s.DB().QueryRow(`PRAGMA synchronous`).Scan(&level); err != nil || level != 2 {
		t.Fatalf("synchronous after a lazy write = %d (%v), want 2 (FULL)", level, err)
	}
	// The barrier holds while a reader keeps a checkpoint from copying
	// anything: it syncs the log itself.
	rtx, err := s.DB().BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRow(`SELECT COUNT(*) FROM entries`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("the write-ahead log after a lazy write: %v, %v", fi, err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rtx.Rollback()
	s.Close()
	if s, err = sqlite.Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Lookup(ctx, u.ID, u.Root, "f"); err != nil || got.ID != e.ID {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}
