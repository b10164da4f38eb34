package fsck_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/workers/fsck"
)

// BenchmarkCheck checks a store of 64 MiB in 64 files (SQLite and a disk
// store) with chunks of 16 KiB on average (about 4,000 chunks) and of the
// default 1 MiB, and reports the check's throughput and the heap it
// peaked at.
func BenchmarkCheck(b *testing.B) {
	b.Run("chunks=16KiB", func(b *testing.B) { benchCheck(b, smallChunks) })
	b.Run("chunks=1MiB", func(b *testing.B) { benchCheck(b, chunking.DefaultParams()) })
}

func benchCheck(b *testing.B, p chunking.Params) {
	s := testkit.NewStack(b, testkit.Options{Files: files.Options{Chunking: p}})
	for i := range 64 {
		_, err := s.Files.Write(ctx, files.WriteRequest{Owner: s.User.ID, Parent: s.User.Root, Name: fmt.Sprint("f", i),
			Body: bytes.NewReader(testkit.RandBytes(uint64(100+i), 1<<20))})
		testkit.OK(b, err)
	}
	c := fsck.Checker{Meta: s.Meta.(fsck.Meta), Store: s.Chunks}
	var rep *fsck.Report
	var peak uint64
	b.ResetTimer()
	for b.Loop() {
		runtime.GC() // the heap sampled is the check's, not the setup's garbage
		stop := make(chan struct{})
		done := make(chan uint64)
		go func() { // samples the heap while the check runs
			var max uint64
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				max = maxOf(max, ms.HeapInuse)
				select {
				case <-stop:
					done <- max
					return
				default:
					runtime.Gosched()
				}
			}
		}()
		var err error
		rep, err = c.Run(ctx)
		close(stop)
		peak = maxOf(peak, <-done)
		testkit.OK(b, err)
	}
	if !rep.Clean || rep.Bytes != 64<<20 {
		b.Fatalf("report %+v", rep.Damage)
	}
	b.SetBytes(rep.Bytes)
	b.ReportMetric(float64(rep.Chunks), "chunks")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

func maxOf(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}
