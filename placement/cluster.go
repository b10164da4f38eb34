package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dfms/dfms"
	"golang.org/x/sync/errgroup"
)

// ReplicaLog records which nodes hold a copy of which chunk (the metadata
// store's chunk_replicas; meta.Replicas implements it). The cluster writes
// a copy after it is durable and forgets it after it is deleted; readers
// use it to find copies that are not on a chunk's current owners (after
// the ring changed, before repair moved them).
type ReplicaLog interface {
	AddReplicas(ctx context.Context, rs []dfms.Replica) error
	DropReplicas(ctx context.Context, rs []dfms.Replica) error
	ChunkReplicas(ctx context.Context, h dfms.Hash) ([]string, error)
}

// Member is a storage node with its open chunk store.
type Member struct {
	dfms.StorageNode
	Store dfms.ChunkStore
}

// Options configure a Cluster.
type Options struct {
	// Replicas is the replication factor R (0: DefaultReplicas of the
	// number of nodes).
	Replicas int
	// WriteQuorum is W, the copies a Put needs to succeed (0: R). With
	// W < R a Put that stored W copies succeeds, and the chunk is left
	// under-replicated for repair to complete.
	WriteQuorum int
	// VNodes is the ring's virtual nodes per node of default weight (0:
	// DefaultVNodes).
	VNodes int
	// Log records the copies; nil records nothing.
	Log ReplicaLog
	// Logger reports bad copies and degraded writes (nil: slog.Default).
	Logger *slog.Logger
	// OnBadCopy, if set, is called for each copy a read found missing on
	// an owner, unreadable, or corrupt (err of kind NotExist, another
	// kind, or Corrupt): the replication manager's cue to repair it.
	OnBadCopy func(h dfms.Hash, node string, err error)
}

// Cluster is the replicated chunk store: a [dfms.ChunkStore] over the
// chunk stores of several storage nodes, placing each chunk on R nodes of
// the ring.
//
//   - Put writes the R owners in parallel and succeeds once W of them hold
//     the chunk durably; the copies stored are recorded in the ReplicaLog.
//   - Get tries the owners in ring order, then the nodes recorded as
//     holding a copy, then every other node (draining and down ones last),
//     re-hashing what it reads: a missing or corrupt copy is skipped and
//     reported (OnBadCopy), and bad bytes are never returned. A hot chunk
//     read from its first owner costs one ring lookup more than a read
//     from a single store.
//   - Delete removes the chunk from every node that is not down (a down
//     node's copy is left as an orphan for the garbage collector of that
//     node once it is back) and forgets the copies.
//   - Walk lists each chunk once, from the first node in its ring order
//     that holds it; chunks held only by down nodes are not listed.
//
// Membership changes (SetNodes, SetState) swap the ring atomically:
// operations in flight finish on the ring they started with.
type Cluster struct {
	opts    Options
	log     *slog.Logger
	current atomic.Pointer[view]
	mu      sync.Mutex // serialises membership changes
}

// view is one membership: the ring, the stores and R, W for it.
type view struct {
	ring   *Ring
	stores map[string]dfms.ChunkStore
	states map[string]dfms.NodeState
	r, w   int
}

var (
	_ dfms.ChunkStore     = (*Cluster)(nil)
	_ dfms.BatchPutter    = (*Cluster)(nil)
	_ dfms.VerifyingStore = (*Cluster)(nil)
)

// NewCluster returns the replicated store over members. It owns their
// stores from then on (Close closes them). R and W must be possible: at
// least one member, 1 ≤ W ≤ R ≤ members with weight.
func NewCluster(members []Member, opts Options) (*Cluster, error) {
	c := &Cluster{opts: opts, log: opts.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	if err := c.SetNodes(members); err != nil {
		return nil, err
	}
	return c, nil
}

// SetNodes replaces the membership: nodes are added, removed (their stores
// closed), re-weighted or re-zoned. A member whose Store is nil keeps the
// store it had.
func (c *Cluster) SetNodes(members []Member) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setNodes(members)
}

// setNodes is SetNodes with c.mu held.
func (c *Cluster) setNodes(members []Member) error {
	const op dfms.Op = "placement.SetNodes"
	old := c.current.Load()
	nodes := make([]dfms.StorageNode, len(members))
	stores := make(map[string]dfms.ChunkStore, len(members))
	states := make(map[string]dfms.NodeState, len(members))
	weighted := 0
	urls := make(map[string]string, len(members))
	for i, m := range members {
		if other, dup := urls[m.URL]; dup && m.URL != "" {
			// Two ids on one store would count one copy twice, and
			// removing a "surplus" copy from one would delete the other.
			return dfms.E(op, dfms.Invalid, fmt.Errorf("nodes %s and %s have the same chunk store", other, m.ID))
		}
		urls[m.URL] = m.ID
		nodes[i] = m.StorageNode
		if m.Weight > 0 {
			weighted++
		}
		st := m.Store
		if st == nil && old != nil {
			st = old.stores[m.ID]
		}
		if st == nil {
			return dfms.E(op, dfms.Invalid, fmt.Errorf("node %q has no chunk store", m.ID))
		}
		stores[m.ID] = st
		states[m.ID] = m.State
	}
	ring, err := NewRing(nodes, c.opts.VNodes)
	if err != nil {
		return dfms.E(op, dfms.Invalid, err)
	}
	r := c.opts.Replicas
	if r == 0 {
		r = DefaultReplicas(weighted)
	}
	w := c.opts.WriteQuorum
	if w == 0 {
		w = r
	}
	switch {
	case weighted == 0:
		return dfms.Errorf(op, dfms.Invalid, "no storage node with a weight")
	case r < 1 || r > weighted:
		return dfms.E(op, dfms.Invalid, fmt.Errorf("replication factor %d with %d nodes that hold chunks", r, weighted))
	case w < 1 || w > r:
		return dfms.E(op, dfms.Invalid, fmt.Errorf("write quorum %d: want 1 to %d", w, r))
	}
	c.current.Store(&view{ring: ring, stores: stores, states: states, r: r, w: w})
	if old != nil {
		for id, st := range old.stores {
			if stores[id] != st {
				if err := st.Close(); err != nil {
					c.log.Warn("closing a removed node's chunk store", "node", id, "err", err)
				}
			}
		}
	}
	return nil
}

// SetState changes one node's state (the health monitor's verdict, or
// an operator's drain); kind NotExist if there is no such node. It reads
// and replaces the membership in one step, so a concurrent SetNodes is
// not undone.
func (c *Cluster) SetState(id string, state dfms.NodeState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := c.Members()
	for i := range ms {
		if ms[i].ID == id {
			ms[i].State = state
			return c.setNodes(ms)
		}
	}
	return dfms.E("placement.SetState", dfms.NotExist, fmt.Errorf("no storage node %q", id))
}

// Members returns the current members, by id.
func (c *Cluster) Members() []Member {
	v := c.current.Load()
	nodes := v.ring.Nodes()
	ms := make([]Member, len(nodes))
	for i, n := range nodes {
		ms[i] = Member{StorageNode: n, Store: v.stores[n.ID]}
	}
	return ms
}

// Node returns a node's chunk store.
func (c *Cluster) Node(id string) (dfms.ChunkStore, bool) {
	st, ok := c.current.Load().stores[id]
	return st, ok
}

// Owners returns the nodes that should hold h now (R of them, or fewer if
// not enough nodes are placeable).
func (c *Cluster) Owners(h dfms.Hash) []string {
	v := c.current.Load()
	return v.ring.Owners(h, v.r)
}

// VNodes returns the ring's virtual nodes per node of default weight, as
// configured (0: DefaultVNodes), for rings built alongside the cluster's.
func (c *Cluster) VNodes() int { return c.opts.VNodes }

// Replicas returns R, the replication factor.
func (c *Cluster) Replicas() int { return c.current.Load().r }

// WriteQuorum returns W, the copies a write needs.
func (c *Cluster) WriteQuorum() int { return c.current.Load().w }

// Put implements dfms.ChunkStore.
func (c *Cluster) Put(ctx context.Context, h dfms.Hash, data []byte) error {
	const op dfms.Op = "placement.Put"
	v := c.current.Load()
	owners := v.ring.Owners(h, v.r)
	if len(owners) < v.w {
		return dfms.E(op, dfms.Unavailable, fmt.Errorf("%d storage nodes are up, a write needs %d", len(owners), v.w))
	}
	errs := make([]error, len(owners))
	var wg sync.WaitGroup
	for i, id := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = v.stores[id].Put(ctx, h, data)
		}()
	}
	wg.Wait()
	stored := make([]dfms.Replica, 0, len(owners))
	for i, id := range owners {
		if errs[i] == nil {
			stored = append(stored, dfms.Replica{Hash: h, Node: id})
		}
	}
	return c.finishPut(ctx, op, v, stored, len(owners), errs)
}

// finishPut records the copies stored and judges the quorum of one chunk
// (or, for a batch, of each chunk: stored holds copies of several).
func (c *Cluster) finishPut(ctx context.Context, op dfms.Op, v *view, stored []dfms.Replica, want int, errs []error) error {
	c.record(ctx, stored)
	if len(stored) < v.w {
		return dfms.E(op, quorumKind(ctx, errs), fmt.Errorf("%d of %d copies stored, %d needed: %w", len(stored), want, v.w, errors.Join(errs...)))
	}
	if len(stored) < want {
		c.log.Warn("chunk stored on fewer nodes than its owners: left for repair",
			"chunk", stored[0].Hash, "copies", len(stored), "owners", want, "err", errors.Join(errs...))
	}
	return nil
}

// quorumKind is the kind of a write that missed its quorum: the nodes'
// common kind (all refused the input, or the caller's context ended), or
// Unavailable.
func quorumKind(ctx context.Context, errs []error) dfms.ErrorKind {
	if ctx.Err() != nil {
		return dfms.KindOf(ctx.Err())
	}
	kind := dfms.ErrorKind(0)
	for _, err := range errs {
		if err == nil {
			continue
		}
		k := dfms.KindOf(err)
		if kind != 0 && k != kind {
			return dfms.Unavailable
		}
		kind = k
	}
	if kind == 0 || kind == dfms.Other {
		return dfms.Unavailable
	}
	return kind
}

// PutBatch implements dfms.BatchPutter: each node gets its share of the
// chunks in one batch (when its store can take one), all nodes in
// parallel, and each chunk must meet the write quorum.
func (c *Cluster) PutBatch(ctx context.Context, chunks []dfms.ChunkData) error {
	const op dfms.Op = "placement.PutBatch"
	v := c.current.Load()
	perNode := make(map[string][]dfms.ChunkData)
	owners := make([][]string, len(chunks))
	for i, ch := range chunks {
		owners[i] = v.ring.Owners(ch.Hash, v.r)
		if len(owners[i]) < v.w {
			return dfms.E(op, dfms.Unavailable, fmt.Errorf("%d storage nodes are up, a write needs %d", len(owners[i]), v.w))
		}
		for _, id := range owners[i] {
			perNode[id] = append(perNode[id], ch)
		}
	}
	var mu sync.Mutex
	failed := make(map[string]error)
	var wg sync.WaitGroup
	for id, part := range perNode {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := putAll(ctx, v.stores[id], part); err != nil {
				mu.Lock()
				failed[id] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var stored []dfms.Replica
	var short error
	for i, ch := range chunks {
		n := 0
		var errs []error
		for _, id := range owners[i] {
			if err := failed[id]; err != nil {
				errs = append(errs, fmt.Errorf("node %s: %w", id, err))
				continue
			}
			stored = append(stored, dfms.Replica{Hash: ch.Hash, Node: id})
			n++
		}
		if n < v.w && short == nil {
			short = dfms.E(op, quorumKind(ctx, errs), fmt.Errorf("chunk %s: %d of %d copies stored, %d needed: %w", ch.Hash, n, len(owners[i]), v.w, errors.Join(errs...)))
		}
	}
	c.record(ctx, stored)
	if short == nil && len(failed) > 0 {
		c.log.Warn("chunks stored on fewer nodes than their owners: left for repair", "nodes failed", len(failed))
	}
	return short
}

// record records the copies stored. A failure does not fail the write:
// the copies are durable, and the record is a guide that the replication
// manager rebuilds (it finds an owner's unrecorded copy); it is logged.
func (c *Cluster) record(ctx context.Context, stored []dfms.Replica) {
	if len(stored) == 0 || c.opts.Log == nil {
		return
	}
	if err := c.opts.Log.AddReplicas(ctx, stored); err != nil && ctx.Err() == nil {
		c.log.Warn("recording chunk copies failed; the replication manager will find them", "copies", len(stored), "err", err)
	}
}

// putAll stores chunks on one node, in one batch if it can take one.
func putAll(ctx context.Context, st dfms.ChunkStore, chunks []dfms.ChunkData) error {
	if bp, ok := st.(dfms.BatchPutter); ok && len(chunks) > 1 {
		return bp.PutBatch(ctx, chunks)
	}
	for _, ch := range chunks {
		if err := st.Put(ctx, ch.Hash, ch.Data); err != nil {
			return err
		}
	}
	return nil
}

// search visits the nodes that may hold h, most likely first: the owners
// in ring order, then the nodes recorded as holding a copy, then the rest
// of the ring (placeable nodes before draining and down ones). It stops
// when visit returns true.
func (c *Cluster) search(ctx context.Context, v *view, h dfms.Hash, visit func(id string, owner bool) bool) error {
	owners := v.ring.Owners(h, v.r)
	tried := make([]string, 0, len(owners)+2)
	try := func(id string, owner bool) bool {
		if slices.Contains(tried, id) {
			return false
		}
		if _, ok := v.stores[id]; !ok {
			return false
		}
		tried = append(tried, id)
		return visit(id, owner)
	}
	for _, id := range owners {
		if try(id, true) {
			return nil
		}
	}
	if c.opts.Log != nil {
		ids, err := c.opts.Log.ChunkReplicas(ctx, h)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		// A failing record only costs the fallback below its shortcut.
		for _, id := range ids {
			if try(id, false) {
				return nil
			}
		}
	}
	seq := v.ring.Sequence(h)
	for _, late := range []bool{false, true} {
		for _, id := range seq {
			if !v.states[id].Placeable() == late && try(id, false) {
				return nil
			}
		}
	}
	return ctx.Err()
}

// Get implements dfms.ChunkStore. It verifies what it returns: the bytes
// hash to h.
func (c *Cluster) Get(ctx context.Context, h dfms.Hash, buf []byte) ([]byte, error) {
	const op dfms.Op = "placement.Get"
	v := c.current.Load()
	start := len(buf)
	var out []byte
	var found bool
	var f failures
	err := c.search(ctx, v, h, func(id string, owner bool) bool {
		got, err := v.stores[id].Get(ctx, h, buf[:start])
		if err == nil && dfms.Sum(got[start:]) != h {
			err = dfms.E(op, dfms.Corrupt, fmt.Errorf("copy on node %s does not hash to its name", id))
		}
		if err != nil {
			f.add(v, id, owner, err)
			return ctx.Err() != nil
		}
		out, found = got, true
		return true
	})
	if found {
		f.report(c, h, true)
		return out, nil
	}
	f.report(c, h, false)
	return buf[:start], f.verdict(ctx, op, h, err)
}

// VerifiesGet implements dfms.VerifyingStore: Get returns only bytes
// that hash to the chunk's name.
func (c *Cluster) VerifiesGet() bool { return true }

// failures are the copies a read could not use.
type failures struct {
	missing []string // owners without a copy
	bad     []badCopy
	errs    []error // other than NotExist, from nodes that are not down
}

type badCopy struct {
	node string
	err  error
}

func (f *failures) add(v *view, id string, owner bool, err error) {
	switch {
	case dfms.Is(err, dfms.NotExist):
		if owner {
			f.missing = append(f.missing, id)
		}
		return
	case dfms.Is(err, dfms.Corrupt):
		f.bad = append(f.bad, badCopy{id, err})
	}
	// A node that cannot answer (down ones included: they are tried
	// last) may hold the only copy: the chunk is unavailable, not missing.
	f.errs = append(f.errs, fmt.Errorf("node %s: %w", id, err))
}

// report tells OnBadCopy (and the log) about corrupt copies, and, if the
// chunk was found elsewhere, about owners that lacked it.
func (f *failures) report(c *Cluster, h dfms.Hash, found bool) {
	for _, b := range f.bad {
		c.badCopy(h, b.node, b.err)
	}
	if found {
		for _, id := range f.missing {
			c.badCopy(h, id, dfms.E("placement.Get", dfms.NotExist, fmt.Errorf("no copy on owner %s", id)))
		}
	}
}

// verdict is the error of a read that found no good copy.
func (f *failures) verdict(ctx context.Context, op dfms.Op, h dfms.Hash, err error) error {
	switch {
	case err != nil:
		return dfms.E(op, dfms.KindOf(err), err)
	case ctx.Err() != nil:
		return dfms.E(op, dfms.KindOf(ctx.Err()), ctx.Err())
	case len(f.bad) > 0:
		return dfms.E(op, dfms.Corrupt, fmt.Errorf("chunk %s: no good copy: %w", h, errors.Join(f.errs...)))
	case len(f.errs) > 0:
		return dfms.E(op, dfms.Unavailable, fmt.Errorf("chunk %s: %w", h, errors.Join(f.errs...)))
	}
	return dfms.E(op, dfms.NotExist, fmt.Errorf("chunk %s is on no node", h))
}

// badCopy reports a copy that a read could not use.
func (c *Cluster) badCopy(h dfms.Hash, node string, err error) {
	level := slog.LevelWarn
	if dfms.Is(err, dfms.NotExist) {
		level = slog.LevelInfo
	}
	c.log.Log(context.Background(), level, "chunk copy unusable", "chunk", h, "node", node, "err", err)
	if c.opts.OnBadCopy != nil {
		c.opts.OnBadCopy(h, node, err)
	}
}

// Stat implements dfms.ChunkStore: the size of the first copy found.
func (c *Cluster) Stat(ctx context.Context, h dfms.Hash) (int64, error) {
	v := c.current.Load()
	var size int64 = -1
	var f failures
	err := c.search(ctx, v, h, func(id string, _ bool) bool {
		n, err := v.stores[id].Stat(ctx, h)
		if err != nil {
			f.add(v, id, false, err)
			return ctx.Err() != nil
		}
		size = n
		return true
	})
	if size >= 0 {
		return size, nil
	}
	return 0, f.verdict(ctx, "placement.Stat", h, err)
}

// Delete implements dfms.ChunkStore: every node that is not down deletes
// its copy, in parallel; a node that cannot be reached (kind Unavailable)
// keeps its copy, as a down one does, for the garbage collector to find
// as an orphan once it is back.
func (c *Cluster) Delete(ctx context.Context, h dfms.Hash) error {
	const op dfms.Op = "placement.Delete"
	v := c.current.Load()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	var gone []dfms.Replica
	var mu sync.Mutex
	for id, st := range v.stores {
		if v.states[id] == dfms.NodeDown {
			continue
		}
		g.Go(func() error {
			if err := st.Delete(gctx, h); err != nil {
				if dfms.Is(err, dfms.Unavailable) && ctx.Err() == nil {
					// An unreachable node keeps its copy, an orphan once
					// the chunk's row is gone, collected when it is back:
					// one node must not hold up every deletion.
					c.log.Warn("a chunk copy left on an unreachable node", "chunk", h, "node", id, "err", err)
					return nil
				}
				return fmt.Errorf("node %s: %w", id, err)
			}
			mu.Lock()
			gone = append(gone, dfms.Replica{Hash: h, Node: id})
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	if c.opts.Log != nil && len(gone) > 0 {
		if lerr := c.opts.Log.DropReplicas(ctx, gone); lerr != nil && err == nil {
			err = fmt.Errorf("forgetting copies: %w", lerr)
		}
	}
	if err != nil {
		return dfms.E(op, dfms.KindOf(err), err)
	}
	return nil
}

// Walk implements dfms.ChunkStore. A chunk is listed from the first node
// in its ring order that holds it: a copy on a node is listed unless a
// node before it in that order also has one (which costs a Stat of those
// nodes, none for a chunk's first owner). Down nodes are skipped.
func (c *Cluster) Walk(ctx context.Context, fn func(dfms.ChunkInfo) error) error {
	const op dfms.Op = "placement.Walk"
	v := c.current.Load()
	ids := make([]string, 0, len(v.stores))
	for id := range v.stores {
		if v.states[id] != dfms.NodeDown {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		err := v.stores[id].Walk(ctx, func(ci dfms.ChunkInfo) error {
			first, err := c.firstHolder(ctx, v, ci.Hash, id)
			if err != nil {
				return err
			}
			if first {
				return fn(ci)
			}
			return nil
		})
		if err != nil {
			if dfms.Is(err, dfms.Unavailable) && ctx.Err() == nil {
				// Chunks only an unreachable node holds are not listed,
				// as a down node's are not.
				c.log.Warn("a storage node left out of a walk", "node", id, "err", err)
				continue
			}
			return dfms.E(op, dfms.KindOf(err), fmt.Errorf("node %s: %w", id, err))
		}
	}
	return nil
}

// firstHolder reports whether node id, which holds h, is the first node
// in h's ring order (among those that are not down) to hold it.
func (c *Cluster) firstHolder(ctx context.Context, v *view, h dfms.Hash, id string) (bool, error) {
	for _, other := range v.ring.Sequence(h) {
		if other == id {
			return true, nil
		}
		st, ok := v.stores[other]
		if !ok || v.states[other] == dfms.NodeDown {
			continue
		}
		_, err := st.Stat(ctx, h)
		switch {
		case err == nil:
			return false, nil
		case dfms.Is(err, dfms.Unavailable) && ctx.Err() == nil:
			// An unreachable node's own walk is skipped: what it holds
			// is listed from the next holder.
		case !dfms.Is(err, dfms.NotExist):
			return false, fmt.Errorf("node %s: %w", other, err)
		}
	}
	// A node of weight 0 is in no ring order: what it holds and no node
	// of the ring does is listed from it.
	return true, nil
}

// RemoveStaleTemp deletes, on every node whose store keeps temporary
// files while it writes (a disk store), those older than cutoff, as the
// garbage collector asks of a single store; a node that cannot be
// reached is skipped. It returns how many it deleted.
func (c *Cluster) RemoveStaleTemp(ctx context.Context, cutoff time.Time) (int, error) {
	return c.staleTemp(ctx, "placement.RemoveStaleTemp", cutoff, func(st dfms.ChunkStore) func(context.Context, time.Time) (int, error) {
		if tr, ok := st.(interface {
			RemoveStaleTemp(context.Context, time.Time) (int, error)
		}); ok {
			return tr.RemoveStaleTemp
		}
		return nil
	})
}

// CountStaleTemp returns how many temporary files RemoveStaleTemp would
// delete, and deletes nothing (a dry run of the garbage collector).
func (c *Cluster) CountStaleTemp(ctx context.Context, cutoff time.Time) (int, error) {
	return c.staleTemp(ctx, "placement.CountStaleTemp", cutoff, func(st dfms.ChunkStore) func(context.Context, time.Time) (int, error) {
		if tr, ok := st.(interface {
			CountStaleTemp(context.Context, time.Time) (int, error)
		}); ok {
			return tr.CountStaleTemp
		}
		return nil
	})
}

// staleTemp runs, on every reachable node whose store has it (per), the
// function per returns, and adds up the counts.
func (c *Cluster) staleTemp(ctx context.Context, op dfms.Op, cutoff time.Time, per func(dfms.ChunkStore) func(context.Context, time.Time) (int, error)) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, dfms.E(op, dfms.KindOf(err), err)
	}
	v := c.current.Load()
	total := 0
	var errs []error
	for id, st := range v.stores {
		fn := per(st)
		if fn == nil || v.states[id] == dfms.NodeDown {
			continue
		}
		n, err := fn(ctx, cutoff)
		total += n
		if err != nil && !dfms.Is(err, dfms.Unavailable) {
			errs = append(errs, fmt.Errorf("node %s: %w", id, err))
		}
	}
	return total, errors.Join(errs...)
}

// Close implements dfms.ChunkStore: it closes every node's store.
func (c *Cluster) Close() error {
	v := c.current.Load()
	var errs []error
	for id, st := range v.stores {
		if err := st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}
