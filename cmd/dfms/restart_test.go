package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dfms/dfms/fusefs/fusetest"
	"github.com/dfms/dfms/integration/testkit"
)

// serverProc is a running `dfms server`.
type serverProc struct{ upProc }

// startServer runs `dfms server` on data and addr, with an administrator
// email/password, and waits until it answers. The process is killed when
// the test ends.
func startServer(t *testing.T, data, addr, email, password string) *serverProc {
	t.Helper()
	cmd := exec.Command(dfmsBinary(t), "server", "--data", data, "--addr", addr)
	cmd.Env = append(append(os.Environ(), "DFMS_BCRYPT_COST=4", "DFMS_ADMIN_EMAIL="+email, "DFMS_ADMIN_PASSWORD="+password), unlimited...)
	return &serverProc{*startProc(t, t, "dfms server "+addr, cmd, "", false, func() bool { return healthy(addr) })}
}

// kill9 kills the server as a crash would.
func (p *serverProc) kill9() {
	p.Cmd.Process.Kill()
	<-p.Done
}

// serverMount is a `dfms server` on data and addr, with an administrator
// email/password, and a `dfms mount` of it on mnt logged in as them: the
// tests that take the server away from a mount start with it.
type serverMount struct {
	data, addr, email, password, mnt string
	srv                              *serverProc
	mount                            *mountProc
}

// startServerMount starts the server on new data and a free address, and
// the mount, with mountArgs as more flags, on a new directory.
func startServerMount(t *testing.T, email string, mountArgs ...string) *serverMount {
	t.Helper()
	m := &serverMount{data: t.TempDir(), addr: testkit.FreeAddr(t), email: email, password: "a long enough password", mnt: t.TempDir()}
	m.restartServer(t)
	m.mount = startMount(t, t, m.mnt, t.TempDir(), m.addr, m.email, m.password, mountArgs...)
	return m
}

// restartServer starts the server (again, after srv.kill9) on the same
// data and address.
func (m *serverMount) restartServer(t *testing.T) {
	t.Helper()
	m.srv = startServer(t, m.data, m.addr, m.email, m.password)
}

// fetchPath reads the file at path (slash-separated, under the user's
// root) through the REST API; ok is false if it is not there.
func (a *restClient) fetchPath(t *testing.T, path string) (data []byte, ok bool) {
	t.Helper()
	var cur struct {
		Entry struct {
			ID   int64  `json:"id"`
			Kind string `json:"kind"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(a.get(t, "/fs/root"), &cur); err != nil {
		t.Fatal(err)
	}
	for _, name := range strings.Split(path, "/") {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/fs/entries/%d/children/%s", a.base, cur.Entry.ID, url.PathEscape(name)), nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&cur)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, false
		}
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("lookup %s in %s: %s %v", name, path, resp.Status, err)
		}
	}
	if cur.Entry.Kind == "dir" {
		return nil, true
	}
	return a.get(t, fmt.Sprintf("/files/%d/download", cur.Entry.ID)), true
}

// TestMountServerRestart runs a workload on a remote mount (writes of new
// files and over old ones, reads, listings, mkdir, cp) while its server
// is killed and started again 5 s later: no operation fails, reads of
// files the mount has cached go on while the server is down, and
// afterwards every file written is on the server with its bytes.
func TestMountServerRestart(t *testing.T) {
	fusetest.Require(t)
	sm := startServerMount(t, "restart@example.com")
	mnt, mp := sm.mnt, sm.mount

	// Files read all along: written and read once before the restart,
	// so their chunks and metadata are cached.
	cached := map[string][]byte{}
	for i := range 4 {
		name := fmt.Sprintf("cached-%d", i)
		b := bytes.Repeat([]byte(fmt.Sprintf("cached file %d\n", i)), 1000*(i+1))
		if err := os.WriteFile(filepath.Join(mnt, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		cached[name] = b
	}
	fusetest.Fsync(t, mnt)
	for name, want := range cached {
		if got, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v", name, len(got), err)
		}
	}

	var (
		mu      sync.Mutex
		errs    []string
		written = map[string][]byte{} // path under the mount -> content
		dirs    = map[string]bool{}
		stop    atomic.Bool
		down    atomic.Bool  // the server is not running
		readsWD atomic.Int64 // reads of cached files done while it was down
		ops     atomic.Int64
		longest time.Duration // the longest workload step
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
	}
	// step records a workload step: what it made (made runs under mu) if
	// err is nil, else that what failed. It reports whether it succeeded.
	step := func(what string, err error, made func()) bool {
		if err != nil {
			fail("%s: %v", what, err)
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		made()
		return true
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			base := fmt.Sprintf("w%d", w)
			if !step("mkdir "+base, os.Mkdir(filepath.Join(mnt, base), 0o755), func() { dirs[base] = true }) {
				return
			}
			var mine []string
			for i := 0; !stop.Load(); i++ {
				ops.Add(1)
				began := time.Now()
				switch {
				case i%7 == 3 && len(mine) > 0:
					// mkdir and cp of a file this worker wrote into it.
					d := fmt.Sprintf("%s/d%04d", base, i)
					if !step("mkdir "+d, os.Mkdir(filepath.Join(mnt, d), 0o755), func() { dirs[d] = true }) {
						continue
					}
					src := mine[r.IntN(len(mine))]
					dst := d + "/copy"
					if out, err := exec.Command("cp", filepath.Join(mnt, src), filepath.Join(mnt, dst)).CombinedOutput(); err != nil {
						fail("cp %s %s: %v %s", src, dst, err, out)
						continue
					}
					mu.Lock()
					written[dst] = written[src]
					mu.Unlock()
				case i%5 == 4 && len(mine) > 0:
					// Over an earlier file of this worker.
					p := mine[r.IntN(len(mine))]
					b := []byte(fmt.Sprintf("%s rewritten at step %d\n", p, i))
					if !step("rewrite "+p, os.WriteFile(filepath.Join(mnt, p), b, 0o644), func() { written[p] = b }) {
						continue
					}
				default:
					p := fmt.Sprintf("%s/f%04d", base, i)
					b := bytes.Repeat([]byte(fmt.Sprintf("%s step %d\n", p, i)), 1+r.IntN(5000))
					if !step("write "+p, os.WriteFile(filepath.Join(mnt, p), b, 0o644), func() { written[p] = b }) {
						continue
					}
					mine = append(mine, p)
				}
				// Read back one of this worker's files, and list.
				if len(mine) > 0 {
					p := mine[r.IntN(len(mine))]
					mu.Lock()
					want := written[p]
					mu.Unlock()
					if got, err := os.ReadFile(filepath.Join(mnt, p)); err != nil || !bytes.Equal(got, want) {
						fail("read %s: %d bytes (want %d), %v", p, len(got), len(want), err)
					}
				}
				for _, d := range []string{"", base} {
					if _, err := os.ReadDir(filepath.Join(mnt, d)); err != nil {
						fail("readdir %q: %v", d, err)
					}
				}
				mu.Lock()
				longest = max(longest, time.Since(began))
				mu.Unlock()
			}
		}()
	}
	// A reader of the cached files.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			for name, want := range cached {
				wasDown := down.Load()
				got, err := os.ReadFile(filepath.Join(mnt, name))
				if err != nil || !bytes.Equal(got, want) {
					fail("read cached %s: %d bytes, %v", name, len(got), err)
				} else if wasDown && down.Load() {
					readsWD.Add(1)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	time.Sleep(time.Second)
	before := ops.Load()
	down.Store(true)
	sm.srv.kill9()
	t.Logf("server killed after %d workload steps", before)
	time.Sleep(5 * time.Second)
	during := ops.Load() - before
	sm.restartServer(t)
	down.Store(false)
	t.Logf("server restarted; %d workload steps began while it was down, %d reads of cached files done then", during, readsWD.Load())
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d workload steps in all; the longest took %v", ops.Load(), longest)

	fusetest.Fsync(t, mnt)
	if len(errs) > 0 {
		t.Errorf("%d operations failed:\n%s", len(errs), strings.Join(errs[:min(len(errs), 30)], "\n"))
	}
	if readsWD.Load() == 0 {
		t.Errorf("no read of a cached file completed while the server was down")
	}

	// Every file written is on the server, with its last bytes.
	rc := login(t, sm.addr, sm.email, sm.password)
	for p, want := range written {
		got, ok := rc.fetchPath(t, p)
		if !ok {
			t.Errorf("%s is not on the server", p)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s on the server: %d bytes, want %d (%.40q)", p, len(got), len(want), got)
		}
	}
	for d := range dirs {
		if _, ok := rc.fetchPath(t, d); !ok {
			t.Errorf("directory %s is not on the server", d)
		}
	}
	t.Logf("%d files and %d directories checked on the server", len(written), len(dirs))
	if t.Failed() {
		lines := strings.Split(mp.Logs.String(), "\n")
		t.Logf("mount log (%d lines, the last 60):\n%s", len(lines), strings.Join(lines[max(0, len(lines)-60):], "\n"))
	}
	// Unmount while the server runs: nothing is left to commit.
	mp.Stop(t, 30*time.Second)
}

// Past --server-wait an operation that needs the server fails with EIO and
// the log says why; files whose metadata and chunks are cached are still
// read; once the server is back everything works again.
func TestMountServerWaitBound(t *testing.T) {
	fusetest.Require(t)
	sm := startServerMount(t, "bound@example.com", "--server-wait", "1s")
	mnt, mp := sm.mnt, sm.mount
	want := []byte("cached before the server went away\n")
	p := filepath.Join(mnt, "cached")
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	fusetest.Fsync(t, mnt)
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read: %q %v", got, err)
	}

	sm.srv.kill9()
	began := time.Now()
	_, err := os.Stat(filepath.Join(mnt, "never-seen"))
	took := time.Since(began)
	t.Logf("stat of an unknown name with the server down: %v after %v", err, took)
	if !errors.Is(err, syscall.EIO) || took < time.Second {
		t.Errorf("stat of an unknown name with the server down: %v after %v, want EIO after 1 s", err, took)
	}
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); !errors.Is(err, syscall.EIO) {
		t.Errorf("mkdir with the server down: %v, want EIO", err)
	}
	// Past the wait, still from the cache: the mount's, once the
	// kernel's (one second) have expired.
	time.Sleep(1500 * time.Millisecond)
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
		t.Errorf("read of a cached file with the server down: %q %v", got, err)
	}
	if _, ok := within(5*time.Second, func() bool { return strings.Contains(mp.Logs.String(), "could not be reached for") }); !ok {
		t.Errorf("the mount log does not say why:\n%s", mp.Logs)
	}

	sm.restartServer(t)
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); err != nil {
		t.Errorf("mkdir once the server is back: %v", err)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
		t.Errorf("read once the server is back: %q %v", got, err)
	}
	if t.Failed() {
		t.Logf("mount log:\n%s", mp.Logs)
	}
}
