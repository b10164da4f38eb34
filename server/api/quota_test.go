package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dfms/dfms"
)

// usageOf is the caller's GET /storage/usage.
type usageOf struct {
	Used      int64 `json:"used_bytes"`
	Held      int64 `json:"held_bytes"`
	Quota     int64 `json:"quota_bytes"`
	Available int64 `json:"available_bytes"`
}

func (hs *harness) usage(t *testing.T) usageOf {
	t.Helper()
	var u usageOf
	hs.mustJSON(t, 200, "GET", "/api/v1/storage/usage", "", &u)
	return u
}

// setQuota gives the harness's first user a quota.
func (hs *harness) setQuota(t *testing.T, quota int64) {
	t.Helper()
	m := hs.api.Files.Meta()
	u, err := m.GetUserByEmail(context.Background(), "fuzz@example.com")
	if err != nil {
		t.Fatal(err)
	}
	u.QuotaBytes = quota
	if err := m.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

// wantError fails unless rec is the envelope with status and code.
func wantError(t *testing.T, what string, rec interface {
	Result() *http.Response
}, status int, code string) {
	t.Helper()
	res := rec.Result()
	var e errorBody
	if err := json.NewDecoder(res.Body).Decode(&e); err != nil || res.StatusCode != status || e.Error.Code != code {
		t.Errorf("%s: got %d %+v (%v), want %d %s", what, res.StatusCode, e.Error, err, status, code)
	}
}

// filled returns n bytes of b.
func filled(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// TestQuotaCountsHeldBytes: every byte a user makes the server keep counts
// against the quota. Chunks sent but not yet referenced and multipart
// parts are held bytes (until a commit references them, or they are
// collected), extended attributes are used bytes; each is refused with
// 507 QUOTA_EXCEEDED at admission, before anything is stored, when
// used + held + new would pass the quota.
func TestQuotaCountsHeldBytes(t *testing.T) {
	const quota = 1 << 20

	t.Run("chunks", func(t *testing.T) {
		hs := newHarness(t, Config{})
		hs.setQuota(t, quota)
		put := func(data []byte) *httptest.ResponseRecorder {
			return hs.do("PUT", "/api/v1/chunks/"+sum(data), bytes.NewReader(data), "Content-Type", "application/octet-stream")
		}
		var chunks [][]byte
		for i := range 4 {
			chunks = append(chunks, filled(byte(i+1), 512<<10))
		}
		for i, c := range chunks[:2] {
			if rec := put(c); rec.Code != http.StatusCreated {
				t.Fatalf("chunk %d within the quota: got %d %s, want 201", i, rec.Code, rec.Body)
			}
		}
		stored := hs.api.Files.Stats().BytesStored.Load()
		for i, c := range chunks[2:] {
			rec := put(c)
			checkAnswer(t, "a chunk over the quota", rec)
			wantError(t, fmt.Sprintf("chunk %d over the quota", i+2), rec, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			if _, err := hs.api.Files.Meta().GetChunk(context.Background(), dfms.Sum(c)); !dfms.Is(err, dfms.NotExist) {
				t.Errorf("chunk %d over the quota has a row: %v", i+2, err)
			}
		}
		if got := hs.api.Files.Stats().BytesStored.Load(); got != stored {
			t.Errorf("refused chunks stored %d bytes", got-stored)
		}
		if u := hs.usage(t); u.Used != 0 || u.Held != quota || u.Available != 0 {
			t.Errorf("usage after 1 MiB of chunks: got %+v, want used 0, held %d, available 0", u, quota)
		}
		// Sending a held chunk again costs nothing more.
		if rec := put(chunks[0]); rec.Code != http.StatusOK {
			t.Errorf("a held chunk again: got %d %s, want 200", rec.Code, rec.Body)
		}
		// A commit turns the held chunks into used bytes.
		body := fmt.Sprintf(`{"name":"f","defer_checksum":true,"chunks":[{"hash":%q,"size":%d},{"hash":%q,"size":%d}]}`,
			sum(chunks[0]), len(chunks[0]), sum(chunks[1]), len(chunks[1]))
		hs.mustJSON(t, 201, "POST", "/api/v1/files/commit", body, nil)
		if u := hs.usage(t); u.Used != quota || u.Held != 0 {
			t.Errorf("usage after the commit: got %+v, want used %d, held 0", u, quota)
		}
		wantError(t, "a chunk with the quota used", put(chunks[2]), http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
	})

	t.Run("writes of held chunks", func(t *testing.T) {
		// Chunks held with the quota full do not stop a write made of
		// them (a retry of a write that failed after storing them): its
		// commit turns them into used bytes.
		hs := newHarness(t, Config{})
		data := filled(8, 300<<10) // one chunk: below the minimum chunk size
		hs.setQuota(t, int64(len(data)))
		hs.putChunk(t, data)
		if rec := hs.do("POST", "/api/v1/files/upload", bytes.NewReader(data), "X-File-Name", "again.bin"); rec.Code != http.StatusCreated {
			t.Fatalf("an upload of the held chunk: got %d %s, want 201", rec.Code, rec.Body)
		}
		var up struct {
			ID string `json:"upload_id"`
		}
		hs.mustJSON(t, 201, "POST", "/api/v1/files/upload/multipart/init", `{"file_name":"parts.bin"}`, &up)
		rec := hs.do("PUT", "/api/v1/files/upload/multipart/"+up.ID+"/part/1", bytes.NewReader(data))
		wantError(t, "a part with the quota used", rec, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
		if u := hs.usage(t); u.Used != int64(len(data)) || u.Held != 0 {
			t.Errorf("usage: got %+v, want used %d, held 0", u, len(data))
		}
	})

	t.Run("parts", func(t *testing.T) {
		hs := newHarness(t, Config{})
		hs.setQuota(t, quota)
		var up struct {
			ID string `json:"upload_id"`
		}
		hs.mustJSON(t, 201, "POST", "/api/v1/files/upload/multipart/init", `{"file_name":"big.bin"}`, &up)
		part := func(n int, data []byte) *httptest.ResponseRecorder {
			return hs.do("PUT", fmt.Sprintf("/api/v1/files/upload/multipart/%s/part/%d", up.ID, n), bytes.NewReader(data))
		}
		status := func() string {
			return hs.do("GET", "/api/v1/files/upload/multipart/"+up.ID, nil).Body.String()
		}
		if rec := part(1, filled(1, 600<<10)); rec.Code != 200 {
			t.Fatalf("part 1: %d %s", rec.Code, rec.Body)
		}
		before := status()
		for _, size := range []int{600 << 10, 4 << 20} {
			rec := part(2, filled(2, size))
			checkAnswer(t, "a part over the quota", rec)
			wantError(t, fmt.Sprintf("a part of %d bytes over the quota", size), rec, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
		}
		if after := status(); after != before {
			t.Errorf("a refused part changed the upload: got %s, want %s", after, before)
		}
		if u := hs.usage(t); u.Used != 0 || u.Held != 600<<10 {
			t.Errorf("usage with a part of 600 KiB: got %+v, want held %d", u, 600<<10)
		}
		// Replacing a part charges the difference (while the new part
		// arrives, the old one is kept too).
		if rec := part(1, filled(3, 300<<10)); rec.Code != 200 {
			t.Fatalf("replacing part 1: %d %s", rec.Code, rec.Body)
		}
		if rec := part(2, filled(4, 600<<10)); rec.Code != 200 {
			t.Fatalf("part 2 within the quota: %d %s", rec.Code, rec.Body)
		}
		wantError(t, "part 3 past the quota", part(3, filled(5, 200<<10)), http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
		if rec := part(3, filled(5, 100<<10)); rec.Code != 200 {
			t.Fatalf("part 3 within the quota: %d %s", rec.Code, rec.Body)
		}
		// Sending a part again costs nothing, even with the quota full.
		if rec := part(3, filled(5, 100<<10)); rec.Code != 200 {
			t.Fatalf("part 3 again: %d %s", rec.Code, rec.Body)
		}
		if u := hs.usage(t); u.Held != 1000<<10 {
			t.Errorf("usage with parts of 1000 KiB: got %+v", u)
		}
		hs.mustJSON(t, 201, "POST", "/api/v1/files/upload/multipart/"+up.ID+"/complete", "", nil)
		if u := hs.usage(t); u.Used != 1000<<10 || u.Held != 0 {
			t.Errorf("usage after completing: got %+v, want used %d, held 0", u, 1000<<10)
		}
		// An aborted upload gives its parts' bytes back.
		hs.mustJSON(t, 201, "POST", "/api/v1/files/upload/multipart/init", `{"file_name":"other.bin"}`, &up)
		if rec := part(1, filled(6, 10<<10)); rec.Code != 200 {
			t.Fatalf("part: %d %s", rec.Code, rec.Body)
		}
		hs.mustJSON(t, 200, "DELETE", "/api/v1/files/upload/multipart/"+up.ID, "", nil)
		if u := hs.usage(t); u.Held != 0 {
			t.Errorf("usage after an abort: got %+v, want held 0", u)
		}
	})

	t.Run("xattrs", func(t *testing.T) {
		hs := newHarness(t, Config{})
		hs.setQuota(t, quota)
		var out struct {
			Entry struct {
				ID int64 `json:"id"`
			} `json:"entry"`
		}
		hs.mustJSON(t, 201, "POST", fmt.Sprintf("/api/v1/fs/entries/%d/children", hs.root), `{"name":"x","kind":"file","mode":420}`, &out)
		file := out.Entry.ID
		value, _ := json.Marshal(filled(7, 64<<10))
		set := func(name string) *httptest.ResponseRecorder {
			return hs.do("PUT", fmt.Sprintf("/api/v1/fs/entries/%d/xattrs/%s", file, name),
				strings.NewReader(`{"value":`+string(value)+`}`), "Content-Type", "application/json")
		}
		each := int64(len("user.00") + 64<<10) // a name and its value
		accepted := 0
		for i := range 32 {
			rec := set(fmt.Sprintf("user.%02d", i))
			if rec.Code == http.StatusNoContent {
				accepted++
				continue
			}
			checkAnswer(t, "an attribute over the quota", rec)
			wantError(t, fmt.Sprintf("attribute %d", i), rec, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
		}
		if want := int(quota / each); accepted != want {
			t.Errorf("accepted %d attributes of %d bytes under a quota of %d, want %d", accepted, each, quota, want)
		}
		if u := hs.usage(t); u.Used != int64(accepted)*each {
			t.Errorf("usage: got %+v, want used %d", u, int64(accepted)*each)
		}
		// Replacing one with a value of the same size costs nothing.
		if rec := set("user.00"); rec.Code != http.StatusNoContent {
			t.Errorf("replacing an attribute at the quota: %d %s", rec.Code, rec.Body)
		}
		if rec := hs.do("DELETE", fmt.Sprintf("/api/v1/fs/entries/%d/xattrs/user.00", file), nil); rec.Code != http.StatusNoContent {
			t.Fatalf("remove: %d %s", rec.Code, rec.Body)
		}
		if u := hs.usage(t); u.Used != int64(accepted-1)*each {
			t.Errorf("usage after a removal: got %+v, want used %d", u, int64(accepted-1)*each)
		}
		// Purging the file gives its attributes' bytes back.
		hs.mustJSON(t, 200, "DELETE", fmt.Sprintf("/api/v1/files/%d", file), "", nil)
		hs.mustJSON(t, 200, "DELETE", fmt.Sprintf("/api/v1/trash/%d", file), "", nil)
		if u := hs.usage(t); u.Used != 0 {
			t.Errorf("usage after purging the file: got %+v, want 0", u)
		}
	})
}

// TestMultipartSessionsBounded: a user may hold only so many multipart
// uploads open at once, and parts do not keep an upload alive past its
// lifetime.
func TestMultipartSessionsBounded(t *testing.T) {
	hs := newHarness(t, Config{})
	var ids []string
	for i := range DefaultMaxOpenUploads {
		var up struct {
			ID string `json:"upload_id"`
		}
		hs.mustJSON(t, 201, "POST", "/api/v1/files/upload/multipart/init", fmt.Sprintf(`{"file_name":"f%d"}`, i), &up)
		ids = append(ids, up.ID)
	}
	rec := hs.do("POST", "/api/v1/files/upload/multipart/init", strings.NewReader(`{"file_name":"one-too-many"}`), "Content-Type", "application/json")
	checkAnswer(t, "an upload over the cap", rec)
	wantError(t, "an upload over the cap", rec, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
	hs.mustJSON(t, 200, "DELETE", "/api/v1/files/upload/multipart/"+ids[0], "", nil)
	hs.mustJSON(t, 201, "POST", "/api/v1/files/upload/multipart/init", `{"file_name":"after-an-abort"}`, nil)
}
