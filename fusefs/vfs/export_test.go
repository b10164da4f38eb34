package vfs

import (
	"time"

	"github.com/dfms/dfms"
)

// Crash drops the FS as a killed mount would: nothing is committed, the
// stages and journals stay on disk, and the cache directory is released.
func (fsys *FS) Crash() {
	if fsys.wb != nil {
		fsys.wb.cancel() // commits in flight fail
		fsys.wb.close()
	}
	if r := fsys.rm; r != nil { // nothing logged is made
		r.closing.Do(func() {
			close(r.stop)
			<-r.done
			r.mu.Lock()
			r.log.Close()
			r.mu.Unlock()
		})
	}
	fsys.mu.Lock()
	var files []*openFile
	for _, f := range fsys.open {
		files = append(files, f)
	}
	fsys.open = map[dfms.EntryID]*openFile{}
	fsys.mu.Unlock()
	for _, f := range files {
		f.mu.Lock()
		if f.stage != nil {
			f.stage.Close()
			f.journal.close()
		}
		f.mu.Unlock()
	}
	fsys.lock.Close()
}

// WaitWorkers waits for the background pre-cut workers (a test's temporary
// directories must not be removed under them).
func (fsys *FS) WaitWorkers() { fsys.workers.Wait() }

// MetaCacheHas reports whether the metadata cache holds the entry of ino.
func MetaCacheHas(fsys *FS, ino Ino) bool {
	_, ok := fsys.mc.get(ino.entry())
	return ok
}

// MetaCacheOn reports whether the metadata cache is in use.
func MetaCacheOn(fsys *FS) bool {
	fsys.mc.mu.Lock()
	defer fsys.mc.mu.Unlock()
	return fsys.mc.on
}

// WaitWriteBack waits until the write-back has no file queued, being
// committed or waiting for a retry: what it was given is done.
func (fsys *FS) WaitWriteBack() {
	w := fsys.wb
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.queued) > 0 || w.retrying > 0 {
		w.cond.Wait()
	}
}

// OnMaterializing makes fn run when a materialization of pending files
// begins, before it takes their names.
func (fsys *FS) OnMaterializing(fn func()) {
	fsys.pend.matMu.Lock()
	defer fsys.pend.matMu.Unlock()
	fsys.pend.testMaterializing = fn
}

// HoldRemovals makes the remover wait an hour after an unlink instead of
// removalsLinger: removals are made only by what needs them made.
func (fsys *FS) HoldRemovals() {
	fsys.rm.mu.Lock()
	defer fsys.rm.mu.Unlock()
	fsys.rm.linger = time.Hour
}

// HasOpenState reports whether the FS holds open state for file ino (it
// is open, or closed and not retired yet).
func (fsys *FS) HasOpenState(ino Ino) bool {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.open[ino.entry()] != nil
}
