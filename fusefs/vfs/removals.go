package vfs

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/dfms/dfms"
)

// Deferred unlinks. Over a backend that trashes files in batches
// (Trasher, the in-process one), unlink(2) of a file or symlink does not
// wait for the backend either: the name is gone for this mount at once
// (lookup fails, readdir skips it, an open file's link count is 0), the
// removal is appended to a log in the cache directory, and a remover
// trashes what was unlinked in one transaction every few milliseconds.
// Before anything else reaches the backend's namespace (a create, mkdir,
// rename or rmdir, FS.Sync, unmount) the removals so far are made first,
// so that the backend sees this mount's changes in the order they were
// made. Others see the name go when its removal is made. A crash of the
// mount leaves the log: the next mount trashes what it names. The log
// names only the removals not made yet: after each batch it is rewritten
// (a new file renamed over it) with those logged since, so that a crash
// never makes an old removal again (a file restored from the trash since
// stays restored). Only a crash between a batch and that rewrite makes
// the batch's removals a second time.

const (
	removalsLog    = "removals"
	removalsLinger = 20 * time.Millisecond
	// removalsMax bounds the removals waiting: past it, unlink makes
	// them itself.
	removalsMax = 4096
	recRemove   = 'R' // entry id, unix nanoseconds of the unlink
)

// Trasher is implemented by backends that trash a batch of entries at
// once (Local): the mount then defers unlinks (removals.go).
type Trasher interface {
	// TrashFiles moves each of ids to the trash, as unlinked at the
	// matching time of at (its directory's times move up to it, not
	// back); one that fails (NotExist if it is not live) does not stop
	// the others. The error is for the whole batch.
	TrashFiles(ctx context.Context, ids []dfms.EntryID, at []time.Time) ([]error, error)
}

type removals struct {
	tr   Trasher
	path string

	mu  sync.Mutex
	log *os.File // appended to before an unlink is answered
	end int64    // the size of log: where the next record goes
	// stale says log may name removals made already, or end in a torn
	// record (a failed rewrite or append): unlinks go to the backend
	// until the next flush rewrites it.
	stale  bool
	byName map[nameKey]dfms.EntryID
	byID   map[dfms.EntryID]Entry // as they were when unlinked
	wake   chan struct{}
	linger time.Duration // removalsLinger; longer in tests

	flushMu sync.Mutex // one flush at a time
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
}

// openRemovals makes the removals a crashed mount logged, then starts the
// remover. It returns nil if the backend cannot trash in batches.
func (fsys *FS) openRemovals(ctx context.Context) (*removals, error) {
	tr, ok := fsys.b.(Trasher)
	if !ok {
		return nil, nil
	}
	path := filepath.Join(filepath.Dir(fsys.stageDir), removalsLog)
	if b, err := os.ReadFile(path); err == nil {
		var ids []dfms.EntryID
		var at []time.Time
		for p := b; len(p) >= recordLen; p = p[recordLen:] {
			if p[0] == recRemove {
				ids = append(ids, dfms.EntryID(binary.LittleEndian.Uint64(p[1:])))
				at = append(at, time.Unix(0, int64(binary.LittleEndian.Uint64(p[9:]))))
			}
		}
		if len(ids) > 0 {
			errs, err := tr.TrashFiles(ctx, ids, at)
			if err != nil {
				return nil, err // the log stays for the next mount
			}
			for i, err := range errs {
				if err != nil && !dfms.Is(err, dfms.NotExist) {
					fsys.log.Warn("a file unlinked before the last unmount could not be trashed", "entry", ids[i], "err", err)
				}
			}
			fsys.log.Info("trashed files unlinked before the last unmount", "files", len(ids))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	r := &removals{tr: tr, path: path, log: f, byName: map[nameKey]dfms.EntryID{}, byID: map[dfms.EntryID]Entry{}, linger: removalsLinger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go fsys.remover(r)
	return r, nil
}

// remover makes the logged removals shortly after they were logged.
func (fsys *FS) remover(r *removals) {
	defer close(r.done)
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		}
		select {
		case <-r.stop:
			return
		case <-time.After(r.lingerTime()): // let a burst (rm -r) gather
		}
		if err := fsys.flushRemovals(context.Background()); err != nil {
			fsys.log.Error("unlinked files could not be trashed on the server; retrying", "err", err)
			select {
			case <-r.stop:
				return
			case <-time.After(time.Second):
			}
			r.signal()
		}
	}
}

func (r *removals) lingerTime() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.linger
}

func (r *removals) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// closeRemovals makes the removals left and stops the remover.
func (fsys *FS) closeRemovals(ctx context.Context) error {
	r := fsys.rm
	if r == nil {
		return nil
	}
	var err error
	r.closing.Do(func() {
		close(r.stop)
		<-r.done
		err = fsys.flushRemovals(ctx)
		r.mu.Lock()
		r.log.Close()
		r.mu.Unlock()
	})
	return err
}

// removed reports whether file id was unlinked here and is not trashed
// on the backend yet; e is the entry as it was.
func (fsys *FS) removedEntry(id dfms.EntryID) (Entry, bool) {
	r := fsys.rm
	if r == nil {
		return Entry{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byID[id]
	return e, ok
}

// removedIn returns the files unlinked here from directory dir and not
// trashed on the backend yet.
func (fsys *FS) removedIn(dir dfms.EntryID) map[dfms.EntryID]bool {
	out := map[dfms.EntryID]bool{}
	r := fsys.rm
	if r == nil {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.byID {
		if e.Parent == dir {
			out[id] = true
		}
	}
	return out
}

// removedName reports whether dir/name was unlinked here and is not
// trashed on the backend yet.
func (fsys *FS) removedName(dir dfms.EntryID, name string) bool {
	r := fsys.rm
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.byName[nameKey{dir, name}]
	return ok
}

// unlinkDeferred unlinks file or symlink e (named dir/name) here and logs
// its removal for the remover. ok false says the caller unlinks through
// the backend.
func (fsys *FS) unlinkDeferred(ctx context.Context, e Entry) (bool, error) {
	r := fsys.rm
	if r == nil {
		return false, nil
	}
	now := time.Now()
	r.mu.Lock()
	if r.stale {
		r.mu.Unlock()
		r.signal() // the remover rewrites the log
		return false, nil
	}
	if _, err := r.log.Write(appendRecord(make([]byte, 0, recordLen), recRemove, int64(e.ID), now.UnixNano())); err != nil {
		// A torn record would garble the ones appended after it.
		if terr := r.log.Truncate(r.end); terr != nil {
			r.stale = true
		}
		r.mu.Unlock()
		fsys.log.Warn("the log of removals cannot be written; unlinking on the server", "err", err)
		return false, nil // the backend then
	}
	r.end += recordLen
	r.byName[nameKey{e.Parent, e.Name}] = e.ID
	e.Live, e.CTime = false, now // CTime: when it was unlinked
	r.byID[e.ID] = e
	n := len(r.byID)
	r.mu.Unlock()
	fsys.dirTouched(e.Parent, now)
	if n >= removalsMax {
		// Made here, to bound the backlog; the unlink itself is done
		// (logged), so a failure is the remover's to retry.
		if err := fsys.flushRemovals(ctx); err != nil {
			fsys.log.Warn("unlinked files could not be trashed on the server yet; retrying", "err", err)
			r.signal()
		}
	}
	r.signal()
	return true, nil
}

// flushRemovals trashes on the backend what was unlinked here so far.
func (fsys *FS) flushRemovals(ctx context.Context) error {
	r := fsys.rm
	if r == nil {
		return nil
	}
	r.mu.Lock()
	idle := len(r.byID) == 0 && !r.stale
	r.mu.Unlock()
	if idle {
		return nil
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	es := make([]Entry, 0, len(r.byID))
	ids := make([]dfms.EntryID, 0, len(r.byID))
	at := make([]time.Time, 0, len(r.byID))
	for id, e := range r.byID {
		es = append(es, e)
		ids = append(ids, id)
		at = append(at, e.CTime)
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.rewriteLocked()
	}
	errs, err := r.tr.TrashFiles(ctx, ids, at)
	if err == nil && len(errs) != len(ids) {
		err = errors.New("trash results do not match the files")
	}
	if err != nil {
		return err
	}
	var failed error
	for i, e := range es {
		if errs[i] != nil && !dfms.Is(errs[i], dfms.NotExist) {
			fsys.log.Warn("an unlinked file could not be trashed on the server", "entry", e.ID, "err", errs[i])
			failed = errs[i]
		}
		// The cache forgets it before the name stops being masked.
		fsys.mc.removed(e.Parent, e.Name)
		fsys.mc.drop(e.ID)
	}
	r.mu.Lock()
	for _, e := range es {
		delete(r.byID, e.ID)
		if k := (nameKey{e.Parent, e.Name}); r.byName[k] == e.ID {
			delete(r.byName, k)
		}
	}
	werr := r.rewriteLocked()
	r.mu.Unlock()
	if werr != nil {
		fsys.log.Error("the log of removals could not be rewritten; unlinks go to the server until it is", "err", werr)
		return errors.Join(failed, werr)
	}
	return failed
}

// rewriteLocked makes the log name exactly the removals not made yet
// (byID): emptied if there are none, otherwise replaced, through a new
// file renamed over it, so that a crash finds either log whole. On
// failure the log is stale (it may name removals made already) until a
// later rewrite succeeds.
func (r *removals) rewriteLocked() error {
	if len(r.byID) == 0 {
		if err := r.log.Truncate(0); err != nil {
			r.stale = true
			return err
		}
		r.end, r.stale = 0, false
		return nil
	}
	es := make([]Entry, 0, len(r.byID))
	for _, e := range r.byID {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b Entry) int { return a.CTime.Compare(b.CTime) }) // in the order unlinked
	b := make([]byte, 0, len(es)*recordLen)
	for _, e := range es {
		b = appendRecord(b, recRemove, int64(e.ID), e.CTime.UnixNano())
	}
	tmp := r.path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err == nil {
		if _, err = f.Write(b); err == nil {
			err = os.Rename(tmp, r.path)
		}
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}
	if err != nil {
		r.stale = true
		return err
	}
	r.log.Close()
	r.log, r.end, r.stale = f, int64(len(b)), false
	return nil
}
