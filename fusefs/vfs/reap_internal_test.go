package vfs

import (
	"os"
	"path/filepath"
	"testing"
)

// The reaper removes what it is given; Close removes what is still
// waiting before it returns, and later removals are made at once.
func TestReaper(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := newReaper()
	var paths []string
	for _, n := range []string{"a", "b", "c", "d"} {
		paths = append(paths, touch(n))
	}
	r.remove(paths[:2]...)
	r.remove(paths[2:]...)
	r.close()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("after close, %d files left; want none", len(left))
	}
	late := touch("late")
	r.remove(late)
	if _, err := os.Stat(late); !os.IsNotExist(err) {
		t.Fatalf("a removal after close: %v; want the file gone at once", err)
	}
	r.close() // again: a no-op
}
