package fusefs

import (
	"slices"
	"testing"
)

// An open of a file whose kernel names include one that is not its name
// now is stale until the kernel looks the file up again; each stale name
// is reported for dropping once.
func TestKernelNames(t *testing.T) {
	var kn kernelNames
	f0, f3 := kernelName{2, "f0"}, kernelName{2, "f3"}
	kn.looked(9, f0)
	if notify, stale := kn.stale(9, f0); stale || len(notify) > 0 {
		t.Fatalf("the current name is stale: %v %v", notify, stale)
	}
	// Renamed elsewhere to f3; the kernel looked it up as f3 too.
	kn.looked(9, f3)
	notify, stale := kn.stale(9, f3)
	if !stale || !slices.Equal(notify, []kernelName{f0}) {
		t.Fatalf("stale(f3) = %v, %v; want f0 reported", notify, stale)
	}
	// An open racing with the drop is refused too, without a second drop.
	if notify, stale := kn.stale(9, f3); !stale || len(notify) > 0 {
		t.Fatalf("second stale(f3) = %v, %v; want stale, nothing to report", notify, stale)
	}
	// The kernel's retry looks it up by its name: the stale one is gone.
	kn.looked(9, f3)
	if notify, stale := kn.stale(9, f3); stale || len(notify) > 0 {
		t.Fatalf("after the lookup: %v, %v", notify, stale)
	}
	// Renames and unlinks through the mount move the name.
	kn.renamed(9, f3, &f0)
	if _, stale := kn.stale(9, f0); stale {
		t.Fatal("a rename through the mount left the old name")
	}
	kn.renamed(9, f0, nil)
	kn.forget(9)
	if _, stale := kn.stale(9, f3); stale {
		t.Fatal("a forgotten file has names")
	}
}
