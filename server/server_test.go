package server

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfms/dfms/server/files"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig is the embedded default in a fresh data directory, with cheap
// password hashing.
func testConfig(t *testing.T) Config {
	var c Config
	c.DataDir = filepath.Join(t.TempDir(), "data")
	c.Addr = "127.0.0.1:0"
	c.Auth.BcryptCost = 4
	c.Defaults()
	return c
}

// The embedded default's files hold users' data and secrets: the data
// directory and everything under it is private to the server's user
// (directories 0700, files 0600), whatever the umask.
func TestDataFilesArePrivate(t *testing.T) {
	cfg := testConfig(t)
	cfg.Admin.Email, cfg.Admin.Password = "admin@example.com", "a long password"
	s, err := New(context.Background(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Files().Write(context.Background(), filesWrite(t, s)); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// While the server runs: SQLite's -wal and -shm files are there too.
	var seen int
	err = filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if filepath.Base(path) == "jwt-public.pem" {
			want = 0o644 // the public key is meant to be read
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
		seen++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "meta.db-wal")); err != nil || seen < 6 {
		t.Fatalf("walked %d paths (meta.db: %v); want the data directory's files", seen, err)
	}
}

// filesWrite is a small write into the administrator's root.
func filesWrite(t *testing.T, s *Server) files.WriteRequest {
	t.Helper()
	u, err := s.meta.GetUserByEmail(context.Background(), s.cfg.Admin.Email)
	if err != nil {
		t.Fatal(err)
	}
	return files.WriteRequest{Owner: u.ID, Parent: u.Root, Name: "f.txt", Body: strings.NewReader("some content")}
}
