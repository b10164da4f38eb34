package files

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// CommitOptions say how Commit checks a version a client assembled from
// chunks, and what the commit brings with it. The zero value commits a
// smart client's manifest as the API does by default: possession of every
// chunk checked, the content not read back.
type CommitOptions struct {
	// Verify reads the content back once to verify the client's SHA-256
	// of the whole file (computed if req.SHA256 is zero); a mismatch is
	// kind Invalid and commits nothing. That read costs the whole file
	// however small the request: the caller must make the client pay for
	// it (the API charges commits by their bytes), and leave Verify unset
	// when there is nothing to verify.
	//
	// Without Verify the version's SHA-256 is left unknown (zero, whatever
	// req.SHA256 says) and computed when first needed (Checksum), so that
	// an edit of a large file costs the chunks that changed, not a read of
	// the whole file; the file and its base are checked by the commit
	// itself.
	Verify bool
	// Trusted is for the mount in this process, which acts as the owner
	// and references only chunks it stored itself or read from the
	// owner's versions: possession is not asked again (a chunk that is not
	// stored still fails the commit).
	Trusted bool
	// Chunks, only with Trusted and without Verify, are chunks the commit
	// brings (hashed by the caller in this process): those the store
	// lacks are written while the commit's metadata work runs, and the
	// commit, which records them stored, is made only once they are
	// durable (meta.CommitRequest.Stored). An edit then costs the slower
	// of its chunk write and its metadata work, not their sum. Their rows
	// are reserved lazily: durable with the commit, or bytes the orphan
	// collector removes. req must not set Stored or Durable itself.
	//
	// The commit's transaction waits for the bytes at most storingWait,
	// so that a slow chunk store cannot hold the metadata store's locks
	// (all of SQLite's writes wait for them): past that it rolls back,
	// waits for the bytes outside, and commits again.
	Chunks []dfms.ChunkData
}

// Committed is what a Commit made.
type Committed struct {
	Entry   dfms.Entry
	Version dfms.Version
	// Stored is how many of CommitOptions.Chunks the commit wrote (the
	// others were stored already).
	Stored int
}

// Commit commits a version a smart client assembled from chunks it has
// sent (PutChunk) or committed before, as opts say. Chunks the owner never
// sent (unless opts.Trusted), or that are not stored, fail it with a
// *meta.MissingChunksError (kind Conflict) naming them; a chunk given
// another size than it has is kind Invalid. A commit with the CommitID of
// one made already answers that one (meta.CommitRequest.CommitID). The
// history is then pruned (Options.Retention).
func (s *Service) Commit(ctx context.Context, req meta.CommitRequest, opts CommitOptions) (Committed, error) {
	const op dfms.Op = "files.Commit"
	if len(opts.Chunks) > 0 {
		if !opts.Trusted || opts.Verify {
			return Committed{}, dfms.E(op, dfms.Invalid, fmt.Errorf("only a trusted commit without verification brings chunks"))
		}
		return s.commitStoring(ctx, req, opts.Chunks)
	}
	if opts.Verify {
		return s.commitVerified(ctx, req, !opts.Trusted)
	}
	if err := s.checkChunks(ctx, req, !opts.Trusted, false); err != nil {
		return Committed{}, err
	}
	req.SHA256 = dfms.Hash{}
	return s.commitChecked(ctx, req)
}

// CommitBatch makes several commits in one metadata transaction, each as
// Commit would with opts: a commit that fails (its result's Err) changes
// nothing and does not stop the others. The error returned fails the whole
// batch. It is apart from Commit because its answer is one result per
// commit, each with its own error. A batch neither verifies nor brings
// chunks (opts.Verify and opts.Chunks fail it with kind Invalid): it
// commits many small files whose bytes are stored already.
func (s *Service) CommitBatch(ctx context.Context, reqs []meta.CommitRequest, opts CommitOptions) ([]meta.CommitResult, error) {
	const op dfms.Op = "files.CommitBatch"
	if opts.Verify || len(opts.Chunks) > 0 {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("a batch of commits neither verifies nor brings chunks"))
	}
	out := make([]meta.CommitResult, len(reqs))
	var todo []meta.CommitRequest
	var at []int // index in reqs of each of todo
	for i, req := range reqs {
		if err := s.checkChunks(ctx, req, !opts.Trusted, false); err != nil {
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

// commitVerified is Commit with Verify: the content is read back to
// verify or compute its SHA-256 before the commit.
func (s *Service) commitVerified(ctx context.Context, req meta.CommitRequest, possession bool) (Committed, error) {
	const op dfms.Op = "files.Commit"
	if e, err := s.checkManifest(ctx, req, possession); err != nil {
		return Committed{Entry: e}, err
	}
	if err := s.checkTarget(ctx, WriteRequest{Owner: req.Owner, Entry: req.Entry, Parent: req.Parent, Name: req.Name, CreateOnly: req.CreateOnly}); err != nil {
		return Committed{}, dfms.E(op, dfms.Other, err)
	}
	h := sha256.New()
	if _, err := s.ReadRange(ctx, dfms.Version{Manifest: &req.Manifest}, 0, -1, h); err != nil {
		if ws := (*wrongSizeError)(nil); errors.As(err, &ws) {
			return Committed{}, dfms.E(op, dfms.Invalid, ws) // the client's sizes, not corruption
		}
		return Committed{}, dfms.E(op, dfms.Other, err)
	}
	var sum dfms.Hash
	h.Sum(sum[:0])
	if req.SHA256.IsZero() {
		req.SHA256 = sum
	} else if req.SHA256 != sum {
		return Committed{}, dfms.E(op, dfms.Invalid, fmt.Errorf("checksum %s does not match the content (%s)", req.SHA256, sum))
	}
	return s.commitChecked(ctx, req)
}

// commitStoring is Commit with Chunks (see CommitOptions.Chunks).
func (s *Service) commitStoring(ctx context.Context, req meta.CommitRequest, cs []dfms.ChunkData) (Committed, error) {
	const op dfms.Op = "files.Commit"
	if req.Stored != nil || req.Durable != nil {
		return Committed{}, dfms.E(op, dfms.Invalid, fmt.Errorf("the request stores chunks already"))
	}
	b, hashes, err := s.chunkBatch(op, cs, true)
	if err != nil {
		return Committed{}, err
	}
	if err := s.checkChunks(ctx, req, false, false); err != nil {
		return Committed{}, err
	}
	p, err := s.prepareStore(meta.WithLazyDurability(ctx), 0, b, hashes) // the owner's own mount: what the store lacks
	if dfms.Is(err, dfms.Conflict) {
		// GC is deleting one of them: store them the patient way.
		n, err := s.PutChunks(meta.WithLazyDurability(ctx), req.Owner, cs, true)
		if err != nil {
			return Committed{}, dfms.E(op, dfms.Other, err)
		}
		c, err := s.Commit(ctx, req, CommitOptions{Trusted: true})
		c.Stored = n
		return c, err
	}
	if err != nil {
		return Committed{}, dfms.E(op, dfms.Other, err)
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
	c, err := s.commitChecked(ctx, req)
	if errors.Is(err, errStoreSlow) {
		// Rolled back; the bytes are awaited outside the transaction,
		// and the commit made again (its wait then returns at once).
		if werr := wait(nil); werr == nil {
			c, err = s.commitChecked(ctx, req)
		}
	}
	if werr := wait(nil); werr != nil {
		if err == nil || errors.Is(err, errStoreSlow) {
			err = dfms.E(op, dfms.Other, werr)
		}
		return Committed{}, err
	}
	p.count(s) // the bytes are stored, whether or not the commit was made
	c.Stored = len(p.puts)
	return c, err
}

// storingWait bounds how long a commit's transaction waits for the bytes
// of the chunks it records (CommitOptions.Chunks): enough for a local
// disk's write and sync, short enough not to stall other writers long.
const storingWait = 100 * time.Millisecond

var errStoreSlow = errors.New("the chunk store is slow: commit after the chunks are stored")

// commitChecked commits req, whose chunks were checked, and prunes the
// file's history.
func (s *Service) commitChecked(ctx context.Context, req meta.CommitRequest) (Committed, error) {
	e, v, err := s.versions.CommitVersion(ctx, req)
	if err != nil {
		return Committed{Entry: e, Version: v}, dfms.E("files.Commit", dfms.Other, commitError(err))
	}
	s.applyRetention(ctx, req.Owner, e.ID)
	return Committed{Entry: e, Version: v}, nil
}

// checkManifest checks what a verified commit of a client's manifest
// needs before its content is read back: the file and its base, and the
// chunks (checkChunks, possession as asked); it also re-arms the chunks'
// GC grace period, for the read takes a while. An unverified commit needs
// not: the commit itself takes the references atomically (failing with
// Conflict on a chunk GC is deleting).
func (s *Service) checkManifest(ctx context.Context, req meta.CommitRequest, possession bool) (dfms.Entry, error) {
	const op dfms.Op = "files.Commit"
	// Cheap checks first, so that a stale base or a missing file is
	// reported before the content is read.
	if req.Entry != 0 {
		e, err := s.Stat(ctx, req.Owner, req.Entry)
		if err != nil {
			return dfms.Entry{}, dfms.E(op, dfms.Other, err)
		}
		// (A commit with an ID may have been made already, which moved
		// the file on: the metadata store tells, atomically.)
		if req.RequireBase && req.CommitID == "" && e.VersionID != req.Base {
			return e, dfms.E(op, dfms.Conflict, fmt.Errorf("%q is at version %d (id %d), not id %d", e.Name, e.Version, e.VersionID, req.Base))
		}
	}
	return dfms.Entry{}, s.checkChunks(ctx, req, possession, true)
}

// checkChunks checks the sizes of a manifest's chunks and, with
// possession, that the owner sent or committed every one; with keep it
// re-arms their grace period (checkManifest).
func (s *Service) checkChunks(ctx context.Context, req meta.CommitRequest, possession, keep bool) error {
	const op dfms.Op = "files.Commit"
	hashes := make([]dfms.Hash, 0, len(req.Manifest.Chunks))
	for i, c := range req.Manifest.Chunks {
		if c.IsHole() {
			// Zeros that reference nothing: no chunk to own or keep.
			if c.Size == 0 {
				return dfms.E(op, dfms.Invalid, fmt.Errorf("hole %d is empty", i))
			}
			continue
		}
		if c.Size == 0 || int(c.Size) > s.opts.Chunking.Max {
			return dfms.E(op, dfms.Invalid, fmt.Errorf("chunk %d has size %d", i, c.Size))
		}
		hashes = append(hashes, c.Hash)
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
