package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// nodeColumns are the columns scanNode reads.
const nodeColumns = `id, endpoint, weight, zone, state, COALESCE(last_probe, 0), failures, created_at`

func scanNode(r row) (n dfms.StorageNode, err error) {
	var probe, created int64
	var state string
	err = r.Scan(&n.ID, &n.URL, &n.Weight, &n.Zone, &state, &probe, &n.Failures, &created)
	n.State, n.LastProbe, n.CreatedAt = dfms.NodeState(state), fromNS(probe), fromNS(created)
	return n, err
}

// node reads node id in t; kind NotExist if there is none.
func (t *tx) node(ctx context.Context, op dfms.Op, id string) (dfms.StorageNode, error) {
	n, err := scanNode(t.queryRow(ctx, `SELECT `+nodeColumns+` FROM storage_nodes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return n, dfms.E(op, dfms.NotExist, fmt.Errorf("no storage node %q", id))
	}
	return n, err
}

// checkNew checks n, a node to register, and gives it its initial state.
func checkNew(op dfms.Op, n dfms.StorageNode) (dfms.StorageNode, error) {
	if err := n.Check(); err != nil {
		return n, dfms.E(op, dfms.Invalid, err)
	}
	if n.State == "" {
		n.State = dfms.NodeUp
	}
	return n, nil
}

// PutNode implements meta.Nodes.
func (s *Store) PutNode(ctx context.Context, n dfms.StorageNode) error {
	const op dfms.Op = "meta.PutNode"
	n, err := checkNew(op, n)
	if err != nil {
		return err
	}
	return s.write(ctx, op, func(t *tx) error {
		if err := t.urlFree(ctx, op, n.ID, n.URL); err != nil {
			return err
		}
		old, err := t.node(ctx, op, n.ID)
		typ := dfms.EventNodeChanged
		switch {
		case dfms.Is(err, dfms.NotExist):
			typ = dfms.EventNodeAdded
		case err != nil:
			return err
		case old.URL == n.URL && old.Weight == n.Weight && old.Zone == n.Zone:
			return nil // as it is: no change, no event
		}
		if _, err := t.exec(ctx, `INSERT INTO storage_nodes (id, endpoint, weight, zone, state, failures, created_at) VALUES (?, ?, ?, ?, ?, 0, ?)
			ON CONFLICT (id) DO UPDATE SET endpoint = excluded.endpoint, weight = excluded.weight, zone = excluded.zone`,
			n.ID, n.URL, n.Weight, n.Zone, string(n.State), ns(t.now)); err != nil {
			return err
		}
		return t.nodeEvent(typ, dfms.NodeEvent{ID: n.ID})
	})
}

// urlFree fails with kind Exist if a node other than id has the chunk
// store url: two ids on one store would count one copy twice, and
// removing a "surplus" copy from one would delete the other's.
func (t *tx) urlFree(ctx context.Context, op dfms.Op, id, url string) error {
	var other string
	err := t.queryRow(ctx, `SELECT id FROM storage_nodes WHERE endpoint = ? AND id <> ?`, url, id).Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return dfms.E(op, dfms.Exist, fmt.Errorf("storage node %q has that chunk store already", other))
}

// AddNode implements meta.Nodes.
func (s *Store) AddNode(ctx context.Context, n dfms.StorageNode) error {
	const op dfms.Op = "meta.AddNode"
	n, err := checkNew(op, n)
	if err != nil {
		return err
	}
	return s.write(ctx, op, func(t *tx) error {
		if err := t.urlFree(ctx, op, n.ID, n.URL); err != nil {
			return err
		}
		if err := t.execOne(ctx, dfms.E(op, dfms.Exist, fmt.Errorf("storage node %q exists", n.ID)),
			`INSERT INTO storage_nodes (id, endpoint, weight, zone, state, failures, created_at) VALUES (?, ?, ?, ?, ?, 0, ?)
			ON CONFLICT (id) DO NOTHING`,
			n.ID, n.URL, n.Weight, n.Zone, string(n.State), ns(t.now)); err != nil {
			return err
		}
		return t.nodeEvent(dfms.EventNodeAdded, dfms.NodeEvent{ID: n.ID, State: n.State})
	})
}

// UpdateNode implements meta.Nodes.
func (s *Store) UpdateNode(ctx context.Context, id string, c meta.NodeChange) (dfms.StorageNode, error) {
	const op dfms.Op = "meta.UpdateNode"
	return result(ctx, s.write, op, func(t *tx) (dfms.StorageNode, error) {
		n, err := t.node(ctx, op, id)
		if err != nil {
			return n, err
		}
		if c.URL != nil {
			n.URL = *c.URL
		}
		if c.Weight != nil {
			n.Weight = *c.Weight
		}
		if c.Zone != nil {
			n.Zone = *c.Zone
		}
		if err := n.Check(); err != nil {
			return n, dfms.E(op, dfms.Invalid, err)
		}
		if err := t.urlFree(ctx, op, id, n.URL); err != nil {
			return n, err
		}
		if _, err = t.exec(ctx, `UPDATE storage_nodes SET endpoint = ?, weight = ?, zone = ? WHERE id = ?`, n.URL, n.Weight, n.Zone, id); err != nil {
			return n, err
		}
		return n, t.nodeEvent(dfms.EventNodeChanged, dfms.NodeEvent{ID: id, State: n.State})
	})
}

// SetNodeDraining implements meta.Nodes.
func (s *Store) SetNodeDraining(ctx context.Context, id string, drain bool) (dfms.StorageNode, error) {
	const op dfms.Op = "meta.SetNodeDraining"
	return result(ctx, s.write, op, func(t *tx) (dfms.StorageNode, error) {
		var err error
		if drain {
			_, err = t.exec(ctx, `UPDATE storage_nodes SET state = 'draining' WHERE id = ?`, id)
		} else {
			// Back to the monitor: up if the last probe passed.
			_, err = t.exec(ctx, `UPDATE storage_nodes SET state = CASE WHEN failures = 0 THEN 'up' ELSE 'suspect' END
				WHERE id = ? AND state = 'draining'`, id)
		}
		if err != nil {
			return dfms.StorageNode{}, err
		}
		n, err := t.node(ctx, op, id)
		if err != nil {
			return n, err
		}
		return n, t.nodeEvent(dfms.EventNodeChanged, dfms.NodeEvent{ID: id, State: n.State})
	})
}

// RemoveNode implements meta.Nodes.
func (s *Store) RemoveNode(ctx context.Context, id string) error {
	const op dfms.Op = "meta.RemoveNode"
	return s.write(ctx, op, func(t *tx) error {
		n, err := t.node(ctx, op, id)
		if err != nil {
			return err
		}
		if n.State != dfms.NodeDraining {
			return dfms.E(op, dfms.Conflict, fmt.Errorf("storage node %s is %s: drain it first", id, n.State))
		}
		var copies int64
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM chunk_replicas WHERE node_id = ?`, id).Scan(&copies); err != nil {
			return err
		}
		if copies > 0 {
			return dfms.E(op, dfms.Conflict, fmt.Errorf("storage node %s still holds %d chunk copies: it can be removed once they have moved to other nodes", id, copies))
		}
		// The conditions again, in the statement: the row is deleted only
		// as it was read.
		if err := t.execOne(ctx, dfms.E(op, dfms.Conflict, fmt.Errorf("storage node %s changed while it was being removed", id)),
			`DELETE FROM storage_nodes WHERE id = ? AND state = 'draining' AND NOT EXISTS (SELECT 1 FROM chunk_replicas WHERE node_id = ?)`,
			id, id); err != nil {
			return err
		}
		return t.nodeEvent(dfms.EventNodeRemoved, dfms.NodeEvent{ID: id})
	})
}

// ListNodes implements meta.Nodes.
func (s *Store) ListNodes(ctx context.Context) ([]dfms.StorageNode, error) {
	var out []dfms.StorageNode
	err := s.read(ctx, "meta.ListNodes", func(t *tx) error {
		rows, err := t.query(ctx, `SELECT `+nodeColumns+` FROM storage_nodes ORDER BY id`)
		out, err = scanAll(rows, err, scanNode)
		return err
	})
	return out, err
}

// SetNodeState implements meta.Nodes.
func (s *Store) SetNodeState(ctx context.Context, id string, state dfms.NodeState, failures int, probe time.Time) (dfms.NodeState, error) {
	const op dfms.Op = "meta.SetNodeState"
	if !state.Valid() {
		return "", dfms.E(op, dfms.Invalid, fmt.Errorf("unknown node state %q", state))
	}
	return result(ctx, s.write, op, func(t *tx) (dfms.NodeState, error) {
		// Draining is the operator's: never overwritten, never set here.
		notFound := dfms.E(op, dfms.NotExist, fmt.Errorf("no storage node %q", id))
		var before string
		err := t.queryRow(ctx, `SELECT state FROM storage_nodes WHERE id = ?`, id).Scan(&before)
		if errors.Is(err, sql.ErrNoRows) {
			return "", notFound
		} else if err != nil {
			return "", err
		}
		if state == dfms.NodeDraining {
			err = t.execOne(ctx, notFound, `UPDATE storage_nodes SET failures = ?, last_probe = ? WHERE id = ?`, failures, nullNS(probe), id)
		} else {
			err = t.execOne(ctx, notFound, `UPDATE storage_nodes SET state = CASE WHEN state = 'draining' THEN state ELSE ? END,
				failures = ?, last_probe = ? WHERE id = ?`, string(state), failures, nullNS(probe), id)
		}
		if err != nil {
			return "", err
		}
		var got string
		if err := t.queryRow(ctx, `SELECT state FROM storage_nodes WHERE id = ?`, id).Scan(&got); err != nil {
			return "", err
		}
		if got != before {
			err = t.nodeEvent(dfms.EventNodeState, dfms.NodeEvent{ID: id, State: dfms.NodeState(got), Previous: dfms.NodeState(before)})
		}
		return dfms.NodeState(got), err
	})
}
