package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/api/client/clienttest"
)

// env points the client commands at temporary config and cache
// directories and returns them.
func env(t *testing.T) (config, cache string) {
	t.Helper()
	config, cache = t.TempDir(), t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DFMS_SERVER", "")
	return config, cache
}

// dfmsRun runs one command line in-process.
func dfmsRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// must runs a command that must succeed.
func must(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := dfmsRun(t, args...)
	if code != 0 {
		t.Fatalf("dfms %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// withStdin runs fn with os.Stdin reading content.
func withStdin(t *testing.T, content string, fn func()) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(content)
	f.Seek(0, 0)
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	fn()
}

func loginCLI(t *testing.T, srv *clienttest.Server) {
	t.Helper()
	withStdin(t, clienttest.Password+"\n", func() {
		must(t, "login", "--server", srv.URL, "--email", clienttest.Email, "--password-stdin")
	})
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestClientCommands(t *testing.T) {
	config, _ := env(t)
	srv := clienttest.NewServer(t, clienttest.Options{})
	t.Chdir(t.TempDir())

	if code, _, errs := dfmsRun(t, "ls", "--server", srv.URL); code != 1 || !strings.Contains(errs, "not logged in") {
		t.Errorf("ls before login: exit %d, stderr %q", code, errs)
	}
	withStdin(t, "wrong password\n", func() {
		if code, _, errs := dfmsRun(t, "login", "--server", srv.URL, "--email", clienttest.Email); code != 1 || strings.Count(errs, "\n") != 1 {
			t.Errorf("login with a wrong password: exit %d, stderr %q", code, errs)
		}
	})
	loginCLI(t, srv)
	credFile := filepath.Join(config, "dfms", "credentials.json")
	fi, err := os.Stat(credFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode = %o, want 600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(credFile)); di.Mode().Perm() != 0o700 {
		t.Errorf("credentials directory mode = %o, want 700", di.Mode().Perm())
	}
	var creds credentials
	b, _ := os.ReadFile(credFile)
	if err := json.Unmarshal(b, &creds); err != nil || creds.Server != srv.URL || creds.RefreshToken == "" || creds.Email != clienttest.Email {
		t.Errorf("credentials = %+v, %v", creds, err)
	}

	// put, ls, get.
	writeFile(t, "a.txt", "hello v1\n")
	if out := must(t, "put", "a.txt"); !strings.HasPrefix(out, "put /a.txt (9 bytes, version 1") {
		t.Errorf("put: %q", out)
	}
	if out := must(t, "ls"); !regexp.MustCompile(`(?m)^file\s+9\s+\S+ \S+\s+1\s+a\.txt$`).MatchString(out) || !strings.HasPrefix(out, "TYPE") {
		t.Errorf("ls:\n%s", out)
	}
	var es []client.Entry
	if err := json.Unmarshal([]byte(must(t, "ls", "--json", "/")), &es); err != nil || len(es) != 1 || es[0].Name != "a.txt" {
		t.Errorf("ls --json: %+v, %v", es, err)
	}
	if out := must(t, "ls", "-l", "/a.txt"); !strings.Contains(out, es[0].Checksum) {
		t.Errorf("ls -l of a file has no checksum:\n%s", out)
	}
	must(t, "get", "/a.txt", "copy.txt")
	if b, _ := os.ReadFile("copy.txt"); string(b) != "hello v1\n" {
		t.Errorf("get: %q", b)
	}

	// mkdir, mv into a folder, rename.
	must(t, "mkdir", "/docs")
	must(t, "mkdir", "-p", "/docs/sub/deeper")
	must(t, "mv", "/a.txt", "/docs")
	must(t, "mv", "/docs/a.txt", "/docs/b.txt")
	if out := must(t, "ls", "/docs"); !strings.Contains(out, " b.txt\n") || !strings.Contains(out, " sub/\n") || strings.Contains(out, "a.txt") {
		t.Errorf("ls /docs after mv:\n%s", out)
	}

	// A second version, versions, restore.
	writeFile(t, "a.txt", "hello v2, longer\n")
	if out := must(t, "put", "a.txt", "/docs/b.txt"); !strings.Contains(out, "version 2") {
		t.Errorf("put of a new version: %q", out)
	}
	out := must(t, "versions", "/docs/b.txt")
	if !regexp.MustCompile(`(?s)VERSION.*\n2\s+17\s.*\*\n1\s+9\s`).MatchString(out) {
		t.Errorf("versions:\n%s", out)
	}
	if out := must(t, "restore", "/docs/b.txt", "--version", "1"); !strings.Contains(out, "as version 3") {
		t.Errorf("restore: %q", out)
	}
	must(t, "get", "/docs/b.txt", ".") // into the current directory, under its name
	if b, _ := os.ReadFile("b.txt"); string(b) != "hello v1\n" {
		t.Errorf("get after restore: %q", b)
	}
	if out := must(t, "search", "b.tx"); !strings.Contains(out, "/docs/b.txt\n") {
		t.Errorf("search:\n%s", out)
	}
	if out := must(t, "search", "deep", "--type", "folder"); !strings.Contains(out, "/docs/sub/deeper/\n") {
		t.Errorf("search for a folder:\n%s", out)
	}

	// rm, and the errors that follow.
	must(t, "rm", "/docs/b.txt")
	code, _, errs := dfmsRun(t, "get", "/docs/b.txt")
	if code != 1 || errs != "dfms: /docs/b.txt: no such file or folder\n" {
		t.Errorf("get of a removed file: exit %d, stderr %q", code, errs)
	}
	for _, args := range [][]string{
		{"get", "/nope/x"},
		{"get", "/docs"},                  // a folder
		{"mkdir", "/docs"},                // exists
		{"mv", "/docs/sub", "/missing/x"}, // no such parent
		{"versions", "/docs"},             // not a file
		{"restore", "/docs/sub", "--version", "9"},
	} {
		code, _, errs := dfmsRun(t, args...)
		if code != 1 || !strings.HasPrefix(errs, "dfms: ") || strings.Count(errs, "\n") != 1 {
			t.Errorf("dfms %s: exit %d, stderr %q; want 1 and one line", strings.Join(args, " "), code, errs)
		}
	}
	for _, args := range [][]string{
		{"ls", "a", "b"},
		{"put"},
		{"get", "--bogus", "/x"},
		{"restore", "/docs/sub"},
		{"put", "--multipart-threshold", "lots", "a.txt"},
		{"rm", "/"},
		{"ls", "--server", "ftp://example"},
		{"login", "--server", srv.URL}, // no --email, stdin not a terminal
	} {
		if code, _, errs := dfmsRun(t, args...); code != 2 {
			t.Errorf("dfms %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), code, errs)
		}
	}

	// logout forgets the credentials.
	must(t, "logout")
	if _, err := os.Stat(credFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("credentials left after logout: %v", err)
	}
	if code, _, _ := dfmsRun(t, "ls"); code != 1 {
		t.Errorf("ls after logout: exit %d, want 1", code)
	}
}

// login takes the email and password from DFMS_EMAIL and DFMS_PASSWORD
// when no flag gives them, as the README says.
func TestClientLoginFromEnvironment(t *testing.T) {
	env(t)
	srv := clienttest.NewServer(t, clienttest.Options{})
	t.Setenv("DFMS_SERVER", srv.URL)
	t.Setenv("DFMS_EMAIL", clienttest.Email)
	t.Setenv("DFMS_PASSWORD", "wrong password")
	withStdin(t, "", func() {
		if code, _, errs := dfmsRun(t, "login"); code != 1 || !strings.Contains(errs, "login to") {
			t.Errorf("login with a wrong DFMS_PASSWORD: exit %d, stderr %q", code, errs)
		}
	})
	t.Setenv("DFMS_PASSWORD", clienttest.Password)
	withStdin(t, "", func() { must(t, "login") })
	if creds, ok, err := loadCredentials(); err != nil || !ok || creds.Email != clienttest.Email {
		t.Fatalf("after a login from the environment: %+v, %v, %v", creds, ok, err)
	}
	must(t, "ls")
}

// A refresh during a command replaces the stored tokens.
func TestClientRefreshPersists(t *testing.T) {
	config, _ := env(t)
	srv := clienttest.NewServer(t, clienttest.Options{})
	t.Setenv("DFMS_SERVER", srv.URL)
	withStdin(t, clienttest.Password+"\n", func() {
		must(t, "login", "--email", clienttest.Email) // stdin not a terminal: the password is read from it
	})
	credFile := filepath.Join(config, "dfms", "credentials.json")
	creds, ok, err := loadCredentials()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	old := creds.RefreshToken
	creds.AccessToken = srv.ExpiredAccessToken(t)
	if err := saveCredentials(creds); err != nil {
		t.Fatal(err)
	}
	must(t, "ls")
	creds, _, _ = loadCredentials()
	if creds.RefreshToken == old || creds.AccessToken == "" {
		t.Error("the refreshed tokens were not stored")
	}
	if fi, _ := os.Stat(credFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode after a refresh = %o", fi.Mode().Perm())
	}
	must(t, "ls") // and they work
}

// partCounter counts the multipart part uploads that reach the API, and
// fails the first attempt at one part number.
type partCounter struct {
	mu     sync.Mutex
	parts  []string
	ranges []string
	failOn string // a part number to fail once
}

func (p *partCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		if rg := r.Header.Get("Range"); rg != "" {
			p.ranges = append(p.ranges, rg)
		}
		i := strings.Index(r.URL.Path, "/part/")
		fail := false
		if i >= 0 && r.Method == http.MethodPut {
			n := r.URL.Path[i+len("/part/"):]
			p.parts = append(p.parts, n)
			if n == p.failOn {
				fail, p.failOn = true, ""
			}
		}
		p.mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":{"code":"SERVICE_UNAVAILABLE","message":"storage is briefly unavailable"}}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (p *partCounter) take() (parts, ranges []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	parts, ranges = p.parts, p.ranges
	p.parts, p.ranges = nil, nil
	return parts, ranges
}

func randomFile(t *testing.T, p string, n int) []byte {
	t.Helper()
	b := testkit.RandBytes(uint64(n), n)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClientPutResumesMultipart(t *testing.T) {
	_, cache := env(t)
	pc := &partCounter{failOn: "3"}
	srv := clienttest.NewServer(t, clienttest.Options{PartSize: 1 << 20, Wrap: pc.wrap})
	loginCLI(t, srv)
	dir := t.TempDir()
	big := filepath.Join(dir, "big.bin")
	data := randomFile(t, big, 3<<20+4321) // 4 parts

	code, _, errs := dfmsRun(t, "put", "--multipart-threshold", "1MiB", "--progress", big, "/big.bin")
	if code != 1 || !strings.Contains(errs, "storage is briefly unavailable") {
		t.Fatalf("interrupted put: exit %d, stderr %q", code, errs)
	}
	if parts, _ := pc.take(); !slices.Equal(parts, []string{"1", "2", "3"}) {
		t.Errorf("first attempt sent parts %v, want [1 2 3]", parts)
	}
	states, _ := filepath.Glob(filepath.Join(cache, "dfms", "uploads", "*.json"))
	if len(states) != 1 {
		t.Fatalf("upload states after the interruption: %v", states)
	}

	code, out, errs := dfmsRun(t, "put", "--multipart-threshold", "1MiB", "--progress", big, "/big.bin")
	if code != 0 || !strings.Contains(errs, "resuming") {
		t.Fatalf("resumed put: exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
	if parts, _ := pc.take(); !slices.Equal(parts, []string{"3", "4"}) {
		t.Errorf("resume sent parts %v, want [3 4]", parts)
	}
	if !strings.Contains(errs, "MiB") { // the bar was drawn
		t.Errorf("no progress bar on stderr: %q", errs)
	}
	if states, _ := filepath.Glob(filepath.Join(cache, "dfms", "uploads", "*.json")); len(states) != 0 {
		t.Errorf("upload state kept after success: %v", states)
	}
	got := filepath.Join(dir, "got.bin")
	must(t, "get", "/big.bin", got)
	if b, _ := os.ReadFile(got); !bytes.Equal(b, data) {
		t.Error("downloaded file differs from the uploaded one")
	}
}

func TestClientGetResumes(t *testing.T) {
	env(t)
	pc := &partCounter{}
	srv := clienttest.NewServer(t, clienttest.Options{Wrap: pc.wrap})
	loginCLI(t, srv)
	dir := t.TempDir()
	data := randomFile(t, filepath.Join(dir, "f.bin"), 1<<20+99)
	must(t, "put", filepath.Join(dir, "f.bin"))
	var es []client.Entry
	json.Unmarshal([]byte(must(t, "ls", "--json", "/f.bin")), &es)
	dst := filepath.Join(dir, "out.bin")
	if err := os.WriteFile(dst+"."+es[0].Checksum[:16]+client.PartialSuffix, data[:5000], 0o600); err != nil {
		t.Fatal(err)
	}
	pc.take()
	must(t, "get", "/f.bin", dst)
	if _, ranges := pc.take(); !slices.Equal(ranges, []string{"bytes=5000-"}) {
		t.Errorf("ranges requested: %v, want [bytes=5000-]", ranges)
	}
	if b, _ := os.ReadFile(dst); !bytes.Equal(b, data) {
		t.Error("resumed download differs")
	}
	// To standard output.
	code, out, _ := dfmsRun(t, "get", "/f.bin", "-")
	if code != 0 || out != string(data) {
		t.Errorf("get to stdout: exit %d, %d bytes", code, len(out))
	}
}

func TestByteSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"1048576", 1 << 20}, {"64MiB", 64 << 20}, {"64m", 64 << 20}, {"512K", 512 << 10}, {"2 GB", 2 << 30}, {"10b", 10}} {
		var b byteSize
		if err := b.Set(tc.in); err != nil || int64(b) != tc.want {
			t.Errorf("Set(%q) = %d, %v; want %d", tc.in, b, err, tc.want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "0", "1.5M", "99999999999T"} {
		var b byteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) = %d, want an error", bad, b)
		}
	}
}

// The real binary, as a user runs it: the password through a pipe, the
// exit codes of the process.
func TestClientBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the dfms binary")
	}
	// Built before env changes HOME and XDG_CACHE_HOME, where the go
	// command finds its caches.
	bin := dfmsBinary(t)
	config, cache := env(t)
	srv := clienttest.NewServer(t, clienttest.Options{})
	dfms := func(stdin string, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+config, "XDG_CACHE_HOME="+cache, "DFMS_SERVER="+srv.URL)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := dfms(clienttest.Password+"\n", "login", "--email", clienttest.Email, "--password-stdin"); code != 0 {
		t.Fatalf("login: %d %s", code, out)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.txt"), "via the binary")
	if code, out := dfms("", "put", filepath.Join(dir, "x.txt"), "/x.txt"); code != 0 {
		t.Fatalf("put: %d %s", code, out)
	}
	if code, out := dfms("", "get", "/x.txt", "-"); code != 0 || out != "via the binary" {
		t.Errorf("get: %d %q", code, out)
	}
	if code, out := dfms("", "get", "/missing.txt"); code != 1 || out != "dfms: /missing.txt: no such file or folder\n" {
		t.Errorf("get of a missing file: %d %q", code, out)
	}
	if code, out := dfms("", "mv", "/x.txt"); code != 2 {
		t.Errorf("mv with one argument: %d %q", code, out)
	}
}
