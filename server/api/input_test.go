package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
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

// A commit that gives a stored chunk the wrong size is the client's
// mistake: 400, no false DATA_CORRUPT alarm in the log, nothing committed.
func TestCommitWrongChunkSizeIsBadInput(t *testing.T) {
	var logs testkit.SyncBuffer
	a := newTestAPI(t, Deps{Log: slog.New(slog.NewTextHandler(&logs, nil))}, Config{})
	h := a.Handler()
	token := registerFrom(t, h, "192.0.2.1:1000", "alice@example.com")
	data := bytes.Repeat([]byte("chunk "), 1000)
	hash := sum(data)
	rec := serve(h, httptest.NewRequest("PUT", "/api/v1/chunks/"+hash, bytes.NewReader(data)), token)
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

// mime_type (and an upload's Content-Type) is a media type of at most 255
// bytes: anything else is refused with 400 and stores nothing. A valid one
// is kept as its bare, lower-case type, which downloads echo.
func TestMIMETypeValidated(t *testing.T) {
	hs := newHarness(t, Config{})
	huge := "application/" + strings.Repeat("x", 900<<10)
	bad := []string{huge, "application/" + strings.Repeat("x", 250), "text", "text/", "/plain", "not a type", "text/plain\r\nX-Evil: 1", "tëxt/plain"}

	up := func(name, ctype string) *httptest.ResponseRecorder {
		return hs.do("POST", "/api/v1/files/upload", strings.NewReader("content"), "X-File-Name", name, "Content-Type", ctype)
	}
	form := func(name, ctype string) *httptest.ResponseRecorder {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		hdr := textproto.MIMEHeader{}
		hdr.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
		hdr.Set("Content-Type", ctype)
		p, _ := w.CreatePart(hdr)
		p.Write([]byte("content"))
		w.Close()
		return hs.do("POST", "/api/v1/files/upload", &b, "Content-Type", w.FormDataContentType())
	}
	commit := func(name, ctype string) *httptest.ResponseRecorder {
		data := []byte("content of " + name)
		body, _ := json.Marshal(map[string]any{"name": name, "mime_type": ctype, "chunks": []any{map[string]any{"hash": hs.putChunk(t, data), "size": len(data)}}})
		return hs.do("POST", "/api/v1/files/commit", bytes.NewReader(body), "Content-Type", "application/json")
	}
	complete := func(name, ctype string) *httptest.ResponseRecorder {
		var init struct {
			UploadID string `json:"upload_id"`
		}
		hs.mustJSON(t, 201, "POST", "/api/v1/files/upload/multipart/init", `{"file_name":"`+name+`"}`, &init)
		if rec := hs.do("PUT", "/api/v1/files/upload/multipart/"+init.UploadID+"/part/1", strings.NewReader("part")); rec.Code != 200 {
			t.Fatalf("part: %d %s", rec.Code, rec.Body)
		}
		body, _ := json.Marshal(map[string]any{"mime_type": ctype})
		rec := hs.do("POST", "/api/v1/files/upload/multipart/"+init.UploadID+"/complete", bytes.NewReader(body), "Content-Type", "application/json")
		if rec.Code >= 400 { // the upload is still there to complete
			if st := hs.do("GET", "/api/v1/files/upload/multipart/"+init.UploadID, nil); st.Code != 200 {
				t.Errorf("a refused completion removed the upload: %d %s", st.Code, st.Body)
			}
		}
		return rec
	}
	ways := []struct {
		name string
		send func(name, ctype string) *httptest.ResponseRecorder
	}{{"upload", up}, {"form", form}, {"commit", commit}, {"complete", complete}}
	for _, w := range ways {
		for i, ct := range bad {
			if w.name == "form" && strings.ContainsAny(ct, "\r\n") {
				continue // a header a multipart writer cannot carry
			}
			name := fmt.Sprintf("%s-%d.bin", w.name, i)
			rec := w.send(name, ct)
			checkAnswer(t, w.name, rec)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("%s with type %.40q: got %d %.200s, want 400", w.name, ct, rec.Code, rec.Body)
			}
			if found := hs.do("GET", "/api/v1/search?q="+name, nil); !strings.Contains(found.Body.String(), `"total":0`) {
				t.Errorf("%s with type %.40q stored the file: %s", w.name, ct, found.Body)
			}
		}
		rec := w.send(w.name+"-good.bin", "Text/Plain; charset=utf-8")
		if rec.Code != http.StatusCreated {
			t.Fatalf("%s with a good type: %d %s", w.name, rec.Code, rec.Body)
		}
		var found struct {
			Results []struct {
				ID   int64  `json:"id"`
				MIME string `json:"mime_type"`
			} `json:"results"`
		}
		hs.mustJSON(t, 200, "GET", "/api/v1/search?q="+w.name+"-good.bin", "", &found)
		if len(found.Results) != 1 || found.Results[0].MIME != "text/plain" {
			t.Fatalf("%s with a good type: found %+v, want one file of type text/plain", w.name, found.Results)
		}
		dl := hs.do("GET", fmt.Sprintf("/api/v1/files/%d/download", found.Results[0].ID), nil)
		if ct := dl.Header().Get("Content-Type"); dl.Code != 200 || ct != "text/plain" {
			t.Errorf("%s: download answers %d with Content-Type %q, want text/plain", w.name, dl.Code, ct)
		}
	}
}

// Times are stored as nanoseconds since 1970 in 64 bits (1677..2262): an
// mtime outside that range is refused with 400 and changes nothing,
// instead of wrapping around (9999-12-31 was stored as 1816).
func TestMTimeOutOfRange(t *testing.T) {
	hs := newHarness(t, Config{})
	var made struct {
		Entry struct {
			ID    int64     `json:"id"`
			MTime time.Time `json:"mtime"`
		} `json:"entry"`
	}
	hs.mustJSON(t, 201, "POST", fmt.Sprintf("/api/v1/fs/entries/%d/children", hs.root), `{"name":"f","kind":"file","mode":420}`, &made)
	f := made.Entry
	data := []byte("some content")
	chunks := fmt.Sprintf(`[{"hash":%q,"size":%d}]`, hs.putChunk(t, data), len(data))
	for _, mt := range []string{"9999-12-31T00:00:00Z", "2262-04-12T00:00:00Z", "1677-09-20T00:00:00Z", "0001-01-01T00:00:00Z"} {
		for _, r := range []struct{ method, target, body string }{
			{"PATCH", fmt.Sprintf("/api/v1/fs/entries/%d", f.ID), `{"mtime":"` + mt + `"}`},
			{"POST", "/api/v1/files/commit", `{"name":"g","mtime":"` + mt + `","chunks":` + chunks + `}`},
			{"POST", "/api/v1/fs/commits", fmt.Sprintf(`{"commits":[{"file_id":%d,"mtime":%q,"chunks":%s}]}`, f.ID, mt, chunks)},
			{"GET", "/api/v1/search?before=" + mt, ""},
			{"GET", "/api/v1/search?after=" + mt, ""},
		} {
			rec := hs.do(r.method, r.target, strings.NewReader(r.body), "Content-Type", "application/json")
			checkAnswer(t, r.method+" "+r.target, rec)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("%s %s with mtime %s: got %d %s, want 400", r.method, r.target, mt, rec.Code, rec.Body)
			}
		}
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/fs/entries/%d", f.ID), "", &made)
	if !made.Entry.MTime.Equal(f.MTime) {
		t.Errorf("mtime changed from %v to %v by refused requests", f.MTime, made.Entry.MTime)
	}
	if rec := hs.do("GET", fmt.Sprintf("/api/v1/fs/entries/%d/children/g", hs.root), nil); rec.Code != http.StatusNotFound {
		t.Errorf("a refused commit created g: %d %s", rec.Code, rec.Body)
	}
	// The ends of the range are fine.
	for _, mt := range []string{"2262-04-11T23:47:16Z", "1677-09-21T00:12:44Z"} {
		hs.mustJSON(t, 200, "PATCH", fmt.Sprintf("/api/v1/fs/entries/%d", f.ID), `{"mtime":"`+mt+`"}`, &made)
		if want, _ := time.Parse(time.RFC3339, mt); !made.Entry.MTime.Equal(want) {
			t.Errorf("mtime %s: stored as %v", mt, made.Entry.MTime)
		}
	}
}

// The last active administrator cannot demote or deactivate themselves
// nor be demoted: 409 and nothing changes. With a second administrator,
// demoting works.
func TestLastAdminStays(t *testing.T) {
	a := newTestAPI(t, Deps{}, Config{})
	h := a.Handler()
	admin := func(email string) (string, meta.User) {
		token := registerFrom(t, h, "192.0.2.1:1000", email)
		u, err := a.Files.Meta().GetUserByEmail(context.Background(), email)
		if err != nil {
			t.Fatal(err)
		}
		u.Role = meta.RoleAdmin
		if err := a.Files.Meta().UpdateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		return token, u
	}
	patch := func(token string, id dfms.UserID, body string) *httptest.ResponseRecorder {
		rec := limitedRequest(h, "192.0.2.1:1000", "PATCH", fmt.Sprintf("/api/v1/admin/users/%d", id), body, "Authorization", "Bearer "+token)
		checkAnswer(t, "PATCH /admin/users", rec)
		return rec
	}
	tokA, ua := admin("a@example.com")
	for _, body := range []string{`{"role":"user"}`, `{"role":"user","quota_bytes":5}`} {
		if rec := patch(tokA, ua.ID, body); rec.Code != http.StatusConflict {
			t.Errorf("the last admin patches themselves %s: got %d %s, want 409", body, rec.Code, rec.Body)
		}
	}
	if u, _ := a.Files.Meta().GetUser(context.Background(), ua.ID); u.Role != meta.RoleAdmin || !u.Active || u.QuotaBytes != 0 {
		t.Fatalf("after the refused patches: %+v, want the unchanged admin", u)
	}
	tokB, ub := admin("b@example.com")
	if rec := patch(tokB, ua.ID, `{"role":"user","active":false}`); rec.Code != http.StatusOK {
		t.Fatalf("b demotes and deactivates a: got %d %s, want 200", rec.Code, rec.Body)
	}
	if u, _ := a.Files.Meta().GetUser(context.Background(), ua.ID); u.Role != meta.RoleUser || u.Active {
		t.Fatalf("a after b's patch: %+v, want an inactive user", u)
	}
	if rec := patch(tokB, ub.ID, `{"role":"user"}`); rec.Code != http.StatusConflict {
		t.Errorf("b, now the last admin, demotes themselves: got %d %s, want 409", rec.Code, rec.Body)
	}
}

// A request its client gave up on (a mount unmounting during a long poll
// of the change feed) is no server error: nothing at level ERROR.
func TestClientGoneIsNoError(t *testing.T) {
	var logs testkit.SyncBuffer
	a := newTestAPI(t, Deps{Log: slog.New(slog.NewTextHandler(&logs, nil))}, Config{})
	h := a.Handler()
	token := registerFrom(t, h, "192.0.2.1:1000", "alice@example.com")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", "/api/v1/changes?cursor=0&wait=25", nil).WithContext(ctx)
	serve(h, req, token)
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a request its client gave up on logged an error:\n%s", logs.String())
	}
}
