package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms/fusefs/fusetest"
)

// appendSync opens path with flags, writes data, fsyncs and closes it: one
// committed version.
func appendSync(t *testing.T, path string, flags int, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|flags, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkVersions fails t unless .versions/NAME in dir lists exactly want,
// oldest first, each reading as written.
func checkVersions(t *testing.T, dir, name string, want []string) {
	t.Helper()
	for i, w := range want {
		p := filepath.Join(dir, ".versions", name, fmt.Sprintf("v%d", i+1))
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if string(got) != w {
			t.Errorf("%s reads %q, want %q", p, got, w)
		}
	}
	extra := filepath.Join(dir, ".versions", name, fmt.Sprintf("v%d", len(want)+1))
	if _, err := os.Stat(extra); err == nil {
		got, _ := os.ReadFile(extra)
		t.Errorf("%s exists (%q); %s should have %d versions", extra, got, name, len(want))
	}
}

// logRotation rotates a log that an appender holds open, in the mount at
// wdir, while a reader in the mount at rdir (the same folder seen from
// another client) has it open: `mv app.log app.log.1` with history on both
// names, the appender keeps writing, and a new app.log is made. Every
// version of both names must read exactly what was written to it, and the
// reader what app.log was when it opened it.
func logRotation(t *testing.T, wdir, rdir string) {
	if err := os.Mkdir(wdir, 0o755); err != nil {
		t.Fatal(err)
	}
	logp, rotp := filepath.Join(wdir, "app.log"), filepath.Join(wdir, "app.log.1")
	appendSync(t, rotp, os.O_CREATE|os.O_TRUNC, "rotated 1\n")
	appendSync(t, rotp, os.O_APPEND, "rotated 2\n")
	appendSync(t, logp, os.O_CREATE|os.O_TRUNC, "line 1\n")
	appendSync(t, logp, os.O_APPEND, "line 2\n")
	if took, ok := within(2*time.Second, fileIs(filepath.Join(rdir, "app.log"), []byte("line 1\nline 2\n"))); !ok {
		t.Fatalf("app.log is not visible to the other client after %v", took)
	}
	r, err := os.Open(filepath.Join(rdir, "app.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(logp, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("line 3\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(logp, rotp); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("line 4\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("line 5\n"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	appendSync(t, logp, os.O_CREATE|os.O_EXCL, "new 1\n") // logrotate's create
	fusetest.Fsync(t, wdir)

	if got, err := io.ReadAll(r); err != nil || string(got) != "line 1\nline 2\n" {
		t.Errorf("a reader that opened app.log before the rotation reads %q (%v), want %q", got, err, "line 1\nline 2\n")
	}
	lines := func(n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "line %d\n", i)
		}
		return b.String()
	}
	rotated := []string{"rotated 1\n", "rotated 1\nrotated 2\n", lines(1), lines(2), lines(4), lines(5)}
	for _, dir := range []string{wdir, rdir} {
		if took, ok := within(2*time.Second, fileIs(filepath.Join(dir, "app.log.1"), []byte(lines(5)))); !ok {
			t.Fatalf("%s/app.log.1 does not read the last version after %v", dir, took)
		}
		checkVersions(t, dir, "app.log.1", rotated)
		checkVersions(t, dir, "app.log", []string{"new 1\n"})
	}
}
