package placement

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/dfms/dfms"
)

// testNodes returns n up nodes of the default weight, node-01, node-02, …,
// in one zone.
func testNodes(n int) []dfms.StorageNode {
	ns := make([]dfms.StorageNode, n)
	for i := range ns {
		ns[i] = dfms.StorageNode{ID: fmt.Sprintf("node-%02d", i+1), Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp}
	}
	return ns
}

// allKeys are the chunk hashes the tests place: SHA-256s of 0, 1, 2, … as
// 8-byte big-endian numbers; a million, or a tenth under the race detector.
var allKeys = sync.OnceValue(func() []dfms.Hash {
	n := 1_000_000
	if raceEnabled {
		n /= 10
	}
	ks := make([]dfms.Hash, n)
	for i := range ks {
		ks[i] = testKey(uint64(i))
	}
	return ks
})

func testKey(i uint64) dfms.Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return dfms.Sum(b[:])
}

// keys returns the first n test keys, or n/10 under the race detector.
func keys(n int) []dfms.Hash {
	if raceEnabled {
		n /= 10
	}
	return allKeys()[:n]
}

func mustRing(t testing.TB, nodes []dfms.StorageNode, vnodes int) *Ring {
	t.Helper()
	r, err := NewRing(nodes, vnodes)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// shares counts the replicas each node is an owner of, n owners a key.
func shares(r *Ring, ks []dfms.Hash, n int) map[string]int {
	c := make(map[string]int)
	for _, h := range ks {
		for _, id := range r.Owners(h, n) {
			c[id]++
		}
	}
	return c
}

// checkBalance checks that every node's share of c is within tol of its
// fair share (proportional to its weight), and logs the extremes.
func checkBalance(t *testing.T, nodes []dfms.StorageNode, c map[string]int, tol float64) {
	t.Helper()
	total, weights := 0, 0
	for _, n := range nodes {
		total += c[n.ID]
		weights += n.Weight
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, n := range nodes {
		if n.Weight == 0 {
			continue // checked by the caller
		}
		fair := float64(total) * float64(n.Weight) / float64(weights)
		dev := float64(c[n.ID])/fair - 1
		lo, hi = min(lo, dev), max(hi, dev)
		if math.Abs(dev) > tol {
			t.Errorf("node %s (weight %d): got %d replicas, want %.0f ± %.0f %%", n.ID, n.Weight, c[n.ID], fair, 100*tol)
		}
	}
	t.Logf("%d nodes, %d replicas: shares from %+.2f %% to %+.2f %% of fair", len(nodes), total, 100*lo, 100*hi)
}

// TestBalance places a million keys on 10 nodes of 150 virtual nodes. (Under
// the race detector, 100,000 keys: their own sampling noise is then about
// 3 % of a node's share, against 1 % for a million.)
func TestBalance(t *testing.T) {
	nodes := testNodes(10)
	ks := keys(1_000_000)
	r := mustRing(t, nodes, DefaultVNodes)
	checkBalance(t, nodes, shares(r, ks, 1), 0.10)
	t.Run("replicas", func(t *testing.T) {
		checkBalance(t, nodes, shares(r, ks, 3), 0.10)
	})
	if !raceEnabled {
		// For the record: one probe (the classic ring) on the same nodes.
		classic, err := newRing(nodes, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		c := shares(classic, ks, 1)
		lo, hi := len(ks), 0
		for _, n := range c {
			lo, hi = min(lo, n), max(hi, n)
		}
		fair := float64(len(ks)) / float64(len(nodes))
		t.Logf("a classic ring (one probe) would give shares from %+.2f %% to %+.2f %% of fair", 100*(float64(lo)/fair-1), 100*(float64(hi)/fair-1))
	}
}

func TestWeights(t *testing.T) {
	nodes := testNodes(11)
	for i := range 3 {
		nodes[i].Weight = 2 * dfms.DefaultNodeWeight
	}
	nodes[10].Weight = 0
	r := mustRing(t, nodes, 0)
	ks := keys(1_000_000)
	c := shares(r, ks, 1)
	checkBalance(t, nodes, c, 0.10)
	var heavy, light float64
	for _, n := range nodes[:3] {
		heavy += float64(c[n.ID]) / 3
	}
	for _, n := range nodes[3:10] {
		light += float64(c[n.ID]) / 7
	}
	if ratio := heavy / light; ratio < 1.8 || ratio > 2.2 {
		t.Errorf("weight 200 vs 100: got a mean share ratio of %.3f, want 2 ± 0.2", ratio)
	} else {
		t.Logf("weight 200 vs 100: mean share ratio %.3f", ratio)
	}
	if c[nodes[10].ID] != 0 {
		t.Errorf("weight 0: got %d keys, want none", c[nodes[10].ID])
	}
	if seq := r.Sequence(ks[0]); len(seq) != 10 || slices.Contains(seq, nodes[10].ID) {
		t.Errorf("Sequence: got %v, want the 10 nodes of positive weight", seq)
	}
	if got := len(r.Nodes()); got != 11 {
		t.Errorf("Nodes: got %d nodes, want 11", got)
	}
}

// movement compares the owners of ks on two rings of one zone, for R = 1,
// 2, 3: it returns, for each R, the fraction of keys whose owner set changed
// and the fraction of replicas that moved. In every change, one replica must
// move: from the node from (if not empty) to the node to (if not empty).
func movement(t *testing.T, a, b *Ring, ks []dfms.Hash, to, from string) (keys, replicas [4]float64) {
	t.Helper()
	var nk, nr [4]int
	bad := 0
	for _, h := range ks {
		// In one zone, the owners for R=n are the first n of those for R=3.
		oa3, ob3 := a.Owners(h, 3), b.Owners(h, 3)
		for n := 1; n <= 3; n++ {
			oa, ob := oa3[:n], ob3[:n]
			if slices.Equal(oa, ob) {
				continue
			}
			var gone, came []string
			for i := range n {
				if !slices.Contains(ob, oa[i]) {
					gone = append(gone, oa[i])
				}
				if !slices.Contains(oa, ob[i]) {
					came = append(came, ob[i])
				}
			}
			if len(gone) == 0 {
				continue // the same owners in another order
			}
			nk[n]++
			nr[n] += len(gone)
			if len(gone) != 1 || len(came) != 1 || from != "" && gone[0] != from || to != "" && came[0] != to {
				if bad++; bad <= 5 {
					t.Errorf("R=%d, key %v: owners %v became %v, want one replica moved (from %q, to %q)", n, h, oa, ob, from, to)
				}
			}
		}
	}
	if bad > 5 {
		t.Errorf("%d keys in all moved otherwise", bad)
	}
	for n := 1; n <= 3; n++ {
		keys[n] = float64(nk[n]) / float64(len(ks))
		replicas[n] = float64(nr[n]) / float64(len(ks)*n)
	}
	return keys, replicas
}

func TestAddNode(t *testing.T) {
	const n = 10
	all := testNodes(n + 1)
	before, after := mustRing(t, all[:n], 0), mustRing(t, all, 0)
	keys, replicas := movement(t, before, after, keys(1_000_000), all[n].ID, "")
	bound := 1.0/(n+1) + 0.05
	for r := 1; r <= 3; r++ {
		t.Logf("R=%d: %d → %d nodes changed the owners of %.2f %% of keys and moved %.2f %% of replicas (ideal %.2f %%)", r, n, n+1, 100*keys[r], 100*replicas[r], 100.0/(n+1))
		if replicas[r] > bound {
			t.Errorf("R=%d: got %.2f %% of replicas moved, want ≤ %.2f %%", r, 100*replicas[r], 100*bound)
		}
	}
	if keys[1] > bound {
		t.Errorf("R=1: got %.2f %% of keys moved, want ≤ %.2f %%", 100*keys[1], 100*bound)
	}
}

func TestRemoveNode(t *testing.T) {
	const n = 10
	ks := keys(1_000_000)
	all := testNodes(n)
	gone := all[4].ID
	before, after := mustRing(t, all, 0), mustRing(t, slices.Delete(slices.Clone(all), 4, 5), 0)
	// movement checks that every key that moved was one of gone's.
	keys, replicas := movement(t, before, after, ks, "", gone)
	for r := 1; r <= 3; r++ {
		t.Logf("R=%d: removing 1 of %d nodes changed the owners of %.2f %% of keys and moved %.2f %% of replicas (ideal %.2f %%)", r, n, 100*keys[r], 100*replicas[r], 100.0/n)
	}
}

// wantOwners is Owners as its doc states it, from Sequence: the placeable
// nodes in sequence, first one per zone as far as zones allow, then the rest.
func wantOwners(r *Ring, h dfms.Hash, n int) []string {
	byID := make(map[string]dfms.StorageNode)
	zones := make(map[string]bool)
	var placeable []string
	for _, id := range r.Sequence(h) {
		nd := slices.IndexFunc(r.nodes, func(x dfms.StorageNode) bool { return x.ID == id })
		byID[id] = r.nodes[nd]
		if r.nodes[nd].State.Placeable() {
			placeable = append(placeable, id)
			zones[r.nodes[nd].Zone] = true
		}
	}
	n = min(n, len(placeable))
	var out []string
	used := make(map[string]bool)
	for _, id := range placeable {
		if len(out) < min(n, len(zones)) && !used[byID[id].Zone] {
			used[byID[id].Zone] = true
			out = append(out, id)
		}
	}
	for _, id := range placeable {
		if len(out) < n && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func TestZones(t *testing.T) {
	zoned := func(zones ...string) []dfms.StorageNode {
		ns := testNodes(len(zones))
		for i, z := range zones {
			ns[i].Zone = z
		}
		return ns
	}
	for _, tc := range []struct {
		name  string
		nodes []dfms.StorageNode
		n     int
		zones int // distinct zones every key must get
	}{
		{"3 zones of 3", zoned("a", "b", "c", "a", "b", "c", "a", "b", "c"), 3, 3},
		{"3 zones of 1, 2, 6", zoned("a", "b", "b", "c", "c", "c", "c", "c", "c"), 3, 3},
		{"2 zones", zoned("a", "b", "a", "b", "a", "b", "a"), 3, 2},
		{"4 zones, R=2", zoned("a", "b", "c", "d", "a", "b", "c", "d"), 2, 2},
		{"1 zone", zoned("", "", "", "", ""), 3, 1},
		{"empty zone is a zone", zoned("", "x", "", ""), 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRing(t, tc.nodes, 0)
			zoneOf := make(map[string]string)
			for _, nd := range tc.nodes {
				zoneOf[nd.ID] = nd.Zone
			}
			for i, h := range keys(100_000) {
				got := r.Owners(h, tc.n)
				zs := make(map[string]bool)
				for _, id := range got {
					zs[zoneOf[id]] = true
				}
				if len(got) != tc.n || len(zs) != tc.zones {
					t.Fatalf("key %v: got owners %v in %d zones, want %d owners in %d zones", h, got, len(zs), tc.n, tc.zones)
				}
				if i < 2000 {
					if want := wantOwners(r, h, tc.n); !slices.Equal(got, want) {
						t.Fatalf("key %v: got owners %v, want %v (from Sequence %v)", h, got, want, r.Sequence(h))
					}
				}
			}
		})
	}
}

func TestStates(t *testing.T) {
	all := testNodes(10)
	nodes := slices.Clone(all)
	nodes[2].State = dfms.NodeDown
	nodes[6].State = dfms.NodeDraining
	nodes[4].State = dfms.NodeSuspect
	r := mustRing(t, nodes, 0)
	c := shares(r, keys(100_000), 3)
	for _, i := range []int{2, 6} {
		if c[nodes[i].ID] != 0 {
			t.Errorf("%s node %s: got %d replicas, want none", nodes[i].State, nodes[i].ID, c[nodes[i].ID])
		}
	}
	if c[nodes[4].ID] == 0 {
		t.Errorf("suspect node %s: got no replicas, want its share", nodes[4].ID)
	}
	for _, h := range keys(2000) {
		if got, want := r.Owners(h, 3), wantOwners(r, h, 3); !slices.Equal(got, want) {
			t.Fatalf("key %v: got owners %v, want %v", h, got, want)
		}
		if got := r.Sequence(h); len(got) != 10 {
			t.Fatalf("key %v: Sequence has %d nodes, want all 10 whatever their state", h, len(got))
		}
	}

	// A node going down.
	before := mustRing(t, all, 0)
	all[3].State = dfms.NodeDown
	after := mustRing(t, all, 0)
	down := all[3].ID
	for _, n := range []int{1, 3} {
		changed := 0
		for _, h := range keys(100_000) {
			a, b := before.Owners(h, n), after.Owners(h, n)
			if !slices.Contains(a, down) {
				if !slices.Equal(a, b) {
					t.Fatalf("R=%d, key %v: owners %v became %v, but %s went down", n, h, a, b, down)
				}
				continue
			}
			changed++
			// The replacement is the next node of the sequence.
			seq := before.Sequence(h)
			if !slices.Equal(seq, after.Sequence(h)) {
				t.Fatalf("key %v: a node going down changed the sequence", h)
			}
			want := slices.DeleteFunc(slices.Clone(seq), func(id string) bool { return id == down })[:n]
			if !slices.Equal(b, want) {
				t.Fatalf("R=%d, key %v: owners %v became %v, want %v", n, h, a, b, want)
			}
		}
		t.Logf("R=%d: a node going down changed the owners of %.2f %% of keys", n, 100*float64(changed)/float64(len(keys(100_000))))
	}
}

func TestDeterminism(t *testing.T) {
	nodes := testNodes(12)
	for i := range nodes {
		nodes[i].Zone = fmt.Sprint("z", i%3)
		nodes[i].Weight = 50 * (1 + i%3)
	}
	r := mustRing(t, nodes, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3 {
		shuffled := slices.Clone(nodes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		r2 := mustRing(t, shuffled, 0)
		if !slices.Equal(r.pos, r2.pos) || !slices.Equal(r.owner, r2.owner) {
			t.Fatal("a shuffled node list built a different ring")
		}
		for _, h := range keys(10_000) {
			if a, b := r.Owners(h, 3), r2.Owners(h, 3); !slices.Equal(a, b) {
				t.Fatalf("key %v: owners %v, and %v from a shuffled list", h, a, b)
			}
		}
	}
	ids := make([]string, 0, len(nodes))
	for _, n := range r.Nodes() {
		ids = append(ids, n.ID)
	}
	if !slices.IsSorted(ids) {
		t.Errorf("Nodes: got %v, want them by id", ids)
	}
}

// TestFormat pins the placement format: a change here moves stored chunks.
// (The positions were checked with sha256sum: printf '\x00\x00\x00\x95node-01'.)
func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		id   string
		i    int
		want uint64
	}{
		{"node-01", 0, 0xa6c4c786f231105f},
		{"node-01", 149, 0x38b0e67ac661fe35},
		{"a", 7, 0xa8b4e0b01f7c4bcf},
	} {
		if got := vnodePos(tc.id, tc.i); got != tc.want {
			t.Errorf("vnodePos(%q, %d): got %#016x, want %#016x", tc.id, tc.i, got, tc.want)
		}
	}
	h := testKey(0) // af5570f5a1810b7a f78caf4bc70a660f 0df51e42baf91d4d e5b2328de0e83dfc
	for j, want := range []uint64{
		0xaf5570f5a1810b7a, 0xf78caf4bc70a660f, 0x0df51e42baf91d4d, 0xe5b2328de0e83dfc,
		0xa1810b7aaf5570f5, 0xc70a660ff78caf4b, 0xbaf91d4d0df51e42, 0xe0e83dfce5b2328d,
	} {
		if got := probe(h, j); got != want {
			t.Errorf("probe %d of %v: got %#016x, want %#016x", j, h, got, want)
		}
	}
	nodes := testNodes(5)
	r := mustRing(t, nodes, 0)
	for _, tc := range []struct {
		key  uint64
		want []string
	}{
		{0, []string{"node-04", "node-01", "node-03", "node-02", "node-05"}},
		{1, []string{"node-01", "node-04", "node-03", "node-05", "node-02"}},
		{2, []string{"node-01", "node-05", "node-04", "node-03", "node-02"}},
	} {
		if got := r.Sequence(testKey(tc.key)); !slices.Equal(got, tc.want) {
			t.Errorf("Sequence(key %d): got %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestNewRingInvalid(t *testing.T) {
	ok := testNodes(3)
	with := func(f func(ns []dfms.StorageNode)) []dfms.StorageNode {
		ns := slices.Clone(ok)
		f(ns)
		return ns
	}
	for _, tc := range []struct {
		name   string
		nodes  []dfms.StorageNode
		vnodes int
	}{
		{"empty id", with(func(ns []dfms.StorageNode) { ns[1].ID = "" }), 0},
		{"duplicate id", with(func(ns []dfms.StorageNode) { ns[2].ID = ns[0].ID }), 0},
		{"negative weight", with(func(ns []dfms.StorageNode) { ns[0].Weight = -1 }), 0},
		{"no state", with(func(ns []dfms.StorageNode) { ns[0].State = "" }), 0},
		{"bad state", with(func(ns []dfms.StorageNode) { ns[0].State = "gone" }), 0},
		{"negative vnodes", ok, -1},
		{"huge weight", with(func(ns []dfms.StorageNode) { ns[0].Weight = math.MaxInt }), 0},
		{"too many vnodes", ok, maxTokens},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRing(tc.nodes, tc.vnodes); !dfms.Is(err, dfms.Invalid) {
				t.Errorf("got error %v, want kind Invalid", err)
			}
		})
	}
}

func TestVNodeCounts(t *testing.T) {
	nodes := testNodes(4)
	nodes[1].Weight = 1   // rounds to 2 (1.5)
	nodes[2].Weight = 250 // 375
	nodes[3].Weight = 0
	r := mustRing(t, nodes, 0)
	count := make(map[int32]int)
	for _, x := range r.owner {
		count[x]++
	}
	for x, want := range []int{150, 2, 375, 0} {
		if count[int32(x)] != want {
			t.Errorf("weight %d: got %d virtual nodes, want %d", nodes[x].Weight, count[int32(x)], want)
		}
	}
	r = mustRing(t, testNodes(1), 10)
	if len(r.pos) != 10 {
		t.Errorf("vnodes 10: got %d virtual nodes, want 10", len(r.pos))
	}
	r = mustRing(t, []dfms.StorageNode{{ID: "a", Weight: 1, State: dfms.NodeUp}}, 10)
	if len(r.pos) != 1 {
		t.Errorf("weight 1 of 10 virtual nodes: got %d virtual nodes, want 1", len(r.pos))
	}
}

func TestFewNodes(t *testing.T) {
	h := testKey(1)
	r := mustRing(t, nil, 0)
	if got := r.Owners(h, 3); len(got) != 0 {
		t.Errorf("empty ring: got owners %v, want none", got)
	}
	if got := r.Sequence(h); len(got) != 0 {
		t.Errorf("empty ring: got sequence %v, want none", got)
	}
	nodes := testNodes(4)
	nodes[0].State = dfms.NodeDown
	nodes[1].Weight = 0
	r = mustRing(t, nodes, 0)
	if got := r.Owners(h, 3); len(got) != 2 || slices.Contains(got, nodes[0].ID) || slices.Contains(got, nodes[1].ID) {
		t.Errorf("2 placeable nodes: got owners %v, want node-03 and node-04", got)
	}
	for _, n := range []int{0, -1} {
		if got := r.Owners(h, n); got != nil {
			t.Errorf("Owners(h, %d): got %v, want nil", n, got)
		}
	}
}

func TestOwnersAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	nodes := testNodes(24)
	for i := range nodes {
		nodes[i].Zone = fmt.Sprint("z", i%4)
	}
	r := mustRing(t, nodes, 0)
	h := testKey(3)
	for _, n := range []int{1, 3, 6, 20, 24} {
		if a := testing.AllocsPerRun(50, func() { r.Owners(h, n) }); a != 1 {
			t.Errorf("Owners(h, %d): got %v allocations, want 1", n, a)
		}
		if got, want := r.Owners(h, n), wantOwners(r, h, n); !slices.Equal(got, want) {
			t.Errorf("Owners(h, %d): got %v, want %v", n, got, want)
		}
	}
}

func TestConcurrent(t *testing.T) {
	r := mustRing(t, testNodes(8), 0)
	ks := keys(20_000)
	want := make([][]string, len(ks))
	for i, h := range ks {
		want[i] = r.Owners(h, 3)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < len(ks); i += 4 {
				if got := r.Owners(ks[i], 3); !slices.Equal(got, want[i]) {
					t.Errorf("key %v: got %v concurrently, want %v", ks[i], got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDefaultReplicas(t *testing.T) {
	for nodes, want := range []int{1, 1, 2, 2, 3, 3, 3, 3} {
		if got := DefaultReplicas(nodes); got != want {
			t.Errorf("DefaultReplicas(%d): got %d, want %d", nodes, got, want)
		}
	}
	if got := DefaultReplicas(1000); got != 3 {
		t.Errorf("DefaultReplicas(1000): got %d, want 3", got)
	}
}
