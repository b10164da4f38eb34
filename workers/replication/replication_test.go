package replication_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/replication"
)

var ctx = context.Background()

// env is a cluster of disk nodes with its metadata (SQLite) and a
// replication manager on a fake clock.
type env struct {
	t       *testing.T
	meta    meta.Store
	cluster *placement.Cluster
	mgr     *replication.Manager
	dirs    map[string]string
	nodes   []dfms.StorageNode
	clock   *testkit.Clock
	chunks  []dfms.Hash
}

func newEnv(t *testing.T, n, r, w int) *env {
	t.Helper()
	e := &env{t: t, meta: testkit.OpenSQLite(t), dirs: map[string]string{}, clock: testkit.NewClock(time.Unix(1_000_000, 0))}
	var ms []placement.Member
	for i := range n {
		m := e.newMember(fmt.Sprintf("n%d", i+1))
		ms = append(ms, m)
	}
	c, err := placement.NewCluster(ms, placement.Options{Replicas: r, WriteQuorum: w, Log: e.meta})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.cluster = c
	e.mgr = &replication.Manager{Cluster: c, Replicas: e.meta, DownDelay: 10 * time.Minute, Now: e.clock.Now}
	return e
}

// newMember opens a disk node and registers it.
func (e *env) newMember(id string) placement.Member {
	dir := e.t.TempDir()
	d, err := disk.Open(dir)
	if err != nil {
		e.t.Fatal(err)
	}
	n := dfms.StorageNode{ID: id, URL: "file://" + dir, Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp}
	testkit.OK(e.t, e.meta.PutNode(ctx, n))
	e.dirs[id] = dir
	e.nodes = append(e.nodes, n)
	return placement.Member{StorageNode: n, Store: d}
}

// put stores n chunks through the cluster, as an upload does (reserve,
// store, record).
func (e *env) put(n int, seed uint64) {
	e.t.Helper()
	for i := range n {
		data := testkit.RandBytes(seed<<32|uint64(i), 500+int(seed+uint64(i))%3000)
		h := dfms.Sum(data)
		ref := []dfms.ChunkRef{{Hash: h, Size: uint32(len(data))}}
		testkit.OK(e.t, e.meta.ReserveChunks(ctx, ref))
		testkit.OK(e.t, e.cluster.Put(ctx, h, data))
		testkit.OK(e.t, e.meta.AddChunks(ctx, ref))
		e.chunks = append(e.chunks, h)
	}
}

// holders lists, from the nodes' directories (not the record), the nodes
// that hold each chunk.
func (e *env) holders() map[dfms.Hash][]string {
	e.t.Helper()
	out := map[dfms.Hash][]string{}
	for id, dir := range e.dirs {
		d, err := disk.Open(dir)
		if err != nil {
			e.t.Fatal(err)
		}
		testkit.OK(e.t, d.Walk(ctx, func(ci dfms.ChunkInfo) error {
			out[ci.Hash] = append(out[ci.Hash], id)
			return nil
		}))
		d.Close()
	}
	for h := range out {
		slices.Sort(out[h])
	}
	return out
}

// wantOnOwners checks that every chunk is exactly on its R owners (as the
// directories show) and recorded there.
func (e *env) wantOnOwners() {
	e.t.Helper()
	got := e.holders()
	for _, h := range e.chunks {
		owners := e.cluster.Owners(h)
		slices.Sort(owners)
		if len(owners) != e.cluster.Replicas() || !slices.Equal(got[h], owners) {
			e.t.Fatalf("chunk %s is on %v, its owners are %v", h, got[h], owners)
		}
		rec := testkit.Must(e.meta.ChunkReplicas(ctx, h))(e.t)
		if !slices.Equal(rec, owners) {
			e.t.Fatalf("chunk %s: recorded on %v, owners %v", h, rec, owners)
		}
	}
}

func (e *env) setState(id string, s dfms.NodeState) {
	e.t.Helper()
	testkit.OK(e.t, e.cluster.SetState(id, s))
	testkit.Must(e.meta.SetNodeState(ctx, id, s, 0, e.clock.Now()))(e.t)
}

func (e *env) pass() replication.Stats {
	e.t.Helper()
	st, err := e.mgr.Pass(ctx)
	testkit.OK(e.t, err)
	if st.Failed > 0 {
		e.t.Fatalf("pass: %+v", st)
	}
	return st
}

func TestPassCompletesQuorumWrites(t *testing.T) {
	e := newEnv(t, 3, 2, 1)
	e.put(1, 1)
	h := e.chunks[0]
	// One owner refused the write: W = 1 let it succeed with one copy.
	second := e.cluster.Owners(h)[1]
	st, _ := e.cluster.Node(second)
	testkit.OK(t, st.Delete(ctx, h))
	testkit.OK(t, e.meta.DropReplicas(ctx, []dfms.Replica{{Hash: h, Node: second}}))

	s := e.pass()
	if s.Copied != 1 || s.UnderReplicated != 1 {
		t.Fatalf("pass: %+v, want one chunk under-replicated and one copy", s)
	}
	e.wantOnOwners()
	if s := e.pass(); s.Copied != 0 || s.UnderReplicated != 0 || s.Removed != 0 {
		t.Fatalf("a second pass did something: %+v", s)
	}
}

func TestPassRecordsUnrecordedCopies(t *testing.T) {
	e := newEnv(t, 3, 2, 0)
	e.put(20, 2)
	// A crash lost the tail of the record.
	for _, h := range e.chunks {
		testkit.OK(t, e.meta.DropReplicas(ctx, []dfms.Replica{{Hash: h, Node: e.cluster.Owners(h)[0]}}))
	}
	s := e.pass()
	if s.Recorded != 20 || s.Copied != 0 {
		t.Fatalf("pass: %+v, want 20 copies recorded and none written", s)
	}
	e.wantOnOwners()
}

func TestNodeDownThenBack(t *testing.T) {
	e := newEnv(t, 3, 2, 0)
	e.put(60, 3)
	e.setState("n2", dfms.NodeDown)

	// Within the delay, chunks that n2 owned wait.
	s := e.pass()
	if s.Copied != 0 || s.Waiting == 0 {
		t.Fatalf("pass right after the node went down: %+v, want chunks waiting and no copy", s)
	}
	// Past it, they are copied to their new owners.
	e.clock.Advance(11 * time.Minute)
	s = e.pass()
	if s.Copied == 0 || s.Waiting != 0 {
		t.Fatalf("pass after the delay: %+v", s)
	}
	// Every chunk has R copies on the survivors (n2's are still there).
	got := e.holders()
	for _, h := range e.chunks {
		live := slices.DeleteFunc(slices.Clone(got[h]), func(id string) bool { return id == "n2" })
		if len(live) != 2 {
			t.Fatalf("chunk %s has %v copies on the survivors", h, live)
		}
	}
	// More writes while n2 is down, then it comes back: it gets what it
	// owns and missed, and the survivors' surplus copies go.
	e.put(20, 4)
	e.setState("n2", dfms.NodeUp)
	s = e.pass()
	if s.Removed == 0 {
		t.Fatalf("pass after the node came back: %+v, want surplus copies removed", s)
	}
	e.wantOnOwners()
}

func TestAddNodeRebalances(t *testing.T) {
	e := newEnv(t, 3, 2, 0)
	e.put(400, 5)
	before := e.holders()
	ms := e.cluster.Members()
	ms = append(ms, e.newMember("n4"))
	testkit.OK(t, e.cluster.SetNodes(ms))
	s := e.pass()
	e.wantOnOwners()
	moved := 0
	after := e.holders()
	for _, h := range e.chunks {
		for _, id := range after[h] {
			if !slices.Contains(before[h], id) {
				moved++
			}
		}
	}
	frac := float64(moved) / float64(2*len(e.chunks))
	t.Logf("a 4th node: %d of %d copies moved (%.1f %%), pass %+v", moved, 2*len(e.chunks), 100*frac, s)
	if frac > 0.25+0.05 {
		t.Fatalf("%.1f %% of copies moved, want at most 30 %%", 100*frac)
	}
	if s.Copied != moved || s.Removed != moved {
		t.Fatalf("pass copied %d and removed %d, want %d each", s.Copied, s.Removed, moved)
	}
}

func TestDrainEmptiesNode(t *testing.T) {
	e := newEnv(t, 4, 2, 0)
	e.put(100, 6)
	e.setState("n3", dfms.NodeDraining)
	e.pass()
	e.wantOnOwners()
	for h, ids := range e.holders() {
		if slices.Contains(ids, "n3") {
			t.Fatalf("chunk %s is still on the drained node", h)
		}
	}
	if u := testkit.Must(e.meta.NodeUsage(ctx))(t); u["n3"].Chunks != 0 {
		t.Fatalf("the drained node is recorded with %d copies", u["n3"].Chunks)
	}
}

func TestScrubRepairsCorruptAndMissingCopies(t *testing.T) {
	e := newEnv(t, 3, 2, 0)
	e.put(10, 7)
	bad, gone := e.chunks[0], e.chunks[1]
	testkit.CorruptFile(t, e.dirs[e.cluster.Owners(bad)[0]], bad.String())
	st, _ := e.cluster.Node(e.cluster.Owners(gone)[1])
	testkit.OK(t, st.Delete(ctx, gone))

	s, err := e.mgr.Scrub(ctx)
	testkit.OK(t, err)
	if s.Corrupt != 1 || s.Missing != 1 || s.Copied != 2 {
		t.Fatalf("scrub: %+v, want one corrupt, one missing, two copies written", s)
	}
	e.wantOnOwners()
	for _, h := range e.chunks {
		for _, id := range e.cluster.Owners(h) {
			st, _ := e.cluster.Node(id)
			data := testkit.Must(st.Get(ctx, h, nil))(t)
			if dfms.Sum(data) != h {
				t.Fatalf("chunk %s on %s is still bad", h, id)
			}
		}
	}
}

// A repair event (what the server makes of a read's report of a bad copy)
// repairs the chunk at once, without a pass.
func TestRepairEventRepairsAtOnce(t *testing.T) {
	e := newEnv(t, 3, 2, 0)
	e.put(5, 8)
	h := e.chunks[2]
	first := e.cluster.Owners(h)[0]
	testkit.CorruptFile(t, e.dirs[first], h.String())
	data := testkit.Must(e.cluster.Get(ctx, h, nil))(t)
	if dfms.Sum(data) != h {
		t.Fatal("the read returned bad bytes")
	}
	ev := func(typ string, data string) dfms.Event {
		return dfms.Event{ID: 1, Topic: dfms.TopicRepair, Key: h.String(), Type: typ, Data: json.RawMessage(data)}
	}
	// Events it cannot act on are acknowledged (nothing to retry).
	testkit.OK(t, e.mgr.HandleEvent(ctx, ev("something.else", `{}`)))
	testkit.OK(t, e.mgr.HandleEvent(ctx, ev(dfms.EventRepairNeeded, `{"hash":"nope"}`)))
	if tot := e.mgr.Totals(); tot.Copied != 0 {
		t.Fatalf("totals %+v after events naming no chunk", tot)
	}
	testkit.OK(t, e.mgr.HandleEvent(ctx, ev(dfms.EventRepairNeeded, `{"hash":"`+h.String()+`","node":"`+first+`","reason":"corrupt"}`)))
	if tot := e.mgr.Totals(); tot.Corrupt != 1 || tot.Copied != 1 {
		t.Fatalf("totals %+v, want one corrupt copy, copied again", tot)
	}
	e.wantOnOwners()
	// Handled again (a duplicate delivery): nothing more to do.
	testkit.OK(t, e.mgr.HandleEvent(ctx, ev(dfms.EventRepairNeeded, `{"hash":"`+h.String()+`","node":"`+first+`","reason":"corrupt"}`)))
	if tot := e.mgr.Totals(); tot.Copied != 1 {
		t.Fatalf("totals %+v after a duplicate event, want nothing copied again", tot)
	}
}

func TestPassSkippedWhileLockHeld(t *testing.T) {
	e := newEnv(t, 3, 2, 0)
	e.put(5, 9)
	for _, h := range e.chunks {
		testkit.OK(t, e.meta.DropReplicas(ctx, []dfms.Replica{{Hash: h, Node: e.cluster.Owners(h)[0]}}))
	}
	_, unlock, err := e.meta.Lock(ctx, "replication")
	testkit.OK(t, err)
	e.mgr.Lock = func(ctx context.Context) (func(), error) {
		_, unlock, err := e.meta.Lock(ctx, "replication")
		return unlock, err
	}
	if s := e.pass(); s.Chunks != 0 {
		t.Fatalf("a pass ran while another held the lock: %+v", s)
	}
	unlock()
	if s := e.pass(); s.Chunks != 5 || s.Recorded != 5 {
		t.Fatalf("a pass after the lock was released: %+v", s)
	}
}

// A recorded copy that is gone from its owner (a disk replaced) is not
// trusted when a surplus copy is to be removed: the owner gets the chunk
// again first, then the surplus copy goes.
func TestStaleRecordOnOwner(t *testing.T) {
	e := newEnv(t, 3, 2, 0)
	e.put(1, 10)
	h := e.chunks[0]
	owners := e.cluster.Owners(h)
	var spare string
	for _, n := range e.nodes {
		if !slices.Contains(owners, n.ID) {
			spare = n.ID
		}
	}
	data := testkit.Must(e.cluster.Get(ctx, h, nil))(t)
	st, _ := e.cluster.Node(spare)
	testkit.OK(t, st.Put(ctx, h, data))
	testkit.OK(t, e.meta.AddReplicas(ctx, []dfms.Replica{{Hash: h, Node: spare}}))
	lost, _ := e.cluster.Node(owners[0])
	testkit.OK(t, lost.Delete(ctx, h)) // its record stays

	s := e.pass()
	if s.Missing != 1 || s.Copied != 1 || s.Removed != 1 {
		t.Fatalf("pass: %+v, want the lost copy found, copied again, and the surplus removed", s)
	}
	e.wantOnOwners()
}
