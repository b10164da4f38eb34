package chunking

// The Rabin fingerprint of a window b[0..63] is the remainder of the
// polynomial sum b[k] * x^(8*(63-k)) over GF(2) (bytes read as polynomials,
// most significant bit first) divided by rabinPoly.
//
// rabinPoly is x^53 + ... + 1, irreducible over GF(2). It was found by taking
// the first output of splitmix64 seeded with the ASCII of "dfmsrabn"
// (0x6466_6d73_7261_626e), keeping its low 53 bits, setting bit 53 and bit 0
// (0x23ce665ca218f3), and stepping by 2 until Rabin's irreducibility test
// passed (92 steps): for a prime degree n, P is irreducible iff
// x^(2^n) = x mod P and gcd(P, x^2+x) = 1. TestRabinPolynomialIrreducible
// repeats the test. The polynomial is part of the storage format: never
// change it.
const (
	rabinPoly  = 0x23ce665ca219ab
	rabinDeg   = 53
	rabinMask  = 1<<rabinDeg - 1
	rabinShift = rabinDeg - 8
)

// rabinModTable[t] = t * x^53 mod P: it folds the 8 bits pushed above
// degree 53 by a shift back in. rabinOutTable[b] = b * x^(8*64) mod P: it
// removes the byte that leaves the window, after the shift.
var rabinModTable, rabinOutTable = func() (mod, out [256]uint64) {
	for i := range 256 {
		mod[i] = polyMulXn(uint64(i), rabinDeg)
		out[i] = polyMulXn(uint64(i), 8*WindowSize)
	}
	return mod, out
}()

// polyMulXn returns a * x^n mod rabinPoly, for a of degree < 53.
func polyMulXn(a uint64, n int) uint64 {
	for range n {
		a <<= 1
		if a>>rabinDeg&1 == 1 {
			a ^= rabinPoly
		}
	}
	return a
}

// rabinAppend returns the fingerprint of the window extended by p, dropping
// nothing: it is used to fill the first window of a chunk.
func rabinAppend(f uint64, p []byte) uint64 {
	for _, c := range p {
		f = (f<<8|uint64(c))&rabinMask ^ rabinModTable[uint8(f>>rabinShift)]
	}
	return f
}

// rabinScan slides the 64-byte window over b[i:end] (i >= 64, f being the
// fingerprint of b[i-64:i]) and returns k > 0 and the fingerprint as soon as
// the fingerprint of b[k-64:k] is >= thr, or -1 and the final fingerprint.
//
// Cutting on high fingerprints (not on zero low bits) keeps runs of zero
// bytes, whose fingerprint is 0, from cutting at every Min.
func rabinScan(b []byte, i, end int, f, thr uint64) (int, uint64) {
	in := b[i:end]
	out := b[i-WindowSize : end-WindowSize]
	out = out[:len(in)]
	for j, c := range in {
		f = (f<<8|uint64(c))&rabinMask ^ rabinModTable[uint8(f>>rabinShift)] ^ rabinOutTable[out[j]]
		if f >= thr {
			return i + j + 1, f
		}
	}
	return -1, f
}
