package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
)

// harness is an API on real dependencies (SQLite metadata, chunks on disk,
// in a temporary directory) with one registered user.
type harness struct {
	api   *API
	h     http.Handler
	token string
	root  int64
}

// newHarness builds the API with cfg and registers one user. The bcrypt
// cost is the minimum, so that registering is cheap.
func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	a := newTestAPI(t, Deps{}, cfg)
	return (&harness{api: a, h: a.Handler()}).register(t, "fuzz@example.com", "fuzz password")
}

// newHarnessUser registers another user on hs's API and returns a harness
// that acts as them.
func newHarnessUser(t testing.TB, hs *harness, email string) *harness {
	t.Helper()
	return (&harness{api: hs.api, h: hs.h}).register(t, email, "another password")
}

// register registers a user with email and password on the API of hs,
// which has no user yet, and makes hs act as them.
func (hs *harness) register(t testing.TB, email, password string) *harness {
	t.Helper()
	rec := hs.do("POST", "/api/v1/auth/register", strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)),
		"Content-Type", "application/json")
	if rec.Code != http.StatusCreated {
		t.Fatalf("register %s: got %d %s, want 201", email, rec.Code, rec.Body)
	}
	var reg struct {
		AccessToken string `json:"access_token"`
		User        struct {
			Root int64 `json:"root_folder_id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &reg); err != nil || reg.AccessToken == "" {
		t.Fatalf("register %s: %v in %s", email, err, rec.Body)
	}
	hs.token, hs.root = reg.AccessToken, reg.User.Root
	return hs
}

// do serves one request with the user's token (and headers as name, value
// pairs) and returns the recorded answer.
func (hs *harness) do(method, target string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	return serve(hs.h, httptest.NewRequest(method, target, body), hs.token, hdr...)
}

// serve serves r on h with the bearer token (none if empty) and headers
// as name, value pairs, and returns the recorded answer.
func serve(h http.Handler, r *http.Request, token string, hdr ...string) *httptest.ResponseRecorder {
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// mustJSON serves a request that must succeed with want and decodes the
// answer into v.
func (hs *harness) mustJSON(t testing.TB, want int, method, target, body string, v any) {
	t.Helper()
	rec := hs.do(method, target, strings.NewReader(body), "Content-Type", "application/json")
	if rec.Code != want {
		t.Fatalf("%s %s: got %d %s, want %d", method, target, rec.Code, rec.Body, want)
	}
	if v != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, target, err, rec.Body)
		}
	}
}

// putChunk stores data as one chunk of the user's, which must be new to
// them (201), and returns its hash.
func (hs *harness) putChunk(t testing.TB, data []byte) string {
	t.Helper()
	h := sum(data)
	if rec := hs.do("PUT", "/api/v1/chunks/"+h, bytes.NewReader(data), "Content-Type", "application/octet-stream"); rec.Code != http.StatusCreated {
		t.Fatalf("put chunk: %d %s", rec.Code, rec.Body)
	}
	return h
}

// checkAnswer fails unless rec is an answer a client may get: never a 5xx
// other than 501 (an operation the server does not do) and 507 (quota),
// and every error in the envelope with a code, a message and the request
// id of the X-Request-ID header.
func checkAnswer(t testing.TB, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 && rec.Code != http.StatusNotImplemented && rec.Code != http.StatusInsufficientStorage {
		t.Fatalf("%s: got %d %s, want no server error", what, rec.Code, rec.Body)
	}
	if rec.Code < 400 {
		return
	}
	var e errorBody
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%s: got %d with body %q, want the error envelope: %v", what, rec.Code, rec.Body, err)
	}
	if e.Error.Code == "" || e.Error.Message == "" || e.Error.RequestID == "" || e.Error.RequestID != rec.Header().Get("X-Request-ID") {
		t.Fatalf("%s: got envelope %+v (X-Request-ID %q), want a code, a message and the request id", what, e.Error, rec.Header().Get("X-Request-ID"))
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: got Content-Type %q for an error, want application/json", what, ct)
	}
}

func TestParseRange(t *testing.T) {
	const size = 100
	tests := []struct {
		h           string
		off, length int64
		ok          bool
	}{
		{"bytes=0-0", 0, 1, true},
		{"bytes=0-99", 0, 100, true},
		{"bytes=0-", 0, 100, true},
		{"bytes=10-19", 10, 10, true},
		{"bytes=10-1000", 10, 90, true},
		{"bytes=99-", 99, 1, true},
		{"bytes=-1", 99, 1, true},
		{"bytes=-100", 0, 100, true},
		{"bytes=-1000", 0, 100, true},
		{"bytes=100-", 0, 0, false},
		{"bytes=100-200", 0, 0, false},
		{"bytes=-0", 0, 0, false},
		{"bytes=5-4", 0, 0, false},
		{"bytes=-", 0, 0, false},
		{"bytes=", 0, 0, false},
		{"bytes=a-b", 0, 0, false},
		{"bytes=0-1,5-6", 0, 0, false},
		{"bytes=1", 0, 0, false},
		{"bytes=--1", 0, 0, false},
		{"bytes=-1-2", 0, 0, false},
		{"bytes=99999999999999999999-", 0, 0, false},
		{"bytes=0-99999999999999999999", 0, 0, false},
		{"items=0-1", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		off, length, err := parseRange(tc.h, size)
		if (err == nil) != tc.ok || off != tc.off || length != tc.length {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v; want %d, %d, ok=%v", tc.h, size, off, length, err, tc.off, tc.length, tc.ok)
		}
	}
	// An empty file has no satisfiable range.
	for _, h := range []string{"bytes=0-", "bytes=-1", "bytes=0-0"} {
		if off, length, err := parseRange(h, 0); err == nil {
			t.Errorf("parseRange(%q, 0) = %d, %d, nil; want an error", h, off, length)
		}
	}
}

func TestETagMatches(t *testing.T) {
	const etag = `"abc"`
	tests := []struct {
		header string
		want   bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{` "x" ,W/"abc" `, true},
		{`*`, true},
		{`"abcd"`, false},
		{`abc`, false},
		{`"ABC"`, false},
		{``, false},
	}
	for _, tc := range tests {
		if got := etagMatches(tc.header, etag); got != tc.want {
			t.Errorf("etagMatches(%q, %q) = %v, want %v", tc.header, etag, got, tc.want)
		}
	}
}

func TestCopyName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"a.txt", "a (copy).txt"},
		{"a", "a (copy)"},
		{".bashrc", ".bashrc (copy)"},
		{"a.tar.gz", "a.tar (copy).gz"},
		{strings.Repeat("x", 250) + ".txt", strings.Repeat("x", 250) + ".txt"}, // would be too long: unchanged
	}
	for _, tc := range tests {
		got := copyName(tc.name)
		if got != tc.want {
			t.Errorf("copyName(%q) = %q, want %q", tc.name, got, tc.want)
		}
		if dfms.ValidName(got) != nil {
			t.Errorf("copyName(%q) = %q, not a valid name", tc.name, got)
		}
	}
}

// Every kind maps to a status and a code; unknown errors answer 500
// INTERNAL_ERROR without their text.
func TestFailEnvelope(t *testing.T) {
	a := &API{Deps: Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	for k := dfms.Other; k <= dfms.RateLimited; k++ {
		t.Run(k.String(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(rec)
			c.Request = httptest.NewRequest("GET", "/x", nil)
			c.Set(ctxRequestID, "req-1")
			a.fail(c, dfms.E("pkg.Op", k, fmt.Errorf("secret detail of %d", k)))
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("got body %q: %v", rec.Body, err)
			}
			ks, known := kindStatus[k]
			switch {
			case k == dfms.Other:
				if rec.Code != 500 || e.Error.Code != "INTERNAL_ERROR" || strings.Contains(e.Error.Message, "secret") {
					t.Errorf("got %d %+v, want 500 INTERNAL_ERROR without the error's text", rec.Code, e.Error)
				}
			case !known:
				t.Errorf("kind %v has no status", k)
			default:
				if rec.Code != ks.status || e.Error.Code != ks.code || e.Error.RequestID != "req-1" {
					t.Errorf("got %d %+v, want %d %s with request id req-1", rec.Code, e.Error, ks.status, ks.code)
				}
				if strings.Contains(e.Error.Message, "pkg.Op") {
					t.Errorf("message %q leaks the operation chain", e.Error.Message)
				}
			}
		})
	}
}

// The request id is echoed when it is sane and replaced otherwise.
func TestRequestID(t *testing.T) {
	hs := newHarness(t, Config{})
	tests := []struct {
		id   string
		echo bool
	}{
		{"abc-123", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"has space", false},
		{"tab\there", false},
		{"é", false},
		{"", false},
	}
	for _, tc := range tests {
		rec := hs.do("GET", "/api/v1/files/abc", nil, "X-Request-ID", tc.id)
		checkAnswer(t, "GET /api/v1/files/abc", rec)
		got := rec.Header().Get("X-Request-ID")
		if tc.echo && got != tc.id {
			t.Errorf("X-Request-ID %q: got %q back, want it echoed", tc.id, got)
		}
		if !tc.echo && (got == tc.id || len(got) != 16) {
			t.Errorf("X-Request-ID %q: got %q back, want a fresh 16-digit id", tc.id, got)
		}
	}
}

// Routes and methods that do not exist answer in the envelope too.
func TestUnknownRoutes(t *testing.T) {
	hs := newHarness(t, Config{})
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/nope", 404},
		{"GET", "/api/v1/nope", 404},
		{"DELETE", "/health", 405},
		{"PUT", "/api/v1/files", 405},
		{"GET", "/api/v1/files/1/versions/1/chunks", 404},
	}
	for _, tc := range tests {
		rec := hs.do(tc.method, tc.path, nil)
		checkAnswer(t, tc.method+" "+tc.path, rec)
		if rec.Code != tc.status {
			t.Errorf("%s %s: got %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
	}
}
