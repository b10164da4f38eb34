package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
)

// listTrash lists a page of the entries in the trash (GET /trash).
func (a *API) listTrash(c *gin.Context) {
	p, ok := a.pageParams(c)
	if !ok {
		return
	}
	es, total, err := a.Files.Trash(c.Request.Context(), user(c).ID, p.offset(), p.size)
	a.reply(c, http.StatusOK, pageBody("items", views(es), total, p), err)
}

// restoreTrash puts an entry, with what was deleted with it, back in its
// folder (POST /trash/{id}/restore).
func (a *API) restoreTrash(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	e, err := a.Files.Restore(c.Request.Context(), user(c).ID, id)
	a.reply(c, http.StatusOK, gin.H{"file": view(e)}, err)
}

// purgeTrash deletes an entry in the trash permanently (DELETE /trash/{id}).
func (a *API) purgeTrash(c *gin.Context) {
	id, ok := a.entryParam(c, "id")
	if !ok {
		return
	}
	e, ok := a.owned(c, id)
	if !ok {
		return
	}
	if e.Live() || e.TrashRoot != e.ID {
		a.fail(c, dfms.Errorf("", dfms.NotExist, "not in the trash"))
		return
	}
	st, err := a.Files.Purge(c.Request.Context(), user(c).ID, id)
	a.reply(c, http.StatusOK, gin.H{"message": "deleted permanently", "entries": st.Entries, "versions": st.Versions, "bytes": st.Bytes}, err)
}
