package dfms

import (
	"context"
	"time"
)

// ChunkStore holds chunk bytes by hash: one per storage node. It is the
// contract implemented by the file:// and s3:// backends (package
// placement/store) and, over several nodes, by the replicated store.
//
// A store does not verify that bytes match their hash: callers hash before
// Put and re-hash after Get (a store is only trusted to keep bytes, and
// corruption is detected on the read path), unless the store says that its
// Get verifies (VerifyingStore). Implementations must be safe for
// concurrent use.
type ChunkStore interface {
	// Put stores data under h. It is idempotent: storing the same chunk twice
	// is not an error, and it refreshes the chunk's modification time (the
	// garbage collector relies on that to spare chunks being uploaded).
	// When Put returns nil the bytes are durable (fsynced, or acknowledged
	// by the object store). Put never exposes a partially written chunk to
	// Get, even if the process dies halfway.
	Put(ctx context.Context, h Hash, data []byte) error

	// Get appends the bytes stored under h to buf and returns the result.
	// It fails with kind NotExist if there is no such chunk.
	Get(ctx context.Context, h Hash, buf []byte) ([]byte, error)

	// Stat returns the stored size of h, or an error of kind NotExist.
	Stat(ctx context.Context, h Hash) (int64, error)

	// Delete removes h. Deleting a missing chunk is not an error.
	Delete(ctx context.Context, h Hash) error

	// Walk calls fn for every stored chunk, in no particular order, until
	// fn returns an error (which Walk returns). Chunks added or removed
	// during the walk may or may not be seen.
	Walk(ctx context.Context, fn func(ChunkInfo) error) error

	// Close releases the store's resources.
	Close() error
}

// VerifyingStore is implemented by chunk stores whose Get checks the bytes
// it returns: the replicated store re-hashes every copy it reads, to skip
// a corrupt one and try the next. A caller that would re-hash after Get
// may rely on that check instead of repeating it; it still compares the
// size with its reference, which the store does not know.
//
// A decorator that embeds a VerifyingStore and overrides Get must also
// override VerifiesGet, unless its Get returns only what the inner Get
// returned.
type VerifyingStore interface {
	ChunkStore
	// VerifiesGet reports whether every result of Get without an error
	// hashes (Sum) to the h asked for. The answer does not change over
	// the store's life.
	VerifiesGet() bool
}

// ChunkInfo describes a stored chunk, as listed by ChunkStore.Walk.
type ChunkInfo struct {
	Hash    Hash
	Size    int64
	ModTime time.Time // when it was last Put
}

// BatchPutter is implemented by chunk stores that can make many chunks
// durable together more cheaply than one at a time (one durability
// barrier instead of one per chunk). PutBatch has the semantics of Put for
// every chunk: when it returns nil all of them are durable; if it fails,
// some may have been stored.
type BatchPutter interface {
	PutBatch(ctx context.Context, chunks []ChunkData) error
}

// ChunkData is a chunk with its bytes, for BatchPutter.
type ChunkData struct {
	Hash Hash
	Data []byte
}
