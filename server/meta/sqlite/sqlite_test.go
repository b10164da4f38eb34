package sqlite_test

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/migrations"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/metatest"
	"github.com/dfms/dfms/server/meta/sqlite"
	"github.com/dfms/dfms/server/meta/sqlmeta"
)

var ctx = context.Background()

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
	u := createUser(t, s)
	s.Close()
	s, err = sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetUser(ctx, u.ID)
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
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	u := createUser(t, s)
	e, err := s.CreateEntry(meta.WithLazyDurability(ctx), dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "f", Kind: dfms.KindFile})
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

// The full-text index, brought up to date once per write transaction,
// matches the entries after batches, renames (one replacing another),
// deletions and purges: FTS5's integrity check compares it with the
// entries table, and nothing is left waiting after a commit.
func TestSearchIndexFollowsEntries(t *testing.T) {
	s, u := openWithUser(t)
	check := func(step string) {
		t.Helper()
		if _, err := s.DB().Exec(`INSERT INTO entries_fts (entries_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
			t.Fatalf("%s: the index does not match the entries: %v", step, err)
		}
		var n int
		if err := s.DB().QueryRow(`SELECT COUNT(*) FROM entries_fts_pending`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s: %d entries left to index (%v)", step, n, err)
		}
	}
	search := func(text string) []string {
		t.Helper()
		es, _, err := s.Search(ctx, u.ID, meta.SearchQuery{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	names := []string{"alpha.txt", "beta.txt", "gamma.txt", "alpha.txt"} // the second alpha fails alone
	ids, err := s.ReserveEntryIDs(ctx, u.ID, len(names))
	if err != nil {
		t.Fatal(err)
	}
	var batch []dfms.Entry
	for i, n := range names {
		batch = append(batch, dfms.Entry{ID: ids[i], Owner: u.ID, Parent: u.Root, Name: n, Kind: dfms.KindFile})
	}
	res, err := s.CreateEntries(ctx, batch)
	if err != nil || res[0].Err != nil || res[3].Err == nil {
		t.Fatalf("CreateEntries: %+v, %v", res, err)
	}
	check("batch")
	if _, _, err := s.Rename(ctx, u.ID, res[1].Entry.ID, u.Root, "delta.txt", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Rename(ctx, u.ID, res[1].Entry.ID, u.Root, "gamma.txt", true); err != nil { // replaces gamma
		t.Fatal(err)
	}
	check("renames")
	if got := search("gamma"); len(got) != 1 {
		t.Fatalf("search gamma after the replace = %v, want one entry", got)
	}
	if got := search("delta"); len(got) != 0 {
		t.Fatalf("search delta after renaming it away = %v", got)
	}
	if errs, err := s.TrashEntries(ctx, u.ID, []meta.TrashItem{{ID: res[0].Entry.ID}, {ID: res[1].Entry.ID}}); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("TrashEntries: %v, %v", errs, err)
	}
	if _, err := s.Purge(ctx, u.ID, res[0].Entry.ID); err != nil {
		t.Fatal(err)
	}
	check("trash and purge")
	if got := search("alpha"); len(got) != 0 {
		t.Fatalf("search alpha after the purge = %v", got)
	}
}

// openWithUser opens a fresh database (closed at the end of the test)
// with one user.
func openWithUser(t *testing.T) (*sqlmeta.Store, meta.User) {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u := createUser(t, s)
	return s, u
}

// createUser creates a user in s, failing t if it cannot.
func createUser(t *testing.T, s *sqlmeta.Store) meta.User {
	t.Helper()
	u, err := s.CreateUser(ctx, meta.User{Email: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// runMigration runs the SQLite migration file name on s's database, as
// migrating would.
func runMigration(t *testing.T, s *sqlmeta.Store, name string) {
	t.Helper()
	sub, err := migrations.FS("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	script, err := fs.ReadFile(sub, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(string(script)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
