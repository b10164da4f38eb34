package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dfms/dfms/fusefs/fusetest"
	"github.com/dfms/dfms/integration/testkit"
)

// mountProc is a running `dfms mount`.
type mountProc struct{ upProc }

// startMount runs `dfms mount mnt` against the server at addr, logged in
// as email/password from the environment, with its cache in cache. The
// process is killed when owner ends (the test, not a subtest that starts
// it). args are more flags.
func startMount(t, owner *testing.T, mnt, cache, addr, email, password string, args ...string) *mountProc {
	t.Helper()
	cmd := exec.Command(dfmsBinary(t), append([]string{"mount", mnt, "--server", "http://" + addr, "--cache-dir", cache, "--cache-size", "4GiB"}, args...)...)
	cmd.Env = append(os.Environ(), "DFMS_EMAIL="+email, "DFMS_PASSWORD="+password, "XDG_CONFIG_HOME="+t.TempDir())
	return &mountProc{*startProc(t, owner, "dfms mount "+mnt, cmd, mnt, false, func() bool { return mounted(mnt) })}
}

// kill9 kills the mount daemon (dfms mount or dfms up) as a crash would,
// and detaches its mount.
func (p *upProc) kill9(t *testing.T, mnt string) {
	t.Helper()
	p.Cmd.Process.Kill()
	// As an administrator would after a crash: abort the connection (a
	// request in flight could otherwise keep the dead daemon's threads,
	// and so its end of the connection, alive) and detach the mount.
	if out, err := exec.Command(dfmsBinary(t), "umount", "--force", mnt).CombinedOutput(); err != nil {
		t.Errorf("dfms umount --force: %v\n%s", err, out)
	}
	<-p.Done
	if left, _ := fusetest.Mounts(mnt); len(left) > 0 {
		t.Errorf("after dfms umount --force the mount is still there: %v", left)
	}
}

// metric returns the sum of the server's counter name over the series
// whose labels contain match.
func metric(t *testing.T, addr, name, match string) float64 {
	t.Helper()
	_, body := testkit.Get(t, "http://"+addr+"/metrics")
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, match) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// within polls cond until it holds or d passes, and says how long it took.
func within(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileIs(path string, want []byte) func() bool {
	return func() bool {
		got, err := os.ReadFile(path)
		return err == nil && bytes.Equal(got, want)
	}
}

// TestMountRemote mounts a server over HTTP with `dfms mount` next to the
// `dfms up` mount of the same user: go-fuse's POSIX suite passes on it,
// changes made through the REST API or the other mount show up within a
// second, a one-byte edit of a large file uploads at most two chunks, a
// second read of a file fetches nothing, and a killed daemon's unclosed
// writes are committed by the next mount.
func TestMountRemote(t *testing.T) {
	fusetest.Require(t)
	data, mntA, addr := t.TempDir(), t.TempDir(), testkit.FreeAddr(t)
	startUp(t, mntA, data, addr)
	email, password := readCredentials(t, data)
	mntB, cacheB := t.TempDir(), t.TempDir()
	owner := t
	b := startMount(t, owner, mntB, cacheB, addr, email, password)

	t.Run("posix", func(t *testing.T) { fusetest.RunPosix(t, posixDirs(mntB)) })

	t.Run("write-back", func(t *testing.T) {
		// Files closed in a burst are committed in the background, many
		// per request; fsync of a directory waits for them.
		commits := func() float64 {
			return metric(t, addr, "dfms_http_requests_total", `route="/api/v1/fs/commits",status="200"`)
		}
		// Their creates too, and none is made alone.
		creates := func() float64 {
			return metric(t, addr, "dfms_http_requests_total", `route="/api/v1/fs/files",status="200"`)
		}
		single := func() float64 {
			return metric(t, addr, "dfms_http_requests_total", `method="POST",route="/api/v1/fs/entries/:id/children",status="201"`)
		}
		before, createsBefore, singleBefore := commits(), creates(), single()
		dir := filepath.Join(mntB, "burst")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		const n = 200
		for i := range n {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), []byte(fmt.Sprintf("small file %d\n", i)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fusetest.Fsync(t, dir)
		batches := commits() - before
		t.Logf("%d files closed in a burst: %v batched commit requests", n, batches)
		if batches < 1 || batches >= n/2 {
			t.Errorf("%d files were committed in %v batched requests, want at least 1 and far fewer than files", n, batches)
		}
		createBatches, singles := creates()-createsBefore, single()-singleBefore
		t.Logf("%d files created in a burst: %v batched create requests, %v single creates", n, createBatches, singles)
		if createBatches < 1 || createBatches >= n/2 || singles > 1 {
			t.Errorf("%d files were created in %v batched requests and %v single ones, want far fewer batches than files and 1 single create at most (the directory)", n, createBatches, singles)
		}
		for i := range n {
			p := filepath.Join(mntA, "burst", fmt.Sprintf("f%03d", i))
			if took, ok := within(time.Second, fileIs(p, []byte(fmt.Sprintf("small file %d\n", i)))); !ok {
				t.Fatalf("%s is not visible in mount A after %v", p, took)
			}
		}
	})

	t.Run("batched-unlinks", func(t *testing.T) {
		// Files unlinked in a burst (the write-back's) go to the server's
		// trash many per request, and leave mount A within a second.
		trashes := func() float64 {
			return metric(t, addr, "dfms_http_requests_total", `route="/api/v1/fs/trash",status="200"`)
		}
		before := trashes()
		dir := filepath.Join(mntB, "burst")
		names, err := os.ReadDir(dir)
		if err != nil || len(names) < 100 {
			t.Fatalf("%d files to unlink, %v", len(names), err)
		}
		for _, n := range names {
			if err := os.Remove(filepath.Join(dir, n.Name())); err != nil {
				t.Fatal(err)
			}
		}
		fusetest.Fsync(t, dir)
		batches := trashes() - before
		t.Logf("%d files unlinked in a burst: %v batched trash requests", len(names), batches)
		if batches < 1 || batches >= float64(len(names))/2 {
			t.Errorf("%d unlinks went to the server in %v batched requests, want at least 1 and far fewer than files", len(names), batches)
		}
		if took, ok := within(time.Second, func() bool {
			left, err := os.ReadDir(filepath.Join(mntA, "burst"))
			return err == nil && len(left) == 0
		}); !ok {
			t.Errorf("the unlinked files are still in mount A after %v", took)
		}
	})

	t.Run("log-rotation", func(t *testing.T) {
		// Through `dfms up` (A) with a reader in `dfms mount` (B), and the
		// other way.
		t.Run("up", func(t *testing.T) {
			logRotation(t, filepath.Join(mntA, "rotation-up"), filepath.Join(mntB, "rotation-up"))
		})
		t.Run("mount", func(t *testing.T) {
			logRotation(t, filepath.Join(mntB, "rotation-mount"), filepath.Join(mntA, "rotation-mount"))
		})
	})

	t.Run("coherence", func(t *testing.T) {
		// A write in mount A shows up in mount B, and the other way.
		for i, dirs := range [][2]string{{mntA, mntB}, {mntB, mntA}} {
			name := "coherent-" + strconv.Itoa(i)
			for v := 1; v <= 3; v++ {
				want := []byte(strings.Repeat(name+" v"+strconv.Itoa(v)+"\n", v*100))
				if err := os.WriteFile(filepath.Join(dirs[0], name), want, 0o644); err != nil {
					t.Fatal(err)
				}
				if took, ok := within(time.Second, fileIs(filepath.Join(dirs[1], name), want)); !ok {
					t.Errorf("%s v%d written in %s is not visible in %s after %v", name, v, dirs[0], dirs[1], took)
				}
			}
		}
		// A file uploaded through the REST API shows up in mount B.
		rc := login(t, addr, email, password)
		body := []byte("uploaded through the REST API\n")
		req, _ := http.NewRequest("POST", rc.base+"/files/upload", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+rc.token)
		req.Header.Set("X-File-Name", "from-rest.txt")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %s", resp.Status)
		}
		if took, ok := within(time.Second, fileIs(filepath.Join(mntB, "from-rest.txt"), body)); !ok {
			t.Errorf("a REST upload is not visible in the mount after %v", took)
		}
	})

	t.Run("one-byte-edit", func(t *testing.T) {
		path := filepath.Join(mntB, "big")
		data := make([]byte, 256<<20)
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < len(data); i += 8 {
			v := r.Uint64()
			for j := 0; j < 8; j++ {
				data[i+j] = byte(v >> (8 * j))
			}
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fusetest.Fsync(t, mntB)
		// Chunks new to the user, sent one per request or in batches.
		stored := func() float64 { return metric(t, addr, "dfms_chunks_stored_total", "") }
		puts := stored()
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{^data[len(data)/2]}, int64(len(data)/2)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		fusetest.Fsync(t, mntB)
		if n := stored() - puts; n > 2 || n < 1 {
			t.Errorf("a one-byte edit of 256 MiB uploaded %v chunks, want 1 or 2", n)
		}
	})

	t.Run("second-read-fetches-nothing", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(mntA, "big"))
		if err != nil {
			t.Fatal(err)
		}
		// A cold cache: a new mount B with an empty cache directory.
		b.Cmd.Process.Signal(syscall.SIGTERM)
		b.wait(t)
		cacheB = owner.TempDir()
		b = startMount(t, owner, mntB, cacheB, addr, email, password)
		gets := func() float64 {
			return metric(t, addr, "dfms_http_requests_total", `route="/api/v1/versions/:vid/chunks/:hash"`)
		}
		before := gets()
		for i := 0; i < 2; i++ {
			got, err := os.ReadFile(filepath.Join(mntB, "big"))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read %d of big: %d bytes, %v", i+1, len(got), err)
			}
			// Out of the kernel's page cache, so that the second read asks
			// the mount again.
			os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0)
			if i == 0 {
				if n := gets() - before; n < 1 {
					t.Fatalf("the first read fetched %v chunks", n)
				}
				before = gets()
			}
		}
		if n := gets() - before; n != 0 {
			t.Errorf("the second read fetched %v chunks from the server, want 0", n)
		}
	})

	t.Run("kill-9", func(t *testing.T) {
		synced := filepath.Join(mntB, "synced")
		f, err := os.Create(synced)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("fsync'ed before the crash")
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		open, err := os.Create(filepath.Join(mntB, "unclosed"))
		if err != nil {
			t.Fatal(err)
		}
		open.WriteString("written, never closed")
		// An unlink answered just before the crash, which may not have
		// reached the server yet: the next mount makes it.
		if err := os.WriteFile(filepath.Join(mntB, "unlinked"), []byte("unlinked before the crash"), 0o644); err != nil {
			t.Fatal(err)
		}
		fusetest.Fsync(t, mntB)
		if err := os.Remove(filepath.Join(mntB, "unlinked")); err != nil {
			t.Fatal(err)
		}
		b.kill9(t, mntB)
		open.Close()
		f.Close()
		// The fsync'ed data is on the server already.
		if got, err := os.ReadFile(filepath.Join(mntA, "synced")); err != nil || string(got) != "fsync'ed before the crash" {
			t.Errorf("after kill -9 the server has %q, %v", got, err)
		}
		b = startMount(t, owner, mntB, cacheB, addr, email, password)
		if got, err := os.ReadFile(filepath.Join(mntA, "unclosed")); err != nil || string(got) != "written, never closed" {
			t.Errorf("after remounting the server has %q, %v; want the unclosed write", got, err)
		}
		if took, ok := within(time.Second, func() bool {
			_, err := os.Lstat(filepath.Join(mntA, "unlinked"))
			return errors.Is(err, fs.ErrNotExist)
		}); !ok {
			t.Errorf("a file unlinked before the crash is still on the server after remounting (%v)", took)
		}
	})

	b.Cmd.Process.Signal(syscall.SIGTERM)
	b.wait(t)
}
