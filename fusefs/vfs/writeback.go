package vfs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dfms/dfms"
)

// Write-back: with Options.WriteBack, close(2) does not wait for the
// commit of what was written. The last release of a changed file puts it
// on a queue, and a few committers upload and commit queued files in the
// background, in the order they were closed. Until its commit a queued
// file stays in fsys.open with its stage and journal, so this mount keeps
// seeing what was written (opens, reads, stat), and a crash of the mount
// leaves the journal for the next one to commit, as for a file still open.
//
// fsync(2) of a file commits it at once, as without write-back; fsync of a
// directory (FS.Sync) commits every changed file of the mount, queued or
// still open. A reopen of a queued file commits it first, so that every
// close still makes its own version. A file closed again while the batch
// that took it is being committed is queued again when that batch ends:
// every close of a changed file leads to a commit. A commit that fails is
// logged and retried with a backoff.
// The queue is bounded (writeBackQueue files): a release that finds it
// full waits, so a writer cannot get arbitrarily far ahead of the server.

const (
	writeBackQueue      = 256 // files waiting or being committed
	writeBackCommitters = 2
	writeBackBatch      = 64 // files a committer takes at once
	// writeBackLinger is how long a committer lets a short queue grow
	// before it takes it: a file closed every millisecond or so is then
	// committed with others, not alone (one upload and one transaction
	// per batch).
	writeBackLinger   = 20 * time.Millisecond
	writeBackSmall    = 4 << 20 // files up to this size are uploaded together
	writeBackRetryMax = 30 * time.Second
)

type writeBack struct {
	fsys *FS
	mu   sync.Mutex
	cond *sync.Cond // queue, queued, retrying or closed changed
	// queue holds the files waiting for a commit, oldest first; queued
	// says which are in it (or being committed), so a file is queued once.
	queue    []*openFile
	queuedAt []time.Time // when each of queue was queued
	queued   map[*openFile]bool
	// inflight holds the files of the batches being committed; again
	// those of them closed once more meanwhile (after their committer
	// passed over them or took what they held), which go back to the
	// queue when their batch ends.
	inflight map[*openFile]bool
	again    map[*openFile]bool
	retrying int                  // failed commits waiting for their retry
	timers   map[*time.Timer]bool // retries waiting
	closed   bool
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
}

func newWriteBack(fsys *FS) *writeBack {
	w := &writeBack{fsys: fsys, queued: map[*openFile]bool{}, inflight: map[*openFile]bool{}, again: map[*openFile]bool{},
		timers: map[*time.Timer]bool{}}
	w.cond = sync.NewCond(&w.mu)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	for range writeBackCommitters {
		w.wg.Add(1)
		go w.run()
	}
	return w
}

// enqueue queues f for a commit, waiting while the queue is full. It
// reports false if the write-back is closed (the caller commits).
func (w *writeBack) enqueue(f *openFile) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.queued[f] {
		if w.inflight[f] && !w.closed {
			// Its batch may have passed over it (open then) or taken
			// what it held before this close: committed again after.
			w.again[f] = true
		}
		return !w.closed
	}
	for !w.closed && len(w.queued)+w.retrying >= writeBackQueue {
		w.cond.Wait()
	}
	if w.closed {
		return false
	}
	w.queued[f] = true
	w.queue = append(w.queue, f)
	w.queuedAt = append(w.queuedAt, time.Now())
	w.cond.Broadcast()
	return true
}

// markDone records that f's queued commit ended (committed, or handed to
// a retry or to a new open); called with w.mu held.
func (w *writeBack) markDone(f *openFile) {
	delete(w.queued, f)
	w.cond.Broadcast()
}

func (w *writeBack) run() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		for !w.closed && len(w.queue) == 0 {
			w.cond.Wait()
		}
		if w.closed {
			w.mu.Unlock()
			return
		}
		if wait := writeBackLinger - time.Since(w.queuedAt[0]); len(w.queue) < writeBackBatch && wait > 0 {
			w.mu.Unlock()
			time.Sleep(wait)
			w.mu.Lock()
			if len(w.queue) == 0 || w.closed { // another committer took them, or Close
				w.mu.Unlock()
				continue
			}
		}
		n := min(len(w.queue), writeBackBatch)
		batch := append([]*openFile(nil), w.queue[:n]...)
		w.queue = w.queue[n:]
		w.queuedAt = w.queuedAt[n:]
		for _, f := range batch {
			w.inflight[f] = true
		}
		w.mu.Unlock()

		failed := w.fsys.commitQueued(w.ctx, batch)

		w.mu.Lock()
		var retry []*openFile
		now := time.Now()
		for _, f := range batch {
			delete(w.inflight, f)
			again := w.again[f]
			delete(w.again, f)
			switch {
			case failed[f] != nil && !w.closed:
				// Retried later (with what was closed since); it still
				// counts against the bound.
				w.retrying++
				retry = append(retry, f)
			case again && !w.closed:
				// Still queued: what was closed during the batch.
				w.queue = append(w.queue, f)
				w.queuedAt = append(w.queuedAt, now)
				w.cond.Broadcast()
				continue
			}
			w.markDone(f)
		}
		w.mu.Unlock()
		for _, f := range retry {
			w.retry(f, 1)
		}
	}
}

// retry commits f again after a backoff that doubles up to a limit, until
// it succeeds, f is opened again, or the write-back closes (then Close
// commits it, or keeps it for the next mount).
func (w *writeBack) retry(f *openFile, attempt int) {
	d := min(time.Duration(1<<min(attempt, 10))*100*time.Millisecond, writeBackRetryMax)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.retrying--
		w.cond.Broadcast()
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		w.mu.Lock()
		if !w.timers[t] {
			w.mu.Unlock()
			return // stopped by close
		}
		delete(w.timers, t)
		w.mu.Unlock()
		if err := w.fsys.commitQueued(w.ctx, []*openFile{f})[f]; err != nil {
			w.retry(f, attempt+1)
			return
		}
		w.mu.Lock()
		w.retrying--
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	w.timers[t] = true
}

// close stops the committers after the commits in flight; files still
// queued stay in fsys.open, for FS.Close to commit.
func (w *writeBack) close() {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	w.wg.Wait()
	w.mu.Lock()
	for t := range w.timers {
		if t.Stop() {
			w.retrying--
		}
		delete(w.timers, t)
	}
	for w.retrying > 0 {
		w.cond.Wait()
	}
	w.mu.Unlock()
	w.cancel()
}

// commitQueued commits a batch of released files and retires them. The
// chunks of the small ones are uploaded together, one question (Missing)
// and one upload for the batch instead of per file; bigger files commit
// one by one. It returns the files whose commit failed (still staged).
func (fsys *FS) commitQueued(ctx context.Context, batch []*openFile) map[*openFile]error {
	failed := map[*openFile]error{}
	// done ends the commit of f, which the caller locked: committed (or
	// dropped) files are retired, others stay staged.
	done := func(f *openFile, err error) {
		kept := f.unsettledLocked()
		f.releaseCommitLocked()
		f.mu.Unlock()
		if kept && err == nil {
			return // deleted, and open: its changes go with its last handle
		}
		if kept {
			fsys.log.Error("a closed file could not be committed; it stays staged and is retried", "entry", f.id, "err", err)
			failed[f] = err
			return
		}
		if err := fsys.retire(ctx, f); err != nil {
			fsys.log.Warn("dropping the stage of a committed file", "entry", f.id, "err", err)
		}
	}
	type item struct {
		f *openFile
		m dfms.Manifest
	}
	// The files created here first, in one request (pending.go).
	ids := make([]dfms.EntryID, len(batch))
	for i, f := range batch {
		ids[i] = f.id
	}
	if err := fsys.materialize(ctx, ids...); err != nil {
		fsys.log.Error("files created here could not be created on the server; they are retried", "err", err)
		for _, f := range batch {
			failed[f] = err
		}
		return failed
	}
	var items []item
	var chunks []dfms.ChunkData
	for _, f := range batch {
		f.mu.Lock()
		if f.writingLocked() && !f.closedChangesLocked() {
			// Opened again for writing and changed since: its last
			// release queues it again.
			f.mu.Unlock()
			continue
		}
		f.holdForCommitLocked()
		if !f.changed || f.size > writeBackSmall || f.unlinkedHere() { // commitLocked, or nothing to commit
			done(f, f.commitLocked(ctx))
			continue
		}
		n := len(chunks)
		m, err := f.cutLocked(ctx, &chunks, nil)
		if err != nil {
			chunks = chunks[:n]
			done(f, f.commitFailedLocked(ctx, err))
			continue
		}
		items = append(items, item{f, m}) // stays locked until committed
	}
	if len(items) == 0 {
		return failed
	}
	if err := fsys.upload(ctx, chunks); err != nil {
		for _, it := range items {
			done(it.f, err)
		}
		return failed
	}
	g := fsys.mc.begin()
	if cb, ok := fsys.b.(CommitBatcher); ok && len(items) > 1 {
		cs := make([]Commit, 0, len(items))
		for _, it := range items {
			c, err := it.f.commitOfLocked(it.m)
			if err != nil {
				// Not committed, and retried: the others go on.
				done(it.f, err)
				continue
			}
			cs = append(cs, c)
			items[len(cs)-1] = it
		}
		items = items[:len(cs)]
		res, err := cb.CommitManifests(ctx, cs)
		if err == nil && len(res) != len(cs) {
			err = fmt.Errorf("%d results for %d commits", len(res), len(cs))
		}
		for i, it := range items {
			if err != nil {
				fsys.changed(g, it.f.id, Entry{}, err)
				done(it.f, err)
			} else {
				fsys.committed(g, it.f.id, res[i].Entry, true, it.m, res[i].Err)
				done(it.f, it.f.afterCommitLocked(ctx, res[i].Entry, it.m, res[i].Err))
			}
		}
		return failed
	}
	for _, it := range items {
		f := it.f
		c, err := f.commitOfLocked(it.m)
		if err != nil {
			done(f, err)
			continue
		}
		e, err := fsys.b.CommitManifest(ctx, c)
		fsys.committed(g, f.id, e, false, it.m, err) // the answer may lack attributes (REST)
		done(f, f.afterCommitLocked(ctx, e, it.m, err))
	}
	return failed
}

// upload sends those of cs the server lacks, in batches of uploadBatch
// bytes.
func (fsys *FS) upload(ctx context.Context, cs []dfms.ChunkData) error {
	if len(cs) == 0 {
		return nil
	}
	seen := make(map[dfms.Hash]bool, len(cs))
	var hs []dfms.Hash
	for _, c := range cs {
		if !seen[c.Hash] {
			seen[c.Hash] = true
			hs = append(hs, c.Hash)
		}
	}
	missing, err := fsys.b.Missing(ctx, hs)
	if err != nil {
		return err
	}
	want := make(map[dfms.Hash]bool, len(missing))
	for _, h := range missing {
		want[h] = true
	}
	var send []dfms.ChunkData
	bytes := 0
	for _, c := range cs {
		if !want[c.Hash] {
			continue
		}
		delete(want, c.Hash)
		send = append(send, c)
		bytes += len(c.Data)
		if bytes >= uploadBatch {
			if err := fsys.b.PutChunks(ctx, send); err != nil {
				return err
			}
			fsys.stats.chunksSent.Add(int64(len(send)))
			send, bytes = nil, 0
		}
	}
	if len(send) > 0 {
		if err := fsys.b.PutChunks(ctx, send); err != nil {
			return err
		}
		fsys.stats.chunksSent.Add(int64(len(send)))
	}
	return nil
}
