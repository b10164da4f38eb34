package api

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/dfms/dfms"
)

// GET /fs/entries/{id}/children pages by name: at most limit entries
// (1000 at most and by default), in byte order of names, and "more" while
// entries after the last one remain, for ?after= to continue.
func TestChildrenPaginated(t *testing.T) {
	a := newTestAPI(t, Deps{}, Config{})
	c := newClient(t, a)
	c.token = asString(c.call(201, "POST", "/api/v1/auth/register", nil,
		map[string]any{"email": "pager@example.com", "password": "a long password"}).json["access_token"])
	u, err := a.Files.Meta().GetUserByEmail(context.Background(), "pager@example.com")
	if err != nil {
		t.Fatal(err)
	}
	// Directories and files mixed, so that "directories first" and name
	// order differ.
	names := []string{"b-dir", "a-file", "c-file", "Z-dir", "é-file", "d-dir", "a-dir"}
	for i, n := range names {
		kind := "file"
		if i%2 == 0 {
			kind = "dir"
		}
		c.call(201, "POST", "/api/v1/fs/entries/{id}/children", []any{u.Root}, map[string]any{"name": n, "kind": kind})
	}
	want := slices.Clone(names)
	slices.Sort(want) // byte order

	var got []string
	after := ""
	for page := 0; ; page++ {
		target := "/api/v1/fs/entries/{id}/children?limit=3"
		if after != "" {
			target += "&after=" + url.QueryEscape(after)
		}
		r := c.call(200, "GET", target, []any{u.Root}, nil)
		items := asList(r.json["items"])
		if len(items) > 3 {
			t.Fatalf("page %d: %d items, want at most 3", page, len(items))
		}
		for _, it := range items {
			got = append(got, asString(asMap(it)["name"]))
		}
		if r.json["more"] != true {
			break
		}
		if page > len(names) {
			t.Fatal("more pages than entries")
		}
		after = got[len(got)-1]
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages of 3 give %q, want every name once in byte order %q", got, want)
	}
	r := c.call(200, "GET", "/api/v1/fs/entries/{id}/children", []any{u.Root}, nil)
	if len(asList(r.json["items"])) != len(names) || r.json["more"] != false {
		t.Errorf("the default page: %d items, more %v; want all %d and no more", len(asList(r.json["items"])), r.json["more"], len(names))
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=x", "after=a/b", "after="} {
		c.call(400, "GET", "/api/v1/fs/entries/{id}/children?"+q, []any{u.Root}, nil)
	}

	// The server's maximum holds whatever the client asks.
	ids, err := a.Files.Meta().ReserveEntryIDs(context.Background(), u.ID, 1100)
	if err != nil {
		t.Fatal(err)
	}
	many := make([]dfms.Entry, len(ids))
	for i, id := range ids {
		many[i] = dfms.Entry{ID: id, Owner: u.ID, Parent: u.Root, Name: fmt.Sprintf("many-%04d", i), Kind: dfms.KindFile, Mode: 0o644}
	}
	if _, err := a.Files.Meta().CreateEntries(context.Background(), many); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"", "?limit=5000"} {
		r := c.call(200, "GET", "/api/v1/fs/entries/{id}/children"+q, []any{u.Root}, nil)
		if n := len(asList(r.json["items"])); n != maxChildren || r.json["more"] != true {
			t.Errorf("children%s of %d entries: %d items, more %v; want %d and more", q, len(names)+len(ids), n, r.json["more"], maxChildren)
		}
	}
}

// GET /trash pages like the other listings: page and page_size (at most
// 100), with the total.
func TestTrashPaginated(t *testing.T) {
	a := newTestAPI(t, Deps{}, Config{})
	c := newClient(t, a)
	c.token = asString(c.call(201, "POST", "/api/v1/auth/register", nil,
		map[string]any{"email": "trash@example.com", "password": "a long password"}).json["access_token"])
	var ids []int64
	for i := range 5 {
		id := num(c.call(201, "POST", "/api/v1/folders", nil, map[string]any{"name": fmt.Sprintf("d%d", i)}).obj("folder")["id"])
		c.call(200, "DELETE", "/api/v1/folders/{id}", []any{id}, nil)
		ids = append(ids, id)
	}
	var got []int64
	for page := 1; page <= 3; page++ {
		r := c.call(200, "GET", fmt.Sprintf("/api/v1/trash?page=%d&page_size=2", page), nil, nil)
		if num(r.json["total"]) != 5 || num(r.json["total_pages"]) != 3 {
			t.Errorf("page %d: total %v of %v pages, want 5 of 3", page, r.json["total"], r.json["total_pages"])
		}
		for _, it := range asList(r.json["items"]) {
			got = append(got, num(asMap(it)["id"]))
		}
	}
	slices.Reverse(ids) // newest first
	if !slices.Equal(got, ids) {
		t.Errorf("pages of 2 give %v, want %v (newest first)", got, ids)
	}
	if r := c.call(200, "GET", "/api/v1/trash?page_size=1000", nil, nil); num(r.json["page_size"]) != maxPageSize {
		t.Errorf("page_size=1000: got page_size %v, want the maximum %d", r.json["page_size"], maxPageSize)
	}
	c.call(400, "GET", "/api/v1/trash?page=0", nil, nil)
}
