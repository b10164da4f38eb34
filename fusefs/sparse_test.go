package fusefs_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dfms/dfms/fusefs/fusetest"
)

// rssBytes returns the resident memory of this process (which runs the
// mount), from /proc.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmRSS in /proc/self/status")
	return 0
}

// TestSparseFiles: a terabyte file through the mount of each backend
// costs kilobytes: truncate -s 1T, a byte written at 900 GiB with dd,
// zeros and the byte read back, st_blocks (du) counting the byte's block,
// SEEK_DATA and SEEK_HOLE finding it, before and after the commit; a size
// past the limit is EFBIG; and the mount's memory does not grow with the
// file's size.
func TestSparseFiles(t *testing.T) {
	const gib, tib = int64(1) << 30, int64(1) << 40
	bothMounts(t, func(t *testing.T, dir string, _ serverContent) {
		before := rssBytes(t)
		p := filepath.Join(dir, "tera")
		output(t, tool(t, "truncate", "-s", "1T", p))
		if st := statT(t, p); st.Size != tib || st.Blocks != 0 {
			t.Fatalf("after truncate -s 1T: size %d, %d blocks", st.Size, st.Blocks)
		}
		dd := tool(t, "dd", "of="+p, "bs=1", "seek="+strconv.FormatInt(900*gib, 10), "count=1", "conv=notrunc", "status=none")
		dd.Stdin = strings.NewReader("x")
		output(t, dd)
		check := func(when string) {
			t.Helper()
			st := statT(t, p)
			if st.Size != tib || st.Blocks == 0 || st.Blocks*512 > 1<<20 {
				t.Fatalf("%s: size %d, %d blocks; want 1 TiB in a few blocks", when, st.Size, st.Blocks)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 4097)
			for _, c := range []struct {
				off  int64
				want []byte
			}{
				{0, make([]byte, 4097)},
				{900*gib - 2048, append(append(make([]byte, 2048), 'x'), make([]byte, 2048)...)},
				{tib - 4097, make([]byte, 4097)},
			} {
				if n, err := f.ReadAt(buf, c.off); n != len(buf) || err != nil || !bytes.Equal(buf, c.want) {
					t.Fatalf("%s: read at %d: %d bytes, %v, or other bytes", when, c.off, n, err)
				}
			}
			fd := int(f.Fd())
			for _, c := range []struct {
				off    int64
				whence int
				want   int64
				errno  syscall.Errno
			}{
				{0, unix.SEEK_DATA, 900 * gib, 0},
				{0, unix.SEEK_HOLE, 0, 0},
				{900 * gib, unix.SEEK_HOLE, 900*gib + 1, 0},
				{900*gib + 1, unix.SEEK_DATA, 0, syscall.ENXIO},
				{tib, unix.SEEK_HOLE, 0, syscall.ENXIO},
			} {
				got, err := unix.Seek(fd, c.off, c.whence)
				if c.errno != 0 {
					if !errors.Is(err, c.errno) {
						t.Errorf("%s: lseek(%d, %d): %d, %v; want %v", when, c.off, c.whence, got, err, c.errno)
					}
					continue
				}
				if err != nil || got != c.want {
					t.Errorf("%s: lseek(%d, %d): %d, %v; want %d", when, c.off, c.whence, got, err, c.want)
				}
			}
			if out := output(t, tool(t, "du", "-k", p)); !strings.HasPrefix(out, "4\t") && !strings.HasPrefix(out, "1\t") {
				t.Errorf("%s: du -k says %q", when, out)
			}
		}
		check("staged")
		// The commit (fsync of the directory waits for write-back).
		fusetest.Fsync(t, dir)
		check("committed")
		if err := os.Truncate(p, 999999999999999); !errors.Is(err, syscall.EFBIG) {
			t.Fatalf("truncate to 999999999999999: %v, want EFBIG", err)
		}
		if grew := rssBytes(t) - before; grew > 200<<20 {
			t.Fatalf("the mount's memory grew by %d MiB", grew>>20)
		}
	})
}

func statT(t *testing.T, p string) syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}
