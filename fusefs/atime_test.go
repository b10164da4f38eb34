package fusefs_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
)

// The access time is kept: utimensat sets it apart from the mtime (as
// tar, rsync -a and touch -a do), also on a file created here whose create
// has not reached the server yet, and it is stored there; reads move it
// as relatime says.
func TestATime(t *testing.T) {
	e := mount(t)
	for _, name := range []string{"written", "empty"} {
		p := filepath.Join(e.dir, name)
		// onServer syncs the mount and returns p's entry on the server.
		onServer := func() dfms.Entry {
			t.Helper()
			e.sync(t)
			return testkit.Must(e.files.Meta().GetEntry(ctx, e.owner, entryID(t, p)))(t)
		}
		if name == "written" {
			writeFile(t, p, []byte("some bytes"))
		} else if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC)
		mt := time.Date(2106, 2, 7, 6, 28, 16, 0, time.UTC)
		if err := unix.UtimesNano(p, []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}); err != nil {
			t.Fatal(err)
		}
		wantTimes(t, p, at, mt)
		// touch -a: a new atime, the mtime left alone.
		at2 := time.Date(2001, 9, 9, 1, 46, 40, 500, time.UTC)
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{unix.NsecToTimespec(at2.UnixNano()), {Nsec: unix.UTIME_OMIT}}, 0); err != nil {
			t.Fatal(err)
		}
		wantTimes(t, p, at2, mt)
		// On the server, once synced.
		got := onServer()
		if !got.ATime.Equal(at2) || !got.MTime.Equal(mt) {
			t.Fatalf("%s on the server: atime %v mtime %v, want %v %v", name, got.ATime, got.MTime, at2, mt)
		}
		if name == "empty" {
			continue // the kernel answers reads of it without the mount
		}
		// Reads follow relatime: the first read after a change moves
		// the atime (sent in the background, or by a sync), a later one
		// does not; neither moves the mtime or the ctime. (The mtime
		// goes back to the past first: an atime is never later than
		// an mtime in the future, so every read would move it.)
		mt = time.Now().Add(-time.Hour).Truncate(time.Microsecond)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		got = onServer()
		if _, err := os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		read := onServer()
		if !read.ATime.After(got.CTime) || time.Since(read.ATime) > time.Minute || !read.MTime.Equal(mt) || !read.CTime.Equal(got.CTime) {
			t.Fatalf("%s after a read: atime %v mtime %v ctime %v; before: ctime %v", name, read.ATime, read.MTime, read.CTime, got.CTime)
		}
		if _, err := os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
		again := onServer()
		if !again.ATime.Equal(read.ATime) {
			t.Fatalf("%s: a second read moved the atime to %v, was %v", name, again.ATime, read.ATime)
		}
	}
}

func wantTimes(t *testing.T, p string, atime, mtime time.Time) {
	t.Helper()
	var s unix.Stat_t
	if err := unix.Stat(p, &s); err != nil {
		t.Fatal(err)
	}
	if a, m := time.Unix(s.Atim.Unix()), time.Unix(s.Mtim.Unix()); !a.Equal(atime) || !m.Equal(mtime) {
		t.Fatalf("%s: atime %v mtime %v, want %v %v", filepath.Base(p), a.UTC(), m.UTC(), atime, mtime)
	}
}
