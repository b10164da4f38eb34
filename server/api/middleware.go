package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/ratelimit"
)

// errorBody is the one error envelope of the API.
type errorBody struct {
	Error errorInfo `json:"error"`
}

type errorInfo struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
	Details   any    `json:"details,omitempty"`
}

// kindStatus maps each error kind to its status and stable code. This is
// the one place where kinds become HTTP.
var kindStatus = map[dfms.ErrorKind]struct {
	status int
	code   string
}{
	dfms.Invalid:         {http.StatusBadRequest, "VALIDATION_FAILED"},
	dfms.NotExist:        {http.StatusNotFound, "NOT_FOUND"},
	dfms.Exist:           {http.StatusConflict, "ALREADY_EXISTS"},
	dfms.NotEmpty:        {http.StatusConflict, "NOT_EMPTY"},
	dfms.NotDir:          {http.StatusBadRequest, "NOT_A_FOLDER"},
	dfms.IsDir:           {http.StatusBadRequest, "IS_A_FOLDER"},
	dfms.Permission:      {http.StatusForbidden, "FORBIDDEN"},
	dfms.Corrupt:         {http.StatusInternalServerError, "DATA_CORRUPT"},
	dfms.Conflict:        {http.StatusConflict, "CONFLICT"},
	dfms.TooLarge:        {http.StatusRequestEntityTooLarge, "TOO_LARGE"},
	dfms.Quota:           {http.StatusInsufficientStorage, "QUOTA_EXCEEDED"},
	dfms.Unavailable:     {http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"},
	dfms.Transient:       {http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"},
	dfms.ReadOnly:        {http.StatusForbidden, "READ_ONLY"},
	dfms.NotSupported:    {http.StatusNotImplemented, "NOT_SUPPORTED"},
	dfms.Unauthenticated: {http.StatusUnauthorized, "AUTH_TOKEN_INVALID"},
	dfms.RateLimited:     {http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED"},
}

// fail answers with the envelope for err. Internal errors are logged with
// the request id and answered with a generic message.
func (a *API) fail(c *gin.Context, err error) {
	k := dfms.KindOf(err)
	ks, ok := kindStatus[k]
	if !ok {
		a.Log.Error("internal error", "request_id", c.GetString(ctxRequestID), "method", c.Request.Method,
			"path", c.FullPath(), "err", err)
		a.failCode(c, http.StatusInternalServerError, "INTERNAL_ERROR", "internal error; see the server log for request "+c.GetString(ctxRequestID))
		return
	}
	switch {
	case c.Request.Context().Err() != nil:
		// The client went away (a mount unmounting with a long poll of
		// the change feed in flight): nothing failed on this side.
		a.Log.Debug("request ended by its client", "request_id", c.GetString(ctxRequestID), "path", c.FullPath(), "err", err)
	case ks.status >= 500 && ks.status != http.StatusNotImplemented && ks.status != http.StatusInsufficientStorage:
		a.Log.Error("request failed", "request_id", c.GetString(ctxRequestID), "path", c.FullPath(), "err", err)
	}
	a.failCode(c, ks.status, ks.code, userMessage(err))
}

// reply answers err or, if err is nil, status with body as JSON (no body
// with 204 No Content). A handler builds body before looking at err, from
// the zero values a failed call returns; it is then thrown away.
func (a *API) reply(c *gin.Context, status int, body any, err error) {
	switch {
	case err != nil:
		a.fail(c, err)
	case status == http.StatusNoContent:
		c.Status(status)
	default:
		c.JSON(status, body)
	}
}

// check answers err unless it is nil, and reports whether it was nil.
func (a *API) check(c *gin.Context, err error) bool {
	if err != nil {
		a.fail(c, err)
		return false
	}
	return true
}

// failAs answers err as status with code and msg if it has kind k, and as
// fail does otherwise.
func (a *API) failAs(c *gin.Context, err error, k dfms.ErrorKind, status int, code, msg string) {
	if dfms.Is(err, k) {
		a.failCode(c, status, code, msg)
		return
	}
	a.fail(c, err)
}

// userMessage is err's text without the chain of operation names, which
// is for logs.
func userMessage(err error) string {
	var e *dfms.Error
	for errors.As(err, &e) && e.Err != nil {
		var inner *dfms.Error
		if !errors.As(e.Err, &inner) {
			return e.Kind.String() + ": " + e.Err.Error()
		}
		err = e.Err
	}
	if e != nil {
		return e.Kind.String()
	}
	return err.Error()
}

func (a *API) failCode(c *gin.Context, status int, code, msg string) {
	c.AbortWithStatusJSON(status, errorBody{Error: errorInfo{Code: code, Message: msg, RequestID: c.GetString(ctxRequestID)}})
}

// bad answers 400 with a message.
func (a *API) bad(c *gin.Context, format string, args ...any) {
	a.failCode(c, http.StatusBadRequest, "VALIDATION_FAILED", fmt.Sprintf(format, args...))
}

const (
	ctxRequestID = "dfms.request_id"
	ctxUser      = "dfms.user"
)

func (a *API) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if id == "" || len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-ID", id)
	c.Next()
}

func (a *API) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	a.Log.Debug("request", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(),
		"bytes", c.Writer.Size(), "ms", time.Since(start).Milliseconds(), "request_id", c.GetString(ctxRequestID))
}

// recovery turns a panic into a 500 envelope, except http.ErrAbortHandler,
// which must reach net/http so that it cuts the connection (a download
// that met a corrupt chunk after its headers were sent).
func (a *API) recovery(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			a.Log.Error("panic", "request_id", c.GetString(ctxRequestID), "panic", r)
			if !c.Writer.Written() {
				a.failCode(c, http.StatusInternalServerError, "INTERNAL_ERROR", "internal error")
			} else {
				panic(http.ErrAbortHandler)
			}
		}
	}()
	c.Next()
}

// user returns the authenticated caller.
func user(c *gin.Context) meta.User {
	u, _ := c.Get(ctxUser)
	return u.(meta.User)
}

// authenticate requires a valid access token of an active user. The
// active flag and role are read from the store on every request, so a
// deactivation takes effect at once. A request that fails is anonymous:
// it counts against its client address's budget (allow) before it gets
// its 401.
func (a *API) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	if h == "" {
		if a.anonymous(c) {
			a.failCode(c, http.StatusUnauthorized, "AUTH_TOKEN_MISSING", "missing Authorization: Bearer token")
		}
		return
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		if a.anonymous(c) {
			a.failCode(c, http.StatusUnauthorized, "AUTH_TOKEN_INVALID", "the Authorization header must be: Bearer <token>")
		}
		return
	}
	claims, err := a.Auth.Verify(strings.TrimSpace(tok))
	if err != nil {
		if a.anonymous(c) {
			a.failCode(c, http.StatusUnauthorized, "AUTH_TOKEN_INVALID", userMessage(err))
		}
		return
	}
	u, err := a.users.GetUser(c.Request.Context(), claims.UserID)
	if dfms.Is(err, dfms.NotExist) || (err == nil && !u.Active) {
		if a.anonymous(c) {
			a.failCode(c, http.StatusUnauthorized, "AUTH_TOKEN_INVALID", "the account is deactivated or gone")
		}
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	u.PasswordHash = ""
	c.Set(ctxUser, u)
	if o := c.GetHeader(OriginHeader); o != "" {
		if !validOrigin(o) {
			a.bad(c, "%s must be 1..%d letters, digits, '.', '_' or '-'", OriginHeader, meta.MaxOriginLen)
			return
		}
		c.Request = c.Request.WithContext(meta.WithOrigin(c.Request.Context(), o))
	}
	c.Next()
}

// anonymous counts a request that failed authentication against its
// client address's budget, and reports whether it may get its 401 (if
// not, it got 429).
func (a *API) anonymous(c *gin.Context) bool { return a.allow(c, tierUser) }

// OriginHeader names the client session a request comes from (a mount):
// the change feed reports it with the changes the request made, so that
// the client can skip its own.
const OriginHeader = "X-DFMS-Origin"

func validOrigin(o string) bool {
	if len(o) > meta.MaxOriginLen {
		return false
	}
	for _, r := range o {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (a *API) requireAdmin(c *gin.Context) {
	if user(c).Role != meta.RoleAdmin {
		a.failCode(c, http.StatusForbidden, "AUTH_FORBIDDEN", "administrators only")
		return
	}
	c.Next()
}

type tier int

const (
	tierGlobal tier = iota
	tierUser
	tierAuth
	tierUpload
	tierDownload
)

// limit applies one rate-limit tier (see allow).
func (a *API) limit(t tier) gin.HandlerFunc {
	return func(c *gin.Context) {
		if a.allow(c, t) {
			c.Next()
		}
	}
}

// allow counts the request in tier t and reports whether it may go on;
// if not, it has answered (429, or 503 when the limiter is unavailable
// and the server does not fail open).
//
// A request is its user's once authenticate has run, and its client
// address's before (or when authentication fails): anonymous requests are
// limited per address by the user tier, so a flood of them costs their
// own address its budget and nobody else anything. The global tier counts
// authenticated requests only, for the same reason, and its counter, which
// is everybody's, is shown only when it refuses; the X-RateLimit-* headers
// otherwise report the caller's own tier closest to its limit.
func (a *API) allow(c *gin.Context, t tier) bool {
	if a.Limiter == nil {
		return true
	}
	l, key := a.tierLimit(c, t)
	return a.admit(c, t, l, key, 1)
}

// tierLimit returns tier t's limit and the key it counts c's request
// under.
func (a *API) tierLimit(c *gin.Context, t tier) (ratelimit.Limit, string) {
	who := "ip:" + c.ClientIP()
	if v, ok := c.Get(ctxUser); ok {
		who = "user:" + v.(meta.User).ID.String()
	}
	switch t {
	case tierGlobal:
		return a.cfg.Limits.Global, "global"
	case tierUser:
		return a.cfg.Limits.User, who
	case tierAuth:
		return a.cfg.Limits.Auth, "auth:" + c.FullPath() + ":" + who
	case tierUpload:
		return a.cfg.Limits.Upload, "upload:" + who
	case tierDownload:
		return a.cfg.Limits.Download, "download:" + who
	}
	return ratelimit.Limit{}, ""
}

// admit counts a request of weight n in tier t under l and key, and
// reports whether it may proceed; if not, it has answered (429, or 503
// when the limiter is unavailable and the limits fail closed).
func (a *API) admit(c *gin.Context, t tier, l ratelimit.Limit, key string, n int) bool {
	if l.Requests <= 0 {
		return true
	}
	res, err := a.Limiter.AllowN(c.Request.Context(), key, l, n)
	if err != nil {
		a.Log.Warn("rate limiter unavailable", "err", err, "fail_open", a.cfg.Limits.FailOpen)
		if a.cfg.Limits.FailOpen {
			return true
		}
		a.failCode(c, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "rate limiter unavailable")
		return false
	}
	if t != tierGlobal || !res.Allowed {
		setLimitHeaders(c, res)
	}
	if !res.Allowed {
		secs := int((res.RetryAfter + time.Second - 1) / time.Second)
		c.Header("Retry-After", strconv.Itoa(max(secs, 1)))
		a.failCode(c, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED", "too many requests; retry after "+strconv.Itoa(max(secs, 1))+" s")
		return false
	}
	return true
}

// setLimitHeaders reports the most restrictive tier seen so far.
func setLimitHeaders(c *gin.Context, res ratelimit.Result) {
	if prev := c.Writer.Header().Get("X-RateLimit-Remaining"); prev != "" {
		if n, err := strconv.Atoi(prev); err == nil && n <= res.Remaining {
			return
		}
	}
	c.Header("X-RateLimit-Limit", strconv.Itoa(res.Limit))
	c.Header("X-RateLimit-Remaining", strconv.Itoa(res.Remaining))
	reset := res.Reset.Unix()
	if reset < time.Now().Unix() {
		reset = time.Now().Unix()
	}
	c.Header("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
}
