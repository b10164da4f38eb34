package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/dfms/dfms"
)

// Root names the caller's root folder wherever a folder id is taken.
const Root dfms.EntryID = 0

// Login exchanges an email and a password for a token pair, which the
// client keeps and hands to its TokenSaver.
func (c *Client) Login(ctx context.Context, email, password string) (User, error) {
	const op dfms.Op = "client.Login"
	var out struct {
		User User `json:"user"`
		Tokens
	}
	err := c.DoJSON(ctx, op, Request{Method: http.MethodPost, Path: "/api/v1/auth/login", Anonymous: true,
		JSON: map[string]string{"email": email, "password": password}}, &out)
	if err != nil {
		return User{}, err
	}
	if out.Access == "" || out.Refresh == "" {
		return User{}, dfms.Errorf(op, dfms.Other, "the login answer holds no tokens")
	}
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	c.SetTokens(out.Tokens)
	if c.save != nil {
		if err := c.save(out.Tokens); err != nil {
			return out.User, dfms.E(op, dfms.Other, fmt.Errorf("saving the tokens: %w", err))
		}
	}
	return out.User, nil
}

// Logout revokes the client's login on the server (every token of it) and
// forgets the tokens. Logging out without tokens does nothing.
func (c *Client) Logout(ctx context.Context) error {
	const op dfms.Op = "client.Logout"
	t := c.Tokens()
	if t.Refresh == "" {
		return nil
	}
	err := c.DoJSON(ctx, op, Request{Method: http.MethodPost, Path: "/api/v1/auth/logout", Anonymous: true,
		JSON: map[string]string{"refresh_token": t.Refresh}}, nil)
	if err != nil {
		return err
	}
	c.SetTokens(Tokens{})
	return nil
}

// Me returns the logged-in user.
func (c *Client) Me(ctx context.Context) (User, error) {
	var out struct {
		User User `json:"user"`
	}
	err := c.DoJSON(ctx, "client.Me", Request{Method: http.MethodGet, Path: "/api/v1/auth/me"}, &out)
	return out.User, err
}

// Stat returns an entry (Root: the root folder).
func (c *Client) Stat(ctx context.Context, id dfms.EntryID) (Entry, error) {
	var out struct {
		File Entry `json:"file"`
	}
	err := c.DoJSON(ctx, "client.Stat", Request{Method: http.MethodGet, Path: "/api/v1/files/" + PathID(id)}, &out)
	return out.File, err
}

// pageSize is the API's largest page.
const pageSize = 100

// List returns every entry of a folder, sorted by name.
func (c *Client) List(ctx context.Context, folder dfms.EntryID) ([]Entry, error) {
	var all []Entry
	err := c.listPages(ctx, "client.List", folder, func(es []Entry) bool {
		all = append(all, es...)
		return true
	})
	return all, err
}

// ListPath is List of the folder at a path such as /docs.
func (c *Client) ListPath(ctx context.Context, p string) ([]Entry, error) {
	e, err := c.Resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, dfms.Errorf("client.ListPath", dfms.NotDir, p+" is not a folder")
	}
	return c.List(ctx, e.ID)
}

// listPages calls fn with each page of a folder until fn returns false.
func (c *Client) listPages(ctx context.Context, op dfms.Op, folder dfms.EntryID, fn func([]Entry) bool) error {
	for page := 1; ; page++ {
		var out struct {
			Contents   []Entry `json:"contents"`
			TotalPages int     `json:"total_pages"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "page_size": {strconv.Itoa(pageSize)}, "sort": {"name"}}
		err := c.DoJSON(ctx, op, Request{Method: http.MethodGet,
			Path: "/api/v1/folders/" + PathID(folder) + "/contents", Query: q}, &out)
		if err != nil {
			return err
		}
		if !fn(out.Contents) || page >= out.TotalPages || len(out.Contents) == 0 {
			return nil
		}
	}
}

// Lookup finds the entry called name in a folder.
func (c *Client) Lookup(ctx context.Context, folder dfms.EntryID, name string) (Entry, error) {
	const op dfms.Op = "client.Lookup"
	var found *Entry
	err := c.listPages(ctx, op, folder, func(es []Entry) bool {
		for i := range es {
			if es[i].Name == name {
				found = &es[i]
				return false
			}
		}
		return true
	})
	if err != nil {
		return Entry{}, err
	}
	if found == nil {
		return Entry{}, dfms.Errorf(op, dfms.NotExist, fmt.Sprintf("no %q in folder %s", name, PathID(folder)))
	}
	return *found, nil
}

// SplitPath cleans a remote path ("/docs/a.txt", "docs//a.txt/") into its
// names; the root folder has none.
func SplitPath(p string) []string {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// Resolve walks a remote path such as /docs/a.txt from the root folder,
// listing each folder on the way. A missing name has kind NotExist, and a
// file in the middle of the path kind NotDir.
func (c *Client) Resolve(ctx context.Context, p string) (Entry, error) {
	const op dfms.Op = "client.Resolve"
	e, err := c.Stat(ctx, Root)
	if err != nil {
		return Entry{}, err
	}
	walked := ""
	for _, name := range SplitPath(p) {
		if !e.IsDir() {
			return Entry{}, dfms.Errorf(op, dfms.NotDir, walked+" is not a folder")
		}
		walked += "/" + name
		if name == "." || name == ".." {
			return Entry{}, dfms.Errorf(op, dfms.Invalid, fmt.Sprintf("%s: . and .. are not names", p))
		}
		next, err := c.Lookup(ctx, e.ID, name)
		if dfms.Is(err, dfms.NotExist) {
			return Entry{}, dfms.Errorf(op, dfms.NotExist, walked+": no such file or folder")
		}
		if err != nil {
			return Entry{}, err
		}
		e = next
	}
	return e, nil
}

// Mkdir creates a folder in parent (Root: the root folder).
func (c *Client) Mkdir(ctx context.Context, parent dfms.EntryID, name string) (Entry, error) {
	var out struct {
		Folder Entry `json:"folder"`
	}
	err := c.DoJSON(ctx, "client.Mkdir", Request{Method: http.MethodPost, Path: "/api/v1/folders",
		JSON: map[string]any{"name": name, "parent_id": PathID(parent)}}, &out)
	return out.Folder, err
}

// Move renames an entry and/or moves it to another folder. An empty
// newName keeps the name; newParent Root is the root folder.
func (c *Client) Move(ctx context.Context, id, newParent dfms.EntryID, newName string) (Entry, error) {
	body := map[string]any{"parent_id": PathID(newParent)}
	if newName != "" {
		body["name"] = newName
	}
	var out struct {
		File Entry `json:"file"`
	}
	err := c.DoJSON(ctx, "client.Move", Request{Method: http.MethodPatch, Path: "/api/v1/files/" + PathID(id), JSON: body}, &out)
	return out.File, err
}

// Delete moves a file or a whole folder to the trash.
func (c *Client) Delete(ctx context.Context, id dfms.EntryID) error {
	const op dfms.Op = "client.Delete"
	err := c.DoJSON(ctx, op, Request{Method: http.MethodDelete, Path: "/api/v1/files/" + PathID(id)}, nil)
	if dfms.Is(err, dfms.IsDir) {
		// Folders have their own route; trying the file route first saves
		// a request in the common case.
		err = c.DoJSON(ctx, op, Request{Method: http.MethodDelete, Path: "/api/v1/folders/" + PathID(id)}, nil)
	}
	return err
}

// Versions returns a file's versions, newest first.
func (c *Client) Versions(ctx context.Context, id dfms.EntryID) ([]Version, error) {
	var out struct {
		Versions []Version `json:"versions"`
	}
	err := c.DoJSON(ctx, "client.Versions", Request{Method: http.MethodGet, Path: "/api/v1/files/" + PathID(id) + "/versions"}, &out)
	return out.Versions, err
}

// RestoreVersion makes a copy of version n the file's new current version.
func (c *Client) RestoreVersion(ctx context.Context, id dfms.EntryID, n int64) (Entry, Version, error) {
	var out struct {
		File    Entry   `json:"file"`
		Version Version `json:"version"`
	}
	err := c.DoJSON(ctx, "client.RestoreVersion", Request{Method: http.MethodPost,
		Path: fmt.Sprintf("/api/v1/files/%s/versions/%d/restore", PathID(id), n)}, &out)
	return out.File, out.Version, err
}

// SearchOptions narrow a search.
type SearchOptions struct {
	// Type is file, folder, symlink, or a MIME type or prefix (image/).
	Type string
	// Folder limits the search to a folder's subtree (Root: everywhere).
	Folder dfms.EntryID
	// Limit bounds the results (0: all).
	Limit int
}

// Search finds the caller's live entries whose name matches text. It
// returns the results (at most o.Limit) and the total number of matches.
func (c *Client) Search(ctx context.Context, text string, o SearchOptions) ([]Entry, int, error) {
	var all []Entry
	for page := 1; ; page++ {
		var out struct {
			Results    []Entry `json:"results"`
			Total      int     `json:"total"`
			TotalPages int     `json:"total_pages"`
		}
		q := url.Values{"q": {text}, "page": {strconv.Itoa(page)}, "page_size": {strconv.Itoa(pageSize)}}
		if o.Type != "" {
			q.Set("type", o.Type)
		}
		if o.Folder != Root {
			q.Set("folder_id", o.Folder.String())
		}
		if err := c.DoJSON(ctx, "client.Search", Request{Method: http.MethodGet, Path: "/api/v1/search", Query: q}, &out); err != nil {
			return nil, 0, err
		}
		all = append(all, out.Results...)
		if o.Limit > 0 && len(all) >= o.Limit {
			return all[:o.Limit], out.Total, nil
		}
		if page >= out.TotalPages || len(out.Results) == 0 {
			return all, out.Total, nil
		}
	}
}
