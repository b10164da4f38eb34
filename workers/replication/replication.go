// Package replication is the replication manager of DFMS: it brings every
// chunk to R verified copies on the nodes that own it now, and scrubs the
// copies for corruption.
//
// # Repair and rebalance
//
// A pass goes over the chunk index in hash order (meta.Replicas.ChunkCopies:
// each stored chunk with the nodes recorded as holding a copy) and, for
// each chunk, compares the copies recorded with the chunk's owners on the
// ring (placement.Cluster):
//
//   - an owner without a recorded copy is asked whether it has one after all
//     (the record is written after the copy, and a crash can lose its tail);
//     if not, the chunk is read from a good copy (placement verifies the
//     bytes) and written to the owner, and the copy recorded;
//   - a copy on a node that is not an owner (the ring changed: a node was
//     added, drained, re-weighted, or came back) is surplus: it is deleted,
//     but only once every owner's copy has been read back and found to hash
//     right, so that a chunk never drops below R good copies on the way.
//
// This covers every cause alike: writes that met only their quorum, a node
// that went down (its chunks get new owners), a node added or drained
// (chunks move to their new owners, and away from the drained one). A
// node that has been down for less than DownDelay still counts as the
// owner it was, and chunks it owns wait: a restart does not set off a full
// copy. A pass keeps no state of its own, so it is idempotent and resumes
// after a crash by simply running again. Copies are rate-limited
// (MaxBytesPerSec).
//
// # Reports and scrubbing
//
// Repair handles a read's report of a bad copy (placement.Options.OnBadCopy,
// which the server turns into a dfms.TopicRepair event, so that whichever
// process runs the manager hears of it; HandleEvent is the consumer): the
// copy is checked again on its node (a corrupt one is deleted only after a
// second read confirms it) and the chunk is repaired at once, without
// waiting for the next pass.
//
// Scrub re-reads every recorded copy from its node and re-hashes it: a
// missing copy is forgotten, a corrupt one deleted, and the chunk repaired;
// the copies found bad are counted.
package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/server/meta"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Defaults.
const (
	DefaultInterval  = time.Minute
	DefaultDownDelay = 10 * time.Minute
	pageSize         = 500
	parallel         = 8 // chunks checked at once
)

// Manager repairs, rebalances and scrubs chunk copies. Its fields must not
// change once it runs.
type Manager struct {
	// Cluster is the replicated store: the ring, the nodes' stores, and
	// verified reads. Required.
	Cluster *placement.Cluster
	// Replicas is the record of copies and the chunk index. Required.
	Replicas meta.Replicas
	// Interval is the time between passes of Run (default a minute);
	// ScrubInterval between scrubs (0: none).
	Interval      time.Duration
	ScrubInterval time.Duration
	// DownDelay is how long a node must have been down before its chunks
	// are copied elsewhere (default 10 minutes).
	DownDelay time.Duration
	// MaxBytesPerSec bounds the bytes copied (and, for a scrub, read) per
	// second; 0 is no bound.
	MaxBytesPerSec int64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Lock, if set, is taken for each pass and scrub, so that of several
	// processes running a manager one works at a time; a pass that finds
	// it held (kind Conflict) is skipped. (Two at once would be safe, only
	// wasteful: every step is checked against the nodes.)
	Lock func(ctx context.Context) (unlock func(), err error)
	Log  *slog.Logger

	once      sync.Once
	limiter   *rate.Limiter
	mu        sync.Mutex
	downSince map[string]time.Time
	total     Stats

	under, toMove prometheus.Gauge
	copies        prometheus.Counter
	copiedBytes   prometheus.Counter
	removed       prometheus.Counter
	bad           *prometheus.CounterVec
	failures      prometheus.Counter
}

// Stats count what a pass or a scrub did.
type Stats struct {
	Chunks          int   // chunks looked at
	UnderReplicated int   // with fewer than R copies on their owners when looked at
	Waiting         int   // owned by a node down for less than DownDelay: left alone
	Copied          int   // copies written
	CopiedBytes     int64 // their bytes
	BytesToMove     int64 // bytes of the copies that were missing
	Recorded        int   // copies found on an owner without a record, and recorded
	Removed         int   // surplus copies deleted
	Corrupt         int   // copies found corrupt (and deleted)
	Missing         int   // recorded copies found missing (and forgotten)
	Failed          int   // chunks whose repair failed this time
}

func (s *Stats) add(o Stats) {
	s.Chunks += o.Chunks
	s.UnderReplicated += o.UnderReplicated
	s.Waiting += o.Waiting
	s.Copied += o.Copied
	s.CopiedBytes += o.CopiedBytes
	s.BytesToMove += o.BytesToMove
	s.Recorded += o.Recorded
	s.Removed += o.Removed
	s.Corrupt += o.Corrupt
	s.Missing += o.Missing
	s.Failed += o.Failed
}

func (m *Manager) init() {
	m.once.Do(func() {
		if m.Log == nil {
			m.Log = slog.Default()
		}
		if m.Now == nil {
			m.Now = time.Now
		}
		lim := rate.Inf
		burst := 0
		if m.MaxBytesPerSec > 0 {
			lim = rate.Limit(m.MaxBytesPerSec)
			burst = int(max(m.MaxBytesPerSec, 1<<20))
		}
		m.limiter = rate.NewLimiter(lim, burst)
		m.downSince = make(map[string]time.Time)
		m.under = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dfms_replication_under_replicated_chunks",
			Help: "Chunks with fewer than R copies on their owners, as the last pass found them."})
		m.toMove = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dfms_replication_bytes_to_move",
			Help: "Bytes of the copies the last pass found missing on their owners."})
		m.copies = prometheus.NewCounter(prometheus.CounterOpts{Name: "dfms_replication_copies_total",
			Help: "Chunk copies written by repair and rebalancing."})
		m.copiedBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "dfms_replication_copied_bytes_total",
			Help: "Bytes of chunk copies written by repair and rebalancing (the repair throughput)."})
		m.removed = prometheus.NewCounter(prometheus.CounterOpts{Name: "dfms_replication_surplus_removed_total",
			Help: "Surplus chunk copies deleted once the owners' copies were verified."})
		m.bad = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dfms_replication_bad_copies_total",
			Help: "Chunk copies found bad by reads or scrubbing, by kind (corrupt, missing)."}, []string{"kind"})
		m.failures = prometheus.NewCounter(prometheus.CounterOpts{Name: "dfms_replication_failures_total",
			Help: "Chunk repairs that failed (retried by a later pass)."})
	})
}

// Metrics returns the manager's Prometheus metrics.
func (m *Manager) Metrics() []prometheus.Collector {
	m.init()
	return []prometheus.Collector{m.under, m.toMove, m.copies, m.copiedBytes, m.removed, m.bad, m.failures}
}

// Totals returns what the manager has done since it started.
func (m *Manager) Totals() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.total
}

// HandleEvent is the manager's consumer of TopicRepair: it repairs the
// chunk a repair.needed event names (Repair). Other events, and events
// that do not parse, are ignored: there is nothing to retry.
func (m *Manager) HandleEvent(ctx context.Context, e dfms.Event) error {
	m.init()
	if e.Type != dfms.EventRepairNeeded {
		return nil
	}
	var re dfms.RepairEvent
	if err := json.Unmarshal(e.Data, &re); err != nil {
		m.Log.Warn("ignoring a repair event that does not parse", "id", e.ID, "err", err)
		return nil
	}
	h, err := dfms.ParseHash(re.Hash)
	if err != nil {
		m.Log.Warn("ignoring a repair event without a chunk hash", "id", e.ID, "hash", re.Hash)
		return nil
	}
	return m.Repair(ctx, h, re.Node)
}

// Run makes a pass every Interval and a scrub every ScrubInterval until
// ctx ends.
func (m *Manager) Run(ctx context.Context) {
	m.init()
	every := m.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	pass := time.NewTicker(every)
	defer pass.Stop()
	var scrub <-chan time.Time
	if m.ScrubInterval > 0 {
		t := time.NewTicker(m.ScrubInterval)
		defer t.Stop()
		scrub = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-pass.C:
			if st, err := m.Pass(ctx); err != nil && ctx.Err() == nil {
				m.Log.Warn("replication pass failed", "err", err)
			} else if st.Copied+st.Removed+st.Failed > 0 {
				m.Log.Info("replication pass", "chunks", st.Chunks, "under-replicated", st.UnderReplicated,
					"copied", st.Copied, "bytes", st.CopiedBytes, "removed", st.Removed, "failed", st.Failed)
			}
		case <-scrub:
			if st, err := m.Scrub(ctx); err != nil && ctx.Err() == nil {
				m.Log.Warn("scrub failed", "err", err)
			} else if st.Corrupt+st.Missing > 0 {
				m.Log.Warn("scrub found bad copies", "corrupt", st.Corrupt, "missing", st.Missing, "copied", st.Copied)
			}
		}
	}
}

// view is what a pass works from: the cluster's members, the ring that
// names each chunk's owners for repair (nodes down for less than
// DownDelay counted as owners still), and those nodes.
type view struct {
	r       int
	ring    *placement.Ring
	members map[string]placement.Member
	waiting map[string]bool // down for less than DownDelay
}

func (m *Manager) view() (*view, error) {
	ms := m.Cluster.Members()
	v := &view{r: m.Cluster.Replicas(), members: make(map[string]placement.Member, len(ms)), waiting: map[string]bool{}}
	delay := m.DownDelay
	if delay <= 0 {
		delay = DefaultDownDelay
	}
	now := m.Now()
	nodes := make([]dfms.StorageNode, len(ms))
	m.mu.Lock()
	for i, n := range ms {
		v.members[n.ID] = n
		nodes[i] = n.StorageNode
		if n.State != dfms.NodeDown {
			delete(m.downSince, n.ID)
			continue
		}
		since, ok := m.downSince[n.ID]
		if !ok {
			since = now
			m.downSince[n.ID] = now
		}
		if now.Sub(since) < delay {
			v.waiting[n.ID] = true
			nodes[i].State = dfms.NodeUp
		}
	}
	m.mu.Unlock()
	ring, err := placement.NewRing(nodes, m.Cluster.VNodes())
	if err != nil {
		return nil, err
	}
	v.ring = ring
	return v, nil
}

// Pass checks every chunk once and repairs what it can.
func (m *Manager) Pass(ctx context.Context) (Stats, error) {
	m.init()
	st, err := m.each(ctx, func(v *view, cc meta.ChunkCopies, st *Stats) error {
		return m.check(ctx, v, cc, st, false)
	})
	m.under.Set(float64(st.UnderReplicated))
	m.toMove.Set(float64(st.BytesToMove))
	return st, err
}

// each calls fn for every stored chunk, page by page.
func (m *Manager) each(ctx context.Context, fn func(*view, meta.ChunkCopies, *Stats) error) (Stats, error) {
	var st Stats
	defer func() {
		m.mu.Lock()
		m.total.add(st)
		m.mu.Unlock()
	}()
	if m.Lock != nil {
		unlock, err := m.Lock(ctx)
		if dfms.Is(err, dfms.Conflict) {
			return st, nil
		}
		if err != nil {
			return st, err
		}
		defer unlock()
	}
	v, err := m.view()
	if err != nil {
		return st, err
	}
	var after dfms.Hash
	for {
		page, err := m.Replicas.ChunkCopies(ctx, after, pageSize)
		if err != nil {
			return st, err
		}
		// The chunks of a page are checked in parallel: a copy is a read
		// from one node and a durable write to another, and one at a time
		// leaves both disks and the network mostly idle.
		var mu sync.Mutex
		g := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		for _, cc := range page {
			g <- struct{}{}
			wg.Go(func() {
				defer func() { <-g }()
				var one Stats
				one.Chunks = 1
				err := fn(v, cc, &one)
				if err != nil && ctx.Err() == nil {
					one.Failed++
					m.failures.Inc()
					m.Log.Warn("chunk repair failed", "chunk", cc.Hash, "err", err)
				}
				mu.Lock()
				st.add(one)
				mu.Unlock()
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		if len(page) < pageSize {
			return st, nil
		}
		after = page[len(page)-1].Hash
	}
}

// check brings one chunk to R copies on its owners and removes surplus
// copies once the owners' are verified.
func (m *Manager) check(ctx context.Context, v *view, cc meta.ChunkCopies, st *Stats, again bool) error {
	owners := v.ring.Owners(cc.Hash, v.r)
	for _, id := range owners {
		if v.waiting[id] {
			st.Waiting++
			return nil
		}
	}
	var missing []string
	for _, id := range owners {
		if !slices.Contains(cc.Nodes, id) {
			missing = append(missing, id)
		}
	}
	if len(owners)-len(missing) < v.r {
		st.UnderReplicated++
	}
	var data []byte
	var failed []error
	for _, id := range missing {
		node := v.members[id].Store
		if n, err := node.Stat(ctx, cc.Hash); err == nil && n == cc.Size {
			if err := m.record(ctx, cc.Hash, id); err != nil {
				return err
			}
			st.Recorded++
			continue
		}
		st.BytesToMove += cc.Size
		if data == nil {
			var err error
			if data, err = m.Cluster.Get(ctx, cc.Hash, nil); err != nil {
				return fmt.Errorf("reading a good copy: %w", err)
			}
		}
		if err := m.wait(ctx, len(data)); err != nil {
			return err
		}
		if err := node.Put(ctx, cc.Hash, data); err != nil {
			failed = append(failed, fmt.Errorf("copy to %s: %w", id, err))
			continue
		}
		if err := m.record(ctx, cc.Hash, id); err != nil {
			return err
		}
		st.Copied++
		st.CopiedBytes += int64(len(data))
		m.copies.Inc()
		m.copiedBytes.Add(float64(len(data)))
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	var surplus []string
	for _, id := range cc.Nodes {
		if !slices.Contains(owners, id) {
			surplus = append(surplus, id)
		}
	}
	if len(surplus) == 0 || len(owners) < v.r {
		return nil
	}
	// Every owner's copy must be good before any other copy goes. A
	// recorded copy that is missing or corrupt (a disk replaced, a copy
	// rotted) is dealt with as the scrubber would, and the chunk checked
	// again: it is then missing on that owner, and copied there.
	for _, id := range owners {
		bad, err := m.checkCopy(ctx, v.members[id].Store, cc.Hash, id)
		if err != nil {
			return fmt.Errorf("before removing surplus copies, the copy on owner %s: %w", id, err)
		}
		if bad != "" {
			if bad == "corrupt" {
				st.Corrupt++
			} else {
				st.Missing++
			}
			if again {
				return fmt.Errorf("the copy on owner %s is %s again", id, bad)
			}
			cc.Nodes = slices.DeleteFunc(slices.Clone(cc.Nodes), func(n string) bool { return n == id })
			return m.check(ctx, v, cc, st, true)
		}
	}
	for _, id := range surplus {
		mb, ok := v.members[id]
		if !ok || mb.State == dfms.NodeDown {
			continue // a node gone or down keeps its copy until it is back
		}
		// The record goes first, and only while R others stay recorded:
		// two managers (or a pass and a read's report) deciding on
		// different copies of one chunk at once, each from its own view
		// of the ring, cannot between them delete all of its copies.
		dropped, err := m.Replicas.DropSurplusReplica(ctx, dfms.Replica{Hash: cc.Hash, Node: id}, v.r)
		if err != nil {
			return err
		}
		if !dropped {
			continue
		}
		if err := mb.Store.Delete(ctx, cc.Hash); err != nil {
			// The copy stays, unrecorded: an orphan copy of a live chunk,
			// harmless; it is found again as a surplus holder by a read.
			return fmt.Errorf("removing the surplus copy on %s: %w", id, err)
		}
		st.Removed++
		m.removed.Inc()
	}
	return nil
}

// verify reads h from one node and checks that it hashes right.
func (m *Manager) verify(ctx context.Context, node dfms.ChunkStore, h dfms.Hash) error {
	data, err := node.Get(ctx, h, nil)
	if err != nil {
		return err
	}
	if err := m.wait(ctx, len(data)); err != nil {
		return err
	}
	if dfms.Sum(data) != h {
		return dfms.Errorf("replication.verify", dfms.Corrupt, "the copy does not hash to its name")
	}
	return nil
}

// record records a copy. The record may become durable later: it is a
// guide that a pass rebuilds (an owner's unrecorded copy is found and
// recorded again), so it need not cost a durable commit per copy.
func (m *Manager) record(ctx context.Context, h dfms.Hash, node string) error {
	return m.Replicas.AddReplicas(meta.WithLazyDurability(ctx), []dfms.Replica{{Hash: h, Node: node}})
}

// wait takes n bytes from the rate limit.
func (m *Manager) wait(ctx context.Context, n int) error {
	for burst := m.limiter.Burst(); n > 0 && m.limiter.Limit() != rate.Inf; n -= burst {
		if err := m.limiter.WaitN(ctx, min(n, burst)); err != nil {
			return err
		}
	}
	return nil
}

// Scrub re-reads and re-hashes every recorded copy, forgets missing ones,
// deletes corrupt ones, and repairs the chunks that lost a copy.
func (m *Manager) Scrub(ctx context.Context) (Stats, error) {
	m.init()
	return m.each(ctx, func(v *view, cc meta.ChunkCopies, st *Stats) error {
		good := cc.Nodes[:0:0]
		for _, id := range cc.Nodes {
			mb, ok := v.members[id]
			if !ok || mb.State == dfms.NodeDown {
				good = append(good, id)
				continue
			}
			bad, err := m.checkCopy(ctx, mb.Store, cc.Hash, id)
			if err != nil {
				return err
			}
			switch bad {
			case "":
				good = append(good, id)
			case "corrupt":
				st.Corrupt++
			case "missing":
				st.Missing++
			}
		}
		cc.Nodes = good
		return m.check(ctx, v, cc, st, false)
	})
}

// checkCopy reads a node's copy of h: a missing copy is forgotten, a
// corrupt one deleted and forgotten. It returns "missing", "corrupt", or
// "" for a good copy.
func (m *Manager) checkCopy(ctx context.Context, node dfms.ChunkStore, h dfms.Hash, id string) (string, error) {
	err := m.verify(ctx, node, h)
	switch {
	case err == nil:
		return "", nil
	case dfms.Is(err, dfms.NotExist):
		m.bad.WithLabelValues("missing").Inc()
		return "missing", m.Replicas.DropReplicas(ctx, []dfms.Replica{{Hash: h, Node: id}})
	case dfms.Is(err, dfms.Corrupt):
		m.bad.WithLabelValues("corrupt").Inc()
		m.Log.Warn("deleting a corrupt chunk copy", "chunk", h, "node", id)
		if err := node.Delete(ctx, h); err != nil {
			return "", err
		}
		return "corrupt", m.Replicas.DropReplicas(ctx, []dfms.Replica{{Hash: h, Node: id}})
	}
	return "", err
}

// Repair handles a report of a bad copy of chunk h on node (a read met
// it): the copy is checked on its node, and the chunk repaired. It is
// idempotent: a chunk whose copies are all good is left as it is.
func (m *Manager) Repair(ctx context.Context, h dfms.Hash, node string) error {
	m.init()
	r := struct {
		h    dfms.Hash
		node string
	}{h, node}
	v, err := m.view()
	if err != nil {
		return err
	}
	mb, ok := v.members[r.node]
	if !ok {
		return nil
	}
	page, err := m.Replicas.ChunkCopies(ctx, before(r.h), 1)
	if err != nil || len(page) == 0 || page[0].Hash != r.h {
		return err // not a stored chunk (any more): nothing to repair
	}
	cc := page[0]
	var st Stats
	bad, err := m.checkCopy(ctx, mb.Store, r.h, r.node)
	if err != nil {
		return err
	}
	if bad != "" {
		cc.Nodes = slices.DeleteFunc(cc.Nodes, func(id string) bool { return id == r.node })
	}
	if bad == "corrupt" {
		st.Corrupt++
	} else if bad == "missing" {
		st.Missing++
	}
	err = m.check(ctx, v, cc, &st, false)
	m.mu.Lock()
	m.total.add(st)
	m.mu.Unlock()
	return err
}

// before returns the hash just before h in hash order (h itself for the
// zero hash, which sorts first).
func before(h dfms.Hash) dfms.Hash {
	n := new(big.Int).SetBytes(h[:])
	if n.Sign() == 0 {
		return h
	}
	n.Sub(n, big.NewInt(1))
	var out dfms.Hash
	n.FillBytes(out[:])
	return out
}
