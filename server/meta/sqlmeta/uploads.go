package sqlmeta

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// MaxParts is the highest part number of a multipart upload.
const MaxParts = 10000

// DefaultUploadTTL is how long an idle multipart upload lives.
const DefaultUploadTTL = 24 * time.Hour

// DefaultUploadLifetime is how long a multipart upload lives at most,
// however busy.
const DefaultUploadLifetime = 7 * 24 * time.Hour

const uploadCols = `id, owner_id, parent_id, name, size, part_size, created_at, expires_at, deadline_ns`

func scanUpload(row row) (meta.Upload, error) {
	var u meta.Upload
	var created, expires, deadline int64
	err := row.Scan(&u.ID, &u.Owner, &u.Parent, &u.Name, &u.Size, &u.PartSize, &created, &expires, &deadline)
	u.CreatedAt, u.ExpiresAt, u.Deadline = fromNS(created), fromNS(expires), fromNS(deadline)
	return u, err
}

func (t *tx) upload(ctx context.Context, owner dfms.UserID, id string, lock bool) (meta.Upload, error) {
	q := `SELECT ` + uploadCols + ` FROM multipart_uploads WHERE id = ? AND owner_id = ?`
	if lock {
		q += t.s.d.ForUpdate
	}
	u, err := scanUpload(t.queryRow(ctx, q, id, owner))
	if errors.Is(err, sql.ErrNoRows) {
		return u, dfms.E("", dfms.NotExist, fmt.Errorf("no upload %q", id))
	}
	return u, err
}

// CreateUpload implements meta.Uploads.
func (s *Store) CreateUpload(ctx context.Context, u meta.Upload, maxOpen int) (meta.Upload, error) {
	const op dfms.Op = "meta.CreateUpload"
	if err := dfms.ValidName(u.Name); err != nil {
		return u, dfms.E(op, dfms.Invalid, err)
	}
	if u.PartSize <= 0 || u.Size < 0 {
		return u, dfms.Errorf(op, dfms.Invalid, "part size must be positive and size not negative")
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return u, dfms.E(op, dfms.Other, err)
	}
	u.ID = hex.EncodeToString(b[:])
	var out meta.Upload
	err := s.write(ctx, op, func(t *tx) error {
		if _, err := t.liveDir(ctx, u.Owner, u.Parent, false); err != nil {
			return err
		}
		u.CreatedAt = t.now
		if u.ExpiresAt.IsZero() {
			u.ExpiresAt = t.now.Add(DefaultUploadTTL)
		}
		if u.Deadline.IsZero() {
			u.Deadline = t.now.Add(DefaultUploadLifetime)
			if u.Deadline.Before(u.ExpiresAt) {
				u.Deadline = u.ExpiresAt
			}
		}
		if u.ExpiresAt.After(u.Deadline) {
			u.ExpiresAt = u.Deadline
		}
		if maxOpen > 0 {
			// The owner's row serialises its uploads' creations.
			if _, err := t.lockQuota(ctx, u.Owner); err != nil {
				return err
			}
			var open int
			if err := t.queryRow(ctx, `SELECT COUNT(*) FROM multipart_uploads WHERE owner_id = ? AND expires_at >= ?`, u.Owner, ns(t.now)).Scan(&open); err != nil {
				return err
			}
			if open >= maxOpen {
				return dfms.E(op, dfms.Quota, fmt.Errorf("%d multipart uploads are open, the most allowed; complete or abort one first", open))
			}
		}
		if _, err := t.exec(ctx, `INSERT INTO multipart_uploads (`+uploadCols+`, idle_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Owner, u.Parent, u.Name, u.Size, u.PartSize, ns(u.CreatedAt), ns(u.ExpiresAt), ns(u.Deadline), int64(u.ExpiresAt.Sub(u.CreatedAt))); err != nil {
			return err
		}
		var err error
		out, err = t.upload(ctx, u.Owner, u.ID, false)
		return err
	})
	return out, err
}

// GetUpload implements meta.Uploads.
func (s *Store) GetUpload(ctx context.Context, owner dfms.UserID, id string) (meta.Upload, error) {
	return result(ctx, s.read, "meta.GetUpload", func(t *tx) (meta.Upload, error) {
		return t.upload(ctx, owner, id, false)
	})
}

// PutPart implements meta.Uploads.
func (s *Store) PutPart(ctx context.Context, owner dfms.UserID, id string, n int, size int64, sum dfms.Hash, m dfms.Manifest) error {
	const op dfms.Op = "meta.PutPart"
	if n < 1 || n > MaxParts {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("part number %d is not in 1..%d", n, MaxParts))
	}
	if err := checkManifest(op, &m); err != nil {
		return err
	}
	if m.Size() != size {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("part size %d does not match its manifest (%d)", size, m.Size()))
	}
	blob, _ := m.MarshalBinary()
	return s.write(ctx, op, func(t *tx) error {
		u, err := t.upload(ctx, owner, id, true)
		if err != nil {
			return err
		}
		if u.ExpiresAt.Before(t.now) {
			return dfms.E(op, dfms.NotExist, fmt.Errorf("upload %q expired", id))
		}
		counts := m.Counts()
		if err := t.takeChunks(ctx, counts, sizesOf(&m), nil); err != nil {
			return err
		}
		q, err := t.lockQuota(ctx, owner)
		if err != nil {
			return err
		}
		hashes := sortedHashes(counts)
		if err := t.own(ctx, owner, hashes); err != nil {
			return err
		}
		var old []byte
		var oldSize int64
		err = t.queryRow(ctx, `SELECT manifest, size FROM multipart_parts WHERE upload_id = ? AND number = ?`, id, n).Scan(&old, &oldSize)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			counts := map[dfms.Hash]int64{}
			if _, err := addCounts(counts, old); err != nil {
				return err
			}
			if err := t.releaseChunks(ctx, counts); err != nil {
				return err
			}
			if _, err := t.exec(ctx, `DELETE FROM multipart_parts WHERE upload_id = ? AND number = ?`, id, n); err != nil {
				return err
			}
		}
		// The part's bytes are held in place of its chunks' holds, and
		// of the part it replaces.
		if err := q.releaseHolds(ctx, t, hashes); err != nil {
			return err
		}
		if err := q.admit(op, size-oldSize, fmt.Sprintf("part %d", n)); err != nil {
			return err
		}
		if err := q.addHeld(ctx, t, size-oldSize); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO multipart_parts (upload_id, number, size, sha256, manifest, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, n, size, sum[:], blob, ns(t.now)); err != nil {
			return err
		}
		// Idle expiry: activity pushes the expiry out by the lifetime,
		// never past the deadline.
		_, err = t.exec(ctx, `UPDATE multipart_uploads SET expires_at = CASE WHEN ? + idle_ns < deadline_ns THEN ? + idle_ns ELSE deadline_ns END
			WHERE id = ? AND idle_ns > 0`, ns(t.now), ns(t.now), id)
		return err
	})
}

func (t *tx) parts(ctx context.Context, id string, withManifest bool) ([]meta.Part, error) {
	cols := `number, size, sha256, created_at`
	if withManifest {
		cols += `, manifest`
	}
	rows, err := t.query(ctx, `SELECT `+cols+` FROM multipart_parts WHERE upload_id = ? ORDER BY number`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []meta.Part
	for rows.Next() {
		var p meta.Part
		var sum, blob []byte
		var created int64
		dest := []any{&p.Number, &p.Size, &sum, &created}
		if withManifest {
			dest = append(dest, &blob)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		copy(p.SHA256[:], sum)
		p.CreatedAt = fromNS(created)
		if withManifest {
			p.Manifest = new(dfms.Manifest)
			if err := p.Manifest.UnmarshalBinary(blob); err != nil {
				return nil, err
			}
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ListParts implements meta.Uploads.
func (s *Store) ListParts(ctx context.Context, owner dfms.UserID, id string) ([]meta.Part, error) {
	return s.listParts(ctx, "meta.ListParts", owner, id, false)
}

// PartManifests implements meta.Uploads.
func (s *Store) PartManifests(ctx context.Context, owner dfms.UserID, id string) ([]meta.Part, error) {
	return s.listParts(ctx, "meta.PartManifests", owner, id, true)
}

// listParts returns the parts of the owner's upload id, with their
// manifests if withManifest.
func (s *Store) listParts(ctx context.Context, op dfms.Op, owner dfms.UserID, id string, withManifest bool) ([]meta.Part, error) {
	return result(ctx, s.read, op, func(t *tx) ([]meta.Part, error) {
		if _, err := t.upload(ctx, owner, id, false); err != nil {
			return nil, err
		}
		return t.parts(ctx, id, withManifest)
	})
}

// CompleteUpload implements meta.Uploads.
func (s *Store) CompleteUpload(ctx context.Context, owner dfms.UserID, id string, sum dfms.Hash, mime string, expect *dfms.Manifest) (dfms.Entry, dfms.Version, error) {
	const op dfms.Op = "meta.CompleteUpload"
	var e dfms.Entry
	var v dfms.Version
	err := s.write(ctx, op, func(t *tx) error {
		u, err := t.upload(ctx, owner, id, true)
		if err != nil {
			return err
		}
		if u.ExpiresAt.Before(t.now) {
			return dfms.E(op, dfms.NotExist, fmt.Errorf("upload %q expired", id))
		}
		parts, err := t.parts(ctx, id, true)
		if err != nil {
			return err
		}
		if len(parts) == 0 {
			return dfms.Errorf(op, dfms.Invalid, "the upload has no parts")
		}
		var m dfms.Manifest
		for i, p := range parts {
			if p.Number != i+1 {
				return dfms.E(op, dfms.Invalid, fmt.Errorf("part %d is missing", i+1))
			}
			m.Chunks = append(m.Chunks, p.Manifest.Chunks...)
		}
		if expect != nil && !slices.Equal(expect.Chunks, m.Chunks) {
			return dfms.Errorf(op, dfms.Conflict, "a part changed while the upload was being completed; complete it again")
		}
		if u.Size > 0 && m.Size() != u.Size {
			return dfms.E(op, dfms.Invalid, fmt.Errorf("parts hold %d bytes, the upload declared %d", m.Size(), u.Size))
		}
		blob, _ := m.MarshalBinary()
		// The parts' references move to the version: no count changes;
		// their bytes move from held to used (commit charges the
		// version). The target is locked first, in the order commit
		// locks it and then the owner's row.
		if _, err := t.liveDir(ctx, owner, u.Parent, true); err != nil {
			return err
		}
		if _, _, err := t.lookup(ctx, owner, u.Parent, u.Name, true); err != nil {
			return err
		}
		if err := t.releaseParts(ctx, owner, parts); err != nil {
			return err
		}
		e, v, err = t.commit(ctx, op, meta.CommitRequest{Owner: owner, Parent: u.Parent, Name: u.Name,
			Manifest: m, SHA256: sum, MIME: mime, CreatedBy: owner}, blob)
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM multipart_parts WHERE upload_id = ?`, id); err != nil {
			return err
		}
		_, err = t.exec(ctx, `DELETE FROM multipart_uploads WHERE id = ?`, id)
		return err
	})
	return e, v, err
}

// releaseParts gives the held bytes of an upload's parts back to owner.
func (t *tx) releaseParts(ctx context.Context, owner dfms.UserID, parts []meta.Part) error {
	var n int64
	for _, p := range parts {
		n += p.Size
	}
	if n == 0 {
		return nil
	}
	q, err := t.lockQuota(ctx, owner)
	if err != nil {
		return err
	}
	return q.addHeld(ctx, t, -n)
}

// abortUpload releases an upload's part references and held bytes, and
// removes it.
func (t *tx) abortUpload(ctx context.Context, owner dfms.UserID, id string) error {
	parts, err := t.parts(ctx, id, true)
	if err != nil {
		return err
	}
	counts := map[dfms.Hash]int64{}
	for _, p := range parts {
		for h, n := range p.Manifest.Counts() {
			counts[h] += n
		}
	}
	if err := t.releaseChunks(ctx, counts); err != nil {
		return err
	}
	if err := t.releaseParts(ctx, owner, parts); err != nil {
		return err
	}
	if _, err := t.exec(ctx, `DELETE FROM multipart_parts WHERE upload_id = ?`, id); err != nil {
		return err
	}
	_, err = t.exec(ctx, `DELETE FROM multipart_uploads WHERE id = ?`, id)
	return err
}

// AbortUpload implements meta.Uploads.
func (s *Store) AbortUpload(ctx context.Context, owner dfms.UserID, id string) error {
	return s.write(ctx, "meta.AbortUpload", func(t *tx) error {
		if _, err := t.upload(ctx, owner, id, true); err != nil {
			return err
		}
		return t.abortUpload(ctx, owner, id)
	})
}

// ExpiredUploads implements meta.Uploads.
func (s *Store) ExpiredUploads(ctx context.Context, now time.Time, limit int) ([]meta.Upload, error) {
	var out []meta.Upload
	err := s.read(ctx, "meta.ExpiredUploads", func(t *tx) error {
		out = out[:0]
		rows, err := t.query(ctx, `SELECT `+uploadCols+` FROM multipart_uploads WHERE expires_at < ? ORDER BY expires_at LIMIT ?`, ns(now), limit)
		out, err = scanAll(rows, err, scanUpload)
		return err
	})
	return out, err
}
