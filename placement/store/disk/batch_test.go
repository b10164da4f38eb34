package disk

import (
	"encoding/binary"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store/storetest"
)

// TestPutBatchPaths: the conformance suite's PutBatch case (storetest)
// stores a batch of chunks under 4 KiB and one of 1 MiB chunks, so that it
// takes both of PutBatch's ways to make a batch durable, syncfs and file
// by file.
func TestPutBatchPaths(t *testing.T) {
	if perFileSyncMin <= 4<<10 || perFileSyncMin > 1<<20 {
		t.Errorf("perFileSyncMin is %d: the conformance suite's batches no longer take both paths", perFileSyncMin)
	}
}

// BenchmarkPutBatch32x1MiB measures a batch as a sequential write sends
// it: 32 chunks of 1 MiB under random names, so that most land in shard
// directories that do not exist yet, as in a young store.
func BenchmarkPutBatch32x1MiB(b *testing.B) {
	d := open(b, b.TempDir())
	data, _ := storetest.BenchChunk()
	b.SetBytes(32 * int64(len(data)))
	var seq uint64
	for b.Loop() {
		batch := make([]dfms.ChunkData, 32)
		for i := range batch {
			seq++
			batch[i] = dfms.ChunkData{Hash: dfms.Sum(binary.LittleEndian.AppendUint64(nil, seq)), Data: data}
		}
		if err := d.PutBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
