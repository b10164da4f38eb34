package vfs

import (
	"testing"
	"time"
)

// A file open here at a version newer than an entry read of it (a
// reader's open saw another client's commit; the entry came from a
// read sent before it) shows the open version's size, not the older
// one's: the kernel would otherwise serve a read past the end of the
// open version as zeros.
func TestOverlayShowsOpenVersion(t *testing.T) {
	f := &openFile{id: 5, init: true, version: 10, size: 10, limit: 10}
	old := time.Unix(1000, 0)
	a := Attr{Size: 300_009, Alloc: 300_009, MTime: old}
	f.overlay(&a, 9)
	if a.Size != 10 || a.Alloc > 10 {
		t.Fatalf("attr of version 9 over an open of version 10: size %d, alloc %d; want 10 and at most 10", a.Size, a.Alloc)
	}
	if !a.MTime.Equal(old) {
		t.Fatalf("mtime %v; want the entry's, %v (the open knows none)", a.MTime, old)
	}
	// An entry as new as the open version is shown as it is.
	a = Attr{Size: 10, Alloc: 10, MTime: old}
	f.overlay(&a, 10)
	if a.Size != 10 || !a.MTime.Equal(old) {
		t.Fatalf("attr of the open version changed: %+v", a)
	}
}
