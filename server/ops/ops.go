// Package ops is the operational HTTP surface that every DFMS process
// serves, whatever its role: GET /health (the process is up), GET /ready
// (every backend the role needs answers) and GET /metrics (Prometheus,
// dfms_* names). The gateway serves them on its API address; a worker
// (dfms worker …) and the chunk service serve them on an address of their
// own (Serve).
//
// /health answers 200 {"status":"ok","service":"dfms","version":…} (with
// "role" when the process has a role other than the gateway's API)
// as long as the process serves HTTP. /ready runs every check, each within
// 3 s, and answers 200 {"status":"ready","checks":{name:"ok"}} or 503
// {"status":"not_ready","checks":{name:"ok" or the error}}.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness check: nil when the dependency answers.
type Check func(context.Context) error

// CheckTimeout bounds each readiness check.
const CheckTimeout = 3 * time.Second

// Endpoints are a process's operational endpoints.
type Endpoints struct {
	// Role names the process's role in /health ("server", "gateway",
	// "worker gc", …).
	Role    string
	Version string
	// Ready are the readiness checks by name.
	Ready map[string]Check
	// Registry holds the metrics; NewRegistry makes one.
	Registry *prometheus.Registry
}

// NewRegistry returns a registry with the Go runtime's and the process's
// collectors and more. A registry of its own per process part (not the
// global one) lets several run in one test binary.
func NewRegistry(more ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(more...)
	return reg
}

// BuildInfo is the gauge dfms_build_info{role, version}, always 1: which
// role and version a scraped process runs.
func BuildInfo(role, version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "dfms_build_info", Help: "The role and version of this process; always 1.",
		ConstLabels: prometheus.Labels{"role": role, "version": version}})
	g.Set(1)
	return g
}

// Health serves GET /health.
func (e *Endpoints) Health(w http.ResponseWriter, _ *http.Request) {
	body := map[string]string{"status": "ok", "service": "dfms", "version": e.Version}
	if e.Role != "" {
		body["role"] = e.Role
	}
	writeJSON(w, http.StatusOK, body)
}

// ReadyHandler serves GET /ready: every check runs, in parallel, each
// within CheckTimeout.
func (e *Endpoints) ReadyHandler(w http.ResponseWriter, r *http.Request) {
	status, body := e.CheckReady(r.Context())
	writeJSON(w, status, body)
}

// CheckReady runs the readiness checks and returns the status and body
// /ready answers with.
func (e *Endpoints) CheckReady(ctx context.Context) (int, map[string]any) {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	var mu sync.Mutex
	checks := make(map[string]string, len(e.Ready))
	ready := true
	var wg sync.WaitGroup
	for name, check := range e.Ready {
		wg.Go(func() {
			res := "ok"
			if err := check(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			checks[name] = res
			if res != "ok" {
				ready = false
			}
		})
	}
	wg.Wait()
	if !ready {
		return http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "checks": checks}
	}
	return http.StatusOK, map[string]any{"status": "ready", "checks": checks}
}

// Metrics serves GET /metrics from the registry.
func (e *Endpoints) Metrics() http.Handler {
	return promhttp.HandlerFor(e.Registry, promhttp.HandlerOpts{})
}

// Handler serves the three endpoints (GET only) and 404 for anything else.
func (e *Endpoints) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", e.Health)
	mux.HandleFunc("GET /ready", e.ReadyHandler)
	mux.Handle("GET /metrics", e.Metrics())
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Serve serves h on ln until ctx ends, then shuts down, giving requests
// in flight up to 5 s. It returns nil after a shutdown, or the error that
// stopped the server.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
