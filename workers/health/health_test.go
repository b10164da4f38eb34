package health_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/health"
)

var ctx = context.Background()

// start is the fake clock's time when a test begins.
var start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a clock that moves only when Advance moves it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time // guarded by mu
	waiters []waiter  // guarded by mu
	// waiting receives each time After is called.
	waiting chan struct{}
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: start, waiting: make(chan struct{}, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	c.waiting <- struct{}{}
	return ch
}

// Advance moves the clock by d and wakes the waiters whose time came.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// Modes of a fakeStore.
const (
	modeOK      = iota
	modeFail    // every call fails
	modeCorrupt // Get returns other bytes
	modeHang    // Put blocks until its context ends
	modeStuck   // Put blocks, ignoring its context, until release is closed
)

// fakeStore is an in-memory chunk store that fails or hangs on demand.
// Like the S3 store, it refuses bytes that do not match their hash.
type fakeStore struct {
	release chan struct{} // ends modeStuck's Puts

	mu     sync.Mutex
	mode   int                    // guarded by mu
	chunks map[dfms.Hash][]byte   // guarded by mu
	puts   int                    // guarded by mu
	onPut  func(*fakeStore) error // guarded by mu; called by Put first, if set
}

func newFakeStore() *fakeStore {
	return &fakeStore{chunks: make(map[dfms.Hash][]byte), release: make(chan struct{})}
}

var errInjected = errors.New("injected failure")

func (s *fakeStore) setMode(mode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = mode
}

func (s *fakeStore) state() (mode, puts, stored int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode, s.puts, len(s.chunks)
}

func (s *fakeStore) Put(ctx context.Context, h dfms.Hash, data []byte) error {
	s.mu.Lock()
	s.puts++
	mode, hook := s.mode, s.onPut
	s.mu.Unlock()
	if hook != nil {
		if err := hook(s); err != nil {
			return err
		}
	}
	switch mode {
	case modeFail:
		return dfms.E("fake.Put", dfms.Unavailable, errInjected)
	case modeHang:
		<-ctx.Done()
		return dfms.E("fake.Put", dfms.Unavailable, ctx.Err())
	case modeStuck:
		<-s.release
	}
	if dfms.Sum(data) != h {
		return dfms.Errorf("fake.Put", dfms.Invalid, "bytes do not match their hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chunks[h] = append([]byte(nil), data...)
	return nil
}

func (s *fakeStore) Get(ctx context.Context, h dfms.Hash, buf []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == modeFail {
		return nil, dfms.E("fake.Get", dfms.Unavailable, errInjected)
	}
	b, ok := s.chunks[h]
	if !ok {
		return nil, dfms.Errorf("fake.Get", dfms.NotExist, "no such chunk")
	}
	buf = append(buf, b...)
	if s.mode == modeCorrupt {
		buf[len(buf)-1] ^= 1
	}
	return buf, nil
}

func (s *fakeStore) Stat(ctx context.Context, h dfms.Hash) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.chunks[h]
	if !ok {
		return 0, dfms.Errorf("fake.Stat", dfms.NotExist, "no such chunk")
	}
	return int64(len(b)), nil
}

func (s *fakeStore) Delete(ctx context.Context, h dfms.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == modeFail {
		return dfms.E("fake.Delete", dfms.Unavailable, errInjected)
	}
	delete(s.chunks, h)
	return nil
}

func (s *fakeStore) Walk(ctx context.Context, fn func(dfms.ChunkInfo) error) error {
	return dfms.Errorf("fake.Walk", dfms.NotSupported, "not needed")
}

func (s *fakeStore) Close() error { return nil }

var _ dfms.ChunkStore = (*fakeStore)(nil)

// env is a monitor over a SQLite metadata store and fake chunk stores.
type env struct {
	meta    meta.Store
	clock   *fakeClock
	mon     *health.Monitor
	stores  map[string]dfms.ChunkStore // by node id; set before the first round
	changes chan dfms.StorageNode      // what OnChange was given
	log     *testkit.SyncBuffer        // what the monitor logged
}

// newEnv registers nodes (id → state) with a fake store each, in a
// metadata store of their own.
func newEnv(t *testing.T, nodes map[string]dfms.NodeState) *env {
	t.Helper()
	return newEnvOn(t, testkit.OpenSQLite(t), nodes)
}

// newEnvOn is newEnv on the metadata store m, which may hold other nodes:
// the monitor sees only these.
func newEnvOn(t *testing.T, m meta.Store, nodes map[string]dfms.NodeState) *env {
	t.Helper()
	e := &env{meta: m, clock: newFakeClock(), stores: make(map[string]dfms.ChunkStore),
		changes: make(chan dfms.StorageNode, 100), log: new(testkit.SyncBuffer)}
	for id, state := range nodes {
		testkit.OK(t, e.meta.PutNode(ctx, dfms.StorageNode{ID: id, URL: "file:///" + id, Weight: dfms.DefaultNodeWeight, State: state}))
		e.stores[id] = newFakeStore()
	}
	e.mon = &health.Monitor{
		Nodes: someNodes{m, nodes},
		Store: func(id string) (dfms.ChunkStore, bool) {
			s, ok := e.stores[id]
			return s, ok
		},
		Clock:    e.clock,
		Log:      slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnChange: func(n dfms.StorageNode) { e.changes <- n },
	}
	return e
}

// someNodes is a metadata store that lists only some of its nodes.
type someNodes struct {
	meta.Nodes
	ids map[string]dfms.NodeState
}

func (s someNodes) ListNodes(ctx context.Context) ([]dfms.StorageNode, error) {
	all, err := s.Nodes.ListNodes(ctx)
	var out []dfms.StorageNode
	for _, n := range all {
		if _, ok := s.ids[n.ID]; ok {
			out = append(out, n)
		}
	}
	return out, err
}

func (e *env) fake(id string) *fakeStore { return e.stores[id].(*fakeStore) }

// node returns the recorded node id.
func (e *env) node(t *testing.T, id string) dfms.StorageNode {
	t.Helper()
	for _, n := range testkit.Must(e.meta.ListNodes(ctx))(t) {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no node %q", id)
	return dfms.StorageNode{}
}

// round runs a round, failing t if it fails or is not over within a
// minute (a generous bound: a round waits at most Timeout).
func (e *env) round(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.mon.Round(ctx) }()
	select {
	case err := <-done:
		testkit.OK(t, err)
	case <-time.After(time.Minute):
		t.Fatal("a round did not return within a minute")
	}
}

// TestStateMachine runs one node through sequences of probe outcomes
// ('+' passes, '-' fails) and checks its state and failure count after
// each round.
func TestStateMachine(t *testing.T) {
	U, S, D, R := dfms.NodeUp, dfms.NodeSuspect, dfms.NodeDown, dfms.NodeDraining
	shared := testkit.OpenSQLite(t)
	for _, tc := range []struct {
		name      string
		from      dfms.NodeState
		downAfter int
		upAfter   int
		probes    string
		want      []dfms.NodeState
		failures  []int
	}{
		{name: "healthy", from: U, probes: "+++", want: []dfms.NodeState{U, U, U}, failures: []int{0, 0, 0}},
		{name: "one failure is suspect", from: U, probes: "-", want: []dfms.NodeState{S}, failures: []int{1}},
		{name: "down after three", from: U, probes: "----", want: []dfms.NodeState{S, S, D, D}, failures: []int{1, 2, 3, 4}},
		{name: "up after two successes", from: U, probes: "---++", want: []dfms.NodeState{S, S, D, D, U}, failures: []int{1, 2, 3, 0, 0}},
		{name: "a failure restarts the count of successes", from: D, probes: "+-++",
			want: []dfms.NodeState{D, D, D, U}, failures: []int{0, 1, 0, 0}},
		{name: "suspect stays suspect until up after", from: U, probes: "--+-++",
			want: []dfms.NodeState{S, S, S, S, S, U}, failures: []int{1, 2, 0, 1, 0, 0}},
		{name: "alternating never goes down", from: U, probes: "-+-+-+-+",
			want: []dfms.NodeState{S, S, S, S, S, S, S, S}, failures: []int{1, 0, 1, 0, 1, 0, 1, 0}},
		{name: "draining is kept", from: R, probes: "----++",
			want: []dfms.NodeState{R, R, R, R, R, R}, failures: []int{1, 2, 3, 4, 0, 0}},
		{name: "down after one", from: U, downAfter: 1, probes: "-+", want: []dfms.NodeState{D, D}, failures: []int{1, 0}},
		{name: "up after one", from: D, upAfter: 1, probes: "+", want: []dfms.NodeState{U}, failures: []int{0}},
		{name: "down after five", from: U, downAfter: 5, upAfter: 3, probes: "-----+++",
			want: []dfms.NodeState{S, S, S, S, D, D, D, U}, failures: []int{1, 2, 3, 4, 5, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The cases share a metadata store (opening one takes long),
			// each with a node of its own.
			id := strings.ReplaceAll(tc.name, " ", "-")
			e := newEnvOn(t, shared, map[string]dfms.NodeState{id: tc.from})
			e.mon.DownAfter, e.mon.UpAfter = tc.downAfter, tc.upAfter
			s := e.fake(id)
			prev := tc.from
			for i, p := range tc.probes {
				if p == '-' {
					s.setMode(modeFail)
				} else {
					s.setMode(modeOK)
				}
				e.clock.Advance(time.Second)
				e.round(t)
				n := e.node(t, id)
				if n.State != tc.want[i] || n.Failures != tc.failures[i] {
					t.Fatalf("after probes %q: got %s with %d failures, want %s with %d", tc.probes[:i+1], n.State, n.Failures, tc.want[i], tc.failures[i])
				}
				if !n.LastProbe.Equal(e.clock.Now()) {
					t.Fatalf("after probes %q: last probe %v, want %v", tc.probes[:i+1], n.LastProbe, e.clock.Now())
				}
				select {
				case c := <-e.changes:
					if n.State == prev {
						t.Fatalf("after probes %q: OnChange(%+v) without a change of state", tc.probes[:i+1], c)
					}
					if c.ID != id || c.State != n.State || c.Failures != n.Failures || !c.LastProbe.Equal(n.LastProbe) {
						t.Fatalf("after probes %q: OnChange got %+v, want %+v", tc.probes[:i+1], c, n)
					}
				default:
					if n.State != prev {
						t.Fatalf("after probes %q: no OnChange for %s → %s", tc.probes[:i+1], prev, n.State)
					}
				}
				if n.State != prev {
					// A change is logged, at Warn if a failure caused it.
					level := "level=INFO"
					if p == '-' {
						level = "level=WARN"
					}
					lines := strings.Split(strings.TrimSpace(e.log.String()), "\n")
					last := lines[len(lines)-1]
					if !strings.Contains(last, level) || !strings.Contains(last, `msg="storage node `+string(n.State)+`"`) {
						t.Fatalf("after probes %q: logged %q, want a %s line for the change to %s", tc.probes[:i+1], last, level, n.State)
					}
				}
				prev = n.State
				if _, _, stored := s.state(); stored != 0 {
					t.Fatalf("after probes %q: %d probe chunks left in the store", tc.probes[:i+1], stored)
				}
			}
		})
	}
}

// Nodes are probed independently, and in parallel: a hanging node holds
// the round no longer than its timeout, and does not stall the others.
func TestNodesAreIndependent(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"a": dfms.NodeUp, "b": dfms.NodeUp, "c": dfms.NodeDown})
	e.mon.Timeout = 50 * time.Millisecond
	e.fake("b").setMode(modeHang)
	e.round(t)
	e.round(t)
	for id, want := range map[string]dfms.NodeState{"a": dfms.NodeUp, "b": dfms.NodeSuspect, "c": dfms.NodeUp} {
		if got := e.node(t, id).State; got != want {
			t.Errorf("node %s: got %s, want %s", id, got, want)
		}
	}
}

// A round whose lock another process holds is skipped: it records
// nothing.
func TestRoundSkippedWhileLockHeld(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"a": dfms.NodeUp})
	e.fake("a").setMode(modeFail)
	_, unlock, err := e.meta.Lock(ctx, "health")
	testkit.OK(t, err)
	e.mon.Lock = func(ctx context.Context) (func(), error) {
		_, unlock, err := e.meta.Lock(ctx, "health")
		return unlock, err
	}
	e.round(t)
	if n := e.node(t, "a"); n.State != dfms.NodeUp || !n.LastProbe.IsZero() {
		t.Fatalf("a round under another's lock recorded %+v", n)
	}
	unlock()
	e.round(t)
	if n := e.node(t, "a"); n.State != dfms.NodeSuspect {
		t.Fatalf("after the lock was released: %+v, want suspect", n)
	}
}

// A store that hangs in a probe, honouring its context, is cut at the
// timeout; the failed probe's chunk (if stored) is deleted.
func TestHangingStoreIsCutByTimeout(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"n1": dfms.NodeUp})
	e.mon.Timeout = 20 * time.Millisecond
	e.fake("n1").setMode(modeHang)
	for range 3 {
		began := time.Now()
		e.round(t)
		if took := time.Since(began); took > 10*time.Second {
			t.Fatalf("a round with a hanging store took %v, timeout %v", took, e.mon.Timeout)
		}
	}
	if n := e.node(t, "n1"); n.State != dfms.NodeDown || n.Failures != 3 {
		t.Fatalf("got %s with %d failures, want down with 3", n.State, n.Failures)
	}
}

// A store that ignores its context does not hold the round either, and
// the node is not probed again until its stuck probe has returned.
func TestStuckStoreDoesNotBlockTheRound(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"n1": dfms.NodeUp})
	e.mon.Timeout = 20 * time.Millisecond
	s := e.fake("n1")
	s.setMode(modeStuck)
	released := false
	t.Cleanup(func() {
		if !released {
			close(s.release)
		}
	})
	e.round(t)
	e.round(t)
	if _, puts, _ := s.state(); puts != 1 {
		t.Fatalf("the store got %d Puts while the first was stuck, want 1", puts)
	}
	if n := e.node(t, "n1"); n.State != dfms.NodeSuspect || n.Failures != 2 {
		t.Fatalf("got %s with %d failures, want suspect with 2", n.State, n.Failures)
	}

	// Once the stuck Put returns, the node is probed again and recovers.
	s.setMode(modeOK)
	close(s.release)
	released = true
	testkit.Eventually(t, time.Minute, func() bool {
		e.round(t)
		_, puts, _ := s.state()
		return puts > 1
	}, "a new probe after the stuck one returned")
	e.round(t)
	e.round(t)
	if n := e.node(t, "n1"); n.State != dfms.NodeUp {
		t.Fatalf("got %s, want up", n.State)
	}
	testkit.Eventually(t, time.Minute, func() bool { _, _, stored := s.state(); return stored == 0 }, "the stuck probe's chunk deleted")
}

// A probe fails on a chunk read back wrong, and deletes it all the same.
func TestCorruptReadFails(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"n1": dfms.NodeUp})
	s := e.fake("n1")
	s.setMode(modeCorrupt)
	e.round(t)
	if n := e.node(t, "n1"); n.State != dfms.NodeSuspect {
		t.Fatalf("got %s, want suspect", n.State)
	}
	testkit.Eventually(t, time.Minute, func() bool { _, _, stored := s.state(); return stored == 0 }, "the failed probe's chunk deleted")
}

// A node without a chunk store (unknown, or whose store could not be
// opened) fails its probes.
func TestNodeWithoutStore(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"n1": dfms.NodeUp})
	delete(e.stores, "n1")
	e.round(t)
	e.round(t)
	e.round(t)
	if n := e.node(t, "n1"); n.State != dfms.NodeDown || n.Failures != 3 {
		t.Fatalf("got %s with %d failures, want down with 3", n.State, n.Failures)
	}
}

// An operator who drains a node while it is being probed keeps it
// draining: the round reads the state again before writing it.
func TestDrainDuringProbe(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"n1": dfms.NodeUp})
	s := e.fake("n1")
	s.onPut = func(*fakeStore) error {
		if _, err := e.meta.SetNodeDraining(ctx, "n1", true); err != nil {
			return err
		}
		return errInjected
	}
	e.round(t)
	if n := e.node(t, "n1"); n.State != dfms.NodeDraining || n.Failures != 1 {
		t.Fatalf("got %s with %d failures, want draining with 1", n.State, n.Failures)
	}
}

// beforeWrite is a metadata store that runs a function before each
// SetNodeState: an operator acting between the round's read and its
// write.
type beforeWrite struct {
	meta.Nodes
	fn func()
}

func (b beforeWrite) SetNodeState(ctx context.Context, id string, state dfms.NodeState, failures int, probe time.Time) (dfms.NodeState, error) {
	b.fn()
	return b.Nodes.SetNodeState(ctx, id, state, failures, probe)
}

// A drain, or the end of one, made between the round's read of the node
// and its write is kept, and the round reports the state kept
// (OnChange: the server's placement applies it).
func TestDrainBetweenReadAndWrite(t *testing.T) {
	for _, tc := range []struct {
		name       string
		from       dfms.NodeState
		drain      bool
		fail       bool
		want       dfms.NodeState
		wantChange bool
	}{
		{name: "drain of a failing node", from: dfms.NodeUp, drain: true, fail: true, want: dfms.NodeDraining, wantChange: true},
		{name: "drain of a healthy node", from: dfms.NodeUp, drain: true, want: dfms.NodeDraining, wantChange: true},
		{name: "drain of a down node", from: dfms.NodeDown, drain: true, fail: true, want: dfms.NodeDraining, wantChange: true},
		// The round read draining and writes it back: the end of the
		// drain is not undone. The failure it records makes the node
		// suspect at the next round.
		{name: "undrain", from: dfms.NodeDraining, want: dfms.NodeUp, wantChange: true},
		{name: "undrain of a failing node", from: dfms.NodeDraining, fail: true, want: dfms.NodeUp, wantChange: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]dfms.NodeState{"n1": tc.from})
			if tc.fail {
				e.fake("n1").setMode(modeFail)
			}
			once := false
			e.mon.Nodes = beforeWrite{e.mon.Nodes, func() {
				if !once {
					once = true
					if _, err := e.meta.SetNodeDraining(ctx, "n1", tc.drain); err != nil {
						t.Error(err) // on the round's goroutine
					}
				}
			}}
			e.round(t)
			n := e.node(t, "n1")
			if n.State != tc.want {
				t.Fatalf("got %s, want %s", n.State, tc.want)
			}
			if wantFailures := map[bool]int{true: 1}[tc.fail]; n.Failures != wantFailures {
				t.Fatalf("got %d failures, want %d", n.Failures, wantFailures)
			}
			select {
			case c := <-e.changes:
				if !tc.wantChange || c.State != tc.want {
					t.Fatalf("OnChange(%+v), want a change to %s: %v", c, tc.want, tc.wantChange)
				}
			default:
				if tc.wantChange {
					t.Fatalf("no OnChange, want one to %s", tc.want)
				}
			}
			if tc.fail && tc.from == dfms.NodeDraining {
				e.round(t)
				if n := e.node(t, "n1"); n.State != dfms.NodeSuspect || n.Failures != 2 {
					t.Fatalf("next round: got %s with %d failures, want suspect with 2", n.State, n.Failures)
				}
			}
		})
	}
}

// Successes count only while the node stays in the state the monitor
// saw: a node set down behind its back (by another monitor, or before a
// restart) needs UpAfter good probes from then on, however many it
// passed before.
func TestDownBehindTheMonitorNeedsFreshSuccesses(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"n1": dfms.NodeUp})
	e.round(t)
	e.round(t)
	testkit.Must(e.meta.SetNodeState(ctx, "n1", dfms.NodeDown, 3, time.Now()))(t)
	e.round(t)
	if n := e.node(t, "n1"); n.State != dfms.NodeDown {
		t.Fatalf("after one good probe: got %s, want down", n.State)
	}
	e.round(t)
	if n := e.node(t, "n1"); n.State != dfms.NodeUp {
		t.Fatalf("after two good probes: got %s, want up", n.State)
	}
}

// A round whose context ends during the probes records nothing: a probe
// cut short by the caller says nothing of the node.
func TestCancelledRoundRecordsNothing(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"n1": dfms.NodeUp})
	cctx, cancel := context.WithCancel(ctx)
	s := e.fake("n1")
	s.setMode(modeHang)
	s.onPut = func(*fakeStore) error { cancel(); return nil }
	if err := e.mon.Round(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Round: got %v, want %v", err, context.Canceled)
	}
	if n := e.node(t, "n1"); n.State != dfms.NodeUp || n.Failures != 0 || !n.LastProbe.IsZero() {
		t.Fatalf("got %+v, want up, never probed", n)
	}
}

// Run does a round at once, then one per Interval of its clock, and
// returns when its context ends.
func TestRun(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"n1": dfms.NodeUp})
	e.mon.Interval = time.Minute
	s := e.fake("n1")
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.mon.Run(rctx); close(done) }()
	wait := func() {
		t.Helper()
		select {
		case <-e.clock.waiting:
		case <-time.After(time.Minute):
			t.Fatal("Run did not wait for its interval")
		}
	}
	for i := 1; i <= 3; i++ {
		wait()
		if _, puts, _ := s.state(); puts != i {
			t.Fatalf("after %d rounds: %d probes", i, puts)
		}
		if n := e.node(t, "n1"); !n.LastProbe.Equal(e.clock.Now()) {
			t.Fatalf("round %d: last probe %v, want %v", i, n.LastProbe, e.clock.Now())
		}
		e.clock.Advance(time.Minute)
	}
	wait()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return when its context ended")
	}
}

// The metrics tell each node's state, probes and failures.
func TestMetrics(t *testing.T) {
	e := newEnv(t, map[string]dfms.NodeState{"a": dfms.NodeUp, "b": dfms.NodeUp})
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.mon.Metrics()...)
	e.fake("b").setMode(modeFail)
	e.round(t)
	e.round(t)
	got := gather(t, reg)
	for name, want := range map[string]float64{
		`dfms_node_state{node="a",state="up"}`:         1,
		`dfms_node_state{node="a",state="suspect"}`:    0,
		`dfms_node_state{node="b",state="up"}`:         0,
		`dfms_node_state{node="b",state="suspect"}`:    1,
		`dfms_node_state{node="b",state="down"}`:       0,
		`dfms_node_state{node="b",state="draining"}`:   0,
		`dfms_node_probe_failures_total{node="b"}`:     2,
		`dfms_node_probe_seconds_count{node="a"}`:      2,
		`dfms_node_probe_seconds_count{node="b"}`:      2,
		`dfms_node_probe_failures_total{node="a"}`:     -1, // never failed: no series
		`dfms_node_state{node="c",state="up"}`:         -1,
		`dfms_node_probe_seconds_count{node="nobody"}`: -1,
	} {
		v, ok := got[name]
		if want < 0 {
			if ok {
				t.Errorf("%s = %v, want no such series", name, v)
			}
			continue
		}
		if !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}

// gather returns the value of every series in reg by its name and labels,
// in Prometheus' text form; a histogram gives its _count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	testkit.OK(t, err)
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			var v float64
			switch {
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				name += "_count"
				v = float64(m.GetHistogram().GetSampleCount())
			}
			labels := ""
			for i, l := range m.GetLabel() {
				if i > 0 {
					labels += ","
				}
				labels += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
			}
			out[name+"{"+labels+"}"] = v
		}
	}
	return out
}
