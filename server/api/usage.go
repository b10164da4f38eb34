package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// usage reports the caller's storage use and quota (GET /storage/usage).
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
