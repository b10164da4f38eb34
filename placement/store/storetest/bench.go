package storetest

import (
	"context"
	"testing"

	"github.com/dfms/dfms"
)

// BenchChunk returns 1 MiB of data, the same on every call, and its hash.
func BenchChunk() ([]byte, dfms.Hash) {
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	return data, dfms.Sum(data)
}

// BenchGet measures Get of one stored chunk of BenchChunk's, each caller
// reading into a buffer it reuses. With parallelism > 0, that many Gets
// run at a time per GOMAXPROCS (see testing.B.SetParallelism); else one.
func BenchGet(b *testing.B, s dfms.ChunkStore, parallelism int) {
	ctx := context.Background()
	data, h := BenchChunk()
	if err := s.Put(ctx, h, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	// read Gets the chunk into one buffer while next says so, and stops
	// at the first failure, which it reports to fail.
	read := func(next func() bool, fail func(args ...any)) {
		buf := make([]byte, 0, len(data))
		for next() {
			var err error
			if buf, err = s.Get(ctx, h, buf[:0]); err != nil {
				fail(err)
				return
			}
		}
	}
	if parallelism <= 0 {
		read(b.Loop, b.Fatal)
		return
	}
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) { read(pb.Next, b.Error) })
}
