package fusefs

import (
	"sync"

	"github.com/dfms/dfms/fusefs/vfs"
)

// kernelName is a name in a directory, as the kernel holds it.
type kernelName struct {
	dir  vfs.Ino
	name string
}

// kernelNames holds, per file the kernel knows, the names it was given
// for it (lookups, creates, renames through the mount): an open checks
// them against the file's name on the server, since the kernel opens a
// file by a name it holds, which another client may have renamed it away
// from since (node.staleName). A name found stale stays, marked, until
// the kernel looks the file up by a name again. Files the kernel forgot
// leave (node.OnForget).
type kernelNames struct {
	mu    sync.Mutex
	files map[vfs.Ino]map[kernelName]bool // name → found stale
}

// looked records that the kernel looked file ino up as k: it walked a
// path to it again, so the stale names it was told to drop are gone.
func (kn *kernelNames) looked(ino vfs.Ino, k kernelName) {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	if kn.files == nil {
		kn.files = map[vfs.Ino]map[kernelName]bool{}
	}
	names := kn.files[ino]
	if names == nil {
		names = map[kernelName]bool{}
		kn.files[ino] = names
	}
	for old, stale := range names {
		if stale {
			delete(names, old)
		}
	}
	names[k] = false
}

// renamed records that the kernel moved file ino's name from to (nil: it
// removed it), as it does for renames and unlinks through the mount.
func (kn *kernelNames) renamed(ino vfs.Ino, from kernelName, to *kernelName) {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	names := kn.files[ino]
	if names == nil {
		return
	}
	delete(names, from)
	if to != nil {
		names[*to] = false
	}
}

// stale reports whether the kernel may hold a name for file ino other
// than cur, and returns those it was not told to drop yet (now marked).
func (kn *kernelNames) stale(ino vfs.Ino, cur kernelName) (notify []kernelName, stale bool) {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	for k, found := range kn.files[ino] {
		if k == cur {
			continue
		}
		stale = true
		if !found {
			kn.files[ino][k] = true
			notify = append(notify, k)
		}
	}
	return notify, stale
}

// forget drops what is held of file ino.
func (kn *kernelNames) forget(ino vfs.Ino) {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	delete(kn.files, ino)
}
