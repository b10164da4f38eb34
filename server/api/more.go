package api

import (
	"fmt"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// ---- versions ----

func (a *API) listVersions(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	e, ok := a.live(c, id)
	if !ok {
		return
	}
	vs, err := a.Files.Versions(c.Request.Context(), user(c).ID, id)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]versionView, 0, len(vs))
	for i := len(vs) - 1; i >= 0; i-- { // newest first
		out = append(out, versionOf(vs[i], e.Version))
	}
	c.JSON(http.StatusOK, gin.H{"file_id": id, "file_name": e.Name, "versions": out, "total": len(out)})
}

func (a *API) restoreVersion(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	n, ok := a.versionParam(c)
	if !ok {
		return
	}
	if _, ok := a.live(c, id); !ok {
		return
	}
	old, err := a.Files.OpenVersion(c.Request.Context(), user(c).ID, id, n)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.chargeUpload(c, old.Size) {
		return
	}
	e, v, err := a.Files.RestoreVersion(c.Request.Context(), user(c).ID, id, n)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"file": view(e), "version": versionOf(v, e.Version), "restored_from": n})
}

func (a *API) deleteVersion(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	n, ok := a.versionParam(c)
	if !ok {
		return
	}
	if _, ok := a.live(c, id); !ok {
		return
	}
	if err := a.Files.DeleteVersion(c.Request.Context(), user(c).ID, id, n); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"message": fmt.Sprintf("version %d deleted", n)})
}

// ---- multipart ----

func (a *API) multipartInit(c *gin.Context) {
	var b struct {
		FileName string     `json:"file_name"`
		FileSize int64      `json:"file_size"`
		FolderID optionalID `json:"folder_id"`
		MIMEType string     `json:"mime_type"`
	}
	if !a.bindJSON(c, &b, false) {
		return
	}
	if !a.validName(c, b.FileName) {
		return
	}
	if _, ok := a.mediaType(c, "mime_type", b.MIMEType); !ok {
		return
	}
	if b.FileSize < 0 {
		a.bad(c, "file_size must not be negative")
		return
	}
	if b.FileSize > a.cfg.MaxUploadSize {
		a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("uploads are limited to %d bytes", a.cfg.MaxUploadSize))
		return
	}
	parent, ok := a.folderRef(c, b.FolderID.raw)
	if !ok {
		return
	}
	u := user(c)
	// Held bytes may be this file's own chunks (a retry): the parts are
	// charged exactly as they arrive.
	if b.FileSize > 0 && u.QuotaBytes > 0 && u.UsedBytes+b.FileSize > u.QuotaBytes {
		a.fail(c, dfms.Errorf("", dfms.Quota, "the file would exceed the storage quota"))
		return
	}
	partSize := a.cfg.PartSize
	if b.FileSize > partSize*10000 {
		partSize = (b.FileSize + 9999) / 10000
	}
	now := time.Now()
	up, err := a.uploads.CreateUpload(c.Request.Context(), meta.Upload{Owner: u.ID, Parent: parent, Name: b.FileName, Size: b.FileSize,
		PartSize: partSize, ExpiresAt: now.Add(a.cfg.UploadTTL), Deadline: now.Add(a.cfg.UploadLifetime)}, a.cfg.MaxOpenUploads)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"upload_id": up.ID, "part_size": up.PartSize, "max_parts": 10000,
		"expires_at": up.ExpiresAt.UTC(), "deadline": up.Deadline.UTC(), "file_name": up.Name, "folder_id": up.Parent})
}

func (a *API) multipartPart(c *gin.Context) {
	n, err := strconv.Atoi(c.Param("part"))
	if err != nil || n < 1 || n > 10000 {
		a.bad(c, "part number %q is not in 1..10000", c.Param("part"))
		return
	}
	if c.Request.ContentLength > a.cfg.MaxPartSize {
		a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("parts are limited to %d bytes", a.cfg.MaxPartSize))
		return
	}
	p, err := a.Files.WritePart(c.Request.Context(), user(c).ID, c.Param("upload"), n, c.Request.Body, a.cfg.MaxPartSize)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.metrics.bytesIn.Add(float64(p.Size))
	c.JSON(http.StatusOK, gin.H{"part_number": p.Number, "size": p.Size, "checksum": p.SHA256.String(), "etag": `"` + p.SHA256.String() + `"`})
}

func (a *API) multipartStatus(c *gin.Context) {
	u := user(c)
	up, err := a.uploads.GetUpload(c.Request.Context(), u.ID, c.Param("upload"))
	if err != nil {
		a.fail(c, err)
		return
	}
	parts, err := a.uploads.ListParts(c.Request.Context(), u.ID, up.ID)
	if err != nil {
		a.fail(c, err)
		return
	}
	type partView struct {
		Number   int    `json:"part_number"`
		Size     int64  `json:"size"`
		Checksum string `json:"checksum"`
	}
	out := make([]partView, 0, len(parts))
	var total int64
	for _, p := range parts {
		out = append(out, partView{p.Number, p.Size, p.SHA256.String()})
		total += p.Size
	}
	c.JSON(http.StatusOK, gin.H{"upload_id": up.ID, "file_name": up.Name, "folder_id": up.Parent, "file_size": up.Size,
		"part_size": up.PartSize, "expires_at": up.ExpiresAt.UTC(), "deadline": up.Deadline.UTC(), "parts": out, "uploaded_bytes": total})
}

func (a *API) multipartComplete(c *gin.Context) {
	var b struct {
		MIMEType string `json:"mime_type"`
	}
	if !a.bindJSON(c, &b, true) {
		return
	}
	var ok bool
	if b.MIMEType, ok = a.mediaType(c, "mime_type", b.MIMEType); !ok {
		return
	}
	// The completion reads the parts back (for the checksum): it is
	// charged their bytes, so that completions that fail after the read
	// cannot be repeated for free.
	u := user(c)
	parts, err := a.uploads.ListParts(c.Request.Context(), u.ID, c.Param("upload"))
	if err != nil {
		a.fail(c, err)
		return
	}
	var size int64
	for _, p := range parts {
		size += p.Size
	}
	if !a.chargeUpload(c, size) {
		return
	}
	if b.MIMEType == "" {
		if up, err := a.uploads.GetUpload(c.Request.Context(), u.ID, c.Param("upload")); err == nil {
			b.MIMEType = mime.TypeByExtension(path.Ext(up.Name))
		}
	}
	e, v, err := a.Files.CompleteUpload(c.Request.Context(), user(c).ID, c.Param("upload"), b.MIMEType, a.cfg.MaxUploadSize)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"file": view(e), "version": versionOf(v, e.Version)})
}

func (a *API) multipartAbort(c *gin.Context) {
	if err := a.uploads.AbortUpload(c.Request.Context(), user(c).ID, c.Param("upload")); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"message": "upload aborted"})
}

// ---- folders and trash ----

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
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"folder": view(e)})
}

func (a *API) listTrash(c *gin.Context) {
	p, ok := a.pageParams(c)
	if !ok {
		return
	}
	es, total, err := a.Files.Trash(c.Request.Context(), user(c).ID, p.offset(), p.size)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, pageBody("items", views(es), total, p))
}

func (a *API) restoreTrash(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	e, err := a.Files.Restore(c.Request.Context(), user(c).ID, id)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"file": view(e)})
}

func (a *API) purgeTrash(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	u := user(c)
	e, err := a.tree.GetEntry(c.Request.Context(), u.ID, id)
	if err != nil {
		a.fail(c, err)
		return
	}
	if e.Live() || e.TrashRoot != e.ID {
		a.fail(c, dfms.Errorf("", dfms.NotExist, "not in the trash"))
		return
	}
	st, err := a.Files.Purge(c.Request.Context(), u.ID, id)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"message": "deleted permanently", "entries": st.Entries, "versions": st.Versions, "bytes": st.Bytes})
}

// ---- search and usage ----

func (a *API) search(c *gin.Context) {
	p, ok := a.pageParams(c)
	if !ok {
		return
	}
	q := meta.SearchQuery{Text: strings.TrimSpace(c.Query("q")), Offset: p.offset(), Limit: p.size}
	if len(q.Text) > 256 {
		a.bad(c, "q is longer than 256 bytes")
		return
	}
	switch t := c.Query("type"); t {
	case "":
	case "file":
		q.Kind = dfms.KindFile
	case "folder", "dir":
		q.Kind = dfms.KindDir
	case "symlink":
		q.Kind = dfms.KindSymlink
	default:
		q.MIME = t // a MIME type or prefix such as image/
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"min_size", &q.MinSize}, {"max_size", &q.MaxSize}} {
		if s := c.Query(f.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				a.bad(c, "%s must be a non-negative number", f.name)
				return
			}
			*f.dst = n
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"after", &q.After}, {"before", &q.Before}} {
		if s := c.Query(f.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				if d, derr := time.Parse(time.DateOnly, s); derr == nil {
					t = d
				} else {
					a.bad(c, "%s must be an RFC 3339 time or a date (YYYY-MM-DD)", f.name)
					return
				}
			}
			if !a.validTime(c, f.name, t) {
				return
			}
			*f.dst = t
		}
	}
	if s := c.Query("folder_id"); s != "" {
		var ok bool
		if q.Folder, ok = a.folderRef(c, s); !ok {
			return
		}
		if e, ok := a.live(c, q.Folder); !ok {
			return
		} else if e.Kind != dfms.KindDir {
			a.fail(c, dfms.Errorf("", dfms.NotDir, "folder_id is not a folder"))
			return
		}
	}
	res, total, err := a.tree.Search(c.Request.Context(), user(c).ID, q)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, pageBody("results", views(res), total, p))
}

func (a *API) usage(c *gin.Context) {
	u := user(c)
	us, err := a.tree.Usage(c.Request.Context(), u.ID)
	if err != nil {
		a.fail(c, err)
		return
	}
	dedup, err := a.Files.StoredBytes(c.Request.Context(), u.ID)
	if err != nil {
		a.fail(c, err)
		return
	}
	avail := int64(-1)
	if us.QuotaBytes > 0 {
		avail = max(us.QuotaBytes-us.LogicalBytes-us.HeldBytes, 0)
	}
	c.JSON(http.StatusOK, gin.H{"used_bytes": us.LogicalBytes, "held_bytes": us.HeldBytes, "deduplicated_bytes": dedup, "quota_bytes": us.QuotaBytes,
		"available_bytes": avail, "file_count": us.Files, "folder_count": us.Dirs, "version_count": us.Versions})
}
