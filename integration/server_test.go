package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
)

var dfmsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dfms-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dfmsBin = filepath.Join(dir, "dfms")
	build := exec.Command("go", "build", "-race", "-o", dfmsBin, "github.com/dfms/dfms/cmd/dfms")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dfms:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running dfms server.
type proc struct {
	*testkit.Proc
	addr string
}

// startServer runs `dfms server` in dir with args and waits until /health
// answers.
func startServer(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	addr := testkit.FreeAddr(t)
	cmd := exec.Command(dfmsBin, append([]string{"server", "--addr", addr}, args...)...)
	cmd.Dir = dir
	// Cheap password hashing: at the default cost each login takes seconds
	// under the race detector. (server/auth checks the default is 12.)
	cmd.Env = append(append(os.Environ(), "DFMS_BCRYPT_COST=4"), env...)
	cmd.Stdout = io.Discard // the log is on stderr
	p := testkit.StartProc(t, t, "dfms server", cmd, 60*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, nil)
	return &proc{Proc: p, addr: addr}
}

// stop sends SIGTERM and requires a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.Stop(t, 30*time.Second)
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	code, b := testkit.Get(t, url)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v in %q", url, err, b)
	}
	return code, v
}

// `dfms server` with no configuration at all starts on the embedded
// default, keeps its data under ./data, and stops cleanly on SIGTERM.
func TestServerZeroConfig(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir, []string{"XDG_DATA_HOME="})
	code, body := getJSON(t, "http://"+p.addr+"/ready")
	if code != 200 || body["status"] != "ready" {
		t.Fatalf("/ready = %d %v", code, body)
	}
	if out, err := exec.Command(dfmsBin, "healthcheck", "--url", "http://"+p.addr+"/ready").CombinedOutput(); err != nil {
		t.Fatalf("dfms healthcheck on a ready server: %v %s", err, out)
	}
	p.stop(t)
	if err := exec.Command(dfmsBin, "healthcheck", "--url", "http://"+p.addr+"/ready", "--timeout", "2s").Run(); err == nil {
		t.Fatal("dfms healthcheck succeeded against a stopped server")
	}
	for _, f := range []string{"data/meta.db", "data/chunks"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("embedded default did not create %s: %v", f, err)
		}
	}
	if !strings.Contains(p.Logs.String(), "stopped") {
		t.Errorf("no clean-shutdown log line:\n%s", p.Logs)
	}
	// It starts again on the same data.
	p = startServer(t, dir, []string{"XDG_DATA_HOME="})
	p.stop(t)
}

// XDG_DATA_HOME moves the default data directory.
func TestServerXDGDataHome(t *testing.T) {
	dir, xdg := t.TempDir(), t.TempDir()
	p := startServer(t, dir, []string{"XDG_DATA_HOME=" + xdg})
	p.stop(t)
	if _, err := os.Stat(filepath.Join(xdg, "dfms", "meta.db")); err != nil {
		t.Fatalf("no meta.db under XDG_DATA_HOME: %v", err)
	}
}

// PostgreSQL and S3 are selected by flags, environment or a config file.
func TestServerPostgresS3(t *testing.T) {
	pg, s3 := testenv.Postgres(t), testenv.S3(t)
	dir := t.TempDir()
	t.Run("flags", func(t *testing.T) {
		p := startServer(t, dir, nil, "--metadata", pg, "--chunks", s3, "--log-format", "json")
		if code, body := getJSON(t, "http://"+p.addr+"/ready"); code != 200 {
			t.Fatalf("/ready = %d %v", code, body)
		}
		p.stop(t)
		if strings.Contains(p.Logs.String(), "secret") || strings.Contains(p.Logs.String(), strings.Split(strings.TrimPrefix(s3, "s3://"), "@")[0]) {
			t.Errorf("credentials in the logs:\n%s", p.Logs)
		}
	})
	t.Run("env", func(t *testing.T) {
		p := startServer(t, dir, []string{"DFMS_METADATA_URL=" + pg, "DFMS_CHUNKS_URL=" + s3})
		p.stop(t)
	})
	t.Run("file", func(t *testing.T) {
		cfg := filepath.Join(dir, "dfms.yaml")
		yaml := fmt.Sprintf("metadata:\n  url: %q\nchunks:\n  url: %q\n", pg, s3)
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startServer(t, dir, nil, "--config", cfg)
		p.stop(t)
	})
	// Only the token-signing keys live in the data directory then.
	for _, f := range []string{"data/meta.db", "data/chunks"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was created although postgres and s3 were configured", f)
		}
	}
}

// Bad configuration fails fast with exit code 2 and a clear message.
func TestServerBadConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dfmsBin, "server", "--metadata", "mysql://nope")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "metadata URL") {
		t.Fatalf("exit %v, output %q; want exit code 2 naming the metadata URL", err, out)
	}
}
