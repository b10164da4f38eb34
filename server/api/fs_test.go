package api

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apiclient "github.com/dfms/dfms/server/api/client"
)

// TestFSEndpoints drives the mount's /fs surface: create by kind, lookup,
// attributes, rename with and without replace, unlink and rmdir with their
// errors; bad input is a 4xx that changes nothing.
func TestFSEndpoints(t *testing.T) {
	hs := newHarness(t, Config{})
	type entry struct {
		ID      int64  `json:"id"`
		Parent  int64  `json:"parent_id"`
		Name    string `json:"name"`
		Kind    string `json:"kind"`
		Mode    uint32 `json:"mode"`
		UID     uint32 `json:"uid"`
		GID     uint32 `json:"gid"`
		Target  string `json:"target"`
		Rdev    uint32 `json:"rdev"`
		Live    bool   `json:"live"`
		Version int64  `json:"version"`
	}
	var out struct {
		Entry entry `json:"entry"`
	}
	hs.mustJSON(t, 200, "GET", "/api/v1/fs/root", "", &out)
	root := out.Entry.ID
	if root != hs.root || out.Entry.Kind != "dir" {
		t.Fatalf("root %+v, want id %d", out.Entry, hs.root)
	}
	children := fmt.Sprintf("/api/v1/fs/entries/%d/children", root)
	hs.mustJSON(t, 201, "POST", children, `{"name":"d","kind":"dir","mode":448,"uid":7,"gid":8}`, &out)
	dir := out.Entry
	if dir.Mode != 0o700 || dir.UID != 7 || dir.GID != 8 || !dir.Live {
		t.Errorf("mkdir: %+v", dir)
	}
	hs.mustJSON(t, 201, "POST", children, `{"name":"a b?.txt","kind":"file","mode":420}`, &out)
	file := out.Entry
	hs.mustJSON(t, 201, "POST", children, `{"name":"l","kind":"symlink","target":"a b?.txt"}`, &out)
	if out.Entry.Target != "a b?.txt" || out.Entry.Kind != "symlink" {
		t.Errorf("symlink: %+v", out.Entry)
	}
	hs.mustJSON(t, 201, "POST", children, `{"name":"tty","kind":"chardev","mode":400,"rdev":34817}`, &out)
	if tty := out.Entry; tty.Kind != "chardev" || tty.Rdev != 0x8801 || tty.Mode != 0o620 {
		t.Errorf("mknod: %+v", tty)
	}
	hs.mustJSON(t, 200, "GET", children+"/a%20b%3F.txt", "", &out)
	if out.Entry.ID != file.ID {
		t.Errorf("lookup of an escaped name: %+v", out.Entry)
	}
	hs.mustJSON(t, 200, "PATCH", fmt.Sprintf("/api/v1/fs/entries/%d", file.ID), `{"mode":384,"uid":1,"mtime":"2001-02-03T04:05:06.123456789Z"}`, &out)
	if out.Entry.Mode != 0o600 || out.Entry.UID != 1 {
		t.Errorf("setattr: %+v", out.Entry)
	}
	var list struct {
		Items []entry `json:"items"`
	}
	hs.mustJSON(t, 200, "GET", children, "", &list)
	if len(list.Items) != 4 {
		t.Errorf("children: %+v", list.Items)
	}

	// Bad input: a 4xx in the envelope, and the tree unchanged.
	for _, c := range []struct {
		method, target, body string
		want                 int
	}{
		{"POST", children, `{"name":"x","kind":"pipe"}`, 400},
		{"POST", children, `{"name":"x","kind":"fifo","rdev":5}`, 400},
		{"POST", children, `{"name":"x","kind":"file","rdev":5}`, 400},
		{"POST", children, `{"name":"x","kind":"file","target":"t"}`, 400},
		{"POST", children, `{"name":"x","kind":"symlink"}`, 400},
		{"POST", children, `{"name":"a/b","kind":"file"}`, 400},
		{"POST", children, `{"name":"d","kind":"file"}`, 409},
		{"PATCH", fmt.Sprintf("/api/v1/fs/entries/%d", file.ID), `{"mode":99999}`, 400},
		{"DELETE", children + "/d?dir=false", "", 400},
		{"DELETE", children + "/a%20b%3F.txt?dir=true", "", 400},
		{"DELETE", children + "/d?dir=maybe", "", 400},
		{"DELETE", children + "/nothing", "", 404},
		{"POST", "/api/v1/fs/rename", fmt.Sprintf(`{"parent_id":%d,"name":"l","new_parent_id":%d,"new_name":"d"}`, root, root), 409},
		{"POST", "/api/v1/fs/rename", fmt.Sprintf(`{"parent_id":%d,"name":"l","new_parent_id":%d,"new_name":"d","replace":true}`, root, root), 400},
		{"POST", "/api/v1/fs/rename", fmt.Sprintf(`{"parent_id":%d,"name":"d","new_parent_id":%d,"new_name":"in"}`, root, dir.ID), 400},
		{"GET", "/api/v1/fs/entries/999999", "", 404},
	} {
		rec := hs.do(c.method, c.target, strings.NewReader(c.body), "Content-Type", "application/json")
		checkAnswer(t, c.method+" "+c.target, rec)
		if rec.Code != c.want {
			t.Errorf("%s %s %s: got %d %s, want %d", c.method, c.target, c.body, rec.Code, rec.Body, c.want)
		}
	}
	hs.mustJSON(t, 200, "GET", children, "", &list)
	if len(list.Items) != 4 {
		t.Errorf("bad input changed the tree: %+v", list.Items)
	}

	// Rename over a file with replace; the replaced one goes to the trash.
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/rename", fmt.Sprintf(`{"parent_id":%d,"name":"l","new_parent_id":%d,"new_name":"a b?.txt","replace":true}`, root, dir.ID), &out)
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/rename", fmt.Sprintf(`{"parent_id":%d,"name":"a b?.txt","new_parent_id":%d,"new_name":"a b?.txt","replace":true}`, root, dir.ID), &out)
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/fs/entries/%d", file.ID), "", &out)
	if !out.Entry.Live || out.Entry.Parent != dir.ID {
		t.Errorf("moved file: %+v", out.Entry)
	}
	rec := hs.do("DELETE", children+"/d?dir=true", nil)
	if rec.Code != http.StatusConflict {
		t.Errorf("rmdir of a full directory: %d %s", rec.Code, rec.Body)
	}
	if rec := hs.do("DELETE", fmt.Sprintf("/api/v1/fs/entries/%d/children/a%%20b%%3F.txt", dir.ID), nil); rec.Code != http.StatusNoContent {
		t.Errorf("unlink: %d %s", rec.Code, rec.Body)
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/fs/entries/%d", file.ID), "", &out)
	if out.Entry.Live {
		t.Errorf("an unlinked file is still live: %+v", out.Entry)
	}
	if rec := hs.do("DELETE", children+"/d?dir=true", nil); rec.Code != http.StatusNoContent {
		t.Errorf("rmdir: %d %s", rec.Code, rec.Body)
	}
}

// TestDeferredChecksum commits a manifest with defer_checksum: the
// version has no checksum until its first download computes it.
func TestDeferredChecksum(t *testing.T) {
	hs := newHarness(t, Config{})
	data := []byte("deferred checksum content")
	h := hs.putChunk(t, data)
	// A manifest that claims another size for a stored chunk is refused.
	for _, size := range []int{len(data) + 1, len(data) - 1} {
		rec := hs.do("POST", "/api/v1/files/commit", strings.NewReader(fmt.Sprintf(`{"name":"bad.txt","defer_checksum":true,"chunks":[{"hash":%q,"size":%d}]}`, h, size)),
			"Content-Type", "application/json")
		checkAnswer(t, "commit with a wrong size", rec)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("commit claiming %d bytes for a %d-byte chunk: %d %s", size, len(data), rec.Code, rec.Body)
		}
	}
	var c struct {
		File struct {
			ID       int64  `json:"id"`
			Checksum string `json:"checksum"`
		} `json:"file"`
	}
	hs.mustJSON(t, 201, "POST", "/api/v1/files/commit",
		fmt.Sprintf(`{"name":"d.txt","defer_checksum":true,"chunks":[{"hash":%q,"size":%d}]}`, h, len(data)), &c)
	if c.File.Checksum != "" {
		t.Errorf("a deferred commit reports checksum %q", c.File.Checksum)
	}
	var m struct {
		Checksum string `json:"checksum"`
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/files/%d/manifest", c.File.ID), "", &m)
	if m.Checksum != "" {
		t.Errorf("the manifest reports checksum %q before any download", m.Checksum)
	}
	rec := hs.do("GET", fmt.Sprintf("/api/v1/files/%d/download", c.File.ID), nil)
	if rec.Code != 200 || rec.Body.String() != string(data) || rec.Header().Get("X-Checksum-SHA256") != h {
		t.Fatalf("download: %d %q checksum %q, want %s", rec.Code, rec.Body, rec.Header().Get("X-Checksum-SHA256"), h)
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/files/%d/manifest", c.File.ID), "", &m)
	if m.Checksum != h {
		t.Errorf("after the download the manifest reports %q, want %s", m.Checksum, h)
	}
}

// TestXattrEndpoints sets, reads, lists and removes an attribute, and
// answers bad requests with 4xx.
func TestXattrEndpoints(t *testing.T) {
	hs := newHarness(t, Config{})
	var out struct {
		Entry struct {
			ID int64 `json:"id"`
		} `json:"entry"`
	}
	hs.mustJSON(t, 201, "POST", fmt.Sprintf("/api/v1/fs/entries/%d/children", hs.root), `{"name":"f","kind":"file"}`, &out)
	x := fmt.Sprintf("/api/v1/fs/entries/%d/xattrs", out.Entry.ID)
	hs.mustJSON(t, 204, "PUT", x+"/user.a", `{"value":"AAEC","mode":"create"}`, nil)
	for _, c := range []struct {
		method, target, body string
		want                 int
	}{
		{"PUT", x + "/user.a", `{"value":"AA==","mode":"create"}`, 409},
		{"PUT", x + "/user.b", `{"value":"AA==","mode":"replace"}`, 404},
		{"PUT", x + "/user.b", `{"value":"AA==","mode":"sometimes"}`, 400},
		{"PUT", x + "/user.b", `{"value":"not base64!"}`, 400},
		{"GET", x + "/user.b", "", 404},
		{"DELETE", x + "/user.b", "", 404},
		{"GET", "/api/v1/fs/entries/999999/xattrs", "", 404},
	} {
		rec := hs.do(c.method, c.target, strings.NewReader(c.body), "Content-Type", "application/json")
		checkAnswer(t, c.method+" "+c.target, rec)
		if rec.Code != c.want {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.target, c.body, rec.Code, rec.Body, c.want)
		}
	}
	var v struct {
		Value []byte `json:"value"`
	}
	hs.mustJSON(t, 200, "GET", x+"/user.a", "", &v)
	if string(v.Value) != "\x00\x01\x02" {
		t.Errorf("value %q", v.Value)
	}
	var l struct {
		Names []string `json:"names"`
	}
	hs.mustJSON(t, 200, "GET", x, "", &l)
	if len(l.Names) != 1 || l.Names[0] != "user.a" {
		t.Errorf("names %q", l.Names)
	}
	hs.mustJSON(t, 204, "DELETE", x+"/user.a", "", nil)
	hs.mustJSON(t, 200, "GET", x, "", &l)
	if len(l.Names) != 0 {
		t.Errorf("names after delete %q", l.Names)
	}
}

// A file renamed over another takes over its history, and a reader that
// opened a version number before the renumbering still gets its chunks.
func TestRenameOverKeepsHistory(t *testing.T) {
	hs := newHarness(t, Config{})
	commit := func(name, s string) int64 {
		var c struct {
			File struct {
				ID int64 `json:"id"`
			} `json:"file"`
		}
		hs.mustJSON(t, 201, "POST", "/api/v1/files/commit",
			fmt.Sprintf(`{"name":%q,"defer_checksum":true,"chunks":[{"hash":%q,"size":%d}]}`, name, hs.putChunk(t, []byte(s)), len(s)), &c)
		return c.File.ID
	}
	old := commit("doc.txt", "the saved document")
	commit("doc.txt", "the saved document, edited")
	tmp := commit(".doc.txt.swp", "the new draft")
	draft := sha256.Sum256([]byte("the new draft"))
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/rename",
		fmt.Sprintf(`{"parent_id":%d,"name":".doc.txt.swp","new_parent_id":%d,"new_name":"doc.txt","replace":true}`, hs.root, hs.root), nil)
	var vs struct {
		Versions []struct {
			Number int64 `json:"version"`
			Size   int64 `json:"size"`
		} `json:"versions"`
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/files/%d/versions", tmp), "", &vs) // newest first
	if len(vs.Versions) != 3 || vs.Versions[0].Number != 3 || vs.Versions[0].Size != int64(len("the new draft")) || vs.Versions[2].Number != 1 {
		t.Fatalf("versions after the rename: %+v", vs.Versions)
	}
	if rec := hs.do("GET", fmt.Sprintf("/api/v1/files/%d", old), nil); rec.Code != http.StatusNotFound {
		t.Errorf("the replaced file: %d, want 404", rec.Code)
	}
	if rec := hs.do("GET", fmt.Sprintf("/api/v1/files/%d/versions/1/download", tmp), nil); rec.Code != 200 || rec.Body.String() != "the saved document" {
		t.Fatalf("version 1: %d %q", rec.Code, rec.Body)
	}
	// A reader that opened version 1 of the draft before the rename.
	rec := hs.do("GET", fmt.Sprintf("/api/v1/files/%d/versions/1/chunks/%x", tmp, draft), nil)
	if rec.Code != 200 || rec.Body.String() != "the new draft" {
		t.Fatalf("old version number, own chunk: %d %q", rec.Code, rec.Body)
	}
	// A chunk the caller never sent nor committed stays unreachable.
	other := newHarnessUser(t, hs, "other@example.com")
	rec = other.do("PUT", "/api/v1/chunks/"+fmt.Sprintf("%x", sha256.Sum256([]byte("secret"))), strings.NewReader("secret"), "Content-Type", "application/octet-stream")
	if rec.Code != http.StatusCreated {
		t.Fatalf("put as another user: %d", rec.Code)
	}
	rec = hs.do("GET", fmt.Sprintf("/api/v1/files/%d/versions/1/chunks/%x", tmp, sha256.Sum256([]byte("secret"))), nil)
	checkAnswer(t, "someone else's chunk", rec)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("someone else's chunk: %d, want 404", rec.Code)
	}
}

// TestFSCommits commits several files in one request: each result stands
// alone, and bad requests are a 400 that commits nothing.
func TestFSCommits(t *testing.T) {
	hs := newHarness(t, Config{})
	data := []byte("batched content")
	h := hs.putChunk(t, data)
	var out struct {
		Entry struct {
			ID int64 `json:"id"`
		} `json:"entry"`
	}
	children := fmt.Sprintf("/api/v1/fs/entries/%d/children", hs.root)
	var ids []int64
	for _, name := range []string{"a", "b"} {
		hs.mustJSON(t, 201, "POST", children, fmt.Sprintf(`{"name":%q,"kind":"file","mode":420}`, name), &out)
		ids = append(ids, out.Entry.ID)
	}
	hs.mustJSON(t, 201, "POST", children, `{"name":"d","kind":"dir","mode":493}`, &out)
	dir := out.Entry.ID
	ghost := strings.Repeat("ab", 32)
	ok := fmt.Sprintf(`{"hash":%q,"size":%d}`, h, len(data))
	body := fmt.Sprintf(`{"commits":[
		{"file_id":%d,"base_version_id":0,"mtime":"2001-02-03T04:05:06Z","chunks":[%s]},
		{"file_id":%d,"chunks":[%s,{"hash":%q,"size":5}]},
		{"file_id":%d,"chunks":[%s]},
		{"file_id":%d,"chunks":[%s,%s]}]}`, ids[0], ok, ids[1], ok, ghost, dir, ok, ids[1], ok, ok)
	var res struct {
		Results []struct {
			Entry *struct {
				ID    int64     `json:"id"`
				Size  int64     `json:"size"`
				MTime time.Time `json:"mtime"`
			} `json:"entry"`
			Version int64 `json:"version"`
			Error   *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Details struct {
					Missing []string `json:"missing"`
				} `json:"details"`
			} `json:"error"`
		} `json:"results"`
	}
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/commits", body, &res)
	if len(res.Results) != 4 {
		t.Fatalf("%d results", len(res.Results))
	}
	r := res.Results
	if r[0].Entry == nil || r[0].Entry.ID != ids[0] || r[0].Version != 1 || r[0].Entry.Size != int64(len(data)) || !r[0].Entry.MTime.Equal(time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)) {
		t.Errorf("result 0: %+v %+v", r[0].Entry, r[0].Error)
	}
	if r[1].Error == nil || r[1].Error.Code != "CHUNKS_MISSING" || len(r[1].Error.Details.Missing) != 1 || r[1].Error.Details.Missing[0] != ghost {
		t.Errorf("result 1: %+v", r[1].Error)
	}
	if r[2].Error == nil || r[2].Error.Code != "IS_A_FOLDER" {
		t.Errorf("result 2: %+v", r[2].Error)
	}
	if r[3].Entry == nil || r[3].Version != 1 || r[3].Entry.Size != 2*int64(len(data)) {
		t.Errorf("result 3: %+v %+v", r[3].Entry, r[3].Error)
	}
	// Bad requests change nothing.
	for _, bad := range []string{
		`{"commits":[]}`,
		`{}`,
		fmt.Sprintf(`{"commits":[{"file_id":%d,"chunks":[%s]},{"file_id":0,"chunks":[]}]}`, ids[0], ok),
		fmt.Sprintf(`{"commits":[{"file_id":%d,"chunks":[{"hash":"zz","size":1}]}]}`, ids[0]),
		fmt.Sprintf(`{"commits":[{"file_id":"x","chunks":[%s]}]}`, ok),
		`not json`,
	} {
		rec := hs.do("POST", "/api/v1/fs/commits", strings.NewReader(bad), "Content-Type", "application/json")
		checkAnswer(t, bad, rec)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, rec.Code)
		}
	}
	var vs struct {
		Versions []struct{} `json:"versions"`
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/files/%d/versions", ids[0]), "", &vs)
	if len(vs.Versions) != 1 {
		t.Errorf("a has %d versions after the bad requests, want 1", len(vs.Versions))
	}
}

// POST /fs/trash trashes a batch of entries, each at its time; one that
// fails (not live, another user's) is reported alone; a retry trashes
// nothing twice; a malformed request trashes nothing.
func TestFSTrash(t *testing.T) {
	hs := newHarness(t, Config{})
	other := newHarnessUser(t, hs, "other@example.com")
	var out struct {
		Entry struct {
			ID int64 `json:"id"`
		} `json:"entry"`
	}
	mk := func(hs *harness, name string) int64 {
		hs.mustJSON(t, 201, "POST", fmt.Sprintf("/api/v1/fs/entries/%d/children", hs.root), fmt.Sprintf(`{"name":%q,"kind":"file","mode":420}`, name), &out)
		return out.Entry.ID
	}
	a, b, keep := mk(hs, "a"), mk(hs, "b"), mk(hs, "keep")
	theirs := mk(other, "theirs")
	type results struct {
		Results []struct {
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	codes := func(r results) []string {
		var out []string
		for _, x := range r.Results {
			if x.Error == nil {
				out = append(out, "")
			} else {
				out = append(out, x.Error.Code)
			}
		}
		return out
	}
	// Bad requests trash nothing.
	for _, bad := range []string{
		`{"items":[]}`,
		`{}`,
		fmt.Sprintf(`{"items":[{"id":%d},{"id":0}]}`, a),
		fmt.Sprintf(`{"items":[{"id":%d,"at":"3000-01-01T00:00:00Z"}]}`, a),
		fmt.Sprintf(`{"items":[{"id":%d,"at":"yesterday"}]}`, a),
		fmt.Sprintf(`{"items":[%s{"id":%d}]}`, strings.Repeat(fmt.Sprintf(`{"id":%d},`, a), maxBatchTrash), a),
		`not json`,
	} {
		rec := hs.do("POST", "/api/v1/fs/trash", strings.NewReader(bad), "Content-Type", "application/json")
		checkAnswer(t, bad[:min(len(bad), 60)], rec)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%.60s: %d, want 400", bad, rec.Code)
		}
	}
	var tr struct {
		Total int `json:"total"`
	}
	hs.mustJSON(t, 200, "GET", "/api/v1/trash", "", &tr)
	if tr.Total != 0 {
		t.Fatalf("the bad requests trashed %d entries", tr.Total)
	}
	at := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	body := fmt.Sprintf(`{"items":[{"id":%d,"at":%q},{"id":%d},{"id":%d},{"id":%d}]}`, a, at.Format(time.RFC3339), theirs, b, 1<<40)
	var res results
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/trash", body, &res)
	if got := codes(res); !slices.Equal(got, []string{"", "NOT_FOUND", "", "NOT_FOUND"}) {
		t.Fatalf("results %q, want a and b trashed, another user's file and no file not found", got)
	}
	var trash struct {
		Items []struct {
			ID        int64      `json:"id"`
			DeletedAt *time.Time `json:"deleted_at"`
		} `json:"items"`
	}
	hs.mustJSON(t, 200, "GET", "/api/v1/trash", "", &trash)
	i := slices.IndexFunc(trash.Items, func(it struct {
		ID        int64      `json:"id"`
		DeletedAt *time.Time `json:"deleted_at"`
	}) bool {
		return it.ID == a
	})
	if i < 0 || trash.Items[i].DeletedAt == nil || !trash.Items[i].DeletedAt.Equal(at) {
		t.Errorf("a is not in the trash as deleted at %v: %+v", at, trash.Items)
	}
	other.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/files/%d", theirs), "", nil)
	// Sent again (an answer lost): nothing is trashed twice.
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/trash", body, &res)
	if got := codes(res); !slices.Equal(got, []string{"NOT_FOUND", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND"}) {
		t.Fatalf("retried: results %q, want all not found", got)
	}
	hs.mustJSON(t, 200, "GET", "/api/v1/trash", "", &tr)
	if tr.Total != 2 {
		t.Errorf("%d entries in the trash, want 2", tr.Total)
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/files/%d", keep), "", nil)
}

// POST /fs/ids reserves ids for the caller; POST /fs/files creates files
// with them in a batch, each alone: another user's id, a taken name or a
// missing folder fail alone, a retry makes nothing twice, a malformed
// request creates nothing.
func TestFSCreateFiles(t *testing.T) {
	hs := newHarness(t, Config{})
	other := newHarnessUser(t, hs, "other@example.com")
	var ids, theirs struct {
		IDs []int64 `json:"ids"`
	}
	for _, bad := range []string{`{"count":0}`, `{"count":1025}`, `{}`, `{"count":"x"}`} {
		rec := hs.do("POST", "/api/v1/fs/ids", strings.NewReader(bad), "Content-Type", "application/json")
		checkAnswer(t, bad, rec)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, rec.Code)
		}
	}
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/ids", `{"count":4}`, &ids)
	other.mustJSON(t, 200, "POST", "/api/v1/fs/ids", `{"count":1}`, &theirs)
	if len(ids.IDs) != 4 || len(theirs.IDs) != 1 {
		t.Fatalf("reserved %v and %v", ids.IDs, theirs.IDs)
	}
	mt := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	var out struct {
		Entry struct {
			ID int64 `json:"id"`
		} `json:"entry"`
	}
	hs.mustJSON(t, 201, "POST", fmt.Sprintf("/api/v1/fs/entries/%d/children", hs.root), `{"name":"taken","kind":"file","mode":420}`, &out)
	for _, bad := range []string{
		`{"files":[]}`,
		`{}`,
		fmt.Sprintf(`{"files":[{"id":%d,"parent_id":%d,"name":"x"},{"id":0,"parent_id":%d,"name":"y"}]}`, ids.IDs[0], hs.root, hs.root),
		fmt.Sprintf(`{"files":[{"id":%d,"parent_id":%d,"name":"x","mtime":"3000-01-01T00:00:00Z"}]}`, ids.IDs[0], hs.root),
		fmt.Sprintf(`{"files":[%s{"id":%d,"parent_id":%d,"name":"x"}]}`, strings.Repeat(fmt.Sprintf(`{"id":%d,"parent_id":%d,"name":"x"},`, ids.IDs[0], hs.root), maxBatchCreates), ids.IDs[0], hs.root),
		`not json`,
	} {
		rec := hs.do("POST", "/api/v1/fs/files", strings.NewReader(bad), "Content-Type", "application/json")
		checkAnswer(t, bad[:min(len(bad), 60)], rec)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%.60s: %d, want 400", bad, rec.Code)
		}
	}
	body := fmt.Sprintf(`{"files":[
		{"id":%d,"parent_id":%d,"name":"a.txt","mode":416,"uid":7,"gid":8,"mtime":%q},
		{"id":%d,"parent_id":%d,"name":"squat"},
		{"id":%d,"parent_id":%d,"name":"taken"},
		{"id":%d,"parent_id":%d,"name":"orphan"}]}`,
		ids.IDs[0], hs.root, mt.Format(time.RFC3339), theirs.IDs[0], hs.root, ids.IDs[1], hs.root, ids.IDs[2], int64(1)<<40)
	var res struct {
		Results []struct {
			Entry *struct {
				ID    int64     `json:"id"`
				Name  string    `json:"name"`
				Mode  uint32    `json:"mode"`
				UID   uint32    `json:"uid"`
				MTime time.Time `json:"mtime"`
			} `json:"entry"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	check := func(what string) {
		t.Helper()
		r := res.Results
		if len(r) != 4 {
			t.Fatalf("%s: %d results", what, len(r))
		}
		if e := r[0].Entry; e == nil || e.ID != ids.IDs[0] || e.Name != "a.txt" || e.Mode != 0o640 || e.UID != 7 || !e.MTime.Equal(mt) {
			t.Errorf("%s: result 0: %+v %+v", what, r[0].Entry, r[0].Error)
		}
		for i, code := range []string{"", "VALIDATION_FAILED", "ALREADY_EXISTS", "NOT_FOUND"} {
			if i > 0 && (r[i].Error == nil || r[i].Error.Code != code) {
				t.Errorf("%s: result %d: %+v, want %s", what, i, r[i].Error, code)
			}
		}
	}
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/files", body, &res)
	check("first")
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/files", body, &res) // an answer lost
	check("sent again")
	var list struct {
		Contents []struct {
			Name string `json:"name"`
		} `json:"contents"`
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/folders/%d/contents", hs.root), "", &list)
	if len(list.Contents) != 2 {
		t.Errorf("the root holds %+v, want a.txt and taken", list.Contents)
	}
	// The failed ids are still the caller's, and the other user's id
	// still theirs.
	hs.mustJSON(t, 200, "POST", "/api/v1/fs/files", fmt.Sprintf(`{"files":[{"id":%d,"parent_id":%d,"name":"b"}]}`, ids.IDs[1], hs.root), &res)
	if len(res.Results) != 1 || res.Results[0].Entry == nil {
		t.Errorf("a failed create's id: %+v", res.Results)
	}
	other.mustJSON(t, 200, "POST", "/api/v1/fs/files", fmt.Sprintf(`{"files":[{"id":%d,"parent_id":%d,"name":"mine"}]}`, theirs.IDs[0], other.root), &res)
	if len(res.Results) != 1 || res.Results[0].Entry == nil {
		t.Errorf("the other user's own id: %+v", res.Results)
	}
}

// POST /fs/entries/{id}/links gives a file another name: both names reach
// it, nlink counts them, unlinking one keeps the other; a directory or a
// taken name is refused and changes nothing.
func TestFSLink(t *testing.T) {
	hs := newHarness(t, Config{})
	type entry struct {
		ID    int64  `json:"id"`
		Name  string `json:"name"`
		Nlink uint32 `json:"nlink"`
		Live  bool   `json:"live"`
	}
	var out struct {
		Entry entry `json:"entry"`
	}
	children := fmt.Sprintf("/api/v1/fs/entries/%d/children", hs.root)
	hs.mustJSON(t, 201, "POST", children, `{"name":"f","kind":"file","mode":420}`, &out)
	f := out.Entry
	hs.mustJSON(t, 201, "POST", children, `{"name":"d","kind":"dir","mode":493}`, &out)
	d := out.Entry
	if d.Nlink != 2 || f.Nlink != 1 {
		t.Fatalf("nlink of a new directory %d, of a new file %d; want 2, 1", d.Nlink, f.Nlink)
	}
	links := fmt.Sprintf("/api/v1/fs/entries/%d/links", f.ID)
	hs.mustJSON(t, 201, "POST", links, fmt.Sprintf(`{"parent_id":%d,"name":"g"}`, d.ID), &out)
	if out.Entry.ID != f.ID || out.Entry.Name != "g" || out.Entry.Nlink != 2 {
		t.Fatalf("link: %+v", out.Entry)
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/fs/entries/%d/children/g", d.ID), "", &out)
	if out.Entry.ID != f.ID || out.Entry.Nlink != 2 {
		t.Fatalf("lookup by the link: %+v", out.Entry)
	}
	for _, c := range []struct {
		target, body string
		want         int
	}{
		{links, fmt.Sprintf(`{"parent_id":%d,"name":"g"}`, d.ID), 409},
		{links, fmt.Sprintf(`{"parent_id":%d,"name":"a/b"}`, d.ID), 400},
		{links, `{"name":"x"}`, 400},
		{links, fmt.Sprintf(`{"parent_id":%d,"name":"x","extra":1}`, d.ID), 400},
		{fmt.Sprintf("/api/v1/fs/entries/%d/links", d.ID), fmt.Sprintf(`{"parent_id":%d,"name":"d2"}`, hs.root), 400},
		{"/api/v1/fs/entries/999999/links", fmt.Sprintf(`{"parent_id":%d,"name":"x"}`, hs.root), 404},
	} {
		rec := hs.do("POST", c.target, strings.NewReader(c.body), "Content-Type", "application/json")
		checkAnswer(t, "POST "+c.target, rec)
		if rec.Code != c.want {
			t.Errorf("POST %s %s: got %d %s, want %d", c.target, c.body, rec.Code, rec.Body, c.want)
		}
	}
	hs.mustJSON(t, 204, "DELETE", children+"/f", "", nil)
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/fs/entries/%d", f.ID), "", &out)
	if !out.Entry.Live || out.Entry.Name != "g" || out.Entry.Nlink != 1 {
		t.Fatalf("after unlinking the first name: %+v", out.Entry)
	}
}

// A hole in a committed manifest is the hash of 64 zeros with a size: it
// is accepted without any chunk, never reported missing or served as a
// chunk, reads as zeros, and its bytes count neither against the upload
// size limit nor in data_size.
func TestSparseCommit(t *testing.T) {
	hs := newHarness(t, Config{MaxUploadSize: 1 << 20})
	data := []byte("sparse data")
	h := hs.putChunk(t, data)
	hole := strings.Repeat("0", 64)
	var miss struct {
		Missing []string `json:"missing"`
	}
	hs.mustJSON(t, 200, "POST", "/api/v1/chunks/missing", fmt.Sprintf(`{"hashes":[%q,%q]}`, hole, h), &miss)
	if len(miss.Missing) != 0 {
		t.Fatalf("missing %v, want nothing (a hole is not a chunk)", miss.Missing)
	}
	const gib = 1 << 30
	body := fmt.Sprintf(`{"name":"s","chunks":[{"hash":%q,"size":%d},{"hash":%q,"size":%d},{"hash":%q,"size":3}]}`, hole, 3*gib, h, len(data), hole)
	var c struct {
		File struct {
			ID   int64 `json:"id"`
			Size int64 `json:"size"`
		} `json:"file"`
	}
	hs.mustJSON(t, 201, "POST", "/api/v1/files/commit", body, &c)
	if c.File.Size != 3*gib+int64(len(data))+3 {
		t.Fatalf("size %d", c.File.Size)
	}
	var m struct {
		Size     int64 `json:"size"`
		DataSize int64 `json:"data_size"`
		Chunks   []struct {
			Hash string `json:"hash"`
			Size int64  `json:"size"`
		} `json:"chunks"`
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/files/%d/manifest", c.File.ID), "", &m)
	if m.DataSize != int64(len(data)) || len(m.Chunks) != 3 || m.Chunks[0].Hash != hole || m.Chunks[0].Size != 3*gib {
		t.Fatalf("manifest %+v", m)
	}
	var fe struct {
		Entry apiclient.FSEntry `json:"entry"`
	}
	hs.mustJSON(t, 200, "GET", fmt.Sprintf("/api/v1/fs/entries/%d", c.File.ID), "", &fe)
	if fe.Entry.DataSize == nil || *fe.Entry.DataSize != int64(len(data)) || fe.Entry.Size != c.File.Size {
		t.Fatalf("fs entry %+v", fe.Entry)
	}
	rec := hs.do("GET", fmt.Sprintf("/api/v1/files/%d/download", c.File.ID), nil, "Range", fmt.Sprintf("bytes=%d-%d", 3*gib-2, 3*gib+int64(len(data))+2))
	if want := "\x00\x00" + string(data) + "\x00\x00\x00"; rec.Code != 206 || rec.Body.String() != want {
		t.Fatalf("download around the data: %d %q, want %q", rec.Code, rec.Body, want)
	}
	if rec := hs.do("GET", fmt.Sprintf("/api/v1/files/%d/versions/1/chunks/%s", c.File.ID, hole), nil); rec.Code != 404 {
		t.Fatalf("GET of a hole's chunk: %d %s, want 404", rec.Code, rec.Body)
	}
	// Data past the upload limit is refused (holes are not data, as the
	// commit above shows).
	half := make([]byte, 600<<10)
	half[0] = 1
	hh := hs.putChunk(t, half)
	big := fmt.Sprintf(`{"name":"t","chunks":[{"hash":%q,"size":%d},{"hash":%q,"size":%d}]}`, hh, len(half), hh, len(half))
	if rec := hs.do("POST", "/api/v1/files/commit", strings.NewReader(big), "Content-Type", "application/json"); rec.Code != 413 {
		t.Fatalf("a commit of data past the limit: %d, want 413", rec.Code)
	}
}
