package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
)

// redisProc is a Redis server of the test's own, which it stops and
// starts again on the same address.
type redisProc struct {
	addr string
	dir  string
	p    *testkit.Proc
}

func startRedis(t *testing.T) *redisProc {
	t.Helper()
	r := &redisProc{addr: testkit.FreeAddr(t), dir: t.TempDir()}
	r.start(t)
	return r
}

func (r *redisProc) start(t *testing.T) {
	t.Helper()
	host, port, _ := net.SplitHostPort(r.addr)
	cmd := exec.Command(testenv.RedisServer(t), "--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--dir", r.dir)
	r.p = testkit.StartProc(t, t, "redis-server", cmd, 30*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, nil)
}

func (r *redisProc) kill(t *testing.T) {
	t.Helper()
	if err := r.p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.p.Done
	r.p.Done <- nil
}

// TestRedisDown: a gateway whose rate limiter is in Redis, with Redis
// stopped under it. Fail-open, uploads and downloads go on; fail-closed,
// they are refused with 503 and the JSON error envelope. Either way
// /health answers, /ready names the rate limiter, and once Redis is back
// everything works again.
func TestRedisDown(t *testing.T) {
	for _, failOpen := range []bool{true, false} {
		t.Run(fmt.Sprintf("fail_open=%v", failOpen), func(t *testing.T) {
			rd := startRedis(t)
			addr := testkit.FreeAddr(t)
			gw := startRole(t, "gateway", addr, baseEnv("DFMS_RATE_LIMIT_URL=redis://"+rd.addr, fmt.Sprintf("DFMS_RATE_LIMIT_FAIL_OPEN=%v", failOpen)),
				"gateway", "--addr", addr, "--data", t.TempDir())
			c := newUser(t, gw.api(), "redisdown")
			before := testkit.RandBytes(40, 50<<10)
			kept := c.upload(t, 0, "before", before)

			rd.kill(t)
			data := testkit.RandBytes(41, 70<<10)
			up, err := c.send("POST", "/api/v1/files/upload", data, hdr{"Content-Type", "application/octet-stream", "X-File-Name", "during"})
			if err != nil {
				t.Fatal(err)
			}
			down, err := c.send("GET", fmt.Sprintf("/api/v1/files/%d/download", kept.ID), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if failOpen {
				up.want(t, http.StatusCreated)
				var f fileJSON
				up.decode(t, &f)
				if got := c.download(t, f.ID); string(got) != string(data) {
					t.Errorf("the file uploaded with Redis down: %d bytes back, want %d", len(got), len(data))
				}
				if down.status != http.StatusOK || string(down.body) != string(before) {
					t.Errorf("download with Redis down: %v, want 200 and the file", down)
				}
			} else {
				for _, r := range []*response{up, down} {
					var env struct {
						Error struct {
							Code    string `json:"code"`
							Message string `json:"message"`
						} `json:"error"`
					}
					if r.status != http.StatusServiceUnavailable || json.Unmarshal(r.body, &env) != nil || env.Error.Code != "SERVICE_UNAVAILABLE" {
						t.Errorf("fail-closed with Redis down: %v; want 503 with the error envelope, code SERVICE_UNAVAILABLE", r)
					}
				}
			}
			if code, _ := testkit.Get(t, "http://"+addr+"/health"); code != http.StatusOK {
				t.Errorf("/health with Redis down: %d, want 200", code)
			}
			code, body := getJSON(t, "http://"+addr+"/ready")
			if checks, _ := body["checks"].(map[string]any); code != http.StatusServiceUnavailable || checks["rate_limiter"] == "ok" {
				t.Errorf("/ready with Redis down: %d %v, want 503 naming the rate limiter", code, body)
			}

			rd.start(t)
			testkit.Eventually(t, 30*time.Second, func() bool {
				code, _ := getJSON(t, "http://"+addr+"/ready")
				return code == http.StatusOK
			}, "the gateway ready once Redis is back")
			if !failOpen {
				for _, f := range c.list(t, 0) {
					if f.Name == "during" {
						t.Error("the upload refused with Redis down left a file")
					}
				}
			}
			after := c.upload(t, 0, "after", data)
			if got := c.download(t, after.ID); string(got) != string(data) {
				t.Errorf("upload after Redis came back: %d bytes back, want %d", len(got), len(data))
			}
			gw.finish(t)
		})
	}
}
