package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms/server/ratelimit/memory"
	"github.com/dfms/dfms/server/ratelimit/ratelimittest"
)

// TestCommitWorkBounded: a commit costs the upload tier what sending its
// bytes as chunks would (one request per largest chunk), whatever its body
// weighs, and does not read the content back unless the client declares
// a checksum to verify (which is paid for by that charge). A 24 KB body of
// 256 references to one 4 MiB chunk makes a 1 GiB file: it must neither
// cost one request nor make the server read 1 GiB.
func TestCommitWorkBounded(t *testing.T) {
	hs := newHarness(t, Config{Limits: Limits{Upload: rateLimit(300)}})
	clock := ratelimittest.NewClock()
	hs.api.Limiter = memory.New(memory.WithClock(clock.Now))
	stats := hs.api.Files.Stats()
	max := hs.api.Files.Chunking().Max
	data := filled(9, max)
	h := hs.putChunk(t, data)
	refs := func(n int) string {
		r := make([]map[string]any, n)
		for i := range r {
			r[i] = map[string]any{"hash": h, "size": max}
		}
		b, _ := json.Marshal(r)
		return string(b)
	}
	commit := func(body string) *httptest.ResponseRecorder {
		return hs.do("POST", "/api/v1/files/commit", strings.NewReader(body), "Content-Type", "application/json")
	}
	lookup := func(name string) int {
		return hs.do("GET", fmt.Sprintf("/api/v1/fs/entries/%d/children/%s", hs.root, name), nil).Code
	}

	// 256 references: 1 GiB. Committed without reading a byte, for 256
	// of the 300 requests of the window.
	body := `{"name":"big-1","chunks":` + refs(256) + `}`
	if len(body) > 24<<10 {
		t.Fatalf("the body has %d bytes", len(body))
	}
	read := stats.BytesRead.Load()
	var out struct {
		File struct {
			ID   int64 `json:"id"`
			Size int64 `json:"size"`
		} `json:"file"`
	}
	rec := commit(body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("commit of 1 GiB: %d %s", rec.Code, rec.Body)
	}
	json.Unmarshal(rec.Body.Bytes(), &out)
	if out.File.Size != 1<<30 {
		t.Fatalf("committed %d bytes, want 1 GiB", out.File.Size)
	}
	if n := stats.BytesRead.Load() - read; n != 0 {
		t.Errorf("a commit without a checksum read %d bytes back, want 0", n)
	}
	// The same again passes the window's budget: refused before any work.
	rec = commit(`{"name":"big-2","chunks":` + refs(256) + `}`)
	checkAnswer(t, "a commit over the upload budget", rec)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a second 1 GiB commit in the window: got %d %s (Retry-After %q), want 429 with Retry-After", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if code := lookup("big-2"); code != http.StatusNotFound {
		t.Errorf("the refused commit's file: lookup got %d, want 404", code)
	}

	// A declared checksum is verified by reading the content back, once:
	// the charge pays for it.
	clock.Advance(time.Minute)
	whole := sha256.New()
	for range 64 {
		whole.Write(data)
	}
	sum := hex.EncodeToString(whole.Sum(nil))
	read = stats.BytesRead.Load()
	hs.mustJSON(t, 201, "POST", "/api/v1/files/commit", fmt.Sprintf(`{"name":"verified","checksum":%q,"chunks":%s}`, sum, refs(64)), nil)
	if n := stats.BytesRead.Load() - read; n != 64*int64(max) {
		t.Errorf("a verified commit of %d bytes read %d", 64*max, n)
	}

	// /fs/commits is charged the sum of its commits; a batch that makes
	// more than a window's budget can never be allowed: 413.
	clock.Advance(time.Minute)
	batch := func(n int) string {
		cs := make([]string, n)
		for i := range cs {
			cs[i] = fmt.Sprintf(`{"file_id":%d,"chunks":%s}`, out.File.ID, refs(256))
		}
		return `{"commits":[` + strings.Join(cs, ",") + `]}`
	}
	rec = hs.do("POST", "/api/v1/fs/commits", strings.NewReader(batch(2)), "Content-Type", "application/json")
	checkAnswer(t, "a batch over the window's budget", rec)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a batch of 2 GiB: got %d %s, want 413", rec.Code, rec.Body)
	}
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/commits", batch(1), nil)
	rec = hs.do("POST", "/api/v1/fs/commits", strings.NewReader(batch(1)), "Content-Type", "application/json")
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("a second batch of 1 GiB in the window: got %d %s, want 429", rec.Code, rec.Body)
	}
	var vs struct {
		Versions []struct{} `json:"versions"`
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/files/%d/versions", out.File.ID), "", &vs)
	if len(vs.Versions) != 2 {
		t.Errorf("big-1 has %d versions, want 2 (the refused batches commit nothing)", len(vs.Versions))
	}
	if n := stats.BytesRead.Load() - read; n != 64*int64(max) {
		t.Errorf("batched commits read %d bytes back, want none", n-64*int64(max))
	}
}

// TestMultipartCompleteChecksFirst: completing an upload that cannot be
// committed fails before its content is read back, so retrying a doomed
// completion costs nothing but the request.
func TestMultipartCompleteChecksFirst(t *testing.T) {
	hs := newHarness(t, Config{})
	var up struct {
		ID string `json:"upload_id"`
	}
	hs.mustJSON(t, 201, "POST", "/api/v1/files/upload/multipart/init", `{"file_name":"taken"}`, &up)
	if rec := hs.do("PUT", "/api/v1/files/upload/multipart/"+up.ID+"/part/1", strings.NewReader(strings.Repeat("x", 300<<10))); rec.Code != 200 {
		t.Fatalf("part: %d %s", rec.Code, rec.Body)
	}
	hs.mustJSON(t, 201, "POST", "/api/v1/folders", `{"name":"taken"}`, nil)
	stats := hs.api.Files.Stats()
	read := stats.BytesRead.Load()
	for range 3 {
		rec := hs.do("POST", "/api/v1/files/upload/multipart/"+up.ID+"/complete", nil)
		checkAnswer(t, "completing over a folder", rec)
		wantError(t, "completing over a folder", rec, http.StatusBadRequest, "IS_A_FOLDER")
	}
	if n := stats.BytesRead.Load() - read; n != 0 {
		t.Errorf("three doomed completions read %d bytes back, want 0", n)
	}
}

// TestCopyRestoreChargedByBytes: a server-side copy or restore makes a
// version of a file without a byte sent, and the version's first download
// reads it all for its checksum: each is charged the bytes it makes, as a
// commit is.
func TestCopyRestoreChargedByBytes(t *testing.T) {
	hs := newHarness(t, Config{Limits: Limits{Upload: rateLimit(300)}})
	clock := ratelimittest.NewClock()
	hs.api.Limiter = memory.New(memory.WithClock(clock.Now))
	max := hs.api.Files.Chunking().Max
	data := filled(9, max)
	h := hs.putChunk(t, data)
	refs := make([]map[string]any, 128) // 512 MiB
	for i := range refs {
		refs[i] = map[string]any{"hash": h, "size": max}
	}
	b, _ := json.Marshal(map[string]any{"name": "half", "chunks": refs})
	var out struct {
		File struct {
			ID int64 `json:"id"`
		} `json:"file"`
	}
	hs.mustJSON(t, 201, "POST", "/api/v1/files/commit", string(b), &out) // 1 + 128 of 300
	hs.mustJSON(t, 201, "POST", "/api/v1/files/commit", fmt.Sprintf(`{"file_id":%d,"chunks":[{"hash":%q,"size":%d}]}`, out.File.ID, h, max), nil)
	clock.Advance(time.Minute)
	copyOf := func(name string) *httptest.ResponseRecorder {
		return hs.do("POST", fmt.Sprintf("/api/v1/files/%d/copy", out.File.ID), strings.NewReader(`{"name":"`+name+`"}`), "Content-Type", "application/json")
	}
	restore := func() *httptest.ResponseRecorder {
		return hs.do("POST", fmt.Sprintf("/api/v1/files/%d/versions/1/restore", out.File.ID), nil)
	}
	if rec := restore(); rec.Code != http.StatusCreated { // 128 of 300
		t.Fatalf("restore of 512 MiB: %d %s", rec.Code, rec.Body)
	}
	if rec := copyOf("copy-1"); rec.Code != http.StatusCreated { // 256 of 300
		t.Fatalf("copy of 512 MiB: %d %s", rec.Code, rec.Body)
	}
	for what, rec := range map[string]*httptest.ResponseRecorder{"a copy": copyOf("copy-2"), "a restore": restore()} {
		checkAnswer(t, what, rec)
		if rec.Code != http.StatusTooManyRequests {
			t.Errorf("%s of 512 MiB past the window's budget: got %d %s, want 429", what, rec.Code, rec.Body)
		}
	}
}
