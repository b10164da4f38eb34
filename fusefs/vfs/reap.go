package vfs

import (
	"os"
	"sync"
)

// Reaping: the stage and journal of a committed file are removed in the
// background, so that a committer goes on to its next batch instead of
// waiting for two unlinks a file (on a busy disk, as long as the commit
// itself for small files). A crash before they are gone leaves a journal
// whose last commit the backend made already: it names that commit's ID,
// so the next mount's recovery sends it again and is answered with the
// version made (Commit.CommitID), which changes nothing.
//
// Close waits for the reaper, so a mount leaves no committed stage behind.

// reapMax bounds the paths waiting: past it, the caller removes its own.
const reapMax = 4096

type reaper struct {
	mu      sync.Mutex
	paths   []string
	closed  bool
	wake    chan struct{} // a path was added, or Close
	stopped chan struct{} // the reaper ended
}

func newReaper() *reaper {
	r := &reaper{wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go r.run()
	return r
}

// remove has paths removed, in the background unless the reaper is
// closed or full.
func (r *reaper) remove(paths ...string) {
	r.mu.Lock()
	if r.closed || len(r.paths)+len(paths) > reapMax {
		r.mu.Unlock()
		for _, p := range paths {
			os.Remove(p)
		}
		return
	}
	r.paths = append(r.paths, paths...)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reaper) run() {
	defer close(r.stopped)
	for range r.wake {
		for {
			r.mu.Lock()
			paths, closed := r.paths, r.closed
			r.paths = nil
			r.mu.Unlock()
			if len(paths) == 0 {
				if closed {
					return
				}
				break
			}
			for _, p := range paths {
				os.Remove(p)
			}
		}
	}
}

// close removes what is waiting and stops the reaper; later removals
// are made by their callers.
func (r *reaper) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.stopped
		return
	}
	r.closed = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	<-r.stopped
}
