package vfs

import "github.com/dfms/dfms"

// Crash drops the FS as a killed mount would: nothing is committed, the
// stages and journals stay on disk, and the cache directory is released.
func (fsys *FS) Crash() {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	for _, f := range fsys.open {
		f.mu.Lock()
		if f.stage != nil {
			f.stage.Close()
			f.journal.close()
		}
		f.mu.Unlock()
	}
	fsys.open = map[dfms.EntryID]*openFile{}
	fsys.lock.Close()
}
