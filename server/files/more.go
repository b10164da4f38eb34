package files

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Retention says which old versions of a file are deleted after a new one
// is committed. A version other than the current one is deleted when it is
// not among the newest KeepLast, the current one included (if KeepLast > 0),
// and older than KeepFor (if KeepFor > 0); with both zero, every version is
// kept.
type Retention struct {
	KeepLast int
	KeepFor  time.Duration
}

// applyRetention prunes a file's history. Failures are logged, not
// returned: the version the caller committed is safe either way.
func (s *Service) applyRetention(ctx context.Context, owner dfms.UserID, id dfms.EntryID) {
	r := s.opts.Retention
	if r.KeepLast <= 0 && r.KeepFor <= 0 {
		return
	}
	vs, err := s.versions.ListVersions(ctx, owner, id)
	if err != nil {
		slog.Warn("retention: list versions", "entry", id, "err", err)
		return
	}
	now := time.Now()
	for i, v := range vs[:max(len(vs)-1, 0)] { // never the current (last) one
		newer := len(vs) - 1 - i // versions after this one
		if r.KeepLast > 0 && newer < r.KeepLast {
			continue
		}
		if r.KeepFor > 0 && now.Sub(v.CreatedAt) < r.KeepFor {
			continue
		}
		if err := s.versions.DeleteVersion(ctx, owner, id, v.Number); err != nil && !dfms.Is(err, dfms.NotExist) {
			slog.Warn("retention: delete version", "entry", id, "version", v.Number, "err", err)
		}
	}
}

// Copy makes a new file newParent/newName with the content of a file's
// current version, server-side: the chunks gain references, no data is
// copied. An existing target name fails with kind Exist.
func (s *Service) Copy(ctx context.Context, owner dfms.UserID, id, newParent dfms.EntryID, newName string) (meta.Entry, meta.Version, error) {
	const op dfms.Op = "files.Copy"
	src, err := s.Stat(ctx, owner, id)
	if err != nil {
		return src, meta.Version{}, dfms.E(op, dfms.Other, err)
	}
	if src.Kind != dfms.KindFile {
		return src, meta.Version{}, dfms.E(op, dfms.IsDir, fmt.Errorf("only files can be copied; %q is a %s", src.Name, src.Kind))
	}
	v, err := s.OpenVersion(ctx, owner, id, 0)
	if err != nil {
		return src, v, dfms.E(op, dfms.Other, err)
	}
	e, nv, err := s.versions.CommitVersion(ctx, meta.CommitRequest{Owner: owner, Parent: newParent, Name: newName,
		Mode: src.Mode, UID: src.UID, GID: src.GID, Manifest: *v.Manifest, SHA256: v.SHA256, MIME: src.MIME,
		MTime: src.MTime, CreateOnly: true, CreatedBy: owner})
	if err != nil {
		return e, nv, dfms.E(op, dfms.Other, commitError(err))
	}
	return e, nv, nil
}

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
func (s *Service) CompleteUpload(ctx context.Context, owner dfms.UserID, uploadID, mime string, maxSize int64) (meta.Entry, meta.Version, error) {
	const op dfms.Op = "files.CompleteUpload"
	up, err := s.uploads.GetUpload(ctx, owner, uploadID)
	if err != nil {
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Other, err)
	}
	m, err := s.uploadManifest(ctx, owner, uploadID)
	if err != nil {
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Other, err)
	}
	if maxSize > 0 && m.Size() > maxSize {
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.TooLarge, fmt.Errorf("the parts hold %d bytes; files are limited to %d", m.Size(), maxSize))
	}
	if up.Size > 0 && m.Size() != up.Size {
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Invalid, fmt.Errorf("parts hold %d bytes, the upload declared %d", m.Size(), up.Size))
	}
	if err := s.checkTarget(ctx, WriteRequest{Owner: owner, Parent: up.Parent, Name: up.Name}); err != nil {
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Other, err)
	}
	if err := s.keepAll(ctx, &m); err != nil {
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Other, err)
	}
	h := sha256.New()
	if _, err := s.ReadRange(ctx, meta.Version{Manifest: &m}, 0, -1, h); err != nil {
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Other, err)
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

// PutChunk stores one chunk sent by a smart client: the bytes are hashed
// here and must match the name the client gave them (kind Invalid
// otherwise). Sending the bytes proves possession: from then on the owner
// may reference the chunk. It reports whether the owner lacked the chunk
// before (never whether another user had it).
func (s *Service) PutChunk(ctx context.Context, owner dfms.UserID, h dfms.Hash, data []byte) (isNew bool, err error) {
	n, err := s.PutChunks(ctx, owner, []dfms.ChunkData{{Hash: h, Data: data}}, false)
	return n > 0, err
}

// PutChunks stores chunks sent by a smart client in one batch, as
// PutChunk does for one (each must hash to its name, kind Invalid
// otherwise; hashed is for callers in this process that computed the
// hashes from these very bytes, which are then not hashed again). It
// returns how many the owner lacked before.
func (s *Service) PutChunks(ctx context.Context, owner dfms.UserID, cs []dfms.ChunkData, hashed bool) (newChunks int, err error) {
	const op dfms.Op = "files.PutChunks"
	if len(cs) == 0 {
		return 0, nil
	}
	b, hashes, err := s.chunkBatch(op, cs, hashed)
	if err != nil {
		return 0, err
	}
	var res WriteResult
	if err := s.storeBatch(ctx, owner, b, &accounting{res: &res, seen: map[dfms.Hash]bool{}}); err != nil {
		return 0, dfms.E(op, dfms.Other, err)
	}
	if err := s.index.OwnChunks(ctx, owner, hashes); err != nil {
		return 0, dfms.E(op, dfms.Other, err)
	}
	return res.NewChunks, nil
}

// CommitManifest commits a version a smart client assembled from chunks it
// has sent (PutChunk) or committed before. Chunks the owner never sent, or
// that are not stored, fail it with a *meta.MissingChunksError (kind
// Conflict) naming them. The content is read back once to verify the
// client's SHA-256 of the whole file (computed if req.SHA256 is zero); a
// mismatch is kind Invalid and commits nothing. That read costs the whole
// file however small the request: the caller must make the client pay for
// it (the API charges commits by their bytes), and use CommitChunks when
// there is nothing to verify.
func (s *Service) CommitManifest(ctx context.Context, req meta.CommitRequest) (meta.Entry, meta.Version, error) {
	const op dfms.Op = "files.CommitManifest"
	if e, err := s.checkManifest(ctx, req, true); err != nil {
		return e, meta.Version{}, err
	}
	if err := s.checkTarget(ctx, WriteRequest{Owner: req.Owner, Entry: req.Entry, Parent: req.Parent, Name: req.Name, CreateOnly: req.CreateOnly}); err != nil {
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Other, err)
	}
	h := sha256.New()
	if _, err := s.ReadRange(ctx, meta.Version{Manifest: &req.Manifest}, 0, -1, h); err != nil {
		if ws := (*wrongSizeError)(nil); errors.As(err, &ws) {
			return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Invalid, ws) // the client's sizes, not corruption
		}
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Other, err)
	}
	var sum dfms.Hash
	h.Sum(sum[:0])
	if req.SHA256.IsZero() {
		req.SHA256 = sum
	} else if req.SHA256 != sum {
		return meta.Entry{}, meta.Version{}, dfms.E(op, dfms.Invalid, fmt.Errorf("checksum %s does not match the content (%s)", req.SHA256, sum))
	}
	return s.commitChecked(ctx, req)
}

// CommitChunks is CommitManifest without reading the content back: the
// version's SHA-256 is left unknown (zero) and computed when first needed
// (Checksum). The mount commits this way, so that an edit of a large file
// costs the chunks that changed, not a read of the whole file. The file
// and its base are checked by the commit itself.
func (s *Service) CommitChunks(ctx context.Context, req meta.CommitRequest) (meta.Entry, meta.Version, error) {
	return s.commitChunks(ctx, req, true)
}

// CommitOwnChunks is CommitChunks for the mount in this process, which
// acts as the owner and references only chunks it stored itself or read
// from the owner's versions: possession is not asked again (a chunk that
// is not stored still fails the commit).
func (s *Service) CommitOwnChunks(ctx context.Context, req meta.CommitRequest) (meta.Entry, meta.Version, error) {
	return s.commitChunks(ctx, req, false)
}

// chunkBatch checks a client's chunks (sizes; and hashes unless hashed)
// and returns them as a batch with their hashes in order.
func (s *Service) chunkBatch(op dfms.Op, cs []dfms.ChunkData, hashed bool) (*batch, []dfms.Hash, error) {
	b := &batch{}
	hashes := make([]dfms.Hash, len(cs))
	for i, c := range cs {
		if len(c.Data) == 0 || len(c.Data) > s.opts.Chunking.Max {
			return nil, nil, dfms.E(op, dfms.Invalid, fmt.Errorf("a chunk has 1..%d bytes, not %d", s.opts.Chunking.Max, len(c.Data)))
		}
		if !hashed && dfms.Sum(c.Data) != c.Hash {
			return nil, nil, dfms.E(op, dfms.Invalid, fmt.Errorf("the bytes do not hash to %s", c.Hash))
		}
		b.addRef(c.Hash, c.Data)
		hashes[i] = c.Hash
	}
	return b, hashes, nil
}

// CommitOwnChunksStoring is CommitOwnChunks for a commit that brings
// chunks of its own (cs, hashed by the caller in this process): those the
// store lacks are written while the commit's metadata work runs, and the
// commit, which records them stored, is made only once they are durable
// (meta.CommitRequest.Stored). An edit then costs the slower of its chunk
// write and its metadata work, not their sum. Their rows are reserved
// lazily: durable with the commit, or bytes the orphan collector removes.
// It returns how many chunks it stored (the others were stored already).
//
// The commit's transaction waits for the bytes at most storingWait, so
// that a slow chunk store cannot hold the metadata store's locks (all of
// SQLite's writes wait for them): past that it rolls back, waits for the
// bytes outside, and commits again.
func (s *Service) CommitOwnChunksStoring(ctx context.Context, req meta.CommitRequest, cs []dfms.ChunkData) (meta.Entry, meta.Version, int, error) {
	const op dfms.Op = "files.CommitChunks"
	if len(cs) == 0 {
		e, v, err := s.CommitOwnChunks(ctx, req)
		return e, v, 0, err
	}
	if req.Stored != nil || req.Durable != nil {
		return meta.Entry{}, meta.Version{}, 0, dfms.E(op, dfms.Invalid, fmt.Errorf("the request stores chunks already"))
	}
	b, hashes, err := s.chunkBatch(op, cs, true)
	if err != nil {
		return meta.Entry{}, meta.Version{}, 0, err
	}
	if err := s.checkChunks(ctx, req, false, false); err != nil {
		return meta.Entry{}, meta.Version{}, 0, err
	}
	p, err := s.prepareStore(meta.WithLazyDurability(ctx), 0, b, hashes) // the owner's own mount: what the store lacks
	if dfms.Is(err, dfms.Conflict) {
		// GC is deleting one of them: store them the patient way.
		n, err := s.PutChunks(meta.WithLazyDurability(ctx), req.Owner, cs, true)
		if err != nil {
			return meta.Entry{}, meta.Version{}, 0, dfms.E(op, dfms.Other, err)
		}
		e, v, err := s.CommitOwnChunks(ctx, req)
		return e, v, n, err
	}
	if err != nil {
		return meta.Entry{}, meta.Version{}, 0, dfms.E(op, dfms.Other, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.putBytes(ctx, p.puts) }()
	var stored error
	waited := false
	wait := func(limit <-chan time.Time) error {
		if !waited {
			select {
			case stored = <-done:
				waited = true
			case <-limit:
				return errStoreSlow
			}
		}
		return stored
	}
	req.Stored = p.added
	req.Durable = func() error { return wait(time.After(storingWait)) }
	req.SHA256 = dfms.Hash{}
	e, v, err := s.commitChecked(ctx, req)
	if errors.Is(err, errStoreSlow) {
		// Rolled back; the bytes are awaited outside the transaction,
		// and the commit made again (its wait then returns at once).
		if werr := wait(nil); werr == nil {
			e, v, err = s.commitChecked(ctx, req)
		}
	}
	if werr := wait(nil); werr != nil {
		if err == nil || errors.Is(err, errStoreSlow) {
			err = dfms.E(op, dfms.Other, werr)
		}
		return meta.Entry{}, meta.Version{}, 0, err
	}
	p.count(s) // the bytes are stored, whether or not the commit was made
	return e, v, len(p.puts), err
}

// storingWait bounds how long a commit's transaction waits for the bytes
// of the chunks it records (CommitOwnChunksStoring): enough for a local
// disk's write and sync, short enough not to stall other writers long.
const storingWait = 100 * time.Millisecond

var errStoreSlow = errors.New("the chunk store is slow: commit after the chunks are stored")

func (s *Service) commitChunks(ctx context.Context, req meta.CommitRequest, possession bool) (meta.Entry, meta.Version, error) {
	if err := s.checkChunks(ctx, req, possession, false); err != nil {
		return meta.Entry{}, meta.Version{}, err
	}
	req.SHA256 = dfms.Hash{}
	return s.commitChecked(ctx, req)
}

// CommitChunksBatch makes several CommitChunks commits in one metadata
// transaction: a commit that fails (its result's Err) changes nothing and
// does not stop the others. The error returned fails the whole batch.
func (s *Service) CommitChunksBatch(ctx context.Context, reqs []meta.CommitRequest) ([]meta.CommitResult, error) {
	return s.commitChunksBatch(ctx, reqs, true)
}

// CommitOwnChunksBatch is CommitChunksBatch for the mount in this process
// (see CommitOwnChunks).
func (s *Service) CommitOwnChunksBatch(ctx context.Context, reqs []meta.CommitRequest) ([]meta.CommitResult, error) {
	return s.commitChunksBatch(ctx, reqs, false)
}

func (s *Service) commitChunksBatch(ctx context.Context, reqs []meta.CommitRequest, possession bool) ([]meta.CommitResult, error) {
	const op dfms.Op = "files.CommitChunks"
	out := make([]meta.CommitResult, len(reqs))
	var todo []meta.CommitRequest
	var at []int // index in reqs of each of todo
	for i, req := range reqs {
		if err := s.checkChunks(ctx, req, possession, false); err != nil {
			out[i] = meta.CommitResult{Err: err}
			continue
		}
		req.SHA256 = dfms.Hash{}
		todo = append(todo, req)
		at = append(at, i)
	}
	if len(todo) == 0 {
		return out, nil
	}
	res, err := s.versions.CommitVersions(ctx, todo)
	if err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	for j, r := range res {
		if r.Err != nil {
			r.Err = dfms.E(op, dfms.Other, commitError(r.Err))
		} else {
			s.applyRetention(ctx, todo[j].Owner, r.Entry.ID)
		}
		out[at[j]] = r
	}
	return out, nil
}

func (s *Service) commitChecked(ctx context.Context, req meta.CommitRequest) (meta.Entry, meta.Version, error) {
	e, v, err := s.versions.CommitVersion(ctx, req)
	if err != nil {
		return e, v, dfms.E("files.CommitManifest", dfms.Other, commitError(err))
	}
	s.applyRetention(ctx, req.Owner, e.ID)
	return e, v, nil
}

// checkManifest checks what a commit of a client's manifest needs: the
// base, possession of every chunk, and their sizes. With keep it also
// re-arms the chunks' GC grace period, for a commit that reads the content
// back first; the commit itself takes the references atomically (failing
// with Conflict on a chunk GC is deleting), so a prompt commit needs not.
func (s *Service) checkManifest(ctx context.Context, req meta.CommitRequest, keep bool) (meta.Entry, error) {
	const op dfms.Op = "files.CommitManifest"
	// Cheap checks first, so that a stale base or a missing file is
	// reported before the content is read.
	if req.Entry != 0 {
		e, err := s.Stat(ctx, req.Owner, req.Entry)
		if err != nil {
			return meta.Entry{}, dfms.E(op, dfms.Other, err)
		}
		// (A commit with an ID may have been made already, which moved
		// the file on: the metadata store tells, atomically.)
		if req.RequireBase && req.CommitID == "" && e.VersionID != req.Base {
			return e, dfms.E(op, dfms.Conflict, fmt.Errorf("%q is at version %d (id %d), not id %d", e.Name, e.Version, e.VersionID, req.Base))
		}
	}
	return meta.Entry{}, s.checkChunks(ctx, req, true, keep)
}

// checkChunks checks the sizes of a manifest's chunks and, with
// possession, that the owner sent or committed every one; with keep it
// re-arms their grace period (checkManifest).
func (s *Service) checkChunks(ctx context.Context, req meta.CommitRequest, possession, keep bool) error {
	const op dfms.Op = "files.CommitManifest"
	hashes := make([]dfms.Hash, len(req.Manifest.Chunks))
	for i, c := range req.Manifest.Chunks {
		if c.Size == 0 || int(c.Size) > s.opts.Chunking.Max {
			return dfms.E(op, dfms.Invalid, fmt.Errorf("chunk %d has size %d", i, c.Size))
		}
		hashes[i] = c.Hash
	}
	if len(hashes) == 0 {
		return nil
	}
	if possession {
		unowned, err := s.index.UnownedChunks(ctx, req.Owner, hashes)
		if err != nil {
			return dfms.E(op, dfms.Other, err)
		}
		if len(unowned) > 0 {
			return dfms.E(op, dfms.Conflict, &meta.MissingChunksError{Hashes: unowned})
		}
	}
	if keep {
		if err := s.index.KeepChunks(ctx, hashes); err != nil {
			return dfms.E(op, dfms.Other, err)
		}
	}
	// Sizes must match what is stored: CommitVersion checks each chunk's
	// size as it takes its reference (kind Invalid otherwise).
	return nil
}

// Checksum returns the SHA-256 of version v's content, computing and
// recording it if the version was committed without one (CommitChunks).
// v must carry its manifest (OpenVersion).
func (s *Service) Checksum(ctx context.Context, owner dfms.UserID, v *meta.Version) (dfms.Hash, error) {
	if !v.SHA256.IsZero() {
		return v.SHA256, nil
	}
	h := sha256.New()
	if _, err := s.ReadRange(ctx, *v, 0, -1, h); err != nil {
		return dfms.Hash{}, err
	}
	var sum dfms.Hash
	h.Sum(sum[:0])
	if err := s.versions.SetChecksum(ctx, owner, v.ID, sum); err != nil {
		return dfms.Hash{}, err
	}
	v.SHA256 = sum
	return sum, nil
}
