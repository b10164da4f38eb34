package chunking

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/dfms/dfms"
)

// Chunk is one chunk of a stream.
type Chunk struct {
	Offset int64  // position of the chunk's first byte in the stream
	Data   []byte // the chunk's bytes: a slice of the buffer passed to Next (or of its replacement)
}

// config is Params made ready for the scanning loops.
type config struct {
	alg            Algorithm
	min, avg, max  int
	t1, t2         uint64 // gear: cut when the hash is below t1 (L < avg) or t2 (L >= avg)
	rabin1, rabin2 uint64 // rabin: cut when the fingerprint is >= rabin1 or rabin2
	step           int    // read size once Min bytes are buffered
}

func newConfig(p Params) config {
	if last := lastConfig.Load(); last != nil && last.p == p {
		return last.c
	}
	t := computeThresholds(p)
	c := config{
		alg: p.Algorithm, min: p.Min, avg: p.Avg, max: p.Max,
		t1: t.t1, t2: t.t2,
		rabin1: rabinThreshold(t.t1), rabin2: rabinThreshold(t.t2),
		step: min(max(p.Avg/4, 16<<10), p.Max),
	}
	lastConfig.Store(&paramsConfig{p, c})
	return c
}

// lastConfig holds the config made last: a process cuts with one set of
// parameters, and computing the thresholds costs more than cutting a
// small file, for which the mount makes a Chunker of its own.
var lastConfig atomic.Pointer[paramsConfig]

type paramsConfig struct {
	p Params
	c config
}

// rabinThreshold converts a 64-bit-scaled "below t" threshold into the
// equivalent "at or above" threshold on 53-bit fingerprints.
func rabinThreshold(t uint64) uint64 {
	return 1<<rabinDeg - max(t>>(64-rabinDeg), 1)
}

// Chunker cuts a stream into content-defined chunks. It is not safe for
// concurrent use.
//
// The Chunker reads straight into the buffer the caller passes to Next and
// scans it there, without a copy of its own. Once Min bytes are in, it reads
// in steps of Avg/4 (at least 16 KiB), so it reads at most one step past a
// cut; those bytes (the carry) are copied to the start of the next chunk's
// buffer, about an eighth of Avg per chunk on average.
type Chunker struct {
	r     io.Reader
	cfg   config
	carry []byte
	off   int64
	eof   bool
	err   error // sticky: a read error or io.EOF after the last chunk

	// Scan state of the chunk being assembled.
	pos int    // next index of the chunk to hash
	h   uint64 // gear hash or Rabin fingerprint up to pos
}

// New returns a Chunker reading r. It fails with kind dfms.Invalid if p is
// not valid.
func New(r io.Reader, p Params) (*Chunker, error) {
	if err := p.Validate(); err != nil {
		return nil, dfms.E("chunking.New", dfms.Other, err)
	}
	// The carry grows on first need (up to one read step): a small file
	// has none.
	c := &Chunker{cfg: newConfig(p)}
	c.Reset(r)
	return c, nil
}

// Reset makes c read a new stream from r, keeping its parameters and buffers.
func (c *Chunker) Reset(r io.Reader) {
	c.r = r
	c.carry = c.carry[:0]
	c.off = 0
	c.eof = false
	c.err = nil
}

// Next reads the next chunk into buf and returns it. buf should have a
// capacity of at least Params.Max and can be reused for every call once the
// previous chunk is no longer needed; a smaller buf is replaced by a new one
// of Max bytes. Next returns io.EOF after the last chunk (at once for an
// empty stream) and returns any other error of the reader, without a chunk;
// the error is then returned by every later call until Reset.
func (c *Chunker) Next(buf []byte) (Chunk, error) {
	if c.err != nil {
		return Chunk{}, c.err
	}
	if cap(buf) < c.cfg.max {
		buf = make([]byte, c.cfg.max)
	}
	buf = buf[:c.cfg.max]
	n := copy(buf, c.carry)
	c.carry = c.carry[:0]
	c.pos, c.h = c.cfg.min-WindowSize, 0
	zeroReads := 0
	for {
		if cut := c.find(buf[:n]); cut > 0 {
			c.carry = append(c.carry, buf[cut:n]...)
			return c.emit(buf[:cut]), nil
		}
		if c.eof {
			if n == 0 {
				c.err = io.EOF
				return Chunk{}, io.EOF
			}
			return c.emit(buf[:n]), nil
		}
		limit := min(c.cfg.max, max(n, c.cfg.min)+c.cfg.step)
		m, err := c.r.Read(buf[n:limit])
		if m < 0 || m > limit-n {
			c.err = dfms.E("chunking.Chunker.Next", dfms.Other, fmt.Errorf("reader returned %d bytes for a %d-byte buffer", m, limit-n))
			return Chunk{}, c.err
		}
		n += m
		switch {
		case err == io.EOF:
			c.eof = true
		case err != nil:
			c.err = err
			return Chunk{}, err
		case m == 0:
			if zeroReads++; zeroReads >= 100 {
				c.err = io.ErrNoProgress
				return Chunk{}, c.err
			}
		}
	}
}

func (c *Chunker) emit(data []byte) Chunk {
	ch := Chunk{Offset: c.off, Data: data}
	c.off += int64(len(data))
	return ch
}

// find continues scanning the chunk being assembled, b (len(b) <= Max), and
// returns the chunk's length if it ends within b, or 0 if more bytes are
// needed.
//
// A decision point is a length L in [Min, Max): the chunk is cut at the first
// L for which the hash of the window b[L-64:L] passes the threshold of its
// region (L < Avg or L >= Avg), and at Max if none does. The bytes
// b[Min-64:Min-1] only fill the first window.
func (c *Chunker) find(b []byte) int {
	cfg := &c.cfg
	n := len(b)
	i, h := c.pos, c.h
	if n <= i {
		return 0
	}
	// fill is the index up to which bytes are hashed without a decision.
	// Gear decides at L = Min while hashing index Min-1, in the scan loop;
	// Rabin has no byte to drop while filling, so it hashes index Min-1
	// here and decides at Min apart.
	fill := cfg.min - 1
	if cfg.alg == Rabin {
		fill = cfg.min
	}
	if i < fill {
		end := min(n, fill)
		if cfg.alg == Gear {
			for _, x := range b[i:end] {
				h = h<<1 + gearTable[x]
			}
		} else {
			h = rabinAppend(h, b[i:end])
		}
		i = end
		if i < fill {
			c.pos, c.h = i, h
			return 0
		}
		if cfg.alg == Rabin && h >= cfg.rabin1 {
			return cfg.min
		}
	}
	// Indices before Avg-1 decide lengths below Avg.
	if i < cfg.avg-1 {
		end := min(n, cfg.avg-1)
		var k int
		if k, h = c.scan(b, i, end, h, false); k > 0 {
			return k
		}
		i = end
		if i < cfg.avg-1 {
			c.pos, c.h = i, h
			return 0
		}
	}
	if end := min(n, cfg.max); i < end {
		var k int
		if k, h = c.scan(b, i, end, h, true); k > 0 {
			return k
		}
		i = end
	}
	if i >= cfg.max {
		return cfg.max
	}
	c.pos, c.h = i, h
	return 0
}

// scan hashes b[i:end] (rolling on from h) and returns the length of the
// chunk if a decision in that range cuts, or 0 and the new hash. long
// selects the thresholds of lengths >= Avg.
func (c *Chunker) scan(b []byte, i, end int, h uint64, long bool) (int, uint64) {
	cfg := &c.cfg
	if cfg.alg == Gear {
		t := cfg.t1
		if long {
			t = cfg.t2
		}
		k, h := gearScan(b[i:end], h, t)
		if k > 0 {
			return i + k, h
		}
		return 0, h
	}
	thr := cfg.rabin1
	if long {
		thr = cfg.rabin2
	}
	k, h := rabinScan(b, i, end, h, thr)
	if k > 0 {
		return k, h
	}
	return 0, h
}
