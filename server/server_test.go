package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to count sessions
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

// serve runs s on a loopback listener until the test ends, and returns
// the base URL.
func serve(t *testing.T, s *Server) string { return serveOn(t, "Serve", s.Serve) }

// serveOn runs a Serve method on a loopback listener until the test
// ends, and returns the base URL.
func serveOn(t *testing.T, what string, serve func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", what, err)
		}
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	code, b := testkit.Get(t, url)
	return code, string(b)
}

// With metrics_addr, /metrics is served there only, so that the API's
// public address need not expose it.
func TestMetricsAddr(t *testing.T) {
	cfg := testConfig(t)
	base := serve(t, testkit.Must(New(context.Background(), cfg, quiet))(t))
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "# TYPE") {
		t.Fatalf("GET /metrics without metrics_addr: %d %.100s, want the metrics", code, body)
	}

	cfg = testConfig(t)
	cfg.MetricsAddr = testkit.FreeAddr(t)
	base = serve(t, testkit.Must(New(context.Background(), cfg, quiet))(t))
	if code, body := get(t, base+"/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the API's address with metrics_addr: %d %.100s, want 404", code, body)
	}
	var code int
	var body string
	for range 100 { // Serve listens on the metrics address as it starts
		resp, err := http.Get("http://" + cfg.MetricsAddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != 200 || !strings.Contains(body, "# TYPE") {
		t.Errorf("GET /metrics on metrics_addr: %d %.100s, want the metrics", code, body)
	}
	if code, _ := get(t, "http://"+cfg.MetricsAddr+"/api/v1/files"); code != http.StatusNotFound {
		t.Errorf("GET /api/v1/files on metrics_addr: %d, want 404 (the API is not served there)", code)
	}
}

// trickle is a body that arrives in pieces, a pause before each.
type trickle struct {
	pieces [][]byte
	pause  time.Duration
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.pieces) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause)
	n := copy(p, r.pieces[0])
	r.pieces = r.pieces[1:]
	return n, nil
}

// A client that sends its headers a byte at a time is cut off once the
// header timeout passes (it would hold a connection and a goroutine for as
// long as it likes); one that trickles a body after prompt headers is a
// slow upload, and completes.
func TestSlowHeadersAreCut(t *testing.T) {
	s := testkit.Must(New(context.Background(), testConfig(t), quiet))(t)
	if s.http.ReadHeaderTimeout <= 0 || s.http.IdleTimeout <= 0 {
		t.Fatalf("header timeout %v, idle timeout %v; want both set", s.http.ReadHeaderTimeout, s.http.IdleTimeout)
	}
	const headerTimeout = 200 * time.Millisecond
	s.http.ReadHeaderTimeout = headerTimeout // the real one is seconds
	base := serve(t, s)

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "GET /health HTTP/1.1\r\nHost: dfms\r\nX-Slow: " + strings.Repeat("x", 40) + "\r\n\r\n"
	var werr error
	for i := 0; i < len(head) && werr == nil; i++ {
		_, werr = conn.Write([]byte{head[i]})
		time.Sleep(headerTimeout / 2)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(conn)
	if strings.Contains(string(answer), "200 OK") {
		t.Errorf("a request whose headers took %d times the header timeout was served: %q", len(head)/2, answer)
	}

	reg, err := http.Post(base+"/api/v1/auth/register", "application/json",
		strings.NewReader(`{"email":"slow@example.com","password":"a long password"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(reg.Body).Decode(&tok)
	reg.Body.Close()
	body := &trickle{pause: headerTimeout}
	for range 8 {
		body.pieces = append(body.pieces, []byte("a slowly uploaded piece\n"))
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/files/upload", body)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("X-File-Name", "slow.txt")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("an upload trickled over 8 header timeouts: got %d, want 201", resp.StatusCode)
	}
}

// pgConnections counts the sessions connected to the database of url.
func pgConnections(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", os.Getenv("DFMS_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, strings.TrimPrefix(u.Path, "/")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// openFiles lists the files this process holds open under dir.
func openFiles(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, fd := range fds {
		if p, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(p, dir) {
			out = append(out, p)
		}
	}
	return out
}

// A start that fails at one backend closes the ones it opened before:
// no database session, no open file is left behind.
func TestFailedStartClosesWhatItOpened(t *testing.T) {
	unreachable := testkit.FreeAddr(t)
	for _, tc := range []struct {
		name string
		fail string // the backend that cannot be reached
		set  func(t *testing.T, cfg *Config)
	}{
		{"postgres then s3", "chunk store", func(t *testing.T, cfg *Config) {
			cfg.Metadata.URL = testenv.Postgres(t)
			cfg.Chunks.URL = "s3://key:secret@" + unreachable + "/bucket?secure=false"
		}},
		{"postgres and s3 then redis", "rate limiter", func(t *testing.T, cfg *Config) {
			cfg.Metadata.URL, cfg.Chunks.URL = testenv.Postgres(t), testenv.S3(t)
			cfg.RateLimit.URL = "redis://" + unreachable + "/0"
		}},
		{"sqlite then redis", "rate limiter", func(t *testing.T, cfg *Config) {
			cfg.RateLimit.URL = "redis://" + unreachable + "/0"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.set(t, &cfg)
			if _, err := New(context.Background(), cfg, quiet); err == nil {
				t.Fatalf("New succeeded with an unreachable %s", tc.fail)
			}
			if strings.HasPrefix(cfg.Metadata.URL, "postgres") {
				waitNoSessions(t, cfg.Metadata.URL)
			} else if open := openFiles(t, cfg.DataDir); len(open) > 0 {
				t.Errorf("files still open after the failed start: %q", open)
			}
		})
	}
}

// waitNoSessions waits until the database of raw has no session (closing
// a pool ends its sessions on the server a little later).
func waitNoSessions(t *testing.T, raw string) {
	t.Helper()
	var n int
	for range 250 {
		if n = pgConnections(t, raw); n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%d sessions still open on the metadata database after the failed start", n)
}

// The temporary files of dead writes that GC deletes are counted in
// dfms_gc_temp_files_removed_total, whether the run was asked for
// (POST /admin/gc) or the server's timer started it.
func TestMetricGCTempFiles(t *testing.T) {
	cfg := testConfig(t)
	cfg.GC.Grace = time.Hour
	s := testkit.Must(New(context.Background(), cfg, quiet))(t)
	t.Cleanup(func() { s.Close() })
	base := serve(t, s)
	dir := cfg.DataDir

	metric := func() string {
		t.Helper()
		_, body := get(t, base+"/metrics")
		for line := range strings.Lines(body) {
			if strings.HasPrefix(line, "dfms_gc_temp_files_removed_total ") {
				return strings.TrimSpace(line)
			}
		}
		t.Fatalf("no dfms_gc_temp_files_removed_total in /metrics:\n%s", body)
		return ""
	}
	if got := metric(); got != "dfms_gc_temp_files_removed_total 0" {
		t.Fatalf("before any run: %q", got)
	}
	shard := filepath.Join(dir, "chunks", "ab", "cd")
	if err := os.MkdirAll(shard, 0o700); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{".tmp-1", ".tmp-2"} {
		p := filepath.Join(shard, name)
		if err := os.WriteFile(p, []byte("half a chunk"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, long, long); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.gc.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := metric(); got != "dfms_gc_temp_files_removed_total 2" {
		t.Fatalf("after a run that removed 2: %q", got)
	}
}
