// Package chunking cuts byte streams into content-defined chunks, the unit
// DFMS stores, names by SHA-256 and deduplicates.
//
// # Contract
//
// Chunk boundaries are part of the storage format. They depend only on the
// bytes and on [Params]: there is no random seed, no clock and no per-process
// state, so the same bytes always give the same chunks, on every machine and
// release, and an edited file shares all but the chunks around its edits
// with the original. The gear table, the Rabin polynomial, the rule that
// turns Params into thresholds and the decision rule below are frozen;
// golden tests (TestGolden, TestGearTableGolden, TestThresholdsGolden) pin
// them. Changing any of them needs a migration.
//
// For a stream cut with Params p:
//
//   - every chunk has at most p.Max bytes, and at least p.Min bytes unless
//     it is the last one; an empty stream has no chunks;
//   - a chunk ends at the first length L in [p.Min, p.Max) for which the
//     hash of its last 64 bytes (the window) passes the threshold of L's
//     region, L < p.Avg or L >= p.Avg, and at p.Max if there is none. The
//     decision depends only on the window and on L, so after an edit the
//     boundaries fall back into step within a chunk or two;
//   - the chunks do not depend on how the reader splits its reads;
//   - on random data the mean chunk length is p.Avg (measured over 256 MiB:
//     1.02 Avg for gear and 1.00 for Rabin with the default sizes, 1.03 and
//     1.00 with 64 KiB/256 KiB/1 MiB; the tests allow ±15%). Avg need not be
//     a power of two.
//
// [Chunker] cuts a stream into caller-supplied buffers; [Split] cuts and
// hashes a stream in a pipeline and calls back in order.
//
// # Gear (the default)
//
// Gear is FastCDC-style: h = h<<1 + G[b] for each byte b, with h a uint64,
// so after 64 bytes the hash depends on exactly the last 64. G is a table of
// 256 uint64 filled by splitmix64 from the fixed seed 0x6466_6d73_6765_6172
// (the ASCII of "dfmsgear"). A length L is a cut point when h < t, that is
// when the high bits of h are zero; t is t1 below Avg and t2 from Avg on.
// Hashing starts 64 bytes before Min (the first Min-64 bytes of a chunk are
// skipped, a quarter of all bytes with the default sizes).
//
// Normalized chunking: t2 ≈ 16*t1, a cut probability 4 times the base one
// from Avg on and 4 times less below it (FastCDC's level 2). This narrows
// the length distribution around Avg; both thresholds come from one
// probability s, chosen as described under Sizes.
//
// The loop works in place over the chunk buffer and evaluates four bytes per
// step: their hashes are h<<k + c_k, where c_k depends only on the four
// bytes, so the loop-carried dependency is one shift and one add per four
// bytes and the comparisons are independent. The cut points are those of the
// plain byte loop (TestGearScanMatchesPlain).
//
// # Rabin
//
// Rabin is a Rabin fingerprint of the 64-byte window: the window read as a
// polynomial over GF(2) (8 coefficients per byte) modulo the irreducible
// polynomial P = 0x23ce665ca219ab of degree 53. It rolls with two 256-entry
// tables: one folds back the 8 bits pushed past degree 53 by a shift, one
// removes the byte leaving the window (b * x^512 mod P). P was found by a
// deterministic search from a splitmix64 value and is re-verified by
// TestRabinPolynomialIrreducible with Rabin's irreducibility test
// (x^(2^53) = x mod P and gcd(P, x^2+x) = 1, 53 being prime). A length is a
// cut point when the fingerprint is at least 2^53 - t/2^11: high values
// rather than low ones, so that runs of zero bytes (fingerprint 0) are cut at
// Max and not at every Min. Min, Avg, Max and the two thresholds mean the
// same as for gear.
//
// # Sizes
//
// The decision points of a chunk are L = Min ... Max-1, A = Avg-Min of them
// below Avg with cut probability q1 = s/4 and B = Max-Avg from Avg on with
// q2 = 4s. Treating decisions on random data as independent, the expected
// length is
//
//	E(s) = Min + (1-q1)(1-r1^A)/q1 + r1^A (1-q2)(1-r2^B)/q2,   r = 1-q,
//
// which falls steadily from Max at s = 0, so s is found by bisection such
// that E(s) = Avg, and t = floor(q * 2^64). The mean therefore accounts for
// the skipped Min bytes and for truncation at Max; fixing bit counts from Avg
// alone (restic's 2^20 mask gives a mean of about 1.25 MiB) does not. The
// arithmetic uses only float64 +, -, *, / with every product explicitly
// rounded, so no platform fuses operations and the thresholds are identical
// everywhere. For the defaults, t1 = 0x6c6811c2d79 and t2 = 0x6c6811c2d797:
// a cut probability of 1/2.36 Mi per byte below 1 MiB and 1/151 Ki from it.
//
// # Why gear is the default
//
// Measured with integration/cmd/benchchunk on the 2-core development
// machine (AMD EPYC, SHA-NI; 512 MiB of random data, default sizes, median
// of 5 runs, MB/s), a machine shared with other work:
//
//	memcpy                              14893
//	SHA-256 alone, 1 core                1697
//	gear chunker alone, 1 core           2591
//	rabin chunker alone, 1 core           434
//	gear + SHA-256, 1 core                986   (0.58 of SHA-256 alone)
//	rabin + SHA-256, 1 core               343   (0.20)
//	gear Split, GOMAXPROCS=2             1900   (1.12)
//
// Over six such runs the pipelined median ranged from 0.98 to 1.18 times
// SHA-256 alone (0.62 in a seventh, under a load average of 4.5), and
// gear + SHA-256 from 0.58 to 0.62. The two vCPUs slow each other down:
// gear runs about 17% slower while SHA-256 runs on the other one.
//
// Gear is six times faster than Rabin, so chunking costs less than hashing
// and the pipeline of one gear chunker and two SHA-256 workers beats one
// SHA-256 core. Rabin's loop is bound by the latency of its table lookup
// (the next index depends on the previous fingerprint). Both deduplicate
// alike: on a 64 MiB file and 20 copies with 1-5 small edits each, gear
// stored 133.0 MiB of 1344 MiB (90.1% saved) and Rabin 131.1 MiB (90.2%),
// against 800 MiB (40.5%) for fixed 1 MiB blocks. A 1-byte insertion near
// the start or a 1-byte change changes one chunk of 60 (TestStability).
//
// # Split
//
// [Split] runs one goroutine that reads and cuts, a set of SHA-256 workers
// and the caller's goroutine, which receives the chunks in stream order.
// Buffers come from a pool of workers+3 buffers of Max bytes, so memory stays
// at about (workers+3)*Max whatever the input size; c.Data is valid only
// until the callback returns. An error from the callback or the reader, or
// the end of ctx, stops every goroutine before Split returns.
package chunking
