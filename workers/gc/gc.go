// Package gc is the garbage collector of DFMS: it deletes chunks that no
// version or multipart part references any more, chunks whose bytes were
// stored but never recorded (a write that died before recording them),
// multipart uploads that expired, and the temporary files a chunk store
// keeps while it writes a chunk, left behind by a write that died (the
// disk store's ".tmp-" files).
//
// Deleting a file moves it to the trash; purging it releases its
// references, and what that leaves unreferenced is this package's work.
//
// Collection is two-phase. Reference counts reaching zero record the time
// (the mark, done by the metadata store in the same transaction that
// released the last reference); a sweep deletes only chunks whose count
// has stayed zero for the grace period, through the metadata store's
// three-step protocol (BeginDelete marks the row deleting, then the bytes
// are deleted, then FinishDelete removes the row).
//
// # Why GC never takes a chunk a version needs
//
//   - A write reserves a chunk (a pending row) before storing its bytes,
//     and marks it stored once they are durable; a commit only increments
//     rows that are stored and not being deleted, otherwise it fails and
//     changes nothing.
//   - A write re-arms the grace period of every chunk it relies on, once
//     per batch and again just before its commit.
//   - Bytes with no row at all (a write that died before reserving) are
//     collected once older than OrphanGrace (the grace period, at least an
//     hour), and never while a reservation exists: ClaimOrphan declines if
//     a row exists by then.
//   - Only one collection runs at a time across all servers sharing the
//     metadata store (a lock in the store, fenced: see below).
//
// So no committed version can reference a chunk whose bytes GC removed,
// whatever the interleaving, even when an upload of the same content
// races the sweep. The tests of this package stop a write and a
// collection at the worst moments.
//
// # One collector at a time
//
// A run holds the metadata store's GC lock, and every mark it makes
// carries the lock's fence (meta.Fence): a collector that lost its lock
// without knowing (its PostgreSQL connection died) is refused its next
// mark, and a collector that takes the lock after it leaves the chunks
// that collector marked alone until their marks are older than Lease. A
// collector deletes the bytes of a chunk only within half of Lease of
// asking for its mark (the delete's context ends then), so that it never
// deletes bytes that were stored again after another collector finished
// the same chunk. That bound is a matter of time, with the clocks of the
// servers sharing the metadata store assumed to agree to well within
// Lease/2; everything else is decided by the store's transactions.
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Meta is what a Collector uses of the metadata store, all of which a
// meta.Store has: the sweep's lock and fenced deletions, a chunk's row (to
// tell an orphan from a chunk recorded meanwhile), and the expired
// multipart uploads it aborts.
type Meta interface {
	meta.Sweeper
	GetChunk(ctx context.Context, h dfms.Hash) (meta.Chunk, error)
	ExpiredUploads(ctx context.Context, now time.Time, limit int) ([]meta.Upload, error)
	AbortUpload(ctx context.Context, owner dfms.UserID, id string) error
}

// Collector collects garbage of one metadata store and one chunk store.
// Its methods may be called repeatedly (typically on a timer); only one
// collector should run per deployment at a time. Its fields must not
// change once it runs.
type Collector struct {
	Meta   Meta
	Chunks dfms.ChunkStore
	// Grace is how long a chunk must stay unreferenced (or unrecorded)
	// before it is deleted. It must exceed the longest write.
	Grace time.Duration
	// Batch is how many candidates are handled per query (default 500).
	Batch int
	// OrphanGrace is how old a chunk without a metadata row must be
	// before it is deleted (default: Grace, at least an hour). It must
	// exceed the time between a write storing a chunk and recording it.
	OrphanGrace time.Duration
	// Lease is how long a collector's deletion mark keeps other
	// collectors away from the chunk (default 10 minutes). The
	// collector deletes the bytes only within Lease/2 of asking for the
	// mark; a mark older than Lease, left by a collector that died or
	// lost the lock, is taken over by the next run.
	Lease time.Duration
	Log   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	// mu guards total, runs and failures.
	mu             sync.Mutex
	total          Stats // of every run so far
	runs, failures int64
}

// Stats reports one run.
type Stats struct {
	Chunks         int   `json:"chunks"`  // unreferenced chunks deleted
	Bytes          int64 `json:"bytes"`   // their bytes
	Orphans        int   `json:"orphans"` // row-less chunks deleted
	OrphanBytes    int64 `json:"orphan_bytes"`
	ExpiredUploads int   `json:"expired_uploads"`
	TempFiles      int   `json:"temp_files"` // temporary files of dead writes deleted
}

// add adds o to s.
func (s *Stats) add(o Stats) {
	s.Chunks += o.Chunks
	s.Bytes += o.Bytes
	s.Orphans += o.Orphans
	s.OrphanBytes += o.OrphanBytes
	s.ExpiredUploads += o.ExpiredUploads
	s.TempFiles += o.TempFiles
}

// DryRun reports what Run would delete now, and deletes nothing: it takes
// no lock and no mark, and changes neither store, so it may run beside a
// collection. Its Stats count the unreferenced chunks a sweep would try
// (past the grace period, and rows left deleting by an interrupted
// sweep), the orphans, the expired uploads, and the stale temporary files
// of stores that can count them (a disk store or a cluster; through a
// chunk service they are not counted). Uploads that commit meanwhile may
// make a real run delete less. It lists every candidate at once, so its
// memory grows with the garbage.
func (c *Collector) DryRun(ctx context.Context) (Stats, error) {
	var st Stats
	ups, err := c.Meta.ExpiredUploads(ctx, c.now(), dryRunLimit)
	if err != nil {
		return st, err
	}
	st.ExpiredUploads = len(ups)
	cands, err := c.Meta.SweepCandidates(ctx, c.now().Add(-c.Grace), dryRunLimit)
	if err != nil {
		return st, err
	}
	for _, ch := range cands {
		st.Chunks++
		st.Bytes += ch.Size
	}
	orphans, err := c.findOrphans(ctx)
	if err != nil {
		return st, err
	}
	for _, ci := range orphans {
		st.Orphans++
		st.OrphanBytes += ci.Size
	}
	if tc, ok := c.Chunks.(tempCounter); ok {
		n, err := tc.CountStaleTemp(ctx, c.now().Add(-c.orphanGrace()))
		if err != nil {
			return st, err
		}
		st.TempFiles = n
	}
	return st, nil
}

// LockHeld reports whether err is Run's failure to start because another
// collector holds the lock (kind Conflict, as is a lost lock's refusal
// midway, which this does not report): the expected outcome of a run
// beside another collector.
func LockHeld(err error) bool {
	var lh lockHeld
	return errors.As(err, &lh)
}

// lockHeld marks the failure to take the lock.
type lockHeld struct{ error }

func (e lockHeld) Unwrap() error { return e.error }

// dryRunLimit bounds the candidates a dry run lists of each kind.
const dryRunLimit = 1 << 30

// tempCounter is a tempRemover that can count without removing.
type tempCounter interface {
	CountStaleTemp(ctx context.Context, cutoff time.Time) (int, error)
}

// Collect runs one collection now (Run) and returns its Stats: the
// collector as the admin API runs it (api.Collector).
func (c *Collector) Collect(ctx context.Context) (any, error) { return c.Run(ctx) }

// Metrics returns the collector's Prometheus metrics: what its runs
// deleted, and how many ran and failed.
func (c *Collector) Metrics() []prometheus.Collector {
	counter := func(name, help string, v func(Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(c.Totals()) })
	}
	runs := func(name, help string, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			c.mu.Lock()
			defer c.mu.Unlock()
			return float64(v())
		})
	}
	return []prometheus.Collector{
		counter("dfms_gc_temp_files_removed_total", "Temporary files of chunk writes that died, deleted by garbage collection.",
			func(s Stats) float64 { return float64(s.TempFiles) }),
		counter("dfms_gc_chunks_deleted_total", "Unreferenced chunks deleted by garbage collection.",
			func(s Stats) float64 { return float64(s.Chunks) }),
		counter("dfms_gc_deleted_bytes_total", "Bytes of unreferenced chunks and orphans deleted by garbage collection.",
			func(s Stats) float64 { return float64(s.Bytes + s.OrphanBytes) }),
		counter("dfms_gc_orphans_deleted_total", "Chunks stored without a metadata row (dead writes), deleted by garbage collection.",
			func(s Stats) float64 { return float64(s.Orphans) }),
		counter("dfms_gc_expired_uploads_total", "Expired multipart uploads aborted by garbage collection.",
			func(s Stats) float64 { return float64(s.ExpiredUploads) }),
		runs("dfms_gc_runs_total", "Garbage collections run by this process (failed ones and those that found the lock held included).",
			func() int64 { return c.runs }),
		runs("dfms_gc_failures_total", "Garbage collections of this process that failed or found the lock held.",
			func() int64 { return c.failures }),
	}
}

// Totals returns what every run of c has collected so far, failed runs
// included (for metrics).
func (c *Collector) Totals() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// tempRemover is a chunk store that keeps temporary files while it writes
// a chunk, which a write that dies leaves behind (the disk store).
type tempRemover interface {
	RemoveStaleTemp(ctx context.Context, cutoff time.Time) (int, error)
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Collector) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// Run does one full collection: expired uploads, unreferenced chunks,
// orphans, then stale temporary files. Only one collection runs at a time
// across every server sharing the metadata store (a lock in the store); a
// second one fails with kind Conflict.
func (c *Collector) Run(ctx context.Context) (st Stats, err error) {
	defer func() {
		c.mu.Lock()
		c.total.add(st)
		c.runs++
		if err != nil {
			c.failures++
		}
		c.mu.Unlock()
	}()
	fence, unlock, err := c.Meta.Lock(ctx, "dfms-gc")
	if err != nil {
		if dfms.Is(err, dfms.Conflict) {
			err = lockHeld{err}
		}
		return st, err
	}
	defer unlock()
	if err := c.expireUploads(ctx, &st); err != nil {
		return st, err
	}
	if err := c.sweep(ctx, fence, &st); err != nil {
		return st, err
	}
	if err := c.collectOrphans(ctx, fence, &st); err != nil {
		return st, err
	}
	if tr, ok := c.Chunks.(tempRemover); ok {
		// As for orphans: a young temporary file may be a write under way.
		n, err := tr.RemoveStaleTemp(ctx, c.now().Add(-c.orphanGrace()))
		st.TempFiles += n
		if err != nil {
			return st, err
		}
	}
	if st != (Stats{}) {
		c.log().Info("gc", "chunks", st.Chunks, "bytes", st.Bytes, "orphans", st.Orphans, "expired_uploads", st.ExpiredUploads,
			"temp_files", st.TempFiles)
	}
	return st, nil
}

func (c *Collector) batch() int {
	if c.Batch > 0 {
		return c.Batch
	}
	return 500
}

func (c *Collector) expireUploads(ctx context.Context, st *Stats) error {
	for {
		ups, err := c.Meta.ExpiredUploads(ctx, c.now(), c.batch())
		if err != nil {
			return err
		}
		for _, u := range ups {
			if err := c.Meta.AbortUpload(ctx, u.Owner, u.ID); err != nil && !dfms.Is(err, dfms.NotExist) {
				return err
			}
			st.ExpiredUploads++
		}
		if len(ups) < c.batch() {
			return nil
		}
	}
}

// sweep deletes chunks unreferenced since before the grace period.
func (c *Collector) sweep(ctx context.Context, fence meta.Fence, st *Stats) error {
	cutoff := c.now().Add(-c.Grace)
	for {
		cands, err := c.Meta.SweepCandidates(ctx, cutoff, c.batch())
		if err != nil {
			return err
		}
		deleted := 0
		for _, ch := range cands {
			asked := time.Now()
			ok, err := c.Meta.BeginDelete(ctx, fence, ch.Hash, cutoff, c.now().Add(-c.lease()))
			if err != nil {
				return err
			}
			if !ok {
				continue // referenced or re-armed meanwhile, or another collector's
			}
			if err := c.deleteBytes(ctx, ch.Hash, asked); err != nil {
				return err // the row stays deleting; a later run retries
			}
			if err := c.Meta.FinishDelete(ctx, fence, ch.Hash); err != nil {
				return err
			}
			deleted++
			st.Chunks++
			st.Bytes += ch.Size
		}
		// A full batch of candidates none of which could be taken (marks
		// of another collector) would come back unchanged.
		if len(cands) < c.batch() || deleted == 0 {
			return nil
		}
	}
}

// deleteBytes deletes the bytes of a chunk marked deleting, at the latest
// Lease/2 after the mark was asked for (at asked): later, another
// collector may take the mark over.
func (c *Collector) deleteBytes(ctx context.Context, h dfms.Hash, asked time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, asked.Add(c.lease()/2))
	defer cancel()
	if err := c.Chunks.Delete(ctx, h); err != nil {
		if ctx.Err() != nil {
			return dfms.E("gc.Run", dfms.Unavailable, fmt.Errorf("deleting chunk %s took longer than its mark lasts: %w", h, err))
		}
		return err
	}
	return nil
}

// findOrphans lists the chunks that have bytes but no row and were last
// stored before the orphan grace period.
func (c *Collector) findOrphans(ctx context.Context) ([]dfms.ChunkInfo, error) {
	cutoff := c.now().Add(-c.orphanGrace())
	var old []dfms.ChunkInfo
	err := c.Chunks.Walk(ctx, func(ci dfms.ChunkInfo) error {
		if !ci.ModTime.Before(cutoff) {
			return nil
		}
		if _, err := c.Meta.GetChunk(ctx, ci.Hash); err == nil {
			return nil
		} else if !dfms.Is(err, dfms.NotExist) {
			return err
		}
		old = append(old, ci)
		return nil
	})
	return old, err
}

// collectOrphans deletes chunks that have bytes but no row and were last
// stored before the orphan grace period: a write stores a chunk's bytes
// before recording it, so a young row-less chunk is most likely being
// uploaded right now.
func (c *Collector) collectOrphans(ctx context.Context, fence meta.Fence, st *Stats) error {
	old, err := c.findOrphans(ctx)
	if err != nil {
		return err
	}
	for _, ci := range old {
		asked := time.Now()
		claimed, err := c.Meta.ClaimOrphan(ctx, fence, ci.Hash, ci.Size)
		if err != nil {
			return err
		}
		if !claimed {
			continue // recorded by an upload meanwhile
		}
		// An upload that stored the same bytes after the walk finds the
		// row deleting when it records them, and stores them again.
		if err := c.deleteBytes(ctx, ci.Hash, asked); err != nil {
			return err
		}
		if err := c.Meta.FinishDelete(ctx, fence, ci.Hash); err != nil {
			return err
		}
		st.Orphans++
		st.OrphanBytes += ci.Size
	}
	return nil
}

func (c *Collector) lease() time.Duration {
	if c.Lease > 0 {
		return c.Lease
	}
	return 10 * time.Minute
}

func (c *Collector) orphanGrace() time.Duration {
	if c.OrphanGrace > 0 {
		return c.OrphanGrace
	}
	return max(c.Grace, time.Hour)
}
