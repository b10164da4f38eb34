package vfs_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

// BenchmarkSmallFiles creates, writes and closes 4 KiB files through the
// file layer over the in-process backend (no FUSE): the metadata and
// chunk-store cost of a small file.
func BenchmarkSmallFiles(b *testing.B) {
	be := newLocalB(b)
	fsys := openFS(b, be, vfs.Options{CacheDir: b.TempDir()})
	data := testkit.RandBytes(1, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data[0], data[1], data[2] = byte(i), byte(i>>8), byte(i>>16) // new content each time
		createBytes(b, fsys, fmt.Sprintf("f%d", i), data)
	}
}

// BenchmarkSeqWrite writes 64 MiB in 128 KiB writes (as the kernel sends
// them) and closes: staging, cutting, hashing, storing and committing.
func BenchmarkSeqWrite(b *testing.B) {
	be := newLocalB(b)
	fsys := openFS(b, be, vfs.Options{CacheDir: b.TempDir()})
	const size = 64 << 20
	data := testkit.RandBytes(2, size)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		data[0], data[1] = byte(i), byte(i>>8) // new content each time
		_, h, err := fsys.Create(ctx, fsys.Root(), fmt.Sprintf("big%d", i), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644, vfs.Caller{})
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < size; off += 128 << 10 {
			writeAt(b, h, data[off:off+128<<10], int64(off))
		}
		release(b, h)
	}
}
