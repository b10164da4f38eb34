package vfs

import (
	"context"
	"io"
	"runtime"
	"sync"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
)

// Incremental re-chunking. A file's content is its base version's chunks
// with changes on top (dirty ranges, a truncation limit, a new size). A
// commit keeps every base chunk the changes did not touch and cuts new
// chunks only around the changes: from the boundary of the first touched
// chunk until a new cut lands on an old boundary followed by an untouched
// chunk. Content-defined cuts depend only on the bytes since the previous
// cut, so from there on the old chunks are exactly what a full pass would
// cut, and a one-byte edit costs one or two chunks, never a read of the
// whole file.
//
// The last chunk of a version ends where the file ended, which is not a
// content-defined cut; it is re-cut when the file grows, so that appends
// do not leave a trail of small chunks behind.
//
// Holes: bytes nobody wrote (past the truncation limit and not written
// since, or in a hole of the base version) are zeros that need no chunk.
// A run of them at least as long as the smallest chunk becomes a hole of
// the manifest (dfms.AppendHole), which stores and costs nothing, however
// long: a file extended to a terabyte and written in one place commits a
// few hundred hole references and the chunks around the write. Data is
// cut as before, up to where such a run starts, so written data
// deduplicates as it did. Shorter runs are cut as zeros with the data
// around them: a hole smaller than a chunk is not worth a chunk boundary
// that no content decided. The base's holes that no change touched are
// kept as they are.

// cleanLocked reports whether base chunk i is unchanged in the content.
func (f *openFile) cleanLocked(v *view, i int) bool {
	start, end := v.starts[i], v.end(i)
	if end > f.limit || f.dirty.overlaps(start, end) {
		return false
	}
	return v.chunks[i].IsHole() || end < v.size || end == f.size
}

// holeEndLocked returns where the run of unwritten zeros at pos ends (at
// most the size): pos itself if pos holds written bytes or base data
// (holeEnd).
func (f *openFile) holeEndLocked(v *view, pos int64) int64 {
	return holeEnd(v, f.dirty, f.limit, f.size, pos)
}

// rechunkLocked returns the manifest of the content, uploading the chunks
// it cut that the server lacks.
func (f *openFile) rechunkLocked(ctx context.Context) (dfms.Manifest, error) {
	return f.cutLocked(ctx, nil, nil)
}

// cutLocked is rechunkLocked; with collect, the chunks cut (other than the
// base's) are appended there instead of uploaded, for the caller to
// upload with other files' (writeback.go). With tail, only the last batch
// (at most uploadBatch bytes, all of an edit's) is left there unsent, for
// a ChunkCommitter to store with the commit.
func (f *openFile) cutLocked(ctx context.Context, collect, tail *[]dfms.ChunkData) (dfms.Manifest, error) {
	v, err := f.baseLocked(ctx)
	if err != nil {
		return dfms.Manifest{}, err
	}
	p, err := f.fsys.params(ctx)
	if err != nil {
		return dfms.Manifest{}, err
	}
	known := make(map[dfms.Hash]bool, len(v.chunks))
	for _, c := range v.chunks {
		if !c.IsHole() {
			known[c.Hash] = true
		}
	}
	up := &uploader{fsys: f.fsys, known: known, collect: collect, tail: tail}
	defer func() { _ = up.wait() }() // a batch still in flight after an error
	var out dfms.Manifest
	var ch *chunking.Chunker
	buf := f.fsys.chunkBuf(p.Max)
	defer f.fsys.putChunkBuf(buf)
	minHole := int64(p.Min)
	i, pos := 0, int64(0)
	// resynced moves i to the first base chunk at or after pos and
	// reports whether the new cuts met an old boundary followed by an
	// untouched chunk, from where the base's chunks are kept.
	resynced := func() bool {
		for i < len(v.chunks) && v.starts[i] < pos {
			i++
		}
		return i < len(v.chunks) && v.starts[i] == pos && f.cleanLocked(v, i)
	}
	// What was cut and uploaded while the file was written (precut.go):
	// the prefix [0, pos) is then done, ending at a content-defined cut.
	if refs, end := f.takePrecutLocked(ctx); end > 0 {
		out.Chunks = append(out.Chunks, refs...)
		pos = end
		resynced()
	}
	for pos < f.size {
		if end := f.holeEndLocked(v, pos); end-pos >= minHole {
			// Not merged with what precedes: a chunk cut here has no
			// hash yet, and would pass for a hole (CompactHoles merges
			// holes at the end).
			out.Chunks = append(out.Chunks, dfms.AppendHole(nil, end-pos)...)
			pos = end
			resynced()
			continue
		}
		if i < len(v.chunks) && v.starts[i] == pos && f.cleanLocked(v, i) {
			out.Chunks = append(out.Chunks, v.chunks[i])
			pos = v.end(i)
			i++
			continue
		}
		// Cut from pos until a cut meets an old boundary again, or a
		// hole starts (the reader ends there).
		r := &contentReader{ctx: ctx, f: f, v: v, pos: pos, minHole: minHole}
		if ch == nil {
			if ch, err = chunking.New(r, p); err != nil {
				return dfms.Manifest{}, err
			}
		} else {
			ch.Reset(r)
		}
		for pos < f.size {
			c, err := ch.Next(buf)
			if err == io.EOF && pos == r.pos {
				break // a hole starts at pos
			}
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return dfms.Manifest{}, err
			}
			// The hash is filled in by the uploader (hashed in parallel).
			out.Chunks = append(out.Chunks, dfms.ChunkRef{Size: uint32(len(c.Data))})
			if err := up.add(ctx, c.Data, len(out.Chunks)-1); err != nil {
				return dfms.Manifest{}, err
			}
			pos += int64(len(c.Data))
			if resynced() {
				break
			}
		}
	}
	if err := up.finish(ctx); err != nil {
		return dfms.Manifest{}, err
	}
	for _, r := range up.done {
		out.Chunks[r.idx].Hash = r.hash
	}
	// Every chunk cut has its hash now: what has none is a hole, and
	// holes that ended up next to each other become one.
	out.Chunks = dfms.CompactHoles(out.Chunks)
	f.fsys.stats.chunksCut.Add(up.cut)
	f.fsys.stats.chunksSent.Add(up.sent)
	return out, nil
}

// contentReader reads the content of a file from pos to its end, or to
// the start of the first run of unwritten zeros of at least minHole bytes
// (which becomes a hole); the caller holds the file's lock.
type contentReader struct {
	ctx     context.Context
	f       *openFile
	v       *view // the base
	pos     int64
	minHole int64
}

// Read stops at the end of the base chunk that holds r.pos: the chunker
// scans what it has before it reads on, so a new cut that falls on the old
// boundary ends the re-chunking before the next chunk is fetched (and
// verified) for nothing. It also stops where written bytes or a run of
// unwritten zeros end, to look at what follows: a long run ends the
// stream.
func (r *contentReader) Read(p []byte) (int, error) {
	if r.pos >= r.f.size {
		return 0, io.EOF
	}
	if err := r.ctx.Err(); err != nil { // a commit given up: no more cutting
		return 0, err
	}
	end := r.f.size
	if hend := r.f.holeEndLocked(r.v, r.pos); hend > r.pos {
		if hend-r.pos >= r.minHole {
			return 0, io.EOF // a hole starts here
		}
		end = hend
	} else {
		if i, in := r.f.dirty.at(r.pos); in {
			end = min(end, r.f.dirty[i].end)
		}
		if r.pos < r.f.limit {
			end = min(end, r.f.limit)
			if r.pos < r.v.size {
				end = min(end, r.v.end(r.v.find(r.pos)))
			}
		}
	}
	p = p[:min(int64(len(p)), end-r.pos)]
	n, err := r.f.readContentLocked(r.ctx, p, r.pos)
	r.pos += int64(n)
	return n, err
}

// uploadBatch is how many bytes of new chunks are sent at a time.
const uploadBatch = 16 << 20

// uploader collects the chunks a commit cut and sends those the server
// lacks, in batches: the batch's chunks are hashed in parallel, then one
// question (Missing) and one upload (PutChunks) per batch, while the next
// batch is being cut.
type uploader struct {
	fsys    *FS
	known   map[dfms.Hash]bool // the server has these (the base's chunks); read by the batch in flight
	pending []cutChunk
	bytes   int
	cut     int64 // chunks cut
	sent    int64 // chunks uploaded

	inflight chan error  // the batch being sent, if any
	done     []hashedRef // hashes of the chunks sent, for the manifest
	doneMu   sync.Mutex

	// collect, if set, receives the chunks instead of the backend; tail,
	// if set, receives those of the last batch.
	collect, tail *[]dfms.ChunkData
}

type cutChunk struct {
	idx    int // in the manifest
	data   []byte
	hash   dfms.Hash // known already if hashed
	hashed bool
}

type hashedRef struct {
	idx  int
	hash dfms.Hash
}

func (u *uploader) add(ctx context.Context, data []byte, idx int) error {
	u.cut++
	u.pending = append(u.pending, cutChunk{idx: idx, data: append([]byte(nil), data...)})
	u.bytes += len(data)
	if u.bytes >= uploadBatch {
		return u.flush(ctx)
	}
	return nil
}

// flush starts sending the pending batch, after the previous one is sent.
func (u *uploader) flush(ctx context.Context) error {
	if err := u.wait(); err != nil {
		return err
	}
	if len(u.pending) == 0 {
		return nil
	}
	batch := u.pending
	u.pending, u.bytes = nil, 0
	if u.collect != nil {
		u.keep(batch, u.collect)
		return nil
	}
	u.inflight = make(chan error, 1)
	go func() { u.inflight <- u.send(ctx, batch) }()
	return nil
}

// keep hashes a batch and appends its chunks that are not the base's to
// into, instead of sending them.
func (u *uploader) keep(batch []cutChunk, into *[]dfms.ChunkData) {
	hashes := hashBatch(batch)
	for i, c := range batch {
		if !u.known[hashes[i]] {
			*into = append(*into, dfms.ChunkData{Hash: hashes[i], Data: c.data})
		}
		u.done = append(u.done, hashedRef{c.idx, hashes[i]})
		u.fsys.cache.put(hashes[i], c.data)
	}
}

// wait waits for the batch in flight.
func (u *uploader) wait() error {
	if u.inflight == nil {
		return nil
	}
	err := <-u.inflight
	u.inflight = nil
	return err
}

// finish sends what is pending and waits for it; with tail, what is
// pending goes there.
func (u *uploader) finish(ctx context.Context) error {
	if u.tail != nil && u.collect == nil {
		if err := u.wait(); err != nil {
			return err
		}
		u.keep(u.pending, u.tail)
		u.pending, u.bytes = nil, 0
		return nil
	}
	if err := u.flush(ctx); err != nil {
		return err
	}
	return u.wait()
}

// send hashes a batch (on every core), asks which chunks the server lacks,
// and uploads those.
func (u *uploader) send(ctx context.Context, batch []cutChunk) error {
	hashes := hashBatch(batch)
	var ask []dfms.Hash
	seen := map[dfms.Hash]bool{}
	for _, h := range hashes {
		if !u.known[h] && !seen[h] {
			seen[h] = true
			ask = append(ask, h)
		}
	}
	var send []dfms.ChunkData
	if len(ask) > 0 {
		missing, err := u.fsys.b.Missing(ctx, ask)
		if err != nil {
			return err
		}
		want := make(map[dfms.Hash]bool, len(missing))
		for _, h := range missing {
			want[h] = true
		}
		for i, c := range batch {
			if want[hashes[i]] {
				send = append(send, dfms.ChunkData{Hash: hashes[i], Data: c.data})
				delete(want, hashes[i])
			}
		}
	}
	if len(send) > 0 {
		if err := u.fsys.b.PutChunks(ctx, send); err != nil {
			return err
		}
	}
	u.doneMu.Lock()
	u.sent += int64(len(send))
	for i, c := range batch {
		u.done = append(u.done, hashedRef{c.idx, hashes[i]})
		u.fsys.cache.put(hashes[i], c.data)
	}
	u.doneMu.Unlock()
	return nil
}

// hashBatch returns the hashes of a batch's chunks, hashed on every core.
func hashBatch(batch []cutChunk) []dfms.Hash {
	hashes := make([]dfms.Hash, len(batch))
	if len(batch) == 1 && !batch[0].hashed {
		hashes[0] = dfms.Sum(batch[0].data)
		return hashes
	}
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(batch))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(batch); i += workers {
				if batch[i].hashed {
					hashes[i] = batch[i].hash
				} else {
					hashes[i] = dfms.Sum(batch[i].data)
				}
			}
		}(w)
	}
	wg.Wait()
	return hashes
}
