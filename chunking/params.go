package chunking

import (
	"fmt"
	"math"

	"github.com/dfms/dfms"
)

// Algorithm names a cut-point algorithm. The names are part of the storage
// format: a deployment records the algorithm and sizes it chunks with.
type Algorithm string

// The algorithms.
const (
	// Gear is FastCDC-style gear hashing with normalized chunking. It is the
	// default: about six times faster than Rabin for the same dedup.
	Gear Algorithm = "gear"
	// Rabin is a Rabin fingerprint over a 64-byte rolling window.
	Rabin Algorithm = "rabin"
)

const (
	// MaxSizeLimit is the largest allowed Params.Max: 16 MiB. Chunk lengths
	// therefore fit in the uint32 of dfms.ChunkRef.
	MaxSizeLimit = 16 << 20
	// MinSizeLimit is the smallest allowed Params.Min. It is the width of
	// the rolling window: the first decision of a chunk sees a full window.
	MinSizeLimit = WindowSize
	// WindowSize is the number of bytes that decide whether a cut may follow
	// them, for both algorithms.
	WindowSize = 64

	// normShift is the normalization level: below Avg the per-byte cut
	// probability is p/2^normShift, from Avg on it is p*2^normShift.
	normShift = 2
)

// Params are the chunking parameters, in bytes. A chunk is never longer than
// Max and never shorter than Min, except the last chunk of a stream. The mean
// chunk length on random data is Avg (within a few percent); Avg need not be
// a power of two.
type Params struct {
	Algorithm     Algorithm
	Min, Avg, Max int
}

// DefaultParams returns the parameters DFMS stores with: gear, Min 256 KiB,
// Avg 1 MiB, Max 4 MiB.
func DefaultParams() Params {
	return Params{Algorithm: Gear, Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20}
}

// String returns e.g. "gear/262144/1048576/4194304".
func (p Params) String() string {
	return fmt.Sprintf("%s/%d/%d/%d", p.Algorithm, p.Min, p.Avg, p.Max)
}

// Validate reports, with kind dfms.Invalid, parameters that are not
// MinSizeLimit <= Min < Avg < Max <= MaxSizeLimit or name an unknown
// algorithm.
func (p Params) Validate() error {
	const op dfms.Op = "chunking.Params.Validate"
	switch p.Algorithm {
	case Gear, Rabin:
	default:
		return dfms.E(op, dfms.Invalid, fmt.Errorf("unknown algorithm %q", p.Algorithm))
	}
	if p.Min < MinSizeLimit || p.Min >= p.Avg || p.Avg >= p.Max || p.Max > MaxSizeLimit {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("sizes %s: want %d <= min < avg < max <= %d",
			p, MinSizeLimit, MaxSizeLimit))
	}
	return nil
}

// thresholds are the per-byte cut thresholds derived from Params: a decision
// point at chunk length L cuts when the 64-bit-scaled hash of the window
// ending at L is below t1 (L < Avg) or t2 (L >= Avg). A threshold t means a
// cut probability of t/2^64 on random data.
type thresholds struct {
	t1, t2 uint64
}

// computeThresholds picks the per-byte cut probability so that the expected
// chunk length on random data equals p.Avg.
//
// Decision points are the lengths L = Min, Min+1, ..., Max-1; a chunk is cut
// at the first L whose window hash is below the threshold, or at Max. With
// q1 = s/4 before Avg (A = Avg-Min points) and q2 = 4s from Avg on (B =
// Max-Avg points), and r = 1-q, the expected length is
//
//	E(s) = Min + (1-q1)(1-r1^A)/q1 + r1^A (1-q2)(1-r2^B)/q2
//
// E falls monotonically from Max (s = 0) to about Min+15 (s = 1/4), so s is
// found by bisection. Only +, -, *, / and comparisons of float64 are used,
// each product rounded explicitly (float64(...)) so that no platform fuses
// operations: the result is the same bit for bit everywhere, as the storage
// format requires. TestThresholdsGolden pins the values.
func computeThresholds(p Params) thresholds {
	minL, avg := float64(p.Min), float64(p.Avg)
	a, b := p.Avg-p.Min, p.Max-p.Avg
	const nf = 1 << normShift
	mean := func(s float64) float64 {
		q1 := float64(s / nf)
		q2 := math.Min(float64(s*nf), 1)
		r1, r2 := float64(1-q1), float64(1-q2)
		r1a := powInt(r1, a)
		r2b := powInt(r2, b)
		part1 := float64(float64(r1*float64(1-r1a)) / q1)
		part2 := float64(float64(r1a*float64(r2*float64(1-r2b))) / q2)
		return float64(float64(minL+part1) + part2)
	}
	lo, hi := 0.0, 1.0/nf
	for range 200 {
		mid := float64(float64(lo+hi) / 2)
		if mid <= lo || mid >= hi {
			break
		}
		if mean(mid) > avg {
			lo = mid
		} else {
			hi = mid
		}
	}
	s := hi
	return thresholds{t1: probToThreshold(float64(s / nf)), t2: probToThreshold(float64(s * nf))}
}

// powInt returns x**n by repeated squaring, rounding every product.
func powInt(x float64, n int) float64 {
	r := 1.0
	for n > 0 {
		if n&1 == 1 {
			r = float64(r * x)
		}
		x = float64(x * x)
		n >>= 1
	}
	return r
}

// probToThreshold returns floor(q * 2^64), saturated to [1, 2^64-1].
func probToThreshold(q float64) uint64 {
	const two64 = 18446744073709551616.0
	v := float64(q * two64)
	switch {
	case v >= two64:
		return math.MaxUint64
	case v < 1:
		return 1
	}
	return uint64(v)
}
