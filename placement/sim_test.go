package placement

import (
	"fmt"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/dfms/dfms"
)

// TestSim measures a cluster of 100 nodes over 10 million keys: the balance
// of shares, the keys moved by adding or removing a node, and the cost of a
// lookup. It prints a markdown table, and runs only with DFMS_SIM=1 (about
// half a minute):
//
//	DFMS_SIM=1 go test ./placement -run Sim -v
func TestSim(t *testing.T) {
	if os.Getenv("DFMS_SIM") == "" {
		t.Skip("the simulation runs with DFMS_SIM=1")
	}
	const (
		n    = 100
		keys = 10_000_000
		r    = 3
	)
	nodes := make([]dfms.StorageNode, n+1)
	for i := range nodes {
		nodes[i] = dfms.StorageNode{ID: fmt.Sprintf("node-%03d", i+1), Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp}
	}
	base := mustRing(t, nodes[:n], 0)
	added := mustRing(t, nodes, 0)
	removed := mustRing(t, slices.Delete(slices.Clone(nodes[:n]), n/2, n/2+1), 0)
	classic, err := newRing(nodes[:n], 0, 1)
	if err != nil {
		t.Fatal(err)
	}

	one, all, one1 := make(map[string]int), make(map[string]int), make(map[string]int)
	var addKeys, addReplicas, remKeys, remReplicas int
	for i := range uint64(keys) {
		h := testKey(i)
		o, oa, or := base.Owners(h, r), added.Owners(h, r), removed.Owners(h, r)
		one[o[0]]++
		for _, id := range o {
			all[id]++
		}
		one1[classic.Owners(h, 1)[0]]++
		if oa[0] != o[0] {
			addKeys++
		}
		if or[0] != o[0] {
			remKeys++
		}
		for _, id := range o {
			if !slices.Contains(oa, id) {
				addReplicas++
			}
			if !slices.Contains(or, id) {
				remReplicas++
			}
		}
	}

	ks := make([]dfms.Hash, 1<<20)
	for i := range ks {
		ks[i] = testKey(uint64(keys + i))
	}
	cost := func(ring *Ring, n int) float64 {
		start := time.Now()
		for _, h := range ks {
			ring.Owners(h, n)
		}
		return float64(time.Since(start).Nanoseconds()) / float64(len(ks))
	}

	balance := func(c map[string]int) string {
		total := 0
		for _, v := range c {
			total += v
		}
		fair := float64(total) / n
		lo, hi, ss := math.Inf(1), math.Inf(-1), 0.0
		for _, nd := range nodes[:n] {
			d := float64(c[nd.ID])/fair - 1
			lo, hi, ss = min(lo, d), max(hi, d), ss+d*d
		}
		return fmt.Sprintf("min %+.1f %%, max %+.1f %%, std dev %.1f %%", 100*lo, 100*hi, 100*math.Sqrt(ss/n))
	}
	pct := func(a, b int) string { return fmt.Sprintf("%.2f %%", 100*float64(a)/float64(b)) }

	fmt.Printf("\n%d nodes × %d virtual nodes, %d probes, %d M keys (SHA-256s)\n\n", n, DefaultVNodes, numProbes, keys/1_000_000)
	fmt.Println("| measure | result | ideal |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| share of keys (R=1) vs fair | %s | 0 |\n", balance(one))
	fmt.Printf("| share of replicas (R=3) vs fair | %s | 0 |\n", balance(all))
	fmt.Printf("| same, classic ring (1 probe, R=1) | %s | 0 |\n", balance(one1))
	fmt.Printf("| keys moved, node added (R=1) | %s | %s |\n", pct(addKeys, keys), pct(1, n+1))
	fmt.Printf("| replicas moved, node added (R=3) | %s | %s |\n", pct(addReplicas, r*keys), pct(1, n+1))
	fmt.Printf("| keys moved, node removed (R=1) | %s | %s |\n", pct(remKeys, keys), pct(1, n))
	fmt.Printf("| replicas moved, node removed (R=3) | %s | %s |\n", pct(remReplicas, r*keys), pct(1, n))
	fmt.Printf("| Owners, R=3 | %.0f ns | |\n", cost(base, r))
	fmt.Printf("| Owners, R=3, classic ring | %.0f ns | |\n\n", cost(classic, r))
}

func BenchmarkOwners(b *testing.B) {
	ks := make([]dfms.Hash, 1<<12)
	for i := range ks {
		ks[i] = testKey(uint64(i))
	}
	for _, n := range []int{10, 100} {
		nodes := testNodes(n)
		for i := range nodes {
			nodes[i].Zone = fmt.Sprint("z", i%3)
		}
		r := mustRing(b, nodes, 0)
		for _, rf := range []int{1, 3} {
			b.Run(fmt.Sprintf("nodes=%d/R=%d", n, rf), func(b *testing.B) {
				i := 0
				for b.Loop() {
					r.Owners(ks[i%len(ks)], rf)
					i++
				}
			})
		}
	}
}
