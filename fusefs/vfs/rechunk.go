package vfs

import (
	"context"
	"io"

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

// cleanLocked reports whether base chunk i is unchanged in the content.
func (f *openFile) cleanLocked(v *view, i int) bool {
	start, end := v.starts[i], v.end(i)
	if end > f.limit || f.dirty.overlaps(start, end) {
		return false
	}
	return end < v.size || end == f.size
}

// rechunkLocked returns the manifest of the content, uploading the chunks
// it cut that the server lacks.
func (f *openFile) rechunkLocked(ctx context.Context) (dfms.Manifest, error) {
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
		known[c.Hash] = true
	}
	up := &uploader{fsys: f.fsys, known: known}
	var out dfms.Manifest
	var ch *chunking.Chunker
	buf := f.fsys.chunkBuf(p.Max)
	defer f.fsys.putChunkBuf(buf)
	i, pos := 0, int64(0)
	for pos < f.size {
		if i < len(v.chunks) && v.starts[i] == pos && f.cleanLocked(v, i) {
			out.Chunks = append(out.Chunks, v.chunks[i])
			pos = v.end(i)
			i++
			continue
		}
		// Cut from pos until a cut meets an old boundary again.
		r := &contentReader{ctx: ctx, f: f, pos: pos}
		if ch == nil {
			if ch, err = chunking.New(r, p); err != nil {
				return dfms.Manifest{}, err
			}
		} else {
			ch.Reset(r)
		}
		for pos < f.size {
			c, err := ch.Next(buf)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return dfms.Manifest{}, err
			}
			ref, err := up.add(ctx, c.Data)
			if err != nil {
				return dfms.Manifest{}, err
			}
			out.Chunks = append(out.Chunks, ref)
			pos += int64(len(c.Data))
			for i < len(v.chunks) && v.starts[i] < pos {
				i++
			}
			if i < len(v.chunks) && v.starts[i] == pos && f.cleanLocked(v, i) {
				break
			}
		}
	}
	if err := up.flush(ctx); err != nil {
		return dfms.Manifest{}, err
	}
	f.fsys.stats.chunksCut.Add(up.cut)
	f.fsys.stats.chunksSent.Add(up.sent)
	return out, nil
}

// contentReader reads the content of a file from pos to its end; the
// caller holds the file's lock.
type contentReader struct {
	ctx context.Context
	f   *openFile
	pos int64
}

func (r *contentReader) Read(p []byte) (int, error) {
	if r.pos >= r.f.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.f.size-r.pos)]
	n, err := r.f.readContentLocked(r.ctx, p, r.pos)
	r.pos += int64(n)
	return n, err
}

// uploadBatch is how many bytes of new chunks are sent at a time.
const uploadBatch = 16 << 20

// uploader collects the chunks a commit cut and sends those the server
// lacks, in batches: one question (Missing) and one upload (PutChunks)
// per batch.
type uploader struct {
	fsys    *FS
	known   map[dfms.Hash]bool // the server has these (the base's chunks, and batches sent)
	pending []dfms.ChunkData
	bytes   int
	cut     int64 // chunks cut
	sent    int64 // chunks uploaded
}

func (u *uploader) add(ctx context.Context, data []byte) (dfms.ChunkRef, error) {
	h := dfms.Sum(data)
	ref := dfms.ChunkRef{Hash: h, Size: uint32(len(data))}
	u.cut++
	if u.known[h] {
		return ref, nil
	}
	u.known[h] = true
	own := append([]byte(nil), data...)
	u.pending = append(u.pending, dfms.ChunkData{Hash: h, Data: own})
	u.bytes += len(own)
	if u.bytes >= uploadBatch {
		return ref, u.flush(ctx)
	}
	return ref, nil
}

func (u *uploader) flush(ctx context.Context) error {
	if len(u.pending) == 0 {
		return nil
	}
	hs := make([]dfms.Hash, len(u.pending))
	for i, c := range u.pending {
		hs[i] = c.Hash
	}
	missing, err := u.fsys.b.Missing(ctx, hs)
	if err != nil {
		return err
	}
	want := make(map[dfms.Hash]bool, len(missing))
	for _, h := range missing {
		want[h] = true
	}
	var send []dfms.ChunkData
	for _, c := range u.pending {
		if want[c.Hash] {
			send = append(send, c)
		}
	}
	if len(send) > 0 {
		if err := u.fsys.b.PutChunks(ctx, send); err != nil {
			return err
		}
	}
	u.sent += int64(len(send))
	for _, c := range u.pending {
		u.fsys.cache.put(c.Hash, c.Data)
	}
	u.pending, u.bytes = u.pending[:0], 0
	return nil
}
