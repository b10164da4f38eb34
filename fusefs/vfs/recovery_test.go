package vfs_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/server/files"
)

// newCrashable returns a backend with small chunks, its file layer, and
// an FS over it whose cache directory, also returned, is the one
// remountAfterCrash mounts again.
func newCrashable(t *testing.T) (*local.Backend, *files.Service, *vfs.FS, string) {
	t.Helper()
	b, svc := newLocalParams(t, smallChunks)
	cache := t.TempDir()
	return b, svc, openFS(t, b, vfs.Options{CacheDir: cache}), cache
}

// remountAfterCrash crashes fsys and mounts b again on the same cache, as
// the next mount after a crash does. The new FS is closed when the test
// ends.
func remountAfterCrash(t *testing.T, fsys *vfs.FS, b vfs.Backend, cache string) *vfs.FS {
	t.Helper()
	fsys.Crash()
	fsys2 := openFS(t, b, vfs.Options{CacheDir: cache})
	t.Cleanup(func() { fsys2.Close(ctx) })
	return fsys2
}

// writeElsewhere replaces the content of ino through a second FS over b,
// as another client (a second mount, the REST API alike) would, and
// commits it.
func writeElsewhere(t *testing.T, b vfs.Backend, ino vfs.Ino, content string) {
	t.Helper()
	other, _ := newFS(t, b)
	oh := openWrite(t, other, ino, os.O_WRONLY|os.O_TRUNC, content)
	release(t, oh)
}

// A clean journal (reset after a commit, no change since) is dropped by
// recovery, not committed: committing it would revert what another client
// committed meanwhile.
func TestRecoveryDropsCleanJournal(t *testing.T) {
	b, svc, fsys, cache := newCrashable(t)
	a := create(t, fsys, "f", "first version")
	h := openWrite(t, fsys, a.Ino, os.O_RDWR, "FIRST")
	if err := h.Flush(ctx); err != nil { // committed; h stays open, so the stage and journal stay
		t.Fatal(err)
	}
	writeElsewhere(t, b, a.Ino, "written elsewhere") // a newer version
	remountAfterCrash(t, fsys, b, cache)             // nothing was written through h since its commit
	if got := storedContent(t, svc, b, a.Ino); string(got) != "written elsewhere" {
		t.Fatalf("after recovery the current version is %q, want the other client's %q", got, "written elsewhere")
	}
}

// The journal's header names the base version; when acquire moves a clean
// file with a live stage to a newer version, the header is not updated,
// and recovery replays the writes over the old version.
func TestJournalFollowsReopen(t *testing.T) {
	b, svc, fsys, cache := newCrashable(t)
	a := create(t, fsys, "f", "aaaaaaaaaa")
	h1 := openWrite(t, fsys, a.Ino, os.O_RDWR, "b")
	if err := h1.Flush(ctx); err != nil { // stage stays, journal base = v2
		t.Fatal(err)
	}
	writeElsewhere(t, b, a.Ino, "0123456789abcdefghij") // v3
	// A new open here sees v3 (close-to-open) ...
	h2 := mustOpen(t, fsys, a.Ino, os.O_RDWR)
	writeAt(t, h2, []byte("Z"), 1)
	want := "0Z23456789abcdefghij"
	if got := readAll(t, h2); string(got) != want {
		t.Fatalf("before the crash the file reads %q, want %q", got, want)
	}
	remountAfterCrash(t, fsys, b, cache)
	if got := storedContent(t, svc, b, a.Ino); string(got) != want {
		t.Fatalf("after recovery the server holds %q, want %q (what the app wrote and read back)", got, want)
	}
}

// A file whose commit failed at release stays open in the mount: a later
// open builds on what was written, and a later close commits, so the next
// mount has nothing stale to commit over it.
func TestFailedReleaseStaysOpen(t *testing.T) {
	b := &failing{Backend: newLocal(t)}
	cache := t.TempDir()
	fsys := openFS(t, b, vfs.Options{CacheDir: cache})
	a := create(t, fsys, "f", "v1")
	h, _ := fsys.Open(ctx, a.Ino, os.O_WRONLY)
	h.Write(ctx, []byte("old edit"), 0)
	b.fail.Store(true)
	h.Flush(ctx)
	_ = h.Release(ctx) // fails: kept for the next mount
	b.fail.Store(false)
	r, _ := fsys.Open(ctx, a.Ino, os.O_RDWR)
	seen := readAll(t, r)
	t.Logf("reopened in the same mount, the file reads %q", seen)
	r.Write(ctx, []byte("NEWEST, acknowledged"), 0)
	release(t, r)
	fsys.Close(ctx)
	fsys2 := openFS(t, b, vfs.Options{CacheDir: cache})
	defer fsys2.Close(ctx)
	rh, _ := fsys2.Open(ctx, a.Ino, os.O_RDONLY)
	got := readAll(t, rh)
	rh.Release(ctx)
	if !bytes.Equal(got, []byte("NEWEST, acknowledged")) {
		t.Fatalf("after the next mount the file reads %q; the last acknowledged close wrote %q", got, "NEWEST, acknowledged")
	}
}

// TestRecoveryConflictCopy: a stage left by a crash, based on a version
// another client has since replaced, is committed beside the file as a
// conflict copy; the other client's version stays current.
func TestRecoveryConflictCopy(t *testing.T) {
	b, svc, fsys, cache := newCrashable(t)
	a := create(t, fsys, "report.txt", "base content")
	openWrite(t, fsys, a.Ino, os.O_RDWR, "MINE")
	writeElsewhere(t, b, a.Ino, "theirs")
	fsys2 := remountAfterCrash(t, fsys, b, cache)
	if got := storedContent(t, svc, b, a.Ino); string(got) != "theirs" {
		t.Fatalf("the file holds %q, want the other client's version", got)
	}
	es, err := fsys2.ReadDir(ctx, fsys2.Root())
	if err != nil {
		t.Fatal(err)
	}
	var copies []string
	for _, e := range es {
		if strings.HasPrefix(e.Name, "report.txt (conflict ") {
			copies = append(copies, e.Name)
			if got := storedContent(t, svc, b, e.Attr.Ino); string(got) != "MINE content" {
				t.Errorf("the conflict copy holds %q", got)
			}
		}
	}
	if len(copies) != 1 {
		t.Fatalf("conflict copies: %q in %v", copies, es)
	}
}
