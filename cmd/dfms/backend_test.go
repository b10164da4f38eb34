package main

import (
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
)

// captureFD2 runs fn with file descriptor 2 (the process's stderr, which
// libraries may write to behind the command's back) sent to a pipe, and
// returns what was written there.
func captureFD2(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup2(int(w.Fd()), 2); err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	func() {
		defer func() {
			syscall.Dup2(saved, 2)
			syscall.Close(saved)
			w.Close()
		}()
		fn()
	}()
	out := <-done
	r.Close()
	return out
}

// withPassword returns raw with its password replaced.
func withPassword(t *testing.T, raw, password string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// withPath returns raw with its path replaced.
func withPath(t *testing.T, raw, path string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = path
	return u.String()
}

// A backend that cannot be opened ends `dfms server` (and `dfms up`) with
// one line on stderr that names the backend and the cause, without its
// credentials, and a non-zero exit: never a panic, never a hang.
func TestBackendOpenFailures(t *testing.T) {
	const secret = "s3cr3t-Pa55word"
	pg, s3, redis := testenv.Postgres(t), testenv.S3(t), testenv.Redis(t)
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	realSecrets := []string{}
	for _, raw := range []string{pg, s3, redis} {
		if u, err := url.Parse(raw); err == nil {
			if p, ok := u.User.Password(); ok {
				realSecrets = append(realSecrets, p)
			}
		}
	}
	// Exit 2 is a configuration error (a URL that cannot mean anything),
	// 1 a backend that is there but refuses or fails.
	tests := []struct {
		name, flag, url, backend string
		code                     int
	}{
		{"postgres wrong password", "--metadata", withPassword(t, pg, secret), "metadata", 1},
		{"postgres missing database", "--metadata", withPath(t, pg, "/"+testenv.RandomName("dfms_missing_")), "metadata", 1},
		{"postgres unreachable", "--metadata", "postgres://dfms:" + secret + "@" + testkit.FreeAddr(t) + "/dfms?sslmode=disable", "metadata", 1},
		{"postgres malformed", "--metadata", "postgres://dfms:" + secret + "@127.0.0.1:port/dfms", "metadata", 2},
		{"sqlite under a file", "--metadata", "sqlite://" + file + "/meta.db", "metadata", 1},
		{"metadata unknown scheme", "--metadata", "mysql://dfms:" + secret + "@127.0.0.1/dfms", "metadata", 2},
		{"s3 wrong secret", "--chunks", withPassword(t, s3, secret), "chunk store", 1},
		{"s3 unreachable", "--chunks", "s3://key:" + secret + "@" + testkit.FreeAddr(t) + "/bucket?secure=false", "chunk store", 1},
		{"s3 malformed", "--chunks", "s3://key:" + secret + "@127.0.0.1:port/bucket", "chunk store", 2},
		{"s3 bad bucket name", "--chunks", withPath(t, s3, "/No_Such..Bucket"), "chunk store", 2},
		{"file under a file", "--chunks", "file://" + file + "/chunks", "chunk store", 1},
		{"redis wrong password", "DFMS_RATE_LIMIT_URL", withPassword(t, redis, secret), "rate limiter", 1},
		{"redis missing database", "DFMS_RATE_LIMIT_URL", withPath(t, redis, "/99"), "rate limiter", 1},
		{"redis unreachable", "DFMS_RATE_LIMIT_URL", "redis://:" + secret + "@" + testkit.FreeAddr(t) + "/0", "rate limiter", 1},
		{"redis malformed", "DFMS_RATE_LIMIT_URL", "redis://:" + secret + "@127.0.0.1:port/0", "rate limiter", 2},
	}
	for _, cmd := range []string{"server", "up"} {
		for _, tc := range tests {
			t.Run(cmd+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				args := []string{cmd}
				if cmd == "up" {
					args = append(args, filepath.Join(dir, "mnt"), "--cache-dir", filepath.Join(dir, "cache"))
				}
				args = append(args, "--data", filepath.Join(dir, "data"), "--addr", testkit.FreeAddr(t))
				if strings.HasPrefix(tc.flag, "--") {
					args = append(args, tc.flag, tc.url)
				} else {
					t.Setenv(tc.flag, tc.url)
				}
				var out, errb strings.Builder
				var code int
				stray := captureFD2(t, func() { code = run(args, &out, &errb) })
				if stray != "" {
					t.Errorf("written to the process's stderr besides the error: %q", stray)
				}
				msg := strings.TrimSpace(errb.String())
				if code != tc.code {
					t.Errorf("exit %d, stderr %q; want exit %d", code, msg, tc.code)
				}
				if strings.Count(msg, "\n") != 0 || msg == "" {
					t.Errorf("stderr has %d lines, want one:\n%s", strings.Count(msg, "\n")+1, msg)
				}
				if !strings.Contains(msg, tc.backend) {
					t.Errorf("stderr %q does not name the %s", msg, tc.backend)
				}
				for _, s := range append(realSecrets, secret) {
					if strings.Contains(msg, s) {
						t.Errorf("stderr %q shows a password", msg)
					}
				}
				t.Logf("exit %d: %s", code, msg)
			})
		}
	}
}
