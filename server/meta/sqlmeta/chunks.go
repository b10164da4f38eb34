package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// batch is the number of hashes per IN (…) query: well under SQLite's and
// PostgreSQL's parameter limits.
const batch = 500

// MissingChunks implements meta.Chunks.
func (s *Store) MissingChunks(ctx context.Context, hashes []dfms.Hash) ([]dfms.Hash, error) {
	const op dfms.Op = "meta.MissingChunks"
	return result(ctx, s.read, op, func(t *tx) ([]dfms.Hash, error) {
		return t.unusable(ctx, op, hashes, `SELECT hash, deleting, pending FROM chunks WHERE hash IN (`)
	})
}

// UnownedChunks implements meta.Chunks.
func (s *Store) UnownedChunks(ctx context.Context, owner dfms.UserID, hashes []dfms.Hash) ([]dfms.Hash, error) {
	const op dfms.Op = "meta.UnownedChunks"
	return result(ctx, s.read, op, func(t *tx) ([]dfms.Hash, error) {
		return t.unusable(ctx, op, hashes, `SELECT c.hash, c.deleting, c.pending FROM chunks c JOIN chunk_owners o ON o.hash = c.hash AND o.user_id = ?
				WHERE c.pending = ? AND c.hash IN (`, owner, false)
	})
}

// unusable returns the hashes, in order and once each, that query does not
// find stored: it selects the hash, deleting and pending columns of the
// chunks it finds among a batch of hashes, and ends in "IN (", which the
// batch's parameters complete; they follow args. A chunk that is being
// deleted fails with kind Conflict: the caller should ask again shortly.
func (t *tx) unusable(ctx context.Context, op dfms.Op, hashes []dfms.Hash, query string, args ...any) ([]dfms.Hash, error) {
	usable := make(map[dfms.Hash]bool, len(hashes))
	for part := range slices.Chunk(hashes, batch) {
		a := make([]any, 0, len(args)+len(part))
		a = append(a, args...)
		for i := range part {
			a = append(a, part[i][:])
		}
		rows, err := t.query(ctx, query+`?`+strings.Repeat(",?", len(part)-1)+`)`, a...)
		err = eachRow(rows, err, func(r row) error {
			var b []byte
			var deleting, pending bool
			if err := r.Scan(&b, &deleting, &pending); err != nil {
				return err
			}
			var h dfms.Hash
			copy(h[:], b)
			if deleting {
				return dfms.E(op, dfms.Conflict, fmt.Errorf("chunk %s is being deleted; ask again shortly", h))
			}
			usable[h] = !pending
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return without(hashes, usable), nil
}

// OwnChunks implements meta.Chunks.
func (s *Store) OwnChunks(ctx context.Context, owner dfms.UserID, hashes []dfms.Hash) error {
	return s.write(ctx, "meta.OwnChunks", func(t *tx) error { return t.own(ctx, owner, hashes) })
}

// own records possession of hashes by owner, for those that have a row
// not being deleted: possession is of stored bytes, and goes with them
// (FinishDelete).
func (t *tx) own(ctx context.Context, owner dfms.UserID, hashes []dfms.Hash) error {
	set := make(map[dfms.Hash]int64, len(hashes))
	for _, h := range hashes {
		set[h] = 0
	}
	// Many rows per statement, inserted in hash order (so that concurrent
	// writers on PostgreSQL take the rows' locks in one order).
	for part := range slices.Chunk(sortedHashes(set), batch) {
		args := make([]any, 0, len(part)+2)
		args = append(args, owner)
		for _, h := range part {
			args = append(args, h[:])
		}
		args = append(args, false)
		if _, err := t.exec(ctx, `INSERT INTO chunk_owners (user_id, hash) SELECT ?, hash FROM chunks
			WHERE hash IN (?`+strings.Repeat(",?", len(part)-1)+`) AND deleting = ? ORDER BY hash
			ON CONFLICT DO NOTHING`, args...); err != nil {
			return err
		}
	}
	return nil
}

// refSizes maps each chunk of refs to its size.
func refSizes(refs []dfms.ChunkRef) map[dfms.Hash]int64 {
	sizes := make(map[dfms.Hash]int64, len(refs))
	for _, r := range refs {
		sizes[r.Hash] = int64(r.Size)
	}
	return sizes
}

// ReserveChunks implements meta.Chunks.
func (s *Store) ReserveChunks(ctx context.Context, refs []dfms.ChunkRef) error {
	const op dfms.Op = "meta.ReserveChunks"
	sizes := refSizes(refs)
	return s.write(ctx, op, func(t *tx) error {
		for _, h := range sortedHashes(sizes) {
			if _, err := t.exec(ctx, `INSERT INTO chunks (hash, size, refs, deleting, pending, zero_since, created_at)
				VALUES (?, ?, 0, ?, ?, ?, ?)
				ON CONFLICT (hash) DO UPDATE SET zero_since = CASE WHEN chunks.refs = 0 THEN excluded.zero_since ELSE NULL END
				WHERE chunks.deleting = ?`,
				h[:], sizes[h], false, true, ns(t.now), ns(t.now), false); err != nil {
				return err
			}
			var deleting bool
			if err := t.queryRow(ctx, `SELECT deleting FROM chunks WHERE hash = ?`, h[:]).Scan(&deleting); err != nil {
				return err
			}
			if deleting {
				return dfms.E(op, dfms.Conflict, fmt.Errorf("chunk %s is being deleted; store it again shortly", h))
			}
		}
		return nil
	})
}

// AddChunks implements meta.Chunks.
func (s *Store) AddChunks(ctx context.Context, refs []dfms.ChunkRef) error {
	const op dfms.Op = "meta.AddChunks"
	sizes := refSizes(refs)
	return s.write(ctx, op, func(t *tx) error { return t.addChunks(ctx, op, sizes) })
}

// addChunks marks the reserved chunks of sizes stored (AddChunks).
func (t *tx) addChunks(ctx context.Context, op dfms.Op, sizes map[dfms.Hash]int64) error {
	for _, h := range sortedHashes(sizes) {
		// A reservation becoming stored is a chunk created; a chunk
		// stored again is not.
		n, err := t.affected(ctx, `UPDATE chunks SET pending = ?, zero_since = CASE WHEN refs = 0 THEN CAST(? AS BIGINT) ELSE NULL END
			WHERE hash = ? AND deleting = ? AND pending = ?`, false, ns(t.now), h[:], false, true)
		if err != nil {
			return err
		}
		if n == 1 {
			if err := t.chunkEvent(dfms.EventChunkCreated, h, sizes[h]); err != nil {
				return err
			}
			continue
		}
		if err := t.execOne(ctx, dfms.E(op, dfms.Conflict, fmt.Errorf("chunk %s was not reserved, or is being deleted; store it again", h)),
			`UPDATE chunks SET pending = ?, zero_since = CASE WHEN refs = 0 THEN CAST(? AS BIGINT) ELSE NULL END
			WHERE hash = ? AND deleting = ?`, false, ns(t.now), h[:], false); err != nil {
			return err
		}
	}
	return nil
}

// KeepChunks implements meta.Chunks.
func (s *Store) KeepChunks(ctx context.Context, hashes []dfms.Hash) error {
	const op dfms.Op = "meta.KeepChunks"
	set := make(map[dfms.Hash]int64, len(hashes))
	for _, h := range hashes {
		set[h] = 0
	}
	return s.write(ctx, op, func(t *tx) error {
		for _, h := range sortedHashes(set) {
			if err := t.execOne(ctx, dfms.E(op, dfms.Conflict, fmt.Errorf("chunk %s was collected or is being deleted; store it", h)),
				`UPDATE chunks SET zero_since = CASE WHEN refs = 0 THEN CAST(? AS BIGINT) ELSE NULL END
				WHERE hash = ? AND deleting = ? AND pending = ?`, ns(t.now), h[:], false, false); err != nil {
				return err
			}
		}
		return nil
	})
}

const chunkCols = `hash, size, refs, pending, deleting, COALESCE(zero_since, 0), created_at`

func scanChunk(row row) (meta.Chunk, error) {
	var c meta.Chunk
	var h []byte
	var zero, created int64
	err := row.Scan(&h, &c.Size, &c.Refs, &c.Pending, &c.Deleting, &zero, &created)
	copy(c.Hash[:], h)
	c.ZeroSince, c.CreatedAt = fromNS(zero), fromNS(created)
	return c, err
}

// GetChunk implements meta.Chunks.
func (s *Store) GetChunk(ctx context.Context, h dfms.Hash) (meta.Chunk, error) {
	const op dfms.Op = "meta.GetChunk"
	var c meta.Chunk
	err := s.read(ctx, op, func(t *tx) error {
		var err error
		c, err = scanChunk(t.queryRow(ctx, `SELECT `+chunkCols+` FROM chunks WHERE hash = ?`, h[:]))
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.E(op, dfms.NotExist, fmt.Errorf("chunk %s", h))
		}
		return err
	})
	return c, err
}

// SweepCandidates implements meta.Sweeper. Rows left deleting come first;
// then unreferenced (or stale pending) chunks, oldest first. Each query
// uses its own partial index.
func (s *Store) SweepCandidates(ctx context.Context, cutoff time.Time, limit int) ([]meta.Chunk, error) {
	var out []meta.Chunk
	err := s.read(ctx, "meta.SweepCandidates", func(t *tx) error {
		out = out[:0]
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`SELECT ` + chunkCols + ` FROM chunks WHERE deleting = ? LIMIT ?`, []any{true, limit}},
			{`SELECT ` + chunkCols + ` FROM chunks WHERE zero_since IS NOT NULL AND zero_since < ? AND refs = 0 AND deleting = ?
				ORDER BY zero_since LIMIT ?`, []any{ns(cutoff), false, limit}},
		} {
			if len(out) >= limit {
				break
			}
			q.args[len(q.args)-1] = limit - len(out)
			rows, err := t.query(ctx, q.sql, q.args...)
			cs, err := scanAll(rows, err, scanChunk)
			if err != nil {
				return err
			}
			out = append(out, cs...)
		}
		return nil
	})
	return out, err
}

// BeginDelete implements meta.Sweeper.
func (s *Store) BeginDelete(ctx context.Context, f meta.Fence, h dfms.Hash, cutoff, stale time.Time) (bool, error) {
	const op dfms.Op = "meta.BeginDelete"
	var ok bool
	err := s.write(ctx, op, func(t *tx) error {
		if err := t.fenced(ctx, op, f); err != nil {
			return err
		}
		n, err := t.affected(ctx, `UPDATE chunks SET deleting = ?, deleting_fence = ?, deleting_since = ?
			WHERE hash = ? AND refs = 0 AND (deleting = ? AND (deleting_fence = ? OR deleting_since < ?)
				OR deleting = ? AND zero_since IS NOT NULL AND zero_since < ?)`,
			true, f.Epoch, ns(t.now), h[:], true, f.Epoch, ns(stale), false, ns(cutoff))
		ok = n == 1
		return err
	})
	return ok, err
}

// FinishDelete implements meta.Sweeper. It is not fenced by the lock: the
// holder that marked the row has deleted the bytes, and while its mark
// stood nobody could store them again.
func (s *Store) FinishDelete(ctx context.Context, f meta.Fence, h dfms.Hash) error {
	const op dfms.Op = "meta.FinishDelete"
	return s.write(ctx, op, func(t *tx) error {
		var size int64
		var pending bool
		err := t.queryRow(ctx, `DELETE FROM chunks WHERE hash = ? AND deleting = ? AND deleting_fence = ? RETURNING size, pending`,
			h[:], true, f.Epoch).Scan(&size, &pending)
		if errors.Is(err, sql.ErrNoRows) {
			return dfms.E(op, dfms.Conflict, fmt.Errorf("chunk %s is not being deleted by fence %d", h, f.Epoch))
		} else if err != nil {
			return err
		}
		// Only a chunk that was stored (chunk.created) is announced
		// deleted: not a reservation whose write died, nor an orphan.
		if !pending {
			if err := t.chunkEvent(dfms.EventChunkDeleted, h, size); err != nil {
				return err
			}
		}
		if _, err := t.exec(ctx, `DELETE FROM chunk_replicas WHERE hash = ?`, h[:]); err != nil {
			return err
		}
		// The bytes are gone: so is every user's possession of them, or
		// it would come back when someone stores the same bytes again.
		_, err = t.exec(ctx, `DELETE FROM chunk_owners WHERE hash = ?`, h[:])
		return err
	})
}

// ClaimOrphan implements meta.Sweeper.
func (s *Store) ClaimOrphan(ctx context.Context, f meta.Fence, h dfms.Hash, size int64) (bool, error) {
	const op dfms.Op = "meta.ClaimOrphan"
	var ok bool
	err := s.write(ctx, op, func(t *tx) error {
		if err := t.fenced(ctx, op, f); err != nil {
			return err
		}
		// Pending: its bytes were never recorded as stored.
		n, err := t.affected(ctx, `INSERT INTO chunks (hash, size, refs, deleting, pending, deleting_fence, deleting_since, zero_since, created_at)
			VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING`, h[:], size, true, true, f.Epoch, ns(t.now), ns(t.now), ns(t.now))
		ok = n == 1
		return err
	})
	return ok, err
}
