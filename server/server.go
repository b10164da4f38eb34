// Package server runs the DFMS processes: it opens the backends that the
// configuration names, builds the file layer over them and serves HTTP
// until its context ends, then shuts down gracefully (in-flight requests
// finish within Config.ShutdownTimeout; backends close after).
//
// One Server type serves the REST API (package api) for two roles: New is
// `dfms server`, everything in one process (the API, the garbage
// collector's loop, the outbox's relay to the event bus and, with
// storage.nodes, the health monitor and the replication manager); NewGateway is `dfms gateway`, the API alone, which
// keeps no state of its own and scales by running more of it. A gateway
// with storage.nodes still places chunks on the ring and follows the node
// table; the background work is for workers (NewWorker: `dfms worker gc`,
// `replication`, `health`), which share it through locks in the metadata
// store when several run. (A bad copy that a gateway's read meets is
// skipped, not reported to a repair of its own: the replication worker's
// scrubber finds it.) Every process serves /health, /ready and /metrics
// (package ops): the API on its own address, a worker on worker.addr.
// The worker kinds are a table (WorkerKinds): a new kind is one entry
// with what it opens and runs.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store"
	"github.com/dfms/dfms/server/api"
	"github.com/dfms/dfms/server/auth"
	"github.com/dfms/dfms/server/events"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/postgres"
	"github.com/dfms/dfms/server/meta/sqlite"
	"github.com/dfms/dfms/server/meta/sqlmeta"
	"github.com/dfms/dfms/server/ops"
	"github.com/dfms/dfms/server/ratelimit"
	"github.com/dfms/dfms/workers/gc"
)

// Version is the server's version, set by the build.
var Version = "dev"

// OpenMeta opens the metadata backend named by a URL: sqlite:///path,
// a bare path (SQLite), or postgres://….
func OpenMeta(ctx context.Context, raw string) (meta.Store, error) {
	const op dfms.Op = "server.OpenMeta"
	// A failed Open returns a nil *sqlmeta.Store, which must not become
	// a non-nil meta.Store.
	var s *sqlmeta.Store
	var err error
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		s, err = postgres.Open(ctx, raw, postgres.Options{})
	case strings.HasPrefix(raw, "sqlite://"):
		u, perr := url.Parse(raw)
		if perr != nil {
			return nil, dfms.E(op, dfms.Invalid, errors.New("malformed metadata URL"))
		}
		path := u.Path
		if u.Host != "" { // sqlite://relative/path
			path = u.Host + u.Path
		}
		s, err = sqlite.Open(path)
	case !strings.Contains(raw, "://"):
		s, err = sqlite.Open(raw)
	default:
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("metadata URL %q: want sqlite:///path or postgres://…", dfms.RedactURL(raw)))
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// backendError is the failure to open one backend: what it is, its URL
// without credentials, and why, on one line; it keeps err's kind.
func backendError(what, raw string, err error) error {
	return dfms.E("server.New", dfms.Other, fmt.Errorf("%s %s: %w", what, dfms.RedactURL(raw), err))
}

// Role is what a Server runs besides the REST API.
type Role int

const (
	// RoleAll is `dfms server`: the API, the GC loop and the cluster's
	// health monitor and replication manager.
	RoleAll Role = iota
	// RoleGateway is `dfms gateway`: the API only.
	RoleGateway
)

func (r Role) String() string {
	if r == RoleGateway {
		return "gateway"
	}
	return "server"
}

// Server is a running DFMS server or gateway.
type Server struct {
	role    Role
	cfg     Config
	log     *slog.Logger
	meta    meta.Store
	chunks  dfms.ChunkStore
	local   *Chunks // the chunks this process keeps itself; nil for a chunk service's client
	limiter ratelimit.Limiter
	files   *files.Service
	auth    *auth.Service
	gc      *gc.Collector
	bus     events.Bus
	relay   *events.Relay
	api     *api.API
	http    *http.Server
	metrics *http.Server // on cfg.MetricsAddr; nil if /metrics is on the API's address
}

// New opens the backends of cfg (applying metadata migrations), creates
// the configured administrator, and builds the server (RoleAll). Close
// releases the backends if Run is not called.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	return newServer(ctx, RoleAll, cfg, log)
}

// NewGateway is New for a gateway (RoleGateway): the same API on the same
// backends, without the background work that workers do.
func NewGateway(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	return newServer(ctx, RoleGateway, cfg, log)
}

func newServer(ctx context.Context, role Role, cfg Config, log *slog.Logger) (_ *Server, err error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{role: role, cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// Each backend is kept only once open, so that the cleanup closes
	// exactly those; a failure names the backend and its URL, without
	// credentials.
	m, err := OpenMeta(ctx, cfg.Metadata.URL)
	if err != nil {
		return nil, backendError("metadata", cfg.Metadata.URL, err)
	}
	s.meta = m
	// A server whose chunks are in a chunk service is its client;
	// otherwise it keeps them itself, as a chunk service would.
	if isChunkServiceURL(cfg.Chunks.URL) {
		s.chunks, err = store.Open(ctx, cfg.Chunks.URL)
		if err != nil {
			return nil, backendError("chunk service", cfg.Chunks.URL, err)
		}
	} else {
		s.local, err = OpenChunks(ctx, &cfg, m, log)
		if err != nil {
			return nil, err
		}
		s.chunks = s.local.Store
	}
	limiter, err := ratelimit.Open(ctx, cfg.RateLimit.URL)
	if err != nil {
		return nil, backendError("rate limiter", cfg.RateLimit.URL, err)
	}
	s.limiter = limiter
	s.files, err = files.New(s.meta, s.chunks, files.Options{Chunking: cfg.ChunkingParams(), HoldFor: cfg.HoldFor(),
		Retention: files.Retention{KeepLast: cfg.Versions.KeepLast, KeepFor: time.Duration(cfg.Versions.KeepDays) * 24 * time.Hour}})
	if err != nil {
		return nil, err
	}
	var keys *auth.Keys
	if cfg.Auth.PrivateKey != "" {
		keys, err = auth.LoadKeys(cfg.Auth.PrivateKey, cfg.Auth.PublicKey)
	} else {
		keys, err = auth.LoadOrGenerateKeys(filepath.Join(cfg.DataDir, "keys"))
	}
	if err != nil {
		return nil, err
	}
	s.auth = auth.New(s.meta, keys, auth.Config{Issuer: cfg.Auth.Issuer, AccessTTL: cfg.Auth.AccessTTL,
		RefreshTTL: cfg.Auth.RefreshTTL, BcryptCost: cfg.Auth.BcryptCost, DefaultQuota: cfg.Storage.DefaultQuota})
	if err := s.ensureAdmin(ctx); err != nil {
		return nil, err
	}
	// A gateway keeps the collector for the admin API's "collect now".
	s.gc = &gc.Collector{Meta: s.meta, Chunks: s.chunks, Grace: cfg.GC.Grace, Lease: cfg.GC.Lease, Log: log}
	metrics := append(s.gc.Metrics(), ops.BuildInfo(role.String(), Version))
	if role == RoleAll {
		// The relay of the outbox to the event bus is background work
		// too: a gateway leaves it to another process.
		if s.bus, err = OpenBus(&cfg, log); err != nil {
			return nil, err
		}
		s.relay = NewRelay(&cfg, s.meta, s.bus, log)
		metrics = append(metrics, s.relay.Metrics()...)
		if s.local != nil {
			s.local.Events = s.bus // repair events for its replication manager
		}
	}
	if s.local != nil && role == RoleAll {
		metrics = append(metrics, s.local.Metrics()...)
	}
	perMin := func(n int) ratelimit.Limit { return ratelimit.Limit{Requests: n, Window: time.Minute} }
	rl := cfg.RateLimit
	var members api.Membership // nil with a single chunk store: the API refuses node changes
	if s.local != nil && s.local.cluster != nil {
		members = nodeRules{replicas: cfg.Storage.Replicas, quorum: cfg.Storage.WriteQuorum, configured: cfg.Storage.Nodes}
	}
	s.api = api.New(api.Deps{Files: s.files, Auth: s.auth, Keys: keys, Limiter: s.limiter, GC: s.gc, Cluster: members,
		Metrics: metrics, Log: log, Version: Version,
		Ready: map[string]func(context.Context) error{
			"metadata": s.meta.Ping,
			"chunks": func(ctx context.Context) error {
				if s.local != nil {
					return s.local.Ready(ctx)
				}
				if _, err := s.chunks.Stat(ctx, dfms.Hash{}); err != nil && !dfms.Is(err, dfms.NotExist) {
					return err
				}
				return nil
			},
			"rate_limiter": func(ctx context.Context) error {
				_, err := s.limiter.Allow(ctx, "ready-probe", ratelimit.Limit{Requests: 1 << 30, Window: time.Second})
				return err
			},
		}},
		api.Config{MaxUploadSize: cfg.Storage.MaxUploadSize, PartSize: cfg.Storage.PartSize, TrustedProxies: cfg.TrustedProxies,
			UploadTTL: cfg.Storage.UploadTTL, UploadLifetime: cfg.Storage.UploadLifetime, MaxOpenUploads: cfg.Storage.MaxOpenUploads,
			MetricsElsewhere: cfg.MetricsAddr != "",
			Limits: api.Limits{Global: perMin(rl.Global), User: perMin(rl.User), Auth: perMin(rl.Auth),
				Upload: perMin(rl.Upload), Download: perMin(rl.Download), FailOpen: rl.FailOpen}})
	s.http = &http.Server{
		Handler:           s.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// No overall read/write timeouts: uploads and downloads of large
		// files legitimately take long. Idle connections are closed.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.api.MetricsHandler())
		s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10, ErrorLog: s.http.ErrorLog}
	}
	return s, nil
}

// ensureAdmin creates the configured administrator if it does not exist.
func (s *Server) ensureAdmin(ctx context.Context) error {
	if s.cfg.Admin.Email == "" {
		return nil
	}
	if _, err := s.meta.GetUserByEmail(ctx, s.cfg.Admin.Email); err == nil {
		return nil
	} else if !dfms.Is(err, dfms.NotExist) {
		return err
	}
	u, err := s.auth.CreateUser(ctx, s.cfg.Admin.Email, s.cfg.Admin.Password, "Administrator", meta.RoleAdmin, 0)
	if err != nil && !dfms.Is(err, dfms.Exist) {
		return err
	}
	s.log.Info("created the administrator", "email", u.Email)
	return nil
}

// Files returns the server's file layer.
func (s *Server) Files() *files.Service { return s.files }

// Run listens on the configured address and serves until ctx ends, then
// shuts down gracefully and closes the backends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.Close()
		return dfms.E("server.Run", dfms.Unavailable, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener. It listens on the metrics address
// itself, if one is configured.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	const op dfms.Op = "server.Serve"
	defer s.Close()
	merrc := make(chan error, 1) // the metrics server's; never sent to without one
	if s.metrics != nil {
		mln, err := net.Listen("tcp", s.cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return dfms.E(op, dfms.Unavailable, fmt.Errorf("metrics address: %w", err))
		}
		s.log.Info("metrics listening", "addr", mln.Addr().String())
		go func() { merrc <- s.metrics.Serve(mln) }()
		defer func() {
			s.metrics.Close()
			<-merrc
		}()
	}
	chunks := dfms.RedactURL(s.cfg.Chunks.URL)
	if s.local != nil {
		chunks = s.local.String()
	}
	s.log.Info("dfms "+s.role.String()+" listening", "addr", ln.Addr().String(), "version", Version,
		"metadata", dfms.RedactURL(s.cfg.Metadata.URL), "chunks", chunks, "chunking", s.cfg.ChunkingParams().String())
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	switch {
	case s.role == RoleAll:
		if s.cfg.GC.Interval > 0 {
			wg.Go(func() { collectEvery(bg, s.gc, s.cfg.GC.Interval, s.log) })
		}
		if s.local != nil {
			wg.Go(func() { s.local.Run(bg) })
		}
		wg.Go(func() { s.relay.Run(bg) })
	case s.local != nil:
		// A gateway places chunks by the node table as it changes.
		wg.Go(func() { s.local.Follow(bg) })
	}
	defer func() { stopBG(); wg.Wait() }()
	select {
	case err := <-errc:
		return dfms.E(op, dfms.Other, err)
	case err := <-merrc:
		merrc <- err // for the deferred wait
		s.http.Close()
		<-errc
		return dfms.E(op, dfms.Other, fmt.Errorf("metrics server: %w", err))
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.http.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	s.log.Info("stopped")
	return nil
}

// collectEvery runs the garbage collector every interval until ctx ends. A
// collection that finds the lock held (another process is collecting) is
// no failure; one that loses its lock midway is logged as one.
func collectEvery(ctx context.Context, c *gc.Collector, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := c.Run(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
		case gc.LockHeld(err):
			log.Debug("garbage collection skipped: another process collects", "err", err)
		default:
			log.Warn("garbage collection failed", "err", err)
		}
	}
}

// Close releases the backends.
func (s *Server) Close() error {
	var errs []error
	if s.bus != nil {
		errs = append(errs, s.bus.Close())
	}
	// The chunks first: a cluster's announcer writes to the metadata
	// store until it stops.
	if s.local != nil {
		errs = append(errs, s.local.Close())
	} else if s.chunks != nil {
		errs = append(errs, s.chunks.Close())
	}
	for _, c := range []interface{ Close() error }{s.meta, s.limiter} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
