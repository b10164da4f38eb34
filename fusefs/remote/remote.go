// Package remote is the mount's backend over the REST API (vfs.Backend),
// which `dfms mount` uses: the /fs tree endpoints for the namespace and the
// chunk endpoints for content, through the typed client of server/api/client.
package remote

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/server/api/client"
)

// Backend is the mount's backend over the REST API (vfs.Backend): the
// /fs tree operations, and the chunk endpoints for content. Requests the
// server rate-limits are retried after the time it asks for.
//
// With a client made WithServerWait, every request but the change feed's
// waits for a server that cannot be reached (a restart, a network blip):
// reads, chunk uploads, attribute changes and commits (which carry their
// commit id) are safe to send again. Creates, renames and removals are
// not: when an attempt may have reached the server before the connection
// broke, the answer of the next one is checked against what the first
// would have done (create: a name taken by an entry as this create makes
// it, made meanwhile; rename: the old name gone, the new one there;
// unlink, rmdir and xattr removal: the name gone), and that counts as
// success (sameCreate).
type Backend struct {
	c *client.Client
	// PutConcurrency is how many chunk uploads run at once (default 4).
	PutConcurrency int
	// noChunkBatch: the server has no POST /chunks/batch (an older one).
	noChunkBatch atomic.Bool
}

var (
	_ vfs.Backend       = (*Backend)(nil)
	_ vfs.CommitBatcher = (*Backend)(nil)
)

// New returns the backend of c's user. It names c's requests
// with a new origin (Client.SetOrigin), by which the mount tells its own
// changes from others' in the change feed.
func New(c *client.Client) *Backend {
	c.SetOrigin(vfs.NewOrigin())
	return &Backend{c: c, PutConcurrency: 4}
}

// Origin implements vfs.Originator.
func (b *Backend) Origin() string { return b.c.Origin() }

// maxRetryWait bounds how long a rate-limited request is retried.
const maxRetryWait = 30 * time.Second

// call is doJSON with retries of 429 answers.
func (b *Backend) call(ctx context.Context, op dfms.Op, r client.Request, out any) error {
	deadline := time.Now().Add(maxRetryWait)
	for {
		if s, ok := r.Body.(io.Seeker); ok {
			// A body the last attempt consumed is sent again whole.
			if _, err := s.Seek(0, io.SeekStart); err != nil {
				return dfms.E(op, dfms.Other, err)
			}
		}
		err := b.c.DoJSON(ctx, op, r, out)
		if !dfms.Is(err, dfms.RateLimited) || time.Now().After(deadline) {
			return err
		}
		wait := time.Second
		var e *client.Error
		if errors.As(err, &e) && e.RetryAfter > 0 {
			wait = e.RetryAfter
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

// entryOf is the mount's entry of e, named by its current version's
// lasting id.
func entryOf(e client.FSEntry) vfs.Entry {
	kind, ok := dfms.ParseEntryKind(e.Kind)
	if !ok {
		kind = dfms.KindFile // a kind of a later server: shown as a file, whose reads it refuses
	}
	data := e.Size
	if e.DataSize != nil {
		data = *e.DataSize
	}
	return vfs.Entry{ID: e.ID, Parent: e.Parent, Name: e.Name, Kind: kind, Mode: e.Mode, UID: e.UID, GID: e.GID,
		Size: e.Size, DataSize: data, MTime: e.MTime, CTime: e.CTime, ATime: e.ATime, Target: e.Target, Rdev: e.Rdev, Nlink: e.Nlink, Version: e.VersionID, Live: e.Live}
}

func (b *Backend) entry(ctx context.Context, op dfms.Op, r client.Request) (vfs.Entry, error) {
	var out struct {
		Entry client.FSEntry `json:"entry"`
	}
	if err := b.call(ctx, op, r, &out); err != nil {
		return vfs.Entry{}, err
	}
	return entryOf(out.Entry), nil
}

func entryPath(id dfms.EntryID) string { return "/api/v1/fs/entries/" + client.PathID(id) }

func childPath(parent dfms.EntryID, name string) string {
	return entryPath(parent) + "/children/" + url.PathEscape(name)
}

// client.Root implements vfs.Backend.
func (b *Backend) Root(ctx context.Context) (vfs.Entry, error) {
	return b.entry(ctx, "client.fs.Root", client.Request{Method: http.MethodGet, Path: "/api/v1/fs/root", Retry: true})
}

// Lookup implements vfs.Backend.
func (b *Backend) Lookup(ctx context.Context, parent dfms.EntryID, name string) (vfs.Entry, error) {
	return b.entry(ctx, "client.fs.Lookup", client.Request{Method: http.MethodGet, Path: childPath(parent, name), Retry: true})
}

// GetAttr implements vfs.Backend; with a context of vfs.WithoutWait it
// fails at once if the server cannot be reached.
func (b *Backend) GetAttr(ctx context.Context, id dfms.EntryID) (vfs.Entry, error) {
	return b.entry(ctx, "client.fs.GetAttr", client.Request{Method: http.MethodGet, Path: entryPath(id), Retry: !vfs.NoWait(ctx)})
}

// ReadDir implements vfs.Backend. The server answers a page of names at
// a time, in name order; each page continues after the last name of the
// one before.
func (b *Backend) ReadDir(ctx context.Context, dir dfms.EntryID) ([]vfs.Entry, error) {
	es := []vfs.Entry{}
	q := url.Values{}
	for {
		var out struct {
			Items []client.FSEntry `json:"items"`
			More  bool             `json:"more"`
		}
		if err := b.call(ctx, "client.fs.ReadDir", client.Request{Method: http.MethodGet, Path: entryPath(dir) + "/children", Query: q, Retry: true}, &out); err != nil {
			return nil, err
		}
		for _, e := range out.Items {
			es = append(es, entryOf(e))
		}
		if !out.More || len(out.Items) == 0 {
			return es, nil
		}
		q = url.Values{"after": {out.Items[len(out.Items)-1].Name}}
	}
}

// create makes entry body["name"] in parent. When an attempt may have
// made it before its answer was lost, an answer Exist is checked with
// sameCreate.
func (b *Backend) create(ctx context.Context, op dfms.Op, parent dfms.EntryID, body map[string]any, want vfs.Entry) (vfs.Entry, error) {
	var delivered bool
	began := time.Now()
	e, err := b.entry(ctx, op, client.Request{Method: http.MethodPost, Path: entryPath(parent) + "/children", JSON: body, Retry: true, Delivered: &delivered})
	if err == nil || !delivered || !dfms.Is(err, dfms.Exist) {
		return e, err
	}
	if got, ok := b.sameCreate(ctx, parent, body["name"].(string), want, began, err); ok {
		return got, nil
	}
	return e, err
}

// sameCreate reports whether the entry named name in parent is the one a
// create of want (kind, mode, owner ids, target) began at began made:
// exist is the Exist the create was answered by a later attempt. It must
// be as that create makes it (a file without content, a directory
// without entries) and have been made since began, by the server's
// clock (the answer's Date, less the time since began, less 2 s for the
// Date's resolution). Another client's identical create of the same
// name within that span would pass too.
func (b *Backend) sameCreate(ctx context.Context, parent dfms.EntryID, name string, want vfs.Entry, began time.Time, exist error) (vfs.Entry, bool) {
	var ae *client.Error
	if !errors.As(exist, &ae) || ae.Date.IsZero() {
		return vfs.Entry{}, false
	}
	e, err := b.Lookup(ctx, parent, name)
	if err != nil || e.Kind != want.Kind || e.UID != want.UID || e.GID != want.GID || e.Target != want.Target || e.Rdev != want.Rdev {
		return vfs.Entry{}, false
	}
	if want.Kind != dfms.KindSymlink && e.Mode&0o7777 != want.Mode&0o7777 {
		return vfs.Entry{}, false
	}
	if e.CTime.Before(ae.Date.Add(-time.Since(began) - 2*time.Second)) {
		return vfs.Entry{}, false
	}
	switch e.Kind {
	case dfms.KindFile:
		if e.Version != 0 || e.Size != 0 {
			return vfs.Entry{}, false
		}
	case dfms.KindDir:
		var out struct {
			Items []client.FSEntry `json:"items"`
		}
		r := client.Request{Method: http.MethodGet, Path: entryPath(e.ID) + "/children", Query: url.Values{"limit": {"1"}}, Retry: true}
		if err := b.call(ctx, "client.fs.Mkdir", r, &out); err != nil || len(out.Items) > 0 {
			return vfs.Entry{}, false
		}
	}
	return e, true
}

// Mkdir implements vfs.Backend.
func (b *Backend) Mkdir(ctx context.Context, parent dfms.EntryID, name string, mode, uid, gid uint32) (vfs.Entry, error) {
	return b.create(ctx, "client.fs.Mkdir", parent, map[string]any{"name": name, "kind": "dir", "mode": mode & 0o7777, "uid": uid, "gid": gid},
		vfs.Entry{Kind: dfms.KindDir, Mode: mode, UID: uid, GID: gid})
}

// Symlink implements vfs.Backend.
func (b *Backend) Symlink(ctx context.Context, parent dfms.EntryID, name, target string, uid, gid uint32) (vfs.Entry, error) {
	return b.create(ctx, "client.fs.Symlink", parent, map[string]any{"name": name, "kind": "symlink", "target": target, "uid": uid, "gid": gid},
		vfs.Entry{Kind: dfms.KindSymlink, Target: target, UID: uid, GID: gid})
}

// Mknod implements vfs.Backend.
func (b *Backend) Mknod(ctx context.Context, parent dfms.EntryID, name string, kind dfms.EntryKind, mode, rdev, uid, gid uint32) (vfs.Entry, error) {
	if !kind.Special() {
		return vfs.Entry{}, dfms.Errorf("client.fs.Mknod", dfms.Invalid, "mknod makes FIFOs, sockets and devices")
	}
	return b.create(ctx, "client.fs.Mknod", parent,
		map[string]any{"name": name, "kind": kind.String(), "mode": mode & 0o7777, "rdev": rdev, "uid": uid, "gid": gid},
		vfs.Entry{Kind: kind, Mode: mode, Rdev: rdev, UID: uid, GID: gid})
}

// Link implements vfs.Backend. When an attempt may have made the link
// before its answer was lost, a later one's Exist is success if the name
// is the file's.
func (b *Backend) Link(ctx context.Context, id, parent dfms.EntryID, name string) (vfs.Entry, error) {
	var delivered bool
	e, err := b.entry(ctx, "client.fs.Link", client.Request{Method: http.MethodPost, Path: entryPath(id) + "/links",
		JSON: map[string]any{"parent_id": parent, "name": name}, Retry: true, Delivered: &delivered})
	if err != nil && delivered && dfms.Is(err, dfms.Exist) {
		if got, lerr := b.Lookup(ctx, parent, name); lerr == nil && got.ID == id {
			return got, nil
		}
	}
	return e, err
}

// CreateFile implements vfs.Backend.
func (b *Backend) CreateFile(ctx context.Context, parent dfms.EntryID, name string, mode, uid, gid uint32) (vfs.Entry, error) {
	return b.create(ctx, "client.fs.CreateFile", parent, map[string]any{"name": name, "kind": "file", "mode": mode & 0o7777, "uid": uid, "gid": gid},
		vfs.Entry{Kind: dfms.KindFile, Mode: mode, UID: uid, GID: gid})
}

// Readlink implements vfs.Backend.
func (b *Backend) Readlink(ctx context.Context, id dfms.EntryID) (string, error) {
	e, err := b.GetAttr(ctx, id)
	if err != nil {
		return "", err
	}
	if e.Kind != dfms.KindSymlink {
		return "", dfms.Errorf("client.fs.Readlink", dfms.Invalid, "not a symlink")
	}
	return e.Target, nil
}

// Manifest implements vfs.Backend.
func (b *Backend) Manifest(ctx context.Context, id dfms.EntryID, version int64) (vfs.VersionInfo, dfms.Manifest, error) {
	const op dfms.Op = "client.fs.Manifest"
	var out struct {
		Version   int64             `json:"version"`
		VersionID int64             `json:"version_id"`
		CreatedAt time.Time         `json:"created_at"`
		Chunks    []client.ChunkRef `json:"chunks"`
	}
	r := client.Request{Method: http.MethodGet, Path: "/api/v1/files/" + client.PathID(id) + "/manifest", Retry: true}
	if version > 0 {
		r.Path = "/api/v1/versions/" + strconv.FormatInt(version, 10) + "/manifest"
	}
	if err := b.call(ctx, op, r, &out); err != nil {
		return vfs.VersionInfo{}, dfms.Manifest{}, err
	}
	m, err := client.ManifestOf(out.Chunks)
	if err != nil {
		return vfs.VersionInfo{}, dfms.Manifest{}, dfms.E(op, dfms.Other, err)
	}
	return vfs.VersionInfo{ID: out.VersionID, Number: out.Version, Size: m.Size(), Time: out.CreatedAt}, m, nil
}

// ReadChunk implements vfs.Backend. A transfer cut short is sent again
// as a request the server did not answer is.
func (b *Backend) ReadChunk(ctx context.Context, _ dfms.EntryID, version int64, ref dfms.ChunkRef) ([]byte, error) {
	const op dfms.Op = "client.fs.ReadChunk"
	r := client.Request{Method: http.MethodGet, Path: fmt.Sprintf("/api/v1/versions/%d/chunks/%s", version, ref.Hash), Retry: true}
	deadline := time.Now().Add(maxRetryWait)
	for {
		var data []byte
		err := b.c.DoBody(ctx, op, r, func(body io.Reader) error {
			buf := bytes.NewBuffer(make([]byte, 0, ref.Size))
			if _, err := io.Copy(buf, io.LimitReader(body, int64(ref.Size)+1)); err != nil {
				return dfms.E(op, dfms.Unavailable, err)
			}
			data = buf.Bytes()
			return nil
		})
		if dfms.Is(err, dfms.RateLimited) && time.Now().Before(deadline) {
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
				return nil, err
			}
		}
		return data, err
	}
}

// Chunking implements vfs.Backend.
func (b *Backend) Chunking(ctx context.Context) (chunking.Params, error) {
	var out struct {
		Algorithm string `json:"algorithm"`
		Min       int    `json:"min_size"`
		Avg       int    `json:"avg_size"`
		Max       int    `json:"max_size"`
	}
	if err := b.call(ctx, "client.fs.Chunking", client.Request{Method: http.MethodGet, Path: "/api/v1/chunks/params", Retry: true}, &out); err != nil {
		return chunking.Params{}, err
	}
	p := chunking.Params{Algorithm: chunking.Algorithm(out.Algorithm), Min: out.Min, Avg: out.Avg, Max: out.Max}
	if err := p.Validate(); err != nil {
		return p, dfms.E("client.fs.Chunking", dfms.Other, err)
	}
	return p, nil
}

// maxMissingBatch is the server's bound on one missing-chunks question.
const maxMissingBatch = 10000

// Missing implements vfs.Backend.
func (b *Backend) Missing(ctx context.Context, hs []dfms.Hash) ([]dfms.Hash, error) {
	const op dfms.Op = "client.fs.Missing"
	var missing []dfms.Hash
	for len(hs) > 0 {
		n := min(len(hs), maxMissingBatch)
		strs := make([]string, n)
		for i, h := range hs[:n] {
			strs[i] = h.String()
		}
		var out struct {
			Missing []string `json:"missing"`
		}
		if err := b.call(ctx, op, client.Request{Method: http.MethodPost, Path: "/api/v1/chunks/missing", JSON: map[string]any{"hashes": strs}, Retry: true}, &out); err != nil {
			return nil, err
		}
		for _, s := range out.Missing {
			h, err := dfms.ParseHash(s)
			if err != nil {
				return nil, dfms.E(op, dfms.Other, err)
			}
			missing = append(missing, h)
		}
		hs = hs[n:]
	}
	return missing, nil
}

// PutChunks implements vfs.Backend: the chunks go in batches of up to
// 1024 chunks and 16 MiB (POST /chunks/batch), PutConcurrency batches at
// once; a server without that route is sent one chunk a request.
func (b *Backend) PutChunks(ctx context.Context, cs []dfms.ChunkData) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(b.PutConcurrency, 1))
	for len(cs) > 0 {
		n, size := 0, 0
		for n < len(cs) && n < maxChunkBatch && (n == 0 || size+len(cs[n].Data) <= maxChunkBatchBytes) {
			size += len(cs[n].Data)
			n++
		}
		batch := cs[:n]
		cs = cs[n:]
		g.Go(func() error { return b.putBatch(gctx, batch) })
	}
	return g.Wait()
}

// Bounds of one POST /chunks/batch (the server's).
const (
	maxChunkBatch      = 1024
	maxChunkBatchBytes = 16<<20 - maxChunkBatch*(dfms.HashSize+4)
)

// putBatch sends cs in one request, or one a chunk to a server that does
// not take batches.
func (b *Backend) putBatch(ctx context.Context, cs []dfms.ChunkData) error {
	const op dfms.Op = "client.fs.PutChunks"
	if !b.noChunkBatch.Load() {
		// The records (hash, length, bytes) are sent from the chunks'
		// own buffers: no copy of up to 16 MiB a batch.
		heads := make([]byte, 0, len(cs)*(dfms.HashSize+4))
		parts := make([][]byte, 0, 2*len(cs))
		for _, c := range cs {
			n := len(heads)
			heads = append(heads, c.Hash[:]...)
			heads = binary.BigEndian.AppendUint32(heads, uint32(len(c.Data)))
			parts = append(parts, heads[n:], c.Data)
		}
		body := newSlicesReader(parts)
		r := client.Request{Method: http.MethodPost, Path: "/api/v1/chunks/batch", Body: body, Size: body.size,
			Header: http.Header{"Content-Type": {"application/octet-stream"}}, Retry: true}
		err := b.call(ctx, op, r, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusNotFound || ce.Message != "no such route" {
			return err
		}
		b.noChunkBatch.Store(true) // an older server
	}
	for _, c := range cs {
		r := client.Request{Method: http.MethodPut, Path: "/api/v1/chunks/" + c.Hash.String(),
			Body: bytes.NewReader(c.Data), Size: int64(len(c.Data)),
			Header: http.Header{"Content-Type": {"application/octet-stream"}}, Retry: true}
		if err := b.call(ctx, op, r, nil); err != nil {
			return err
		}
	}
	return nil
}

// CommitManifest implements vfs.Backend. The server does not read the
// content back (defer_checksum): a commit costs the chunks that changed.
func (b *Backend) CommitManifest(ctx context.Context, c vfs.Commit) (vfs.Entry, error) {
	id, m, mtime := c.ID, c.Manifest, c.MTime
	body := map[string]any{"file_id": id, "base_version_id": c.Base, "require_base": c.RequireBase,
		"commit_id": c.CommitID, "defer_checksum": true, "chunks": client.ChunkRefs(m)}
	if !mtime.IsZero() {
		body["mtime"] = mtime.UTC()
	}
	// The answer names the version this commit made: asking again could
	// see a later one of another client's.
	var out struct {
		File    client.Entry `json:"file"`
		Version struct {
			ID int64 `json:"id"`
		} `json:"version"`
	}
	// A commit id makes the commit safe to send again: the server answers
	// a repeat with the version the first made.
	r := client.Request{Method: http.MethodPost, Path: "/api/v1/files/commit", JSON: body, Retry: c.CommitID != ""}
	if err := b.call(ctx, "client.fs.Commit", r, &out); err != nil {
		return vfs.Entry{}, err
	}
	return vfs.Entry{ID: id, Parent: out.File.ParentID, Name: out.File.Name, Kind: dfms.KindFile, Mode: out.File.Mode,
		Size: m.Size(), DataSize: m.DataSize(), MTime: out.File.UpdatedAt, CTime: out.File.ChangedAt, Version: out.Version.ID, Live: true}, nil
}

// CommitManifests implements vfs.CommitBatcher: one request for up to
// 256 commits (POST /api/v1/fs/commits).
func (b *Backend) CommitManifests(ctx context.Context, cs []vfs.Commit) ([]vfs.CommitResult, error) {
	const op dfms.Op = "client.fs.CommitManifests"
	return inBatches(len(cs), 256, func(lo, hi int) ([]vfs.CommitResult, error) { return b.commitBatch(ctx, op, cs[lo:hi]) })
}

func (b *Backend) commitBatch(ctx context.Context, op dfms.Op, cs []vfs.Commit) ([]vfs.CommitResult, error) {
	body := struct {
		Commits []client.Commit `json:"commits"`
	}{Commits: make([]client.Commit, len(cs))}
	retry := true // if every commit has an id
	for i, c := range cs {
		retry = retry && c.CommitID != ""
		body.Commits[i] = client.Commit{FileID: c.ID, BaseID: c.Base, RequireBase: c.RequireBase, CommitID: c.CommitID,
			Chunks: client.ChunkRefs(c.Manifest), MTime: optTime(c.MTime)}
	}
	out, err := b.postBatch(ctx, op, "/api/v1/fs/commits", body, len(cs), "commits", retry)
	if err != nil {
		return nil, err
	}
	res, err := commitResults(op, out)
	if err != nil {
		return nil, err
	}
	for i, r := range out {
		if res[i].Err == nil {
			res[i].Entry.Version = r.VersionID // the version this commit made
		}
	}
	return res, nil
}

// batchResult is one result of a batch request (POST /fs/commits,
// /fs/files, /fs/trash): an error, or else the entry made or changed
// (with the id of the version a commit made).
type batchResult struct {
	Entry     *client.FSEntry   `json:"entry"`
	VersionID int64             `json:"version_id"`
	Error     *client.ItemError `json:"error"`
}

// commitResults are the results of a batch as the mount takes them; a
// result with neither an entry nor an error is an error of the whole
// batch.
func commitResults(op dfms.Op, out []batchResult) ([]vfs.CommitResult, error) {
	res := make([]vfs.CommitResult, len(out))
	for i, r := range out {
		switch {
		case r.Error != nil:
			res[i].Err = r.Error.Err(op)
		case r.Entry != nil:
			res[i].Entry = entryOf(*r.Entry)
		default:
			return nil, dfms.E(op, dfms.Other, fmt.Errorf("result %d has neither an entry nor an error", i))
		}
	}
	return res, nil
}

// postBatch posts a batch request of n items (what they are: commits,
// files) to path and returns its n results.
func (b *Backend) postBatch(ctx context.Context, op dfms.Op, path string, body any, n int, what string, retry bool) ([]batchResult, error) {
	var out struct {
		Results []batchResult `json:"results"`
	}
	if err := b.call(ctx, op, client.Request{Method: http.MethodPost, Path: path, JSON: body, Retry: retry}, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != n {
		return nil, dfms.E(op, dfms.Other, fmt.Errorf("the server answered %d results for %d %s", len(out.Results), n, what))
	}
	return out.Results, nil
}

// inBatches calls send for the items [lo, hi) of n, at most most at a
// time, and returns all their results in order.
func inBatches[R any](n, most int, send func(lo, hi int) ([]R, error)) ([]R, error) {
	out := make([]R, 0, n)
	for lo := 0; lo < n; lo += most {
		res, err := send(lo, min(lo+most, n))
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// optTime is t in UTC for an optional time of a request: nil if zero.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// ReserveIDs implements vfs.FileCreator: ids reserved for this user
// (POST /fs/ids, up to 1024 a request), with which the mount names the
// files it creates before it tells the server.
func (b *Backend) ReserveIDs(ctx context.Context, n int) ([]dfms.EntryID, error) {
	const op dfms.Op = "client.fs.ReserveIDs"
	var ids []dfms.EntryID
	for len(ids) < n {
		var out struct {
			IDs []dfms.EntryID `json:"ids"`
		}
		k := min(n-len(ids), 1024)
		// Sent again, it reserves others: the first ones go unused.
		if err := b.call(ctx, op, client.Request{Method: http.MethodPost, Path: "/api/v1/fs/ids", JSON: map[string]int{"count": k}, Retry: true}, &out); err != nil {
			return nil, err
		}
		if len(out.IDs) != k {
			return nil, dfms.E(op, dfms.Other, fmt.Errorf("the server reserved %d ids of %d", len(out.IDs), k))
		}
		ids = append(ids, out.IDs...)
	}
	return ids, nil
}

// CreateFiles implements vfs.FileCreator: up to 256 creates a request
// (POST /fs/files, one transaction each). A request is sent again if its
// answer was lost: the server answers the files it made as made.
func (b *Backend) CreateFiles(ctx context.Context, es []vfs.Entry) ([]vfs.CommitResult, error) {
	const op dfms.Op = "client.fs.CreateFiles"
	return inBatches(len(es), 256, func(lo, hi int) ([]vfs.CommitResult, error) {
		body := struct {
			Files []client.NewFile `json:"files"`
		}{Files: make([]client.NewFile, 0, hi-lo)}
		for _, e := range es[lo:hi] {
			body.Files = append(body.Files, client.NewFile{ID: e.ID, Parent: e.Parent, Name: e.Name, Mode: e.Mode & 0o7777, UID: e.UID, GID: e.GID,
				MTime: optTime(e.MTime), CTime: optTime(e.CTime), ATime: optTime(e.ATime), Named: optTime(e.Named)})
		}
		out, err := b.postBatch(ctx, op, "/api/v1/fs/files", body, hi-lo, "files", true)
		if err != nil {
			return nil, err
		}
		return commitResults(op, out)
	})
}

// TrashFiles implements vfs.Trasher: the unlinks the mount made at once
// go to the server in batches of up to 1024 (POST /fs/trash, one
// transaction each). A batch is sent again if its answer was lost: the
// files it trashed are then not live, and answer NotExist, which the
// mount takes as done.
func (b *Backend) TrashFiles(ctx context.Context, ids []dfms.EntryID, at []time.Time) ([]error, error) {
	const op dfms.Op = "client.fs.TrashFiles"
	return inBatches(len(ids), 1024, func(lo, hi int) ([]error, error) {
		body := struct {
			Items []client.TrashItem `json:"items"`
		}{Items: make([]client.TrashItem, 0, hi-lo)}
		for i := lo; i < hi; i++ {
			body.Items = append(body.Items, client.TrashItem{ID: ids[i], At: optTime(at[i])})
		}
		out, err := b.postBatch(ctx, op, "/api/v1/fs/trash", body, hi-lo, "files", true)
		if err != nil {
			return nil, err
		}
		errs := make([]error, len(out))
		for i, r := range out {
			if r.Error != nil {
				errs[i] = r.Error.Err(op)
			}
		}
		return errs, nil
	})
}

// Versions implements vfs.Backend.
func (b *Backend) Versions(ctx context.Context, id dfms.EntryID) ([]vfs.VersionInfo, error) {
	var out struct {
		Versions []client.Version `json:"versions"`
	}
	if err := b.call(ctx, "client.fs.Versions", client.Request{Method: http.MethodGet, Path: "/api/v1/files/" + client.PathID(id) + "/versions", Retry: true}, &out); err != nil {
		return nil, err
	}
	vs := make([]vfs.VersionInfo, len(out.Versions))
	for i, v := range out.Versions {
		vs[i] = vfs.VersionInfo{ID: v.ID, Number: v.Version, Size: v.Size, Time: v.CreatedAt}
	}
	// The API lists newest first; the contract is oldest first.
	slices.SortFunc(vs, func(a, b vfs.VersionInfo) int { return cmp.Compare(a.Number, b.Number) })
	return vs, nil
}

// SetAttr implements vfs.Backend.
func (b *Backend) SetAttr(ctx context.Context, id dfms.EntryID, a dfms.SetAttr) (vfs.Entry, error) {
	body := map[string]any{}
	if a.Mode != nil {
		body["mode"] = *a.Mode & 0o7777
	}
	if a.UID != nil {
		body["uid"] = *a.UID
	}
	if a.GID != nil {
		body["gid"] = *a.GID
	}
	if a.MTime != nil {
		body["mtime"] = a.MTime.UTC()
	}
	if a.ATime != nil {
		body["atime"] = a.ATime.UTC()
	}
	if a.Accessed {
		body["accessed"] = true
	}
	// It sets values, not changes: safe to send again.
	return b.entry(ctx, "client.fs.SetAttr", client.Request{Method: http.MethodPatch, Path: entryPath(id), JSON: body, Retry: !vfs.NoWait(ctx)})
}

// Rename implements vfs.Backend. When an attempt may have moved the entry
// before its answer was lost, a later one's NotExist (the old name is
// gone) or Exist (the new name is taken) is success if the old name is
// gone and the new one there.
func (b *Backend) Rename(ctx context.Context, parent dfms.EntryID, name string, newParent dfms.EntryID, newName string, replace bool) error {
	var delivered bool
	err := b.call(ctx, "client.fs.Rename", client.Request{Method: http.MethodPost, Path: "/api/v1/fs/rename",
		JSON:  map[string]any{"parent_id": parent, "name": name, "new_parent_id": newParent, "new_name": newName, "replace": replace},
		Retry: true, Delivered: &delivered}, nil)
	if delivered && (dfms.Is(err, dfms.NotExist) || dfms.Is(err, dfms.Exist)) {
		if _, lerr := b.Lookup(ctx, parent, name); dfms.Is(lerr, dfms.NotExist) {
			if _, lerr := b.Lookup(ctx, newParent, newName); lerr == nil {
				return nil
			}
		}
	}
	return err
}

// remove sends r as a DELETE, retried. When an attempt may have removed
// what r names before its answer was lost, a later one's NotExist is
// success.
func (b *Backend) remove(ctx context.Context, op dfms.Op, r client.Request) error {
	var delivered bool
	r.Method, r.Retry, r.Delivered = http.MethodDelete, true, &delivered
	err := b.call(ctx, op, r, nil)
	if delivered && dfms.Is(err, dfms.NotExist) {
		return nil // an earlier attempt removed it
	}
	return err
}

// Unlink implements vfs.Backend. When an attempt may have removed the
// name before its answer was lost, a later one's NotExist is success.
func (b *Backend) Unlink(ctx context.Context, parent dfms.EntryID, name string) error {
	return b.remove(ctx, "client.fs.Unlink", client.Request{Path: childPath(parent, name)})
}

// Rmdir implements vfs.Backend, as Unlink.
func (b *Backend) Rmdir(ctx context.Context, parent dfms.EntryID, name string) error {
	return b.remove(ctx, "client.fs.Rmdir", client.Request{Path: childPath(parent, name), Query: url.Values{"dir": {"true"}}})
}

// Usage implements vfs.Backend.
func (b *Backend) Usage(ctx context.Context) (vfs.Usage, error) {
	var out struct {
		Used  int64 `json:"used_bytes"`
		Quota int64 `json:"quota_bytes"`
	}
	if err := b.call(ctx, "client.fs.Usage", client.Request{Method: http.MethodGet, Path: "/api/v1/storage/usage", Retry: true}, &out); err != nil {
		return vfs.Usage{}, err
	}
	return vfs.Usage{UsedBytes: out.Used, QuotaBytes: out.Quota}, nil
}

// LatestChange implements vfs.ChangeFeed.
func (b *Backend) LatestChange(ctx context.Context) (int64, error) {
	var out struct {
		Cursor int64 `json:"cursor"`
	}
	err := b.call(ctx, "client.fs.LatestChange", client.Request{Method: http.MethodGet, Path: "/api/v1/changes", Query: url.Values{"cursor": {"latest"}}}, &out)
	return out.Cursor, err
}

// Changes implements vfs.ChangeFeed with the long-polled change feed.
func (b *Backend) Changes(ctx context.Context, cursor int64, wait time.Duration) ([]vfs.Change, int64, error) {
	var out struct {
		Cursor  int64 `json:"cursor"`
		Changes []struct {
			Op       string       `json:"op"`
			FileID   dfms.EntryID `json:"file_id"`
			FolderID dfms.EntryID `json:"folder_id"`
			Version  int64        `json:"version_id"`
			Origin   string       `json:"origin"`
		} `json:"changes"`
	}
	q := url.Values{"cursor": {strconv.FormatInt(cursor, 10)}, "wait": {strconv.Itoa(int(wait / time.Second))}}
	// A long poll that outlives its wait is a stalled connection: fail it,
	// so that the mount stops trusting what it cached (vfs.FS.Watch).
	ctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	if err := b.c.DoJSON(ctx, "client.fs.Changes", client.Request{Method: http.MethodGet, Path: "/api/v1/changes", Query: q}, &out); err != nil {
		return nil, cursor, err
	}
	chs := make([]vfs.Change, len(out.Changes))
	for i, c := range out.Changes {
		chs[i] = vfs.Change{Entry: c.FileID, Parent: c.FolderID, Op: c.Op, Version: c.Version, Origin: c.Origin}
	}
	return chs, out.Cursor, nil
}

func xattrPath(id dfms.EntryID, name string) string {
	return entryPath(id) + "/xattrs/" + url.PathEscape(name)
}

// GetXattr implements vfs.Backend.
func (b *Backend) GetXattr(ctx context.Context, id dfms.EntryID, name string) ([]byte, bool, error) {
	var out struct {
		Value []byte `json:"value"`
	}
	err := b.call(ctx, "client.fs.GetXattr", client.Request{Method: http.MethodGet, Path: xattrPath(id, name), Retry: true}, &out)
	if dfms.Is(err, dfms.NotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if out.Value == nil {
		out.Value = []byte{}
	}
	return out.Value, true, nil
}

// ListXattrs implements vfs.Backend.
func (b *Backend) ListXattrs(ctx context.Context, id dfms.EntryID) ([]string, error) {
	var out struct {
		Names []string `json:"names"`
	}
	err := b.call(ctx, "client.fs.ListXattrs", client.Request{Method: http.MethodGet, Path: entryPath(id) + "/xattrs", Retry: true}, &out)
	return out.Names, err
}

// SetXattr implements vfs.Backend.
func (b *Backend) SetXattr(ctx context.Context, id dfms.EntryID, name string, value []byte, mode dfms.XattrMode) error {
	m := "any"
	switch mode {
	case dfms.XattrCreate:
		m = "create"
	case dfms.XattrReplace:
		m = "replace"
	}
	if value == nil {
		value = []byte{}
	}
	// Setting a value again is harmless, but a create's repeat finds it
	// there: success if it holds the value.
	var delivered bool
	err := b.call(ctx, "client.fs.SetXattr", client.Request{Method: http.MethodPut, Path: xattrPath(id, name),
		JSON: map[string]any{"value": value, "mode": m}, Retry: true, Delivered: &delivered}, nil)
	if delivered && mode == dfms.XattrCreate && dfms.Is(err, dfms.Exist) {
		if got, ok, gerr := b.GetXattr(ctx, id, name); gerr == nil && ok && bytes.Equal(got, value) {
			return nil
		}
	}
	return err
}

// RemoveXattr implements vfs.Backend, as Unlink.
func (b *Backend) RemoveXattr(ctx context.Context, id dfms.EntryID, name string) error {
	return b.remove(ctx, "client.fs.RemoveXattr", client.Request{Path: xattrPath(id, name)})
}
