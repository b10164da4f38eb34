package placement

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/dfms/dfms"
)

// DefaultVNodes is the number of virtual nodes of a node of weight dfms.DefaultNodeWeight.
const DefaultVNodes = 150

// numProbes is the number of positions a chunk hash is looked up at (see the
// package doc). It is part of the placement format.
const numProbes = 8

// maxTokens bounds the virtual nodes of a ring (about 200 MB of ring), so
// that a mistyped weight fails instead of exhausting memory.
const maxTokens = 1 << 24

// Ring places chunks on storage nodes: see the package doc. A Ring is
// immutable and safe for concurrent use; a changed node list (a node added,
// removed, reweighted or changing state) builds a new Ring.
type Ring struct {
	nodes []dfms.StorageNode // sorted by ID; a node is named by its index here

	// The virtual nodes, in ring order: pos ascending, ties by node index.
	pos   []uint64
	owner []int32 // owner[i] is the node of virtual node i

	// index makes the search for a position p a table lookup: the virtual
	// nodes at or after p's bucket p>>shift and before the next bucket are
	// pos[index[p>>shift]:index[p>>shift+1]], about one. It has a bucket per
	// virtual node or more (a power of two), and one more entry at the end.
	index []int32
	shift uint

	zone     []int32 // zone[x] numbers node x's zone
	place    []bool  // place[x]: node x has weight > 0 and a Placeable state
	nplace   int     // nodes with place set
	nzones   int     // distinct zones among them
	nweights int     // nodes with weight > 0

	probes int // numProbes; 1 (a classic ring) only in the simulation's comparison
}

// NewRing builds the ring of nodes. vnodes is the number of virtual nodes of a node of
// weight dfms.DefaultNodeWeight (0 means DefaultVNodes); a node's count scales with its
// weight (weight 0: none, it owns nothing). Nodes are taken in any order: the same set
// always gives the same ring. Empty or duplicate ids fail with kind dfms.Invalid.
//
// So do a negative weight or vnodes, a State that is not Valid (the zero
// State included: a node whose state was never set would silently own
// nothing), and a ring of more than 16 Mi virtual nodes.
func NewRing(nodes []dfms.StorageNode, vnodes int) (*Ring, error) {
	return newRing(nodes, vnodes, numProbes)
}

func newRing(nodes []dfms.StorageNode, vnodes, probes int) (*Ring, error) {
	const op dfms.Op = "placement.NewRing"
	if vnodes < 0 || vnodes > maxTokens {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("virtual node count %d out of range", vnodes))
	}
	if vnodes == 0 {
		vnodes = DefaultVNodes
	}
	r := &Ring{
		nodes:  slices.Clone(nodes),
		zone:   make([]int32, len(nodes)),
		place:  make([]bool, len(nodes)),
		probes: probes,
	}
	slices.SortFunc(r.nodes, func(a, b dfms.StorageNode) int { return cmp.Compare(a.ID, b.ID) })

	counts := make([]int, len(r.nodes))
	total := 0
	zones := make(map[string]int32)
	placeableZones := make(map[string]bool)
	for x, n := range r.nodes {
		switch {
		case n.ID == "":
			return nil, dfms.Errorf(op, dfms.Invalid, "a node has an empty id")
		case x > 0 && r.nodes[x-1].ID == n.ID:
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("node id %q appears twice", n.ID))
		case n.Weight < 0:
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("node %q: negative weight %d", n.ID, n.Weight))
		case !n.State.Valid():
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("node %q: invalid state %q", n.ID, n.State))
		}
		c, ok := vnodeCount(vnodes, n.Weight)
		if !ok || c > maxTokens-total {
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("node %q: weight %d makes more than %d virtual nodes", n.ID, n.Weight, maxTokens))
		}
		counts[x] = c
		total += c
		z, ok := zones[n.Zone]
		if !ok {
			z = int32(len(zones))
			zones[n.Zone] = z
		}
		r.zone[x] = z
		if c > 0 {
			r.nweights++
			if n.State.Placeable() {
				r.place[x] = true
				r.nplace++
				placeableZones[n.Zone] = true
			}
		}
	}
	r.nzones = len(placeableZones)

	type vnode struct {
		pos  uint64
		node int32
	}
	vs := make([]vnode, 0, total)
	for x, n := range r.nodes {
		for i := range counts[x] {
			vs = append(vs, vnode{vnodePos(n.ID, i), int32(x)})
		}
	}
	// Ties (two ids hashing to one position) go by id, so that the order
	// does not depend on the order the nodes were given in.
	slices.SortFunc(vs, func(a, b vnode) int {
		return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.node, b.node))
	})
	r.pos = make([]uint64, len(vs))
	r.owner = make([]int32, len(vs))
	for i, v := range vs {
		r.pos[i], r.owner[i] = v.pos, v.node
	}
	r.buildIndex()
	return r, nil
}

func (r *Ring) buildIndex() {
	b := bits.Len(uint(max(len(r.pos)-1, 1))) // 2^b ≥ len(r.pos)
	r.shift = uint(64 - b)
	r.index = make([]int32, 1<<b+1)
	i := 0
	for k := range r.index {
		for i < len(r.pos) && r.pos[i]>>r.shift < uint64(k) {
			i++
		}
		r.index[k] = int32(i)
	}
}

// vnodeCount is the number of virtual nodes of a node of the given weight:
// vnodes·weight/DefaultNodeWeight rounded half up, and at least 1 for a
// positive weight. ok is false if it exceeds maxTokens (vnodes ≤ maxTokens).
func vnodeCount(vnodes, weight int) (n int, ok bool) {
	if weight == 0 {
		return 0, true
	}
	if weight > maxTokens*dfms.DefaultNodeWeight/vnodes+1 {
		return 0, false
	}
	n = (vnodes*weight + dfms.DefaultNodeWeight/2) / dfms.DefaultNodeWeight
	return max(n, 1), n <= maxTokens
}

// vnodePos is the ring position of virtual node i of node id: the first 8
// bytes, big-endian, of SHA-256(uint32 big-endian i ‖ id). It is part of the
// placement format.
func vnodePos(id string, i int) uint64 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(i))
	s := sha256.New()
	s.Write(b[:])
	s.Write([]byte(id))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(s.Sum(sum[:0]))
}

// Owners returns the ids of the n nodes that should hold h, in ring order from h: distinct
// nodes whose State is Placeable and weight > 0; in distinct zones whenever the placeable
// nodes span at least n zones (otherwise as many distinct zones as there are, first, then the
// rest in ring order). Fewer than n if there are not enough placeable nodes. Never allocates
// more than the result slice; safe for concurrent use.
//
// "Ring order from h" is the order of Sequence(h) (see the package doc).
// Owners(h, n) takes the placeable nodes of Sequence(h) in that order, one
// per zone, until it has n nodes or every zone; then, short of n, the other
// placeable nodes of Sequence(h) in that order.
func (r *Ring) Owners(h dfms.Hash, n int) []string {
	want := min(n, r.nplace)
	if want <= 0 {
		return nil
	}
	out := make([]string, 0, want)
	// The node indices of the first picks; later ones are found by id, so
	// that no n makes Owners allocate more than out.
	var picked [16]int32
	pick := func(x int32) {
		if len(out) < len(picked) {
			picked[len(out)] = x
		}
		out = append(out, r.nodes[x].ID)
	}
	has := func(x int32) bool {
		for k := range out {
			if r.pickedAt(&picked, out, k) == x {
				return true
			}
		}
		return false
	}

	var w walk
	w.start(r, h)
	start := w
	// One node per zone, as many zones as wanted and there are.
	if zonesWant := min(want, r.nzones); zonesWant > 1 {
	zoned:
		for len(out) < zonesWant {
			x := w.next(r)
			if !r.place[x] {
				continue
			}
			for k := range out {
				if r.zone[r.pickedAt(&picked, out, k)] == r.zone[x] {
					continue zoned
				}
			}
			pick(x)
		}
		if len(out) == want {
			return out
		}
		w = start
	}
	// The rest in ring order.
	for len(out) < want {
		if x := w.next(r); r.place[x] && !has(x) {
			pick(x)
		}
	}
	return out
}

// pickedAt is the node index of out[k], Owners' k-th pick.
func (r *Ring) pickedAt(picked *[16]int32, out []string, k int) int32 {
	if k < len(picked) {
		return picked[k]
	}
	x, _ := slices.BinarySearchFunc(r.nodes, out[k], func(n dfms.StorageNode, id string) int { return cmp.Compare(n.ID, id) })
	return int32(x)
}

// Sequence returns every node with weight > 0, whatever its state, in ring order from h
// (distinct ids): the order in which a reader looks for replicas beyond the owners.
// The order is the one of the package doc, "Looking a chunk up".
func (r *Ring) Sequence(h dfms.Hash) []string {
	out := make([]string, 0, r.nweights)
	if r.nweights == 0 {
		return out
	}
	seen := make([]bool, len(r.nodes))
	var w walk
	w.start(r, h)
	for len(out) < r.nweights {
		if x := w.next(r); !seen[x] {
			seen[x] = true
			out = append(out, r.nodes[x].ID)
		}
	}
	return out
}

// Nodes returns the nodes the ring was built from, by id.
func (r *Ring) Nodes() []dfms.StorageNode { return slices.Clone(r.nodes) }

// DefaultReplicas is the replication factor to use when none is configured, for a cluster
// of `nodes` storage nodes: 1 for one node, 2 for two or three, 3 from four.
// (1 for no node, too.)
func DefaultReplicas(nodes int) int {
	switch {
	case nodes <= 1:
		return 1
	case nodes <= 3:
		return 2
	}
	return 3
}

// probe returns the positions h is looked up at: its four 64-bit big-endian
// words, then the same words with their halves swapped. The eight 32-bit
// words of a SHA-256 are independent, and a position's high half decides
// where on the ring it falls, so the probes fall independently.
func probe(h dfms.Hash, i int) uint64 {
	w := binary.BigEndian.Uint64(h[8*(i%4):])
	if i >= 4 {
		w = bits.RotateLeft64(w, 32)
	}
	return w
}

// A walk visits the virtual nodes of the ring in order of their clockwise
// distance from the nearest probe behind them: it merges one clockwise walk
// from each probe. The first visit to each node gives Sequence's order. It
// is a value, so that Owners can restart it from a copy.
type walk struct {
	p    [numProbes]uint64 // the probes
	i    [numProbes]int32  // each probe's next virtual node
	d    [numProbes]uint64 // its distance from the probe
	left [numProbes]int32  // virtual nodes the probe's walk has not yet visited
	n    int               // probes in use
}

func (w *walk) start(r *Ring, h dfms.Hash) {
	w.n = r.probes
	for j := range w.n {
		p := probe(h, j)
		i := r.search(p)
		w.p[j], w.i[j], w.d[j], w.left[j] = p, int32(i), r.pos[i]-p, int32(len(r.pos))
	}
}

// next returns the node of the next virtual node. Every walk of a ring that
// has a virtual node goes on long enough to visit every node, and no caller
// asks for more.
func (w *walk) next(r *Ring) int32 {
	b := -1
	for j := range w.n {
		// Ties (which 64-bit positions make rare) go to the lower probe.
		if w.left[j] > 0 && (b < 0 || w.d[j] < w.d[b]) {
			b = j
		}
	}
	if b < 0 {
		panic("placement: walk went past every virtual node")
	}
	i := w.i[b]
	x := r.owner[i]
	i++
	if int(i) == len(r.pos) {
		i = 0
	}
	w.i[b], w.d[b] = i, r.pos[i]-w.p[b] // mod 2⁶⁴: the clockwise distance
	w.left[b]--
	return x
}

// search returns the index of the first virtual node at or after p,
// wrapping to 0 past the last one. The ring has a virtual node.
func (r *Ring) search(p uint64) int {
	b := p >> r.shift
	i, end := int(r.index[b]), int(r.index[b+1])
	for i < end && r.pos[i] < p {
		i++
	}
	if i == len(r.pos) {
		return 0
	}
	return i
}
