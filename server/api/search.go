package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// search finds entries by name, type, size, time and folder (GET /search).
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
	if t := c.Query("type"); t == "folder" {
		q.Kind = dfms.KindDir
	} else if k, ok := dfms.ParseEntryKind(t); ok {
		q.Kind = k
	} else {
		q.MIME = t // a MIME type or prefix such as image/; "" for any
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
	a.reply(c, http.StatusOK, pageBody("results", views(res), total, p), err)
}
