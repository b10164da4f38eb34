package chunking

// gearSeed seeds the splitmix64 generator that fills gearTable. It is the
// ASCII of "dfmsgear". The table is part of the storage format: never change
// the seed or the generator.
const gearSeed = 0x6466_6d73_6765_6172

// gearTable maps a byte to a pseudo-random 64-bit value: the i-th output of
// splitmix64 started at gearSeed. TestGearTableGolden pins it.
var gearTable = func() (t [256]uint64) {
	s := uint64(gearSeed)
	for i := range t {
		t[i] = splitmix64(&s)
	}
	return t
}()

// splitmix64 advances *s and returns the next output of Steele, Lea and
// Flood's SplitMix64 generator.
func splitmix64(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// gearScan rolls the gear hash h over p, h = h<<1 + gearTable[b] for each
// byte b, and returns k > 0 and the hash as soon as the hash after p[k-1] is
// below t, or -1 and the final hash.
//
// It is the plain loop unrolled: the four hashes of a group are computed as
// h<<k + c_k, where c_k only depends on the group's bytes, so the loop-carried
// dependency on h is one shift and one add per four bytes instead of per
// byte, and the four comparisons are independent. The cut points are exactly
// those of the plain loop (TestGearScanMatchesPlain).
func gearScan(p []byte, h, t uint64) (int, uint64) {
	i := 0
	n8 := len(p) &^ 7
	for ; i < n8; i += 8 {
		q := p[i : i+8 : i+8]
		c := gearTable[q[0]]
		if v := h<<1 + c; v < t {
			return i + 1, v
		}
		c = c<<1 + gearTable[q[1]]
		if v := h<<2 + c; v < t {
			return i + 2, v
		}
		c = c<<1 + gearTable[q[2]]
		if v := h<<3 + c; v < t {
			return i + 3, v
		}
		h = h<<4 + (c<<1 + gearTable[q[3]])
		if h < t {
			return i + 4, h
		}
		c = gearTable[q[4]]
		if v := h<<1 + c; v < t {
			return i + 5, v
		}
		c = c<<1 + gearTable[q[5]]
		if v := h<<2 + c; v < t {
			return i + 6, v
		}
		c = c<<1 + gearTable[q[6]]
		if v := h<<3 + c; v < t {
			return i + 7, v
		}
		h = h<<4 + (c<<1 + gearTable[q[7]])
		if h < t {
			return i + 8, h
		}
	}
	for ; i < len(p); i++ {
		h = h<<1 + gearTable[p[i]]
		if h < t {
			return i + 1, h
		}
	}
	return -1, h
}
