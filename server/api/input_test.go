package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// A NUL byte or bytes that are not UTF-8 in a search are bad input (400),
// not an internal error from the full-text index.
func TestSearchBadText(t *testing.T) {
	hs := newHarness(t, Config{})
	for _, target := range []string{
		"/api/v1/search?q=abc%00def",
		"/api/v1/search?q=%00",
		"/api/v1/search?q=abc%FF%FE",
		"/api/v1/search?type=text/%00",
	} {
		rec := hs.do("GET", target, nil)
		checkAnswer(t, target, rec)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s: got %d %s, want 400", target, rec.Code, rec.Body)
		}
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A commit that gives a stored chunk the wrong size is the client's
// mistake: 400, no false DATA_CORRUPT alarm in the log, nothing committed.
func TestCommitWrongChunkSizeIsBadInput(t *testing.T) {
	var logs syncBuffer
	a := newTestAPI(t, Deps{Log: slog.New(slog.NewTextHandler(&logs, nil))}, Config{})
	h := a.Handler()
	token := registerFrom(t, h, "192.0.2.1:1000", "alice@example.com")
	data := bytes.Repeat([]byte("chunk "), 1000)
	hash := sum(data)
	r := httptest.NewRequest("PUT", "/api/v1/chunks/"+hash, bytes.NewReader(data))
	r.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated {
		t.Fatalf("PUT chunk: got %d %s", rec.Code, rec.Body)
	}
	for _, size := range []int{len(data) - 1, len(data) + 1} {
		for _, deferred := range []bool{false, true} {
			body := fmt.Sprintf(`{"name":"f.txt","defer_checksum":%v,"chunks":[{"hash":%q,"size":%d}]}`, deferred, hash, size)
			rec := limitedRequest(h, "192.0.2.1:1000", "POST", "/api/v1/files/commit", body, "Authorization", "Bearer "+token)
			checkAnswer(t, "POST /files/commit", rec)
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "VALIDATION_FAILED") {
				t.Errorf("commit of a %d-byte chunk as %d bytes (deferred %v): got %d %s, want 400 VALIDATION_FAILED",
					len(data), size, deferred, rec.Code, rec.Body)
			}
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("bad input logged as an error:\n%s", logs.String())
	}
	rec = limitedRequest(h, "192.0.2.1:1000", "GET", "/api/v1/files", "", "Authorization", "Bearer "+token)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"total":0`) {
		t.Errorf("after the refused commits: GET /files = %d %s, want an empty root", rec.Code, rec.Body)
	}
}
