package vfs

import (
	"bytes"
	"context"
	"io"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
)

// Pre-cutting: while an application writes a file from its start
// (a new file, or one truncated to zero, written sequentially), a
// background worker cuts the written prefix into content-defined chunks,
// hashes them and uploads those the server lacks, so that close has only
// the tail left to do. The result, a chunk list covering [0, precutEnd),
// is used by the commit only if nothing below precutEnd was written or
// truncated since (every such change discards it). The stage keeps all the
// bytes until the commit, so crash recovery is unchanged; chunks uploaded
// by a pre-cut that is discarded are collected by GC like any unreferenced
// chunk.

const (
	// precutStart is how far the written prefix must run past what is
	// pre-cut before a worker starts.
	precutStart = 16 << 20
	// precutRound is the most one round of the worker reads.
	precutRound = 32 << 20
)

// precutState is guarded by openFile.pmu. Lock order: openFile.mu, then
// pmu.
type precutState struct {
	refs     []dfms.ChunkRef // chunks of [0, end)
	end      int64
	gen      uint64 // bumped by every discard
	busy     bool   // a worker runs
	inflight int64  // end of the range the worker is cutting (0: none)
}

// notePrefixWriteLocked is called by write and truncate (f.mu held) with
// the lowest offset they changed; it discards the pre-cut if the change
// reaches into it, and starts a worker when a long prefix is written.
func (f *openFile) notePrefixWriteLocked(off int64) {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	if off < f.pre.end || (f.pre.inflight > 0 && off < f.pre.inflight) {
		f.pre.refs, f.pre.end = nil, 0
		f.pre.gen++
	}
	if f.pre.busy || len(f.dirty) == 0 || f.dirty[0].off != 0 || f.dirty[0].end-f.pre.end < precutStart {
		return
	}
	f.pre.busy = true
	f.fsys.workers.Add(1)
	go func() {
		defer f.fsys.workers.Done()
		f.precutWorker()
	}()
}

// takePrecutLocked returns the pre-cut chunks the commit may use, and
// discards the pre-cut state (the commit changes the base).
func (f *openFile) takePrecutLocked() ([]dfms.ChunkRef, int64) {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	refs, end := f.pre.refs, f.pre.end
	f.pre.refs, f.pre.end = nil, 0
	f.pre.gen++
	if len(f.dirty) == 0 || f.dirty[0].off != 0 || f.dirty[0].end < end || end > f.size {
		return nil, 0
	}
	return refs, end
}

// precutWorker cuts rounds of the written prefix until too little is
// left, the prefix changes, or the file is committed. Each round is
// uploaded while the next one is read and cut.
func (f *openFile) precutWorker() {
	ctx := context.Background()
	var prev *precutBatch
	defer func() {
		if prev != nil {
			<-prev.done // its chunks are GC's if not recorded
		}
		f.pmu.Lock()
		f.pre.busy, f.pre.inflight = false, 0
		f.pmu.Unlock()
	}()
	p, err := f.fsys.params(ctx)
	if err != nil {
		return
	}
	ch, err := chunking.New(bytes.NewReader(nil), p)
	if err != nil {
		return
	}
	cbuf := make([]byte, p.Max)
	for {
		f.mu.Lock()
		if f.stage == nil || len(f.dirty) == 0 || f.dirty[0].off != 0 {
			f.mu.Unlock()
			return
		}
		stage, written := f.stage, f.dirty[0].end
		f.pmu.Lock()
		from, gen := f.pre.end, f.pre.gen
		if prev != nil {
			from = prev.from + prev.n // recorded when its upload is done
		}
		if written-from < precutStart || (prev != nil && gen != prev.gen) {
			f.pmu.Unlock()
			f.mu.Unlock()
			if prev != nil {
				f.recordPrecut(prev)
				prev = nil
			}
			return
		}
		to := min(written, from+precutRound)
		f.pre.inflight = to
		f.pmu.Unlock()
		f.mu.Unlock()

		data := make([]byte, to-from)
		if _, err := stage.ReadAt(data, from); err != nil {
			return
		}
		// Every chunk but the last, which ends where the read ended rather
		// than at a content-defined cut.
		ch.Reset(bytes.NewReader(data))
		r := &precutBatch{from: from, gen: gen, done: make(chan error, 1),
			up: &uploader{fsys: f.fsys, known: map[dfms.Hash]bool{}}}
		for {
			c, err := ch.Next(cbuf)
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
			r.cut = append(r.cut, append([]byte(nil), c.Data...))
		}
		if len(r.cut) < 2 {
			return
		}
		r.cut = r.cut[:len(r.cut)-1]
		batch := make([]cutChunk, len(r.cut))
		for i, c := range r.cut {
			batch[i] = cutChunk{idx: i, data: c}
			r.n += int64(len(c))
		}
		go func() { r.done <- r.up.send(ctx, batch) }()
		if prev != nil && !f.recordPrecut(prev) {
			prev = r
			return
		}
		prev = r
	}
}

// precutBatch is one round of a pre-cut: the chunks of [from, from+n).
type precutBatch struct {
	from, n int64
	gen     uint64
	cut     [][]byte
	up      *uploader
	done    chan error // the upload's result
}

// recordPrecut waits for the upload of r and adds its chunks to the
// pre-cut if nothing changed it meanwhile. It reports whether they were
// added.
func (f *openFile) recordPrecut(r *precutBatch) bool {
	if err := <-r.done; err != nil {
		f.fsys.log.Warn("uploading while writing failed; close will retry", "entry", f.id, "err", err)
		return false
	}
	refs := make([]dfms.ChunkRef, len(r.cut))
	for _, d := range r.up.done {
		refs[d.idx] = dfms.ChunkRef{Hash: d.hash, Size: uint32(len(r.cut[d.idx]))}
	}
	f.fsys.stats.chunksCut.Add(int64(len(r.cut)))
	f.fsys.stats.chunksSent.Add(r.up.sent)
	f.pmu.Lock()
	defer f.pmu.Unlock()
	if f.pre.gen != r.gen || f.pre.end != r.from {
		return false
	}
	f.pre.refs = append(f.pre.refs, refs...)
	f.pre.end = r.from + r.n
	return true
}
