package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dfms/dfms/fusefs/fusetest"
	"github.com/dfms/dfms/integration/testkit"
)

func TestMain(m *testing.M) { os.Exit(fusetest.Main(m)) }

// builtOnce is something the test binary builds once (the dfms binary,
// the pjdfstest suite), in a scratch directory of its own.
type builtOnce struct {
	once sync.Once
	path string
	err  error
}

// get builds on the first call: build makes the thing in scratch, a new
// directory named after prefix, and returns its path. Every call returns
// that path, or fails t with what and the error.
func (b *builtOnce) get(t *testing.T, what, prefix string, build func(scratch string) (string, error)) string {
	t.Helper()
	b.once.Do(func() {
		scratch, err := os.MkdirTemp("", prefix)
		if err != nil {
			b.err = err
			return
		}
		b.path, b.err = build(scratch)
	})
	if b.err != nil {
		t.Fatalf("%s: %v", what, b.err)
	}
	return b.path
}

var dfmsBuild builtOnce

// dfmsBinary builds the dfms binary once. It is built without the race
// detector: the mount code is race-tested in process by package fusefs,
// and here the suites run against the product at its real speed.
func dfmsBinary(t *testing.T) string {
	t.Helper()
	return dfmsBuild.get(t, "building dfms", "dfms-bin-", func(scratch string) (string, error) {
		bin := filepath.Join(scratch, "dfms")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/dfms/dfms/cmd/dfms").CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build: %v\n%s", err, out)
		}
		return bin, nil
	})
}

// upProc is a running `dfms up` (or another dfms process: mountProc,
// serverProc).
type upProc struct{ *testkit.Proc }

// unlimited lifts the server's rate limits: mounts over HTTP make many
// small requests.
var unlimited = []string{"DFMS_RATE_LIMIT_GLOBAL=10000000", "DFMS_RATE_LIMIT_USER=10000000",
	"DFMS_RATE_LIMIT_UPLOAD=10000000", "DFMS_RATE_LIMIT_DOWNLOAD=10000000"}

// startProc starts cmd, named name in messages, as testkit.StartProc
// does, and waits up to 30 s until ready reports true. When owner ends, a
// process still running is killed and a FUSE mount left on mnt (if not
// "") is detached; the log is shown if owner failed or, with logKilled,
// if the process had to be killed.
func startProc(t, owner testing.TB, name string, cmd *exec.Cmd, mnt string, logKilled bool, ready func() bool) *upProc {
	t.Helper()
	return &upProc{testkit.StartProc(t, owner, name, cmd, 30*time.Second, ready, func(p *testkit.Proc, killed bool) {
		if owner.Failed() || killed && logKilled {
			owner.Logf("the log of %s (killed at the end: %v):\n%s", name, killed, p.Logs)
		}
		// A killed daemon leaves its mount behind.
		if mnt == "" {
			return
		}
		if left, _ := fusetest.Mounts(mnt); len(left) > 0 {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})}
}

// healthy reports whether the API at addr answers its health check.
func healthy(addr string) bool {
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// mounted reports whether one FUSE file system is mounted on mnt.
func mounted(mnt string) bool {
	left, _ := fusetest.Mounts(mnt)
	return len(left) == 1
}

// startUp runs `dfms up mnt` and waits until the API answers and the
// mount is there. If the test ends with the process still running, it is
// killed and its mount detached.
func startUp(t *testing.T, mnt, data, addr string, flags ...string) *upProc {
	t.Helper()
	cmd := exec.Command(dfmsBinary(t), append([]string{"up", mnt, "--data", data, "--addr", addr}, flags...)...)
	cmd.Env = append(append(os.Environ(), "DFMS_BCRYPT_COST=4", "XDG_CACHE_HOME="+filepath.Join(data, "cache"),
		"DFMS_ADMIN_EMAIL=", "DFMS_ADMIN_PASSWORD="), unlimited...)
	return startProc(t, t, "dfms up", cmd, mnt, true, func() bool { return healthy(addr) && mounted(mnt) })
}

// wait waits for the process to exit by itself and requires success.
func (p *upProc) wait(t *testing.T) {
	t.Helper()
	p.Wait(t, 30*time.Second)
}

// restClient is a logged-in REST client.
type restClient struct {
	base, token string
}

func login(t *testing.T, addr, email, password string) *restClient {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post("http://"+addr+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("login: %s", resp.Status)
	}
	return &restClient{base: "http://" + addr + "/api/v1", token: out.AccessToken}
}

func (a *restClient) get(t *testing.T, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", a.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s %v", path, resp.Status, b, err)
	}
	return b
}

// download reads the file name of the root folder through the REST API.
func (a *restClient) download(t *testing.T, name string) []byte {
	t.Helper()
	var list struct {
		Files []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"files"`
	}
	if err := json.Unmarshal(a.get(t, "/files?limit=1000"), &list); err != nil {
		t.Fatal(err)
	}
	for _, f := range list.Files {
		if f.Name == name {
			return a.get(t, fmt.Sprintf("/files/%d/download", f.ID))
		}
	}
	t.Fatalf("%s is not in the root folder: %+v", name, list.Files)
	return nil
}

func readCredentials(t *testing.T, data string) (email, password string) {
	t.Helper()
	path := filepath.Join(data, credentialFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "email="); ok {
			email = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "password="); ok {
			password = v
		}
	}
	return email, password
}

// TestUp runs `dfms up` as a real process: files written through the mount
// are read back through the REST API, go-fuse's POSIX suite passes on the
// mount, SIGTERM unmounts cleanly, and a second start finds everything
// again and stops on `dfms umount`.
// TestUpAllowOther: with --allow-other, other users of the machine enter
// `dfms up`'s mount and the kernel holds them to the files' mode bits;
// without it (TestUp) they cannot enter at all.
func TestUpAllowOther(t *testing.T) {
	fusetest.Require(t)
	if os.Getuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	data, mnt, addr := t.TempDir(), t.TempDir(), testkit.FreeAddr(t)
	startUp(t, mnt, data, addr, "--allow-other")
	fusetest.OpenUp(t, mnt)
	if err := os.Chmod(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	pub, priv := filepath.Join(mnt, "public"), filepath.Join(mnt, "private")
	if err := os.WriteFile(pub, []byte("everyone"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(priv, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fusetest.AsNobody(t, "ls "+mnt+" && cat "+pub); err != nil {
		t.Error("another user cannot list the mount or read a 0644 file")
	}
	if fusetest.AsNobody(t, "cat "+priv) == nil {
		t.Error("another user read a 0600 file of root's")
	}
	if fusetest.AsNobody(t, "echo x >> "+pub) == nil {
		t.Error("another user wrote a 0644 file of root's")
	}
}

func TestUp(t *testing.T) {
	fusetest.Require(t)
	data, mnt, addr := t.TempDir(), t.TempDir(), testkit.FreeAddr(t)
	p := startUp(t, mnt, data, addr)

	content := bytes.Repeat([]byte("written through the mount\n"), 100000)
	if err := os.WriteFile(filepath.Join(mnt, "hello.txt"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "hello.txt"), []byte("version 2"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Closed files are committed in the background; dfms sync waits.
	if out, err := exec.Command(dfmsBinary(t), "sync", mnt).CombinedOutput(); err != nil {
		t.Fatalf("dfms sync: %v: %s", err, out)
	}
	email, password := readCredentials(t, data)
	if email != localEmail || len(password) < 16 {
		t.Fatalf("credentials: %q / %d-byte password", email, len(password))
	}
	a := login(t, addr, email, password)
	if got := a.download(t, "hello.txt"); string(got) != "version 2" {
		t.Fatalf("REST download: got %.40q", got)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, ".versions", "hello.txt", "v1")); err != nil || !bytes.Equal(got, content) {
		t.Fatalf(".versions/hello.txt/v1: %d bytes, %v", len(got), err)
	}

	t.Run("posix", func(t *testing.T) { fusetest.RunPosix(t, posixDirs(mnt)) })

	p.Stop(t, 30*time.Second)
	if left, err := fusetest.Mounts(mnt); err != nil || len(left) > 0 {
		t.Fatalf("after SIGTERM the mount is still there: %v %v", left, err)
	}
	if left, _ := os.ReadDir(filepath.Join(data, "cache", "dfms", "mount", "stage")); len(left) > 0 {
		t.Errorf("the stage directory was not cleaned: %v", left)
	}

	// Again: the same user and data; `dfms umount` stops it.
	p = startUp(t, mnt, data, addr)
	if got, err := os.ReadFile(filepath.Join(mnt, "hello.txt")); err != nil || string(got) != "version 2" {
		t.Fatalf("after a restart: %q, %v", got, err)
	}
	if e2, p2 := readCredentials(t, data); e2 != email || p2 != password {
		t.Error("the credentials changed on restart")
	}
	login(t, addr, email, password)
	var out bytes.Buffer
	if err := runUmount(mnt, &out); err != nil {
		t.Fatalf("dfms umount: %v", err)
	}
	p.wait(t)
	if left, err := fusetest.Mounts(mnt); err != nil || len(left) > 0 {
		t.Fatalf("after dfms umount the mount is still there: %v %v", left, err)
	}
	if err := runUmount(mnt, &out); err == nil || !strings.Contains(err.Error(), "not a mount point") {
		t.Errorf("umount of a plain directory: got %v", err)
	}
}

// posixDirs gives each case of the POSIX suite a fresh directory of its
// own under mnt.
func posixDirs(mnt string) func(t *testing.T, name string) string {
	return func(t *testing.T, name string) string {
		dir := filepath.Join(mnt, "posix-"+name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
}

func TestLocalCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	e1, p1, err := localCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	e2, p2, err := localCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e1 != localEmail || e2 != e1 || p2 != p1 || len(p1) < 16 {
		t.Fatalf("got %q %q then %q %q", e1, p1, e2, p2)
	}
	if err := os.WriteFile(filepath.Join(dir, credentialFile), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := localCredentials(dir); err == nil {
		t.Fatal("a malformed credentials file was accepted")
	}
}

// `dfms up`'s write cache is its data directory's, so that a second one on
// another data directory starts; an older release's per-user cache that
// still holds data is used until it is empty.
func TestUpCacheDir(t *testing.T) {
	home := t.TempDir()
	getenv := func(k string) string { return map[string]string{"HOME": home}[k] }
	a, b := t.TempDir(), t.TempDir()
	if got, other := upCacheDir(a, getenv), upCacheDir(b, getenv); got != filepath.Join(a, "cache") || other == got {
		t.Fatalf("cache directories %q and %q, want one in each data directory", got, other)
	}
	old := filepath.Join(home, ".cache", "dfms", "mount")
	if err := os.MkdirAll(filepath.Join(old, "stage"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := upCacheDir(a, getenv); got != old {
		t.Fatalf("with an older release's cache holding data: %q, want %q", got, old)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/dfms/mount"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/dfms/mount"},
	} {
		if got, err := defaultCacheDir(env(c.env)); err != nil || got != c.want {
			t.Errorf("%v: got %q, %v, want %q", c.env, got, err, c.want)
		}
	}
	if _, err := defaultCacheDir(env(nil)); err == nil {
		t.Error("no HOME and no XDG_CACHE_HOME: want an error")
	}
}
