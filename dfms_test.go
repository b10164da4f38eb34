package dfms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestHashRoundTrip(t *testing.T) {
	h := Sum([]byte("hello"))
	got, err := ParseHash(h.String())
	if err != nil || got != h {
		t.Fatalf("ParseHash(String()) = %v, %v; want %v", got, err, h)
	}
	for _, bad := range []string{"", "zz", strings.Repeat("g", 64), h.String()[:63]} {
		if _, err := ParseHash(bad); !Is(err, Invalid) {
			t.Errorf("ParseHash(%q) error %v, want kind Invalid", bad, err)
		}
	}
}

func TestManifestBinary(t *testing.T) {
	m := Manifest{Chunks: []ChunkRef{{Sum([]byte("a")), 10}, {Sum([]byte("b")), 1 << 22}, {Sum([]byte("a")), 10}}}
	b, _ := m.MarshalBinary()
	var got Manifest
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(m) {
		t.Fatalf("got %v, want %v", got, m)
	}
	if got.Size() != 20+1<<22 {
		t.Errorf("Size() = %d", got.Size())
	}
	if c := got.Counts(); c[Sum([]byte("a"))] != 2 || len(c) != 2 {
		t.Errorf("Counts() = %v", c)
	}
	if i, w := got.Locate(15); i != 1 || w != 5 {
		t.Errorf("Locate(15) = %d, %d; want 1, 5", i, w)
	}
	if i, _ := got.Locate(got.Size()); i != 3 {
		t.Errorf("Locate(end) = %d, want 3", i)
	}
	if err := got.UnmarshalBinary(b[:5]); !Is(err, Corrupt) {
		t.Errorf("short manifest: %v, want Corrupt", err)
	}
}

func TestErrorKinds(t *testing.T) {
	base := errors.New("disk on fire")
	e1 := E("a.B", NotExist, base)
	e2 := E("c.D", Other, e1)
	if KindOf(e2) != NotExist {
		t.Errorf("KindOf wrapped = %v, want NotExist", KindOf(e2))
	}
	if !errors.Is(e2, base) {
		t.Error("errors.Is does not see through *Error")
	}
	if KindOf(base) != Other || KindOf(nil) != Other {
		t.Error("KindOf of a plain error is not Other")
	}
	if got := e1.Error(); got != "a.B: does not exist: disk on fire" {
		t.Errorf("Error() = %q", got)
	}
	if KindOf(fmt.Errorf("wrapped: %w", e1)) != NotExist {
		t.Error("KindOf through fmt wrapping failed")
	}
}

func TestValidName(t *testing.T) {
	good := []string{"a", "report.pdf", strings.Repeat("x", 255), " spaced ", "ünï", "...", ".hidden"}
	bad := []string{"", ".", "..", ".versions", strings.Repeat("x", 256), "a/b", "a\x00b", "/"}
	for _, n := range good {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidName(n); !Is(err, Invalid) {
			t.Errorf("ValidName(%q) = %v, want kind Invalid", n, err)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"a", ".", "..", "a/b", ".versions", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidName(name)
		ok := name != "" && name != "." && name != ".." && name != VersionsDir &&
			len(name) <= MaxNameLen && !strings.ContainsAny(name, "/\x00")
		if ok != (err == nil) {
			t.Fatalf("ValidName(%q) = %v, want ok=%v", name, err, ok)
		}
	})
}

// Entry kinds are named as the API spells them, and every name parses
// back to its kind; nothing else parses.
func TestEntryKindNames(t *testing.T) {
	for k := KindDir; k <= KindBlockDev; k++ {
		if !k.Valid() {
			t.Fatalf("kind %d is not valid", k)
		}
		got, ok := ParseEntryKind(k.String())
		if !ok || got != k {
			t.Errorf("ParseEntryKind(%q) = %v, %v; want %v", k.String(), got, ok, k)
		}
		if k.Special() != (k >= KindFIFO) || k.Device() != (k == KindCharDev || k == KindBlockDev) {
			t.Errorf("kind %v: special %v, device %v", k, k.Special(), k.Device())
		}
	}
	for _, k := range []EntryKind{0, 8, 255} {
		if k.Valid() || k.Special() || k.Device() || k.String() != fmt.Sprintf("kind(%d)", k) {
			t.Errorf("kind %d is %q, valid %v", k, k.String(), k.Valid())
		}
	}
	for _, s := range []string{"", "folder", "FIFO", "pipe", "kind(4)"} {
		if k, ok := ParseEntryKind(s); ok {
			t.Errorf("ParseEntryKind(%q) = %v", s, k)
		}
	}
}

func TestHoles(t *testing.T) {
	a := Sum([]byte("a"))
	var refs []ChunkRef
	refs = append(refs, ChunkRef{a, 10})
	refs = AppendHole(refs, 5)
	refs = AppendHole(refs, 7) // extends the hole before it
	refs = AppendHole(refs, 0)
	if len(refs) != 2 || !refs[1].IsHole() || refs[1].Size != 12 || refs[0].IsHole() {
		t.Fatalf("refs %v", refs)
	}
	const tib = int64(1) << 40
	big := AppendHole(nil, tib)
	if n := int64(len(big)); n != tib/MaxHole+1 || big[0].Size != MaxHole {
		t.Fatalf("a 1 TiB hole takes %d refs, the first of %d bytes", n, big[0].Size)
	}
	m := Manifest{Chunks: append(append([]ChunkRef{{a, 10}}, big...), ChunkRef{a, 10})}
	if m.Size() != tib+20 || m.DataSize() != 20 || !m.HasHoles() {
		t.Fatalf("Size %d DataSize %d", m.Size(), m.DataSize())
	}
	if c := m.Counts(); len(c) != 1 || c[a] != 2 {
		t.Fatalf("Counts() = %v, want the chunk twice and no hole", c)
	}
	if hs := m.Hashes(); len(hs) != 2 || hs[0] != a || hs[1] != a {
		t.Fatalf("Hashes() = %v", hs)
	}
	b, _ := m.MarshalBinary()
	if len(b) > 10<<10 {
		t.Fatalf("a 1 TiB sparse manifest takes %d bytes", len(b))
	}
	var got Manifest
	if err := got.UnmarshalBinary(b); err != nil || got.Size() != m.Size() || got.DataSize() != 20 {
		t.Fatalf("round trip: %v, size %d", err, got.Size())
	}
	if i, w := got.Locate(10 + MaxHole + 3); i != 2 || w != 3 {
		t.Fatalf("Locate in a hole: %d, %d", i, w)
	}
	// Split, short and empty holes compact to AppendHole's form.
	split := []ChunkRef{Hole(3), Hole(0), Hole(MaxHole), {a, 1}, Hole(1), Hole(2)}
	c := CompactHoles(split)
	want := []ChunkRef{Hole(MaxHole), Hole(3), {a, 1}, Hole(3)}
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("CompactHoles = %v, want %v", c, want)
	}
}

func TestRelatimeDue(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name                string
		atime, mtime, ctime time.Time
		want                bool
	}{
		{"read since the last change", now.Add(-time.Hour), now.Add(-2 * time.Hour), now.Add(-2 * time.Hour), false},
		{"changed since the last read", now.Add(-time.Hour), now.Add(-time.Minute), now.Add(-time.Minute), true},
		{"atime equal to mtime", now.Add(-time.Hour), now.Add(-time.Hour), now.Add(-2 * time.Hour), true},
		{"attributes changed since the read", now.Add(-time.Hour), now.Add(-2 * time.Hour), now.Add(-time.Minute), true},
		{"a day old", now.Add(-24 * time.Hour), now.Add(-48 * time.Hour), now.Add(-48 * time.Hour), true},
		{"almost a day old", now.Add(-23 * time.Hour), now.Add(-48 * time.Hour), now.Add(-48 * time.Hour), false},
	} {
		if got := RelatimeDue(c.atime, c.mtime, c.ctime, now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// Two flags mark a context independently, and a context keeps the marks
// of its parents.
func TestContextFlag(t *testing.T) {
	a, b := NewContextFlag("a"), NewContextFlag("b")
	ctx := a.Set(context.Background())
	if !a.In(ctx) || b.In(ctx) {
		t.Fatalf("marked with a: In a %v, In b %v; want true, false", a.In(ctx), b.In(ctx))
	}
	ctx = b.Set(ctx)
	if !a.In(ctx) || !b.In(ctx) {
		t.Fatalf("marked with a, then b: In a %v, In b %v; want true, true", a.In(ctx), b.In(ctx))
	}
	if a.In(context.Background()) {
		t.Fatal("an unmarked context is In a")
	}
}
