// Command benchrepair measures how fast the replication manager restores
// R copies after a storage node is lost, against the disk's own copy
// speed measured in the same run.
//
//	go run ./integration/cmd/benchrepair [-size 256MiB] [-chunk 1MiB] [-runs 3] [-dir DIR]
//
// Each run builds a cluster of three disk nodes (R = 2) under DIR (default
// the system's temporary directory) with a SQLite metadata store, stores
// -size bytes of random chunks through it, marks one node down past the
// repair delay and times one repair pass, which reads each lost copy from
// a survivor (verifying its hash) and writes it, durably, to the chunk's
// new owner. The baseline copies the same chunk files between two
// directories of the same disk, each file fsynced as the store does. Runs
// alternate repair and baseline; the report gives medians and their ratio.
// It is part of `make bench`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/cmd/internal/benchkit"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/sqlite"
	"github.com/dfms/dfms/workers/replication"
)

func main() {
	sizeFlag := flag.String("size", "256MiB", "bytes stored in the cluster before the node is lost")
	chunkFlag := flag.String("chunk", "1MiB", "chunk size")
	runs := flag.Int("runs", 3, "runs of each measurement")
	dir := flag.String("dir", "", "where the nodes' directories go (default: the temporary directory)")
	flag.Parse()
	size, err := benchkit.ParseSize(*sizeFlag)
	check(err)
	chunk, err := benchkit.ParseSize(*chunkFlag)
	check(err)
	if chunk <= 0 || chunk > 4<<20 || size < chunk {
		check(fmt.Errorf("want 0 < -chunk ≤ 4MiB ≤ -size"))
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	fmt.Printf("repair after a node loss: 3 disk nodes, R = 2, %s in %s chunks, %d runs (load %s)\n",
		*sizeFlag, *chunkFlag, *runs, benchkit.LoadAvg())
	var repair, baseline []float64
	for i := range *runs {
		mbps, bytes := runRepair(*dir, size, int(chunk), uint64(i))
		repair = append(repair, mbps)
		baseline = append(baseline, runCopy(*dir, bytes, int(chunk), uint64(i)))
		fmt.Printf("  run %d: repair %.0f MB/s, disk copy %.0f MB/s\n", i+1, mbps, baseline[i])
	}
	r, b := benchkit.Median(repair), benchkit.Median(baseline)
	fmt.Printf("repair %.0f MB/s, disk copy %.0f MB/s (medians): repair ÷ copy = %.2f\n", r, b, r/b)
}

// runRepair stores size bytes in a fresh cluster, loses a node and times
// the repair pass; it returns its MB/s and the bytes it copied.
func runRepair(base string, size int64, chunk int, seed uint64) (float64, int64) {
	ctx := context.Background()
	root, err := os.MkdirTemp(base, "benchrepair-")
	check(err)
	defer os.RemoveAll(root)
	m, err := sqlite.Open(filepath.Join(root, "meta.db"))
	check(err)
	defer m.Close()
	var ms []placement.Member
	for i := range 3 {
		d, err := disk.Open(filepath.Join(root, fmt.Sprintf("n%d", i+1)))
		check(err)
		n := dfms.StorageNode{ID: fmt.Sprintf("n%d", i+1), URL: fmt.Sprint("file:///n", i), Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp}
		check(m.PutNode(ctx, n))
		ms = append(ms, placement.Member{StorageNode: n, Store: d})
	}
	cl, err := placement.NewCluster(ms, placement.Options{Replicas: 2, Log: m})
	check(err)
	defer cl.Close()
	fill(ctx, m, cl, size, chunk, seed)
	check(cl.SetState("n2", dfms.NodeDown))
	now := time.Now()
	mgr := &replication.Manager{Cluster: cl, Replicas: m, DownDelay: time.Minute, Now: func() time.Time { return now }}
	if st, err := mgr.Pass(ctx); err != nil || st.Copied != 0 {
		check(fmt.Errorf("pass within the delay: %+v, %v", st, err))
	}
	now = now.Add(2 * time.Minute)
	dropCaches()
	start := time.Now()
	st, err := mgr.Pass(ctx)
	check(err)
	elapsed := time.Since(start)
	if st.Failed > 0 || st.Copied == 0 {
		check(fmt.Errorf("repair pass: %+v", st))
	}
	return float64(st.CopiedBytes) / 1e6 / elapsed.Seconds(), st.CopiedBytes
}

// fill stores size bytes of random chunks as uploads do: reserve, store,
// record.
func fill(ctx context.Context, m meta.Store, cl *placement.Cluster, size int64, chunk int, seed uint64) {
	buf := make([]byte, chunk)
	for i := int64(0); i*int64(chunk) < size; i++ {
		randomize(buf, seed<<32|uint64(i))
		h := dfms.Sum(buf)
		ref := []dfms.ChunkRef{{Hash: h, Size: uint32(len(buf))}}
		check(m.ReserveChunks(ctx, ref))
		check(cl.Put(ctx, h, buf))
		check(m.AddChunks(ctx, ref))
	}
}

// runCopy writes files holding bytes in chunk-sized pieces, then times
// copying them to another directory of the same disk, each copy fsynced.
func runCopy(base string, bytes int64, chunk int, seed uint64) float64 {
	root, err := os.MkdirTemp(base, "benchrepair-copy-")
	check(err)
	defer os.RemoveAll(root)
	src, dst := filepath.Join(root, "src"), filepath.Join(root, "dst")
	check(os.MkdirAll(src, 0o755))
	check(os.MkdirAll(dst, 0o755))
	buf := make([]byte, chunk)
	n := int((bytes + int64(chunk) - 1) / int64(chunk))
	for i := range n {
		randomize(buf, seed<<32|uint64(i)|1<<31)
		check(os.WriteFile(filepath.Join(src, fmt.Sprint(i)), buf, 0o644))
	}
	syncAll()
	dropCaches()
	start := time.Now()
	for i := range n {
		name := fmt.Sprint(i)
		in, err := os.Open(filepath.Join(src, name))
		check(err)
		out, err := os.Create(filepath.Join(dst, name))
		check(err)
		_, err = io.Copy(out, in)
		check(err)
		check(out.Sync())
		check(out.Close())
		in.Close()
	}
	return float64(int64(n)*int64(chunk)) / 1e6 / time.Since(start).Seconds()
}

func randomize(b []byte, seed uint64) {
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := 0; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for j := range 8 {
			b[i+j] = byte(x >> (8 * j))
		}
	}
}

// dropCaches empties the page cache if this process may (as root), so
// that both measurements read from the disk; otherwise both read from
// memory alike.
func dropCaches() {
	syncAll()
	_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}

func syncAll() { syscall.Sync() }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrepair:", err)
		os.Exit(1)
	}
}
