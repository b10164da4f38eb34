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
type ChunkRef struct {
	Hash Hash
	Size uint32
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

// Counts returns how many times each distinct chunk occurs in m. Reference
// counts are kept per occurrence, so a file of sixteen identical chunks holds
// sixteen references to one chunk.
func (m *Manifest) Counts() map[Hash]int64 {
	c := make(map[Hash]int64, len(m.Chunks))
	for _, r := range m.Chunks {
		c[r.Hash]++
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
