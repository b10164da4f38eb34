package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dfms/dfms"
)

// fuzzTarget is an endpoint FuzzRequestDecoding sends its bodies to.
type fuzzTarget struct {
	method, path string
	upload       bool // the upload endpoint: the header is X-File-Name
}

// FuzzRequestDecoding sends arbitrary bodies, content types and headers to
// the JSON endpoints and to the upload endpoint of a real API (SQLite and
// disk underneath). Whatever it sends, the answer is never a server error,
// and every error answer is the envelope.
func FuzzRequestDecoding(f *testing.F) {
	hs := newHarness(f, Config{MaxUploadSize: 1 << 20})
	var folder struct{ Folder struct{ ID int64 } }
	hs.mustJSON(f, 201, "POST", "/api/v1/folders", `{"name":"fuzz"}`, &folder)
	var file struct{ ID int64 }
	rec := hs.do("POST", "/api/v1/files/upload", strings.NewReader("fuzz content"), "X-File-Name", "fuzz.txt")
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &file) != nil {
		f.Fatalf("upload: got %d %s", rec.Code, rec.Body)
	}
	var up struct {
		UploadID string `json:"upload_id"`
	}
	hs.mustJSON(f, 201, "POST", "/api/v1/files/upload/multipart/init", `{"file_name":"fuzz.bin"}`, &up)
	targets := []fuzzTarget{
		{"POST", "/api/v1/files/upload", true},
		{"POST", "/api/v1/folders", false},
		{"PATCH", fmt.Sprintf("/api/v1/files/%d", file.ID), false},
		{"PATCH", fmt.Sprintf("/api/v1/folders/%d", folder.Folder.ID), false},
		{"PUT", fmt.Sprintf("/api/v1/files/%d/move", file.ID), false},
		{"POST", fmt.Sprintf("/api/v1/files/%d/copy", file.ID), false},
		{"POST", "/api/v1/files/upload/multipart/init", false},
		{"PUT", "/api/v1/files/upload/multipart/" + up.UploadID + "/part/1", false},
		{"POST", "/api/v1/files/upload/multipart/" + up.UploadID + "/complete", false},
		{"POST", "/api/v1/files/commit", false},
		{"POST", "/api/v1/chunks/missing", false},
		{"POST", "/api/v1/auth/login", false},
		{"POST", "/api/v1/auth/refresh", false},
		{"POST", "/api/v1/auth/register", false},
	}

	form := func(fields ...string) (string, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "file" {
				fw, _ := w.CreateFormFile("file", "f.txt")
				fw.Write([]byte(fields[i+1]))
			} else {
				w.WriteField(fields[i], fields[i+1])
			}
		}
		w.Close()
		return b.String(), w.FormDataContentType()
	}
	formBody, formType := form("folder_id", strconv.FormatInt(folder.Folder.ID, 10), "name", "from-form.txt", "file", "hello")
	id := strconv.FormatInt(folder.Folder.ID, 10)
	seeds := []struct {
		target      uint8
		contentType string
		header      string
		body        string
	}{
		{0, "application/octet-stream", "a.txt", "hello"},
		{0, "", "%zz", "x"},
		{0, "", "", ""},
		{0, "text/plain; charset=utf-8", "dir%2Fname", "x"},
		{0, formType, "", formBody},
		{0, formType, "", formBody[:len(formBody)/2]},
		{0, "multipart/form-data", "", "--x\r\n"},
		{0, "multipart/form-data; boundary=x", "", "--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--x--\r\n"},
		// Found by the fuzzer: a file part without its closing boundary.
		{0, "multipart/form-data; boundary=x", "", "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc"},
		{1, "application/json", "", `{"name":"sub","parent_id":` + id + `}`},
		{1, "application/json", "", `{"name":"x","parent_id":"root"}`},
		{1, "application/json", "", `{"name":"x","parent_id":{"a":1}}`},
		{1, "application/json", "", `{"name":"x"} trailing`},
		{1, "application/json", "", `{"name":"\u0000"}`},
		{2, "application/json", "", `{"name":"renamed.txt"}`},
		{2, "application/json", "", `{"parent_id":null}`},
		{3, "application/json", "", `{"name":"fuzz2"}`},
		{4, "application/json", "", `{"new_parent_id":` + id + `}`},
		{4, "application/json", "", `{"target_folder_id":"` + id + `"}`},
		{5, "application/json", "", ``},
		{5, "application/json", "", `{"name":"copy.txt","parent_id":-1}`},
		{6, "application/json", "", `{"file_name":"m.bin","file_size":-1}`},
		{6, "application/json", "", `{"file_name":"m.bin","file_size":1e30}`},
		{6, "application/json", "", `{"file_name":"m.bin","file_size":9223372036854775807}`},
		{7, "", "", "part content"},
		{8, "application/json", "", `{"mime_type":"text/plain"}`},
		{9, "application/json", "", `{"name":"c.txt","checksum":"00","chunks":[{"hash":"zz","size":1}]}`},
		{9, "application/json", "", `{"file_id":"x","chunks":[]}`},
		{9, "application/json", "", `{"name":"c.txt","mtime":"not a time","chunks":[{"hash":"` + strings.Repeat("ab", 32) + `","size":4294967295}]}`},
		{10, "application/json", "", `{"hashes":["` + strings.Repeat("0", 64) + `","nothex"]}`},
		{11, "application/json", "", `{"email":"fuzz@example.com","password":"wrong password"}`},
		{12, "application/json", "", `{"refresh_token":"a.b.c"}`},
		{13, "application/json", "", `{"email":"not an email","password":"x"}`},
	}
	for _, s := range seeds {
		f.Add(s.target, s.contentType, s.header, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, target uint8, contentType, header string, body []byte) {
		tg := targets[int(target)%len(targets)]
		hdr := []string{"Content-Type", contentType}
		if tg.upload {
			hdr = append(hdr, "X-File-Name", header)
		} else {
			hdr = append(hdr, "X-Folder-ID", header) // ignored by these endpoints
		}
		rec := hs.do(tg.method, tg.path, bytes.NewReader(body), hdr...)
		checkAnswer(t, tg.method+" "+tg.path, rec)
		if rec.Code < 300 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: got %d with body %q, want JSON", tg.method, tg.path, rec.Code, rec.Body)
		}
	})
}

// strictRange matches the single byte ranges of RFC 9110 that parseRange
// must accept: first-last, first- and -suffix, digits only.
var strictRange = regexp.MustCompile(`^bytes=(?:([0-9]{1,18})-([0-9]{0,18})|-([0-9]{1,18}))$`)

// FuzzParseRange checks that parseRange never panics, that what it accepts
// lies within the file, and that it agrees with a plain reading of the
// RFC's grammar wherever the header follows it.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=0-", "bytes=-1", "bytes=5-2", "bytes=-0", "bytes=0-1,2-3", "bytes=--1",
		"bytes=+1-2", "bytes= 1-2 ", "items=0-1", "bytes=99999999999999999999-", "bytes=-9223372036854775808", "bytes=1-9223372036854775807"} {
		for _, size := range []int64{0, 1, 100, 1 << 40} {
			f.Add(s, size)
		}
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return // sizes are never negative
		}
		off, length, err := parseRange(h, size)
		if err != nil {
			if off != 0 || length != 0 {
				t.Fatalf("parseRange(%q, %d) = %d, %d, %v: values with an error", h, size, off, length, err)
			}
		} else if off < 0 || length < 1 || off >= size || length > size-off {
			t.Fatalf("parseRange(%q, %d) = %d, %d: outside the file", h, size, off, length)
		}
		m := strictRange.FindStringSubmatch(h)
		if m == nil {
			return
		}
		// The reference reading.
		var wantOff, wantLen int64
		wantOK := false
		if m[3] != "" {
			n, _ := strconv.ParseInt(m[3], 10, 64)
			if n > 0 && size > 0 {
				wantOff, wantLen, wantOK = size-min(n, size), min(n, size), true
			}
		} else {
			first, _ := strconv.ParseInt(m[1], 10, 64)
			last := size - 1
			if m[2] != "" {
				last, _ = strconv.ParseInt(m[2], 10, 64)
			}
			if first < size && last >= first {
				wantOff, wantLen, wantOK = first, min(last, size-1)-first+1, true
			}
		}
		if (err == nil) != wantOK || off != wantOff || length != wantLen {
			t.Fatalf("parseRange(%q, %d) = %d, %d, %v; want %d, %d, ok=%v", h, size, off, length, err, wantOff, wantLen, wantOK)
		}
	})
}

// FuzzUploadName sends arbitrary names through the upload handler, in
// X-File-Name (percent-decoded) or in ?name= (decoded as a query
// parameter). A name dfms.ValidName refuses gets 400 and creates nothing;
// any other is stored under exactly that name.
func FuzzUploadName(f *testing.F) {
	hs := newHarness(f, Config{MaxUploadSize: 1 << 20})
	var folder struct{ Folder struct{ ID int64 } }
	hs.mustJSON(f, 201, "POST", "/api/v1/folders", `{"name":"names"}`, &folder)
	dir := strconv.FormatInt(folder.Folder.ID, 10)
	for _, s := range []string{"a.txt", "", ".", "..", "a/b", "a%2Fb", "%2e%2e", "a%00b", "%", "%zz", "100%25", ".versions",
		"%2eversions", strings.Repeat("x", 255), strings.Repeat("x", 256), "%C3%A9t%C3%A9", "\xff\xfe", " spaced ", "a\r\nb", "ünï"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	count := func(t *testing.T) int {
		var l struct{ Total int }
		hs.mustJSON(t, 200, "GET", "/api/v1/files?folder_id="+dir, "", &l)
		return l.Total
	}
	f.Fuzz(func(t *testing.T, raw string, viaQuery bool) {
		before := count(t)
		var r *httptest.ResponseRecorder
		want, decodable := raw, true // the name the server must see
		if viaQuery {
			r = hs.do("POST", "/api/v1/files/upload?folder_id="+dir+"&name="+url.QueryEscape(raw), strings.NewReader("x"))
		} else {
			r = hs.do("POST", "/api/v1/files/upload", strings.NewReader("x"), "X-File-Name", raw, "X-Folder-ID", dir)
			var err error
			want, err = url.PathUnescape(raw)
			decodable = err == nil
		}
		checkAnswer(t, fmt.Sprintf("upload of %q (via query %v)", raw, viaQuery), r)
		var got struct {
			ID   int64
			Name string
		}
		json.Unmarshal(r.Body.Bytes(), &got)
		valid := decodable && dfms.ValidName(want) == nil && utf8.ValidString(want)
		switch {
		case !valid && r.Code != http.StatusBadRequest:
			t.Fatalf("name %q (via query %v): got %d %s, want 400", raw, viaQuery, r.Code, r.Body)
		case !valid && count(t) != before:
			t.Fatalf("name %q (via query %v): refused, but the folder changed", raw, viaQuery)
		case valid && r.Code != http.StatusCreated:
			t.Fatalf("name %q (via query %v, %q to the server): got %d %s, want 201", raw, viaQuery, want, r.Code, r.Body)
		case valid && got.Name != want && !utf8.ValidString(want):
			// Names are bytes (the mount's), but JSON strings are UTF-8:
			// the answer shows U+FFFD, and the client can never learn the
			// name it stored. The API must refuse such a name (400) or
			// report it losslessly.
			t.Fatalf("name %q (via query %v) is not UTF-8: accepted with 201, answered as %q", raw, viaQuery, got.Name)
		case valid && got.Name != want:
			t.Fatalf("name %q (via query %v): stored as %q, want %q", raw, viaQuery, got.Name, want)
		}
		if valid {
			var stat struct{ File struct{ Name string } }
			hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/files/%d", got.ID), "", &stat)
			if stat.File.Name != want {
				t.Fatalf("GET of %q: got name %q", want, stat.File.Name)
			}
		}
	})
}
