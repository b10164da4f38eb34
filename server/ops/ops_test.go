package ops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

// /health, /ready and /metrics answer as the package documents; a failing
// check makes /ready 503 and names its error; anything else is 404 or 405.
func TestEndpoints(t *testing.T) {
	jobs := prometheus.NewCounter(prometheus.CounterOpts{Name: "dfms_test_jobs_total", Help: "Jobs."})
	jobs.Add(3)
	var failing error
	e := &Endpoints{Role: "worker test", Version: "v9", Registry: NewRegistry(jobs, BuildInfo("worker test", "v9")), Ready: map[string]Check{
		"metadata": func(context.Context) error { return nil },
		"chunks":   func(context.Context) error { return failing },
	}}
	h := e.Handler()

	code, body := get(t, h, "GET", "/health")
	var health map[string]string
	if err := json.Unmarshal([]byte(body), &health); err != nil || code != 200 {
		t.Fatalf("/health: got %d %q (%v), want 200 JSON", code, body, err)
	}
	if health["status"] != "ok" || health["role"] != "worker test" || health["version"] != "v9" {
		t.Errorf("/health: got %v, want status ok, role worker test, version v9", health)
	}

	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	code, body = get(t, h, "GET", "/ready")
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 200 || ready.Status != "ready" || ready.Checks["chunks"] != "ok" {
		t.Fatalf("/ready with every check passing: got %d %s, want 200 ready", code, body)
	}
	failing = errors.New("node n1 does not answer")
	code, body = get(t, h, "GET", "/ready")
	ready.Checks = nil
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 503 || ready.Status != "not_ready" ||
		ready.Checks["chunks"] != failing.Error() || ready.Checks["metadata"] != "ok" {
		t.Fatalf("/ready with a failing check: got %d %s, want 503 not_ready naming the error", code, body)
	}

	code, body = get(t, h, "GET", "/metrics")
	if code != 200 || !strings.Contains(body, "dfms_test_jobs_total 3") || !strings.Contains(body, "go_goroutines") ||
		!strings.Contains(body, `dfms_build_info{role="worker test",version="v9"} 1`) {
		t.Errorf("/metrics: got %d, want 200 with dfms_test_jobs_total 3 and the runtime's metrics:\n%s", code, body)
	}
	if code, _ := get(t, h, "GET", "/api/v1/files"); code != 404 {
		t.Errorf("GET /api/v1/files: got %d, want 404", code)
	}
	if code, _ := get(t, h, "POST", "/health"); code != 405 {
		t.Errorf("POST /health: got %d, want 405", code)
	}
}

// A check that blocks is cut at CheckTimeout's context: /ready answers
// 503 with the context's error rather than hanging.
func TestReadyCheckHonoursContext(t *testing.T) {
	e := &Endpoints{Registry: NewRegistry(), Ready: map[string]Check{
		"slow": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
	}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code, body := e.CheckReady(ctx)
	if code != 503 || body["checks"].(map[string]string)["slow"] != context.Canceled.Error() {
		t.Errorf("got %d %v, want 503 with the slow check cancelled", code, body)
	}
}

// Serve serves until its context ends, then returns nil.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &Endpoints{Registry: NewRegistry()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, e.Handler(), slogDiscard()) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health over TCP: got %d, want 200", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after its context ended: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
