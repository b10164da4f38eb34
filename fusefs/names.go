package fusefs

import (
	"sync"
	"time"

	"github.com/dfms/dfms/fusefs/vfs"
)

// kernelName is a name in a directory, as the kernel holds it.
type kernelName struct {
	dir  vfs.Ino
	name string
}

// kernelNames holds, per file the kernel knows, the names it was given
// for it (lookups, creates, renames through the mount). The kernel opens
// a file by a name it holds, and FUSE's OPEN does not say which: if
// another client renamed the file away from one of them, an open by that
// name would open (and with O_TRUNC truncate) the renamed file. So a name
// found stale is dropped from the kernel (NotifyEntry): when a lookup
// finds the file under another name, in the background (the lookup's
// directory is locked by the kernel meanwhile), and an open waits for
// that; when an open finds the file renamed (the server's entry) with no
// lookup of the new name, the open drops it and fails with ESTALE, so
// that the kernel walks the path again. Files the kernel forgot leave
// (node.OnForget).
type kernelNames struct {
	mu    sync.Mutex
	files map[vfs.Ino]map[kernelName]chan struct{} // name → closed once dropped from the kernel (nil: current)
}

// looked records that the kernel looked file ino up as k, and returns
// the other names it holds for it, now being dropped: the caller drops
// them from the kernel, then calls dropped.
func (kn *kernelNames) looked(ino vfs.Ino, k kernelName) (stale []kernelName) {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	if kn.files == nil {
		kn.files = map[vfs.Ino]map[kernelName]chan struct{}{}
	}
	names := kn.files[ino]
	if names == nil {
		names = map[kernelName]chan struct{}{}
		kn.files[ino] = names
	}
	for old, dropping := range names {
		if old != k && dropping == nil {
			names[old] = make(chan struct{})
			stale = append(stale, old)
		}
	}
	if ch := names[k]; ch != nil {
		close(ch) // looked up again: current after all
	}
	names[k] = nil
	return stale
}

// dropped records that the kernel dropped names of file ino.
func (kn *kernelNames) dropped(ino vfs.Ino, ks []kernelName) {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	names := kn.files[ino]
	for _, k := range ks {
		if ch := names[k]; ch != nil {
			close(ch)
			delete(names, k)
		}
	}
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
	if ch := names[from]; ch != nil {
		close(ch)
	}
	delete(names, from)
	if to != nil {
		if ch := names[*to]; ch != nil {
			close(ch)
		}
		names[*to] = nil
	}
}

// stale sorts the names the kernel holds for file ino other than cur:
// those being dropped already (wait for them), and the others, now being
// dropped by the caller (it calls dropped).
func (kn *kernelNames) stale(ino vfs.Ino, cur kernelName) (drop []kernelName, wait []chan struct{}) {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	for k, dropping := range kn.files[ino] {
		switch {
		case k == cur:
		case dropping != nil:
			wait = append(wait, dropping)
		default:
			kn.files[ino][k] = make(chan struct{})
			drop = append(drop, k)
		}
	}
	return drop, wait
}

// forget drops what is held of file ino.
func (kn *kernelNames) forget(ino vfs.Ino) {
	kn.mu.Lock()
	defer kn.mu.Unlock()
	for _, ch := range kn.files[ino] {
		if ch != nil {
			close(ch)
		}
	}
	delete(kn.files, ino)
}

// staleWait bounds how long an open waits for the kernel to drop a stale
// name (it waits for the lock of the name's directory): past it, the open
// fails with ESTALE and the kernel retries.
const staleWait = time.Second
