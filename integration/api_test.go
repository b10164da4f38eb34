package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
)

// This file drives the REST API of a real `dfms server` process: the
// harness (one server per backend, an HTTP client that refuses 5xx, curl),
// the README walk-through and the functional checks. The attacks and bad
// input are in api_attack_test.go.

// apiServer is a running server and what a test needs to reach it.
type apiServer struct {
	backend string // "sqlite" or "postgres"
	base    string // http://127.0.0.1:port
	data    string // the data directory (keys/ lives there)
	p       *proc
	stopped bool // the process has exited and p.Done was received
}

// testChunking makes small files span several chunks, so the chunk-level
// endpoints and deduplication are exercised without megabytes of data.
var testChunking = []string{
	"DFMS_CHUNKING_MIN_SIZE=4096",
	"DFMS_CHUNKING_AVG_SIZE=16384",
	"DFMS_CHUNKING_MAX_SIZE=65536",
}

// baseEnv is the environment of every API test server: small chunks, and
// auth limits high enough for tests that register many users from one
// address (the rate-limit test sets its own).
func baseEnv(extra ...string) []string {
	env := append([]string{"DFMS_RATE_LIMIT_AUTH=100000", "DFMS_LOG_LEVEL=warn", "DFMS_GC_INTERVAL=-1s"}, testChunking...)
	return append(env, extra...)
}

// startAPIServer starts one server on the given backend ("sqlite": the
// embedded default; "postgres": PostgreSQL metadata and S3 chunks).
func startAPIServer(t *testing.T, backend string, env []string) *apiServer {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	args := []string{"--data", data}
	if backend == "postgres" {
		args = append(args, "--metadata", testenv.Postgres(t), "--chunks", testenv.S3(t))
	}
	p := startServer(t, dir, env, args...)
	s := &apiServer{backend: backend, base: "http://" + p.addr, data: data, p: p}
	t.Cleanup(func() {
		if !s.stopped { // stop it first: its log is written until it exits
			p.Cmd.Process.Kill()
			<-p.Done
			s.stopped = true
		}
		if t.Failed() {
			var lines []string // the log lines, without race reports' stacks
			for _, l := range strings.Split(p.Logs.String(), "\n") {
				if strings.HasPrefix(l, "time=") || strings.HasPrefix(l, "{") {
					lines = append(lines, l)
				}
			}
			t.Logf("%s server log:\n%s", backend, tail(strings.Join(lines, "\n"), 4000))
		}
	})
	return s
}

// finish stops the server with SIGTERM and fails the test on an unclean
// exit or a race report (the binary is built with -race, and exits with
// status 66 after reporting one).
func (s *apiServer) finish(t *testing.T) {
	t.Helper()
	if err := s.p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-s.p.Done:
		s.stopped = true
	case <-time.After(30 * time.Second):
		t.Fatalf("the %s server did not stop within 30 s of SIGTERM", s.backend)
	}
	logs := s.p.Logs.String()
	if i := strings.Index(logs, "WARNING: DATA RACE"); i >= 0 {
		report := logs[i:]
		if j := strings.Index(report[1:], "=================="); j >= 0 {
			report = report[:j+1]
		}
		t.Errorf("the %s server (built with -race) reported %d data race(s); the first:\n%s",
			s.backend, strings.Count(logs, "WARNING: DATA RACE"), report)
		return
	}
	if err != nil {
		t.Errorf("the %s server exited with %v after SIGTERM", s.backend, err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// forEachBackend runs body once against a server on the embedded default
// (subtest "sqlite") and once against PostgreSQL + S3 (subtest
// "postgres"), each server started once for the whole body.
//
// The two run in parallel: most of the time goes to bcrypt (cost 12, slow
// under -race) inside each server process, so two servers use two CPUs.
func forEachBackend(t *testing.T, env []string, body func(t *testing.T, s *apiServer)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startAPIServer(t, backend, env)
			body(t, s)
			s.finish(t)
		})
	}
}

// ---- HTTP client ----

// client is one user's view of a server. Every response it sees is checked
// for a 5xx (507, the quota answer, and 501, an operation the server does
// not support, excepted): no request a client can make may produce a
// server error.
type client struct {
	s      *apiServer
	token  string
	email  string
	userID int64
	root   int64
}

// response is a fully read response.
type response struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

func (r *response) String() string {
	return fmt.Sprintf("%s %s: %d %s", r.method, r.path, r.status, tail(string(r.body), 600))
}

// hdr is a header list: name, value, name, value…
type hdr []string

// do sends a request. body may be nil, a []byte, a string or an io.Reader
// (sent chunked, without a Content-Length).
func (c *client) do(t *testing.T, method, path string, body any, h hdr) *response {
	t.Helper()
	r, err := c.send(method, path, body, h)
	if err != nil {
		t.Fatal(err)
	}
	if r.status >= 500 && r.status != http.StatusInsufficientStorage && r.status != http.StatusNotImplemented {
		t.Errorf("server error: %v", r)
	}
	return r
}

// send is do without a testing.T, for other goroutines; the caller checks
// the status.
func (c *client) send(method, path string, body any, h hdr) (*response, error) {
	var rd io.Reader
	length := int64(-1)
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, length = bytes.NewReader(b), int64(len(b))
	case string:
		rd, length = strings.NewReader(b), int64(len(b))
	case io.Reader:
		rd = struct{ io.Reader }{b} // hide the type: NewRequest would set a Content-Length
	default:
		return nil, fmt.Errorf("send: body of type %T", body)
	}
	req, err := http.NewRequest(method, c.s.base+path, rd)
	if err != nil {
		return nil, err
	}
	if length >= 0 {
		req.ContentLength = length
		if length == 0 {
			req.Body = http.NoBody
		}
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the body: %w", method, path, err)
	}
	return &response{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// json does a request with a JSON body (v marshalled; a string or []byte
// is sent as is).
func (c *client) json(t *testing.T, method, path string, v any) *response {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case nil:
		return c.do(t, method, path, nil, nil)
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	return c.do(t, method, path, b, hdr{"Content-Type", "application/json"})
}

func (c *client) get(t *testing.T, path string) *response {
	t.Helper()
	return c.do(t, "GET", path, nil, nil)
}

// want fails unless r has the status.
func (r *response) want(t *testing.T, status int) *response {
	t.Helper()
	if r.status != status {
		t.Errorf("%s %s: got status %d, want %d; body %s", r.method, r.path, r.status, status, tail(string(r.body), 600))
	}
	return r
}

// decode decodes the JSON body into v.
func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s %s: decoding %q: %v", r.method, r.path, tail(string(r.body), 300), err)
	}
}

// obj returns the JSON body as a map.
func (r *response) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

// envelope is the API's error body.
type envelope struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// wantErr fails unless r has the status and an error envelope with the
// code (any code if code is "").
func (r *response) wantErr(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s %s: got status %d, want %d; body %s", r.method, r.path, r.status, status, tail(string(r.body), 600))
		return
	}
	var e envelope
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Errorf("%s %s: got body %q, want the error envelope: %v", r.method, r.path, tail(string(r.body), 300), err)
		return
	}
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("%s %s: got envelope %s, want a code and a message", r.method, r.path, r.body)
	}
	if code != "" && e.Error.Code != code {
		t.Errorf("%s %s: got code %q, want %q (message %q)", r.method, r.path, e.Error.Code, code, e.Error.Message)
	}
	if id := r.header.Get("X-Request-ID"); e.Error.RequestID == "" || e.Error.RequestID != id {
		t.Errorf("%s %s: got request_id %q, want the X-Request-ID header %q", r.method, r.path, e.Error.RequestID, id)
	}
}

// fileJSON is an entry as the API shows it.
type fileJSON struct {
	ID          int64  `json:"id"`
	ParentID    int64  `json:"parent_id"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	IsDirectory bool   `json:"is_directory"`
	Size        int64  `json:"size"`
	MIMEType    string `json:"mime_type"`
	Checksum    string `json:"checksum"`
	Version     int64  `json:"version"`
	DeletedAt   string `json:"deleted_at"`
}

type versionJSON struct {
	Version    int64  `json:"version"`
	Size       int64  `json:"size"`
	Checksum   string `json:"checksum"`
	ChunkCount int    `json:"chunk_count"`
	Current    bool   `json:"current"`
}

type usageJSON struct {
	UsedBytes    int64 `json:"used_bytes"`
	HeldBytes    int64 `json:"held_bytes"`
	DedupBytes   int64 `json:"deduplicated_bytes"`
	QuotaBytes   int64 `json:"quota_bytes"`
	FileCount    int64 `json:"file_count"`
	FolderCount  int64 `json:"folder_count"`
	VersionCount int64 `json:"version_count"`
}

// authJSON is the answer to register, login and refresh.
type authJSON struct {
	User struct {
		ID     int64  `json:"id"`
		Email  string `json:"email"`
		Role   string `json:"role"`
		Active bool   `json:"active"`
		Quota  int64  `json:"quota_bytes"`
		Root   int64  `json:"root_folder_id"`
	} `json:"user"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

const testPassword = "correct horse battery"

var userSeq struct {
	sync.Mutex
	n int
}

// newUser registers a user with a unique email and returns its client.
func newUser(t *testing.T, s *apiServer, prefix string) *client {
	t.Helper()
	c, _ := register(t, s, prefix)
	return c
}

// register registers a user with a unique email and returns its client and
// the whole answer (with the refresh token).
func register(t *testing.T, s *apiServer, prefix string) (*client, authJSON) {
	t.Helper()
	userSeq.Lock()
	userSeq.n++
	email := fmt.Sprintf("%s%d@example.com", prefix, userSeq.n)
	userSeq.Unlock()
	anon := &client{s: s}
	r := anon.json(t, "POST", "/api/v1/auth/register", map[string]string{
		"email": email, "password": testPassword, "display_name": prefix})
	r.want(t, http.StatusCreated)
	var a authJSON
	r.decode(t, &a)
	if a.AccessToken == "" || a.User.ID == 0 || a.User.Root == 0 {
		t.Fatalf("register %s: got %s, want tokens, a user id and a root folder", email, r.body)
	}
	return &client{s: s, token: a.AccessToken, email: email, userID: a.User.ID, root: a.User.Root}, a
}

// login logs an existing account in.
func login(t *testing.T, s *apiServer, email, password string) (*client, authJSON) {
	t.Helper()
	anon := &client{s: s}
	r := anon.json(t, "POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	r.want(t, http.StatusOK)
	var a authJSON
	r.decode(t, &a)
	return &client{s: s, token: a.AccessToken, email: email, userID: a.User.ID, root: a.User.Root}, a
}

// upload stores data as name in folder (0: the root) with a raw body.
func (c *client) upload(t *testing.T, folder int64, name string, data []byte) fileJSON {
	t.Helper()
	h := hdr{"Content-Type", "application/octet-stream", "X-File-Name", escapeName(name)}
	if folder != 0 {
		h = append(h, "X-Folder-ID", strconv.FormatInt(folder, 10))
	}
	r := c.do(t, "POST", "/api/v1/files/upload", data, h).want(t, http.StatusCreated)
	var f fileJSON
	r.decode(t, &f)
	if f.ID == 0 || f.Name != name || f.Size != int64(len(data)) || f.Checksum != sha(data) {
		t.Errorf("upload %q: got %+v, want id, name, size %d and checksum %s", name, f, len(data), sha(data))
	}
	return f
}

// escapeName percent-encodes a name for X-File-Name when it is not plain
// ASCII without '%'.
func escapeName(name string) string {
	for _, r := range name {
		if r < 0x20 || r > 0x7e || r == '%' {
			return pathEscape(name)
		}
	}
	return name
}

func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x21 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// initMultipart starts a multipart upload with the init request body and
// returns the upload's URL path.
func (c *client) initMultipart(t *testing.T, body map[string]any) string {
	t.Helper()
	var up struct {
		UploadID string `json:"upload_id"`
	}
	c.json(t, "POST", "/api/v1/files/upload/multipart/init", body).want(t, http.StatusCreated).decode(t, &up)
	return "/api/v1/files/upload/multipart/" + up.UploadID
}

func (c *client) mkdir(t *testing.T, parent int64, name string) fileJSON {
	t.Helper()
	body := map[string]any{"name": name}
	if parent != 0 {
		body["parent_id"] = parent
	}
	r := c.json(t, "POST", "/api/v1/folders", body).want(t, http.StatusCreated)
	var out struct{ Folder fileJSON }
	r.decode(t, &out)
	if out.Folder.ID == 0 || out.Folder.Type != "folder" {
		t.Fatalf("mkdir %q: got %s", name, r.body)
	}
	return out.Folder
}

// download returns the current content of a file.
func (c *client) download(t *testing.T, id int64) []byte {
	t.Helper()
	r := c.get(t, fmt.Sprintf("/api/v1/files/%d/download", id)).want(t, http.StatusOK)
	return r.body
}

// list returns one folder's entries (0: the root), at most 100.
func (c *client) list(t *testing.T, folder int64) []fileJSON {
	t.Helper()
	path := "/api/v1/files?page_size=100"
	if folder != 0 {
		path += "&folder_id=" + strconv.FormatInt(folder, 10)
	}
	var out struct{ Files []fileJSON }
	c.get(t, path).want(t, http.StatusOK).decode(t, &out)
	return out.Files
}

func (c *client) usage(t *testing.T) usageJSON {
	t.Helper()
	var u usageJSON
	c.get(t, "/api/v1/storage/usage").want(t, http.StatusOK).decode(t, &u)
	return u
}

func (c *client) versions(t *testing.T, id int64) []versionJSON {
	t.Helper()
	var out struct{ Versions []versionJSON }
	c.get(t, fmt.Sprintf("/api/v1/files/%d/versions", id)).want(t, http.StatusOK).decode(t, &out)
	return out.Versions
}

func (c *client) trash(t *testing.T) []fileJSON {
	t.Helper()
	var out struct{ Items []fileJSON }
	c.get(t, "/api/v1/trash").want(t, http.StatusOK).decode(t, &out)
	return out.Items
}

func ids(fs []fileJSON) []int64 {
	out := make([]int64, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	slices.Sort(out)
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ---- curl ----

// curl runs the real curl (or, where it is missing, an equivalent request
// through net/http built from the same arguments) in dir and returns the
// status and the body (empty when -o wrote it to a file).
func curl(t *testing.T, dir string, args ...string) (int, []byte) {
	t.Helper()
	if path, err := exec.LookPath("curl"); err == nil {
		full := append([]string{"-sS", "-w", "\n%{http_code}"}, args...)
		cmd := exec.Command(path, full...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl %q: %v\n%s", args, err, stderr.Bytes())
		}
		i := bytes.LastIndexByte(out, '\n')
		status, err := strconv.Atoi(string(out[i+1:]))
		if i < 0 || err != nil {
			t.Fatalf("curl %q: no status in %q", args, out)
		}
		if status >= 500 && status != http.StatusInsufficientStorage {
			t.Errorf("curl %q: server error %d: %s", args, status, out[:i])
		}
		return status, out[:i]
	}
	return curlHTTP(t, dir, args)
}

// curlHTTP interprets the curl flags the README uses: -X, -H, -d,
// --data-binary @file, -F name=@file, -o file.
func curlHTTP(t *testing.T, dir string, args []string) (int, []byte) {
	t.Helper()
	method, url, out := "", "", ""
	h := http.Header{}
	var body []byte
	var form *multipart.Writer
	var formBuf bytes.Buffer
	readArg := func(v string) []byte {
		if strings.HasPrefix(v, "@") {
			b, err := os.ReadFile(filepath.Join(dir, v[1:]))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		return []byte(v)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			i++
			if i >= len(args) {
				t.Fatalf("curl: %s needs an argument", a)
			}
			return args[i]
		}
		switch a {
		case "-X":
			method = next()
		case "-H":
			k, v, _ := strings.Cut(next(), ":")
			h.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-d", "--data", "--data-binary":
			body = readArg(next())
			if h.Get("Content-Type") == "" && a != "--data-binary" {
				h.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		case "-F":
			if form == nil {
				form = multipart.NewWriter(&formBuf)
			}
			k, v, _ := strings.Cut(next(), "=")
			if strings.HasPrefix(v, "@") {
				ph := textproto.MIMEHeader{}
				ph.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, k, filepath.Base(v[1:])))
				ph.Set("Content-Type", "application/octet-stream")
				w, err := form.CreatePart(ph)
				if err != nil {
					t.Fatal(err)
				}
				w.Write(readArg(v))
			} else {
				form.WriteField(k, v)
			}
		case "-o":
			out = next()
		default:
			if strings.HasPrefix(a, "-") {
				t.Fatalf("curl fallback: unsupported flag %s", a)
			}
			url = a
		}
	}
	if form != nil {
		form.Close()
		body = formBuf.Bytes()
		h.Set("Content-Type", form.FormDataContentType())
	}
	if method == "" {
		method = "GET"
		if body != nil {
			method = "POST"
		}
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusInsufficientStorage {
		t.Errorf("%s %s: server error %d: %s", method, url, resp.StatusCode, b)
	}
	if out != "" {
		if err := os.WriteFile(filepath.Join(dir, out), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, nil
	}
	return resp.StatusCode, b
}

// The administrator of the TestAPI servers (DFMS_ADMIN_EMAIL/PASSWORD).
const adminEmail, adminPassword = "root@example.com", "admin password 1"

// TestAPI is the API suite: the README walk-through, the functional
// checks, another user's ids and the token attacks, each against one
// server on the embedded default and one on PostgreSQL + S3. The servers
// are shared by the cases (starting one costs a bcrypt hash, seconds under
// -race); every case registers users of its own. Bad input and the rate
// limits need servers configured for them (TestAPIBadInput,
// TestAPIRateLimit).
func TestAPI(t *testing.T) {
	env := baseEnv("DFMS_ADMIN_EMAIL="+adminEmail, "DFMS_ADMIN_PASSWORD="+adminPassword)
	forEachBackend(t, env, func(t *testing.T, s *apiServer) {
		t.Run("readme", func(t *testing.T) { testReadme(t, s) })
		t.Run("functional", func(t *testing.T) { testFunctional(t, s) })
		t.Run("cross-user", func(t *testing.T) { testCrossUser(t, s) })
		t.Run("jwt", func(t *testing.T) { testJWT(t, s) })
	})
}

// ---- the README ----

// testReadme runs the curl examples of the README, verbatim but for the
// address, $TOKEN and the ids, and checks every answer and every
// downloaded byte.
func testReadme(t *testing.T, s *apiServer) {
	dir := t.TempDir()
	base := s.base
	decode := func(what string, b []byte, v any) {
		t.Helper()
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v in %q", what, err, b)
		}
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	readBack := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// Health check
	code, b := curl(t, dir, base+"/health")
	var health map[string]any
	decode("health", b, &health)
	if code != 200 || health["status"] != "ok" {
		t.Fatalf("health: got %d %s, want 200 {\"status\":\"ok\"}", code, b)
	}

	// Register a user (Quick start)
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/auth/register",
		"-H", "Content-Type: application/json",
		"-d", `{"email":"demo@example.com","password":"securepass123","display_name":"Demo User"}`)
	if code != http.StatusCreated {
		t.Fatalf("register demo: got %d %s, want 201", code, b)
	}

	// Register
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/auth/register",
		"-H", "Content-Type: application/json",
		"-d", `{"email":"user@example.com","password":"mypassword","display_name":"John"}`)
	var reg authJSON
	decode("register", b, &reg)
	if code != http.StatusCreated || reg.User.Email != "user@example.com" || reg.AccessToken == "" {
		t.Fatalf("register: got %d %s, want 201 with the user and tokens", code, b)
	}

	// Login
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/auth/login",
		"-H", "Content-Type: application/json",
		"-d", `{"email":"user@example.com","password":"mypassword"}`)
	if code != http.StatusOK {
		t.Fatalf("login: got %d %s, want 200", code, b)
	}
	var top map[string]any
	decode("login", b, &top)
	for _, k := range []string{"access_token", "refresh_token", "token_type", "expires_in"} {
		if _, ok := top[k]; !ok {
			t.Errorf("login: no top-level %q in %s", k, b)
		}
	}
	var lg authJSON
	decode("login", b, &lg)
	if !strings.HasPrefix(lg.AccessToken, "eyJ") || !strings.HasPrefix(lg.RefreshToken, "eyJ") ||
		lg.TokenType != "Bearer" || lg.ExpiresIn != 900 {
		t.Errorf("login: got token_type %q, expires_in %d, tokens %.10q/%.10q; want Bearer, 900, eyJ…",
			lg.TokenType, lg.ExpiresIn, lg.AccessToken, lg.RefreshToken)
	}
	TOKEN := lg.AccessToken
	auth := "Authorization: Bearer " + TOKEN

	// Upload a file
	report := testkit.RandBytes(1, 200<<10+123)
	write("report.pdf", report)
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/files/upload",
		"-H", auth,
		"-H", "Content-Type: application/octet-stream",
		"-H", "X-File-Name: report.pdf",
		"--data-binary", "@report.pdf")
	var up fileJSON
	decode("upload", b, &up)
	if code != http.StatusCreated || up.Name != "report.pdf" || up.Size != int64(len(report)) ||
		up.Checksum != sha(report) || up.Version != 1 || up.ParentID != reg.User.Root {
		t.Fatalf("upload: got %d %s, want 201 report.pdf of %d bytes, checksum %s, version 1 in the root",
			code, b, len(report), sha(report))
	}
	if up.MIMEType != "application/pdf" {
		t.Errorf("upload: got mime_type %q, want application/pdf", up.MIMEType)
	}

	// A folder, and an upload into it with X-Folder-ID.
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/folders",
		"-H", auth, "-H", "Content-Type: application/json", "-d", `{"name":"reports"}`)
	var folder struct{ Folder fileJSON }
	decode("create folder", b, &folder)
	if code != http.StatusCreated || folder.Folder.Name != "reports" || !folder.Folder.IsDirectory {
		t.Fatalf("create folder: got %d %s, want 201", code, b)
	}
	inFolder := testkit.RandBytes(2, 50<<10)
	write("q3-report.txt", inFolder)
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/files/upload",
		"-H", auth,
		"-H", "Content-Type: application/octet-stream",
		"-H", "X-File-Name: q3-report.txt",
		"-H", fmt.Sprintf("X-Folder-ID: %d", folder.Folder.ID),
		"--data-binary", "@q3-report.txt")
	var up2 fileJSON
	decode("upload into folder", b, &up2)
	if code != http.StatusCreated || up2.ParentID != folder.Folder.ID || up2.Checksum != sha(inFolder) {
		t.Fatalf("upload into folder: got %d %s, want 201 with parent_id %d", code, b, folder.Folder.ID)
	}

	// List files
	code, b = curl(t, dir, base+"/api/v1/files", "-H", auth)
	var list struct {
		Files []fileJSON
		Total int
	}
	decode("list", b, &list)
	if code != 200 || !slices.Equal(ids(list.Files), []int64{min(up.ID, folder.Folder.ID), max(up.ID, folder.Folder.ID)}) || list.Total != 2 {
		t.Errorf("list: got %d %s, want 200 with report.pdf and reports/", code, b)
	}

	// Download a file
	code, b = curl(t, dir, fmt.Sprintf("%s/api/v1/files/%d/download", base, up.ID),
		"-H", auth,
		"-o", "downloaded_report.pdf")
	if code != 200 {
		t.Fatalf("download: got %d %s, want 200", code, b)
	}
	if got := readBack("downloaded_report.pdf"); !bytes.Equal(got, report) {
		t.Errorf("download: got %d bytes (sha %s), want the %d uploaded (sha %s)", len(got), sha(got), len(report), sha(report))
	}
	code, _ = curl(t, dir, fmt.Sprintf("%s/api/v1/files/%d/download", base, up2.ID), "-H", auth, "-o", "q3.out")
	if got := readBack("q3.out"); code != 200 || !bytes.Equal(got, inFolder) {
		t.Errorf("download from the folder: got %d, %d bytes; want 200 and the uploaded bytes", code, len(got))
	}

	// Search files
	code, b = curl(t, dir, base+"/api/v1/search?q=report", "-H", auth)
	var found struct {
		Results []fileJSON
		Total   int
	}
	decode("search", b, &found)
	want := []int64{up.ID, folder.Folder.ID, up2.ID} // names with "report", folders included
	slices.Sort(want)
	if code != 200 || !slices.Equal(ids(found.Results), want) || found.Total != 3 {
		t.Errorf("search: got %d %s, want 200 with report.pdf, reports/ and q3-report.txt", code, b)
	}

	// Delete a file
	code, b = curl(t, dir, "-X", "DELETE", fmt.Sprintf("%s/api/v1/files/%d", base, up.ID), "-H", auth)
	if code != 200 {
		t.Errorf("delete: got %d %s, want 200", code, b)
	}
	code, b = curl(t, dir, fmt.Sprintf("%s/api/v1/files/%d", base, up.ID), "-H", auth)
	if code != http.StatusNotFound {
		t.Errorf("get after delete: got %d %s, want 404", code, b)
	}
	code, b = curl(t, dir, base+"/api/v1/files", "-H", auth)
	decode("list after delete", b, &list)
	if !slices.Equal(ids(list.Files), []int64{folder.Folder.ID}) {
		t.Errorf("list after delete: got %s, want only reports/", b)
	}

	// Multipart 1. Initialize, exactly as the README declares it (1 GiB):
	// accepted, then aborted.
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/files/upload/multipart/init",
		"-H", auth,
		"-H", "Content-Type: application/json",
		"-d", `{"file_name":"large_video.mp4","file_size":1073741824}`)
	var initRes struct {
		UploadID string `json:"upload_id"`
		PartSize int64  `json:"part_size"`
		MaxParts int    `json:"max_parts"`
	}
	decode("multipart init", b, &initRes)
	if code != http.StatusCreated || initRes.UploadID == "" || initRes.PartSize <= 0 || initRes.MaxParts != 10000 {
		t.Fatalf("multipart init: got %d %s, want 201 with upload_id, part_size and max_parts", code, b)
	}
	code, b = curl(t, dir, "-X", "DELETE", base+"/api/v1/files/upload/multipart/"+initRes.UploadID, "-H", auth)
	if code != 200 {
		t.Errorf("multipart abort: got %d %s, want 200", code, b)
	}

	// The same flow with the real size of the file, in three parts.
	video := testkit.RandBytes(3, 300<<10+77)
	parts := [][]byte{video[:120<<10], video[120<<10 : 240<<10], video[240<<10:]}
	for i, p := range parts {
		write(fmt.Sprintf("part%d.bin", i+1), p)
	}
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/files/upload/multipart/init",
		"-H", auth,
		"-H", "Content-Type: application/json",
		"-d", fmt.Sprintf(`{"file_name":"large_video.mp4","file_size":%d}`, len(video)))
	decode("multipart init", b, &initRes)
	if code != http.StatusCreated || initRes.UploadID == "" {
		t.Fatalf("multipart init: got %d %s, want 201", code, b)
	}
	// 2. Upload parts (out of order: the order is the part number's)
	for _, n := range []int{2, 1, 3} {
		code, b = curl(t, dir, "-X", "PUT", fmt.Sprintf("%s/api/v1/files/upload/multipart/%s/part/%d", base, initRes.UploadID, n),
			"-H", auth,
			"--data-binary", fmt.Sprintf("@part%d.bin", n))
		var part struct {
			PartNumber int    `json:"part_number"`
			Size       int64  `json:"size"`
			Checksum   string `json:"checksum"`
		}
		decode("part", b, &part)
		if code != 200 || part.PartNumber != n || part.Size != int64(len(parts[n-1])) || part.Checksum != sha(parts[n-1]) {
			t.Fatalf("part %d: got %d %s, want 200, size %d, checksum %s", n, code, b, len(parts[n-1]), sha(parts[n-1]))
		}
	}
	// 3. Complete
	code, b = curl(t, dir, "-X", "POST", fmt.Sprintf("%s/api/v1/files/upload/multipart/%s/complete", base, initRes.UploadID),
		"-H", auth)
	var done struct{ File fileJSON }
	decode("complete", b, &done)
	if code != http.StatusCreated || done.File.Name != "large_video.mp4" || done.File.Size != int64(len(video)) || done.File.Checksum != sha(video) {
		t.Fatalf("complete: got %d %s, want 201 large_video.mp4 of %d bytes with checksum %s", code, b, len(video), sha(video))
	}
	code, _ = curl(t, dir, fmt.Sprintf("%s/api/v1/files/%d/download", base, done.File.ID), "-H", auth, "-o", "video.out")
	if got := readBack("video.out"); code != 200 || !bytes.Equal(got, video) {
		t.Errorf("download of the multipart file: got %d, %d bytes (sha %s); want 200 and %d bytes (sha %s)",
			code, len(got), sha(got), len(video), sha(video))
	}

	// multipart/form-data
	photo := testkit.RandBytes(4, 90<<10)
	write("photo.jpg", photo)
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/files/upload",
		"-H", auth,
		"-F", "file=@photo.jpg")
	var form fileJSON
	decode("form upload", b, &form)
	if code != http.StatusCreated || form.Name != "photo.jpg" || form.Size != int64(len(photo)) || form.Checksum != sha(photo) {
		t.Fatalf("form upload: got %d %s, want 201 photo.jpg of %d bytes", code, b, len(photo))
	}
	if form.MIMEType != "image/jpeg" {
		t.Errorf("form upload: got mime_type %q, want image/jpeg", form.MIMEType)
	}
	code, _ = curl(t, dir, fmt.Sprintf("%s/api/v1/files/%d/download", base, form.ID), "-H", auth, "-o", "photo.out")
	if got := readBack("photo.out"); code != 200 || !bytes.Equal(got, photo) {
		t.Errorf("download of the form upload: got %d, %d bytes; want 200 and the uploaded bytes", code, len(got))
	}
	// A form upload into a folder, with the folder_id field first.
	write("notes.txt", inFolder[:1000])
	code, b = curl(t, dir, "-X", "POST", base+"/api/v1/files/upload",
		"-H", auth,
		"-F", fmt.Sprintf("folder_id=%d", folder.Folder.ID),
		"-F", "file=@notes.txt")
	decode("form upload into folder", b, &form)
	if code != http.StatusCreated || form.ParentID != folder.Folder.ID || form.Name != "notes.txt" {
		t.Errorf("form upload into a folder: got %d %s, want 201 with parent_id %d", code, b, folder.Folder.ID)
	}
}

// ---- functional checks ----

// testFunctional checks versions, copy, folders, trash, ranges, ETags,
// the change feed, the admin guard and the operational endpoints.
func testFunctional(t *testing.T, s *apiServer) {
	// One user for all the cases (registering costs a bcrypt hash); each
	// case works in its own folder and checks usage by difference.
	c := newUser(t, s, "functional")
	t.Run("versions", func(t *testing.T) { testVersions(t, c) })
	t.Run("copy", func(t *testing.T) { testCopy(t, c) })
	t.Run("folders", func(t *testing.T) { testFolders(t, c) })
	t.Run("range and etag", func(t *testing.T) { testRangeETag(t, c) })
	t.Run("changes", func(t *testing.T) { testChanges(t, c) })
	t.Run("admin guard", func(t *testing.T) { testAdminGuard(t, c) })
	t.Run("operations", func(t *testing.T) { testOperations(t, s) })
}

func testVersions(t *testing.T, c *client) {
	dir := c.mkdir(t, 0, "docs")
	content := [][]byte{testkit.RandBytes(10, 40<<10), testkit.RandBytes(11, 41<<10), testkit.RandBytes(12, 42<<10)}
	var f fileJSON
	for i, b := range content {
		got := c.upload(t, dir.ID, "plan.txt", b)
		if i > 0 && got.ID != f.ID {
			t.Fatalf("upload %d of plan.txt: got id %d, want the same file %d", i+1, got.ID, f.ID)
		}
		if got.Version != int64(i+1) {
			t.Errorf("upload %d of plan.txt: got version %d, want %d", i+1, got.Version, i+1)
		}
		f = got
	}
	vs := c.versions(t, f.ID)
	if len(vs) != 3 || vs[0].Version != 3 || !vs[0].Current || vs[2].Version != 1 || vs[2].Current {
		t.Fatalf("versions: got %+v, want 3, 2, 1 (3 current)", vs)
	}
	for _, v := range vs {
		if want := content[v.Version-1]; v.Size != int64(len(want)) || v.Checksum != sha(want) {
			t.Errorf("version %d: got size %d checksum %s, want %d %s", v.Version, v.Size, v.Checksum, len(want), sha(want))
		}
	}
	r := c.get(t, fmt.Sprintf("/api/v1/files/%d/versions/1/download", f.ID)).want(t, http.StatusOK)
	if !bytes.Equal(r.body, content[0]) {
		t.Errorf("download of version 1: got %d bytes, want the first upload", len(r.body))
	}
	if got := r.header.Get("X-File-Version"); got != "1" {
		t.Errorf("download of version 1: got X-File-Version %q, want 1", got)
	}

	var restored struct {
		File         fileJSON
		Version      versionJSON
		RestoredFrom int64 `json:"restored_from"`
	}
	c.do(t, "POST", fmt.Sprintf("/api/v1/files/%d/versions/1/restore", f.ID), nil, nil).want(t, http.StatusCreated).decode(t, &restored)
	if restored.Version.Version != 4 || restored.Version.Checksum != sha(content[0]) || restored.File.Version != 4 || restored.RestoredFrom != 1 {
		t.Errorf("restore of version 1: got %+v, want version 4 with version 1's checksum", restored)
	}
	if got := c.download(t, f.ID); !bytes.Equal(got, content[0]) {
		t.Errorf("current content after restoring version 1: got %d bytes, want version 1's", len(got))
	}
	r = c.get(t, fmt.Sprintf("/api/v1/files/%d/versions/4/download", f.ID)).want(t, http.StatusOK)
	if !bytes.Equal(r.body, content[0]) {
		t.Errorf("version 4: got %d bytes, want version 1's", len(r.body))
	}

	c.do(t, "DELETE", fmt.Sprintf("/api/v1/files/%d/versions/2", f.ID), nil, nil).want(t, http.StatusOK)
	var nums []int64
	for _, v := range c.versions(t, f.ID) {
		nums = append(nums, v.Version)
	}
	if !slices.Equal(nums, []int64{4, 3, 1}) {
		t.Errorf("versions after deleting 2: got %v, want [4 3 1]", nums)
	}
	c.get(t, fmt.Sprintf("/api/v1/files/%d/versions/2/download", f.ID)).wantErr(t, http.StatusNotFound, "NOT_FOUND")
	// The current version cannot be deleted out from under the file.
	if r := c.do(t, "DELETE", fmt.Sprintf("/api/v1/files/%d/versions/4", f.ID), nil, nil); r.status < 400 {
		t.Errorf("deleting the current version: got %d, want a 4xx", r.status)
	}
	if got := c.download(t, f.ID); !bytes.Equal(got, content[0]) {
		t.Errorf("content after the version deletes: got %d bytes, want version 1's", len(got))
	}
}

func testCopy(t *testing.T, c *client) {
	src := c.mkdir(t, 0, "copy-src")
	dst := c.mkdir(t, 0, "copy-dst")
	data := testkit.RandBytes(20, 100<<10)
	f := c.upload(t, src.ID, "a.bin", data)
	before := c.usage(t)
	var cp struct{ File fileJSON }
	c.json(t, "POST", fmt.Sprintf("/api/v1/files/%d/copy", f.ID), nil).want(t, http.StatusCreated).decode(t, &cp)
	if cp.File.ID == f.ID || cp.File.Name != "a (copy).bin" || cp.File.Checksum != f.Checksum || cp.File.ParentID != src.ID {
		t.Errorf("copy in place: got %+v, want a new a (copy).bin with the same checksum", cp.File)
	}
	var cp2 struct{ File fileJSON }
	c.json(t, "POST", fmt.Sprintf("/api/v1/files/%d/copy", f.ID), map[string]any{"parent_id": dst.ID, "name": "b.bin"}).
		want(t, http.StatusCreated).decode(t, &cp2)
	if cp2.File.ParentID != dst.ID || cp2.File.Name != "b.bin" {
		t.Errorf("copy into dst: got %+v, want dst/b.bin", cp2.File)
	}
	for _, id := range []int64{cp.File.ID, cp2.File.ID} {
		if got := c.download(t, id); !bytes.Equal(got, data) {
			t.Errorf("copy %d: got %d bytes, want the original's", id, len(got))
		}
	}
	after := c.usage(t)
	if after.DedupBytes != before.DedupBytes {
		t.Errorf("deduplicated_bytes: got %d after two copies, want %d (a copy stores no data)", after.DedupBytes, before.DedupBytes)
	}
	if after.UsedBytes != before.UsedBytes+2*int64(len(data)) {
		t.Errorf("used_bytes: got %d, want %d + 2×%d", after.UsedBytes, before.UsedBytes, len(data))
	}
	// Copying onto an existing name is a conflict, and a folder cannot be copied.
	c.json(t, "POST", fmt.Sprintf("/api/v1/files/%d/copy", f.ID), map[string]any{"name": "a.bin"}).wantErr(t, http.StatusConflict, "ALREADY_EXISTS")
	// Copying a folder is not supported: 501 NOT_SUPPORTED (errors.go maps
	// the kind so), or a 4xx.
	if r := c.json(t, "POST", fmt.Sprintf("/api/v1/files/%d/copy", dst.ID), nil); r.status != http.StatusNotImplemented && (r.status < 400 || r.status >= 500) {
		t.Errorf("copy of a folder: got %d %s, want 501 or a 4xx", r.status, r.body)
	}
}

func testFolders(t *testing.T, c *client) {
	before := c.usage(t)
	rootBefore := c.list(t, 0)
	a := c.mkdir(t, 0, "a")
	b := c.mkdir(t, a.ID, "b")
	cc := c.mkdir(t, b.ID, "c")
	leaf := c.upload(t, cc.ID, "leaf.txt", []byte("leaf"))
	mid := c.upload(t, b.ID, "mid.txt", []byte("mid"))

	var root struct {
		Contents []fileJSON
		FolderID int64 `json:"folder_id"`
		Total    int
	}
	c.get(t, "/api/v1/folders/root/contents").want(t, http.StatusOK).decode(t, &root)
	if want := append(ids(rootBefore), a.ID); root.FolderID != c.root || !slices.Equal(ids(root.Contents), want) || root.Total != len(want) {
		t.Errorf("root contents: got %+v, want folder %d holding %v", root, c.root, want)
	}
	var bc struct{ Contents []fileJSON }
	c.get(t, fmt.Sprintf("/api/v1/folders/%d/contents", b.ID)).want(t, http.StatusOK).decode(t, &bc)
	if want := []int64{min(cc.ID, mid.ID), max(cc.ID, mid.ID)}; !slices.Equal(ids(bc.Contents), want) {
		t.Errorf("a/b contents: got %v, want %v", ids(bc.Contents), want)
	}
	var got struct{ File fileJSON }
	c.get(t, fmt.Sprintf("/api/v1/folders/%d", cc.ID)).want(t, http.StatusOK).decode(t, &got)
	if got.File.Name != "c" || got.File.ParentID != b.ID {
		t.Errorf("GET folder c: got %+v", got.File)
	}

	// Cycles.
	c.json(t, "PUT", fmt.Sprintf("/api/v1/folders/%d/move", a.ID), map[string]any{"new_parent_id": cc.ID}).wantErr(t, http.StatusConflict, "")
	c.json(t, "PUT", fmt.Sprintf("/api/v1/folders/%d/move", a.ID), map[string]any{"new_parent_id": a.ID}).wantErr(t, http.StatusConflict, "")
	c.json(t, "PATCH", fmt.Sprintf("/api/v1/folders/%d", b.ID), map[string]any{"parent_id": cc.ID}).wantErr(t, http.StatusConflict, "")
	// A legal move and rename.
	var moved struct{ File fileJSON }
	c.json(t, "PUT", fmt.Sprintf("/api/v1/folders/%d/move", cc.ID), map[string]any{"new_parent_id": nil}).want(t, http.StatusOK).decode(t, &moved)
	if moved.File.ParentID != c.root {
		t.Errorf("move c to the root: got parent %d, want %d", moved.File.ParentID, c.root)
	}
	c.json(t, "PATCH", fmt.Sprintf("/api/v1/folders/%d", cc.ID), map[string]any{"name": "c2", "parent_id": b.ID}).want(t, http.StatusOK).decode(t, &moved)
	if moved.File.ParentID != b.ID || moved.File.Name != "c2" {
		t.Errorf("move c back as c2: got %+v", moved.File)
	}
	// A file is not deleted through /folders, nor a folder through /files.
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/folders/%d", mid.ID), nil, nil).wantErr(t, http.StatusBadRequest, "NOT_A_FOLDER")
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/files/%d", b.ID), nil, nil).wantErr(t, http.StatusBadRequest, "IS_A_FOLDER")

	// Recursive delete: the subtree goes to the trash as one item.
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/folders/%d", a.ID), nil, nil).want(t, http.StatusOK)
	for _, id := range []int64{a.ID, b.ID, cc.ID, leaf.ID, mid.ID} {
		c.get(t, fmt.Sprintf("/api/v1/files/%d", id)).wantErr(t, http.StatusNotFound, "NOT_FOUND")
	}
	if tr := c.trash(t); !slices.Equal(ids(tr), []int64{a.ID}) {
		t.Errorf("trash: got %v, want only a/ (%d)", ids(tr), a.ID)
	}
	if r := c.list(t, 0); !slices.Equal(ids(r), ids(rootBefore)) {
		t.Errorf("root after deleting a/: got %v, want %v", ids(r), ids(rootBefore))
	}
	// An entry inside a trashed folder is not a trash item of its own.
	c.do(t, "POST", fmt.Sprintf("/api/v1/trash/%d/restore", leaf.ID), nil, nil).wantErr(t, http.StatusNotFound, "")
	c.do(t, "POST", fmt.Sprintf("/api/v1/trash/%d/restore", a.ID), nil, nil).want(t, http.StatusOK)
	if got := c.download(t, leaf.ID); string(got) != "leaf" {
		t.Errorf("leaf after restoring a/: got %q", got)
	}
	if tr := c.trash(t); len(tr) != 0 {
		t.Errorf("trash after restore: got %v, want empty", ids(tr))
	}

	// Delete again and purge: gone for good.
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/folders/%d", a.ID), nil, nil).want(t, http.StatusOK)
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/trash/%d", b.ID), nil, nil).wantErr(t, http.StatusNotFound, "") // not a trash root
	var purged struct {
		Entries  int64
		Versions int64
	}
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/trash/%d", a.ID), nil, nil).want(t, http.StatusOK).decode(t, &purged)
	if purged.Entries != 5 || purged.Versions != 2 {
		t.Errorf("purge of a/: got %+v, want 5 entries and 2 versions", purged)
	}
	if tr := c.trash(t); len(tr) != 0 {
		t.Errorf("trash after purge: got %v, want empty", ids(tr))
	}
	c.do(t, "POST", fmt.Sprintf("/api/v1/trash/%d/restore", a.ID), nil, nil).wantErr(t, http.StatusNotFound, "NOT_FOUND")
	c.get(t, fmt.Sprintf("/api/v1/files/%d/download", leaf.ID)).wantErr(t, http.StatusNotFound, "NOT_FOUND")
	if u := c.usage(t); u != before {
		t.Errorf("usage after purge: got %+v, want %+v as before", u, before)
	}
	// The root itself cannot be moved or deleted.
	if r := c.do(t, "DELETE", "/api/v1/folders/root", nil, nil); r.status < 400 {
		t.Errorf("DELETE the root: got %d, want a 4xx", r.status)
	}
	if r := c.json(t, "PATCH", "/api/v1/folders/root", map[string]any{"name": "x"}); r.status < 400 {
		t.Errorf("rename the root: got %d, want a 4xx", r.status)
	}
}

func testRangeETag(t *testing.T, c *client) {
	dir := c.mkdir(t, 0, "range")
	data := testkit.RandBytes(30, 150<<10+7)
	f := c.upload(t, dir.ID, "r.bin", data)
	path := fmt.Sprintf("/api/v1/files/%d/download", f.ID)
	size := int64(len(data))
	tests := []struct {
		rng        string
		start, end int64 // inclusive
	}{
		{"bytes=0-0", 0, 0},
		{"bytes=0-99", 0, 99},
		{"bytes=1000-70000", 1000, 70000}, // crosses chunk boundaries
		{"bytes=100000-", 100000, size - 1},
		{"bytes=-500", size - 500, size - 1},
		{"bytes=-999999999", 0, size - 1},
		{fmt.Sprintf("bytes=%d-%d", size-1, size+1000), size - 1, size - 1},
	}
	for _, tc := range tests {
		r := c.do(t, "GET", path, nil, hdr{"Range", tc.rng}).want(t, http.StatusPartialContent)
		want := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, size)
		if got := r.header.Get("Content-Range"); got != want {
			t.Errorf("Range %s: got Content-Range %q, want %q", tc.rng, got, want)
		}
		if !bytes.Equal(r.body, data[tc.start:tc.end+1]) {
			t.Errorf("Range %s: got %d bytes, want bytes %d..%d", tc.rng, len(r.body), tc.start, tc.end)
		}
	}

	r := c.get(t, path).want(t, http.StatusOK)
	etag := r.header.Get("ETag")
	if etag != `"`+sha(data)+`"` || r.header.Get("Accept-Ranges") != "bytes" || r.header.Get("X-Checksum-SHA256") != sha(data) {
		t.Errorf("download headers: got ETag %q, Accept-Ranges %q, X-Checksum-SHA256 %q", etag, r.header.Get("Accept-Ranges"), r.header.Get("X-Checksum-SHA256"))
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		r := c.do(t, "GET", path, nil, hdr{"If-None-Match", inm}).want(t, http.StatusNotModified)
		if len(r.body) != 0 || r.header.Get("ETag") != etag {
			t.Errorf("If-None-Match %s: got %d body bytes, ETag %q; want none and %q", inm, len(r.body), r.header.Get("ETag"), etag)
		}
	}
	if r := c.do(t, "GET", path, nil, hdr{"If-None-Match", `"stale"`}).want(t, http.StatusOK); !bytes.Equal(r.body, data) {
		t.Errorf("If-None-Match with a stale tag: got %d bytes, want the file", len(r.body))
	}
	// If-Range with a stale tag: the whole file.
	if r := c.do(t, "GET", path, nil, hdr{"Range", "bytes=0-9", "If-Range", `"stale"`}).want(t, http.StatusOK); !bytes.Equal(r.body, data) {
		t.Errorf("If-Range stale: got %d bytes, want the whole file", len(r.body))
	}
	if r := c.do(t, "GET", path, nil, hdr{"Range", "bytes=0-9", "If-Range", etag}).want(t, http.StatusPartialContent); !bytes.Equal(r.body, data[:10]) {
		t.Errorf("If-Range current: got %q, want the first 10 bytes", r.body)
	}
	// A new version changes the tag.
	c.upload(t, dir.ID, "r.bin", data[:100])
	c.do(t, "GET", path, nil, hdr{"If-None-Match", etag}).want(t, http.StatusOK)
}

func testChanges(t *testing.T, c *client) {
	type feed struct {
		Cursor  int64
		More    bool
		Changes []struct {
			Seq    int64
			Op     string
			FileID int64 `json:"file_id"`
		}
	}
	var f0 feed
	c.get(t, "/api/v1/changes").want(t, http.StatusOK).decode(t, &f0)
	for f0.More { // drain the earlier cases' changes
		c.get(t, fmt.Sprintf("/api/v1/changes?cursor=%d", f0.Cursor)).want(t, http.StatusOK).decode(t, &f0)
	}
	dir := c.mkdir(t, 0, "changes")
	f := c.upload(t, dir.ID, "x.txt", []byte("x"))
	var f1 feed
	c.get(t, fmt.Sprintf("/api/v1/changes?cursor=%d", f0.Cursor)).want(t, http.StatusOK).decode(t, &f1)
	if f1.Cursor <= f0.Cursor || len(f1.Changes) == 0 || f1.Changes[len(f1.Changes)-1].FileID != f.ID {
		t.Fatalf("changes after an upload: got %+v (from cursor %d), want the cursor to advance and name file %d", f1, f0.Cursor, f.ID)
	}
	var f2 feed
	c.get(t, fmt.Sprintf("/api/v1/changes?cursor=%d", f1.Cursor)).want(t, http.StatusOK).decode(t, &f2)
	if f2.Cursor != f1.Cursor || len(f2.Changes) != 0 {
		t.Errorf("changes at the head: got %+v, want none and the same cursor %d", f2, f1.Cursor)
	}

	// A long poll returns promptly once another request uploads.
	type result struct {
		r       *response
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		r, err := c.send("GET", fmt.Sprintf("/api/v1/changes?cursor=%d&wait=5s", f1.Cursor), nil, nil)
		done <- result{r, err, time.Since(start)}
	}()
	time.Sleep(400 * time.Millisecond)
	g := c.upload(t, dir.ID, "y.txt", []byte("y"))
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	res.r.want(t, http.StatusOK)
	var f3 feed
	res.r.decode(t, &f3)
	if res.elapsed > 3*time.Second {
		t.Errorf("long poll: returned after %v, want promptly after the upload (well before wait=5s)", res.elapsed)
	}
	if len(f3.Changes) == 0 || f3.Changes[0].FileID != g.ID || f3.Cursor <= f1.Cursor {
		t.Errorf("long poll: got %+v, want the upload of %d", f3, g.ID)
	}
	// With nothing happening, it waits about as long as asked.
	start = time.Now()
	c.get(t, fmt.Sprintf("/api/v1/changes?cursor=%d&wait=1s", f3.Cursor)).want(t, http.StatusOK)
	if el := time.Since(start); el < 900*time.Millisecond || el > 4*time.Second {
		t.Errorf("idle long poll of 1s: took %v", el)
	}
	c.get(t, "/api/v1/changes?cursor=-1").wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
	c.get(t, "/api/v1/changes?wait=soon").wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
}

func testAdminGuard(t *testing.T, c *client) {
	tests := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/admin/users", nil},
		{"PATCH", fmt.Sprintf("/api/v1/admin/users/%d", c.userID), map[string]any{"role": "admin"}},
		{"GET", "/api/v1/admin/nodes", nil},
		{"POST", "/api/v1/admin/nodes", map[string]any{"id": "n1", "endpoint": "file:///tmp/x"}},
		{"GET", "/api/v1/admin/stats", nil},
		{"POST", "/api/v1/admin/gc", nil},
	}
	for _, tc := range tests {
		c.json(t, tc.method, tc.path, tc.body).wantErr(t, http.StatusForbidden, "AUTH_FORBIDDEN")
	}
	var me struct{ User struct{ Role string } }
	c.get(t, "/api/v1/auth/me").want(t, http.StatusOK).decode(t, &me)
	if me.User.Role != "user" {
		t.Errorf("role after the refused self-promotion: got %q, want user", me.User.Role)
	}
	// Without a token, 401 rather than 403.
	anon := &client{s: c.s}
	anon.get(t, "/api/v1/admin/users").wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_MISSING")
}

func testOperations(t *testing.T, s *apiServer) {
	anon := &client{s: s}
	var ready struct {
		Status string
		Checks map[string]string
	}
	anon.get(t, "/ready").want(t, http.StatusOK).decode(t, &ready)
	if ready.Status != "ready" || ready.Checks["metadata"] != "ok" || ready.Checks["chunks"] != "ok" {
		t.Errorf("/ready: got %+v, want ready with metadata and chunks ok", ready)
	}
	r := anon.get(t, "/metrics").want(t, http.StatusOK)
	if !bytes.Contains(r.body, []byte("dfms_http_requests_total")) {
		t.Errorf("/metrics: no dfms_http_requests_total in %s", tail(string(r.body), 500))
	}
	if !bytes.Contains(r.body, []byte(`route="/api/v1/files/:id/download"`)) {
		t.Errorf("/metrics: no request count labelled with the download route")
	}
	anon.get(t, "/.well-known/jwks.json").want(t, http.StatusOK)
	anon.get(t, "/openapi.yaml").want(t, http.StatusOK)
	anon.get(t, "/no/such/route").wantErr(t, http.StatusNotFound, "NOT_FOUND")
	anon.do(t, "DELETE", "/health", nil, nil).wantErr(t, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
}
