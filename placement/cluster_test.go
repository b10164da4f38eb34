package placement_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/placement/store/storetest"
)

// testCluster is a cluster over disk stores in temporary directories.
type testCluster struct {
	*placement.Cluster
	dirs   map[string]string
	stores map[string]*flaky
	log    *memLog
	bad    *badCopies
}

// newCluster returns a cluster of n disk nodes (ids n1…) with r copies
// and write quorum w (0: r).
func newCluster(t *testing.T, n, r, w int) *testCluster {
	t.Helper()
	tc := &testCluster{dirs: map[string]string{}, stores: map[string]*flaky{}, log: newMemLog(), bad: &badCopies{}}
	var ms []placement.Member
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		dir := t.TempDir()
		d, err := disk.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		f := &flaky{ChunkStore: d}
		tc.dirs[id], tc.stores[id] = dir, f
		ms = append(ms, placement.Member{StorageNode: dfms.StorageNode{ID: id, URL: "file://" + dir,
			Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp}, Store: f})
	}
	c, err := placement.NewCluster(ms, placement.Options{Replicas: r, WriteQuorum: w, Log: tc.log, OnBadCopy: tc.bad.add})
	if err != nil {
		t.Fatal(err)
	}
	tc.Cluster = c
	t.Cleanup(func() { c.Close() })
	return tc
}

// holders returns the nodes whose own store holds h.
func (tc *testCluster) holders(t *testing.T, h dfms.Hash) []string {
	t.Helper()
	var out []string
	for id, st := range tc.stores {
		if _, err := st.ChunkStore.Stat(context.Background(), h); err == nil {
			out = append(out, id)
		} else if !dfms.Is(err, dfms.NotExist) {
			t.Fatal(err)
		}
	}
	slices.Sort(out)
	return out
}

func TestClusterConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dfms.ChunkStore { return newCluster(t, 3, 2, 0) })
}

func TestClusterConformanceOneNode(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dfms.ChunkStore { return newCluster(t, 1, 0, 0) })
}

func TestClusterPutStoresOnOwners(t *testing.T) {
	ctx := context.Background()
	tc := newCluster(t, 4, 3, 0)
	for i := range 50 {
		data := testkit.RandBytes(uint64(i), 1000+i)
		h := dfms.Sum(data)
		testkit.OK(t, tc.Put(ctx, h, data))
		owners := tc.Owners(h)
		slices.Sort(owners)
		if got := tc.holders(t, h); !slices.Equal(got, owners) || len(owners) != 3 {
			t.Fatalf("chunk %d is on %v, its owners are %v", i, got, owners)
		}
		if got := tc.log.nodes(h); !slices.Equal(got, owners) {
			t.Fatalf("chunk %d: recorded copies %v, want %v", i, got, owners)
		}
	}
}

func TestClusterReadSkipsCorruptCopy(t *testing.T) {
	ctx := context.Background()
	tc := newCluster(t, 3, 2, 0)
	data := testkit.RandBytes(7, 5000)
	h := dfms.Sum(data)
	testkit.OK(t, tc.Put(ctx, h, data))
	first := tc.Owners(h)[0]
	testkit.CorruptFile(t, tc.dirs[first], h.String())
	got, err := tc.Get(ctx, h, nil)
	testkit.OK(t, err)
	if !slices.Equal(got, data) {
		t.Fatal("the read returned bytes other than the chunk's")
	}
	if b := tc.bad.list(); len(b) != 1 || b[0].node != first || !dfms.Is(b[0].err, dfms.Corrupt) {
		t.Fatalf("bad copies reported: %+v, want node %s corrupt", b, first)
	}
	// Both copies bad: kind Corrupt, and no bytes.
	testkit.CorruptFile(t, tc.dirs[tc.Owners(h)[1]], h.String())
	got, err = tc.Get(ctx, h, []byte("x"))
	testkit.WantKind(t, err, dfms.Corrupt, "a read with every copy corrupt")
	if string(got) != "x" {
		t.Fatalf("a failed read returned %q after the caller's bytes", got[1:])
	}
}

func TestClusterReadFindsCopyOffOwners(t *testing.T) {
	ctx := context.Background()
	tc := newCluster(t, 4, 1, 0)
	data := testkit.RandBytes(8, 3000)
	h := dfms.Sum(data)
	// A copy on a node that is not the owner (the ring changed since it
	// was written), with no record of it.
	var other string
	for id := range tc.stores {
		if id != tc.Owners(h)[0] {
			other = id
			break
		}
	}
	testkit.OK(t, tc.stores[other].Put(ctx, h, data))
	got, err := tc.Get(ctx, h, nil)
	testkit.OK(t, err)
	if !slices.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
	if n := testkit.Must(tc.Stat(ctx, h))(t); n != int64(len(data)) {
		t.Fatalf("Stat = %d", n)
	}
}

func TestClusterWriteQuorum(t *testing.T) {
	ctx := context.Background()
	// W = R = 2: one owner failing fails the write.
	tc := newCluster(t, 3, 2, 0)
	data := testkit.RandBytes(9, 2000)
	h := dfms.Sum(data)
	down := tc.Owners(h)[1]
	tc.stores[down].fail.Store(true)
	testkit.WantKind(t, tc.Put(ctx, h, data), dfms.Unavailable, "a write one copy short of its quorum")
	testkit.WantKind(t, tc.PutBatch(ctx, []dfms.ChunkData{{Hash: h, Data: data}}), dfms.Unavailable, "a batch one copy short")

	// W = 1 < R = 2: the write succeeds with one copy, recorded as one.
	tc = newCluster(t, 3, 2, 1)
	down = tc.Owners(h)[1]
	tc.stores[down].fail.Store(true)
	testkit.OK(t, tc.Put(ctx, h, data))
	if got := tc.log.nodes(h); len(got) != 1 || got[0] != tc.Owners(h)[0] {
		t.Fatalf("recorded copies %v, want only %s", got, tc.Owners(h)[0])
	}
	testkit.OK(t, tc.PutBatch(ctx, []dfms.ChunkData{{Hash: h, Data: data}}))
}

func TestClusterSkipsDownNodes(t *testing.T) {
	ctx := context.Background()
	tc := newCluster(t, 3, 2, 0)
	data := testkit.RandBytes(10, 2000)
	h := dfms.Sum(data)
	down := tc.Owners(h)[0]
	testkit.OK(t, tc.SetState(down, dfms.NodeDown))
	tc.stores[down].fail.Store(true)
	if slices.Contains(tc.Owners(h), down) {
		t.Fatalf("owners %v include the down node %s", tc.Owners(h), down)
	}
	testkit.OK(t, tc.Put(ctx, h, data))
	got, err := tc.Get(ctx, h, nil)
	testkit.OK(t, err)
	if !slices.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
	testkit.OK(t, tc.Delete(ctx, h)) // the down node's copy (none) is left alone
	// While the down node cannot answer, a chunk no other node has may be
	// there: unavailable, not missing.
	_, err = tc.Get(ctx, h, nil)
	testkit.WantKind(t, err, dfms.Unavailable, "a deleted chunk while a node cannot answer")
	tc.stores[down].fail.Store(false)
	_, err = tc.Get(ctx, h, nil)
	testkit.WantKind(t, err, dfms.NotExist, "a deleted chunk")
	testkit.WantKind(t, tc.SetState("nobody", dfms.NodeDown), dfms.NotExist, "the state of an unknown node")
}

func TestClusterDeleteRemovesEveryCopy(t *testing.T) {
	ctx := context.Background()
	tc := newCluster(t, 4, 2, 0)
	data := testkit.RandBytes(11, 2000)
	h := dfms.Sum(data)
	testkit.OK(t, tc.Put(ctx, h, data))
	for _, st := range tc.stores { // a stray copy on every node
		testkit.OK(t, st.Put(ctx, h, data))
	}
	testkit.OK(t, tc.Delete(ctx, h))
	if got := tc.holders(t, h); len(got) != 0 {
		t.Fatalf("copies left on %v", got)
	}
	if got := tc.log.nodes(h); len(got) != 0 {
		t.Fatalf("copies still recorded on %v", got)
	}
}

func TestClusterRejectsTwoNodesOnOneStore(t *testing.T) {
	d, err := disk.Open(t.TempDir())
	testkit.OK(t, err)
	defer d.Close()
	n := dfms.StorageNode{ID: "a", URL: "file:///a", Weight: 100, State: dfms.NodeUp}
	m := dfms.StorageNode{ID: "b", URL: "file:///a", Weight: 100, State: dfms.NodeUp}
	_, err = placement.NewCluster([]placement.Member{{StorageNode: n, Store: d}, {StorageNode: m, Store: d}}, placement.Options{Replicas: 1})
	testkit.WantKind(t, err, dfms.Invalid, "two nodes on one store")
}

func TestClusterRejectsImpossibleReplication(t *testing.T) {
	d, err := disk.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m := []placement.Member{{StorageNode: dfms.StorageNode{ID: "a", URL: "file:///a", Weight: 100, State: dfms.NodeUp}, Store: d}}
	for _, o := range []placement.Options{{Replicas: 2}, {Replicas: 1, WriteQuorum: 2}, {Replicas: -1}} {
		if _, err := placement.NewCluster(m, o); !dfms.Is(err, dfms.Invalid) {
			t.Errorf("options %+v: err = %v, want kind Invalid", o, err)
		}
	}
	if _, err := placement.NewCluster(nil, placement.Options{}); !dfms.Is(err, dfms.Invalid) {
		t.Errorf("no nodes: err = %v, want kind Invalid", err)
	}
}

// flaky is a store that fails every call while fail is set.
type flaky struct {
	dfms.ChunkStore
	fail atomic.Bool
}

var errFlaky = dfms.E("flaky", dfms.Unavailable, errors.New("node unreachable"))

func (f *flaky) Put(ctx context.Context, h dfms.Hash, data []byte) error {
	if f.fail.Load() {
		return errFlaky
	}
	return f.ChunkStore.Put(ctx, h, data)
}

func (f *flaky) Get(ctx context.Context, h dfms.Hash, buf []byte) ([]byte, error) {
	if f.fail.Load() {
		return buf, errFlaky
	}
	return f.ChunkStore.Get(ctx, h, buf)
}

func (f *flaky) Stat(ctx context.Context, h dfms.Hash) (int64, error) {
	if f.fail.Load() {
		return 0, errFlaky
	}
	return f.ChunkStore.Stat(ctx, h)
}

func (f *flaky) Delete(ctx context.Context, h dfms.Hash) error {
	if f.fail.Load() {
		return errFlaky
	}
	return f.ChunkStore.Delete(ctx, h)
}

// memLog is a ReplicaLog in memory.
type memLog struct {
	mu     sync.Mutex
	copies map[dfms.Hash]map[string]bool
}

func newMemLog() *memLog { return &memLog{copies: map[dfms.Hash]map[string]bool{}} }

func (l *memLog) AddReplicas(_ context.Context, rs []dfms.Replica) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rs {
		if l.copies[r.Hash] == nil {
			l.copies[r.Hash] = map[string]bool{}
		}
		l.copies[r.Hash][r.Node] = true
	}
	return nil
}

func (l *memLog) DropReplicas(_ context.Context, rs []dfms.Replica) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rs {
		delete(l.copies[r.Hash], r.Node)
	}
	return nil
}

func (l *memLog) ChunkReplicas(_ context.Context, h dfms.Hash) ([]string, error) {
	return l.nodes(h), nil
}

func (l *memLog) nodes(h dfms.Hash) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for n := range l.copies[h] {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// badCopies collects OnBadCopy reports.
type badCopies struct {
	mu   sync.Mutex
	seen []reported
}

type reported struct {
	h    dfms.Hash
	node string
	err  error
}

func (b *badCopies) add(h dfms.Hash, node string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen = append(b.seen, reported{h, node, err})
}

func (b *badCopies) list() []reported {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen)
}

// A copy that cannot be recorded (the metadata store refused it) does not
// fail a write whose copies are durable: the record is a guide that
// repair rebuilds.
func TestClusterPutSurvivesAFailingRecord(t *testing.T) {
	ctx := context.Background()
	var ms []placement.Member
	for i := range 2 {
		d, err := disk.Open(t.TempDir())
		testkit.OK(t, err)
		ms = append(ms, placement.Member{StorageNode: dfms.StorageNode{ID: fmt.Sprintf("n%d", i), URL: fmt.Sprintf("file:///n%d", i),
			Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp}, Store: d})
	}
	c, err := placement.NewCluster(ms, placement.Options{Replicas: 2, Log: refusingLog{newMemLog()}})
	testkit.OK(t, err)
	defer c.Close()
	data := testkit.RandBytes(12, 1000)
	testkit.OK(t, c.Put(ctx, dfms.Sum(data), data))
	testkit.OK(t, c.PutBatch(ctx, []dfms.ChunkData{{Hash: dfms.Sum(data), Data: data}}))
	got, err := c.Get(ctx, dfms.Sum(data), nil)
	testkit.OK(t, err)
	if !slices.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
}

type refusingLog struct{ *memLog }

func (refusingLog) AddReplicas(context.Context, []dfms.Replica) error {
	return errors.New("foreign key: no such node")
}
