package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/placement/store"
	"github.com/dfms/dfms/server/events"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/health"
	"github.com/dfms/dfms/workers/replication"
	"github.com/prometheus/client_golang/prometheus"
)

// Chunks is the chunk store a process keeps chunks in itself (a server,
// unless its chunks are in a chunk service; a chunk service), with what
// keeps it whole: the single store of chunks.url, or the cluster of
// storage.nodes with its health monitor and replication manager.
type Chunks struct {
	// Store is the chunk store: the single store, or the cluster's
	// replicated store. Close closes it.
	Store   dfms.ChunkStore
	cluster *cluster // nil for a single store
	health  *health.Monitor
	repair  *replication.Manager
	url     string
	// Events, if set, is the bus whose repair events (bad copies that
	// reads met, in any process) Run hands to the replication manager.
	Events events.Bus
}

// RepairGroup is the consumer group of the replication managers on
// dfms.TopicRepair.
const RepairGroup = "dfms-replication"

// OpenChunks opens the chunk store cfg names for this process to keep
// chunks in itself. A grpc:// or grpcs:// chunks.url names a chunk
// service, which cannot be its own store: it is refused with kind
// Invalid. With storage.nodes, the nodes are registered in m and the
// cluster built from every registered node; m may be nil without them.
func OpenChunks(ctx context.Context, cfg *Config, m meta.Store, log *slog.Logger) (*Chunks, error) {
	const op dfms.Op = "server.OpenChunks"
	if isChunkServiceURL(cfg.Chunks.URL) {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("chunks.url %s names a chunk service; a chunk service serves a store of its own (file://, s3:// or storage.nodes), not another chunk service", dfms.RedactURL(cfg.Chunks.URL)))
	}
	if len(cfg.Storage.Nodes) == 0 {
		st, err := store.Open(ctx, cfg.Chunks.URL)
		if err != nil {
			return nil, backendError("chunk store", cfg.Chunks.URL, err)
		}
		return &Chunks{Store: st, url: cfg.Chunks.URL}, nil
	}
	if m == nil {
		return nil, dfms.Errorf(op, dfms.Invalid, "storage nodes need the metadata store")
	}
	if err := registerNodes(ctx, cfg.Storage.Nodes, m); err != nil {
		return nil, err
	}
	cl := &cluster{meta: m, log: log, opened: make(map[string]opened),
		reports: make(chan badReport, reportQueue), reported: make(map[dfms.Replica]time.Time)}
	members, err := cl.members(ctx)
	if err != nil {
		return nil, err
	}
	cl.Cluster, err = placement.NewCluster(members, placement.Options{
		Replicas: cfg.Storage.Replicas, WriteQuorum: cfg.Storage.WriteQuorum,
		Log: replicaLog{m}, Logger: log,
		OnBadCopy: cl.badCopy,
	})
	if err != nil {
		cl.closeAll(members)
		return nil, err
	}
	c := &Chunks{Store: cl, cluster: cl}
	// Every process that reads through the cluster announces the bad
	// copies it meets, whatever else it runs.
	actx, stop := context.WithCancel(context.Background())
	cl.stopAnnounce, cl.announced = stop, make(chan struct{})
	go func() { defer close(cl.announced); cl.announce(actx) }()
	c.health = &health.Monitor{Nodes: m, Store: cl.Node, Lock: lockFor(m, "health"),
		Interval: cfg.Health.Interval, Timeout: cfg.Health.Timeout, DownAfter: cfg.Health.DownAfter, UpAfter: cfg.Health.UpAfter,
		Log: log.With("worker", "health"),
		OnChange: func(n dfms.StorageNode) {
			if err := cl.SetState(n.ID, n.State); err != nil {
				log.Warn("applying a node's state", "node", n.ID, "err", err)
			}
		}}
	c.repair = &replication.Manager{Cluster: cl.Cluster, Replicas: m, Interval: cfg.Repair.Interval,
		ScrubInterval: max(cfg.Scrub.Interval, 0), DownDelay: cfg.Repair.DownDelay,
		MaxBytesPerSec: max(cfg.Repair.MaxBytesPerSec, 0), Lock: lockFor(m, "replication"),
		Log: log.With("worker", "replication")}
	return c, nil
}

// String describes the store for the log, without credentials.
func (c *Chunks) String() string {
	if c.cluster == nil {
		return dfms.RedactURL(c.url)
	}
	return fmt.Sprintf("%d storage nodes, %d copies", len(c.cluster.Members()), c.cluster.Replicas())
}

// Run keeps a cluster whole until ctx ends: it follows the node table and
// runs the health monitor and the replication manager (what `dfms server`
// and a chunk service do). For a single store it returns at once.
func (c *Chunks) Run(ctx context.Context) {
	c.run(ctx, c.RunHealth, c.RunRepair)
}

// Follow keeps this process's view of a cluster in step with the node
// table (nodes added or drained, the health monitor's verdicts) until ctx
// ends; with jobs, it runs them too, and returns when all have. For a
// single store it returns at once.
func (c *Chunks) Follow(ctx context.Context, jobs ...func(context.Context)) {
	c.run(ctx, jobs...)
}

func (c *Chunks) run(ctx context.Context, jobs ...func(context.Context)) {
	if c.cluster == nil {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.cluster.follow(ctx, nodeRefresh) })
	for _, job := range jobs {
		wg.Go(func() { job(ctx) })
	}
	wg.Wait()
}

// Clustered reports whether the store is a cluster of storage nodes.
func (c *Chunks) Clustered() bool { return c.cluster != nil }

// RunHealth runs the cluster's health monitor until ctx ends (several
// processes share its rounds through a lock in the metadata store).
func (c *Chunks) RunHealth(ctx context.Context) {
	if c.health != nil {
		c.health.Run(ctx)
	}
}

// RunRepair runs the cluster's replication manager and scrubber until ctx
// ends (several processes share the passes through a lock), handing it
// the repair events of Events, if set (bad copies that reads met in any
// process; the managers share them as one consumer group).
func (c *Chunks) RunRepair(ctx context.Context) {
	if c.repair == nil {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.repair.Run(ctx) })
	if c.Events != nil {
		wg.Go(func() { c.Events.Consume(ctx, dfms.TopicRepair, RepairGroup, c.repair.HandleEvent) })
	}
	wg.Wait()
}

// HealthMetrics are the health monitor's metrics (none for a single
// store).
func (c *Chunks) HealthMetrics() []prometheus.Collector {
	if c.health == nil {
		return nil
	}
	return c.health.Metrics()
}

// RepairMetrics are the replication manager's metrics (none for a single
// store).
func (c *Chunks) RepairMetrics() []prometheus.Collector {
	if c.repair == nil {
		return nil
	}
	return c.repair.Metrics()
}

// Ready reports whether chunks can be written: the single store answers,
// or enough nodes do for a write's quorum.
func (c *Chunks) Ready(ctx context.Context) error {
	if c.cluster != nil {
		return c.cluster.ready(ctx)
	}
	if _, err := c.Store.Stat(ctx, dfms.Hash{}); err != nil && !dfms.Is(err, dfms.NotExist) {
		return err
	}
	return nil
}

// Metrics returns the health monitor's and the replication manager's
// metrics (none for a single store).
func (c *Chunks) Metrics() []prometheus.Collector {
	return append(c.HealthMetrics(), c.RepairMetrics()...)
}

// Close closes the store.
func (c *Chunks) Close() error {
	if c.cluster != nil {
		c.cluster.stopAnnounce()
		<-c.cluster.announced
	}
	return c.Store.Close()
}

// isChunkServiceURL reports whether raw is a grpc:// or grpcs:// URL.
func isChunkServiceURL(raw string) bool {
	l := strings.ToLower(raw)
	return strings.HasPrefix(l, "grpc://") || strings.HasPrefix(l, "grpcs://")
}

// nodeRefresh is how often a process re-reads the storage nodes.
const nodeRefresh = 10 * time.Second

// lockFor returns a function that takes the named cluster-wide lock.
func lockFor(m meta.Sweeper, name string) func(context.Context) (func(), error) {
	return func(ctx context.Context) (func(), error) {
		_, unlock, err := m.Lock(ctx, name)
		return unlock, err
	}
}

// registerNodes registers the configured nodes: a new one up, a known one
// with its URL, weight and zone replaced and its state kept (the health
// monitor's or an operator's).
func registerNodes(ctx context.Context, nodes []NodeConfig, m meta.Nodes) error {
	known, err := m.ListNodes(ctx)
	if err != nil {
		return err
	}
	state := make(map[string]dfms.NodeState, len(known))
	for _, n := range known {
		state[n.ID] = n.State
	}
	for _, n := range nodes {
		s := state[n.ID]
		if s == "" {
			s = dfms.NodeUp
		}
		if err := m.PutNode(ctx, dfms.StorageNode{ID: n.ID, URL: n.URL, Weight: n.Weight, Zone: n.Zone, State: s}); err != nil {
			return fmt.Errorf("registering storage node %s: %w", n.ID, err)
		}
	}
	return nil
}

// cluster is the replicated chunk store with its membership kept in step
// with the metadata store's storage nodes.
type cluster struct {
	*placement.Cluster
	meta meta.Store
	log  *slog.Logger
	// reported is when each bad copy (hash and node) was last announced:
	// a copy that many reads meet is announced once a minute.
	reportedMu sync.Mutex
	reported   map[dfms.Replica]time.Time
	// reports are the bad copies that reads met, for announce.
	reports chan badReport
	// stopAnnounce ends announce (Close).
	stopAnnounce context.CancelFunc
	announced    chan struct{}

	mu     sync.Mutex
	opened map[string]opened // the stores opened, by node id
}

// badReport is a bad copy that a read met, with why.
type badReport struct {
	dfms.Replica
	reason string
}

// reportQueue bounds the bad copies waiting to be announced; more are
// dropped (a replication pass or the scrubber finds them).
const reportQueue = 1024

// badCopy takes a bad copy that a read met (placement's OnBadCopy) for
// announce, without blocking the read: a copy announced within the last
// minute, or one that finds the queue full, is left to the replication
// passes.
func (cl *cluster) badCopy(h dfms.Hash, node string, err error) {
	r := dfms.Replica{Hash: h, Node: node}
	cl.reportedMu.Lock()
	last, ok := cl.reported[r]
	cl.reportedMu.Unlock()
	if ok && time.Since(last) < time.Minute {
		return
	}
	reason := "unreadable"
	switch {
	case dfms.Is(err, dfms.Corrupt):
		reason = "corrupt"
	case dfms.Is(err, dfms.NotExist):
		reason = "missing"
	}
	select {
	case cl.reports <- badReport{r, reason}:
	default:
	}
}

// announce writes the bad copies that reads met as repair.needed events
// (in batches, each in one transaction), which the replication managers
// consume wherever they run, until ctx ends.
func (cl *cluster) announce(ctx context.Context) {
	for {
		var batch []badReport
		select {
		case <-ctx.Done():
			return
		case r := <-cl.reports:
			batch = append(batch, r)
		}
	more:
		for len(batch) < 100 {
			select {
			case r := <-cl.reports:
				batch = append(batch, r)
			default:
				break more
			}
		}
		evs := make([]dfms.Event, 0, len(batch))
		seen := make(map[dfms.Replica]bool, len(batch))
		for _, r := range batch {
			if seen[r.Replica] {
				continue
			}
			seen[r.Replica] = true
			data, _ := json.Marshal(dfms.RepairEvent{Hash: r.Hash.String(), Node: r.Node, Reason: r.reason})
			evs = append(evs, dfms.Event{Topic: dfms.TopicRepair, Key: r.Hash.String(), Type: dfms.EventRepairNeeded, Data: data})
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := cl.meta.AppendEvents(actx, evs)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				cl.log.Warn("announcing bad chunk copies; the next replication pass finds them", "copies", len(evs), "err", err)
			}
			continue
		}
		now := time.Now()
		cl.reportedMu.Lock()
		if len(cl.reported) >= 10000 { // forget those announced over a minute ago
			maps.DeleteFunc(cl.reported, func(_ dfms.Replica, at time.Time) bool { return now.Sub(at) >= time.Minute })
		}
		for r := range seen {
			if len(cl.reported) < 20000 {
				cl.reported[r] = now
			}
		}
		cl.reportedMu.Unlock()
	}
}

// The server's file layer skips its own re-hash of what the cluster
// verified: the promoted VerifiesGet speaks for the promoted Get.
var _ dfms.VerifyingStore = (*cluster)(nil)

// opened is a node's store and the URL it was opened from.
type opened struct {
	url   string
	store dfms.ChunkStore
}

// members returns the registered nodes, each with its chunk store: the one
// already open for its URL, or a newly opened one. A node whose store
// cannot be opened (its endpoint is down) gets a store that fails with
// kind Unavailable, and is opened again by a later refresh.
func (c *cluster) members(ctx context.Context) ([]placement.Member, error) {
	nodes, err := c.meta.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := make([]placement.Member, len(nodes))
	for i, n := range nodes {
		ms[i].StorageNode = n
		if o, ok := c.opened[n.ID]; ok && o.url == n.URL {
			if _, broken := o.store.(*unreachable); !broken {
				ms[i].Store = o.store
				continue
			}
		}
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := store.Open(octx, n.URL)
		cancel()
		if err != nil {
			c.log.Warn("storage node unreachable", "node", n.ID, "url", dfms.RedactURL(n.URL), "err", err)
			st = &unreachable{id: n.ID, err: err}
		}
		c.opened[n.ID] = opened{url: n.URL, store: st}
		ms[i].Store = st
	}
	return ms, nil
}

// refresh re-reads the storage nodes and applies them.
func (c *cluster) refresh(ctx context.Context) error {
	ms, err := c.members(ctx)
	if err != nil {
		return err
	}
	if err := c.SetNodes(ms); err != nil {
		return err
	}
	c.mu.Lock()
	for id := range c.opened {
		if !memberOf(ms, id) {
			delete(c.opened, id) // SetNodes closed its store
		}
	}
	c.mu.Unlock()
	return nil
}

// follow refreshes the membership every interval until ctx ends, so that
// nodes added or drained through any process, and the health monitor's
// verdicts, reach this one.
func (c *cluster) follow(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.refresh(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("refreshing the storage nodes", "err", err)
			}
		}
	}
}

// ready reports whether a write can meet its quorum: enough placeable
// nodes answer.
func (c *cluster) ready(ctx context.Context) error {
	ms := c.Members()
	var mu sync.Mutex
	var wg sync.WaitGroup
	up := 0
	var last error
	for _, m := range ms {
		if !m.State.Placeable() || m.Weight == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := m.Store.Stat(ctx, dfms.Hash{})
			mu.Lock()
			defer mu.Unlock()
			if err == nil || dfms.Is(err, dfms.NotExist) {
				up++
			} else {
				last = fmt.Errorf("node %s: %w", m.ID, err)
			}
		}()
	}
	wg.Wait()
	if need := c.WriteQuorum(); up < need {
		return dfms.E("server.ready", dfms.Unavailable, fmt.Errorf("%d storage nodes answer, %d needed (last error: %v)", up, need, last))
	}
	return nil
}

func (c *cluster) closeAll(ms []placement.Member) {
	for _, m := range ms {
		m.Store.Close()
	}
}

func memberOf(ms []placement.Member, id string) bool {
	for _, m := range ms {
		if m.ID == id {
			return true
		}
	}
	return false
}

// replicaLog records copies with lazy durability: the record is a guide
// to where copies are, rebuilt by repair if a crash loses its tail, so it
// need not pay a durable commit of its own (the commit that references the
// chunk makes it durable).
type replicaLog struct{ r meta.Replicas }

func (l replicaLog) AddReplicas(ctx context.Context, rs []dfms.Replica) error {
	return l.r.AddReplicas(meta.WithLazyDurability(ctx), rs)
}

func (l replicaLog) DropReplicas(ctx context.Context, rs []dfms.Replica) error {
	return l.r.DropReplicas(meta.WithLazyDurability(ctx), rs)
}

func (l replicaLog) ChunkReplicas(ctx context.Context, h dfms.Hash) ([]string, error) {
	return l.r.ChunkReplicas(ctx, h)
}

// unreachable stands for a node whose store could not be opened.
type unreachable struct {
	id  string
	err error
}

func (u *unreachable) fail() error {
	return dfms.E("server.unreachable", dfms.Unavailable, fmt.Errorf("storage node %s: %w", u.id, u.err))
}

func (u *unreachable) Put(context.Context, dfms.Hash, []byte) error { return u.fail() }
func (u *unreachable) Get(_ context.Context, _ dfms.Hash, buf []byte) ([]byte, error) {
	return buf, u.fail()
}
func (u *unreachable) Stat(context.Context, dfms.Hash) (int64, error)         { return 0, u.fail() }
func (u *unreachable) Delete(context.Context, dfms.Hash) error                { return u.fail() }
func (u *unreachable) Walk(context.Context, func(dfms.ChunkInfo) error) error { return u.fail() }
func (u *unreachable) Close() error                                           { return nil }
