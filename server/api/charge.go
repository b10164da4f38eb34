package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

// A commit makes a file of chunks the client sent earlier, so its body
// weighs nothing next to the file: 256 references to one 4 MiB chunk are
// a 24 KB body and a 1 GiB file. Whatever a file costs the server later
// (its checksum is computed once, by reading it all), the commit that made
// it pays for in the upload tier: it weighs one request per largest chunk
// of the file, what sending those bytes as chunk PUTs would cost. So the
// bytes a user can make per window are bounded by the tier, as the bytes
// it can send are. A server-side copy or restore makes a version the same
// way, and is charged the same.

// chargeUpload counts a request that makes size bytes of files against
// the caller's upload tier (the tier's middleware counted one request of
// it already), and reports whether it may proceed; if not, it has
// answered: 429 if the window cannot take it now, 413 if no window ever
// could (it makes more bytes than the tier allows per window).
func (a *API) chargeUpload(c *gin.Context, size int64) bool {
	if a.Limiter == nil {
		return true
	}
	l, key := a.tierLimit(c, tierUpload)
	if l.Unlimited() {
		return true
	}
	unit := int64(a.Files.Chunking().Max)
	n := (size + unit - 1) / unit
	if n > int64(l.Requests) {
		a.failCode(c, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf(
			"the request makes %d bytes of files; the upload rate limit allows %d per %v", size, int64(l.Requests)*unit, l.Window))
		return false
	}
	if n <= 1 {
		return true
	}
	return a.admit(c, tierUpload, l, key, int(n-1))
}
