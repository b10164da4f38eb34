// Package chunkservice serves a [dfms.ChunkStore] over gRPC: the server
// side of the chunk service (dfms.chunk.v1.ChunkService, whose protocol and
// client are in placement/store/grpcstore). `dfms chunk-service` runs it
// over the node's own store; a `dfms server` whose chunks.url is
// grpc://HOST:PORT is its client.
//
// # Verification and limits
//
// The service trusts no client. Every Put and every chunk of a PutBatch is
// received whole, then its size and SHA-256 are checked against its header
// before anything is stored: a stream that ends short, runs long or does
// not hash to its name stores nothing and fails with INVALID_ARGUMENT (a
// PutBatch is checked whole before any chunk is stored). A chunk's
// declared size may not exceed [Options.MaxChunkSize], nor a batch the
// protocol's limits (grpcstore.MaxBatchChunks, grpcstore.MaxBatchBytes),
// and no message may exceed grpcstore.MaxMessageSize; the service
// allocates only what a header declared within those bounds.
//
// Memory is bounded for all callers together, too: the bytes of the puts
// and gets under way (a get counts as a chunk of the maximum size) never
// exceed [Options.MemoryLimit]; a call that would exceed it waits for
// others to finish, or for its context to end.
//
// # Errors
//
// A failure is a gRPC status whose code follows the dfms kind of the
// store's error, with the exact kind in an Error detail
// (grpcstore.ToStatus); the client turns it back into that kind. The
// client's cancellation cancels the store call that serves it.
//
// # Health
//
// The service registers the standard grpc.health.v1.Health service. A
// Check of "" or of "dfms.chunk.v1.ChunkService" answers SERVING while the
// service runs and its store answers (a Stat of a missing chunk), and
// NOT_SERVING once it shuts down or when the store fails.
package chunkservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/placement/store/grpcstore"
	"github.com/dfms/dfms/placement/store/grpcstore/chunkpb"
)

// ServiceName is the service's full name, which health checks may ask for.
const ServiceName = "dfms.chunk.v1.ChunkService"

// Options configures a Service. The zero value of each field selects its
// default.
type Options struct {
	// MaxChunkSize is the largest chunk the service stores: the
	// deployment's chunking max_size. Default 4 MiB, the default
	// max_size; at most grpcstore.MaxBatchBytes.
	MaxChunkSize int

	// MemoryLimit bounds the bytes of all puts and gets under way.
	// Default 256 MiB; at least grpcstore.MaxBatchBytes.
	MemoryLimit int64

	// PutConcurrency bounds the chunks of a batch stored at once when the
	// store is not a dfms.BatchPutter. Default 8.
	PutConcurrency int

	// ShutdownTimeout bounds how long Serve waits for calls under way
	// once its context ends, before it cuts them. Default 30 s.
	ShutdownTimeout time.Duration

	// Log receives the failures that are the service's own (kind Other)
	// and the start and stop. Default slog.Default().
	Log *slog.Logger
}

// Service serves one chunk store. Register it on a grpc.Server, or let
// Serve make the server.
type Service struct {
	chunkpb.UnimplementedChunkServiceServer
	store  dfms.ChunkStore
	opts   Options
	mem    *semaphore.Weighted
	health *health.Server
	// bufs holds buffers of MaxChunkSize bytes for Get.
	bufs sync.Pool
}

var _ chunkpb.ChunkServiceServer = (*Service)(nil)

// New returns a service over store; it does not own the store (closing the
// store is the caller's business).
func New(store dfms.ChunkStore, opts Options) *Service {
	if opts.MaxChunkSize <= 0 {
		opts.MaxChunkSize = chunking.DefaultParams().Max
	}
	opts.MaxChunkSize = min(opts.MaxChunkSize, grpcstore.MaxBatchBytes)
	if opts.MemoryLimit <= 0 {
		opts.MemoryLimit = 256 << 20
	}
	opts.MemoryLimit = max(opts.MemoryLimit, grpcstore.MaxBatchBytes)
	if opts.PutConcurrency <= 0 {
		opts.PutConcurrency = 8
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Service{store: store, opts: opts, mem: semaphore.NewWeighted(opts.MemoryLimit), health: health.NewServer()}
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s
}

// ServerOptions are the grpc.Server options the service needs: the
// message size limit, and flow-control windows and buffers that suit chunk
// transfers (as the client's: see grpcstore.New).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(grpcstore.MaxMessageSize),
		grpc.MaxSendMsgSize(grpcstore.MaxMessageSize),
		grpc.InitialWindowSize(4 * grpcstore.FrameSize),
		grpc.InitialConnWindowSize(16 * grpcstore.FrameSize),
		grpc.WriteBufferSize(grpcstore.FrameSize / 4),
		grpc.ReadBufferSize(grpcstore.FrameSize / 4),
	}
}

// Register registers the chunk service and the health service on g.
func (s *Service) Register(g *grpc.Server) {
	chunkpb.RegisterChunkServiceServer(g, s)
	healthpb.RegisterHealthServer(g, &healthServer{Server: s.health, store: s.store})
}

// Serve serves the service on ln until ctx ends, then stops gracefully:
// health checks answer NOT_SERVING, new calls are refused, and calls
// under way get Options.ShutdownTimeout to finish. opts are added to
// ServerOptions (transport credentials, for TLS). Serve closes ln; it
// returns nil after a shutdown that ctx asked for.
func (s *Service) Serve(ctx context.Context, ln net.Listener, opts ...grpc.ServerOption) error {
	const op dfms.Op = "chunkservice.Serve"
	g := grpc.NewServer(append(ServerOptions(), opts...)...)
	s.Register(g)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln) }()
	s.opts.Log.Info("chunk service listening", "addr", ln.Addr().String(), "max_chunk_size", s.opts.MaxChunkSize)
	select {
	case err := <-errc:
		return dfms.E(op, dfms.Unavailable, err)
	case <-ctx.Done():
	}
	s.opts.Log.Info("chunk service shutting down", "timeout", s.opts.ShutdownTimeout)
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(s.opts.ShutdownTimeout):
		s.opts.Log.Warn("chunk service: calls still under way after the shutdown timeout; cutting them")
		g.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return dfms.E(op, dfms.Other, err)
	}
	s.opts.Log.Info("chunk service stopped")
	return nil
}

// fail is the status of err, logged first if it is the service's own
// failure (kind Other) rather than the caller's or a classified one.
func (s *Service) fail(op dfms.Op, err error) error {
	if dfms.KindOf(err) == dfms.Other && !errors.Is(err, context.Canceled) {
		s.opts.Log.Warn("chunk service call failed", "op", op, "err", err)
	}
	return grpcstore.ToStatus(err)
}

// invalid is the status of bad input: kind Invalid, with a message.
func invalid(op dfms.Op, format string, args ...any) error {
	return grpcstore.ToStatus(dfms.E(op, dfms.Invalid, fmt.Errorf(format, args...)))
}

// parseHash checks that b is a hash.
func parseHash(op dfms.Op, b []byte) (dfms.Hash, error) {
	if len(b) != dfms.HashSize {
		return dfms.Hash{}, invalid(op, "a hash has %d bytes, not %d", dfms.HashSize, len(b))
	}
	return dfms.Hash(b), nil
}

// reserve takes n bytes of the memory budget, waiting if needed; the
// returned function gives them back.
func (s *Service) reserve(op dfms.Op, ctx context.Context, n int64) (func(), error) {
	if err := s.mem.Acquire(ctx, n); err != nil {
		return nil, grpcstore.ToStatus(dfms.E(op, dfms.Other, err))
	}
	return func() { s.mem.Release(n) }, nil
}

// header checks a chunk's header against the limits.
func (s *Service) header(op dfms.Op, h *chunkpb.ChunkHeader) (dfms.Hash, int, error) {
	if h == nil {
		return dfms.Hash{}, 0, invalid(op, "a chunk's first message has no header")
	}
	hash, err := parseHash(op, h.Hash)
	if err != nil {
		return hash, 0, err
	}
	if h.Size < 0 || h.Size > int64(s.opts.MaxChunkSize) {
		return hash, 0, grpcstore.ToStatus(dfms.E(op, dfms.TooLarge,
			fmt.Errorf("chunk %s: declared size %d is not within 0..%d", hash, h.Size, s.opts.MaxChunkSize)))
	}
	return hash, int(h.Size), nil
}

// recvErr is the status of a failure to receive the next message:
// the stream's own status, or for a stream the client closed too early,
// Invalid.
func recvErr(op dfms.Op, err error, what string) error {
	if err == io.EOF {
		return invalid(op, "the stream ended %s", what)
	}
	return err // a status already (the client went away, or a message over the limit)
}

// check verifies that data is all of chunk h.
func check(op dfms.Op, h dfms.Hash, size int, data []byte) error {
	if len(data) != size {
		return invalid(op, "chunk %s: got %d of its %d bytes", h, len(data), size)
	}
	if got := dfms.Sum(data); got != h {
		return invalid(op, "chunk %s: the bytes sent hash to %s", h, got)
	}
	return nil
}

// Put receives one chunk whole, checks it, and stores it.
func (s *Service) Put(st grpc.ClientStreamingServer[chunkpb.PutRequest, chunkpb.PutResponse]) error {
	const op dfms.Op = "chunkservice.Put"
	ctx := st.Context()
	m, err := st.Recv()
	if err != nil {
		return recvErr(op, err, "before the chunk's header")
	}
	h, size, err := s.header(op, m.Header)
	if err != nil {
		return err
	}
	release, err := s.reserve(op, ctx, int64(size))
	if err != nil {
		return err
	}
	defer release()
	data := make([]byte, 0, size)
	for {
		if len(m.Data) > size-len(data) {
			return invalid(op, "chunk %s: more than its %d bytes sent", h, size)
		}
		data = append(data, m.Data...)
		if m, err = st.Recv(); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if m.Header != nil {
			return invalid(op, "chunk %s: a second header; Put takes one chunk", h)
		}
	}
	if err := check(op, h, size, data); err != nil {
		return err
	}
	if err := s.store.Put(ctx, h, data); err != nil {
		return s.fail(op, err)
	}
	return st.SendAndClose(&chunkpb.PutResponse{})
}

// PutBatch receives a batch whole into one buffer of the declared size,
// checks every chunk, and stores them together.
func (s *Service) PutBatch(st grpc.ClientStreamingServer[chunkpb.PutBatchRequest, chunkpb.PutBatchResponse]) error {
	const op dfms.Op = "chunkservice.PutBatch"
	ctx := st.Context()
	m, err := st.Recv()
	if err != nil {
		return recvErr(op, err, "before the batch header")
	}
	b := m.Batch
	switch {
	case b == nil:
		return invalid(op, "the first message has no batch header")
	case b.Chunks < 0 || b.Chunks > grpcstore.MaxBatchChunks:
		return invalid(op, "a batch has 0..%d chunks, not %d", grpcstore.MaxBatchChunks, b.Chunks)
	case b.Bytes < 0 || b.Bytes > grpcstore.MaxBatchBytes:
		return grpcstore.ToStatus(dfms.E(op, dfms.TooLarge, fmt.Errorf("a batch has 0..%d bytes, not %d", grpcstore.MaxBatchBytes, b.Bytes)))
	}
	release, err := s.reserve(op, ctx, b.Bytes)
	if err != nil {
		return err
	}
	defer release()
	// Each chunk's bytes are a slice of all; sizes[i] is chunks[i]'s
	// declared size; the last chunk is the one being received.
	all := make([]byte, 0, b.Bytes)
	chunks := make([]dfms.ChunkData, 0, b.Chunks)
	var sizes []int
	var start int // of the last chunk in all
	for first := true; ; first = false {
		if m.Batch != nil && !first {
			return invalid(op, "a second batch header")
		}
		if m.Header != nil {
			if n := len(chunks); n > 0 {
				if err := check(op, chunks[n-1].Hash, sizes[n-1], all[start:]); err != nil {
					return err
				}
			}
			if int64(len(chunks)) == b.Chunks {
				return invalid(op, "more than the %d chunks announced", b.Chunks)
			}
			h, size, err := s.header(op, m.Header)
			if err != nil {
				return err
			}
			if int64(len(all)+size) > b.Bytes {
				return invalid(op, "more than the %d bytes announced", b.Bytes)
			}
			start = len(all)
			chunks = append(chunks, dfms.ChunkData{Hash: h})
			sizes = append(sizes, size)
		}
		if len(m.Data) > 0 {
			n := len(chunks)
			if n == 0 {
				return invalid(op, "bytes before the first chunk's header")
			}
			if len(m.Data) > sizes[n-1]-(len(all)-start) {
				return invalid(op, "chunk %s: more than its %d bytes sent", chunks[n-1].Hash, sizes[n-1])
			}
			all = append(all, m.Data...)
			chunks[n-1].Data = all[start:len(all):len(all)]
		}
		if m, err = st.Recv(); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
	}
	if int64(len(chunks)) != b.Chunks || int64(len(all)) != b.Bytes {
		return invalid(op, "got %d chunks and %d bytes of the %d and %d announced", len(chunks), len(all), b.Chunks, b.Bytes)
	}
	if n := len(chunks); n > 0 {
		if err := check(op, chunks[n-1].Hash, sizes[n-1], all[start:]); err != nil {
			return err
		}
	}
	if err := s.putAll(ctx, chunks); err != nil {
		return s.fail(op, err)
	}
	return st.SendAndClose(&chunkpb.PutBatchResponse{})
}

// putAll stores checked chunks: as one batch if the store takes batches,
// else PutConcurrency at a time.
func (s *Service) putAll(ctx context.Context, chunks []dfms.ChunkData) error {
	if len(chunks) == 0 {
		return ctx.Err()
	}
	if bp, ok := s.store.(dfms.BatchPutter); ok {
		return bp.PutBatch(ctx, chunks)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.PutConcurrency)
	for _, c := range chunks {
		g.Go(func() error { return s.store.Put(gctx, c.Hash, c.Data) })
	}
	return g.Wait()
}

// Get reads the chunk into a pooled buffer and sends it in frames.
func (s *Service) Get(req *chunkpb.GetRequest, st grpc.ServerStreamingServer[chunkpb.GetResponse]) error {
	const op dfms.Op = "chunkservice.Get"
	ctx := st.Context()
	h, err := parseHash(op, req.Hash)
	if err != nil {
		return err
	}
	release, err := s.reserve(op, ctx, int64(s.opts.MaxChunkSize))
	if err != nil {
		return err
	}
	defer release()
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, s.opts.MaxChunkSize)
		bp = &b
	}
	data, err := s.store.Get(ctx, h, (*bp)[:0])
	if err != nil {
		s.bufs.Put(bp)
		return s.fail(op, err)
	}
	// Send encodes each frame before it returns, and no stats handler
	// that would keep messages is installed, so the buffer serves the
	// next Get once this one has sent. (A store may have grown it for a
	// chunk larger than MaxChunkSize: that one is not kept.)
	if cap(data) == s.opts.MaxChunkSize {
		defer func() {
			*bp = data[:0]
			s.bufs.Put(bp)
		}()
	}
	rest := data
	for first := true; first || len(rest) > 0; first = false {
		n := min(len(rest), grpcstore.FrameSize)
		m := &chunkpb.GetResponse{Data: rest[:n]}
		if first {
			m.Size = int64(len(data))
		}
		if err := st.Send(m); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// Stat returns the stored size of a chunk.
func (s *Service) Stat(ctx context.Context, req *chunkpb.StatRequest) (*chunkpb.StatResponse, error) {
	const op dfms.Op = "chunkservice.Stat"
	h, err := parseHash(op, req.Hash)
	if err != nil {
		return nil, err
	}
	size, err := s.store.Stat(ctx, h)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return &chunkpb.StatResponse{Size: size}, nil
}

// Delete removes a chunk.
func (s *Service) Delete(ctx context.Context, req *chunkpb.DeleteRequest) (*chunkpb.DeleteResponse, error) {
	const op dfms.Op = "chunkservice.Delete"
	h, err := parseHash(op, req.Hash)
	if err != nil {
		return nil, err
	}
	if err := s.store.Delete(ctx, h); err != nil {
		return nil, s.fail(op, err)
	}
	return &chunkpb.DeleteResponse{}, nil
}

// walkBatch is how many chunks one Walk message lists (about 50 KiB).
const walkBatch = 1000

// Walk lists the store's chunks, walkBatch per message.
func (s *Service) Walk(_ *chunkpb.WalkRequest, st grpc.ServerStreamingServer[chunkpb.WalkResponse]) error {
	const op dfms.Op = "chunkservice.Walk"
	batch := make([]*chunkpb.ChunkInfo, 0, walkBatch)
	send := func() error {
		err := st.Send(&chunkpb.WalkResponse{Chunks: batch})
		batch = make([]*chunkpb.ChunkInfo, 0, walkBatch) // Send may keep the message it was given
		return err
	}
	var sendErr error // a failure to send, which is the stream's status already
	err := s.store.Walk(st.Context(), func(ci dfms.ChunkInfo) error {
		batch = append(batch, &chunkpb.ChunkInfo{Hash: ci.Hash[:], Size: ci.Size, ModTimeUnixNano: ci.ModTime.UnixNano()})
		if len(batch) == walkBatch {
			sendErr = send()
			return sendErr
		}
		return nil
	})
	if sendErr != nil {
		return sendErr
	}
	if err != nil {
		return s.fail(op, err)
	}
	if len(batch) > 0 {
		return send()
	}
	return nil
}

// tempRemover is a store that keeps temporary files while it writes (the
// disk store); the garbage collector removes the stale ones through the
// service.
type tempRemover interface {
	RemoveStaleTemp(ctx context.Context, cutoff time.Time) (int, error)
}

// RemoveStaleTemp removes the store's stale temporary files, if it has
// any kind of them.
func (s *Service) RemoveStaleTemp(ctx context.Context, req *chunkpb.RemoveStaleTempRequest) (*chunkpb.RemoveStaleTempResponse, error) {
	const op dfms.Op = "chunkservice.RemoveStaleTemp"
	tr, ok := s.store.(tempRemover)
	if !ok {
		if err := ctx.Err(); err != nil {
			return nil, s.fail(op, err)
		}
		return &chunkpb.RemoveStaleTempResponse{}, nil
	}
	n, err := tr.RemoveStaleTemp(ctx, time.Unix(0, req.CutoffUnixNano))
	if err != nil {
		return nil, s.fail(op, err)
	}
	return &chunkpb.RemoveStaleTempResponse{Removed: int64(n)}, nil
}

// healthServer is the standard health service, whose Check also asks the
// store.
type healthServer struct {
	*health.Server
	store dfms.ChunkStore
}

// Check answers as the standard health server does, except that SERVING
// becomes NOT_SERVING if the store fails a Stat of a chunk that does not
// exist.
func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	resp, err := h.Server.Check(ctx, req)
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		return resp, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := h.store.Stat(ctx, dfms.Hash{}); err != nil && !dfms.Is(err, dfms.NotExist) {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	return resp, nil
}
