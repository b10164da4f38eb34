// Package health is the health monitor of DFMS: it probes every storage
// node on a timer and drives the node's state (up, suspect, down), which
// placement reads to decide where replicas go and the replication manager
// reads to decide what to repair.
//
// # The probe
//
// A probe makes a node do real work, the work placement will ask of it: it
// stores a small chunk of random bytes under their own SHA-256, reads it
// back and compares, then deletes it, all within [Monitor.Timeout]. The
// bytes begin with "dfms-health-probe", so an operator who sees one in a
// bucket knows what it is, and the rest is random, so the key can never be
// a file's chunk: the probe neither overwrites nor deletes anything it did
// not write. Any error, a mismatch or the timeout fails the probe. A probe
// that fails still tries to delete its chunk, with a Timeout of its own,
// in the background (unless the delete of an earlier failed probe's chunk
// is still trying on that node). A chunk it cannot delete, or one left by
// a server that died mid-probe, is a chunk that no metadata row names,
// which the garbage collector deletes as an orphan.
//
// A node whose chunk store the monitor cannot get (the Store function
// answers false: it could not be opened) fails its probes too.
//
// Probes of one round run in parallel, one per node. A store that ignores
// its context (a disk hung in the kernel) does not hold the round: the
// round stops waiting at the deadline, counts a failure, and leaves that
// one probe to end whenever the store returns; until it has, the node's
// later probes fail at once rather than pile up, so at most one probe per
// node is ever running.
//
// # States and hysteresis
//
// One failed probe is not an outage, and one good probe after an outage is
// not a recovery:
//
//	up       --1 failure-------------------------->  suspect
//	suspect  --DownAfter consecutive failures----->  down      (default 3)
//	suspect  --UpAfter consecutive successes------>  up        (default 2)
//	down     --UpAfter consecutive successes------>  up
//
// A suspect node that passes a probe stays suspect until UpAfter probes in
// a row have passed, and its failure count starts again from zero: a node
// that alternates failing and passing stays suspect (placeable, but
// flagged) and never goes down. With DownAfter 1 a failure takes an up
// node straight down.
//
// Draining belongs to the operator: probes never change it, but they run
// and are recorded (failures and last probe) like any other node's. The
// other states are the monitor's: a node found down is brought up by
// UpAfter good probes, and one found up goes suspect on its next failure
// (to keep a node out of placement, drain it). A node whose drain ends
// comes back up if its last probe passed, suspect otherwise.
//
// # What is recorded
//
// Every probed node gets one write per round ([meta.Nodes.SetNodeState]):
// its state, its consecutive failures and the round's time. The failure
// count lives in the table, so a restart keeps it; the count of
// consecutive successes lives only in the monitor's memory, so after a
// restart, or when someone else changes the node's state, a suspect or
// down node needs UpAfter fresh successes to be up again. The state a
// round writes is computed from the node's row as it is read after the
// probes, so that a change made while a probe runs is taken into
// account; and the store never lets the write overwrite or set draining
// ([meta.Nodes]), so that an operator's drain, or its end, made in the
// instant between that read and the write is kept too: the round then
// takes the state the store kept as the node's.
//
// Only one monitor should run per deployment (like the garbage
// collector): two monitors sharing a metadata store each add their own
// failures to a node's count, so it goes down in fewer rounds.
//
// # Metrics
//
//	dfms_node_state{node,state}            1 for the node's current state, 0 for the others
//	dfms_node_probe_seconds{node}          probe latency, failed probes included
//	dfms_node_probe_failures_total{node}   failed probes
package health

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Defaults of the Monitor's settings.
const (
	DefaultInterval  = 10 * time.Second
	DefaultTimeout   = 5 * time.Second
	DefaultDownAfter = 3
	DefaultUpAfter   = 2
)

// probeSize is the size of a probe's chunk, marker included.
const probeSize = 4096

// probeMarker begins every probe chunk.
const probeMarker = "dfms-health-probe\n"

// Clock tells the time and waits; tests use a fake one.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// wallClock is the real clock.
type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Monitor probes every storage node and records its state. Its fields
// must not change once it runs; Round and Run must not be called
// concurrently.
type Monitor struct {
	// Nodes lists the nodes and records their state. Required.
	Nodes meta.Nodes
	// Store returns a node's chunk store, by node id; false (or a nil
	// store) means the node is unknown or its store could not be opened,
	// and its probe fails. Required.
	Store func(id string) (dfms.ChunkStore, bool)
	// Interval is the time from the end of a round to the start of the
	// next (default 10 s).
	Interval time.Duration
	// Timeout bounds one probe (default 5 s).
	Timeout time.Duration
	// DownAfter is how many consecutive failed probes take a node down
	// (default 3).
	DownAfter int
	// UpAfter is how many consecutive good probes bring a suspect or down
	// node up again (default 2).
	UpAfter int
	// Clock is the time, and what Run waits on (default the wall clock).
	// Probe deadlines are contexts, on the wall clock.
	Clock Clock
	Log   *slog.Logger
	// OnChange, if set, is called with the node as recorded after a
	// round changed its state (the placement ring is rebuilt from it). It
	// is called from Round, once per changed node, one call at a time.
	OnChange func(dfms.StorageNode)
	// Lock, if set, is taken for each round, so that of several processes
	// running a monitor on one metadata store one probes at a time (each
	// would otherwise count its own failures into the node's row). A round
	// that finds it held (kind Conflict) is skipped.
	Lock func(ctx context.Context) (unlock func(), err error)

	// mu guards nodes.
	mu    sync.Mutex
	nodes map[string]*memo

	once    sync.Once
	state   *prometheus.GaugeVec
	latency *prometheus.HistogramVec
	failed  *prometheus.CounterVec
}

// memo is what the monitor remembers of a node between rounds.
type memo struct {
	seen      dfms.NodeState // the state this monitor last recorded or read
	successes int            // consecutive good probes while in seen, at most UpAfter
	running   bool           // a probe of the node has not returned yet
	cleaning  bool           // the chunk of a failed probe is being deleted
}

// outcome is one probe's result.
type outcome struct {
	err     error
	started bool // false if it failed without asking the store anything
	elapsed time.Duration
}

func (m *Monitor) init() {
	m.once.Do(func() {
		m.nodes = make(map[string]*memo)
		m.state = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dfms_node_state", Help: "State of a storage node: 1 for its current state, 0 for the others.",
		}, []string{"node", "state"})
		m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dfms_node_probe_seconds", Help: "Latency of health probes of a storage node (store, read back, delete), failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"node"})
		m.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dfms_node_probe_failures_total", Help: "Failed health probes of a storage node.",
		}, []string{"node"})
	})
}

// Metrics returns the monitor's Prometheus metrics.
func (m *Monitor) Metrics() []prometheus.Collector {
	m.init()
	return []prometheus.Collector{m.state, m.latency, m.failed}
}

func (m *Monitor) interval() time.Duration {
	if m.Interval > 0 {
		return m.Interval
	}
	return DefaultInterval
}

func (m *Monitor) timeout() time.Duration {
	if m.Timeout > 0 {
		return m.Timeout
	}
	return DefaultTimeout
}

func (m *Monitor) downAfter() int {
	if m.DownAfter > 0 {
		return m.DownAfter
	}
	return DefaultDownAfter
}

func (m *Monitor) upAfter() int {
	if m.UpAfter > 0 {
		return m.UpAfter
	}
	return DefaultUpAfter
}

func (m *Monitor) clock() Clock {
	if m.Clock != nil {
		return m.Clock
	}
	return wallClock{}
}

func (m *Monitor) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

// Run does a round at once, then another Interval after each round ends,
// until ctx ends. A round that fails is logged and the next one runs as
// usual.
func (m *Monitor) Run(ctx context.Context) {
	for {
		if err := m.Round(ctx); err != nil && ctx.Err() == nil {
			m.log().Warn("health round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.clock().After(m.interval()):
		}
	}
}

// Round probes every node once, in parallel, and records each outcome. It
// returns when every probe has returned or passed its deadline. It fails
// if the nodes cannot be listed, or with the errors of the writes that
// failed (the other nodes are still recorded). If ctx ends during the
// probes, nothing is recorded: a probe cut short by ctx says nothing of
// its node.
func (m *Monitor) Round(ctx context.Context) error {
	const op dfms.Op = "health.Round"
	if m.Nodes == nil || m.Store == nil {
		return dfms.Errorf(op, dfms.Invalid, "a monitor needs Nodes and Store")
	}
	m.init()
	if m.Lock != nil {
		unlock, err := m.Lock(ctx)
		if dfms.Is(err, dfms.Conflict) {
			return nil
		}
		if err != nil {
			return err
		}
		defer unlock()
	}
	nodes, err := m.Nodes.ListNodes(ctx)
	if err != nil {
		return err
	}
	at := m.clock().Now()
	outs := make([]outcome, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { outs[i] = m.probeNode(ctx, n.ID) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, n := range nodes {
		if outs[i].started {
			m.latency.WithLabelValues(n.ID).Observe(outs[i].elapsed.Seconds())
		}
		if outs[i].err != nil {
			m.failed.WithLabelValues(n.ID).Inc()
		}
	}

	// The state follows from the row as it is now, not as it was before
	// the probes: an operator may have changed it meanwhile.
	fresh, err := m.Nodes.ListNodes(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]dfms.StorageNode, len(fresh))
	for _, n := range fresh {
		byID[n.ID] = n
	}
	var errs []error
	for i, n := range nodes {
		cur, ok := byID[n.ID]
		if !ok {
			continue // removed meanwhile
		}
		next, successes := m.next(cur, outs[i].err == nil)
		next.LastProbe = at
		recorded, err := m.Nodes.SetNodeState(ctx, next.ID, next.State, next.Failures, at)
		if err != nil {
			if !dfms.Is(err, dfms.NotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if recorded != next.State {
			// The operator drained the node, or ended its drain, since
			// the read: the store kept the operator's state.
			next.State, successes = recorded, 0
		}
		m.mu.Lock()
		mm := m.memo(n.ID)
		mm.seen, mm.successes = next.State, successes
		m.mu.Unlock()
		m.report(cur, next, outs[i].err)
	}
	m.forget(byID)
	return errors.Join(errs...)
}

// next returns n as a probe that passed (ok) or failed leaves it, and the
// count of consecutive good probes to remember.
func (m *Monitor) next(n dfms.StorageNode, ok bool) (dfms.StorageNode, int) {
	m.mu.Lock()
	mm := m.memo(n.ID)
	successes := mm.successes
	if mm.seen != n.State {
		successes = 0 // the state changed behind the monitor's back (or it restarted)
	}
	m.mu.Unlock()

	state := n.State
	if !state.Valid() {
		state = dfms.NodeUp // as PutNode reads an empty state
	}
	if !ok {
		n.Failures++
		successes = 0
		switch {
		case state == dfms.NodeDraining, state == dfms.NodeDown:
		case n.Failures >= m.downAfter():
			state = dfms.NodeDown
		default:
			state = dfms.NodeSuspect
		}
	} else {
		n.Failures = 0
		successes = min(successes+1, m.upAfter())
		if (state == dfms.NodeSuspect || state == dfms.NodeDown) && successes >= m.upAfter() {
			state = dfms.NodeUp
		}
	}
	n.State = state
	return n, successes
}

// memo returns the memory of node id, making it. m.mu must be held.
func (m *Monitor) memo(id string) *memo {
	mm := m.nodes[id]
	if mm == nil {
		mm = &memo{}
		m.nodes[id] = mm
	}
	return mm
}

// forget drops the memory and metrics of nodes no longer listed, except
// those whose probe or its cleanup is still running.
func (m *Monitor) forget(listed map[string]dfms.StorageNode) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, mm := range m.nodes {
		if _, ok := listed[id]; ok || mm.running || mm.cleaning {
			continue
		}
		delete(m.nodes, id)
		labels := prometheus.Labels{"node": id}
		m.state.DeletePartialMatch(labels)
		m.latency.DeletePartialMatch(labels)
		m.failed.DeletePartialMatch(labels)
	}
}

// report updates the state gauge of a recorded node, and logs and
// announces a change of state.
func (m *Monitor) report(prev, next dfms.StorageNode, probeErr error) {
	for _, s := range []dfms.NodeState{dfms.NodeUp, dfms.NodeSuspect, dfms.NodeDown, dfms.NodeDraining} {
		v := 0.0
		if s == next.State {
			v = 1
		}
		m.state.WithLabelValues(next.ID, string(s)).Set(v)
	}
	if probeErr != nil {
		m.log().Debug("storage node probe failed", "node", next.ID, "failures", next.Failures, "err", probeErr)
	}
	if next.State == prev.State {
		return
	}
	args := []any{"node", next.ID, "from", string(prev.State), "to", string(next.State), "failures", next.Failures}
	if probeErr != nil {
		m.log().Warn("storage node "+string(next.State), append(args, "err", probeErr)...)
	} else {
		m.log().Info("storage node "+string(next.State), args...)
	}
	if m.OnChange != nil {
		m.OnChange(next)
	}
}

// probeNode probes node id within Timeout. The probe runs in a goroutine
// of its own so that a store ignoring its context cannot hold the round:
// the round stops waiting at the deadline, and the goroutine, whose owner
// is the node's memo (running, then cleaning), ends when the store
// returns.
func (m *Monitor) probeNode(ctx context.Context, id string) outcome {
	const op dfms.Op = "health.probe"
	s, ok := m.Store(id)
	if !ok || s == nil {
		return outcome{err: dfms.Errorf(op, dfms.Unavailable, "no chunk store for the node")}
	}
	m.mu.Lock()
	mm := m.memo(id)
	if mm.running {
		m.mu.Unlock()
		return outcome{err: dfms.Errorf(op, dfms.Unavailable, "the node's previous probe has not returned yet")}
	}
	mm.running = true
	m.mu.Unlock()

	timeout := m.timeout()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1) // never blocks the probe
	start := time.Now()
	go func() {
		data := probeData()
		h := dfms.Sum(data)
		err := probe(pctx, s, h, data)
		done <- err
		m.mu.Lock()
		mm.running = false
		clean := err != nil && !mm.cleaning
		mm.cleaning = mm.cleaning || clean
		m.mu.Unlock()
		if err == nil {
			return
		}
		if !clean {
			// The delete of an earlier failed probe's chunk is still
			// retrying against the node: one is enough.
			m.log().Debug("a failed probe's chunk is left to garbage collection", "node", id, "chunk", h)
			return
		}
		// Whatever became of the Put, the chunk must not stay. The
		// probe's own context may be over: the delete has a deadline of
		// its own, and outlives the round's context. It does not hold
		// the node's next probe, which may run meanwhile.
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer ccancel()
		if derr := s.Delete(cctx, h); derr != nil {
			m.log().Debug("deleting a failed probe's chunk", "node", id, "chunk", h, "err", derr)
		}
		m.mu.Lock()
		mm.cleaning = false
		m.mu.Unlock()
	}()
	select {
	case err := <-done:
		return outcome{err: err, started: true, elapsed: time.Since(start)}
	case <-pctx.Done():
		return outcome{err: dfms.E(op, dfms.Unavailable, fmt.Errorf("probe did not finish within %v: %w", timeout, pctx.Err())),
			started: true, elapsed: time.Since(start)}
	}
}

// probe stores data under h in s, reads it back, compares and deletes it.
func probe(ctx context.Context, s dfms.ChunkStore, h dfms.Hash, data []byte) error {
	const op dfms.Op = "health.probe"
	if err := s.Put(ctx, h, data); err != nil {
		return dfms.E(op, dfms.Other, fmt.Errorf("put: %w", err))
	}
	got, err := s.Get(ctx, h, make([]byte, 0, len(data)))
	if err != nil {
		return dfms.E(op, dfms.Other, fmt.Errorf("get: %w", err))
	}
	if !bytes.Equal(got, data) {
		return dfms.E(op, dfms.Corrupt, fmt.Errorf("read back %d bytes that differ from the %d stored", len(got), len(data)))
	}
	if err := s.Delete(ctx, h); err != nil {
		return dfms.E(op, dfms.Other, fmt.Errorf("delete: %w", err))
	}
	return nil
}

// probeData returns the bytes of a new probe chunk: the marker, then
// random bytes.
func probeData() []byte {
	b := make([]byte, probeSize)
	n := copy(b, probeMarker)
	rand.Read(b[n:]) // never fails (crypto/rand)
	return b
}
