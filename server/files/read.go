package files

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"

	"github.com/dfms/dfms"
)

// OpenVersion returns a version of a file, with its manifest, for reading
// (number 0: the current version).
func (s *Service) OpenVersion(ctx context.Context, owner dfms.UserID, id dfms.EntryID, number int64) (dfms.Version, error) {
	const op dfms.Op = "files.OpenVersion"
	e, err := s.tree.GetEntry(ctx, owner, id)
	if err != nil {
		return dfms.Version{}, dfms.E(op, dfms.Other, err)
	}
	switch e.Kind {
	case dfms.KindFile:
	case dfms.KindDir, dfms.KindSymlink:
		return dfms.Version{}, dfms.E(op, dfms.IsDir, fmt.Errorf("%q is not a file", e.Name))
	default:
		return dfms.Version{}, dfms.E(op, dfms.Invalid, fmt.Errorf("%q is a %s, which has no content", e.Name, e.Kind))
	}
	if number == 0 && e.Version == 0 {
		// A file created but never written: empty.
		return dfms.Version{Entry: id, Manifest: &dfms.Manifest{}, SHA256: dfms.Sum(nil)}, nil
	}
	v, err := s.versions.GetVersion(ctx, owner, id, number)
	if err != nil {
		return v, dfms.E(op, dfms.Other, err)
	}
	return v, nil
}

// VersionByID returns, with its manifest, the version with lasting id
// vid, whichever of the owner's files holds it now.
func (s *Service) VersionByID(ctx context.Context, owner dfms.UserID, vid int64) (dfms.Version, error) {
	v, err := s.versions.VersionByID(ctx, owner, vid)
	if err != nil {
		return v, dfms.E("files.VersionByID", dfms.Other, err)
	}
	return v, nil
}

// ReadChunk fetches one chunk, appending it to buf, and verifies it: a
// chunk whose bytes do not hash to its name, or whose size is not the
// reference's, fails with kind Corrupt and its bytes are never returned.
// The bytes are hashed here unless the chunk store's Get verified them
// already (dfms.VerifyingStore: the replicated store); the size is always
// checked here.
//
// A hole is not fetched: its zeros are appended (a hole longer than the
// largest chunk fails with kind Invalid; readers of a version go through
// ReadRange, which never asks for a hole's bytes at once).
func (s *Service) ReadChunk(ctx context.Context, ref dfms.ChunkRef, buf []byte) ([]byte, error) {
	const op dfms.Op = "files.ReadChunk"
	if ref.IsHole() {
		if int(ref.Size) > s.opts.Chunking.Max {
			return buf, dfms.E(op, dfms.Invalid, fmt.Errorf("a hole of %d bytes is read in pieces", ref.Size))
		}
		return append(buf, make([]byte, ref.Size)...), nil
	}
	start := len(buf)
	out, err := s.chunks.Get(ctx, ref.Hash, buf)
	if err != nil {
		return buf, dfms.E(op, dfms.Other, fmt.Errorf("chunk %s: %w", ref.Hash, err))
	}
	data := out[start:]
	if len(data) != int(ref.Size) || (!s.verified && dfms.Sum(data) != ref.Hash) {
		if len(data) != int(ref.Size) && (s.verified || dfms.Sum(data) == ref.Hash) {
			// The bytes are intact; the reference has the wrong size.
			return buf, dfms.E(op, dfms.Corrupt, &wrongSizeError{ref: ref, size: len(data)})
		}
		return buf, dfms.E(op, dfms.Corrupt, fmt.Errorf("chunk %s failed verification (%d bytes read, %d expected)", ref.Hash, len(data), ref.Size))
	}
	s.stats.ChunksRead.Add(1)
	s.stats.BytesRead.Add(int64(len(data)))
	return out, nil
}

// wrongSizeError is a chunk read through a reference whose size is not
// the chunk's. A stored version never has one (a commit checks the sizes),
// so on a read it is corruption of the metadata; in a client's manifest it
// is bad input (Commit with Verify).
type wrongSizeError struct {
	ref  dfms.ChunkRef
	size int
}

func (e *wrongSizeError) Error() string {
	return fmt.Sprintf("chunk %s has %d bytes, not %d", e.ref.Hash, e.size, e.ref.Size)
}

// ReadRange writes length bytes of version v starting at off to w (length
// < 0: to the end). Chunks are fetched up to ReadAhead ahead of w and each
// is verified before any of its bytes are written. A range past the end
// fails with kind Invalid; reading stops at the end of the file. Holes
// read as zeros, made here: the chunk store is not asked.
func (s *Service) ReadRange(ctx context.Context, v dfms.Version, off, length int64, w io.Writer) (int64, error) {
	const op dfms.Op = "files.ReadRange"
	m := v.Manifest
	size := m.Size()
	if off < 0 || off > size {
		return 0, dfms.E(op, dfms.Invalid, fmt.Errorf("offset %d outside a file of %d bytes", off, size))
	}
	if length < 0 || off+length > size {
		length = size - off
	}
	if length == 0 {
		return 0, nil
	}
	first, within := m.Locate(off)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		data []byte
		hole int64 // a hole of this many bytes instead of data
		err  error
	}
	// One future per chunk, in order; at most ReadAhead fetches run at once
	// because the channel of futures is bounded.
	futures := make(chan chan result, s.opts.ReadAhead)
	go func() {
		defer close(futures)
		var pos int64 = -within
		for i := first; i < len(m.Chunks) && pos < length; i++ {
			ref := m.Chunks[i]
			f := make(chan result, 1)
			select {
			case futures <- f:
			case <-ctx.Done():
				return
			}
			if ref.IsHole() {
				f <- result{hole: int64(ref.Size)}
			} else {
				go func() {
					data, err := s.ReadChunk(ctx, ref, getBuf(int(ref.Size)))
					f <- result{data: data, err: err}
				}()
			}
			pos += int64(ref.Size)
		}
	}()
	var written int64
	skip := within
	for f := range futures {
		r := <-f
		if r.err != nil {
			return written, r.err
		}
		if r.hole > 0 {
			n, err := writeZeros(w, min(r.hole-skip, length-written))
			skip = 0
			written += n
			if err != nil {
				return written, dfms.E(op, dfms.Other, err)
			}
			if written == length {
				break
			}
			continue
		}
		data := r.data[skip:]
		skip = 0
		if rest := length - written; int64(len(data)) > rest {
			data = data[:rest]
		}
		n, err := w.Write(data)
		putBuf(r.data)
		written += int64(n)
		if err != nil {
			return written, dfms.E(op, dfms.Other, err)
		}
		if written == length {
			break
		}
	}
	if err := ctx.Err(); err != nil && written < length {
		return written, dfms.E(op, dfms.Unavailable, err)
	}
	// Drain: cancel stops the producer; pending fetches finish into their
	// buffered futures and are dropped.
	cancel()
	for f := range futures {
		putBuf((<-f).data)
	}
	return written, nil
}

// zeros is what holes are read from.
var zeros = make([]byte, 64<<10)

// writeZeros writes n zero bytes to w.
func writeZeros(w io.Writer, n int64) (int64, error) {
	var written int64
	for written < n {
		k, err := w.Write(zeros[:min(n-written, int64(len(zeros)))])
		written += int64(k)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// bufs recycles chunk buffers between reads, so a long download does not
// churn a new chunk-sized allocation per chunk.
var bufs sync.Pool

func getBuf(n int) []byte {
	if b, ok := bufs.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	}
	return make([]byte, 0, n)
}

func putBuf(b []byte) {
	if cap(b) > 0 {
		b = b[:0]
		bufs.Put(&b)
	}
}

// ReadFile writes the whole current version of a file to w.
func (s *Service) ReadFile(ctx context.Context, owner dfms.UserID, id dfms.EntryID, w io.Writer) (int64, error) {
	v, err := s.OpenVersion(ctx, owner, id, 0)
	if err != nil {
		return 0, err
	}
	return s.ReadRange(ctx, v, 0, -1, w)
}

// Checksum returns the SHA-256 of version v's content, computing and
// recording it if the version was committed without one (Commit without
// Verify).
// v must carry its manifest (OpenVersion).
func (s *Service) Checksum(ctx context.Context, owner dfms.UserID, v *dfms.Version) (dfms.Hash, error) {
	if !v.SHA256.IsZero() {
		return v.SHA256, nil
	}
	h := sha256.New()
	if _, err := s.ReadRange(ctx, *v, 0, -1, h); err != nil {
		return dfms.Hash{}, err
	}
	var sum dfms.Hash
	h.Sum(sum[:0])
	if err := s.versions.SetChecksum(ctx, owner, v.ID, sum); err != nil {
		return dfms.Hash{}, err
	}
	v.SHA256 = sum
	return sum, nil
}
