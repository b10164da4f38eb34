package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/dfms/dfms"
)

// TestPutBatch runs with small chunks (synced by syncfs) and large ones
// (synced file by file).
func TestPutBatch(t *testing.T) {
	t.Run("small", func(t *testing.T) { testPutBatch(t, 40, 100) })
	t.Run("large", func(t *testing.T) { testPutBatch(t, 12, perFileSyncMin) })
}

func testPutBatch(t *testing.T, chunks, step int) {
	ctx := context.Background()
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var cs []dfms.ChunkData
	for i := range chunks {
		data := []byte(fmt.Sprintf("chunk %d %s", i, bytes.Repeat([]byte{byte(i)}, i*step)))
		cs = append(cs, dfms.ChunkData{Hash: dfms.Sum(data), Data: data})
	}
	if err := d.Put(ctx, cs[0].Hash, cs[0].Data); err != nil { // one exists already
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	if err := d.PutBatch(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := d.PutBatch(ctx, cs[:5]); err != nil { // idempotent
		t.Fatal(err)
	}
	for _, c := range cs {
		got, err := d.Get(ctx, c.Hash, nil)
		if err != nil || !bytes.Equal(got, c.Data) {
			t.Fatalf("Get(%s) = %d bytes, %v", c.Hash, len(got), err)
		}
	}
	n := 0
	err = d.Walk(ctx, func(ci dfms.ChunkInfo) error {
		n++
		if ci.ModTime.Before(before) {
			t.Errorf("chunk %s has modification time %v, before the batch", ci.Hash, ci.ModTime)
		}
		return nil
	})
	if err != nil || n != len(cs) {
		t.Fatalf("Walk saw %d chunks (%v), want %d", n, err, len(cs))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.PutBatch(cctx, cs); err == nil {
		t.Fatal("PutBatch with a cancelled context succeeded")
	}
}

// BenchmarkPutBatch32x1MiB measures a batch as a sequential write sends
// it: 32 chunks of 1 MiB under random names, so that most land in shard
// directories that do not exist yet, as in a young store.
func BenchmarkPutBatch32x1MiB(b *testing.B) {
	ctx := context.Background()
	d, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := benchChunk()
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
