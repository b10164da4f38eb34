package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	apiclient "github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// uploadView is the answer to an upload: the file plus what it cost.
type uploadView struct {
	apiclient.Entry
	ChunkCount  int   `json:"chunk_count"`
	NewChunks   int   `json:"new_chunks"`
	DedupChunks int   `json:"dedup_chunks"`
	NewBytes    int64 `json:"new_bytes"`
}

// upload stores a file from a raw body (X-File-Name, optional X-Folder-ID)
// or from multipart/form-data (field "file"; optional fields "folder_id"
// and "name" before it). The body streams through the chunker: it is
// never held whole in memory or spilled to disk.
func (a *API) upload(c *gin.Context) {
	u := user(c)
	ct, params, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	req := files.WriteRequest{Owner: u.ID, MaxSize: a.cfg.MaxUploadSize}
	if ct == "multipart/form-data" {
		mr, err := c.Request.MultipartReader()
		if err != nil || params["boundary"] == "" {
			a.bad(c, "malformed multipart/form-data body")
			return
		}
		folder := ""
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				a.bad(c, `multipart/form-data body without a "file" field`)
				return
			}
			if err != nil {
				a.bad(c, "malformed multipart/form-data body: %v", err)
				return
			}
			switch part.FormName() {
			case "folder_id", "name":
				v, err := io.ReadAll(io.LimitReader(part, 4096))
				if err != nil {
					a.bad(c, "malformed field %s", part.FormName())
					return
				}
				if part.FormName() == "name" {
					req.Name = string(v)
				} else {
					folder = string(v)
				}
				continue
			case "file":
			default:
				continue
			}
			if req.Name == "" {
				req.Name = part.FileName()
			}
			var ok bool
			if req.MIME, ok = a.mediaType(c, "the file's Content-Type", part.Header.Get("Content-Type")); !ok {
				return
			}
			req.Body = part
			break
		}
		var ok bool
		if req.Parent, ok = a.folderRef(c, folder); !ok {
			return
		}
	} else {
		// X-File-Name is percent-decoded (so that any name, including
		// bytes a header cannot carry, can be sent; a literal % is %25).
		// ?name= is decoded once, as every query parameter.
		name := c.GetHeader("X-File-Name")
		if name != "" {
			if dec, err := url.PathUnescape(name); err == nil {
				name = dec
			} else {
				a.bad(c, "X-File-Name is not validly percent-encoded (send a literal %% as %%25)")
				return
			}
		} else {
			name = c.Query("name")
		}
		if name == "" {
			a.bad(c, "name the file with the X-File-Name header (or ?name=)")
			return
		}
		folder := c.GetHeader("X-Folder-ID")
		if folder == "" {
			folder = c.Query("folder_id")
		}
		var ok bool
		if req.Parent, ok = a.folderRef(c, folder); !ok {
			return
		}
		if req.MIME, ok = a.mediaType(c, "Content-Type", c.GetHeader("Content-Type")); !ok {
			return
		}
		req.Name, req.Body = name, c.Request.Body
		if c.Request.ContentLength > a.cfg.MaxUploadSize {
			a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("uploads are limited to %d bytes", a.cfg.MaxUploadSize))
			return
		}
	}
	if !a.validName(c, req.Name) {
		return
	}
	if req.MIME == "" || req.MIME == "application/octet-stream" {
		if t := mime.TypeByExtension(path.Ext(req.Name)); t != "" {
			req.MIME = t
		} else {
			req.MIME = "application/octet-stream"
		}
	}
	res, err := a.Files.Write(c.Request.Context(), req)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.metrics.bytesIn.Add(float64(res.Version.Size))
	a.metrics.newChunks.Add(float64(res.NewChunks))
	a.metrics.dedup.Add(float64(res.DedupChunks))
	c.JSON(http.StatusCreated, uploadView{Entry: view(res.Entry), ChunkCount: res.Chunks,
		NewChunks: res.NewChunks, DedupChunks: res.DedupChunks, NewBytes: res.NewBytes})
}

// listOptions parses sort and order.
func (a *API) listOptions(c *gin.Context, p page) (meta.ListOptions, bool) {
	o := meta.ListOptions{Offset: p.offset(), Limit: p.size}
	switch c.DefaultQuery("sort", "name") {
	case "name":
		o.Sort = meta.SortName
	case "size":
		o.Sort = meta.SortSize
	case "updated_at", "mtime", "date":
		o.Sort = meta.SortMTime
	default:
		a.bad(c, "sort must be name, size or updated_at")
		return o, false
	}
	switch c.DefaultQuery("order", "asc") {
	case "asc":
	case "desc":
		o.Desc = true
	default:
		a.bad(c, "order must be asc or desc")
		return o, false
	}
	return o, true
}

// listDir answers one page of a folder.
func (a *API) listDir(c *gin.Context, dir dfms.EntryID, key string) {
	p, ok := a.pageParams(c)
	if !ok {
		return
	}
	o, ok := a.listOptions(c, p)
	if !ok {
		return
	}
	u := user(c)
	total, err := a.tree.CountDir(c.Request.Context(), u.ID, dir)
	if err != nil {
		a.fail(c, err)
		return
	}
	es, err := a.tree.ListDir(c.Request.Context(), u.ID, dir, o)
	if err != nil {
		a.fail(c, err)
		return
	}
	body := pageBody(key, views(es), total, p)
	body["folder_id"] = dir
	c.JSON(http.StatusOK, body)
}

func (a *API) listFiles(c *gin.Context) {
	dir, ok := a.folderRef(c, c.Query("folder_id"))
	if !ok {
		return
	}
	a.listDir(c, dir, "files")
}

func (a *API) folderContents(c *gin.Context) {
	dir, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	a.listDir(c, dir, "contents")
}

// createFolder creates a folder (POST /folders).
func (a *API) createFolder(c *gin.Context) {
	var b struct {
		Name     string     `json:"name"`
		ParentID optionalID `json:"parent_id"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	parent, ok := a.folderRef(c, b.ParentID.raw)
	if !ok || !a.validName(c, b.Name) {
		return
	}
	e, err := a.Files.Mkdir(c.Request.Context(), user(c).ID, parent, b.Name, 0o755)
	a.reply(c, http.StatusCreated, gin.H{"folder": view(e)}, err)
}

// live returns a live entry of the caller, or answers 404.
func (a *API) live(c *gin.Context, id dfms.EntryID) (dfms.Entry, bool) {
	e, err := a.Files.Stat(c.Request.Context(), user(c).ID, id)
	return e, a.check(c, err)
}

// liveParam parses :id and returns that live entry of the caller, or
// answers 400 or 404.
func (a *API) liveParam(c *gin.Context) (dfms.Entry, bool) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return dfms.Entry{}, false
	}
	return a.live(c, id)
}

// liveVersionParams parses :id and :version: a live entry of the caller
// and a version number, or it answers 400 or 404.
func (a *API) liveVersionParams(c *gin.Context) (dfms.Entry, int64, bool) {
	id, n, ok := a.fileVersionParams(c)
	if !ok {
		return dfms.Entry{}, 0, false
	}
	e, ok := a.live(c, id)
	return e, n, ok
}

func (a *API) getFile(c *gin.Context) {
	e, ok := a.liveParam(c)
	if !ok || !a.kindMatchesRoute(c, e) {
		return
	}
	c.JSON(http.StatusOK, gin.H{"file": view(e)})
}

// kindMatchesRoute answers 400 when a /folders route names a file or
// symlink (files routes accept folders too: they are entries).
func (a *API) kindMatchesRoute(c *gin.Context, e dfms.Entry) bool {
	if strings.HasPrefix(c.FullPath(), "/api/v1/folders") && e.Kind != dfms.KindDir {
		a.fail(c, dfms.Errorf("", dfms.NotDir, "this is not a folder"))
		return false
	}
	return true
}

func (a *API) download(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	a.serve(c, id, 0)
}

func (a *API) downloadVersion(c *gin.Context) {
	id, n, ok := a.fileVersionParams(c)
	if !ok {
		return
	}
	a.serve(c, id, n)
}

// serve streams a version (0: current) with Range, ETag and checksum
// headers. Chunks are verified as they stream; if one fails after the
// headers went out, the connection is cut so the client cannot mistake a
// short or wrong body for the file.
func (a *API) serve(c *gin.Context, id dfms.EntryID, number int64) {
	u := user(c)
	e, ok := a.live(c, id)
	if !ok {
		return
	}
	if e.Kind == dfms.KindDir {
		a.fail(c, dfms.Errorf("", dfms.IsDir, "a folder cannot be downloaded"))
		return
	}
	v, err := a.Files.OpenVersion(c.Request.Context(), u.ID, id, number)
	if err != nil {
		a.fail(c, err)
		return
	}
	// A version the mount committed has its checksum computed on its
	// first download.
	if _, err := a.Files.Checksum(c.Request.Context(), u.ID, &v); err != nil {
		a.fail(c, err)
		return
	}
	size := v.Manifest.Size()
	etag := `"` + v.SHA256.String() + `"`
	h := c.Writer.Header()
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Checksum-SHA256", v.SHA256.String())
	h.Set("X-File-Version", strconv.FormatInt(max(v.Number, 0), 10))
	h.Set("Last-Modified", e.MTime.UTC().Format(http.TimeFormat))
	ctype := e.MIME
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": e.Name}))
	h.Set("X-Content-Type-Options", "nosniff")
	if match := c.GetHeader("If-None-Match"); match != "" && etagMatches(match, etag) {
		c.Status(http.StatusNotModified)
		return
	}
	off, length, status := int64(0), size, http.StatusOK
	// Ranges in units other than bytes are ignored, as RFC 9110 asks.
	if rng := c.GetHeader("Range"); strings.HasPrefix(rng, "bytes=") && (c.GetHeader("If-Range") == "" || c.GetHeader("If-Range") == etag) {
		var err error
		off, length, err = parseRange(rng, size)
		if err != nil {
			clearFileHeaders(h)
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			a.failCode(c, http.StatusRequestedRangeNotSatisfiable, "RANGE_NOT_SATISFIABLE", err.Error())
			return
		}
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+length-1, size))
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	c.Status(status)
	if c.Request.Method == http.MethodHead || length == 0 {
		c.Writer.WriteHeaderNow()
		return
	}
	n, err := a.Files.ReadRange(c.Request.Context(), v, off, length, c.Writer)
	a.metrics.bytesOut.Add(float64(n))
	if err != nil {
		if !c.Writer.Written() {
			// Nothing sent yet: an honest error instead of a cut connection.
			clearFileHeaders(h)
			a.fail(c, err)
			return
		}
		a.Log.Error("download aborted", "request_id", c.GetString(ctxRequestID), "entry", id, "sent", n, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// clearFileHeaders removes the headers describing the file before an error
// answer replaces it.
func clearFileHeaders(h http.Header) {
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Range", "ETag", "X-Checksum-SHA256",
		"Content-Disposition", "Accept-Ranges", "Last-Modified", "X-File-Version"} {
		h.Del(k)
	}
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "W/"))
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// parseRange parses one byte range ("a-b", "a-", "-n") against size. A
// list of ranges is served as its first range's enclosing range would be
// wrong, so it is refused.
func parseRange(h string, size int64) (off, length int64, err error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, errors.New("only a single range in bytes is supported")
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, errors.New("malformed range")
	}
	if first == "" { // suffix: the last n bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, errors.New("malformed range")
		}
		if size == 0 {
			return 0, 0, errors.New("range of an empty file")
		}
		n = min(n, size)
		return size - n, n, nil
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, errors.New("malformed range")
	}
	if start >= size {
		return 0, 0, fmt.Errorf("range starts at %d, past the end (%d bytes)", start, size)
	}
	end := size - 1
	if last != "" {
		e, err := strconv.ParseInt(last, 10, 64)
		if err != nil || e < start {
			return 0, 0, errors.New("malformed range")
		}
		end = min(e, size-1)
	}
	return start, end - start + 1, nil
}

// patchBody renames and/or moves an entry.
type patchBody struct {
	Name     *string    `json:"name"`
	ParentID optionalID `json:"parent_id"`
}

func (a *API) patchEntry(c *gin.Context) {
	var b patchBody
	id, ok := a.entryBody(c, &b, false)
	if !ok {
		return
	}
	a.rename(c, id, b.Name, b.ParentID)
}

// moveEntry is PUT …/move {"new_parent_id": id|null} (null: the root), the
// reference API's shape; target_folder_id is accepted too.
func (a *API) moveEntry(c *gin.Context) {
	var b struct {
		NewParentID    optionalID `json:"new_parent_id"`
		TargetFolderID optionalID `json:"target_folder_id"`
	}
	id, ok := a.entryBody(c, &b, false)
	if !ok {
		return
	}
	target := b.NewParentID
	if !target.set {
		target = b.TargetFolderID
	}
	if !target.set {
		a.bad(c, "new_parent_id is required (null for the root folder)")
		return
	}
	a.rename(c, id, nil, target)
}

func (a *API) rename(c *gin.Context, id dfms.EntryID, name *string, parent optionalID) {
	u := user(c)
	e, ok := a.live(c, id)
	if !ok || !a.kindMatchesRoute(c, e) {
		return
	}
	if e.Parent == 0 {
		a.bad(c, "the root folder cannot be renamed or moved")
		return
	}
	newParent, newName := e.Parent, e.Name
	if name != nil {
		if newName = *name; !a.validName(c, newName) {
			return
		}
	}
	if parent.set {
		if newParent, ok = a.folderRef(c, parent.raw); !ok {
			return
		}
	}
	moved, err := a.Files.Rename(c.Request.Context(), u.ID, id, newParent, newName, false)
	a.reply(c, http.StatusOK, gin.H{"file": view(moved)}, err)
}

func (a *API) copyFile(c *gin.Context) {
	var b struct {
		Name     *string    `json:"name"`
		ParentID optionalID `json:"parent_id"`
	}
	id, ok := a.entryBody(c, &b, true)
	if !ok {
		return
	}
	src, ok := a.live(c, id)
	if !ok {
		return
	}
	parent, name := src.Parent, src.Name
	if b.ParentID.set {
		if parent, ok = a.folderRef(c, b.ParentID.raw); !ok {
			return
		}
	}
	if b.Name != nil {
		if name = *b.Name; !a.validName(c, name) {
			return
		}
	} else if parent == src.Parent {
		name = copyName(src.Name)
	}
	if !a.chargeUpload(c, src.DataSize) { // holes cost nothing
		return
	}
	e, _, err := a.Files.Copy(c.Request.Context(), user(c).ID, id, parent, name)
	a.reply(c, http.StatusCreated, gin.H{"file": view(e)}, err)
}

// copyName turns "a.txt" into "a (copy).txt".
func copyName(name string) string {
	ext := path.Ext(name)
	if ext == name {
		ext = ""
	}
	n := strings.TrimSuffix(name, ext) + " (copy)" + ext
	if len(n) > dfms.MaxNameLen {
		return name
	}
	return n
}

// deleteEntry moves a file or a whole folder to the trash.
func (a *API) deleteEntry(c *gin.Context) {
	e, ok := a.liveParam(c)
	if !ok {
		return
	}
	if strings.HasPrefix(c.FullPath(), "/api/v1/folders") != (e.Kind == dfms.KindDir) {
		if e.Kind == dfms.KindDir {
			a.fail(c, dfms.Errorf("", dfms.IsDir, "this is a folder: use DELETE /api/v1/folders/{id}"))
		} else {
			a.fail(c, dfms.Errorf("", dfms.NotDir, "this is not a folder: use DELETE /api/v1/files/{id}"))
		}
		return
	}
	err := a.Files.Delete(c.Request.Context(), user(c).ID, e.ID)
	a.reply(c, http.StatusOK, gin.H{"message": "moved to the trash", "id": e.ID}, err)
}
