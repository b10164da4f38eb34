package fusefs_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfms/dfms/fusefs"
	"github.com/dfms/dfms/integration/testkit"
)

// Reads of a megabyte answer without go-fuse trying to splice them: the
// mount answers reads with bytes, never a file descriptor, so a splice
// could only fail, and one of a megabyte did, logging every time (a pipe
// holds at most 1 MiB; the reply is that plus a header).
func TestLargeReadsLogNothing(t *testing.T) {
	var logged testkit.SyncBuffer
	e := mount(t, func(o *fusefs.Options) {
		o.Log = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	data := testkit.RandBytes(7, 4<<20)
	p := e.writeFile(t, "big", data)
	f, err := os.OpenFile(filepath.Join(filepath.Dir(p), "big"), os.O_RDONLY|0x4000 /* O_DIRECT: reads reach the mount at full size */, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < int64(len(data)); off += int64(len(buf)) {
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	if s := logged.String(); strings.Contains(s, "splice") {
		t.Fatalf("the mount logged:\n%s", s)
	}
}
