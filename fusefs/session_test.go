package fusefs_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs"
	"github.com/dfms/dfms/fusefs/fusetest"
	"github.com/dfms/dfms/fusefs/remote"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/server/api/client/clienttest"
	"github.com/dfms/dfms/server/files"
)

// serverContent returns what the server holds as the current version of
// the file of a mount at path.
type serverContent func(t *testing.T, path string) []byte

func readServer(svc *files.Service, owner dfms.UserID) serverContent {
	return func(t *testing.T, path string) []byte {
		t.Helper()
		var b bytes.Buffer
		if _, err := svc.ReadFile(ctx, owner, entryID(t, path), &b); err != nil {
			t.Fatalf("read %s from the server: %v", path, err)
		}
		return b.Bytes()
	}
}

// mountRemote mounts, as `dfms mount` does, the REST API of a real
// server running in this process, and unmounts it when t ends.
func mountRemote(t *testing.T, writeBack bool) (string, serverContent) {
	t.Helper()
	fusetest.Require(t)
	srv := clienttest.NewServer(t, clienttest.Options{})
	c := srv.Login(t)
	log := slog.New(slog.NewTextHandler(logWriter{t}, nil))
	fsys, err := vfs.New(ctx, remote.New(c), vfs.Options{CacheDir: t.TempDir(), CacheSize: 64 << 20, Log: log, WriteBack: writeBack})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fsrv, err := fusefs.Mount(dir, fsys, fusefs.Options{FsName: "dfms-test", Strict: true, Log: log})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := fusetest.Unmount(dir, fsrv); err != nil {
			t.Error(err)
		}
		if err := fsys.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return dir, readServer(srv.Files, srv.User.ID)
}

// bothMounts runs fn on a mount of each backend, with write-back: the
// in-process one (dfms up) and the REST one (dfms mount).
func bothMounts(t *testing.T, fn func(t *testing.T, dir string, server serverContent)) {
	for _, b := range []struct {
		name  string
		mount func(t *testing.T, writeBack bool) (string, serverContent)
	}{{"local", mountLocal}, {"remote", mountRemote}} {
		t.Run(b.name, func(t *testing.T) {
			dir, server := b.mount(t, true)
			fn(t, dir, server)
		})
	}
}

// mountLocal mounts, as `dfms up` does, the in-process backend.
func mountLocal(t *testing.T, writeBack bool) (string, serverContent) {
	t.Helper()
	e, srv := mountRawWB(t, writeBack)
	t.Cleanup(func() {
		if err := fusetest.Unmount(e.dir, srv); err != nil {
			t.Error(err)
		}
		if err := e.fsys.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e.dir, readServer(e.files, e.owner)
}

// versionContents lists .versions/NAME of path's directory and returns
// what each version holds, in the listing's order, after an fsync of the
// directory (which commits what write-back still holds).
func versionContents(t *testing.T, path string) []string {
	t.Helper()
	fusetest.Fsync(t, filepath.Dir(path))
	vdir := filepath.Join(filepath.Dir(path), ".versions", filepath.Base(path))
	list, err := os.ReadDir(vdir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range list {
		b, err := os.ReadFile(filepath.Join(vdir, v.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// One writer's session (an open file description, whichever of its
// descriptors the writes and closes go through) makes one version: a
// shell redirect, cp over a file, and open(O_TRUNC) or ftruncate followed
// by a close of a duplicate and then writes never leave an empty version
// in .versions. A session that only truncates still makes its (empty)
// version. Without write-back a close after writes still commits before
// it returns. On the in-process and the REST backend, with write-back
// and with synchronous closes.
func TestOneVersionPerSession(t *testing.T) {
	bash := requireTool(t, "bash")
	cp := requireTool(t, "cp")
	for _, backend := range []string{"local", "remote"} {
		for _, writeBack := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/writeback=%v", backend, writeBack), func(t *testing.T) {
				var dir string
				var stored serverContent
				if backend == "local" {
					dir, stored = mountLocal(t, writeBack)
				} else {
					dir, stored = mountRemote(t, writeBack)
				}
				src := filepath.Join(t.TempDir(), "src")
				writeFile(t, src, []byte("copied over"))
				cases := []struct {
					name string
					run  func(t *testing.T, p string)
					want string
					// also is the version a close made before the last
					// one, without write-back ("" for none)
					also string
				}{
					{"redirect", func(t *testing.T, p string) {
						runTool(t, bash, "-c", `echo b > "$0"`, p)
					}, "b\n", ""},
					{"cp", func(t *testing.T, p string) {
						runTool(t, cp, src, p)
					}, "copied over", ""},
					{"otrunc-dup", func(t *testing.T, p string) {
						fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_TRUNC, 0)
						if err != nil {
							t.Fatal(err)
						}
						dupCloseWrite(t, fd, "after O_TRUNC")
					}, "after O_TRUNC", ""},
					{"ftruncate-dup", func(t *testing.T, p string) {
						fd, err := syscall.Open(p, syscall.O_WRONLY, 0)
						if err != nil {
							t.Fatal(err)
						}
						if err := syscall.Ftruncate(fd, 0); err != nil {
							t.Fatal(err)
						}
						dupCloseWrite(t, fd, "after ftruncate")
					}, "after ftruncate", ""},
					{"truncate-only", func(t *testing.T, p string) {
						runTool(t, bash, "-c", `: > "$0"`, p)
					}, "", ""},
					{"write-dup-write", func(t *testing.T, p string) {
						fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_TRUNC, 0)
						if err != nil {
							t.Fatal(err)
						}
						if _, err := syscall.Write(fd, []byte("written, ")); err != nil {
							t.Fatal(err)
						}
						dupCloseWrite(t, fd, "closed, written")
					}, "written, closed, written", "written, "},
				}
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						p := filepath.Join(dir, c.name)
						writeFile(t, p, []byte("the first version"))
						c.run(t, p)
						checkFile(t, p, []byte(c.want))
						if !writeBack && c.want != "" {
							if got := stored(t, p); string(got) != c.want {
								t.Fatalf("after the last close the server has %q, want %q", got, c.want)
							}
						}
						want := []string{"the first version", c.want}
						if !writeBack && c.also != "" {
							want = []string{"the first version", c.also, c.want}
						}
						if got := versionContents(t, p); !slices.Equal(got, want) {
							t.Fatalf(".versions/%s holds %q, want %q", c.name, got, want)
						}
					})
				}
			})
		}
	}
}

// dupCloseWrite does what a shell redirect does with fd: duplicates it,
// closes the original (the kernel flushes the file, nothing written
// yet), writes data through the duplicate and closes it.
func dupCloseWrite(t *testing.T, fd int, data string) {
	t.Helper()
	dup, err := syscall.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Close(fd); err != nil {
		t.Fatalf("close of the original: %v", err)
	}
	if _, err := syscall.Write(dup, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Close(dup); err != nil {
		t.Fatalf("close of the duplicate: %v", err)
	}
}

// runTool runs program path with args; a failure fails t with its output.
func runTool(t *testing.T, path string, args ...string) {
	t.Helper()
	c := tool(t, path, args...)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v\n%s", path, args, err, out)
	}
}
