package vfs

import (
	"context"
	"io"
	"sort"

	"github.com/dfms/dfms"
)

// view is one immutable version of a file: its chunks and where each
// starts.
type view struct {
	id      dfms.EntryID
	version int64 // the version's lasting ID (0: a file never written)
	info    VersionInfo
	chunks  []dfms.ChunkRef
	starts  []int64 // starts[i] is the offset of chunks[i]
	size    int64
}

func newView(id dfms.EntryID, info VersionInfo, m dfms.Manifest) *view {
	v := &view{id: id, version: info.ID, info: info, chunks: m.Chunks, starts: make([]int64, len(m.Chunks))}
	for i, c := range m.Chunks {
		v.starts[i] = v.size
		v.size += int64(c.Size)
	}
	v.info.Size = v.size
	return v
}

// end returns the offset just past chunk i.
func (v *view) end(i int) int64 { return v.starts[i] + int64(v.chunks[i].Size) }

// find returns the index of the chunk holding byte off (off < size).
func (v *view) find(off int64) int {
	return sort.Search(len(v.starts), func(i int) bool { return v.starts[i] > off }) - 1
}

// loader returns the function that fetches chunk ref of v from b.
func (v *view) loader(b Content, ref dfms.ChunkRef) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) { return b.ReadChunk(ctx, v.id, v.version, ref) }
}

// readView reads p at off from v through the chunk cache: fewer bytes only
// at the end, with io.EOF. With ahead > 0 the next chunks are fetched in
// the background (sequential reads).
func (fsys *FS) readView(ctx context.Context, v *view, p []byte, off int64, ahead int) (int, error) {
	if off >= v.size {
		return 0, io.EOF
	}
	i := v.find(off)
	n := 0
	for n < len(p) && i < len(v.chunks) {
		ref := v.chunks[i]
		if ref.IsHole() {
			// Zeros that no chunk holds: nothing to fetch.
			m := min(int64(len(p)-n), v.end(i)-(off+int64(n)))
			clear(p[n : n+int(m)])
			n += int(m)
			i++
			continue
		}
		b, err := fsys.cache.get(ctx, ref, v.loader(fsys.b, ref))
		if err != nil {
			return n, err
		}
		n += copy(p[n:], b[off+int64(n)-v.starts[i]:])
		i++
	}
	for j := i; j < min(i+ahead, len(v.chunks)); j++ {
		if !v.chunks[j].IsHole() {
			fsys.cache.prefetchAsync(v.chunks[j], v.loader(fsys.b, v.chunks[j]))
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// extent is the byte range [off, end).
type extent struct{ off, end int64 }

// extents is a sorted set of disjoint, non-adjacent byte ranges.
type extents []extent

// add adds [off, end), merging what it touches.
func (es extents) add(off, end int64) extents {
	if off >= end {
		return es
	}
	// The first extent that ends at or after off (touching counts).
	i := sort.Search(len(es), func(i int) bool { return es[i].end >= off })
	j := i
	for j < len(es) && es[j].off <= end {
		off, end = min(off, es[j].off), max(end, es[j].end)
		j++
	}
	if i == j {
		es = append(es, extent{})
		copy(es[i+1:], es[i:])
		es[i] = extent{off, end}
		return es
	}
	es[i] = extent{off, end}
	return append(es[:i+1], es[j:]...)
}

// clip drops everything at or past size.
func (es extents) clip(size int64) extents {
	for len(es) > 0 && es[len(es)-1].off >= size {
		es = es[:len(es)-1]
	}
	if len(es) > 0 && es[len(es)-1].end > size {
		es[len(es)-1].end = size
	}
	return es
}

// at returns the extent holding off, or the first one after it (ok false),
// or index len(es).
func (es extents) at(off int64) (int, bool) {
	i := sort.Search(len(es), func(i int) bool { return es[i].end > off })
	return i, i < len(es) && es[i].off <= off
}

// overlaps reports whether any extent meets [off, end).
func (es extents) overlaps(off, end int64) bool {
	i, _ := es.at(off)
	return i < len(es) && es[i].off < end
}

// holeEnd returns where the run of unwritten zeros at pos ends in a
// content of size bytes made of base version v below limit with dirty
// written on top (openFile): pos itself if pos holds written bytes or base
// data. Unwritten zeros are v's holes below limit and everything past
// limit, less what was written.
func holeEnd(v *view, dirty extents, limit, size, pos int64) int64 {
	end := size
	i, in := dirty.at(pos)
	if in {
		return pos
	}
	if i < len(dirty) {
		end = min(end, dirty[i].off)
	}
	// Below limit, only the base's holes are unwritten.
	for p := pos; p < min(end, limit, v.size); {
		k := v.find(p)
		if !v.chunks[k].IsHole() {
			return p
		}
		p = v.end(k)
	}
	return end
}

// seekIn answers lseek(2)'s SEEK_DATA (hole false) or SEEK_HOLE (hole
// true) at off in such a content: the first offset at or after off that
// holds data, or that is in a hole (the end of the file counts as one).
// ok is false where Linux answers ENXIO: off at or past the end, or no
// data after off.
func seekIn(v *view, dirty extents, limit, size, off int64, hole bool) (int64, bool) {
	if off < 0 || off >= size {
		return 0, false
	}
	if !hole {
		end := holeEnd(v, dirty, limit, size, off)
		return end, end < size
	}
	for pos := off; pos < size; {
		if holeEnd(v, dirty, limit, size, pos) > pos {
			return pos, true
		}
		// Data at pos: on to where it may end.
		if i, in := dirty.at(pos); in {
			pos = dirty[i].end
		} else {
			pos = min(limit, v.end(v.find(pos)))
		}
	}
	return size, true
}
