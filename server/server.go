// Package server runs the DFMS server process: it opens the backends that
// the configuration names, builds the file layer over them and serves HTTP
// until its context ends, then shuts down gracefully (in-flight requests
// finish within Config.ShutdownTimeout; backends close after).
//
// The REST API under /api/v1 is built on this process; today it serves the
// operational endpoints /health (the process is up) and /ready (every
// configured backend answers).
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/postgres"
	"github.com/dfms/dfms/server/meta/sqlite"
)

// Version is the server's version, set by the build.
var Version = "dev"

// OpenMeta opens the metadata backend named by a URL: sqlite:///path,
// a bare path (SQLite), or postgres://….
func OpenMeta(ctx context.Context, raw string) (meta.Store, error) {
	const op dfms.Op = "server.OpenMeta"
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return postgres.Open(ctx, raw, postgres.Options{})
	case strings.HasPrefix(raw, "sqlite://"):
		u, err := url.Parse(raw)
		if err != nil {
			return nil, dfms.E(op, dfms.Invalid, err)
		}
		path := u.Path
		if u.Host != "" { // sqlite://relative/path
			path = u.Host + u.Path
		}
		return sqlite.Open(path)
	case !strings.Contains(raw, "://"):
		return sqlite.Open(raw)
	}
	return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("metadata URL %q: want sqlite:///path or postgres://…", redact(raw)))
}

func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// Server is a running DFMS server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	meta   meta.Store
	chunks dfms.ChunkStore
	files  *files.Service
	http   *http.Server
}

// New opens the backends of cfg (applying metadata migrations) and builds
// the server. Close releases them if Run is not called.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := OpenMeta(ctx, cfg.Metadata.URL)
	if err != nil {
		return nil, err
	}
	c, err := store.Open(ctx, cfg.Chunks.URL)
	if err != nil {
		m.Close()
		return nil, err
	}
	f, err := files.New(m, c, files.Options{Chunking: cfg.ChunkingParams()})
	if err != nil {
		m.Close()
		c.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, meta: m, chunks: c, files: f}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /ready", s.ready)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// No overall read/write timeouts: uploads and downloads of large
		// files legitimately take long. Idle connections are closed.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
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

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.Close()
	s.log.Info("dfms server listening", "addr", ln.Addr().String(), "version", Version,
		"metadata", redact(s.cfg.Metadata.URL), "chunks", redact(s.cfg.Chunks.URL), "chunking", s.cfg.ChunkingParams().String())
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	select {
	case err := <-errc:
		return dfms.E("server.Serve", dfms.Other, err)
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
		return dfms.E("server.Serve", dfms.Other, err)
	}
	s.log.Info("stopped")
	return nil
}

// Close releases the backends.
func (s *Server) Close() error {
	return errors.Join(s.meta.Close(), s.chunks.Close())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": Version})
}

// ready checks every configured backend.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"metadata": "ok", "chunks": "ok"}
	status := http.StatusOK
	if err := s.meta.Ping(ctx); err != nil {
		checks["metadata"], status = err.Error(), http.StatusServiceUnavailable
	}
	if _, err := s.chunks.Stat(ctx, dfms.Hash{}); err != nil && !dfms.Is(err, dfms.NotExist) {
		checks["chunks"], status = err.Error(), http.StatusServiceUnavailable
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not_ready"
	}
	writeJSON(w, status, map[string]any{"status": state, "checks": checks})
}
