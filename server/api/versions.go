package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	apiclient "github.com/dfms/dfms/server/api/client"
)

// listVersions lists a file's versions, newest first
// (GET /files/{id}/versions).
func (a *API) listVersions(c *gin.Context) {
	e, ok := a.liveParam(c)
	if !ok {
		return
	}
	vs, err := a.Files.Versions(c.Request.Context(), user(c).ID, e.ID)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]apiclient.Version, 0, len(vs))
	for i := len(vs) - 1; i >= 0; i-- { // newest first
		out = append(out, versionOf(vs[i], e.Version))
	}
	c.JSON(http.StatusOK, gin.H{"file_id": e.ID, "file_name": e.Name, "versions": out, "total": len(out)})
}

// restoreVersion makes a copy of an old version the current one
// (POST /files/{id}/versions/{version}/restore).
func (a *API) restoreVersion(c *gin.Context) {
	f, n, ok := a.liveVersionParams(c)
	if !ok {
		return
	}
	old, err := a.Files.OpenVersion(c.Request.Context(), user(c).ID, f.ID, n)
	if err != nil {
		a.fail(c, err)
		return
	}
	if !a.chargeUpload(c, old.Manifest.DataSize()) { // holes cost nothing
		return
	}
	e, v, err := a.Files.RestoreVersion(c.Request.Context(), user(c).ID, f.ID, n)
	a.reply(c, http.StatusCreated, gin.H{"file": view(e), "version": versionOf(v, e.Version), "restored_from": n}, err)
}

// deleteVersion deletes one version of a file
// (DELETE /files/{id}/versions/{version}).
func (a *API) deleteVersion(c *gin.Context) {
	f, n, ok := a.liveVersionParams(c)
	if !ok {
		return
	}
	err := a.Files.DeleteVersion(c.Request.Context(), user(c).ID, f.ID, n)
	a.reply(c, http.StatusOK, gin.H{"message": fmt.Sprintf("version %d deleted", n)}, err)
}
