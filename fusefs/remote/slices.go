package remote

import (
	"errors"
	"io"
)

// slicesReader reads the concatenation of byte slices without copying
// them into one, and seeks (a request body is sent again from its start
// after a 401 or while the server cannot be reached).
type slicesReader struct {
	parts [][]byte
	size  int64
	off   int64
	// part is the part off is in (or the first past it), and start
	// where that part starts: Read goes on from there.
	part  int
	start int64
}

func newSlicesReader(parts [][]byte) *slicesReader {
	r := &slicesReader{parts: parts}
	for _, p := range parts {
		r.size += int64(len(p))
	}
	return r
}

func (r *slicesReader) Read(b []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(b) && r.part < len(r.parts) {
		p := r.parts[r.part]
		if r.off < r.start+int64(len(p)) {
			k := copy(b[n:], p[r.off-r.start:])
			n += k
			r.off += int64(k)
			continue
		}
		r.start += int64(len(p))
		r.part++
	}
	return n, nil
}

func (r *slicesReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("slicesReader.Seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("slicesReader.Seek: negative position")
	}
	r.off, r.part, r.start = offset, 0, 0 // Read finds the part again
	return offset, nil
}
