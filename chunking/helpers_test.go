package chunking

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"testing"
)

// testData returns n pseudo-random bytes: splitmix64 from seed, each output
// written little-endian. It does not depend on math/rand, so golden values
// derived from it never move.
func testData(seed uint64, n int) []byte {
	b := make([]byte, n+7)
	s := seed
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], splitmix64(&s))
	}
	return b[:n:n]
}

// chunkAll cuts data with Next through r (bytes.Reader when r is nil) and
// returns the chunks' bytes (copies).
func chunkAll(t testing.TB, data []byte, p Params, wrap func(io.Reader) io.Reader) [][]byte {
	t.Helper()
	return mapChunks(t, data, p, wrap, func(ch Chunk) []byte { return bytes.Clone(ch.Data) })
}

// chunkLens returns only the lengths of data's chunks, without copies.
func chunkLens(t testing.TB, data []byte, p Params) []int {
	t.Helper()
	return mapChunks(t, data, p, nil, func(ch Chunk) int { return len(ch.Data) })
}

// mapChunks cuts data with Next through wrap (if not nil) and returns f of
// each chunk, in order; it fails t if a chunk does not start where the one
// before it ended.
func mapChunks[T any](t testing.TB, data []byte, p Params, wrap func(io.Reader) io.Reader, f func(Chunk) T) []T {
	t.Helper()
	var r io.Reader = bytes.NewReader(data)
	if wrap != nil {
		r = wrap(r)
	}
	c, err := New(r, p)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	buf := make([]byte, p.Max)
	var off int64
	for {
		ch, err := c.Next(buf)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if ch.Offset != off {
			t.Fatalf("chunk %d: offset %d, want %d", len(out), ch.Offset, off)
		}
		off += int64(len(ch.Data))
		out = append(out, f(ch))
	}
}

// checkChunks fails t unless chunks reassemble to data and respect p's
// bounds.
func checkChunks(t testing.TB, data []byte, chunks [][]byte, p Params) {
	t.Helper()
	var all []byte
	for i, ch := range chunks {
		if len(ch) > p.Max || len(ch) == 0 || len(ch) < p.Min && i != len(chunks)-1 {
			t.Fatalf("chunk %d of %d has %d bytes; params %v", i, len(chunks), len(ch), p)
		}
		all = append(all, ch...)
	}
	if !bytes.Equal(all, data) {
		t.Fatalf("chunks (%d bytes) do not reassemble to the input (%d bytes)", len(all), len(data))
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// refChunks is the reference chunker: for every candidate length it
// recomputes the window hash from scratch (Rabin by bitwise polynomial
// division, without the tables), so it checks the rolling loops, the
// unrolling and the streaming state. It returns the chunk lengths.
func refChunks(data []byte, p Params) []int {
	cfg := newConfig(p)
	var lens []int
	for len(data) > 0 {
		l := refCut(data, cfg)
		lens = append(lens, l)
		data = data[l:]
	}
	return lens
}

func refCut(data []byte, cfg config) int {
	for l := cfg.min; l < cfg.max && l <= len(data); l++ {
		win := data[l-WindowSize : l]
		long := l >= cfg.avg
		switch cfg.alg {
		case Gear:
			var h uint64
			for _, b := range win {
				h = h<<1 + gearTable[b]
			}
			t := cfg.t1
			if long {
				t = cfg.t2
			}
			if h < t {
				return l
			}
		case Rabin:
			f := refRabin(win)
			thr := cfg.rabin1
			if long {
				thr = cfg.rabin2
			}
			if f >= thr {
				return l
			}
		}
	}
	return min(len(data), cfg.max)
}

// refRabin returns the Rabin fingerprint of win by long division.
func refRabin(win []byte) uint64 {
	var f uint64
	for _, b := range win {
		for bit := 7; bit >= 0; bit-- {
			f = f<<1 | uint64(b>>bit&1)
			if f>>rabinDeg&1 == 1 {
				f ^= rabinPoly
			}
		}
	}
	return f
}

func lens(chunks [][]byte) []int {
	l := make([]int, len(chunks))
	for i, c := range chunks {
		l[i] = len(c)
	}
	return l
}
