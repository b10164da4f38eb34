package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	apiclient "github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// Chunk-level endpoints for smart clients (the mount): they chunk locally
// with the deployment's parameters, ask which chunks the server lacks,
// upload only those, and commit a manifest against the version they
// edited. Reads go through a file's manifest, so a caller can only fetch
// chunks of its own files.

func (a *API) chunkParams(c *gin.Context) {
	p := a.Files.Chunking()
	c.JSON(http.StatusOK, gin.H{"algorithm": p.Algorithm, "min_size": p.Min, "avg_size": p.Avg, "max_size": p.Max})
}

// maxMissing bounds one missing-chunks query.
const maxMissing = 10000

func (a *API) missingChunks(c *gin.Context) {
	var b struct {
		Hashes []string `json:"hashes"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	if len(b.Hashes) > maxMissing {
		a.bad(c, "at most %d hashes per request", maxMissing)
		return
	}
	hs := make([]dfms.Hash, len(b.Hashes))
	for i, s := range b.Hashes {
		h, err := dfms.ParseHash(s)
		if err != nil {
			a.fail(c, err)
			return
		}
		hs[i] = h
	}
	// Missing means missing for the caller: chunks it never sent are
	// reported even if another user stored them, so the answer reveals
	// nothing about other users' files (the server still stores them once).
	miss, err := a.index.UnownedChunks(c.Request.Context(), user(c).ID, hs)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]string, 0, len(miss))
	for _, h := range miss {
		if !h.IsZero() { // a hole's hash names no chunk: never to be sent
			out = append(out, h.String())
		}
	}
	c.JSON(http.StatusOK, gin.H{"missing": out})
}

func (a *API) putChunk(c *gin.Context) {
	h, ok := a.hashParam(c)
	if !ok {
		return
	}
	max := int64(a.Files.Chunking().Max)
	if c.Request.ContentLength > max {
		a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("chunks are at most %d bytes", max))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, max))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("chunks are at most %d bytes", max))
		return
	}
	if err != nil {
		a.bad(c, "reading the chunk: %v", err)
		return
	}
	isNew, err := a.Files.PutChunk(c.Request.Context(), user(c).ID, h, data)
	if err != nil {
		a.fail(c, err)
		return
	}
	// 201 when the caller did not have the chunk before, 200 when it did.
	// Whether someone else stored it is never revealed, by the answer or
	// by its timing (the bytes are written either way: see package files).
	a.metrics.bytesIn.Add(float64(len(data)))
	status := http.StatusOK
	if isNew {
		status = http.StatusCreated
		a.metrics.newChunks.Inc()
	}
	c.JSON(status, gin.H{"hash": h.String(), "size": len(data), "new": isNew})
}

// Bounds of one POST /chunks/batch: its chunks, and its body's bytes.
const (
	maxBatchChunks     = 1024
	maxBatchChunkBytes = 16 << 20
)

// putChunks stores a batch of chunks sent in one request (POST
// /chunks/batch): the body is a sequence of records, each a chunk's
// SHA-256 (32 bytes), its length (4 bytes, big-endian) and its bytes. A
// mount's write-back of many small files sends their chunks this way
// instead of one request each. Every chunk must hash to its name: one
// that does not fails the batch (400) and nothing is stored.
func (a *API) putChunks(c *gin.Context) {
	max := a.Files.Chunking().Max
	if c.Request.ContentLength > maxBatchChunkBytes {
		a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("a batch has at most %d bytes", maxBatchChunkBytes))
		return
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxBatchChunkBytes)
	var cs []dfms.ChunkData
	var bytesIn int
	for {
		var head [dfms.HashSize + 4]byte
		if _, err := io.ReadFull(body, head[:]); err == io.EOF {
			break
		} else if err != nil {
			a.batchReadError(c, err, "a chunk's record is cut short")
			return
		}
		n := int(binary.BigEndian.Uint32(head[dfms.HashSize:]))
		if n < 1 || n > max {
			a.bad(c, "chunk %d: a chunk has 1..%d bytes, not %d", len(cs), max, n)
			return
		}
		if len(cs) == maxBatchChunks {
			a.bad(c, "a batch has at most %d chunks", maxBatchChunks)
			return
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(body, data); err != nil {
			a.batchReadError(c, err, "a chunk's bytes are cut short")
			return
		}
		var h dfms.Hash
		copy(h[:], head[:dfms.HashSize])
		cs = append(cs, dfms.ChunkData{Hash: h, Data: data})
		bytesIn += n
	}
	if len(cs) == 0 {
		a.bad(c, "the batch holds no chunk")
		return
	}
	n, err := a.Files.PutChunks(c.Request.Context(), user(c).ID, cs, false)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.metrics.bytesIn.Add(float64(bytesIn))
	a.metrics.newChunks.Add(float64(n))
	c.JSON(http.StatusOK, gin.H{"chunks": len(cs), "new": n})
}

// batchReadError answers a body that could not be read as a batch: too
// large (413), cut short (400, what), or unreadable.
func (a *API) batchReadError(c *gin.Context, err error, what string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("a batch has at most %d bytes", maxBatchChunkBytes))
	case errors.Is(err, io.ErrUnexpectedEOF):
		a.bad(c, "%s", what)
	default:
		a.bad(c, "reading the batch: %v", err)
	}
}

// manifest returns a version's chunk list (?version=N, default current).
func (a *API) manifest(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	var n int64
	if s := c.Query("version"); s != "" {
		var err error
		if n, err = strconv.ParseInt(s, 10, 64); err != nil || n < 1 {
			a.bad(c, "version must be a positive number")
			return
		}
	}
	// Trashed files too: the mount reads a file unlinked while open.
	e, ok := a.owned(c, id)
	if !ok {
		return
	}
	v, err := a.Files.OpenVersion(c.Request.Context(), user(c).ID, id, n)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.manifestOut(c, v, v.Number == e.Version || n == 0)
}

// versionManifest returns the chunk list of the version with a lasting
// id (GET /versions/{vid}/manifest), whichever file holds it now.
func (a *API) versionManifest(c *gin.Context) {
	vid, ok := a.versionIDParam(c)
	if !ok {
		return
	}
	v, ok := a.versionByID(c, vid)
	if !ok {
		return
	}
	e, ok := a.owned(c, v.Entry)
	if !ok {
		return
	}
	a.manifestOut(c, v, v.ID == e.VersionID)
}

// versionByID returns the caller's version with the lasting id vid, or
// answers 404.
func (a *API) versionByID(c *gin.Context, vid int64) (dfms.Version, bool) {
	v, err := a.Files.VersionByID(c.Request.Context(), user(c).ID, vid)
	return v, a.check(c, err)
}

// manifestOut answers version v's chunk list.
func (a *API) manifestOut(c *gin.Context, v dfms.Version, current bool) {
	out := gin.H{"file_id": v.Entry, "version": v.Number, "version_id": v.ID, "current": current,
		"size": v.Manifest.Size(), "data_size": v.Manifest.DataSize(), "chunks": apiclient.ChunkRefs(*v.Manifest)}
	if !v.CreatedAt.IsZero() {
		out["created_at"] = v.CreatedAt.UTC()
	}
	if !v.SHA256.IsZero() { // unknown until computed for a version the mount committed
		out["checksum"] = v.SHA256.String()
	}
	c.JSON(http.StatusOK, out)
}

// getChunk returns one chunk of one of the caller's versions, verified.
func (a *API) getChunk(c *gin.Context) {
	id, n, ok := a.fileVersionParams(c)
	if !ok {
		return
	}
	h, ok := a.hashParam(c)
	if !ok {
		return
	}
	if _, ok := a.owned(c, id); !ok { // trashed too, as manifest
		return
	}
	ref, err := a.versionChunk(c.Request.Context(), user(c).ID, id, n, h)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.chunkOut(c, ref)
}

// versionIDChunk returns one chunk of the version with a lasting id
// (GET /versions/{vid}/chunks/{hash}), verified.
func (a *API) versionIDChunk(c *gin.Context) {
	vid, ok := a.versionIDParam(c)
	if !ok {
		return
	}
	h, ok := a.hashParam(c)
	if !ok {
		return
	}
	if h.IsZero() {
		a.fail(c, errHoleChunk)
		return
	}
	v, ok := a.versionByID(c, vid)
	if !ok {
		return
	}
	i := slices.IndexFunc(v.Manifest.Chunks, func(r dfms.ChunkRef) bool { return r.Hash == h })
	if i < 0 {
		a.fail(c, dfms.Errorf("", dfms.NotExist, "no such chunk in this version"))
		return
	}
	a.chunkOut(c, v.Manifest.Chunks[i])
}

// errHoleChunk answers a request for the chunk of a hole: its bytes are
// zeros that the client makes itself.
var errHoleChunk = dfms.Errorf("", dfms.NotExist, "the zero hash names a hole, not a chunk")

// chunkOut answers the bytes of chunk ref, verified.
func (a *API) chunkOut(c *gin.Context, ref dfms.ChunkRef) {
	data, err := a.Files.ReadChunk(c.Request.Context(), ref, nil)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.metrics.bytesOut.Add(float64(len(data)))
	c.Header("ETag", `"`+ref.Hash.String()+`"`)
	c.Header("Cache-Control", "private, max-age=31536000, immutable")
	c.Data(http.StatusOK, "application/octet-stream", data)
}

// versionChunk returns chunk h of version n of file id. A chunk that
// version does not hold is still served if the caller owns it (sent or
// committed it): version numbers move when a rename over a file adopts
// its history, and a reader that opened the old number must not fail.
func (a *API) versionChunk(ctx context.Context, owner dfms.UserID, id dfms.EntryID, n int64, h dfms.Hash) (dfms.ChunkRef, error) {
	if h.IsZero() {
		return dfms.ChunkRef{}, errHoleChunk
	}
	v, err := a.Files.OpenVersion(ctx, owner, id, n)
	if err != nil && !dfms.Is(err, dfms.NotExist) {
		return dfms.ChunkRef{}, err
	}
	if err == nil {
		if i := slices.IndexFunc(v.Manifest.Chunks, func(r dfms.ChunkRef) bool { return r.Hash == h }); i >= 0 {
			return v.Manifest.Chunks[i], nil
		}
	}
	unowned, err := a.index.UnownedChunks(ctx, owner, []dfms.Hash{h})
	if err != nil {
		return dfms.ChunkRef{}, err
	}
	if len(unowned) > 0 {
		return dfms.ChunkRef{}, dfms.Errorf("", dfms.NotExist, "no such chunk in this version")
	}
	ch, err := a.index.GetChunk(ctx, h)
	if err != nil {
		return dfms.ChunkRef{}, err
	}
	return dfms.ChunkRef{Hash: h, Size: uint32(ch.Size)}, nil
}

// commitManifest commits a version from chunks the client stored.
func (a *API) commitManifest(c *gin.Context) {
	var b struct {
		FileID      optionalID           `json:"file_id"`
		FolderID    optionalID           `json:"folder_id"`
		Name        string               `json:"name"`
		BaseVersion int64                `json:"base_version"`
		BaseID      int64                `json:"base_version_id"`
		RequireBase bool                 `json:"require_base"`
		CommitID    string               `json:"commit_id"`
		Checksum    string               `json:"checksum"`
		Defer       bool                 `json:"defer_checksum"` // accepted; every commit without a checksum defers it
		MIMEType    string               `json:"mime_type"`
		Mode        uint32               `json:"mode"`
		MTime       *time.Time           `json:"mtime"`
		Chunks      []apiclient.ChunkRef `json:"chunks"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	mt, ok := a.mediaType(c, "mime_type", b.MIMEType)
	if !ok {
		return
	}
	u := user(c)
	if len(b.CommitID) > meta.MaxCommitIDLen {
		a.bad(c, "commit_id has at most %d bytes", meta.MaxCommitIDLen)
		return
	}
	req := meta.CommitRequest{Owner: u.ID, Name: b.Name, Base: b.BaseID, RequireBase: b.RequireBase,
		CommitID: b.CommitID, MIME: mt, Mode: b.Mode & 0o7777, CreatedBy: u.ID}
	if b.MTime != nil {
		if !a.validTime(c, "mtime", *b.MTime) {
			return
		}
		req.MTime = *b.MTime
	}
	if b.FileID.set && b.FileID.raw != "null" {
		id, err := dfms.ParseEntryID(string(bytes.Trim([]byte(b.FileID.raw), `"`)))
		if err != nil {
			a.bad(c, "file_id is not an id")
			return
		}
		req.Entry = id
	} else {
		var ok bool
		if req.Parent, ok = a.folderRef(c, b.FolderID.raw); !ok || !a.validName(c, b.Name) {
			return
		}
	}
	if b.Checksum != "" { // optional: computed by the server if absent, verified if given
		sum, err := dfms.ParseHash(b.Checksum)
		if err != nil {
			a.bad(c, "checksum must be the hex SHA-256 of the whole content")
			return
		}
		req.SHA256 = sum
	}
	var err error
	if req.Manifest, err = apiclient.ManifestOf(b.Chunks); err != nil {
		a.fail(c, err)
		return
	}
	// A hole (the hash of 64 zeros) is zeros that store nothing: the
	// limits count the data the chunks hold.
	size := req.Manifest.DataSize()
	if size > a.cfg.MaxUploadSize {
		a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("files are limited to %d bytes", a.cfg.MaxUploadSize))
		return
	}
	if !a.chargeUpload(c, size) {
		return
	}
	if b.BaseVersion != 0 && !a.baseByNumber(c, &req, b.BaseVersion) {
		return
	}
	if req.MIME == "" && b.Name != "" {
		req.MIME = mime.TypeByExtension(path.Ext(b.Name))
	}
	// The content is read back only to verify a checksum the client
	// declared; otherwise the checksum is computed on first download
	// (defer_checksum is the default now, and kept for old clients).
	res, err := a.Files.Commit(c.Request.Context(), req, files.CommitOptions{Verify: !req.SHA256.IsZero()})
	if err != nil {
		var mce *meta.MissingChunksError
		if errors.As(err, &mce) {
			c.AbortWithStatusJSON(http.StatusConflict, errorBody{Error: a.itemError(c, err)})
			return
		}
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"file": view(res.Entry), "version": versionOf(res.Version, res.Entry.Version)})
}

// baseByNumber sets req's base to the version now numbered n of the file
// it commits to: base_version names the base by number, as a client that
// listed the versions sees it. With require_base, a file at another
// version fails now; the commit then checks the id again, atomically.
func (a *API) baseByNumber(c *gin.Context, req *meta.CommitRequest, n int64) bool {
	ctx, owner := c.Request.Context(), user(c).ID
	var e dfms.Entry
	var err error
	if req.Entry != 0 {
		e, err = a.tree.GetEntry(ctx, owner, req.Entry)
	} else if e, err = a.tree.Lookup(ctx, owner, req.Parent, req.Name); dfms.Is(err, dfms.NotExist) {
		err = nil // a new file, at version 0
	}
	if err != nil {
		a.fail(c, err)
		return false
	}
	if e.Version == n {
		req.Base = e.VersionID
		return true
	}
	if req.RequireBase {
		if req.CommitID != "" {
			// Perhaps this commit, made before: the store answers it if
			// so, and refuses the base (no version has ID -1) if not.
			req.Base = -1
			return true
		}
		a.fail(c, dfms.Errorf("api.commit", dfms.Conflict, fmt.Sprintf("the file is at version %d, not %d", e.Version, n)))
		return false
	}
	if v, err := a.versions.GetVersion(ctx, owner, e.ID, n); err == nil {
		req.Base = v.ID
	}
	return true
}

// changes is the change feed: the caller's journal after ?cursor=N. With
// ?wait=DURATION (at most 60 s) it long-polls until something changes.
func (a *API) changes(c *gin.Context) {
	u := user(c)
	var cursor int64
	if c.Query("cursor") == "latest" {
		// Where a new client starts: nothing of the past, only what follows.
		last, err := a.journal.LastChange(c.Request.Context(), u.ID)
		if err != nil {
			a.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"cursor": last, "changes": []any{}, "more": false})
		return
	}
	if s := c.Query("cursor"); s != "" {
		var err error
		if cursor, err = strconv.ParseInt(s, 10, 64); err != nil || cursor < 0 {
			a.bad(c, "cursor must be a non-negative number")
			return
		}
	}
	var wait time.Duration
	if s := c.Query("wait"); s != "" {
		var err error
		if wait, err = time.ParseDuration(s); err != nil || wait < 0 {
			if secs, ierr := strconv.Atoi(s); ierr == nil && secs >= 0 {
				wait, err = time.Duration(secs)*time.Second, nil
			} else {
				a.bad(c, "wait must be a duration such as 25s")
				return
			}
		}
		wait = min(wait, time.Minute)
	}
	deadline := time.Now().Add(wait)
	for {
		chs, err := a.journal.Changes(c.Request.Context(), u.ID, cursor, 1000)
		if err != nil {
			a.fail(c, err)
			return
		}
		if len(chs) > 0 || !time.Now().Before(deadline) {
			type changeView struct {
				Seq      int64        `json:"seq"`
				Op       string       `json:"op"`
				FileID   dfms.EntryID `json:"file_id"`
				FolderID dfms.EntryID `json:"folder_id"`
				Version  int64        `json:"version_id,omitempty"` // the version made current (negated: deleted)
				At       time.Time    `json:"at"`
				Origin   string       `json:"origin,omitempty"`
			}
			out := make([]changeView, len(chs))
			next := cursor
			for i, ch := range chs {
				out[i] = changeView{ch.Seq, ch.Op, ch.Entry, ch.Parent, ch.Version, ch.At.UTC(), ch.Origin}
				next = ch.Seq
			}
			c.JSON(http.StatusOK, gin.H{"cursor": next, "changes": out, "more": len(chs) == 1000})
			return
		}
		select {
		case <-c.Request.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// owned is live, but also finds the caller's entries in the trash.
func (a *API) owned(c *gin.Context, id dfms.EntryID) (dfms.Entry, bool) {
	e, err := a.tree.GetEntry(c.Request.Context(), user(c).ID, id)
	return e, a.check(c, err)
}
