package files

import (
	"context"
	"fmt"

	"github.com/dfms/dfms"
)

// PutChunk stores one chunk sent by a smart client: the bytes are hashed
// here and must match the name the client gave them (kind Invalid
// otherwise). Sending the bytes proves possession: from then on the owner
// may reference the chunk. It reports whether the owner lacked the chunk
// before (never whether another user had it).
func (s *Service) PutChunk(ctx context.Context, owner dfms.UserID, h dfms.Hash, data []byte) (isNew bool, err error) {
	n, err := s.PutChunks(ctx, owner, []dfms.ChunkData{{Hash: h, Data: data}}, false)
	return n > 0, err
}

// PutChunks stores chunks sent by a smart client in one batch, as
// PutChunk does for one (each must hash to its name, kind Invalid
// otherwise; hashed is for callers in this process that computed the
// hashes from these very bytes, which are then not hashed again). It
// returns how many the owner lacked before.
func (s *Service) PutChunks(ctx context.Context, owner dfms.UserID, cs []dfms.ChunkData, hashed bool) (newChunks int, err error) {
	const op dfms.Op = "files.PutChunks"
	if len(cs) == 0 {
		return 0, nil
	}
	b, hashes, err := s.chunkBatch(op, cs, hashed)
	if err != nil {
		return 0, err
	}
	var res WriteResult
	if err := s.storeBatch(ctx, owner, b, &accounting{res: &res, seen: map[dfms.Hash]bool{}}); err != nil {
		return 0, dfms.E(op, dfms.Other, err)
	}
	if err := s.index.OwnChunks(ctx, owner, hashes); err != nil {
		return 0, dfms.E(op, dfms.Other, err)
	}
	return res.NewChunks, nil
}

// chunkBatch checks a client's chunks (sizes; and hashes unless hashed)
// and returns them as a batch with their hashes in order.
func (s *Service) chunkBatch(op dfms.Op, cs []dfms.ChunkData, hashed bool) (*batch, []dfms.Hash, error) {
	b := &batch{}
	hashes := make([]dfms.Hash, len(cs))
	for i, c := range cs {
		if len(c.Data) == 0 || len(c.Data) > s.opts.Chunking.Max {
			return nil, nil, dfms.E(op, dfms.Invalid, fmt.Errorf("a chunk has 1..%d bytes, not %d", s.opts.Chunking.Max, len(c.Data)))
		}
		if !hashed && dfms.Sum(c.Data) != c.Hash {
			return nil, nil, dfms.E(op, dfms.Invalid, fmt.Errorf("the bytes do not hash to %s", c.Hash))
		}
		b.addRef(c.Hash, c.Data)
		hashes[i] = c.Hash
	}
	return b, hashes, nil
}
