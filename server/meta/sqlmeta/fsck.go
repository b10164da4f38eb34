package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// This file is the consistency check's side of the store (meta.Checker):
// read-only pages over the tables, and the one repair, RecountRefs.

var _ meta.Checker = (*Store)(nil)

// CheckVersions implements meta.Checker.
func (s *Store) CheckVersions(ctx context.Context, after int64, limit int) ([]meta.CheckedManifest, error) {
	const op dfms.Op = "meta.CheckVersions"
	if limit <= 0 {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("limit %d: want at least 1", limit))
	}
	return result(ctx, s.read, op, func(t *tx) ([]meta.CheckedManifest, error) {
		rows, err := t.query(ctx, `SELECT v.id, v.entry_id, e.owner_id, v.manifest FROM versions v JOIN entries e ON e.id = v.entry_id
			WHERE v.id > ? ORDER BY v.id LIMIT ?`, after, limit)
		return scanAll(rows, err, func(r row) (meta.CheckedManifest, error) {
			var m meta.CheckedManifest
			var blob []byte
			if err := r.Scan(&m.Version, &m.Entry, &m.Owner, &blob); err != nil {
				return m, err
			}
			if err := m.Manifest.UnmarshalBinary(blob); err != nil {
				return m, fmt.Errorf("version %d: %w", m.Version, err)
			}
			return m, nil
		})
	})
}

// CheckParts implements meta.Checker.
func (s *Store) CheckParts(ctx context.Context, after meta.PartKey, limit int) ([]meta.CheckedManifest, error) {
	const op dfms.Op = "meta.CheckParts"
	if limit <= 0 {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("limit %d: want at least 1", limit))
	}
	return result(ctx, s.read, op, func(t *tx) ([]meta.CheckedManifest, error) {
		rows, err := t.query(ctx, `SELECT p.upload_id, p.number, u.parent_id, u.owner_id, p.manifest
			FROM multipart_parts p JOIN multipart_uploads u ON u.id = p.upload_id
			WHERE p.upload_id `+s.d.Collate+` > ? OR (p.upload_id = ? AND p.number > ?)
			ORDER BY p.upload_id `+s.d.Collate+`, p.number LIMIT ?`, after.Upload, after.Upload, after.Number, limit)
		return scanAll(rows, err, func(r row) (meta.CheckedManifest, error) {
			var m meta.CheckedManifest
			var blob []byte
			if err := r.Scan(&m.Upload, &m.Part, &m.Entry, &m.Owner, &blob); err != nil {
				return m, err
			}
			if err := m.Manifest.UnmarshalBinary(blob); err != nil {
				return m, fmt.Errorf("upload %s part %d: %w", m.Upload, m.Part, err)
			}
			return m, nil
		})
	})
}

// CheckChunks implements meta.Checker.
func (s *Store) CheckChunks(ctx context.Context, from dfms.Hash, limit int) ([]meta.ChunkRecord, error) {
	const op dfms.Op = "meta.CheckChunks"
	if limit <= 0 {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("limit %d: want at least 1", limit))
	}
	return result(ctx, s.read, op, func(t *tx) ([]meta.ChunkRecord, error) {
		var out []meta.ChunkRecord
		rows, err := t.query(ctx, `SELECT c.hash, c.size, c.refs, c.pending, c.deleting, COALESCE(c.zero_since, 0), c.created_at, r.node_id FROM
			(SELECT * FROM chunks WHERE hash >= ? ORDER BY hash LIMIT ?) c
			LEFT JOIN chunk_replicas r ON r.hash = c.hash ORDER BY c.hash, r.node_id`, from[:], limit)
		err = eachRow(rows, err, func(r row) error {
			var h []byte
			var c meta.Chunk
			var zero, created int64
			var node sql.NullString
			if err := r.Scan(&h, &c.Size, &c.Refs, &c.Pending, &c.Deleting, &zero, &created, &node); err != nil {
				return err
			}
			if len(h) != len(dfms.Hash{}) {
				return fmt.Errorf("chunk row with a hash of %d bytes", len(h))
			}
			c.Hash = dfms.Hash(h)
			c.ZeroSince, c.CreatedAt = fromNS(zero), fromNS(created)
			if len(out) == 0 || out[len(out)-1].Hash != c.Hash {
				out = append(out, meta.ChunkRecord{Chunk: c})
			}
			if node.Valid {
				last := &out[len(out)-1]
				last.Nodes = append(last.Nodes, node.String)
			}
			return nil
		})
		return out, err
	})
}

// LookupChunks implements meta.Checker.
func (s *Store) LookupChunks(ctx context.Context, hashes []dfms.Hash) ([]meta.Chunk, error) {
	return result(ctx, s.read, "meta.LookupChunks", func(t *tx) ([]meta.Chunk, error) {
		var out []meta.Chunk
		for part := range slices.Chunk(hashes, batch) {
			args := make([]any, len(part))
			for i := range part {
				args[i] = part[i][:]
			}
			rows, err := t.query(ctx, `SELECT `+chunkCols+` FROM chunks WHERE hash IN (?`+strings.Repeat(",?", len(part)-1)+`)`, args...)
			cs, err := scanAll(rows, err, scanChunk)
			if err != nil {
				return nil, err
			}
			out = append(out, cs...)
		}
		return out, nil
	})
}

// DanglingEntries implements meta.Checker.
func (s *Store) DanglingEntries(ctx context.Context, after dfms.EntryID, limit int) ([]meta.DanglingEntry, error) {
	const op dfms.Op = "meta.DanglingEntries"
	if limit <= 0 {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("limit %d: want at least 1", limit))
	}
	return result(ctx, s.read, op, func(t *tx) ([]meta.DanglingEntry, error) {
		rows, err := t.query(ctx, `SELECT e.id, e.owner_id, e.cur_version_id, e.deleted_at IS NOT NULL FROM entries e
			WHERE e.id > ? AND e.kind = ? AND e.cur_version_id <> 0
				AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.id = e.cur_version_id)
			ORDER BY e.id LIMIT ?`, after, dfms.KindFile, limit)
		return scanAll(rows, err, func(r row) (meta.DanglingEntry, error) {
			var d meta.DanglingEntry
			err := r.Scan(&d.Entry, &d.Owner, &d.VersionID, &d.Trashed)
			return d, err
		})
	})
}

// maxDepth bounds the walks of PlaceOf (a history's files, a path's
// directories), which a consistent tree never comes near.
const maxDepth = 4096

// PlaceOf implements meta.Checker.
func (s *Store) PlaceOf(ctx context.Context, id dfms.EntryID) (meta.Place, error) {
	const op dfms.Op = "meta.PlaceOf"
	return result(ctx, s.read, op, func(t *tx) (meta.Place, error) {
		var p meta.Place
		// The file that shows id's versions: the last of the files that
		// took a name over the one before and continued its history.
		head := id
		for range maxDepth {
			var next dfms.EntryID
			err := t.queryRow(ctx, `SELECT id FROM entries WHERE hist_prev = ?`, head).Scan(&next)
			if errors.Is(err, sql.ErrNoRows) {
				break
			}
			if err != nil {
				return p, err
			}
			head = next
		}
		rows, err := t.query(ctx, `WITH RECURSIVE up(id, parent_id, name, owner_id, deleted, depth) AS (
				SELECT id, parent_id, name, owner_id, deleted_at IS NOT NULL, 0 FROM entries WHERE id = ?
				UNION ALL
				SELECT e.id, e.parent_id, e.name, e.owner_id, e.deleted_at IS NOT NULL, up.depth + 1 FROM entries e JOIN up ON e.id = up.parent_id
					WHERE up.depth < ?
			) SELECT name, owner_id, deleted FROM up ORDER BY depth DESC`, head, maxDepth)
		var names []string
		err = eachRow(rows, err, func(r row) error {
			var name string
			var deleted bool
			if err := r.Scan(&name, &p.Owner, &deleted); err != nil {
				return err
			}
			p.Trashed = p.Trashed || deleted
			if name != "" {
				names = append(names, name)
			}
			return nil
		})
		if err != nil {
			return p, err
		}
		if p.Owner == 0 {
			return p, dfms.E(op, dfms.NotExist, fmt.Errorf("entry %d", id))
		}
		p.Path = "/" + strings.Join(names, "/")
		return p, nil
	})
}

// RecountRefs implements meta.Checker. Every manifest is read in the
// transaction (the references to a chunk are not indexed): it costs a
// scan of the versions and parts, which is why a check confirms its
// suspects in batches rather than one by one. The transaction is a
// write one even without apply, so that on PostgreSQL (serializable) the
// manifests and the counts are read from one snapshot.
func (s *Store) RecountRefs(ctx context.Context, hashes []dfms.Hash, apply bool) ([]meta.Recount, error) {
	const op dfms.Op = "meta.RecountRefs"
	if len(hashes) > meta.MaxRecount {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("%d chunks: at most %d at once", len(hashes), meta.MaxRecount))
	}
	want := make(map[dfms.Hash]int64, len(hashes))
	for _, h := range hashes {
		want[h] = 0
	}
	return result(ctx, s.write, op, func(t *tx) ([]meta.Recount, error) {
		counts := make(map[dfms.Hash]int64, len(want))
		for _, q := range []string{`SELECT manifest FROM versions`, `SELECT manifest FROM multipart_parts`} {
			rows, err := t.query(ctx, q)
			err = eachRow(rows, err, func(r row) error {
				var blob []byte
				if err := r.Scan(&blob); err != nil {
					return err
				}
				var m dfms.Manifest
				if err := m.UnmarshalBinary(blob); err != nil {
					return err
				}
				for _, c := range m.Chunks {
					if _, ok := want[c.Hash]; ok && !c.IsHole() {
						counts[c.Hash]++
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
		out := make([]meta.Recount, 0, len(want))
		// In hash order: rows are always locked in one order.
		for _, h := range sortedHashes(want) {
			rc := meta.Recount{Hash: h, Counted: counts[h]}
			err := t.queryRow(ctx, `SELECT refs, pending, deleting FROM chunks WHERE hash = ?`, h[:]).Scan(&rc.Recorded, &rc.Pending, &rc.Deleting)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return nil, err
			default:
				rc.Found = true
			}
			if apply && rc.Found && !rc.Pending && !rc.Deleting && rc.Recorded != rc.Counted {
				n, err := t.affected(ctx, `UPDATE chunks SET refs = ?,
					zero_since = CASE WHEN ? = 0 THEN CAST(? AS BIGINT) ELSE NULL END
					WHERE hash = ? AND deleting = ? AND pending = ?`, rc.Counted, rc.Counted, ns(t.now), h[:], false, false)
				if err != nil {
					return nil, err
				}
				rc.Set = n == 1
			}
			out = append(out, rc)
		}
		return out, nil
	})
}
