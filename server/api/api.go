// Package api is the REST API of DFMS under /api/v1 (gin), plus the
// operational endpoints (/health, /ready, /metrics, /openapi.yaml, /docs,
// /.well-known/jwks.json).
//
// Handlers are thin: they decode and validate the request, call the file
// layer (package files), the metadata store or the auth service, and map
// the error kind to a status with one JSON envelope:
//
//	{"error": {"code": "NOT_FOUND", "message": "…", "request_id": "…"}}
//
// Another user's ids answer 404 exactly like missing ones; nothing a
// client can send produces a 500. The OpenAPI document (openapi.yaml,
// embedded) lists every route, and a test keeps it and the router equal.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/auth"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/ops"
	"github.com/dfms/dfms/server/ratelimit"
)

// Config tunes the API.
type Config struct {
	// MaxUploadSize bounds one upload or one multipart upload (bytes).
	MaxUploadSize int64
	// PartSize is the part size suggested to multipart clients;
	// MaxPartSize bounds one part.
	PartSize, MaxPartSize int64
	// UploadTTL is how long an idle multipart upload lives, and
	// UploadLifetime how long one lives at most, however busy.
	UploadTTL, UploadLifetime time.Duration
	// MaxOpenUploads is how many multipart uploads a user may have open
	// at once.
	MaxOpenUploads int
	// Limits are the rate limits per tier.
	Limits Limits
	// TrustedProxies are the addresses (IPs or CIDR prefixes) of the
	// reverse proxies in front of the server: only a request from one of
	// them has its client taken from X-Forwarded-For or X-Real-IP.
	// Empty: none, and the client is always the connection's peer.
	TrustedProxies []string
	// MetricsElsewhere leaves /metrics out of the router: the server
	// serves MetricsHandler on an address of its own.
	MetricsElsewhere bool
}

// Limits are the rate-limit tiers. A zero Limit is unlimited.
type Limits struct {
	Global   ratelimit.Limit // all authenticated requests together
	User     ratelimit.Limit // per user; per client address for anonymous requests
	Auth     ratelimit.Limit // per client address and public auth route; per user for a password change
	Upload   ratelimit.Limit // per user, uploads, parts, chunks and commits (by bytes: charge.go)
	Download ratelimit.Limit // per user, downloads
	// FailOpen lets requests through when the limiter is unavailable;
	// otherwise they get 503.
	FailOpen bool
}

// DefaultMaxOpenUploads is Config.MaxOpenUploads unless set.
const DefaultMaxOpenUploads = 100

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.MaxUploadSize == 0 {
		c.MaxUploadSize = 10 << 30
	}
	if c.PartSize == 0 {
		c.PartSize = 64 << 20
	}
	if c.MaxPartSize == 0 {
		c.MaxPartSize = 5 << 30
	}
	if c.UploadTTL == 0 {
		c.UploadTTL = 24 * time.Hour
	}
	if c.UploadLifetime == 0 {
		c.UploadLifetime = 7 * 24 * time.Hour
	}
	c.UploadLifetime = max(c.UploadLifetime, c.UploadTTL)
	if c.MaxOpenUploads == 0 {
		c.MaxOpenUploads = DefaultMaxOpenUploads
	}
}

// Collector is the garbage collector an administrator runs on request
// (POST /admin/gc); the server passes the GC worker's.
type Collector interface {
	// Collect runs one collection now and reports it; the report is the
	// answer's JSON body.
	Collect(ctx context.Context) (any, error)
}

// Membership is what the API asks of the cluster of storage nodes a
// server keeps its chunks on.
type Membership interface {
	// CheckChange reports why the storage nodes should not change from
	// before to after (a removal or a change of weight), or nil: after
	// leaves too few nodes with a weight for the replication factor, or
	// the change is to a node of the server's configuration, which would
	// undo it at its next start. The API refuses such a change with 409.
	CheckChange(before, after []dfms.StorageNode) error
}

// Deps are the services the API is built on.
type Deps struct {
	Files   *files.Service
	Auth    *auth.Service
	Keys    *auth.Keys
	Limiter ratelimit.Limiter
	GC      Collector // optional: enables POST /admin/gc
	// Cluster is the cluster of storage nodes the server keeps chunks on
	// (storage.nodes); nil if it keeps them in a single store, and then
	// the admin API lists no nodes and refuses to change them.
	Cluster Membership
	// Metrics are more collectors /metrics exports (the workers' own).
	Metrics []prometheus.Collector
	Log     *slog.Logger
	// Ready checks every configured dependency for /ready: name → check.
	Ready map[string]func(context.Context) error
	// Version is reported by /health.
	Version string
}

// API serves the REST API.
type API struct {
	Deps
	// The metadata store by capability, for the handlers that reach past
	// the file layer (Files.Meta).
	users    meta.Users
	tree     meta.Tree
	xattrs   meta.Xattrs
	versions meta.Versions
	trash    meta.Trash
	index    meta.Chunks
	uploads  meta.Uploads
	journal  meta.Journal
	nodes    meta.Nodes
	replicas meta.Replicas

	cfg     Config
	metrics *metrics
	ops     *ops.Endpoints // /health and /ready, as every role serves them
	engine  *gin.Engine
}

// New builds the API and its router.
func New(d Deps, cfg Config) *API {
	cfg.Defaults()
	if d.Log == nil {
		d.Log = slog.Default()
	}
	m := d.Files.Meta()
	a := &API{Deps: d, users: m, tree: m, xattrs: m, versions: m, trash: m, index: m, uploads: m, journal: m, nodes: m, replicas: m,
		cfg: cfg, metrics: newMetrics(d.Metrics...)}
	a.ops = &ops.Endpoints{Version: d.Version, Ready: make(map[string]ops.Check, len(d.Ready)), Registry: a.metrics.reg}
	for name, check := range d.Ready {
		a.ops.Ready[name] = check
	}
	a.engine = a.routes()
	return a
}

// Handler returns the HTTP handler of the whole API.
func (a *API) Handler() http.Handler { return a.engine }

// MetricsHandler serves the Prometheus metrics (GET /metrics).
func (a *API) MetricsHandler() http.Handler { return a.metrics.handler() }

// Routes lists the registered routes as "METHOD /path/{param}" (for the
// OpenAPI consistency test).
func (a *API) Routes() []gin.RouteInfo { return a.engine.Routes() }

func init() { gin.SetMode(gin.ReleaseMode) }

func (a *API) routes() *gin.Engine {
	r := gin.New()
	// Forwarding headers name the client only when a configured proxy
	// sent them: anyone else could rotate them to escape the per-address
	// limits. The server validates the addresses before; should a bad one
	// reach here, no proxy is trusted.
	if err := r.SetTrustedProxies(a.cfg.TrustedProxies); err != nil {
		a.Log.Error("trusted proxies ignored", "err", err)
		_ = r.SetTrustedProxies(nil)
	}
	r.HandleMethodNotAllowed = true
	r.RemoveExtraSlash = true
	r.Use(a.requestID, a.accessLog, a.recovery, a.metrics.middleware)
	r.NoRoute(func(c *gin.Context) { a.failCode(c, http.StatusNotFound, "NOT_FOUND", "no such route") })
	r.NoMethod(func(c *gin.Context) {
		a.failCode(c, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed on this route")
	})

	// Operational endpoints: no auth, no rate limit (probes must not be
	// throttled by user traffic).
	r.GET("/health", a.health)
	r.GET("/ready", a.ready)
	if !a.cfg.MetricsElsewhere {
		r.GET("/metrics", gin.WrapH(a.metrics.handler()))
	}
	r.GET("/openapi.yaml", a.openAPI)
	r.GET("/docs", a.docs)
	r.GET("/.well-known/jwks.json", a.jwks)

	// Anonymous requests are limited per client address (the user tier
	// before login), authenticated ones per user and all together
	// (global); see allow.
	v1 := r.Group("/api/v1")
	pub := v1.Group("/auth", a.limit(tierUser), a.limit(tierAuth))
	pub.POST("/register", a.register)
	pub.POST("/login", a.login)
	pub.POST("/refresh", a.refresh)
	pub.POST("/logout", a.logout)

	p := v1.Group("", a.authenticate, a.limit(tierGlobal), a.limit(tierUser))
	p.GET("/auth/me", a.me)
	// A bcrypt per guess of the current password: the auth tier, per user.
	p.PUT("/auth/password", a.limit(tierAuth), a.changePassword)

	up := a.limit(tierUpload)
	down := a.limit(tierDownload)
	p.POST("/files/upload", up, a.upload)
	p.GET("/files", a.listFiles)
	p.GET("/files/:id", a.getFile)
	p.GET("/files/:id/download", down, a.download)
	p.HEAD("/files/:id/download", down, a.download)
	p.PATCH("/files/:id", a.patchEntry)
	p.PUT("/files/:id/move", a.moveEntry)
	p.POST("/files/:id/copy", up, a.copyFile)
	p.DELETE("/files/:id", a.deleteEntry)

	p.GET("/files/:id/versions", a.listVersions)
	p.GET("/files/:id/versions/:version/download", down, a.downloadVersion)
	p.HEAD("/files/:id/versions/:version/download", down, a.downloadVersion)
	p.POST("/files/:id/versions/:version/restore", up, a.restoreVersion)
	p.DELETE("/files/:id/versions/:version", a.deleteVersion)

	p.POST("/files/upload/multipart/init", up, a.multipartInit)
	p.PUT("/files/upload/multipart/:upload/part/:part", up, a.multipartPart)
	p.GET("/files/upload/multipart/:upload", a.multipartStatus)
	p.POST("/files/upload/multipart/:upload/complete", up, a.multipartComplete)
	p.DELETE("/files/upload/multipart/:upload", a.multipartAbort)

	p.POST("/folders", a.createFolder)
	p.GET("/folders/:id", a.getFile)
	p.GET("/folders/:id/contents", a.folderContents)
	p.PATCH("/folders/:id", a.patchEntry)
	p.PUT("/folders/:id/move", a.moveEntry)
	p.DELETE("/folders/:id", a.deleteEntry)

	p.GET("/trash", a.listTrash)
	p.POST("/trash/:id/restore", a.restoreTrash)
	p.DELETE("/trash/:id", a.purgeTrash)

	p.GET("/search", a.search)
	p.GET("/storage/usage", a.usage)

	p.GET("/chunks/params", a.chunkParams)
	p.POST("/chunks/missing", a.missingChunks)
	p.PUT("/chunks/:hash", up, a.putChunk)
	p.POST("/chunks/batch", up, a.putChunks)
	p.GET("/files/:id/manifest", a.manifest)
	p.GET("/files/:id/versions/:version/chunks/:hash", down, a.getChunk)
	p.GET("/versions/:vid/manifest", a.versionManifest)
	p.GET("/versions/:vid/chunks/:hash", down, a.versionIDChunk)
	p.POST("/files/commit", up, a.commitManifest)
	p.GET("/changes", a.changes)

	p.GET("/fs/root", a.fsRoot)
	p.GET("/fs/entries/:id", a.fsGet)
	p.PATCH("/fs/entries/:id", a.fsSetAttr)
	p.GET("/fs/entries/:id/children", a.fsChildren)
	p.POST("/fs/entries/:id/children", a.fsCreate)
	p.GET("/fs/entries/:id/children/:name", a.fsLookup)
	p.DELETE("/fs/entries/:id/children/:name", a.fsRemove)
	p.POST("/fs/rename", a.fsRename)
	p.POST("/fs/entries/:id/links", a.fsLink)
	p.POST("/fs/commits", up, a.fsCommits)
	p.POST("/fs/trash", a.fsTrash)
	p.POST("/fs/ids", a.fsReserveIDs)
	p.POST("/fs/files", a.fsCreateFiles)
	p.GET("/fs/entries/:id/xattrs", a.fsListXattrs)
	p.GET("/fs/entries/:id/xattrs/:name", a.fsGetXattr)
	p.PUT("/fs/entries/:id/xattrs/:name", a.fsSetXattr)
	p.DELETE("/fs/entries/:id/xattrs/:name", a.fsRemoveXattr)

	adm := p.Group("/admin", a.requireAdmin)
	adm.GET("/users", a.adminUsers)
	adm.PATCH("/users/:id", a.adminPatchUser)
	adm.GET("/nodes", a.adminNodes)
	adm.POST("/nodes", a.adminAddNode)
	adm.PATCH("/nodes/:id", a.adminPatchNode)
	adm.DELETE("/nodes/:id", a.adminRemoveNode)
	adm.POST("/nodes/:id/drain", a.adminDrainNode)
	adm.POST("/nodes/:id/undrain", a.adminUndrainNode)
	adm.GET("/stats", a.adminStats)
	adm.POST("/gc", a.adminGC)
	return r
}
