// Package fusetest holds what tests that mount for real share: the gate
// that decides whether FUSE is usable here, an unmount that never leaves a
// mount behind, a TestMain helper that finds leftovers, and a runner of
// go-fuse's POSIX suite.
//
// FUSE is a required service when testenv.Required("fuse") (CI, or
// DFMS_TEST_REQUIRE=fuse): then a missing /dev/fuse or a refused mount
// fails the test instead of skipping it.
package fusetest

import (
	"bufio"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hanwen/go-fuse/v2/posixtest"
	"golang.org/x/sys/unix"

	"github.com/dfms/dfms/integration/testenv"
)

// PosixSkips are the cases of go-fuse's posixtest suite that cannot pass
// on a DFMS mount, each with the reason.
var PosixSkips = map[string]string{
	"Link":             "hard links are not supported (an entry has one parent): link(2) fails with ENOTSUP",
	"LinkUnlinkRename": "needs hard links, which are not supported",
	"FcntlFlockLocksFile": "expects two fds of one process to conflict, which is OFD-lock behaviour; " +
		"the kernel's local POSIX locks (EnableLocks off) correctly let one process's locks coexist",
}

// RunPosix runs every case of go-fuse's posixtest suite, in name order,
// as a subtest of t, except PosixSkips. Each case runs in the directory
// that dir returns for it; dir may also skip the case.
func RunPosix(t *testing.T, dir func(t *testing.T, name string) string) {
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if why, ok := PosixSkips[name]; ok {
				t.Skip(why)
			}
			posixtest.All[name](t, dir(t, name))
		})
	}
}

var (
	probeOnce sync.Once
	probeErr  error
)

// probe mounts an empty file system once, with mount(2) only.
func probe() error {
	probeOnce.Do(func() {
		if _, err := os.Stat("/dev/fuse"); err != nil {
			probeErr = fmt.Errorf("/dev/fuse: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "fusetest-probe-")
		if err != nil {
			probeErr = err
			return
		}
		defer os.Remove(dir)
		srv, err := fs.Mount(dir, &fs.Inode{}, &fs.Options{MountOptions: fuse.MountOptions{DirectMountStrict: true, FsName: "fusetest-probe"}})
		if err != nil {
			probeErr = fmt.Errorf("mount(2) of a FUSE file system: %w", err)
			return
		}
		if err := Unmount(dir, srv); err != nil {
			probeErr = err
		}
	})
	return probeErr
}

// Require skips t if FUSE cannot be mounted here (no /dev/fuse, or not
// allowed to mount), or fails it if FUSE is a required service.
func Require(t testing.TB) {
	t.Helper()
	if err := probe(); err != nil {
		if testenv.Required("fuse") {
			t.Fatalf("fuse is required (CI or DFMS_TEST_REQUIRE) but unavailable: %v", err)
		}
		t.Skipf("fuse unavailable (%v); run as root with /dev/fuse", err)
	}
}

// Unmount unmounts the file system that srv serves on dir and waits until
// srv has stopped. If a plain unmount fails (something still holds the
// mount), it detaches the mount lazily and, if srv still serves after a
// second, aborts the FUSE connection, so that no test leaves a mount
// or a blocked process behind. It returns the first failure, for the test
// to report.
func Unmount(dir string, srv *fuse.Server) error {
	dev, devErr := deviceOf(dir)
	err := srv.Unmount()
	if err == nil {
		return nil
	}
	err = fmt.Errorf("unmount %s: %w", dir, err)
	if lerr := syscall.Unmount(dir, syscall.MNT_DETACH); lerr != nil && !errors.Is(lerr, syscall.EINVAL) {
		return errors.Join(err, fmt.Errorf("lazy unmount: %w", lerr))
	}
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-time.After(time.Second):
	}
	if devErr != nil {
		return errors.Join(err, fmt.Errorf("cannot abort the connection: %w", devErr))
	}
	if aerr := abort(dev); aerr != nil {
		err = errors.Join(err, fmt.Errorf("abort the connection: %w", aerr))
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		err = errors.Join(err, errors.New("the FUSE server did not stop after the connection was aborted"))
	}
	return err
}

// deviceOf returns the device number of the file system mounted on dir.
func deviceOf(dir string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, err
	}
	return st.Dev, nil
}

// connections is where the fusectl file system shows FUSE connections.
const connections = "/sys/fs/fuse/connections"

// abort aborts the FUSE connection of device dev: every pending and later
// request fails with ENOTCONN and the server's read loop ends. It mounts
// fusectl first if nothing has.
func abort(dev uint64) error {
	// fusectl names a connection by the kernel's dev_t, whose encoding
	// differs from the one stat returns.
	kdev := uint64(unix.Major(dev))<<20 | uint64(unix.Minor(dev))
	p := filepath.Join(connections, strconv.FormatUint(kdev, 10), "abort")
	if _, err := os.Stat(p); errors.Is(err, iofs.ErrNotExist) {
		if err := syscall.Mount("fusectl", connections, "fusectl", 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("mount fusectl: %w", err)
		}
	}
	return os.WriteFile(p, []byte("1"), 0o200)
}

// Mounts returns the mount points of FUSE file systems at or under dir.
func Mounts(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source super
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		if fstype := fields[sep+1]; fstype != "fuse" && !strings.HasPrefix(fstype, "fuse.") {
			continue
		}
		mp := unescape(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, sc.Err()
}

// unescape decodes the octal escapes (\040 for a space) of mountinfo.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// rootPrefix starts the name of each test process's temporary root,
// followed by its pid.
const rootPrefix = "dfms-fusetest-"

// Main runs a package's tests with TMPDIR pointing at a fresh directory,
// so that every t.TempDir() of this process lies under it. Afterwards it
// detaches any FUSE mount left under that directory, reports it, and
// makes the run fail: a leftover mount is a bug of the test or the code.
// Before, it detaches what test processes that were killed (a timeout, a
// SIGKILL) left behind.
func Main(m *testing.M) int {
	cleanDead()
	root, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", rootPrefix, os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fusetest:", err)
		return 1
	}
	// Resolve symlinks: mountinfo shows real paths.
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	os.Setenv("TMPDIR", root)
	code := m.Run()
	left, err := Mounts(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fusetest: reading mountinfo:", err)
		code = 1
	}
	for _, mp := range left {
		fmt.Fprintln(os.Stderr, "fusetest: a test left a FUSE mount behind; detaching", mp)
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			fmt.Fprintln(os.Stderr, "fusetest: lazy unmount:", err)
		}
		code = 1
	}
	if err := os.RemoveAll(root); err != nil {
		fmt.Fprintln(os.Stderr, "fusetest:", err)
	}
	return code
}

// cleanDead detaches the FUSE mounts under the temporary roots of test
// processes that no longer run, and removes those roots.
func cleanDead() {
	tmp := os.TempDir()
	if t, err := filepath.EvalSymlinks(tmp); err == nil {
		tmp = t
	}
	roots, _ := filepath.Glob(filepath.Join(tmp, rootPrefix+"*"))
	for _, root := range roots {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(root), rootPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // not ours, or its process still runs
		}
		left, _ := Mounts(root)
		for _, mp := range left {
			fmt.Fprintln(os.Stderr, "fusetest: detaching a mount left by killed test process", pid, mp)
			syscall.Unmount(mp, syscall.MNT_DETACH)
		}
		os.RemoveAll(root)
	}
}

// AsNobody runs a shell command as uid and gid 65534 (nobody) and returns
// its error; the command's output is logged when it fails. The caller
// must be root.
func AsNobody(t testing.TB, script string) error {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("as nobody: %s: %v: %s", script, err, out)
	}
	return err
}

// Fsync opens the file or directory at p and fsyncs it, failing t if
// either fails. On a directory of a DFMS mount it returns once every file
// closed in the mount is committed (write-back).
func Fsync(t testing.TB, p string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", p, err)
	}
}

// OpenUp lets other users reach dir: the test's temporary directories
// above a mount point are private (those that are not, up to /, are left
// alone).
func OpenUp(t testing.TB, dir string) {
	t.Helper()
	for d := filepath.Dir(dir); d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o055); err != nil {
				t.Fatal(err)
			}
		}
	}
}
