package sqlmeta

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// AddReplicas implements meta.Replicas.
func (s *Store) AddReplicas(ctx context.Context, rs []dfms.Replica) error {
	if len(rs) == 0 {
		return nil
	}
	// Rows in (hash, node) order, so that concurrent writers on PostgreSQL
	// take their locks in one order.
	rs = slices.Clone(rs)
	slices.SortFunc(rs, compareReplicas)
	rs = slices.CompactFunc(rs, func(a, b dfms.Replica) bool { return compareReplicas(a, b) == 0 })
	return s.write(ctx, "meta.AddReplicas", func(t *tx) error {
		for part := range slices.Chunk(rs, batch) {
			args := make([]any, 0, 3*len(part))
			for _, r := range part {
				args = append(args, r.Hash[:], r.Node, ns(t.now))
			}
			if _, err := t.exec(ctx, `INSERT INTO chunk_replicas (hash, node_id, stored_at) VALUES (?, ?, ?)`+
				strings.Repeat(", (?, ?, ?)", len(part)-1)+
				` ON CONFLICT (hash, node_id) DO UPDATE SET stored_at = excluded.stored_at`, args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// DropReplicas implements meta.Replicas.
func (s *Store) DropReplicas(ctx context.Context, rs []dfms.Replica) error {
	if len(rs) == 0 {
		return nil
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, compareReplicas)
	return s.write(ctx, "meta.DropReplicas", func(t *tx) error {
		for _, r := range rs {
			if _, err := t.exec(ctx, `DELETE FROM chunk_replicas WHERE hash = ? AND node_id = ?`, r.Hash[:], r.Node); err != nil {
				return err
			}
		}
		return nil
	})
}

// ChunkReplicas implements meta.Replicas.
func (s *Store) ChunkReplicas(ctx context.Context, h dfms.Hash) ([]string, error) {
	var out []string
	err := s.read(ctx, "meta.ChunkReplicas", func(t *tx) error {
		rows, err := t.query(ctx, `SELECT node_id FROM chunk_replicas WHERE hash = ? ORDER BY node_id`, h[:])
		out, err = scanAll(rows, err, func(r row) (id string, err error) {
			err = r.Scan(&id)
			return id, err
		})
		return err
	})
	return out, err
}

// NodeUsage implements meta.Replicas.
func (s *Store) NodeUsage(ctx context.Context) (map[string]dfms.NodeUsage, error) {
	out := make(map[string]dfms.NodeUsage)
	err := s.read(ctx, "meta.NodeUsage", func(t *tx) error {
		clear(out)
		rows, err := t.query(ctx, `SELECT r.node_id, COUNT(*), COALESCE(SUM(c.size), 0)
			FROM chunk_replicas r LEFT JOIN chunks c ON c.hash = r.hash GROUP BY r.node_id`)
		return eachRow(rows, err, func(r row) error {
			var id string
			var u dfms.NodeUsage
			err := r.Scan(&id, &u.Chunks, &u.Bytes)
			out[id] = u
			return err
		})
	})
	return out, err
}

func compareReplicas(a, b dfms.Replica) int {
	if c := bytes.Compare(a.Hash[:], b.Hash[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.Node, b.Node)
}

// ChunkCopies implements meta.Replicas.
func (s *Store) ChunkCopies(ctx context.Context, after dfms.Hash, limit int) ([]meta.ChunkCopies, error) {
	var out []meta.ChunkCopies
	err := s.read(ctx, "meta.ChunkCopies", func(t *tx) error {
		out = out[:0]
		rows, err := t.query(ctx, `SELECT c.hash, c.size, r.node_id FROM
			(SELECT hash, size FROM chunks WHERE hash > ? AND pending = ? AND deleting = ? ORDER BY hash LIMIT ?) c
			LEFT JOIN chunk_replicas r ON r.hash = c.hash ORDER BY c.hash, r.node_id`, after[:], false, false, limit)
		return eachRow(rows, err, func(r row) error {
			var h []byte
			var size int64
			var node sql.NullString
			if err := r.Scan(&h, &size, &node); err != nil {
				return err
			}
			if len(h) != len(dfms.Hash{}) {
				return fmt.Errorf("chunk row with a hash of %d bytes", len(h))
			}
			hash := dfms.Hash(h)
			if len(out) == 0 || out[len(out)-1].Hash != hash {
				out = append(out, meta.ChunkCopies{Hash: hash, Size: size})
			}
			if node.Valid {
				last := &out[len(out)-1]
				last.Nodes = append(last.Nodes, node.String)
			}
			return nil
		})
	})
	return out, err
}

// DropSurplusReplica implements meta.Replicas.
func (s *Store) DropSurplusReplica(ctx context.Context, r dfms.Replica, keep int) (bool, error) {
	var dropped bool
	err := s.write(ctx, "meta.DropSurplusReplica", func(t *tx) error {
		dropped = false
		// The chunk's row is the lock: on PostgreSQL the update holds it
		// until the transaction ends, so two managers deciding on copies
		// of one chunk take turns (SQLite has one writer anyway).
		if _, err := t.exec(ctx, `UPDATE chunks SET created_at = created_at WHERE hash = ?`, r.Hash[:]); err != nil {
			return err
		}
		var others int
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM chunk_replicas WHERE hash = ? AND node_id <> ?`, r.Hash[:], r.Node).Scan(&others); err != nil {
			return err
		}
		if others < keep {
			return nil
		}
		n, err := t.affected(ctx, `DELETE FROM chunk_replicas WHERE hash = ? AND node_id = ?`, r.Hash[:], r.Node)
		dropped = n == 1
		return err
	})
	return dropped, err
}
