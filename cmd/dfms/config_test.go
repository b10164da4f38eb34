package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms/server"
)

// configFile writes yaml to a configuration file in a temporary directory
// of t's, and returns its path.
func configFile(t *testing.T, yaml string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "dfms.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// source is one load in a table of where a setting comes from: the
// options (a file, a flag), the environment, and the value wanted.
type source[T any] struct {
	name string
	o    configOptions
	env  map[string]string
	want T
}

// checkSources loads the configuration of each source and compares the
// setting get picks from it, called what in messages, with the source's
// want.
func checkSources[T any](t *testing.T, what string, get func(server.Config) T, equal func(T, T) bool, sources []source[T]) {
	t.Helper()
	for _, tc := range sources {
		c, err := tc.o.load(func(k string) string { return tc.env[k] })
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := get(c); !equal(got, tc.want) {
			t.Errorf("%s: got %s %#v, want %#v", tc.name, what, got, tc.want)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	file := configFile(t, "addr: 127.0.0.1:1111\ndata_dir: /from/file\nlog:\n  level: debug\nchunking:\n  algorithm: rabin\n")
	env := map[string]string{
		"DFMS_CONFIG":            file,
		"DFMS_ADDR":              "127.0.0.1:2222",
		"DFMS_SHUTDOWN_TIMEOUT":  "5s",
		"DFMS_CHUNKING_MIN_SIZE": "131072",
	}
	o := configOptions{addr: "127.0.0.1:3333"}
	c, err := o.load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:3333" {
		t.Errorf("addr = %q, want the flag's", c.Addr)
	}
	if c.DataDir != "/from/file" || c.Log.Level != "debug" || c.Chunking.Algorithm != "rabin" {
		t.Errorf("file settings lost: %+v", c)
	}
	if c.ShutdownTimeout != 5*time.Second || c.Chunking.MinSize != 131072 {
		t.Errorf("env settings lost: %+v", c)
	}
	if c.Metadata.URL != "sqlite:///from/file/meta.db" || c.Chunks.URL != "file:///from/file/chunks" {
		t.Errorf("default backends: %q %q", c.Metadata.URL, c.Chunks.URL)
	}
	o = configOptions{addr: "127.0.0.1:3333"}
	delete(env, "DFMS_ADDR")
	c, err = o.load(func(k string) string { return env[k] })
	if err != nil || c.Addr != "127.0.0.1:3333" {
		t.Errorf("flag over file: %q, %v", c.Addr, err)
	}
}

func TestConfigDefaults(t *testing.T) {
	var o configOptions
	c, err := o.load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if c.Addr != "127.0.0.1:8080" || c.DataDir != "data" || c.Metadata.URL != "sqlite://"+filepath.Join(wd, "data", "meta.db") {
		t.Errorf("defaults: %+v", c)
	}
	c, err = o.load(func(k string) string {
		if k == "XDG_DATA_HOME" {
			return "/xdg"
		}
		return ""
	})
	if err != nil || c.DataDir != "/xdg/dfms" {
		t.Errorf("XDG_DATA_HOME: %q, %v", c.DataDir, err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("adr: typo\n"), 0o600)
	for name, tc := range map[string]struct {
		o   configOptions
		env map[string]string
	}{
		"unknown key":                   {configOptions{file: bad}, nil},
		"missing file":                  {configOptions{file: filepath.Join(dir, "none.yaml")}, nil},
		"bad log level":                 {configOptions{logLevel: "loud"}, nil},
		"bad int env":                   {configOptions{}, map[string]string{"DFMS_CHUNKING_AVG_SIZE": "big"}},
		"bad chunking":                  {configOptions{}, map[string]string{"DFMS_CHUNKING_MIN_SIZE": "999999999"}},
		"bad algorithm":                 {configOptions{algo: "md5"}, nil},
		"bad duration":                  {configOptions{}, map[string]string{"DFMS_SHUTDOWN_TIMEOUT": "soon"}},
		"bad log format":                {configOptions{logFmt: "xml"}, nil},
		"upload ttl":                    {configOptions{}, map[string]string{"DFMS_UPLOAD_TTL": "30s"}},
		"upload lifetime below the ttl": {configOptions{}, map[string]string{"DFMS_UPLOAD_TTL": "2h", "DFMS_UPLOAD_LIFETIME": "1h"}},
		"negative open uploads":         {configOptions{}, map[string]string{"DFMS_MAX_OPEN_UPLOADS": "-1"}},
		"chunk service cert, no key":    {configOptions{chunkTLSCert: "/c.pem"}, nil},
		"chunk service key, no cert":    {configOptions{}, map[string]string{"DFMS_CHUNK_SERVICE_TLS_KEY": "/k.pem"}},
		"client CA without TLS":         {configOptions{chunkClientCA: "/ca.pem"}, nil},
	} {
		_, err := tc.o.load(func(k string) string { return tc.env[k] })
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if _, ok := err.(usageError); !ok {
			t.Errorf("%s: %v is not a usage error", name, err)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "dfms ") {
		t.Errorf("version: code %d, out %q", code, out.String())
	}
	if code := run([]string{"server", "--no-such-flag"}, &out, &errb); code != 2 {
		t.Errorf("bad flag: code %d, want 2", code)
	}
	if code := run([]string{"server", "--log-level", "loud"}, &out, &errb); code != 2 {
		t.Errorf("bad config: code %d, want 2", code)
	}
	errb.Reset()
	if code := run([]string{"chunk-service", "--chunks", "grpc://127.0.0.1:9091"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "chunk service") {
		t.Errorf("chunk service of a chunk service: code %d, %q; want 2 and why", code, errb.String())
	}
}

// The multipart upload bounds and the quota's hold time: defaults, and
// each key from the environment and from YAML.
func TestConfigUploadBounds(t *testing.T) {
	var o configOptions
	c, err := o.load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.UploadTTL != 24*time.Hour || c.Storage.UploadLifetime != 7*24*time.Hour || c.Storage.MaxOpenUploads != 100 {
		t.Errorf("defaults: ttl %v, lifetime %v, open %d; want 24h, 168h, 100", c.Storage.UploadTTL, c.Storage.UploadLifetime, c.Storage.MaxOpenUploads)
	}
	if c.HoldFor() != 25*time.Hour {
		t.Errorf("hold time: got %v, want the GC grace plus its interval (25h)", c.HoldFor())
	}
	env := map[string]string{"DFMS_UPLOAD_TTL": "2h", "DFMS_UPLOAD_LIFETIME": "3h", "DFMS_MAX_OPEN_UPLOADS": "5", "DFMS_GC_GRACE": "2h", "DFMS_GC_INTERVAL": "-1s"}
	c, err = o.load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.UploadTTL != 2*time.Hour || c.Storage.UploadLifetime != 3*time.Hour || c.Storage.MaxOpenUploads != 5 || c.HoldFor() != 3*time.Hour {
		t.Errorf("from the environment: ttl %v, lifetime %v, open %d, hold %v", c.Storage.UploadTTL, c.Storage.UploadLifetime, c.Storage.MaxOpenUploads, c.HoldFor())
	}
	file := configFile(t, "storage:\n  upload_ttl: 48h\n  max_open_uploads: 7\n")
	c, err = (&configOptions{file: file}).load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.UploadTTL != 48*time.Hour || c.Storage.UploadLifetime != 7*24*time.Hour || c.Storage.MaxOpenUploads != 7 {
		t.Errorf("from YAML: ttl %v, lifetime %v, open %d", c.Storage.UploadTTL, c.Storage.UploadLifetime, c.Storage.MaxOpenUploads)
	}
}

// trusted_proxies comes from the file as a list, from DFMS_TRUSTED_PROXIES
// and --trusted-proxies as a comma-separated one; a malformed entry is a
// usage error.
func TestConfigTrustedProxies(t *testing.T) {
	file := configFile(t, "trusted_proxies: [172.18.0.0/16, 10.0.0.1]\n")
	checkSources(t, "trusted proxies", func(c server.Config) []string { return c.TrustedProxies }, slices.Equal, []source[[]string]{
		{"default", configOptions{}, nil, nil},
		{"file", configOptions{file: file}, nil, []string{"172.18.0.0/16", "10.0.0.1"}},
		{"env", configOptions{file: file}, map[string]string{"DFMS_TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8"}, []string{"10.0.0.0/8", "fd00::/8"}},
		{"flag", configOptions{file: file, trustedProxies: "192.0.2.1"}, map[string]string{"DFMS_TRUSTED_PROXIES": "10.0.0.0/8"}, []string{"192.0.2.1"}},
	})
	_, err := (&configOptions{}).load(func(k string) string {
		if k == "DFMS_TRUSTED_PROXIES" {
			return "traefik"
		}
		return ""
	})
	if _, ok := err.(usageError); !ok {
		t.Errorf("DFMS_TRUSTED_PROXIES=traefik: got %v, want a usage error", err)
	}
}

// metrics_addr comes from the file, DFMS_METRICS_ADDR or --metrics-addr,
// in that increasing precedence; unset, /metrics stays on the API address.
func TestConfigMetricsAddr(t *testing.T) {
	file := configFile(t, "metrics_addr: 127.0.0.1:9001\n")
	checkSources(t, "metrics address", func(c server.Config) string { return c.MetricsAddr }, func(a, b string) bool { return a == b }, []source[string]{
		{"default", configOptions{}, nil, ""},
		{"file", configOptions{file: file}, nil, "127.0.0.1:9001"},
		{"env", configOptions{file: file}, map[string]string{"DFMS_METRICS_ADDR": "127.0.0.1:9002"}, "127.0.0.1:9002"},
		{"flag", configOptions{file: file, metricsAddr: "127.0.0.1:9003"}, map[string]string{"DFMS_METRICS_ADDR": "127.0.0.1:9002"}, "127.0.0.1:9003"},
	})
}

// The chunk service's settings come from the file, DFMS_CHUNK_SERVICE_*
// or its flags, in that increasing precedence.
func TestConfigChunkService(t *testing.T) {
	file := configFile(t, "chunk_service:\n  listen: 0.0.0.0:9191\n  tls_cert: /f/cert.pem\n  tls_key: /f/key.pem\n  ops_addr: 0.0.0.0:9192\n")
	type cs = struct{ Listen, TLSCert, TLSKey, ClientCA, OpsAddr string }
	get := func(c server.Config) cs { return cs(c.ChunkService) }
	checkSources(t, "chunk service", get, func(a, b cs) bool { return a == b }, []source[cs]{
		{"default", configOptions{}, nil, cs{Listen: "127.0.0.1:9091", OpsAddr: "127.0.0.1:9092"}},
		{"file", configOptions{file: file}, nil, cs{"0.0.0.0:9191", "/f/cert.pem", "/f/key.pem", "", "0.0.0.0:9192"}},
		{"env", configOptions{file: file}, map[string]string{"DFMS_CHUNK_SERVICE_LISTEN": "127.0.0.1:9292", "DFMS_CHUNK_SERVICE_CLIENT_CA": "/e/ca.pem",
			"DFMS_CHUNK_SERVICE_OPS_ADDR": "127.0.0.1:9293"},
			cs{"127.0.0.1:9292", "/f/cert.pem", "/f/key.pem", "/e/ca.pem", "127.0.0.1:9293"}},
		{"flags", configOptions{file: file, chunkListen: "127.0.0.1:9393", chunkTLSCert: "/c.pem", chunkTLSKey: "/k.pem", chunkClientCA: "/ca.pem",
			chunkOpsAddr: "127.0.0.1:9394"},
			map[string]string{"DFMS_CHUNK_SERVICE_LISTEN": "127.0.0.1:9292"}, cs{"127.0.0.1:9393", "/c.pem", "/k.pem", "/ca.pem", "127.0.0.1:9394"}},
	})
}

// A worker's ops address comes from worker.addr, DFMS_WORKER_ADDR or, for
// a worker command, --addr (which is otherwise the API's address); unset,
// it stays empty here and the worker's kind picks the default.
func TestConfigWorkerAddr(t *testing.T) {
	file := configFile(t, "worker:\n  addr: 127.0.0.1:9201\n")
	get := func(c server.Config) [2]string { return [2]string{c.Worker.Addr, c.Addr} }
	checkSources(t, "worker address", get, func(a, b [2]string) bool { return a == b }, []source[[2]string]{
		{"default", configOptions{}, nil, [2]string{"", "127.0.0.1:8080"}},
		{"file", configOptions{file: file}, nil, [2]string{"127.0.0.1:9201", "127.0.0.1:8080"}},
		{"env", configOptions{file: file}, map[string]string{"DFMS_WORKER_ADDR": "127.0.0.1:9202"}, [2]string{"127.0.0.1:9202", "127.0.0.1:8080"}},
		{"worker flag", configOptions{file: file, addr: "127.0.0.1:9203", addrIsWorker: true}, map[string]string{"DFMS_WORKER_ADDR": "127.0.0.1:9202"},
			[2]string{"127.0.0.1:9203", "127.0.0.1:8080"}},
		{"server flag", configOptions{file: file, addr: "127.0.0.1:9204"}, nil, [2]string{"127.0.0.1:9201", "127.0.0.1:9204"}},
	})
}

// A listen address that is not host:port is a usage error naming its key.
func TestConfigBadAddr(t *testing.T) {
	for _, tc := range []struct{ env, value, key string }{
		{"DFMS_WORKER_ADDR", "9093", "worker.addr"},
		{"DFMS_WORKER_ADDR", "127.0.0.1:http", "worker.addr"},
		{"DFMS_CHUNK_SERVICE_OPS_ADDR", "127.0.0.1:70000", "chunk_service.ops_addr"},
		{"DFMS_ADDR", "localhost", "addr"},
	} {
		_, err := (&configOptions{}).load(func(k string) string {
			if k == tc.env {
				return tc.value
			}
			return ""
		})
		if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s=%s: got %v, want a usage error naming %s", tc.env, tc.value, err, tc.key)
		}
	}
}

// gc.grace may be as short as a second (tests use it; a short grace only
// costs writes that outlive it), gc.lease too; shorter is a usage error.
func TestConfigGCDurations(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string // "" for valid
	}{
		{map[string]string{"DFMS_GC_GRACE": "1s", "DFMS_GC_LEASE": "4s"}, ""},
		{map[string]string{"DFMS_GC_GRACE": "999ms"}, "gc.grace"},
		{map[string]string{"DFMS_GC_LEASE": "10ms"}, "gc.lease"},
		{map[string]string{"DFMS_GC_LEASE": "-1m"}, "gc.lease"},
	} {
		c, err := (&configOptions{}).load(func(k string) string { return tc.env[k] })
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: got %v, want it accepted", tc.env, err)
		case tc.want == "" && (c.GC.Grace != time.Second || c.GC.Lease != 4*time.Second):
			t.Errorf("%v: got grace %v, lease %v", tc.env, c.GC.Grace, c.GC.Lease)
		case tc.want != "":
			if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: got %v, want a usage error naming %s", tc.env, err, tc.want)
			}
		}
	}
}
