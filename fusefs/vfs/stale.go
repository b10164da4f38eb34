package vfs

import (
	"context"
	"fmt"
	"sync"
	"syscall"

	"github.com/dfms/dfms"
)

// openedEntry returns entry id as an open of it must see it: as the
// server has it now (close-to-open: another client's version committed
// before this open is the one it reads, though the metadata cache has not
// heard of it yet), unless this mount's state of it is the truth (a file
// created here and not on the server yet, unlinked here, or changed
// here) or the server cannot be reached (the cache answers). An entry
// that is not live any more (deleted or replaced elsewhere since the
// kernel looked its name up) fails with ESTALE, and its name leaves the
// cache: the kernel looks the name up again and opens what it names now
// (or creates it), where opening the inode it held would read a deleted
// file, or write to one and lose what is written (package fusefs checks
// the names the kernel holds against the entry's for the same reason).
// Not if this mount deleted or replaced it itself: its kernel knows, and
// an open that looked the name up just before opens the file as on a
// local disk (a second ESTALE, after the kernel's retry, would reach the
// application).
func (fsys *FS) openedEntry(ctx context.Context, id dfms.EntryID) (Entry, error) {
	const op dfms.Op = "vfs.Open"
	if e, ok := fsys.pendingEntry(id); ok {
		return e, nil
	}
	if e, ok := fsys.removedEntry(id); ok {
		return e, nil
	}
	if fsys.changedHere(id) || fsys.mc.isOffline() {
		return fsys.getEntry(ctx, id)
	}
	g := fsys.mc.begin()
	e, err := fsys.b.GetAttr(WithoutWait(ctx), id)
	switch {
	case dfms.Is(err, dfms.NotExist) && fsys.gone.has(id):
		return Entry{}, err
	case dfms.Is(err, dfms.NotExist):
		fsys.mc.drop(id)
		return Entry{}, errStale(op, id)
	case dfms.Is(err, dfms.Unavailable):
		// The server cannot be reached: nothing changes through it
		// meanwhile, and the cache answers (or a request that waits).
		return fsys.getEntry(ctx, id)
	case err != nil:
		return Entry{}, err
	}
	fsys.mc.put(g, e)
	if !e.Live && e.Kind == dfms.KindFile && !fsys.gone.has(id) {
		return Entry{}, errStale(op, id)
	}
	return e, nil
}

// errStale says that entry id is gone since the kernel looked its name
// up: kind NotExist, and ESTALE for the kernel (fusefs.Errno).
func errStale(op dfms.Op, id dfms.EntryID) error {
	return dfms.E(op, dfms.NotExist, fmt.Errorf("entry %d was deleted or replaced since its name was looked up: %w", id, syscall.ESTALE))
}

// changedHere reports whether file id has changes here that the server
// does not have yet.
func (fsys *FS) changedHere(id dfms.EntryID) bool {
	fsys.mu.Lock()
	f := fsys.open[id]
	fsys.mu.Unlock()
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unsettledLocked()
}

// goneHere remembers the files this mount deleted or replaced lately, a
// bounded number, newest kept.
type goneHere struct {
	mu   sync.Mutex
	ids  map[dfms.EntryID]struct{}
	ring [maxGone]dfms.EntryID // the ids, oldest at next once full
	next int
	n    int
}

// maxGone bounds the files goneHere remembers: an open racing with its
// file's deletion here comes within moments of it.
const maxGone = 4096

func (g *goneHere) add(id dfms.EntryID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ids == nil {
		g.ids = map[dfms.EntryID]struct{}{}
	}
	if _, ok := g.ids[id]; ok {
		return
	}
	if g.n == maxGone {
		delete(g.ids, g.ring[g.next])
	} else {
		g.n++
	}
	g.ids[id] = struct{}{}
	g.ring[g.next] = id
	g.next = (g.next + 1) % maxGone
}

func (g *goneHere) has(id dfms.EntryID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.ids[id]
	return ok
}

// knownFile returns the id of the file named name in dir as this mount
// knows it without asking the backend (a file created here, or cached).
func (fsys *FS) knownFile(dir dfms.EntryID, name string) (dfms.EntryID, bool) {
	if e, ok := fsys.pendingLookup(dir, name); ok {
		return e.ID, e.Kind == dfms.KindFile
	}
	if e, ok, _ := fsys.mc.lookup(dir, name); ok {
		return e.ID, e.Kind == dfms.KindFile
	}
	return 0, false
}
