package api

import (
	"fmt"
	"mime"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// multipartInit starts a resumable upload in parts
// (POST /files/upload/multipart/init).
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

// multipartPart stores one part of an upload
// (PUT /files/upload/multipart/{upload}/part/{part}).
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

// multipartStatus reports an upload and the parts it has, for a resume
// (GET /files/upload/multipart/{upload}).
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

// multipartComplete makes the parts a version of the file
// (POST /files/upload/multipart/{upload}/complete).
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
	a.reply(c, http.StatusCreated, gin.H{"file": view(e), "version": versionOf(v, e.Version)}, err)
}

// multipartAbort forgets an upload and its parts
// (DELETE /files/upload/multipart/{upload}).
func (a *API) multipartAbort(c *gin.Context) {
	err := a.uploads.AbortUpload(c.Request.Context(), user(c).ID, c.Param("upload"))
	a.reply(c, http.StatusOK, gin.H{"message": "upload aborted"}, err)
}
