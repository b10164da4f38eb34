package files

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// WritePart stores one part of a multipart upload: the body is chunked and
// its missing chunks stored as for Write, and the part takes references on
// its chunks until the upload completes or is aborted.
func (s *Service) WritePart(ctx context.Context, owner dfms.UserID, uploadID string, n int, body io.Reader, maxSize int64) (meta.Part, error) {
	const op dfms.Op = "files.WritePart"
	if _, err := s.uploads.GetUpload(ctx, owner, uploadID); err != nil {
		return meta.Part{}, dfms.E(op, dfms.Other, err)
	}
	if n < 1 || n > 10000 {
		return meta.Part{}, dfms.E(op, dfms.Invalid, fmt.Errorf("part number %d is not in 1..10000", n))
	}
	body = bodyReader{body}
	if maxSize > 0 {
		body = &limitReader{r: body, left: maxSize, kind: dfms.TooLarge, msg: "part exceeds the size limit"}
	}
	// The stream stops where the quota ends (quotaLeft); the store
	// charges the part exactly when it records it.
	quotaLeft, err := s.quotaLeft(ctx, owner)
	if err != nil {
		return meta.Part{}, dfms.E(op, dfms.Other, err)
	}
	if quotaLeft >= 0 {
		body = &limitReader{r: body, left: quotaLeft, kind: dfms.Quota, msg: "storage quota exceeded"}
	}
	var res WriteResult
	m, sum, err := s.ingest(ctx, owner, body, &res)
	if err != nil {
		return meta.Part{}, dfms.E(op, dfms.Other, err)
	}
	if err := s.uploads.PutPart(ctx, owner, uploadID, n, m.Size(), sum, m); err != nil {
		return meta.Part{}, dfms.E(op, dfms.Other, commitError(err))
	}
	return meta.Part{Number: n, Size: m.Size(), SHA256: sum, CreatedAt: time.Now()}, nil
}

// CompleteUpload commits a multipart upload's parts as a new version (at
// most maxSize bytes if maxSize > 0, kind TooLarge otherwise). The
// whole content is read back once (every chunk verified) to compute its
// SHA-256, which a multipart upload cannot know otherwise; what can be
// checked without it (the parts, the size, the target) is checked first,
// so that a completion bound to fail costs no read.
func (s *Service) CompleteUpload(ctx context.Context, owner dfms.UserID, uploadID, mime string, maxSize int64) (dfms.Entry, dfms.Version, error) {
	const op dfms.Op = "files.CompleteUpload"
	up, err := s.uploads.GetUpload(ctx, owner, uploadID)
	if err != nil {
		return dfms.Entry{}, dfms.Version{}, dfms.E(op, dfms.Other, err)
	}
	m, err := s.uploadManifest(ctx, owner, uploadID)
	if err != nil {
		return dfms.Entry{}, dfms.Version{}, dfms.E(op, dfms.Other, err)
	}
	if maxSize > 0 && m.Size() > maxSize {
		return dfms.Entry{}, dfms.Version{}, dfms.E(op, dfms.TooLarge, fmt.Errorf("the parts hold %d bytes; files are limited to %d", m.Size(), maxSize))
	}
	if up.Size > 0 && m.Size() != up.Size {
		return dfms.Entry{}, dfms.Version{}, dfms.E(op, dfms.Invalid, fmt.Errorf("parts hold %d bytes, the upload declared %d", m.Size(), up.Size))
	}
	if err := s.checkTarget(ctx, WriteRequest{Owner: owner, Parent: up.Parent, Name: up.Name}); err != nil {
		return dfms.Entry{}, dfms.Version{}, dfms.E(op, dfms.Other, err)
	}
	if err := s.keepAll(ctx, &m); err != nil {
		return dfms.Entry{}, dfms.Version{}, dfms.E(op, dfms.Other, err)
	}
	h := sha256.New()
	if _, err := s.ReadRange(ctx, dfms.Version{Manifest: &m}, 0, -1, h); err != nil {
		return dfms.Entry{}, dfms.Version{}, dfms.E(op, dfms.Other, err)
	}
	var sum dfms.Hash
	h.Sum(sum[:0])
	// The store checks that the parts are still those hashed here: a part
	// replaced meanwhile fails the completion (kind Conflict).
	e, v, err := s.uploads.CompleteUpload(ctx, owner, uploadID, sum, mime, &m)
	if err != nil {
		return e, v, dfms.E(op, dfms.Other, err)
	}
	s.applyRetention(ctx, owner, e.ID)
	return e, v, nil
}

// uploadManifest concatenates the parts' manifests in order. Gaps are left
// for the metadata store to reject.
func (s *Service) uploadManifest(ctx context.Context, owner dfms.UserID, uploadID string) (dfms.Manifest, error) {
	parts, err := s.uploads.PartManifests(ctx, owner, uploadID)
	if err != nil {
		return dfms.Manifest{}, err
	}
	var m dfms.Manifest
	if len(parts) == 0 {
		return m, dfms.Errorf("", dfms.Invalid, "the upload has no parts")
	}
	for i, p := range parts {
		if p.Number != i+1 {
			return m, dfms.E("", dfms.Invalid, fmt.Errorf("part %d is missing", i+1))
		}
		m.Chunks = append(m.Chunks, p.Manifest.Chunks...)
	}
	return m, nil
}
