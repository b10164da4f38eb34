package chunking

import (
	"bytes"
	"errors"
	"io"
	"math/bits"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/dfms/dfms"
)

// smallParams are used where the reference chunker must be fast.
var smallParams = []Params{
	{Gear, 256, 1024, 4096},
	{Rabin, 256, 1024, 4096},
	{Gear, 64, 65, 66},
	{Rabin, 64, 65, 66},
	{Gear, 64, 100, 300},
	{Rabin, 64, 100, 300},
	{Gear, 1000, 3000, 5000},
	{Rabin, 1000, 3000, 5000},
}

func TestValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatal(err)
	}
	if DefaultParams().Algorithm != Gear {
		t.Error("default algorithm is not gear")
	}
	for _, p := range []Params{
		{},
		{"", 256, 1024, 4096},
		{"fastcdc", 256, 1024, 4096},
		{Gear, 63, 1024, 4096},
		{Gear, 0, 1024, 4096},
		{Gear, 1024, 1024, 4096},
		{Gear, 2048, 1024, 4096},
		{Rabin, 256, 4096, 4096},
		{Gear, 256, 1024, MaxSizeLimit + 1},
		{Gear, -1, 1024, 4096},
	} {
		err := p.Validate()
		if !dfms.Is(err, dfms.Invalid) {
			t.Errorf("%v: Validate = %v, want kind Invalid", p, err)
		}
		if _, err := New(bytes.NewReader(nil), p); !dfms.Is(err, dfms.Invalid) {
			t.Errorf("%v: New = %v, want kind Invalid", p, err)
		}
	}
	for _, p := range []Params{
		{Gear, 64, 65, 66},
		{Rabin, MaxSizeLimit - 2, MaxSizeLimit - 1, MaxSizeLimit},
		{Gear, 1000, 1001, 1 << 20},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%v: %v", p, err)
		}
	}
}

// TestGearScanMatchesPlain checks the unrolled gear loop against the plain
// one for every alignment and several thresholds.
func TestGearScanMatchesPlain(t *testing.T) {
	plain := func(p []byte, h, t uint64) (int, uint64) {
		for i, b := range p {
			h = h<<1 + gearTable[b]
			if h < t {
				return i + 1, h
			}
		}
		return -1, h
	}
	data := testData(3, 1<<16)
	for _, th := range []uint64{1, 1 << 50, 1 << 56, 1 << 60, 1 << 63} {
		for n := range 40 {
			for start := 0; start+n <= len(data); start += 997 {
				p := data[start : start+n]
				k1, h1 := plain(p, 12345, th)
				k2, h2 := gearScan(p, 12345, th)
				if k1 != k2 || h1 != h2 {
					t.Fatalf("t=%#x n=%d start=%d: plain (%d, %#x), gearScan (%d, %#x)", th, n, start, k1, h1, k2, h2)
				}
			}
		}
	}
}

// TestRabinPolynomialIrreducible verifies rabinPoly with Rabin's test: a
// polynomial P of prime degree n over GF(2) is irreducible iff
// x^(2^n) = x mod P and gcd(P, x^2+x) = 1, the latter meaning P(0) = P(1) = 1.
func TestRabinPolynomialIrreducible(t *testing.T) {
	if got := 63 - bits.LeadingZeros64(rabinPoly); got != rabinDeg {
		t.Fatalf("degree %d, want %d", got, rabinDeg)
	}
	if !irreducible53(rabinPoly) {
		t.Fatalf("%#x is not irreducible", rabinPoly)
	}
	// Reducible polynomials with P(0) = P(1) = 1 must fail: the products
	// (x^2+x+1)(x^51+x+1) and (x^3+x+1)(x^50+x^2+1)... each factor has an
	// odd weight and a constant term, so only the x^(2^n) test can reject
	// them.
	for _, f := range [][2]uint64{{0b111, 1<<51 | 0b11}, {0b1011, 1<<50 | 0b111}} {
		p := clmul(f[0], f[1])
		if 63-bits.LeadingZeros64(p) != rabinDeg {
			t.Fatalf("test product %#x has the wrong degree", p)
		}
		if irreducible53(p) {
			t.Errorf("reducible %#x passes the test", p)
		}
	}
}

func irreducible53(p uint64) bool {
	if p&1 == 0 || bits.OnesCount64(p)%2 == 0 {
		return false // divisible by x or by x+1
	}
	mulmod := func(a, b uint64) uint64 {
		var r uint64
		for i := rabinDeg - 1; i >= 0; i-- {
			r <<= 1
			if r>>rabinDeg&1 == 1 {
				r ^= p
			}
			if b>>i&1 == 1 {
				r ^= a
			}
		}
		return r
	}
	x := uint64(2)
	for range rabinDeg {
		x = mulmod(x, x)
	}
	return x == 2
}

func clmul(a, b uint64) uint64 {
	var r uint64
	for i := range 64 {
		if b>>i&1 == 1 {
			r ^= a << i
		}
	}
	return r
}

// TestRabinTables checks the rolling fingerprint against long division.
func TestRabinTables(t *testing.T) {
	data := testData(4, 4096)
	f := rabinAppend(0, data[:WindowSize])
	if f != refRabin(data[:WindowSize]) {
		t.Fatal("rabinAppend disagrees with long division")
	}
	for i := WindowSize; i < len(data); i++ {
		k, g := rabinScan(data, i, i+1, f, 1<<rabinDeg) // never cuts
		if k != -1 {
			t.Fatal("rabinScan cut with an impossible threshold")
		}
		f = g
		if want := refRabin(data[i+1-WindowSize : i+1]); f != want {
			t.Fatalf("at %d: rolling %#x, long division %#x", i, f, want)
		}
	}
}

// TestMatchesReference compares the streaming chunker with the reference on
// random, low-entropy and repetitive data, through readers of every kind.
func TestMatchesReference(t *testing.T) {
	n := 300 << 10
	if raceEnabled {
		n = 64 << 10
	}
	inputs := map[string][]byte{
		"random": testData(5, n),
		"zeros":  make([]byte, 20000),
		"text":   bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 500),
		"period": bytes.Repeat(testData(6, 100), 200),
		"sparse": func() []byte {
			b := make([]byte, 50000)
			for i := 0; i < len(b); i += 37 {
				b[i] = byte(i)
			}
			return b
		}(),
	}
	wraps := map[string]func(io.Reader) io.Reader{
		"bytes":   nil,
		"onebyte": iotest.OneByteReader,
		"half":    iotest.HalfReader,
		"dataerr": iotest.DataErrReader,
	}
	for name, data := range inputs {
		for _, p := range smallParams {
			want := refChunks(data, p)
			for wname, wrap := range wraps {
				if wname == "onebyte" && len(data) > 100000 {
					continue
				}
				chunks := chunkAll(t, data, p, wrap)
				checkChunks(t, data, chunks, p)
				if got := lens(chunks); !slices.Equal(got, want) {
					t.Fatalf("%s %v %s: lengths %v, reference %v", name, p, wname, got[:min(10, len(got))], want[:min(10, len(want))])
				}
			}
		}
	}
}

func TestEdgeCases(t *testing.T) {
	for _, alg := range []Algorithm{Gear, Rabin} {
		p := DefaultParams()
		p.Algorithm = alg
		t.Run(string(alg), func(t *testing.T) {
			// Empty input: io.EOF at once, and again.
			c, err := New(bytes.NewReader(nil), p)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := c.Next(nil); err != io.EOF {
					t.Fatalf("empty input: %v, want io.EOF", err)
				}
			}
			// Shorter than Min: one chunk.
			short := testData(7, p.Min-1)
			if got := chunkAll(t, short, p, nil); len(got) != 1 || !bytes.Equal(got[0], short) {
				t.Errorf("input shorter than Min: %d chunks", len(got))
			}
			one := []byte{42}
			if got := chunkAll(t, one, p, nil); len(got) != 1 || !bytes.Equal(got[0], one) {
				t.Errorf("one byte: %d chunks", len(got))
			}
			// Exactly Max zero bytes: one chunk; Max+1: Max and 1.
			if got := lens(chunkAll(t, make([]byte, p.Max), p, nil)); !slices.Equal(got, []int{p.Max}) {
				t.Errorf("Max zeros: %v", got)
			}
			if got := lens(chunkAll(t, make([]byte, p.Max+1), p, nil)); !slices.Equal(got, []int{p.Max, 1}) {
				t.Errorf("Max+1 zeros: %v", got)
			}
			// Exactly Max random bytes: valid chunks.
			data := testData(8, p.Max)
			checkChunks(t, data, chunkAll(t, data, p, nil), p)
			// All zeros: chunks of exactly Max except the last.
			size := 64 << 20
			if raceEnabled {
				size = 16 << 20
			}
			size += 12345
			ls := chunkLens(t, make([]byte, size), p)
			for i, l := range ls[:len(ls)-1] {
				if l != p.Max {
					t.Fatalf("zeros: chunk %d has %d bytes", i, l)
				}
			}
			if last := ls[len(ls)-1]; last != size%p.Max {
				t.Errorf("zeros: last chunk %d bytes, want %d", last, size%p.Max)
			}
		})
	}
}

// TestConstantRuns checks that a run of any one byte value is cut only at
// Max with the default parameters: no constant window passes the threshold.
func TestConstantRuns(t *testing.T) {
	for _, alg := range []Algorithm{Gear, Rabin} {
		p := DefaultParams()
		p.Algorithm = alg
		cfg := newConfig(p)
		for v := range 256 {
			win := bytes.Repeat([]byte{byte(v)}, WindowSize)
			var cut bool
			if alg == Gear {
				var h uint64
				for _, b := range win {
					h = h<<1 + gearTable[b]
				}
				cut = h < cfg.t2
			} else {
				cut = refRabin(win) >= cfg.rabin2
			}
			if cut {
				t.Errorf("%s: a run of byte %#x cuts", alg, v)
			}
		}
	}
}

func TestBounds(t *testing.T) {
	n := 8 << 20
	if raceEnabled {
		n = 1 << 20
	}
	random := testData(9, n)
	lowEntropy := make([]byte, n)
	for i, b := range random {
		lowEntropy[i] = b & 0x03
	}
	for _, p := range append(slices.Clone(smallParams),
		Params{Gear, 64 << 10, 256 << 10, 1 << 20}, Params{Rabin, 64 << 10, 256 << 10, 1 << 20},
		Params{Gear, 8 << 10, 9 << 10, 10 << 10}, Params{Rabin, 8 << 10, 9 << 10, 10 << 10},
		Params{Gear, 64, 32 << 10, 64 << 10}, Params{Rabin, 64, 32 << 10, 64 << 10},
	) {
		for _, data := range [][]byte{random, lowEntropy} {
			checkChunks(t, data, chunkAll(t, data, p, nil), p)
		}
	}
}

// TestAverage checks that the mean chunk length on random data is Avg within
// 15% (in practice within a few percent).
func TestAverage(t *testing.T) {
	n := 256 << 20
	if raceEnabled {
		n = 48 << 20
	}
	data := testData(10, n)
	for _, p := range []Params{
		{Gear, 256 << 10, 1 << 20, 4 << 20},
		{Rabin, 256 << 10, 1 << 20, 4 << 20},
		{Gear, 64 << 10, 256 << 10, 1 << 20},
		{Rabin, 64 << 10, 256 << 10, 1 << 20},
		{Gear, 16 << 10, 200 << 10, 1 << 20},
		{Gear, 100 << 10, 150 << 10, 4 << 20},
	} {
		ls := chunkLens(t, data, p)
		ls = ls[:len(ls)-1] // the last chunk is cut by EOF
		sum := 0
		for _, l := range ls {
			sum += l
		}
		mean := float64(sum) / float64(len(ls))
		ratio := mean / float64(p.Avg)
		t.Logf("%v: %d chunks, mean %.0f (%.3f of Avg)", p, len(ls), mean, ratio)
		if ratio < 0.85 || ratio > 1.15 {
			t.Errorf("%v: mean chunk %.0f bytes, want %d ±15%%", p, mean, p.Avg)
		}
	}
}

// TestStability checks that a one-byte insertion near the start, or a
// one-byte change in the middle, leaves at least 95% of the chunks of 64 MiB
// intact. It runs in full under the race detector too (about 12 s).
func TestStability(t *testing.T) {
	const n = 64 << 20
	data := testData(11, n)
	insert := slices.Insert(slices.Clone(data), 1000, 0x5a)
	change := slices.Clone(data)
	change[n/2] ^= 0xff
	for _, alg := range []Algorithm{Gear, Rabin} {
		p := DefaultParams()
		p.Algorithm = alg
		orig := hashSet(t, data, p)
		for name, edited := range map[string][]byte{"insert": insert, "change": change} {
			kept, total := 0, 0
			for _, h := range hashList(t, edited, p) {
				total++
				if orig[h] {
					kept++
				}
			}
			frac := float64(kept) / float64(total)
			t.Logf("%s %s: %d of %d chunks unchanged (%.1f%%)", alg, name, kept, total, 100*frac)
			if frac < 0.95 {
				t.Errorf("%s %s: only %.1f%% of chunks unchanged", alg, name, 100*frac)
			}
			if total-kept > 2 {
				t.Errorf("%s %s: %d chunks changed, want at most 2", alg, name, total-kept)
			}
		}
	}
}

func hashList(t testing.TB, data []byte, p Params) []dfms.Hash {
	t.Helper()
	return mapChunks(t, data, p, nil, func(ch Chunk) dfms.Hash { return dfms.Sum(ch.Data) })
}

func hashSet(t testing.TB, data []byte, p Params) map[dfms.Hash]bool {
	m := map[dfms.Hash]bool{}
	for _, h := range hashList(t, data, p) {
		m[h] = true
	}
	return m
}

type errReader struct {
	r   io.Reader
	n   int // bytes before the error
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	p = p[:min(len(p), e.n)]
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

func TestNextErrors(t *testing.T) {
	p := Params{Gear, 256, 1024, 4096}
	data := testData(12, 100000)
	boom := errors.New("boom")
	c, err := New(&errReader{bytes.NewReader(data), 50000, boom}, p)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	buf := make([]byte, p.Max)
	for {
		ch, err := c.Next(buf)
		if err != nil {
			if err != boom {
				t.Fatalf("Next = %v, want boom", err)
			}
			break
		}
		got += len(ch.Data)
	}
	if got > 50000 {
		t.Errorf("%d bytes of chunks before an error at 50000", got)
	}
	if _, err := c.Next(buf); err != boom {
		t.Errorf("error not sticky: %v", err)
	}
	// A reader that makes no progress.
	c.Reset(iotest.ErrReader(nil))
	if _, err := c.Next(buf); err != io.ErrNoProgress {
		t.Errorf("zero reads: %v, want io.ErrNoProgress", err)
	}
	// Reset makes the Chunker usable again and equal to a new one.
	c.Reset(bytes.NewReader(data))
	var again [][]byte
	for {
		ch, err := c.Next(nil) // a buffer of cap < Max is replaced
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		again = append(again, bytes.Clone(ch.Data))
	}
	if want := chunkAll(t, data, p, nil); !slices.EqualFunc(again, want, bytes.Equal) {
		t.Error("chunks after Reset differ from a new Chunker's")
	}
}
