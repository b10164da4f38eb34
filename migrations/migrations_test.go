package migrations

import (
	"io/fs"
	"testing"
)

// Both dialects must carry the same migration numbers and names, each with
// an up and a down file.
func TestDialectsMatch(t *testing.T) {
	list := func(d string) []string {
		sub, err := FS(d)
		if err != nil {
			t.Fatal(err)
		}
		names, err := fs.Glob(sub, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	sq, pg := list("sqlite"), list("postgres")
	if len(sq) == 0 || len(sq)%2 != 0 {
		t.Fatalf("sqlite has %d files, want a non-zero even number", len(sq))
	}
	if len(sq) != len(pg) {
		t.Fatalf("sqlite has %d files, postgres %d", len(sq), len(pg))
	}
	for i := range sq {
		if sq[i] != pg[i] {
			t.Errorf("file %d: sqlite %q, postgres %q", i, sq[i], pg[i])
		}
	}
	a, _ := Latest("sqlite")
	b, _ := Latest("postgres")
	if a != b || a == 0 {
		t.Errorf("latest: sqlite %d, postgres %d", a, b)
	}
	if _, err := FS("oracle"); err == nil {
		t.Error("FS(oracle) succeeded")
	}
}
