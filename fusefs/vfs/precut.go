package vfs

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
)

// Pre-cutting: while an application writes a file from its start
// (a new file, or one truncated to zero, written sequentially), a
// background worker cuts the written prefix into content-defined chunks,
// hashes them and uploads those the server lacks, so that close has only
// the tail left to do. The result, a chunk list covering [0, precutEnd),
// is used by the commit only if nothing below precutEnd was written or
// truncated since (every such change discards it). A commit waits for the
// rounds in flight (they need no lock the commit holds) and cuts only what
// they leave, rather than cutting their bytes again. The stage keeps all the
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

// precutSends is how many rounds of one file may be uploading at once,
// counted across discards (a discarded round uploads to its end).
const precutSends = 2

// precutState is guarded by openFile.pmu. Lock order: openFile.mu, then
// pmu.
type precutState struct {
	refs []dfms.ChunkRef // chunks of [0, end)
	end  int64
	gen  uint64 // bumped by every discard
	busy bool   // a worker runs
	// next is the end of the rounds started in this generation (cut or
	// uploading; 0 if none), active how many of them are not recorded
	// yet, and lastDone is closed when the most recent one is settled
	// (the next one records after it).
	next     int64
	active   int
	lastDone chan struct{}
	// sending counts the uploads in flight, of every generation.
	sending int
	// idle is signalled (on pmu) whenever active or sending drops, and at
	// every discard.
	idle sync.Cond
}

// discardLocked drops the pre-cut and everything in flight (pmu held).
func (p *precutState) discardLocked() {
	p.refs, p.end, p.next, p.active, p.lastDone = nil, 0, 0, 0, nil
	p.gen++
	p.idle.Broadcast()
}

// notePrefixWriteLocked is called by write and truncate (f.mu held) with
// the lowest offset they changed; it discards the pre-cut if the change
// reaches into it, and starts a worker when a long prefix is written.
func (f *openFile) notePrefixWriteLocked(off int64) {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	if off < max(f.pre.end, f.pre.next) {
		f.pre.discardLocked()
	}
	if f.pre.busy || len(f.dirty) == 0 || f.dirty[0].off != 0 || f.dirty[0].end-max(f.pre.end, f.pre.next) < precutStart {
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
// discards the pre-cut state (the commit changes the base). It first
// waits for the rounds in flight (none of which needs f.mu), so that the
// commit continues where they end rather than cutting their bytes again;
// if ctx ends first, the commit cuts everything past what is recorded.
func (f *openFile) takePrecutLocked(ctx context.Context) ([]dfms.ChunkRef, int64) {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	if f.pre.active > 0 {
		stop := context.AfterFunc(ctx, func() {
			f.pmu.Lock()
			f.pre.idle.Broadcast()
			f.pmu.Unlock()
		})
		for f.pre.active > 0 && ctx.Err() == nil {
			f.waitPrecutLocked()
		}
		stop()
	}
	refs, end := f.pre.refs, f.pre.end
	f.pre.discardLocked()
	if len(f.dirty) == 0 || f.dirty[0].off != 0 || f.dirty[0].end < end || end > f.size {
		return nil, 0
	}
	return refs, end
}

// precutWorker cuts rounds of the written prefix until too little is
// left, the prefix changes, or the file is committed. Each round is
// uploaded (and then recorded, in order) while the next ones are cut.
func (f *openFile) precutWorker() {
	defer func() {
		f.pmu.Lock()
		f.pre.busy = false
		f.pmu.Unlock()
	}()
	p, err := f.fsys.params(context.Background())
	if err != nil {
		return
	}
	ch, err := chunking.New(bytes.NewReader(nil), p)
	if err != nil {
		return
	}
	cbuf := make([]byte, p.Max)
	var gen uint64
	for first := true; ; first = false {
		// Not more than precutSends uploads of this file at once, those
		// of discarded generations included.
		f.pmu.Lock()
		for f.pre.sending >= precutSends {
			f.waitPrecutLocked()
		}
		f.pmu.Unlock()

		f.mu.Lock()
		if f.stage == nil || len(f.dirty) == 0 || f.dirty[0].off != 0 {
			f.mu.Unlock()
			return
		}
		stage, written := f.stage, f.dirty[0].end
		f.pmu.Lock()
		if first {
			gen = f.pre.gen
		}
		from := max(f.pre.end, f.pre.next)
		if f.pre.gen != gen || written-from < precutStart {
			f.pmu.Unlock()
			f.mu.Unlock()
			return
		}
		to := min(written, from+precutRound)
		r := &precutBatch{from: from, gen: gen, prevDone: f.pre.lastDone, done: make(chan struct{})}
		f.pre.next, f.pre.active, f.pre.lastDone = to, f.pre.active+1, r.done
		f.pmu.Unlock()
		f.mu.Unlock()

		// Every chunk but the last, which ends where the read ended rather
		// than at a content-defined cut. Each chunk gets a buffer of its
		// own: the memory cache may keep it, and must not keep a round.
		ch.Reset(io.NewSectionReader(stage, from, to-from))
		for {
			c, err := ch.Next(cbuf)
			if err == io.EOF {
				break
			}
			if err != nil {
				r.cut = nil
				break
			}
			r.cut = append(r.cut, append([]byte(nil), c.Data...))
		}
		if len(r.cut) < 2 {
			f.finishPrecut(r, false)
			return
		}
		r.cut = r.cut[:len(r.cut)-1]
		batch := make([]cutChunk, len(r.cut))
		for i, c := range r.cut {
			batch[i] = cutChunk{idx: i, data: c}
			r.n += int64(len(c))
		}
		f.pmu.Lock()
		if f.pre.gen == gen {
			f.pre.next = from + r.n
		}
		f.pre.sending++
		f.pmu.Unlock()
		up := &uploader{fsys: f.fsys, known: map[dfms.Hash]bool{}}
		f.fsys.workers.Add(1)
		go func() {
			defer f.fsys.workers.Done()
			err := up.send(context.Background(), batch)
			f.pmu.Lock()
			f.pre.sending--
			f.pre.idle.Broadcast()
			f.pmu.Unlock()
			if err != nil {
				f.fsys.log.Warn("uploading while writing failed; close will retry", "entry", f.id, "err", err)
			} else {
				r.refs = make([]dfms.ChunkRef, len(r.cut))
				for _, d := range up.done {
					r.refs[d.idx] = dfms.ChunkRef{Hash: d.hash, Size: uint32(len(r.cut[d.idx]))}
				}
				f.fsys.stats.chunksCut.Add(int64(len(r.cut)))
				f.fsys.stats.chunksSent.Add(up.sent)
			}
			f.finishPrecut(r, err == nil)
		}()
	}
}

// waitPrecutLocked waits (pmu held) until active or sending drops, or the
// pre-cut is discarded.
func (f *openFile) waitPrecutLocked() {
	if f.pre.idle.L == nil {
		f.pre.idle.L = &f.pmu
	}
	f.pre.idle.Wait()
}

// precutBatch is one round of a pre-cut: the chunks of [from, from+n).
type precutBatch struct {
	from, n  int64
	gen      uint64
	cut      [][]byte
	refs     []dfms.ChunkRef // set when uploaded
	prevDone chan struct{}   // closed when the round before is settled
	done     chan struct{}   // closed when this round is settled
}

// finishPrecut settles round r once the rounds before it are: its chunks
// are added to the pre-cut if ok and nothing changed it meanwhile. A round
// that failed ends its generation (the rounds after it cannot follow a
// gap) but keeps what the rounds before it recorded.
func (f *openFile) finishPrecut(r *precutBatch, ok bool) {
	if r.prevDone != nil {
		<-r.prevDone
	}
	defer close(r.done)
	f.pmu.Lock()
	defer f.pmu.Unlock()
	if f.pre.gen != r.gen {
		return // discarded: active was reset then
	}
	if !ok || f.pre.end != r.from {
		refs, end := f.pre.refs, f.pre.end
		f.pre.discardLocked()
		f.pre.refs, f.pre.end = refs, end
		return
	}
	f.pre.refs = append(f.pre.refs, r.refs...)
	f.pre.end = r.from + r.n
	if f.pre.lastDone == r.done {
		f.pre.lastDone = nil
	}
	f.pre.active--
	f.pre.idle.Broadcast()
}
