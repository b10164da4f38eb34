package fusefs

import (
	"slices"
	"testing"
)

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// The names the kernel holds for a file: a lookup under a new name starts
// dropping the others, which opens wait for; an open that finds the file
// renamed with no such lookup drops the stale names itself, and an open
// racing with it waits for that.
func TestKernelNames(t *testing.T) {
	var kn kernelNames
	f0, f3, g := kernelName{2, "f0"}, kernelName{2, "f3"}, kernelName{1, "g"}
	if stale := kn.looked(9, f0); len(stale) > 0 {
		t.Fatalf("a first lookup found stale names: %v", stale)
	}
	if drop, wait := kn.stale(9, f0); len(drop)+len(wait) > 0 {
		t.Fatalf("the current name is stale: %v %v", drop, wait)
	}
	// Renamed elsewhere to f3, and looked up as f3: f0 is being dropped.
	stale := kn.looked(9, f3)
	if !slices.Equal(stale, []kernelName{f0}) {
		t.Fatalf("looked(f3) = %v, want f0 to drop", stale)
	}
	drop, wait := kn.stale(9, f3)
	if len(drop) > 0 || len(wait) != 1 {
		t.Fatalf("an open while f0 is dropped: drop %v, wait %d; want to wait for one", drop, len(wait))
	}
	kn.dropped(9, stale)
	if !closed(wait[0]) {
		t.Fatal("the wait did not end when the name was dropped")
	}
	if drop, wait := kn.stale(9, f3); len(drop)+len(wait) > 0 {
		t.Fatalf("after the drop: %v %v", drop, wait)
	}
	// Renamed elsewhere to g, found by an open: it drops f3, and a racing
	// open waits for that.
	drop, _ = kn.stale(9, g)
	if !slices.Equal(drop, []kernelName{f3}) {
		t.Fatalf("stale(g) = %v, want f3 to drop", drop)
	}
	_, wait = kn.stale(9, g)
	if len(wait) != 1 {
		t.Fatalf("a racing open does not wait: %d", len(wait))
	}
	kn.dropped(9, drop)
	if !closed(wait[0]) {
		t.Fatal("the racing open still waits")
	}
	// Renames and unlinks through the mount move the name.
	kn.looked(9, g)
	kn.renamed(9, g, &f0)
	if drop, wait := kn.stale(9, f0); len(drop)+len(wait) > 0 {
		t.Fatalf("a rename through the mount left the old name: %v %v", drop, wait)
	}
	kn.renamed(9, f0, nil)
	kn.looked(9, f3)
	kn.forget(9)
	if drop, wait := kn.stale(9, g); len(drop)+len(wait) > 0 {
		t.Fatal("a forgotten file has names")
	}
}
