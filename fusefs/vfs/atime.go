package vfs

import (
	"context"
	"sync"
	"time"

	"github.com/dfms/dfms"
)

// Access times follow relatime, as Linux mounts by default: a read moves
// a file's atime only if the atime is not later than its mtime or ctime
// (so that a reader can tell a file was read since it changed), or is a
// day old. Reads do not wait for it: the first read of each open queues
// the file, and the queue is sent within accessDelay (or at FS.Sync and
// Close), one SetAttr with Accessed per file, which moves neither the
// ctime nor anyone's caches. The queue is bounded: past accessMax files,
// reads record nothing until it is sent (an atime is advisory).
const (
	accessDelay = time.Second
	accessMax   = 4096
	// relatimeAge is how old an atime may grow before a read moves it.
	relatimeAge = 24 * time.Hour
)

type accesses struct {
	mu      sync.Mutex
	reads   map[dfms.EntryID]time.Time // file: when a read found it
	timer   *time.Timer
	closed  bool
	running sync.WaitGroup // the timer's sends
}

// relatimeDue reports whether a read at now moves atime, as relatime
// says.
func relatimeDue(atime, mtime, ctime, now time.Time) bool {
	return !atime.After(mtime) || !atime.After(ctime) || now.Sub(atime) >= relatimeAge
}

// accessed records that a handle read file id (the first read of that
// open). A file this mount knows needs no new atime is not queued.
func (fsys *FS) accessed(id dfms.EntryID) {
	if fsys.isPending(id) {
		return // made here, just now: its atime is its create's
	}
	now := time.Now()
	if e, ok := fsys.mc.get(id); ok && !relatimeDue(e.ATime, e.MTime, e.CTime, now) {
		return
	}
	a := &fsys.access
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || len(a.reads) >= accessMax {
		return
	}
	if _, ok := a.reads[id]; ok {
		return
	}
	if a.reads == nil {
		a.reads = map[dfms.EntryID]time.Time{}
	}
	a.reads[id] = now
	if a.timer == nil {
		a.timer = time.AfterFunc(accessDelay, func() {
			a.mu.Lock()
			if a.closed {
				a.mu.Unlock()
				return
			}
			a.running.Add(1)
			a.mu.Unlock()
			defer a.running.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			fsys.flushAccesses(ctx)
		})
	}
}

// flushAccesses sends the queued reads' atimes to the backend. A failure
// is logged: the atime is advisory.
func (fsys *FS) flushAccesses(ctx context.Context) {
	a := &fsys.access
	a.mu.Lock()
	reads := a.reads
	a.reads = nil
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.mu.Unlock()
	for id, at := range reads {
		e, err := fsys.getEntry(ctx, id)
		if err != nil || !e.Live || !relatimeDue(e.ATime, e.MTime, e.CTime, at) {
			continue
		}
		_, err = fsys.b.SetAttr(ctx, id, SetAttr{ATime: &at, Accessed: true})
		fsys.mc.drop(id)
		if err != nil && !dfms.Is(err, dfms.NotExist) {
			fsys.log.Warn("could not record a read's access time", "entry", id, "err", err)
		}
	}
}

// closeAccesses sends what is queued and stops queueing.
func (fsys *FS) closeAccesses(ctx context.Context) {
	a := &fsys.access
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.running.Wait()
	fsys.flushAccesses(ctx)
}
