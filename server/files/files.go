// Package files is the file layer of DFMS: the operations users see (make
// a directory, write a file as a new version, read any byte range of any
// version, rename, trash and restore, roll back to an old version) built on
// the metadata store and a chunk store. It knows nothing of HTTP or FUSE;
// the REST API and the mount both call it.
//
// # Writing
//
// A write streams the body through the content-defined chunker (one
// chunker goroutine feeding SHA-256 workers), copies the chunks into
// batches (Options.BatchBytes, 8 MiB by default), and for each batch asks
// the metadata store in one query which of its hashes the store lacks,
// stores only those (in parallel), and records the batch; two batches are
// stored at once (Options.Uploaders) while the next one is cut. Finally
// it commits the manifest as a new version in one metadata transaction,
// together with its reference counts, the owner's usage and a
// change-journal row. Memory stays bounded by a few batches whatever the
// file size. Until the commit nothing is visible: a failure before it
// leaves no version and no changed reference count (chunks already stored
// stay unreferenced and are collected by GC).
//
// Every chunk a write relies on has its GC grace period re-armed, once
// per batch and again just before the commit, so that only a write longer
// than the grace period itself can lose a chunk to GC before it commits
// (it then fails with kind Conflict, to be retried; see package gc).
//
// # Reading
//
// A read fetches the version's manifest, then the chunks covering the
// range, a few ahead of the reader (Options.ReadAhead, 4 by default).
// Every chunk is re-hashed before any of its bytes are returned (by the
// chunk store, if it is a dfms.VerifyingStore, or else here); a mismatch
// fails the read with kind Corrupt: a corrupt chunk is never served.
//
// # Deleting
//
// Deleting moves a whole subtree to the trash, from which it can be
// restored; purging it releases the references of its versions, and the
// chunks left unreferenced are collected by package gc after the grace
// period.
//
// # Isolation
//
// Every query is scoped to its owner, and another user's ids answer
// NotExist (404) like missing ones. Chunks are shared between users for
// storage (each is stored once), but a user may reference a chunk only
// after sending its bytes or committing it (proof of possession): the
// missing-chunks answers and the dedup counts of an upload are from the
// caller's point of view, so they reveal nothing about what other users
// store; possession ends when GC deletes the chunk.
//
// # What a write reveals about other users
//
// Chunks are stored once, whoever sends them, but a user may reference
// only chunks it possesses: ones it sent the bytes of or committed
// (meta.Chunks.OwnChunks). Possession ends when GC deletes the chunk. A
// write (a file, a part, a chunk sent alone) treats every chunk its owner
// does not possess as new: it reserves it, writes its bytes to the chunk
// store (over the stored copy, if another user has one) and records it,
// so that neither its answer nor its duration says whether another user
// stores that chunk. Measured on one disk (BenchmarkPutChunkOracle in
// package api, 1 MiB chunks, medians of 200): a PUT of a chunk another
// user stored took 6.4 ms against 13.1-13.7 ms for one nobody stored
// before this rule, and 13.1-14.0 ms against 13.0-15.0 ms after it, the
// difference between runs (about 1 ms) larger than between the two kinds.
//
// What remains: a chunk the writer possesses already costs less (that
// tells it only what it knows); the chunk store's own work can differ
// slightly (the disk store makes a shard directory, DIR/ab/cd, for the
// first chunk of its prefix, so a chunk whose two-byte prefix nobody
// stores costs one or two more directory creations and syncs); and the
// metadata store updates an existing row rather than inserting one. None
// of these showed above the noise of the measurement.
package files

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/server/meta"
)

// Options configures a Service.
type Options struct {
	// Chunking are the deployment's chunking parameters (the zero value
	// means chunking.DefaultParams()).
	Chunking chunking.Params
	// HashWorkers is the number of SHA-256 goroutines per write (0: all
	// cores).
	HashWorkers int
	// BatchBytes is how many bytes of chunks are checked and stored
	// together (default 8 MiB).
	BatchBytes int
	// Uploaders is how many batches of one write are stored concurrently
	// (default 2: one batch's durability barrier overlaps the next one's
	// checks and writes). A write holds Uploaders+2 batches.
	Uploaders int
	// PutConcurrency bounds parallel chunk stores per write (default 16:
	// stores spend most of a Put waiting for fsync or the network).
	PutConcurrency int
	// ReadAhead is how many chunks a read fetches ahead (default 4).
	ReadAhead int
	// Retention bounds each file's history after every new version.
	Retention Retention
	// HoldFor is how long the chunks an owner with a quota stores count
	// against it (meta.Chunks.HoldChunks) unless a commit references them
	// first: at least as long as GC may keep an unreferenced chunk, its
	// grace period plus the interval between collections (default 25 h,
	// for the default day and hour).
	HoldFor time.Duration
	// BeforeCommit, if set, runs after every chunk of a write is stored and
	// before its version is committed; an error aborts the write. It exists
	// for fault-injection tests.
	BeforeCommit func(ctx context.Context) error
}

// Stats counts the chunk traffic of a Service since it started.
type Stats struct {
	ChunksStored  atomic.Int64 // chunks written to the chunk store (another user's again: see storeBatch)
	BytesStored   atomic.Int64
	ChunksDeduped atomic.Int64 // chunks of writes that were not written: the writer had them already
	ChunksRead    atomic.Int64 // chunks fetched from the chunk store
	BytesRead     atomic.Int64
}

// Service implements the file operations. It is safe for concurrent use.
type Service struct {
	// store is the whole metadata store, which the Service only hands on
	// (Meta); its own calls go through the capabilities it uses.
	store    meta.Store
	users    meta.Users
	tree     meta.Tree
	trash    meta.Trash
	versions meta.Versions
	index    meta.Chunks // the chunk index; chunks holds the bytes
	uploads  meta.Uploads

	chunks dfms.ChunkStore
	// verified: chunks' Get verifies the bytes (dfms.VerifyingStore), so
	// ReadChunk need not hash them again.
	verified bool
	opts     Options
	stats    Stats

	batchBufs sync.Pool // batch data buffers, shared by writes
}

// New returns a Service over a metadata store and a chunk store.
func New(m meta.Store, c dfms.ChunkStore, opts Options) (*Service, error) {
	if opts.Chunking == (chunking.Params{}) {
		opts.Chunking = chunking.DefaultParams()
	}
	if err := opts.Chunking.Validate(); err != nil {
		return nil, err
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 8 << 20
	}
	if opts.PutConcurrency <= 0 {
		opts.PutConcurrency = 16
	}
	if opts.Uploaders <= 0 {
		opts.Uploaders = 2
	}
	if opts.ReadAhead <= 0 {
		opts.ReadAhead = 4
	}
	if opts.HoldFor <= 0 {
		opts.HoldFor = 25 * time.Hour
	}
	vs, ok := c.(dfms.VerifyingStore)
	return &Service{store: m, users: m, tree: m, trash: m, versions: m, index: m, uploads: m, chunks: c,
		verified: ok && vs.VerifiesGet(), opts: opts}, nil
}

// Meta returns the whole metadata store, for the layers above that reach
// past the file layer (the API's account, attribute and journal handlers,
// the mount's in-process backend), each of which uses several capabilities.
func (s *Service) Meta() meta.Store { return s.store }

// Chunks returns the chunk store.
func (s *Service) Chunks() dfms.ChunkStore { return s.chunks }

// Stats returns the service's counters.
func (s *Service) Stats() *Stats { return &s.stats }

// Chunking returns the chunking parameters, which clients must use too.
func (s *Service) Chunking() chunking.Params { return s.opts.Chunking }

// WriteRequest describes a write of a new version.
type WriteRequest struct {
	Owner dfms.UserID
	// Entry names an existing file; otherwise Parent/Name, created if
	// missing.
	Entry  dfms.EntryID
	Parent dfms.EntryID
	Name   string

	Body    io.Reader
	MaxSize int64 // 0: no limit; a larger body fails with kind TooLarge

	Mode        uint32
	UID, GID    uint32
	MIME        string
	MTime       time.Time
	Base        int64 // the ID of the version the body was edited from
	RequireBase bool
	CreateOnly  bool // fail with kind Exist if Parent/Name exists
}

// WriteResult reports a committed write.
type WriteResult struct {
	Entry       dfms.Entry
	Version     dfms.Version
	Chunks      int   // chunks in the manifest
	NewChunks   int   // distinct chunks the owner did not have before
	DedupChunks int   // chunk occurrences the owner already had
	NewBytes    int64 // bytes of NewChunks
}

// Write stores req.Body as a new version.
func (s *Service) Write(ctx context.Context, req WriteRequest) (WriteResult, error) {
	const op dfms.Op = "files.Write"
	var res WriteResult
	if req.Body == nil {
		return res, dfms.Errorf(op, dfms.Invalid, "no body")
	}
	// Fail before reading the body if the target cannot take a version.
	quotaLeft, err := s.precheck(ctx, req)
	if err != nil {
		return res, dfms.E(op, dfms.Other, err)
	}
	var body io.Reader = bodyReader{req.Body}
	if req.MaxSize > 0 {
		body = &limitReader{r: body, left: req.MaxSize, kind: dfms.TooLarge, msg: "body exceeds the size limit"}
	}
	if quotaLeft >= 0 {
		body = &limitReader{r: body, left: quotaLeft, kind: dfms.Quota, msg: "storage quota exceeded"}
	}
	m, sum, err := s.ingest(ctx, req.Owner, body, &res)
	if err != nil {
		return res, dfms.E(op, dfms.Other, err)
	}
	if s.opts.BeforeCommit != nil {
		if err := s.opts.BeforeCommit(ctx); err != nil {
			return res, dfms.E(op, dfms.Other, err)
		}
	}
	// A long write re-armed its first chunks long ago: re-arm them all
	// once more, so that only a write longer than the grace period itself
	// can lose a chunk to GC before it commits.
	if err := s.keepAll(ctx, &m); err != nil {
		return res, dfms.E(op, dfms.Other, err)
	}
	e, v, err := s.versions.CommitVersion(ctx, meta.CommitRequest{
		Owner: req.Owner, Entry: req.Entry, Parent: req.Parent, Name: req.Name,
		Mode: req.Mode, UID: req.UID, GID: req.GID,
		Manifest: m, SHA256: sum, MIME: req.MIME, MTime: req.MTime,
		Base: req.Base, RequireBase: req.RequireBase, CreateOnly: req.CreateOnly, CreatedBy: req.Owner,
	})
	if err != nil {
		return res, dfms.E(op, dfms.Other, commitError(err))
	}
	res.Entry, res.Version, res.Chunks = e, v, len(m.Chunks)
	s.applyRetention(ctx, req.Owner, e.ID)
	return res, nil
}

// keepAll re-arms the grace period of every chunk of m.
func (s *Service) keepAll(ctx context.Context, m *dfms.Manifest) error {
	hs := m.Hashes()
	if len(hs) == 0 {
		return nil
	}
	if err := s.index.KeepChunks(ctx, hs); err != nil {
		return commitError(err)
	}
	return nil
}

// commitError explains a MissingChunksError, which a write only meets if
// it outlived the GC grace period.
func commitError(err error) error {
	var mce *meta.MissingChunksError
	if errors.As(err, &mce) {
		return dfms.E("", dfms.Conflict, fmt.Errorf("chunks were collected during the write; retry it: %w", err))
	}
	return err
}

// precheck fails early if the target cannot take a version, and returns
// the owner's remaining quota in bytes (-1: unlimited; quotaLeft).
func (s *Service) precheck(ctx context.Context, req WriteRequest) (int64, error) {
	if err := s.checkTarget(ctx, req); err != nil {
		return 0, err
	}
	return s.quotaLeft(ctx, req.Owner)
}

// checkTarget fails if the file a write names (req.Entry, or req.Parent
// and req.Name) cannot take a new version.
func (s *Service) checkTarget(ctx context.Context, req WriteRequest) error {
	if req.Entry != 0 {
		e, err := s.tree.GetEntry(ctx, req.Owner, req.Entry)
		if err != nil {
			return err
		}
		if !e.Live() {
			return dfms.Errorf("", dfms.NotExist, "the file is in the trash")
		}
		if e.Kind == dfms.KindDir {
			return dfms.Errorf("", dfms.IsDir, "is a directory")
		}
	} else {
		if err := dfms.ValidName(req.Name); err != nil {
			return err
		}
		e, err := s.tree.Lookup(ctx, req.Owner, req.Parent, req.Name)
		switch {
		case err == nil && e.Kind == dfms.KindDir:
			return dfms.E("", dfms.IsDir, fmt.Errorf("%q is a directory", req.Name))
		case err == nil && req.CreateOnly:
			return dfms.E("", dfms.Exist, fmt.Errorf("%q already exists", req.Name))
		case err != nil && !dfms.Is(err, dfms.NotExist):
			return err
		case err != nil: // a missing name is fine, a missing parent is not
			p, perr := s.tree.GetEntry(ctx, req.Owner, req.Parent)
			if perr != nil {
				return perr
			}
			if !p.Live() {
				return dfms.Errorf("", dfms.NotExist, "the folder is in the trash")
			}
			if p.Kind != dfms.KindDir {
				return dfms.Errorf("", dfms.NotDir, "not a directory")
			}
		}
	}
	return nil
}

// quotaLeft returns how many more bytes the owner's quota may take (-1:
// unlimited), failing with kind Quota if none: where a write's stream
// stops. Held bytes are left out: they may be the write's own chunks (a
// retry of a write that failed after storing them), which its commit turns
// into used bytes; the store charges what is new exactly (HoldChunks,
// PutPart, the commit).
func (s *Service) quotaLeft(ctx context.Context, owner dfms.UserID) (int64, error) {
	u, err := s.users.GetUser(ctx, owner)
	if err != nil {
		return 0, err
	}
	if u.QuotaBytes <= 0 {
		return -1, nil
	}
	left := u.QuotaBytes - u.UsedBytes
	if left <= 0 {
		return 0, dfms.Errorf("", dfms.Quota, "storage quota exhausted")
	}
	return left, nil
}

// ingest chunks body, stores the chunks that are missing and returns the
// manifest and the SHA-256 of the whole content. Chunks go to the store in
// batches handed to one uploader goroutine, so chunking the next batch
// overlaps storing this one.
func (s *Service) ingest(ctx context.Context, owner dfms.UserID, body io.Reader, res *WriteResult) (dfms.Manifest, dfms.Hash, error) {
	var m dfms.Manifest
	var sum dfms.Hash
	whole := sha256.New()

	g, gctx := errgroup.WithContext(ctx)
	full := make(chan *batch, 1)                  // filled batches, to the uploaders
	free := make(chan *batch, s.opts.Uploaders+2) // empty batches, back to the chunker
	// Batch buffers come from a pool shared by all writes, on first use:
	// a small file must not pay for zeroing megabytes it never fills.
	batches := make([]*batch, cap(free))
	for i := range batches {
		batches[i] = &batch{pool: &s.batchBufs, size: s.opts.BatchBytes + s.opts.Chunking.Max}
		free <- batches[i]
	}
	defer func() {
		for _, b := range batches {
			b.release()
		}
	}()
	acct := &accounting{res: res, seen: map[dfms.Hash]bool{}}
	for range s.opts.Uploaders {
		g.Go(func() error {
			for b := range full {
				if err := s.storeBatch(gctx, owner, b, acct); err != nil {
					return err
				}
				b.reset()
				free <- b
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(full)
		cur := <-free
		err := chunking.Split(gctx, body, s.opts.Chunking, s.opts.HashWorkers, func(c chunking.HashedChunk) error {
			whole.Write(c.Data)
			m.Chunks = append(m.Chunks, dfms.ChunkRef{Hash: c.Hash, Size: uint32(len(c.Data))})
			cur.add(c.Hash, c.Data)
			if len(cur.data) >= s.opts.BatchBytes {
				select {
				case full <- cur:
				case <-gctx.Done():
					return gctx.Err()
				}
				select {
				case cur = <-free:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(cur.refs) > 0 {
			select {
			case full <- cur:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return m, sum, err
	}
	whole.Sum(sum[:0])
	return m, sum, nil
}

// batch holds the chunks of one store round. Chunks cut by the server's
// own chunker are copied out of its buffers into the batch's data buffer,
// with room for a full batch plus the chunk that overflows it (so appends
// never reallocate), taken from pool on the first add and given back by
// release. Chunks a caller hands over whole (addRef) are not copied.
type batch struct {
	refs   []dfms.ChunkRef
	chunks [][]byte
	data   []byte
	pool   *sync.Pool // of *[]byte with capacity size
	size   int
}

func (b *batch) add(h dfms.Hash, data []byte) {
	if b.data == nil && b.pool != nil {
		if p, ok := b.pool.Get().(*[]byte); ok {
			b.data = (*p)[:0]
		} else {
			b.data = make([]byte, 0, b.size)
		}
	}
	off := len(b.data)
	b.data = append(b.data, data...)
	b.addRef(h, b.data[off:len(b.data):len(b.data)])
}

// addRef adds a chunk whose bytes the caller keeps unchanged until the
// batch is stored.
func (b *batch) addRef(h dfms.Hash, data []byte) {
	b.refs = append(b.refs, dfms.ChunkRef{Hash: h, Size: uint32(len(data))})
	b.chunks = append(b.chunks, data)
}

// release gives the data buffer back to the pool.
func (b *batch) release() {
	if b.pool != nil && cap(b.data) == b.size {
		d := b.data[:0]
		b.pool.Put(&d)
	}
	b.data = nil
}

func (b *batch) bytes(i int) []byte { return b.chunks[i] }

func (b *batch) reset() {
	clear(b.chunks)
	b.refs, b.chunks, b.data = b.refs[:0], b.chunks[:0], b.data[:0]
}

// storeBatch stores the chunks of b that owner does not possess (or, for
// owner 0, that the metadata store lacks) and records all of them (which
// also restarts the GC grace period of chunks this write relies on). A
// chunk caught mid-deletion by GC is stored again once the sweep has
// finished. res counts chunks from the owner's point of view: a chunk is
// deduplicated if the owner already had it (or this write had it
// earlier); whether another user stored it is not revealed, not even by
// the time the write takes: a chunk the owner does not possess is written
// to the chunk store and recorded whether or not another user stored it
// (the store keeps one copy either way).
//
// The chunks are charged to the owner's quota first (held until a commit
// references them): a batch that does not fit fails with kind Quota and
// stores nothing.
//
// Its metadata writes may become durable after they return
// (meta.WithLazyDurability): no caller acknowledges the chunks before a
// durable write of its own that follows them (the commit that references
// them, the part's record, the owner's possession) and makes them durable
// too, in order. A crash of the machine before that undoes only what was
// not acknowledged: bytes left without their record are orphans, which
// GC removes.
func (s *Service) storeBatch(ctx context.Context, owner dfms.UserID, b *batch, acct *accounting) error {
	ctx = meta.WithLazyDurability(ctx)
	hashes := make([]dfms.Hash, len(b.refs))
	for i, r := range b.refs {
		hashes[i] = r.Hash
	}
	if owner != 0 {
		if err := s.index.HoldChunks(ctx, owner, b.refs, s.opts.HoldFor); err != nil {
			return err
		}
	}
	backoff := 10 * time.Millisecond
	var p *storing
	for attempt := 1; ; attempt++ {
		var err error
		p, err = s.storeOnce(ctx, owner, b, hashes)
		if err == nil {
			break
		}
		if !dfms.Is(err, dfms.Conflict) || attempt == 10 {
			return err
		}
		// GC is deleting one of these chunks: wait for the sweep to finish,
		// then store it again.
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, time.Second)
	}
	if owner == 0 {
		return nil
	}
	had := make(map[dfms.Hash]bool, len(hashes))
	for _, h := range hashes {
		had[h] = !p.want[h]
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	res, seen := acct.res, acct.seen
	for _, r := range b.refs {
		if had[r.Hash] || seen[r.Hash] {
			res.DedupChunks++
			continue
		}
		seen[r.Hash] = true
		res.NewChunks++
		res.NewBytes += int64(r.Size)
	}
	return nil
}

// accounting is a write's view of its chunks, shared by its uploaders.
type accounting struct {
	mu   sync.Mutex
	res  *WriteResult
	seen map[dfms.Hash]bool // chunks of this write already counted
}

// storeOnce stores the batch's chunks that owner lacks and records them.
func (s *Service) storeOnce(ctx context.Context, owner dfms.UserID, b *batch, hashes []dfms.Hash) (*storing, error) {
	p, err := s.prepareStore(ctx, owner, b, hashes)
	if err != nil {
		return nil, err
	}
	if err := s.putBytes(ctx, p.puts); err != nil {
		return nil, err
	}
	if len(p.added) > 0 {
		if err := s.index.AddChunks(ctx, p.added); err != nil {
			return nil, err
		}
	}
	p.count(s)
	return p, nil
}

// storing is what a batch needs stored: the chunks the owner lacks (want),
// each once, reserved (prepareStore).
type storing struct {
	want   map[dfms.Hash]bool
	added  []dfms.ChunkRef
	puts   []dfms.ChunkData
	chunks int64 // in the batch, duplicates included
}

// count adds a stored batch to the service's counters.
func (p *storing) count(s *Service) {
	var n int64
	for _, c := range p.puts {
		n += int64(len(c.Data))
	}
	s.stats.ChunksDeduped.Add(p.chunks - int64(len(p.puts)))
	s.stats.ChunksStored.Add(int64(len(p.puts)))
	s.stats.BytesStored.Add(n)
}

// prepareStore finds which of the batch's chunks owner does not possess
// (owner 0: which the store lacks) and reserves them; the chunks it has
// already get their grace period re-armed first, so that GC cannot take
// them before the commit.
func (s *Service) prepareStore(ctx context.Context, owner dfms.UserID, b *batch, hashes []dfms.Hash) (*storing, error) {
	var missing []dfms.Hash
	var err error
	if owner == 0 {
		missing, err = s.index.MissingChunks(ctx, hashes)
	} else {
		missing, err = s.index.UnownedChunks(ctx, owner, hashes)
	}
	if err != nil {
		return nil, err
	}
	want := make(map[dfms.Hash]bool, len(missing))
	for _, h := range missing {
		want[h] = true
	}
	p := &storing{want: want, chunks: int64(len(b.refs))}
	var kept []dfms.Hash
	seen := make(map[dfms.Hash]bool, len(b.refs))
	for i, r := range b.refs {
		if seen[r.Hash] {
			continue // once per batch
		}
		seen[r.Hash] = true
		if !want[r.Hash] {
			kept = append(kept, r.Hash)
			continue
		}
		p.added = append(p.added, r)
		p.puts = append(p.puts, dfms.ChunkData{Hash: r.Hash, Data: b.bytes(i)})
	}
	if len(kept) > 0 {
		if err := s.index.KeepChunks(ctx, kept); err != nil {
			return nil, err
		}
	}
	// Reserve before storing: a pending row keeps the orphan collector
	// away from bytes that are not recorded yet.
	if len(p.added) > 0 {
		if err := s.index.ReserveChunks(ctx, p.added); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// putBytes makes the chunks durable in the chunk store: as one batch if
// the store takes batches, else up to PutConcurrency at a time.
func (s *Service) putBytes(ctx context.Context, puts []dfms.ChunkData) error {
	if len(puts) == 0 {
		return nil
	}
	if bp, ok := s.chunks.(dfms.BatchPutter); ok {
		return bp.PutBatch(ctx, puts)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.PutConcurrency)
	for _, c := range puts {
		g.Go(func() error { return s.chunks.Put(gctx, c.Hash, c.Data) })
	}
	return g.Wait()
}

// bodyReader marks failures to read the client's body as bad input (a
// short body, a broken multipart encoding, a client that went away): they
// are not the server's failures.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && dfms.KindOf(err) == dfms.Other {
		err = dfms.E("files.Write", dfms.Invalid, fmt.Errorf("reading the request body: %w", err))
	}
	return n, err
}

// limitReader fails with an error of the given kind once more than left
// bytes are read.
type limitReader struct {
	r    io.Reader
	left int64
	kind dfms.ErrorKind
	msg  string
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, dfms.Errorf("files.Write", l.kind, l.msg)
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, dfms.Errorf("files.Write", l.kind, l.msg)
	}
	return n, err
}
