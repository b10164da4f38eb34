//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// peer is a file system DFMS is compared with, built from source at a
// pinned version into a cache directory outside the repository (never a
// dependency of ours).
type peer struct {
	name    string // the target's name, and the binary's
	module  string // Go module path
	version string
	// build builds the binary as out, running go in the empty
	// directory tmp.
	build func(b *bench, p peer, tmp, out string) error
}

var peers = []peer{
	{name: "rclone", module: "github.com/rclone/rclone", version: "v1.76.0", build: buildRclone},
	{name: "juicefs", module: "github.com/juicedata/juicefs", version: "v1.4.1", build: buildJuiceFS},
}

func isPeer(name string) bool {
	return slices.ContainsFunc(peers, func(p peer) bool { return p.name == name })
}

// peerBuildTimeout bounds one peer's build (a first build takes several
// minutes on 2 cores, more on a busy machine).
const peerBuildTimeout = 45 * time.Minute

// peerCacheRoot is where built peers are kept across runs:
// $XDG_CACHE_HOME/dfms/benchmount (or ~/.cache/…), "" if there is no
// such directory.
func peerCacheRoot() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "dfms", "benchmount")
}

// peerBinPath is the cached binary of p under root, keyed by its version.
func peerBinPath(root string, p peer) string {
	return filepath.Join(root, p.name+"-"+p.version, p.name)
}

// setupPeers finds or builds the binaries of the peers among the targets;
// a peer that has none is dropped from the targets, and the report says
// why (it never fails the benchmark).
func (b *bench) setupPeers() {
	for _, p := range peers {
		if !slices.Contains(b.targets, p.name) {
			continue
		}
		bin, err := b.peerBinary(p)
		if err == nil {
			b.peerVer[p.name], err = peerVersion(bin)
		}
		if err != nil {
			b.skipPeer(p.name, err)
			continue
		}
		b.peerBin[p.name] = bin
	}
}

// skipPeer drops a peer from the targets, and says why.
func (b *bench) skipPeer(name string, err error) {
	b.targets = slices.DeleteFunc(b.targets, func(s string) bool { return s == name })
	b.skipped[name] = err.Error()
	progress("%s skipped (the benchmark goes on without it): %v", name, err)
}

// peerBinary returns the binary given for p (-rclone, -juicefs), else the
// cached one, else builds it into the cache (unless -build-peers=false).
func (b *bench) peerBinary(p peer) (string, error) {
	if bin := b.peerBins[p.name]; bin != "" {
		if err := isExecutable(bin); err != nil {
			return "", fmt.Errorf("-%s: %w", p.name, err)
		}
		progress("%s: using %s", p.name, bin)
		return bin, nil
	}
	root, cached := b.peerCache, true
	if root == "" {
		if root = peerCacheRoot(); root == "" {
			root, cached = filepath.Join(b.work, "peers"), false
		}
	}
	bin := peerBinPath(root, p)
	if isExecutable(bin) == nil {
		progress("%s: using %s (built before)", p.name, bin)
		return bin, nil
	}
	if !b.buildPeers {
		return "", fmt.Errorf("no %s %s in %s, and -build-peers=false", p.name, p.version, filepath.Dir(bin))
	}
	if !cached {
		b.note("no user cache directory: %s is built into the scratch directory, and again next time", p.name)
	}
	// Built beside the cache entry and renamed into it once complete, so
	// an interrupted build leaves nothing that looks like a binary.
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("could not build %s %s: %w", p.name, p.version, err)
	}
	tmp, err := os.MkdirTemp(root, p.name+"-"+p.version+".build-")
	if err != nil {
		return "", fmt.Errorf("could not build %s %s: %w", p.name, p.version, err)
	}
	b.atCleanup(func() { os.RemoveAll(tmp) })
	defer os.RemoveAll(tmp)
	progress("building %s %s into %s (several minutes the first time; kept for the next runs)", p.name, p.version, filepath.Dir(bin))
	start := time.Now()
	out := filepath.Join(tmp, "bin", p.name)
	if err := p.build(b, p, tmp, out); err != nil {
		return "", fmt.Errorf("could not build %s %s: %w", p.name, p.version, err)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("could not build %s %s: %w", p.name, p.version, err)
	}
	if err := os.Rename(out, bin); err != nil {
		return "", fmt.Errorf("could not build %s %s: %w", p.name, p.version, err)
	}
	progress("built %s %s in %s", p.name, p.version, time.Since(start).Round(time.Second))
	return bin, nil
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// peerVersion is the first line of `BIN version`.
func peerVersion(bin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = peerEnv("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s version: %v: %s", bin, err, truncate(strings.TrimSpace(string(out)), 200))
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line), nil
}

func buildRclone(b *bench, p peer, tmp, out string) error {
	_, err := b.goCmd(p, tmp, []string{"GOBIN=" + filepath.Dir(out)}, "install", p.module+"@"+p.version)
	return err
}

// buildJuiceFS builds JuiceFS from a copy of its module: `go install
// …@version` refuses a module with replace directives. cgo is on for its
// SQLite driver.
func buildJuiceFS(b *bench, p peer, tmp, out string) error {
	js, err := b.goCmd(p, tmp, nil, "mod", "download", "-json", p.module+"@"+p.version)
	dir, derr := modDir(js)
	if derr != nil {
		if err != nil && len(bytes.TrimSpace(js)) == 0 {
			return err // no JSON, its error on stderr
		}
		return derr
	}
	src := filepath.Join(tmp, "src")
	// The module cache is read-only; CopyFS makes the copy writable.
	if err := os.CopyFS(src, os.DirFS(dir)); err != nil {
		return fmt.Errorf("copying %s: %w", dir, err)
	}
	_, err = b.goCmd(p, src, []string{"CGO_ENABLED=1"}, "build", "-o", out, ".")
	return err
}

// modDir reads the module's directory out of `go mod download -json`.
func modDir(js []byte) (string, error) {
	var m struct{ Path, Version, Dir, Error string }
	if err := json.Unmarshal(js, &m); err != nil {
		return "", fmt.Errorf("go mod download -json: %v: %s", err, truncate(strings.TrimSpace(string(js)), 200))
	}
	if m.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", m.Path, m.Version, m.Error)
	}
	if m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no directory", m.Path, m.Version)
	}
	return m.Dir, nil
}

// goCmd runs go with args in dir, outside any module or workspace of
// ours, in a process group of its own (killed on Ctrl-C) and with a
// deadline; it returns the standard output, and its standard error goes
// to a log file whose end an error quotes. It reports progress every
// minute.
func (b *bench) goCmd(p peer, dir string, env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), peerBuildTimeout)
	defer cancel()
	log := filepath.Join(b.work, p.name+"-build.log")
	logf, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GOWORK=off"}, env...)...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	exited := false
	b.atCleanup(func() { // Ctrl-C: the compilers go too
		mu.Lock()
		defer mu.Unlock()
		if !exited {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		mu.Lock()
		exited = true
		mu.Unlock()
		done <- err
	}()
	start := time.Now()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case err = <-done:
		case <-tick.C:
			progress("  still running go %s for %s (%s)", args[0], p.name, time.Since(start).Round(time.Second))
			continue
		}
		break
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %v", peerBuildTimeout)
		}
		return stdout.Bytes(), fmt.Errorf("go %s: %v; %s", strings.Join(args, " "), err, tailOf(log, 3))
	}
	return stdout.Bytes(), nil
}

// tailOf is the end of a log file, its last n lines on one line.
func tailOf(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return "no output"
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return "last output: " + strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// peerEnv is the environment of a peer's processes: ours without the
// variables rclone and JuiceFS read as options or state (RCLONE_*, JFS_*,
// and JuiceFS's daemon stages), and, if home is set, with HOME and the
// XDG directories in the scratch directory so nothing of theirs lands in
// the caller's home.
func peerEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "RCLONE_"), strings.HasPrefix(k, "JFS_"), strings.HasPrefix(k, "_FUSE_"),
			k == "__DAEMON_STAGE":
			continue
		case home != "" && (k == "HOME" || strings.HasPrefix(k, "XDG_")):
			continue
		}
		env = append(env, kv)
	}
	if home != "" {
		env = append(env, "HOME="+home,
			"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
			"XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	}
	return env
}

// rcloneMountArgs mounts the directory data (rclone's local backend, no
// remote in any configuration file) on mnt with the full VFS cache in
// cache.
func rcloneMountArgs(config, data, mnt, cache string) []string {
	return []string{"mount", data, mnt,
		"--config", config, // an empty file: nothing from the caller's
		"--vfs-cache-mode", "full",
		"--cache-dir", cache}
}

// juicefsMeta is the metadata URL of a SQLite file at the absolute path
// db.
func juicefsMeta(db string) string { return "sqlite3://" + db }

// juicefsFormatArgs makes the volume "bench": metadata in SQLite at db,
// data in the directory bucket. --no-agent: no pprof listener.
func juicefsFormatArgs(db, bucket string) []string {
	return []string{"--no-agent", "format",
		"--storage", "file", "--bucket", strings.TrimSuffix(bucket, "/") + "/",
		juicefsMeta(db), "bench"}
}

// juicefsMountArgs mounts the volume of db on mnt in the foreground, with
// its block cache in cache; no usage report, no pprof listener, and no
// hourly metadata backup (it would land in whatever workload runs at that
// hour).
func juicefsMountArgs(db, mnt, cache string) []string {
	return []string{"--no-agent", "mount",
		"--no-usage-report",
		"--backup-meta", "0",
		"--cache-dir", cache,
		juicefsMeta(db), mnt}
}

// setupPeer prepares a peer's backing directories (and JuiceFS's volume).
func (t *target) setupPeer() error {
	b := t.b
	t.home = filepath.Join(b.work, "home-"+t.name)
	for _, d := range []string{t.home, filepath.Join(t.backing, "data"), filepath.Join(t.backing, "cache")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	switch t.name {
	case "rclone":
		// rclone mount (bazil.org/fuse) mounts through fusermount3, even
		// as root.
		if _, err := exec.LookPath("fusermount3"); err != nil {
			return errors.New("rclone mount needs fusermount3 (Debian package fuse3; make bench installs it), not found in $PATH")
		}
		t.conf = filepath.Join(b.work, "rclone.conf")
		return os.WriteFile(t.conf, nil, 0o600)
	case "juicefs":
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, b.peerBin[t.name], juicefsFormatArgs(filepath.Join(t.backing, "meta.db"), filepath.Join(t.backing, "data"))...)
		cmd.Env = peerEnv(t.home)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("juicefs format: %v: %s", err, truncate(strings.Join(strings.Fields(string(out)), " "), 300))
		}
	}
	return nil
}

// peerCmd is the command that serves a peer's mount in the foreground.
func (t *target) peerCmd() *exec.Cmd {
	var args []string
	switch t.name {
	case "rclone":
		args = rcloneMountArgs(t.conf, filepath.Join(t.backing, "data"), t.mnt, filepath.Join(t.backing, "cache"))
	case "juicefs":
		args = juicefsMountArgs(filepath.Join(t.backing, "meta.db"), t.mnt, filepath.Join(t.backing, "cache"))
	}
	cmd := exec.Command(t.b.peerBin[t.name], args...)
	cmd.Env = peerEnv(t.home)
	return cmd
}

// killedPeer removes what a killed peer leaves behind: JuiceFS's
// supervisor (the process we start) serves the FUSE descriptor on a
// socket named after its pid in /tmp, removed only when it exits cleanly.
func killedPeer(name string, pid int) {
	if name == "juicefs" {
		if err := os.Remove(fmt.Sprintf("/tmp/fuse_fd_comm.%d", pid)); err != nil && !errors.Is(err, os.ErrNotExist) {
			progress("juicefs: %v", err)
		}
	}
}

// sigtermExit reports whether a process exited as it does on SIGTERM:
// rclone unmounts and exits with status 143 (128 + SIGTERM).
func sigtermExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == 128+int(syscall.SIGTERM)
}

// infoLine reports whether a line of a target's output is informational
// (not a warning or an error): dfms's level=INFO, JuiceFS's <INFO>,
// rclone's INFO.
func infoLine(l string) bool {
	for _, s := range []string{" level=INFO ", " level=DEBUG ", "<INFO>", "<DEBUG>", " INFO  :", " DEBUG :"} {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
