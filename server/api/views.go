package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	apiclient "github.com/dfms/dfms/server/api/client"
)

// view is how entries (files, folders, symlinks, special files) appear
// in responses.
func view(e dfms.Entry) apiclient.Entry {
	v := apiclient.Entry{ID: e.ID, ParentID: e.Parent, Name: e.Name, Size: e.Size, MIMEType: e.MIME, Version: e.Version, VersionID: e.VersionID,
		Mode: e.Mode, Target: e.Target, Rdev: e.Rdev, Type: e.Kind.String(), UpdatedAt: e.MTime.UTC(), ChangedAt: e.CTime.UTC()}
	switch e.Kind {
	case dfms.KindDir:
		v.Type, v.IsDirectory = "folder", true
	case dfms.KindFile:
		if e.Version > 0 && !e.SHA256.IsZero() {
			v.Checksum = e.SHA256.String()
		}
	}
	if !e.Live() {
		t := e.DeletedAt.UTC()
		v.DeletedAt = &t
	}
	return v
}

func views(es []dfms.Entry) []apiclient.Entry {
	out := make([]apiclient.Entry, 0, len(es))
	for _, e := range es {
		out = append(out, view(e))
	}
	return out
}

// versionOf is how version v of a file whose current version is current
// appears in responses.
func versionOf(v dfms.Version, current int64) apiclient.Version {
	vv := apiclient.Version{ID: v.ID, File: int64(v.Entry), Version: v.Number, Size: v.Size, ChunkCount: v.ChunkCount,
		Base: v.Base, CreatedAt: v.CreatedAt.UTC(), Current: v.Number == current}
	if !v.SHA256.IsZero() {
		vv.Checksum = v.SHA256.String()
	}
	return vv
}

// maxJSON bounds JSON request bodies.
const maxJSON = 1 << 20

// bindJSON decodes a JSON body strictly: unknown fields, trailing data and
// bodies over maxJSON are errors (answered here; the caller returns).
func (a *API) bindJSON(c *gin.Context, v any, optional bool) bool {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxJSON)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) && optional {
		return true
	}
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("JSON body over %d bytes", maxJSON))
		return false
	case errors.Is(err, io.EOF):
		a.bad(c, "a JSON body is required")
		return false
	case err != nil:
		a.bad(c, "malformed JSON: %v", err)
		return false
	}
	return true
}

// entryBody parses the :id of an entry and decodes the JSON body into v
// as bindJSON does, or answers 400 (ok false).
func (a *API) entryBody(c *gin.Context, v any, optional bool) (dfms.EntryID, bool) {
	id, ok := a.entryParam(c, "id")
	return id, ok && a.bindJSON(c, v, optional)
}

// maxMIMELen bounds a media type: RFC 6838 gives the type and the subtype
// at most 127 characters each.
const maxMIMELen = 255

// mediaType checks a media type a client gives a file (mime_type, an
// upload's Content-Type) and returns it bare and in lower case
// ("Text/Plain; charset=utf-8" is text/plain): it is stored, indexed and
// sent back as the Content-Type of downloads. "" stays "" (the caller
// picks a default). Anything else is answered 400 here (ok false).
func (a *API) mediaType(c *gin.Context, field, s string) (string, bool) {
	if s == "" {
		return "", true
	}
	t, _, err := mime.ParseMediaType(s)
	typ, sub, slash := strings.Cut(t, "/")
	if err != nil || !slash || typ == "" || sub == "" || len(t) > maxMIMELen {
		a.bad(c, "%s must be a media type such as text/plain, of at most %d bytes", field, maxMIMELen)
		return "", false
	}
	return t, true
}

// validTime checks a time a client gives (an mtime, a search bound): the
// store holds 1677..2262 only (meta.ValidTime). It answers 400 if not.
func (a *API) validTime(c *gin.Context, field string, t time.Time) bool {
	if !dfms.ValidTime(t) {
		a.bad(c, "%s must be between %s and %s", field, dfms.MinTime.Format(time.RFC3339), dfms.MaxTime.Format(time.RFC3339))
		return false
	}
	return true
}

// validName checks a name given through the API: a valid entry name, and
// valid UTF-8, since JSON cannot carry other bytes back to the client.
func (a *API) validName(c *gin.Context, name string) bool {
	if err := dfms.ValidName(name); err != nil {
		a.fail(c, err)
		return false
	}
	if !utf8.ValidString(name) {
		a.bad(c, "names must be valid UTF-8")
		return false
	}
	return true
}

// entryParam parses the :id (or other) path parameter. "root" names the
// caller's root folder.
func (a *API) entryParam(c *gin.Context, name string) (dfms.EntryID, bool) {
	s := c.Param(name)
	if s == "root" {
		return user(c).Root, true
	}
	id, err := dfms.ParseEntryID(s)
	if err != nil {
		a.bad(c, "%s %q is not an id", name, s)
		return 0, false
	}
	return id, true
}

// folderRef parses an optional folder id from JSON (number, numeric string,
// "root" or null) or a query/header string; empty means the root.
func (a *API) folderRef(c *gin.Context, s string) (dfms.EntryID, bool) {
	s = strings.TrimSpace(strings.Trim(s, `"`))
	if s == "" || s == "null" || s == "root" || s == "0" {
		return user(c).Root, true
	}
	id, err := dfms.ParseEntryID(s)
	if err != nil {
		a.bad(c, "folder id %q is not an id", s)
		return 0, false
	}
	return id, true
}

// optionalID is a JSON id that may be a number, a numeric string, "root"
// or null.
type optionalID struct {
	set bool
	raw string
}

func (o *optionalID) UnmarshalJSON(b []byte) error {
	o.set = true
	o.raw = string(b)
	return nil
}

// versionParam parses :version.
func (a *API) versionParam(c *gin.Context) (int64, bool) {
	return a.positiveParam(c, "version", "version")
}

// versionIDParam parses :vid, a version's lasting id.
func (a *API) versionIDParam(c *gin.Context) (int64, bool) {
	return a.positiveParam(c, "vid", "version id")
}

// positiveParam parses the path parameter name, a positive number that
// the error message calls what.
func (a *API) positiveParam(c *gin.Context, name, what string) (int64, bool) {
	n, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || n < 1 {
		a.bad(c, "%s %q is not a positive number", what, c.Param(name))
		return 0, false
	}
	return n, true
}

// fileVersionParams parses :id and :version, version number n of file id.
func (a *API) fileVersionParams(c *gin.Context) (id dfms.EntryID, n int64, ok bool) {
	if id, ok = a.entryParam(c, "id"); ok {
		n, ok = a.versionParam(c)
	}
	return id, n, ok
}

// hashParam parses :hash, a chunk's hash.
func (a *API) hashParam(c *gin.Context) (dfms.Hash, bool) {
	h, err := dfms.ParseHash(c.Param("hash"))
	if err != nil {
		a.fail(c, err)
		return h, false
	}
	return h, true
}

// page parses page and page_size (capped at maxPageSize).
type page struct{ num, size int }

const (
	defaultPageSize = 50
	maxPageSize     = 100
)

func (a *API) pageParams(c *gin.Context) (page, bool) {
	p := page{num: 1, size: defaultPageSize}
	if s := c.Query("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1<<30 {
			a.bad(c, "page must be a positive number")
			return p, false
		}
		p.num = n
	}
	if s := c.Query("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			a.bad(c, "page_size must be a positive number")
			return p, false
		}
		p.size = min(n, maxPageSize)
	}
	return p, true
}

func (p page) offset() int { return (p.num - 1) * p.size }

func pageBody(key string, items any, total int, p page) gin.H {
	pages := (total + p.size - 1) / p.size
	return gin.H{key: items, "total": total, "page": p.num, "page_size": p.size, "total_pages": pages}
}
