package vfs_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/server/files"
)

// kernelFile models the Linux FUSE client's page cache of one file as the
// mount runs it (no writeback cache): a write copies its bytes into the
// cached pages first and sends WRITE after, so the pages hold them before
// the FS does; an open the FS answers without KeepCache drops every page
// (invalidate_inode_pages2), whatever a write in flight put there; a read
// of a page not cached sends READ for the whole page, zero-fills what the
// answer lacks and caches it.
type kernelFile struct {
	t     *testing.T
	fsys  *vfs.FS
	ino   vfs.Ino
	pages map[int64][]byte // by page number
}

const pageSize = 4096

func (k *kernelFile) open(flags int) *vfs.Handle {
	k.t.Helper()
	h, err := k.fsys.Open(ctx, k.ino, flags)
	if err != nil {
		k.t.Fatal(err)
	}
	if flags&os.O_TRUNC != 0 {
		clear(k.pages) // truncate_pagecache(inode, 0)
	} else if !h.KeepCache {
		clear(k.pages)
	}
	return h
}

// copyIn is the first half of a write(2): its bytes go into the pages
// cached; the caller sends the WRITE (Handle.Write) when it likes.
func (k *kernelFile) copyIn(p []byte, off int64) {
	for len(p) > 0 {
		n, in := off/pageSize, off%pageSize
		m := min(int64(len(p)), pageSize-in)
		if pg, ok := k.pages[n]; ok {
			copy(pg[in:], p[:m])
		}
		p, off = p[m:], off+m
	}
}

// read reads size bytes from offset 0 through the pages, as read(2) of
// the file through h does.
func (k *kernelFile) read(h *vfs.Handle, size int64) []byte {
	k.t.Helper()
	var out []byte
	for n := int64(0); n*pageSize < size; n++ {
		pg, ok := k.pages[n]
		if !ok {
			pg = make([]byte, pageSize)
			if _, err := h.Read(ctx, pg, n*pageSize); err != nil {
				k.t.Fatal(err)
			}
			k.pages[n] = pg
		}
		out = append(out, pg[:min(pageSize, size-n*pageSize)]...)
	}
	return out
}

// writing is a writer of a kernelFile: what it wrote, and its descriptor.
type writing struct {
	k       *kernelFile
	w       *vfs.Handle
	appends bool
	content []byte
}

func (k *kernelFile) writer(flags int, content string) *writing {
	wr := &writing{k: k, w: k.open(flags), appends: flags&os.O_APPEND != 0, content: []byte(content)}
	if flags&os.O_TRUNC != 0 {
		wr.content = nil
	}
	return wr
}

// write copies p into the pages at off (the end with O_APPEND) and returns
// the WRITE, to send when the caller likes.
func (wr *writing) write(p []byte, off int64) (send func()) {
	if wr.appends {
		off = int64(len(wr.content))
	}
	if end := off + int64(len(p)); end > int64(len(wr.content)) {
		wr.content = append(wr.content, make([]byte, end-int64(len(wr.content)))...)
	}
	copy(wr.content[off:], p)
	wr.k.copyIn(p, off)
	return func() {
		if _, err := wr.w.Write(ctx, p, off); err != nil {
			wr.k.t.Fatal(err)
		}
	}
}

// reader opens the file, reads it whole and closes it, as cat does.
func (wr *writing) reader() {
	r := wr.k.open(os.O_RDONLY)
	wr.k.read(r, int64(len(wr.content)))
	r.Release(ctx)
}

// check reads the file back through the writer's descriptor.
func (wr *writing) check() {
	t := wr.k.t
	t.Helper()
	got := wr.k.read(wr.w, int64(len(wr.content)))
	if bytes.Equal(got, wr.content) {
		return
	}
	i := 0
	for i < len(got) && got[i] == wr.content[i] {
		i++
	}
	t.Fatalf("the writer reads back %q at %d, it wrote %q there: an open in the middle of its write dropped the pages that held it",
		got[i:min(i+5, len(got))], i, wr.content[i:min(i+5, len(wr.content))])
}

// TestOpenWhileWritingKeepsPages: an open of a file this mount is writing
// must let the kernel keep its pages. They hold what was written (all of
// it went through them), and a write's bytes are in them before its WRITE
// reaches the FS: if an open drops them and a read asks for them again
// before that WRITE is served, they are cached as they were before it, and
// the writer reads back zeros or old bytes where it wrote (TestUpStress:
// a reader's open(2) in the middle of a writer's write(2)).
func TestOpenWhileWritingKeepsPages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags int
	}{
		{"edit", os.O_RDWR},
		{"append", os.O_RDWR | os.O_APPEND},
		{"rewrite", os.O_RDWR | os.O_TRUNC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wr := newCachedWriter(t, newLocal(t), tc.flags)
			// A second write, whose WRITE is overtaken by another
			// reader's open and read.
			send := wr.write([]byte("22222"), 5000)
			wr.reader()
			send()
			wr.check()
		})
	}
}

// newCachedWriter mounts a write-back FS over b holding the committed
// file f, 10000 bytes, and returns a writer of f opened with flags that
// wrote to it; a reader read that write, so the pages are cached. The
// writer and the FS are closed when the test ends.
func newCachedWriter(t *testing.T, b vfs.Backend, flags int) *writing {
	t.Helper()
	fsys := newWriteBackFS(t, b, t.TempDir())
	t.Cleanup(func() { fsys.Close(ctx) })
	old := strings.Repeat("o", 10000)
	a := create(t, fsys, "f", old)
	fsys.WaitWriteBack()
	k := &kernelFile{t: t, fsys: fsys, ino: a.Ino, pages: map[int64][]byte{}}
	wr := k.writer(flags, old)
	t.Cleanup(func() { wr.w.Release(ctx) })
	// A first write, and a reader: the pages are cached.
	wr.write(bytes.Repeat([]byte("1"), 6000), 2000)()
	wr.reader()
	return wr
}

// TestOpenAfterCommitKeepsPages: the same when the file's changes were
// just committed (fsync) and the reader's open read the file's entry
// before that commit: the open sees the version committed, whose pages
// the kernel has, not the older one the entry names.
func TestOpenAfterCommitKeepsPages(t *testing.T) {
	b := &hooked{Backend: newLocal(t)}
	wr := newCachedWriter(t, b, os.O_RDWR)

	// The reader's open reads the entry; then the writer's fsync commits
	// and its next write is copied into the pages; then the open goes on,
	// and the reader reads before that WRITE is served.
	var send func()
	between := func() {
		if err := wr.w.Fsync(ctx); err != nil {
			t.Error(err)
		}
		send = wr.write([]byte("22222"), 5000)
	}
	b.hook.Store(&between)
	wr.reader()
	if send == nil {
		t.Fatal("the open did not read the entry")
	}
	send()
	wr.check()
}

// TestOpenAfterOwnCommitsReportedKeepsPages: the same after the change
// feed reported commits of this mount's: a report comes when a later
// commit may have been made, and must not make the kernel drop the pages
// of the version committed since.
func TestOpenAfterOwnCommitsReportedKeepsPages(t *testing.T) {
	l, svc := newLocalParams(t, chunking.Params{})
	b := &heldFeed{Backend: l, feed: make(chan struct{})}
	fsys := newWriteBackFS(t, b, t.TempDir())
	defer fsys.Close(ctx)
	seen := make(chan struct{}, 1)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fsys.Watch(wctx, func(chs []vfs.Change) {
			select {
			case seen <- struct{}{}:
			default:
			}
		})
	}()
	defer func() { stop(); <-done }()
	old := strings.Repeat("o", 10000)
	a := create(t, fsys, "f", old)
	fsys.WaitWriteBack()
	k := &kernelFile{t: t, fsys: fsys, ino: a.Ino, pages: map[int64][]byte{}}
	wr := k.writer(os.O_RDWR, old)
	defer wr.w.Release(ctx)
	// Two commits, both reported by the feed after the second.
	wr.write(bytes.Repeat([]byte("1"), 6000), 2000)()
	wr.reader()
	for range 2 {
		wr.write([]byte("f"), 0)()
		if err := wr.w.Fsync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A change made elsewhere after them: once the feed reports it, it
	// has reported them.
	close(b.feed)
	if _, err := svc.Write(ctx, files.WriteRequest{Owner: localUser(t, svc).ID, Parent: dfms.EntryID(fsys.Root()), Name: "elsewhere", Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("the change feed did not report the change made elsewhere")
	}

	send := wr.write([]byte("22222"), 5000)
	wr.reader()
	send()
	wr.check()
}
