package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/placement/store"
	"github.com/dfms/dfms/server/meta"
)

// openChunks opens the chunk store cfg names: the single store of
// chunks.url, or, with storage.nodes, the cluster of every registered
// storage node (nil cluster otherwise).
func openChunks(ctx context.Context, cfg *Config, m meta.Store, log *slog.Logger) (dfms.ChunkStore, *cluster, error) {
	if len(cfg.Storage.Nodes) == 0 {
		st, err := store.Open(ctx, cfg.Chunks.URL)
		if err != nil {
			return nil, nil, backendError("chunk store", cfg.Chunks.URL, err)
		}
		return st, nil, nil
	}
	if err := registerNodes(ctx, cfg.Storage.Nodes, m); err != nil {
		return nil, nil, err
	}
	cl := &cluster{meta: m, log: log, opened: make(map[string]opened)}
	members, err := cl.members(ctx)
	if err != nil {
		return nil, nil, err
	}
	cl.Cluster, err = placement.NewCluster(members, placement.Options{
		Replicas: cfg.Storage.Replicas, WriteQuorum: cfg.Storage.WriteQuorum,
		Log: replicaLog{m}, Logger: log,
	})
	if err != nil {
		cl.closeAll(members)
		return nil, nil, err
	}
	return cl, cl, nil
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

	mu     sync.Mutex
	opened map[string]opened // the stores opened, by node id
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

// ready reports whether a write can meet its quorum: enough nodes answer.
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
	if need := c.Replicas(); up < need {
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
