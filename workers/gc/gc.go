// Package gc is the garbage collector of DFMS: it deletes chunks that no
// version or multipart part references any more, chunks whose bytes were
// stored but never recorded (a write that died before recording them), and
// multipart uploads that expired.
//
// Collection is two-phase. Reference counts reaching zero record the time
// (the mark, done by the metadata store in the same transaction that
// released the last reference); a sweep deletes only chunks whose count
// has stayed zero for the grace period, through the metadata store's
// three-step protocol (BeginDelete, delete the bytes, FinishDelete). A
// write that relies on a chunk re-arms its grace period, and a commit
// never references a chunk being deleted, so GC can never delete a chunk
// that a committed version references, even when an upload of the same
// content races the sweep.
package gc

import (
	"context"
	"log/slog"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Collector collects garbage of one metadata store and one chunk store.
// Its methods may be called repeatedly (typically on a timer); only one
// collector should run per deployment at a time.
type Collector struct {
	Meta   meta.Store
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
	Log         *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Stats reports one run.
type Stats struct {
	Chunks         int   // unreferenced chunks deleted
	Bytes          int64 // their bytes
	Orphans        int   // row-less chunks deleted
	OrphanBytes    int64
	ExpiredUploads int
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
// orphans. Only one collection runs at a time across every server sharing
// the metadata store (a lock in the store); a second one fails with kind
// Conflict.
func (c *Collector) Run(ctx context.Context) (Stats, error) {
	var st Stats
	unlock, err := c.Meta.Lock(ctx, "dfms-gc")
	if err != nil {
		return st, err
	}
	defer unlock()
	if err := c.expireUploads(ctx, &st); err != nil {
		return st, err
	}
	if err := c.sweep(ctx, &st); err != nil {
		return st, err
	}
	if err := c.collectOrphans(ctx, &st); err != nil {
		return st, err
	}
	if st != (Stats{}) {
		c.log().Info("gc", "chunks", st.Chunks, "bytes", st.Bytes, "orphans", st.Orphans, "expired_uploads", st.ExpiredUploads)
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
func (c *Collector) sweep(ctx context.Context, st *Stats) error {
	cutoff := c.now().Add(-c.Grace)
	for {
		cands, err := c.Meta.SweepCandidates(ctx, cutoff, c.batch())
		if err != nil {
			return err
		}
		for _, ch := range cands {
			ok, err := c.Meta.BeginDelete(ctx, ch.Hash, cutoff)
			if err != nil {
				return err
			}
			if !ok {
				continue // referenced or re-armed meanwhile
			}
			if err := c.Chunks.Delete(ctx, ch.Hash); err != nil {
				return err // the row stays deleting; the next run retries
			}
			if err := c.Meta.FinishDelete(ctx, ch.Hash); err != nil {
				return err
			}
			st.Chunks++
			st.Bytes += ch.Size
		}
		if len(cands) < c.batch() {
			return nil
		}
	}
}

// collectOrphans deletes chunks that have bytes but no row and were last
// stored before the orphan grace period: a write stores a chunk's bytes
// before recording it, so a young row-less chunk is most likely being
// uploaded right now.
func (c *Collector) collectOrphans(ctx context.Context, st *Stats) error {
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
	if err != nil {
		return err
	}
	for _, ci := range old {
		claimed, err := c.Meta.ClaimOrphan(ctx, ci.Hash, ci.Size)
		if err != nil {
			return err
		}
		if !claimed {
			continue // recorded by an upload meanwhile
		}
		// An upload that stored the same bytes after the walk finds the
		// row deleting when it records them, and stores them again.
		if err := c.Chunks.Delete(ctx, ci.Hash); err != nil {
			return err
		}
		if err := c.Meta.FinishDelete(ctx, ci.Hash); err != nil {
			return err
		}
		st.Orphans++
		st.OrphanBytes += ci.Size
	}
	return nil
}

func (c *Collector) orphanGrace() time.Duration {
	if c.OrphanGrace > 0 {
		return c.OrphanGrace
	}
	return max(c.Grace, time.Hour)
}
