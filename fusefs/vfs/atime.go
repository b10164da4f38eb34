package vfs

import (
	"context"
	"sync"
	"time"

	"github.com/dfms/dfms"
)

// Access times follow relatime, as Linux mounts by default: a read moves
// a file's atime only if the atime is not later than its mtime or ctime,
// or is a day old (dfms.RelatimeDue), so that most reads write nothing.
//
// A read never waits for it. The first read of an open of a file whose
// atime is due (as the open found it) records the time in a queue, which the FS shows at once (attrOf) and sends within
// accessDelay (and at Sync and Close): one SetAttr with Accessed per file,
// which the backend applies only if relatime still says so and which
// moves neither the ctime nor the change feed. The sends do not wait for
// an unreachable server (WithoutWait): what fails so stays queued for the
// next round. Nothing else of the mount changes with them: the metadata
// cache keeps its entry, with the new atime. The queue is bounded: past
// accessMax files, reads record nothing until it is sent (an atime is
// advisory, and never worth memory or a wait).
//
// The kernel serves reads of pages it holds without asking the mount:
// those move no atime (an open is not a read, and counting it as one
// would move the atime of a file only opened, which POSIX tools check).
const (
	accessDelay = time.Second
	accessMax   = 4096
)

type accesses struct {
	mu      sync.Mutex
	reads   map[dfms.EntryID]time.Time // file: when a read found it
	timer   *time.Timer
	closed  bool
	running sync.WaitGroup // the timer's sends
}

// accessed records that a handle read file id at now (the first read of
// that open). A file this mount knows needs no new atime is not queued.
func (fsys *FS) accessed(id dfms.EntryID) {
	if fsys.isPending(id) {
		return // made here, just now: its atime is its create's
	}
	now := time.Now()
	if e, ok := fsys.mc.get(id); ok && !dfms.RelatimeDue(e.ATime, e.MTime, e.CTime, now) {
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
	fsys.scheduleAccessesLocked()
}

// scheduleAccessesLocked starts the timer that sends the queue, if it is
// not running. The caller holds fsys.access.mu.
func (fsys *FS) scheduleAccessesLocked() {
	a := &fsys.access
	if a.timer != nil || a.closed || len(a.reads) == 0 {
		return
	}
	a.running.Add(1)
	a.timer = time.AfterFunc(accessDelay, func() {
		defer a.running.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		fsys.flushAccesses(ctx)
	})
}

// readAccessTime returns the access time a queued read gives entry id, if
// any.
func (fsys *FS) readAccessTime(id dfms.EntryID) (time.Time, bool) {
	a := &fsys.access
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.reads[id]
	return t, ok
}

// flushAccesses sends the queued reads' atimes to the backend, without
// waiting for an unreachable server: those stay queued, and are tried
// again later. Other failures are logged and dropped: the atime is
// advisory.
func (fsys *FS) flushAccesses(ctx context.Context) {
	a := &fsys.access
	a.mu.Lock()
	if a.timer != nil {
		if a.timer.Stop() {
			a.running.Done() // else it fired, and its send has its own
		}
		a.timer = nil
	}
	reads := a.reads
	a.reads = nil
	a.mu.Unlock()
	var again map[dfms.EntryID]time.Time
	for id, at := range reads {
		e, err := fsys.b.SetAttr(WithoutWait(ctx), id, dfms.SetAttr{ATime: &at, Accessed: true})
		switch {
		case err == nil:
			fsys.mc.accessed(id, e.ATime)
		case dfms.Is(err, dfms.Unavailable):
			if again == nil {
				again = map[dfms.EntryID]time.Time{}
			}
			again[id] = at
		case !dfms.Is(err, dfms.NotExist):
			fsys.log.Warn("could not record a read's access time", "entry", id, "err", err)
		}
	}
	if len(again) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reads == nil {
		a.reads = map[dfms.EntryID]time.Time{}
	}
	for id, at := range again {
		if _, ok := a.reads[id]; !ok && len(a.reads) < accessMax {
			a.reads[id] = at
		}
	}
	fsys.scheduleAccessesLocked()
}

// closeAccesses sends what is queued and stops queueing.
func (fsys *FS) closeAccesses(ctx context.Context) {
	a := &fsys.access
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	fsys.flushAccesses(ctx)
	a.running.Wait()
}
