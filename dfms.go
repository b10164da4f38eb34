// Package dfms holds the nouns shared by every part of DFMS: chunk and entry
// identities, manifests, the error kinds, and the contracts that cross a
// process boundary or have several implementations (the chunk store).
//
// It imports only the standard library, so every other package may import it
// without creating cycles.
//
// # Identity
//
// A chunk is named by the SHA-256 of its bytes ([Hash]); a [ChunkRef] adds its
// length so that a manifest alone says where every byte of a file lives.
// Entries (directories, files, symlinks) and users are named by database ids
// ([EntryID], [UserID]); an entry id doubles as the inode number of the mount.
//
// # Storage format
//
// A file version is an ordered list of chunk references, its [Manifest].
// A reference may be a hole instead ([ChunkRef.IsHole]: the zero Hash and a
// length): that many zero bytes, which store and reference nothing, so a
// sparse file costs what its data costs.
// Chunk boundaries come from content-defined chunking with parameters that
// are fixed per deployment (see package chunking); they never depend on a
// value drawn per process, so the same bytes always produce the same chunks
// and deduplicate against each other, whoever uploads them.
package dfms

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
)

// HashSize is the length in bytes of a chunk hash.
const HashSize = sha256.Size

// Hash is the SHA-256 of a chunk's bytes. It is comparable and usable as a
// map key; the zero Hash names no chunk.
type Hash [HashSize]byte

// Sum returns the Hash of data.
func Sum(data []byte) Hash { return sha256.Sum256(data) }

// String returns the lower-case hex form of h.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero Hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses the 64-character hex form produced by [Hash.String].
func ParseHash(s string) (Hash, error) {
	const op Op = "dfms.ParseHash"
	var h Hash
	if len(s) != 2*HashSize {
		return h, E(op, Invalid, fmt.Errorf("hash %q: want %d hex digits", s, 2*HashSize))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, E(op, Invalid, fmt.Errorf("hash %q: %w", s, err))
	}
	return h, nil
}

// ChunkRef names a chunk and gives its length. Chunks are at most
// chunking.MaxSizeLimit bytes, so the length fits in 32 bits.
//
// A ChunkRef with the zero Hash is a hole: Size zero bytes that no chunk
// holds (at most MaxHole of them; a longer hole takes several refs, see
// [AppendHole]). Nothing stores a hole, counts references to it or
// fetches it: readers produce its zeros themselves.
type ChunkRef struct {
	Hash Hash
	Size uint32
}

// MaxHole is the longest hole one ChunkRef describes: the largest
// multiple of 4 KiB that fits its length, so that a hole of a terabyte
// takes 257 refs (9 KB of manifest).
const MaxHole = math.MaxUint32 &^ (4<<10 - 1)

// Hole returns the ChunkRef of a hole of n bytes (0 < n <= MaxHole).
func Hole(n uint32) ChunkRef { return ChunkRef{Size: n} }

// IsHole reports whether r is a hole rather than a chunk.
func (r ChunkRef) IsHole() bool { return r.Hash.IsZero() }

// AppendHole appends a hole of n bytes (n <= 0: none) to refs and returns
// the result: a hole right after another extends it, and a long one is
// split into refs of MaxHole bytes, so that the same holes always take the
// same refs.
func AppendHole(refs []ChunkRef, n int64) []ChunkRef {
	if n <= 0 {
		return refs
	}
	if k := len(refs); k > 0 && refs[k-1].IsHole() && refs[k-1].Size < MaxHole {
		add := min(n, int64(MaxHole-refs[k-1].Size))
		refs[k-1].Size += uint32(add)
		n -= add
	}
	for n > 0 {
		m := min(n, MaxHole)
		refs = append(refs, Hole(uint32(m)))
		n -= m
	}
	return refs
}

// CompactHoles returns refs with each run of adjacent holes rewritten as
// AppendHole writes one (in place: refs is reused), and empty holes
// dropped.
func CompactHoles(refs []ChunkRef) []ChunkRef {
	out := refs[:0]
	for i := 0; i < len(refs); {
		if !refs[i].IsHole() {
			out = append(out, refs[i])
			i++
			continue
		}
		var n int64
		for ; i < len(refs) && refs[i].IsHole(); i++ {
			n += int64(refs[i].Size)
		}
		// out cannot overtake the run being read: a run of k refs is
		// written back as at most k.
		out = AppendHole(out, n)
	}
	return out
}

// String returns "hash:size".
func (r ChunkRef) String() string {
	return r.Hash.String() + ":" + strconv.FormatUint(uint64(r.Size), 10)
}

// Manifest is the ordered list of chunks that make up one version of a file.
// The file's bytes are the chunks' bytes concatenated in order. A Manifest of
// a committed version never changes.
type Manifest struct {
	Chunks []ChunkRef
}

// Size returns the number of bytes the manifest describes.
func (m *Manifest) Size() int64 {
	var n int64
	for _, c := range m.Chunks {
		n += int64(c.Size)
	}
	return n
}

// DataSize returns the number of bytes of m that chunks hold: its size
// less its holes.
func (m *Manifest) DataSize() int64 {
	var n int64
	for _, c := range m.Chunks {
		if !c.IsHole() {
			n += int64(c.Size)
		}
	}
	return n
}

// HasHoles reports whether m has a hole.
func (m *Manifest) HasHoles() bool {
	for _, c := range m.Chunks {
		if c.IsHole() {
			return true
		}
	}
	return false
}

// Hashes returns the hashes of m's chunks in order, holes left out
// (repeats kept).
func (m *Manifest) Hashes() []Hash {
	hs := make([]Hash, 0, len(m.Chunks))
	for _, c := range m.Chunks {
		if !c.IsHole() {
			hs = append(hs, c.Hash)
		}
	}
	return hs
}

// Counts returns how many times each distinct chunk occurs in m; holes
// are not chunks and are left out. Reference counts are kept per
// occurrence, so a file of sixteen identical chunks holds sixteen
// references to one chunk.
func (m *Manifest) Counts() map[Hash]int64 {
	c := make(map[Hash]int64, len(m.Chunks))
	for _, r := range m.Chunks {
		if !r.IsHole() {
			c[r.Hash]++
		}
	}
	return c
}

// Locate returns the index of the chunk holding byte off and off's position
// within that chunk. It returns len(m.Chunks), 0 when off is at or past the
// end. Callers that seek often should use [Manifest.Offsets] and search.
func (m *Manifest) Locate(off int64) (idx int, within int64) {
	for i, c := range m.Chunks {
		if off < int64(c.Size) {
			return i, off
		}
		off -= int64(c.Size)
	}
	return len(m.Chunks), 0
}

// manifestEntrySize is the encoded size of one ChunkRef: hash then
// big-endian uint32 length.
const manifestEntrySize = HashSize + 4

// MarshalBinary encodes m as a sequence of 36-byte records (hash, big-endian
// length). This is the form stored by the metadata store.
func (m *Manifest) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(m.Chunks)*manifestEntrySize)
	for _, c := range m.Chunks {
		b = append(b, c.Hash[:]...)
		b = binary.BigEndian.AppendUint32(b, c.Size)
	}
	return b, nil
}

// UnmarshalBinary decodes the form written by MarshalBinary.
func (m *Manifest) UnmarshalBinary(b []byte) error {
	const op Op = "dfms.Manifest.UnmarshalBinary"
	if len(b)%manifestEntrySize != 0 {
		return E(op, Corrupt, fmt.Errorf("manifest of %d bytes is not a multiple of %d", len(b), manifestEntrySize))
	}
	m.Chunks = make([]ChunkRef, len(b)/manifestEntrySize)
	for i := range m.Chunks {
		rec := b[i*manifestEntrySize:]
		copy(m.Chunks[i].Hash[:], rec[:HashSize])
		m.Chunks[i].Size = binary.BigEndian.Uint32(rec[HashSize:])
	}
	return nil
}

// UserID identifies a user. Ids are assigned by the metadata store and are
// never reused.
type UserID int64

// EntryID identifies an entry of the tree (a directory, file or symlink). It
// is also the inode number the mount shows. Ids are never reused.
type EntryID int64

// String returns the decimal form of id.
func (id EntryID) String() string { return strconv.FormatInt(int64(id), 10) }

// ParseEntryID parses the decimal form of an EntryID.
func ParseEntryID(s string) (EntryID, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, E("dfms.ParseEntryID", Invalid, fmt.Errorf("bad id %q", s))
	}
	return EntryID(n), nil
}

// String returns the decimal form of id.
func (id UserID) String() string { return strconv.FormatInt(int64(id), 10) }
