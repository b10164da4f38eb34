package fusefs_test

// Real programs on a real mount: rsync, git, the sqlite3 shell and the
// coreutils that change attributes, each checked by what it leaves behind.
// The programs are installed by integration/test.sh (`make test`); where
// the tools or FUSE are required (CI, DFMS_TEST_REQUIRE) a missing one
// fails the test, elsewhere it skips it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
)

// requireTool returns the path of program name, or skips t without it
// (fails it when the tools or FUSE are required).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if testenv.Required("tools") || testenv.Required("fuse") {
		t.Fatalf("%s is required (CI or DFMS_TEST_REQUIRE) but not installed: %v; integration/test.sh installs it", name, err)
	}
	t.Skipf("%s not installed (%v); `make test` installs it", name, err)
	return ""
}

// tool returns a command for program name that runs with a C locale, UTC
// and a two-minute limit. A missing program skips or fails t.
func tool(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	requireTool(t, name)
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	c := exec.CommandContext(cctx, name, args...)
	c.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	return c
}

// output runs c and returns its standard output; a failure fails t with
// both outputs.
func output(t *testing.T, c *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(c.Args, " "), err, lastLines(stdout.String(), 40), lastLines(stderr.String(), 40))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Logf("%s took %v", strings.Join(c.Args, " "), d.Round(time.Millisecond))
	}
	return stdout.String()
}

// toolOut runs program name and returns its standard output.
func toolOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	return output(t, tool(t, name, args...))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[… %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// dropKernelCache makes the kernel forget what it cached of the mount, so
// that the next stat asks the file system: it drops the dentry and inode
// caches if this process may (unused inodes of the mount get FORGET and
// are looked up afresh; the page cache is left alone), and in any case
// waits out the mount's attribute and entry timeout.
func dropKernelCache(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Logf("cannot drop the kernel's dentry and inode caches (%v); waiting out the attribute timeout only", err)
	}
	time.Sleep(1100 * time.Millisecond)
}

// info is what the tests compare of a file.
type info struct {
	mode   fs.FileMode
	uid    uint32
	gid    uint32
	size   int64 // regular files only
	mtime  time.Time
	target string // symlinks only
}

func (i info) String() string {
	s := fmt.Sprintf("%v uid %d gid %d mtime %s", i.mode, i.uid, i.gid, i.mtime.UTC().Format(time.RFC3339Nano))
	if i.mode.IsRegular() {
		s += fmt.Sprintf(" size %d", i.size)
	}
	if i.target != "" {
		s += " -> " + i.target
	}
	return s
}

func (i info) equal(j info) bool {
	return i.mode == j.mode && i.uid == j.uid && i.gid == j.gid && i.size == j.size && i.mtime.Equal(j.mtime) && i.target == j.target
}

func lstatInfo(t *testing.T, p string) info {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	i := info{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, mtime: time.Unix(st.Mtim.Unix())}
	if fi.Mode().IsRegular() {
		i.size = fi.Size()
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if i.target, err = os.Readlink(p); err != nil {
			t.Fatal(err)
		}
	}
	return i
}

// sameTree checks that got holds exactly the entries of want, with equal
// types, modes, owners, sizes, symlink targets and mtimes (to the
// nanosecond, for directories and symlinks too). Content is diff's job.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	list := func(root string) []string {
		var out []string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	w, g := list(want), list(got)
	if !slices.Equal(w, g) {
		t.Fatalf("the trees differ:\nwant %q\ngot  %q", w, g)
	}
	for _, rel := range w {
		a, b := lstatInfo(t, filepath.Join(want, rel)), lstatInfo(t, filepath.Join(got, rel))
		if !a.equal(b) {
			t.Errorf("%s:\nwant %v\ngot  %v", rel, a, b)
		}
	}
}

// makeToolTree fills dir with a small tree for rsync: nested and empty
// directories, files of 0 bytes to just over 1 MiB with several modes and
// owners, relative, dangling and absolute symlinks, and a distinct mtime
// with nanoseconds on every entry (directories and symlinks too).
func makeToolTree(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"docs", "docs/deep", "data", "bin", "empty dir"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "docs/deep"), 0o750); err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name string
		size int
		mode os.FileMode
	}{
		{"docs/readme.txt", 0, 0o644}, // text, below
		{"docs/deep/empty", 0, 0o644},
		{"docs/4k", 4096, 0o640},
		{"data/one-mib", 1 << 20, 0o644},
		{"data/odd", 1<<20 + 12345, 0o600},
		{"bin/tool.sh", 100, 0o755},
		{"bin/setuid", 10, 0o755 | os.ModeSetuid},
		{"top", 1, 0o444},
	}
	for i, f := range files {
		data := testkit.RandBytes(uint64(100+i), f.size)
		if f.name == "docs/readme.txt" {
			data = []byte("hello, rsync\n")
		}
		p := filepath.Join(dir, f.name)
		writeFile(t, p, data)
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range [][2]string{{"docs/link", "readme.txt"}, {"data/dangling", "../no/such/file"}, {"bin/abs", "/usr/bin/env"}} {
		if err := os.Symlink(l[1], filepath.Join(dir, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(filepath.Join(dir, "docs/4k"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(filepath.Join(dir, "docs/link"), 4321, 8765); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		all = append(all, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2015, 6, 7, 8, 9, 10, 0, time.UTC)
	for i, p := range all {
		mt := base.Add(time.Duration(i)*time.Hour + time.Duration(i)*111111111)
		ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	rsyncTransferred = regexp.MustCompile(`(?m)^Number of regular files transferred: ([0-9,]+)$`)
	rsyncMatched     = regexp.MustCompile(`(?m)^Matched data: ([0-9,]+) bytes$`)
)

// rsyncStats returns the number of regular files that rsync --stats
// reports as transferred, and the itemized changes (-i) it printed.
func rsyncStats(t *testing.T, out string) (int, []string) {
	t.Helper()
	m := rsyncTransferred.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no transfer count in rsync's output:\n%s", out)
	}
	n, err := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, "Number of files:") {
			break
		}
		items = append(items, line)
	}
	return n, items
}

func TestRsync(t *testing.T) {
	requireTool(t, "rsync")
	requireTool(t, "diff")
	e := mount(t)
	src := t.TempDir()
	makeToolTree(t, src)
	dst := filepath.Join(e.dir, "dst")

	out := toolOut(t, "rsync", "-a", "-i", "--stats", src+"/", dst+"/")
	if n, _ := rsyncStats(t, out); n != 8 {
		t.Errorf("first run transferred %d regular files, want 8:\n%s", n, out)
	}
	toolOut(t, "diff", "-r", "--no-dereference", src, dst)
	sameTree(t, src, dst)

	// Nothing changed, so nothing is sent and nothing is touched: rsync's
	// quick check (size and mtime) holds for every file, and every mode,
	// owner and time already matches.
	out = toolOut(t, "rsync", "-a", "-i", "--stats", src+"/", dst+"/")
	if n, items := rsyncStats(t, out); n != 0 || len(items) != 0 {
		t.Errorf("second run transferred %d regular files (want 0) and changed %q (want nothing):\n%s", n, items, out)
	}
	// The same after the kernel forgot its cached attributes: what the
	// server stored is what rsync set.
	dropKernelCache(t)
	sameTree(t, src, dst)
	out = toolOut(t, "rsync", "-a", "-i", "--stats", src+"/", dst+"/")
	if n, items := rsyncStats(t, out); n != 0 || len(items) != 0 {
		t.Errorf("third run transferred %d regular files (want 0) and changed %q (want nothing):\n%s", n, items, out)
	}

	// A changed file is sent again: whole (rsync's default between local
	// paths), as a delta against the old copy read from the mount, and as
	// a delta written into that copy in place.
	p := filepath.Join(src, "data/odd")
	for i, v := range []struct {
		name  string
		flags []string
	}{
		{"whole file", nil},
		{"delta", []string{"--no-whole-file"}},
		{"delta in place", []string{"--no-whole-file", "--inplace"}},
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		copy(b[300000*(i+1):], fmt.Sprintf("change %d in the middle", i))
		writeFile(t, p, b)
		mt := time.Date(2020, 1, 1, i, 0, 0, 0, time.UTC)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		id := entryID(t, filepath.Join(dst, "data/odd"))
		out = toolOut(t, "rsync", append(append([]string{"-a", "-i", "--stats"}, v.flags...), src+"/", dst+"/")...)
		if n, items := rsyncStats(t, out); n != 1 || !slices.Equal(items, []string{">f..t...... data/odd"}) {
			t.Errorf("%s: after one change rsync transferred %d regular files (want 1) and changed %q:\n%s", v.name, n, items, out)
		}
		matched := rsyncMatched.FindStringSubmatch(out)
		if v.flags != nil && (matched == nil || matched[1] == "0") {
			t.Errorf("%s: rsync matched no data of the old copy:\n%s", v.name, out)
		}
		inPlace := entryID(t, filepath.Join(dst, "data/odd")) == id
		if want := slices.Contains(v.flags, "--inplace"); inPlace != want {
			t.Errorf("%s: the file was written in place: %v, want %v", v.name, inPlace, want)
		}
		toolOut(t, "diff", "-r", "--no-dereference", src, dst)
		sameTree(t, src, dst)
	}
	// --delete removes what the source no longer has. (The source's
	// directory times are set back to fixed ones: rsync leaves the time of
	// a directory modified within the current second alone, on any file
	// system.)
	for _, name := range []string{"top", "docs"} {
		if err := os.RemoveAll(filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	mt := time.Date(2019, 5, 6, 7, 8, 9, 10, time.UTC)
	if err := os.Chtimes(src, mt, mt); err != nil {
		t.Fatal(err)
	}
	out = toolOut(t, "rsync", "-a", "-i", "--delete", src+"/", dst+"/")
	for _, want := range []string{"*deleting   top\n", "*deleting   docs/deep/empty\n", "*deleting   docs/\n", ".d..t...... ./\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("rsync --delete did not report %q:\n%s", want, out)
		}
	}
	toolOut(t, "diff", "-r", "--no-dereference", src, dst)
	sameTree(t, src, dst)

	back := filepath.Join(t.TempDir(), "back")
	toolOut(t, "rsync", "-a", dst+"/", back+"/")
	toolOut(t, "diff", "-r", "--no-dereference", src, back)
	sameTree(t, src, back)
}

// git runs git in dir with a fixed identity and dates, no system or
// global configuration, and an empty template (no sample hooks to copy).
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	c := tool(t, "git", append([]string{"-C", dir, "-c", "user.name=DFMS Test", "-c", "user.email=test@example.com",
		"-c", "init.defaultBranch=main", "-c", "core.fsync=all"}, args...)...)
	c.Env = append(c.Env, "HOME="+t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TEMPLATE_DIR="+t.TempDir(), "GIT_AUTHOR_DATE=2020-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2020-01-02T03:04:05Z")
	return output(t, c)
}

func TestGit(t *testing.T) {
	requireTool(t, "git")
	e := mount(t)
	repo := filepath.Join(e.dir, "repo")
	git(t, e.dir, "init", "-q", "repo")
	for _, d := range []string{"src/util", "docs"} {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	readme := "# Project\n\nfirst version\n"
	writeFile(t, filepath.Join(repo, "README.md"), []byte(readme))
	writeFile(t, filepath.Join(repo, "src/main.go"), []byte("package main\n\nfunc main() {}\n"))
	writeFile(t, filepath.Join(repo, "src/util/util.go"), []byte("package util\n"))
	writeFile(t, filepath.Join(repo, "docs/empty"), nil)
	writeFile(t, filepath.Join(repo, "docs/blob.bin"), testkit.RandBytes(7, 300000))
	writeFile(t, filepath.Join(repo, "run.sh"), []byte("#!/bin/sh\necho hi\n"))
	if err := os.Chmod(filepath.Join(repo, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("README.md", filepath.Join(repo, "link")); err != nil {
		t.Fatal(err)
	}

	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "first")
	if out := git(t, repo, "status", "--porcelain"); out != "" {
		t.Fatalf("git status after the first commit:\n%s", out)
	}
	git(t, repo, "fsck", "--full", "--strict")
	files := git(t, repo, "ls-files", "-s")
	for _, want := range []string{"100755 ", "\trun.sh", "120000 ", "\tlink", "\tdocs/empty", "\tsrc/util/util.go"} {
		if !strings.Contains(files, want) {
			t.Errorf("git ls-files -s lacks %q:\n%s", want, files)
		}
	}

	writeFile(t, filepath.Join(repo, "README.md"), []byte(readme+"second version\n"))
	if out := git(t, repo, "status", "--porcelain"); out != " M README.md\n" {
		t.Fatalf("git status after an edit: %q, want %q", out, " M README.md\n")
	}
	git(t, repo, "commit", "-q", "-a", "-m", "second")
	if out := git(t, repo, "log", "--format=%s"); out != "second\nfirst\n" {
		t.Fatalf("git log shows %q, want the two commits", out)
	}
	if out := git(t, repo, "status", "--porcelain"); out != "" {
		t.Fatalf("git status after the second commit:\n%s", out)
	}
	if out := git(t, repo, "show", "HEAD~1:README.md"); out != readme {
		t.Fatalf("the first commit's README.md: %q, want %q", out, readme)
	}

	// The stat data git keeps in its index (mtime, ctime, inode, size,
	// owner) still matches once the kernel forgot the files: diff-files
	// compares it without refreshing the index.
	git(t, repo, "update-index", "-q", "--refresh")
	dropKernelCache(t)
	if out := git(t, repo, "diff-files", "--name-status"); out != "" {
		t.Fatalf("git diff-files after dropping the kernel cache:\n%s", out)
	}

	// Packing rewrites the object store (a pack written and renamed into
	// place, read back through mmap, loose objects deleted); the
	// repository stays whole.
	git(t, repo, "gc", "-q", "--prune=now")
	git(t, repo, "fsck", "--full", "--strict")
	if out := git(t, repo, "rev-list", "--count", "HEAD"); out != "2\n" {
		t.Fatalf("git rev-list --count HEAD: %q, want 2", out)
	}
	if out := git(t, repo, "status", "--porcelain"); out != "" {
		t.Fatalf("git status after gc:\n%s", out)
	}

	// A clone inside the mount: git's hard link of the pack fails with
	// ENOTSUP, and it falls back to copying. Checking out the first
	// commit there rewrites the working tree.
	git(t, e.dir, "clone", "-q", "repo", "clone")
	clone := filepath.Join(e.dir, "clone")
	git(t, clone, "fsck", "--full", "--strict")
	if out := git(t, clone, "log", "--format=%s"); out != "second\nfirst\n" {
		t.Fatalf("the clone's log shows %q", out)
	}
	git(t, clone, "checkout", "-q", "HEAD~1")
	checkFile(t, filepath.Join(clone, "README.md"), []byte(readme))
	if out := git(t, clone, "status", "--porcelain"); out != "" {
		t.Fatalf("git status after checkout:\n%s", out)
	}
}

// sqliteRows is the content of row i of the sqlite test table.
func sqliteRow(i int) (name string, val int) {
	return fmt.Sprintf("row %d %s", i, strings.Repeat("x", i%97)), i * 7 % 1009
}

// sqlite3 runs the sqlite3 shell on db with script as its input, stopping
// at the first error.
func sqlite3(t *testing.T, db, script string) string {
	t.Helper()
	c := tool(t, "sqlite3", "-bail", "-batch", db)
	c.Stdin = strings.NewReader(script)
	return output(t, c)
}

// checkSqlite checks the integrity and the content of the test table.
func checkSqlite(t *testing.T, db string, rows int) {
	t.Helper()
	var wantLen, wantVal int
	for i := 1; i <= rows; i++ {
		name, val := sqliteRow(i)
		wantLen += len(name)
		wantVal += val
	}
	want := fmt.Sprintf("ok\n%d|%d|%d\n", rows, wantLen, wantVal)
	got := sqlite3(t, db, "PRAGMA integrity_check;\nSELECT count(*), sum(length(name)), sum(val) FROM t;\n")
	if got != want {
		t.Fatalf("integrity check and content: got %q, want %q", got, want)
	}
}

// TestSqlite runs the sqlite3 shell in the default rollback-journal mode
// and in WAL mode, whose index is a shared writable mmap of the -shm file.
func TestSqlite(t *testing.T) {
	requireTool(t, "sqlite3")
	for _, mode := range []string{"delete", "wal"} {
		t.Run(mode, func(t *testing.T) {
			e := mount(t)
			db := filepath.Join(e.dir, "test.db")
			out := sqlite3(t, db, "PRAGMA journal_mode="+mode+";\n"+
				"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, val INTEGER NOT NULL);\nCREATE INDEX t_val ON t(val);\n")
			if out != mode+"\n" {
				t.Fatalf("PRAGMA journal_mode=%s answered %q", mode, out)
			}
			// 10 transactions of 1,000 single-row inserts. In delete mode
			// each commit writes the rollback journal, fsyncs it, rewrites
			// pages in place, fsyncs the database and deletes the journal;
			// in WAL mode it appends to the -wal file and updates the -shm
			// index, and closing checkpoints into the database.
			var b strings.Builder
			for tx := 0; tx < 10; tx++ {
				b.WriteString("BEGIN;\n")
				for i := tx*1000 + 1; i <= (tx+1)*1000; i++ {
					name, val := sqliteRow(i)
					fmt.Fprintf(&b, "INSERT INTO t(id, name, val) VALUES(%d, '%s', %d);\n", i, name, val)
				}
				b.WriteString("COMMIT;\n")
			}
			if out := sqlite3(t, db, b.String()); out != "" {
				t.Fatalf("inserts printed %q", out)
			}
			checkSqlite(t, db, 10000)
			// No journal, WAL or index is left behind once closed.
			names, err := os.ReadDir(e.dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 1 || names[0].Name() != "test.db" {
				t.Errorf("the directory holds %v, want test.db alone", names)
			}
			// Re-opened after the kernel forgot its cache: the same rows.
			dropKernelCache(t)
			checkSqlite(t, db, 10000)
			// And the server's current version is the same database:
			// copied out through the file layer, it checks the same.
			cp := filepath.Join(t.TempDir(), "copy.db")
			writeFile(t, cp, e.stored(t, db))
			checkSqlite(t, cp, 10000)
		})
	}
}

// statTool returns what stat(1) shows of p: octal mode, uid, gid, mtime
// in seconds and nanoseconds, size and type.
func statTool(t *testing.T, p string) string {
	t.Helper()
	return strings.TrimSpace(toolOut(t, "stat", "-c", "%a %u %g %.9Y %s %F", p))
}

func TestToolAttributes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	e := mount(t)
	f := filepath.Join(e.dir, "f")
	d := filepath.Join(e.dir, "d")
	writeFile(t, f, []byte("attributes"))
	toolOut(t, "mkdir", "-m", "0700", d)
	toolOut(t, "chmod", "0640", f)
	toolOut(t, "chown", "1234:5678", f)
	toolOut(t, "touch", "-d", "2001-02-03 04:05:06", f)
	toolOut(t, "chmod", "2751", d)
	toolOut(t, "chown", "4321:8765", d)
	toolOut(t, "touch", "-d", "2002-03-04 05:06:07.5", d)
	// stat(1) and stat(2) agree with what the tools set: once cached,
	// again when re-read, and after the kernel dropped its cache.
	wantF := "640 1234 5678 981173106.000000000 10 regular file"
	wantD := "2751 4321 8765 1015218367.500000000 "
	for _, when := range []string{"at once", "re-stat", "after dropping the kernel cache"} {
		if when == "after dropping the kernel cache" {
			dropKernelCache(t)
		}
		if got := statTool(t, f); got != wantF {
			t.Errorf("%s: stat f: %q, want %q", when, got, wantF)
		}
		if got := statTool(t, d); !strings.HasPrefix(got, wantD) || !strings.HasSuffix(got, " directory") {
			t.Errorf("%s: stat d: %q, want %q… directory", when, got, wantD)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(f, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != syscall.S_IFREG|0o640 || st.Uid != 1234 || st.Gid != 5678 || st.Mtim.Sec != 981173106 || st.Size != 10 {
			t.Errorf("%s: stat(2) of f: mode %o uid %d gid %d mtime %d size %d", when, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Size)
		}
	}
	checkFile(t, f, []byte("attributes"))
	ent, err := e.files.Stat(ctx, e.owner, entryID(t, f))
	if err != nil {
		t.Fatal(err)
	}
	if ent.Mode != 0o640 || ent.UID != 1234 || ent.GID != 5678 || ent.MTime.Unix() != 981173106 {
		t.Errorf("the server has mode %o uid %d gid %d mtime %v", ent.Mode, ent.UID, ent.GID, ent.MTime)
	}

	// As on a local disk: root's chown clears set-user-ID, and a group
	// change clears set-group-ID of a group-executable file.
	toolOut(t, "chmod", "6755", f)
	toolOut(t, "chown", "1:2", f)
	if got, want := statTool(t, f), "755 1 2 "; !strings.HasPrefix(got, want) {
		t.Errorf("chown of a 6755 file: stat %q, want %q…", got, want)
	}
	// touch of a file that does not exist creates it; -r copies a time.
	g := filepath.Join(e.dir, "new")
	toolOut(t, "touch", "-d", "@1000000000.25", g)
	toolOut(t, "touch", "-r", g, f)
	for _, p := range []string{f, g} {
		if got := strings.Fields(statTool(t, p))[3]; got != "1000000000.250000000" {
			t.Errorf("%s: mtime %s, want 1000000000.250000000", p, got)
		}
	}
}

func TestToolSymlinks(t *testing.T) {
	e := mount(t)
	dir := e.dir
	writeFile(t, filepath.Join(dir, "target"), []byte("through the link\n"))
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("long/", 200) + "end" // 1003 bytes
	links := [][2]string{
		{"rel", "target"},
		{"sub/up", "../target"},
		{"abs", "/no/such/absolute/path"},
		{"dirlink", "sub"},
		{"long", long},
	}
	for _, l := range links {
		toolOut(t, "ln", "-s", l[1], filepath.Join(dir, l[0]))
	}
	check := func(when string) {
		t.Helper()
		for _, l := range links {
			if got := strings.TrimSuffix(toolOut(t, "readlink", filepath.Join(dir, l[0])), "\n"); got != l[1] {
				t.Errorf("%s: readlink %s: %q, want %q", when, l[0], got, l[1])
			}
			fi, err := os.Lstat(filepath.Join(dir, l[0]))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSymlink || fi.Size() != int64(len(l[1])) {
				t.Errorf("%s: lstat %s: %v size %d, want a symlink of %d bytes", when, l[0], fi.Mode(), fi.Size(), len(l[1]))
			}
		}
		for _, p := range []string{"rel", "sub/up"} {
			if got := toolOut(t, "cat", filepath.Join(dir, p)); got != "through the link\n" {
				t.Errorf("%s: cat %s: %q", when, p, got)
			}
		}
		if got := strings.TrimSpace(toolOut(t, "readlink", "-f", filepath.Join(dir, "sub/up"))); got != filepath.Join(dir, "target") {
			t.Errorf("%s: readlink -f sub/up: %q", when, got)
		}
	}
	check("at once")
	dropKernelCache(t)
	check("after dropping the kernel cache")

	// ln -s onto an existing name fails; -f replaces it; -n with -f
	// replaces a link to a directory rather than following it.
	err := tool(t, "ln", "-s", "other", filepath.Join(dir, "rel")).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Errorf("ln -s over an existing link: %v, want a failure", err)
	}
	toolOut(t, "ln", "-sf", "sub/../target", filepath.Join(dir, "rel"))
	toolOut(t, "ln", "-sfn", "target", filepath.Join(dir, "dirlink"))
	for name, want := range map[string]string{"rel": "sub/../target", "dirlink": "target"} {
		if got := strings.TrimSpace(toolOut(t, "readlink", filepath.Join(dir, name))); got != want {
			t.Errorf("after ln -sf: readlink %s: %q, want %q", name, got, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "sub/target")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ln -sfn followed the directory link: %v", err)
	}
	// A symlink's own owner and time (chown -h, touch -h).
	if os.Geteuid() == 0 {
		toolOut(t, "chown", "-h", "77:88", filepath.Join(dir, "abs"))
	}
	toolOut(t, "touch", "-h", "-d", "2001-02-03 04:05:06", filepath.Join(dir, "abs"))
	st := lstatInfo(t, filepath.Join(dir, "abs"))
	if st.mtime.Unix() != 981173106 || (os.Geteuid() == 0 && (st.uid != 77 || st.gid != 88)) {
		t.Errorf("after chown -h and touch -h: %v", st)
	}
	if got := lstatInfo(t, filepath.Join(dir, "target")); got.mtime.Unix() == 981173106 {
		t.Errorf("touch -h changed the target: %v", got)
	}
}

func TestToolTruncate(t *testing.T) {
	e := mount(t)
	orig := testkit.RandBytes(9, 5000)
	p := e.writeFile(t, "t", orig)
	want := slices.Clone(orig)
	steps := []struct {
		arg  string
		size int
	}{
		{"1M", 1 << 20},    // up: zeros after the old end
		{"3000", 3000},     // down
		{"+5000", 8000},    // up, relative
		{"%4096", 8192},    // up to a multiple
		{"-8191", 1},       // down, relative
		{"0", 0},           // empty
		{"100000", 100000}, // up from nothing
	}
	for _, s := range steps {
		toolOut(t, "truncate", "-s", s.arg, p)
		if s.size < len(want) {
			want = want[:s.size]
		} else {
			want = append(want, make([]byte, s.size-len(want))...)
		}
		checkFile(t, p, want)
		if got := strings.Fields(statTool(t, p)); got[4] != strconv.Itoa(s.size) {
			t.Errorf("after truncate -s %s: stat %q, want size %d", s.arg, got, s.size)
		}
		if got := e.stored(t, p); !bytes.Equal(got, want) {
			t.Errorf("after truncate -s %s: the server has %d bytes, not the %d expected", s.arg, len(got), len(want))
		}
	}
	// Content written after a truncation up keeps the zeros before it.
	f := openFile(t, p, os.O_WRONLY|os.O_APPEND)
	if _, err := f.WriteString("tail"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want = append(want, "tail"...)
	dropKernelCache(t)
	checkFile(t, p, want)
	// truncate creates a missing file, and -c does not.
	q := filepath.Join(e.dir, "new")
	toolOut(t, "truncate", "-s", "4k", q)
	checkFile(t, q, make([]byte, 4096))
	toolOut(t, "truncate", "-c", "-s", "1", filepath.Join(e.dir, "absent"))
	if _, err := os.Stat(filepath.Join(e.dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("truncate -c created a file: %v", err)
	}
}

// TestToolDirectoryTimes checks that a directory's mtime and ctime change
// when names are added to it or removed from it, as POSIX asks and as
// git's untracked cache (and any scan that skips unchanged directories)
// relies on.
func TestToolDirectoryTimes(t *testing.T) {
	requireTool(t, "git")
	e := mount(t)
	d := filepath.Join(e.dir, "d")
	other := filepath.Join(e.dir, "other")
	toolOut(t, "mkdir", d, other)
	writeFile(t, filepath.Join(d, "moved"), []byte("m"))
	writeFile(t, filepath.Join(other, "incoming"), []byte("i"))
	toolOut(t, "mkdir", filepath.Join(d, "gone"))
	ops := []struct {
		name string
		cmd  []string
	}{
		{"create a file", []string{"touch", filepath.Join(d, "new")}},
		{"mkdir", []string{"mkdir", filepath.Join(d, "sub")}},
		{"symlink", []string{"ln", "-s", "new", filepath.Join(d, "link")}},
		{"rename within", []string{"mv", filepath.Join(d, "new"), filepath.Join(d, "renamed")}},
		{"rename out", []string{"mv", filepath.Join(d, "moved"), filepath.Join(other, "moved")}},
		{"rename in", []string{"mv", filepath.Join(other, "incoming"), filepath.Join(d, "incoming")}},
		{"unlink", []string{"rm", filepath.Join(d, "renamed")}},
		{"rmdir", []string{"rmdir", filepath.Join(d, "gone")}},
	}
	var stale []string
	for _, op := range ops {
		toolOut(t, "touch", "-d", "2001-02-03 04:05:06", d)
		before := lstatTimes(t, d)
		toolOut(t, op.cmd[0], op.cmd[1:]...)
		after := lstatTimes(t, d)
		switch {
		case after.mtime.After(before.mtime) && after.ctime.After(before.ctime):
		case after.mtime.Equal(before.mtime) && after.ctime.Equal(before.ctime):
			stale = append(stale, op.name)
		default:
			t.Errorf("%s: directory mtime %v → %v, ctime %v → %v: want both to advance", op.name, before.mtime, after.mtime, before.ctime, after.ctime)
		}
	}
	// git's own probe of the same property.
	repo := filepath.Join(e.dir, "repo")
	git(t, e.dir, "init", "-q", "repo")
	c := tool(t, "git", "-C", repo, "update-index", "--test-untracked-cache")
	gitOut, gitErr := c.CombinedOutput()
	if len(stale) > 0 {
		t.Errorf("the directory's mtime and ctime did not change on: %s", strings.Join(stale, ", "))
	}
	if gitErr != nil {
		t.Errorf("git update-index --test-untracked-cache: %v\n%s", gitErr, gitOut)
	}
}

type dirTimes struct{ mtime, ctime time.Time }

func lstatTimes(t *testing.T, p string) dirTimes {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return dirTimes{time.Unix(st.Mtim.Unix()), time.Unix(st.Ctim.Unix())}
}
