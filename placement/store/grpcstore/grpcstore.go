// Package grpcstore is the client of a chunk service: a [dfms.ChunkStore]
// (and [dfms.BatchPutter]) whose chunks live in another process, `dfms
// chunk-service`, which serves its own store over gRPC (package
// server/chunkservice). The protocol, dfms.chunk.v1.ChunkService, is in
// chunkpb/chunk.proto, with its generated Go code.
//
// # URL
//
//	grpc://HOST:PORT                   plaintext, for loopback or a private network
//	grpcs://HOST:PORT?ca=/etc/dfms/ca.pem&cert=/etc/dfms/client.pem&key=/etc/dfms/client-key.pem
//	                                   TLS
//
// The options, all for grpcs:// only, are:
//
//	ca=FILE           PEM certificates of the authorities that sign the
//	                  service's certificate (default: the system's roots)
//	cert=FILE         the client's certificate (PEM), for a service that
//	key=FILE          requires one (mutual TLS: chunk_service.client_ca);
//	                  both or neither
//	server_name=NAME  the name the service's certificate must have
//	                  (default HOST)
//
// Anything else in the URL is an error of kind Invalid. [ParseURL] turns the
// URL into [Options] (reading the files), which programs may also fill
// directly; this package never reads the environment.
//
// Open does not connect: the connection is made on the first call and made
// again after a failure, so a client may start before its service. A call
// while the service is unreachable fails at once with kind Unavailable.
//
// # Transfers
//
// Chunk bytes travel in frames of at most [FrameSize] (1 MiB) each way.
// Get accepts at most [Options.MaxChunkSize] bytes, whatever the server
// announces or sends: memory stays bounded even with a faulty server. Get
// does not verify what it receives (the caller re-hashes it, as with
// every store); the server verifies every Put against its hash and size
// before storing it. PutBatch sends at most [MaxBatchChunks] chunks or
// [MaxBatchBytes] bytes per call to the service, one durability barrier
// each, and so splits larger batches.
//
// # Errors
//
// A call that fails on the server returns the kind the server's store
// returned (the status carries it: see [ToStatus]), wrapping a
// [*RemoteError] that names the service. A cancelled context gives an
// error wrapping context.Canceled, as a local store's does.
package grpcstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/placement/store/grpcstore/chunkpb"
)

// Limits of the protocol, which the client and the server share.
const (
	// FrameSize is the most chunk bytes one message carries.
	FrameSize = 1 << 20
	// MaxMessageSize is the largest message either side accepts: a frame,
	// its chunk's header and the encoding's overhead, with room to spare.
	MaxMessageSize = FrameSize + 64<<10
	// MaxBatchChunks and MaxBatchBytes bound one PutBatch call to the
	// service (the client splits larger batches).
	MaxBatchChunks = 1024
	MaxBatchBytes  = 16 << 20
	// DefaultMaxChunkSize is the largest chunk a client accepts by
	// default: the largest any deployment's chunking may make.
	DefaultMaxChunkSize = chunking.MaxSizeLimit
)

// Options configures a Client.
type Options struct {
	// Target is the service's HOST:PORT. Required.
	Target string

	// TLS, if not nil, secures the connection; nil means plaintext.
	TLS *tls.Config

	// MaxChunkSize is the largest chunk Get accepts. Default
	// DefaultMaxChunkSize.
	MaxChunkSize int

	// DialOptions are added to the ones this package sets, for tests and
	// tracing.
	DialOptions []grpc.DialOption
}

// Client is a chunk store served by a chunk service. It is safe for
// concurrent use; its calls share one connection (HTTP/2 streams).
type Client struct {
	conn     *grpc.ClientConn
	rpc      chunkpb.ChunkServiceClient
	target   string
	scheme   string // grpc or grpcs, for String
	maxChunk int
}

var (
	_ dfms.ChunkStore  = (*Client)(nil)
	_ dfms.BatchPutter = (*Client)(nil)
)

// ParseURL returns the Options that a grpc:// or grpcs:// URL describes
// (see the package documentation), reading the certificate files it
// names. Errors have kind Invalid.
func ParseURL(u *url.URL) (Options, error) {
	const op dfms.Op = "store/grpcstore.ParseURL"
	bad := func(format string, args ...any) (Options, error) {
		return Options{}, dfms.E(op, dfms.Invalid, fmt.Errorf("chunk service URL %s: "+format, append([]any{u.Redacted()}, args...)...))
	}
	switch {
	case u.Scheme != "grpc" && u.Scheme != "grpcs":
		return bad("scheme is %q, want grpc or grpcs", u.Scheme)
	case u.Opaque != "" || u.User != nil || u.Path != "" && u.Path != "/" || u.Fragment != "":
		return bad("want %s://HOST:PORT and nothing else but options", u.Scheme)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return bad("want HOST:PORT")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return bad("bad port %q", port)
	}
	o := Options{Target: u.Host}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("%v", err)
	}
	opt := map[string]string{}
	for k, vs := range q {
		switch k {
		case "ca", "cert", "key", "server_name":
		default:
			return bad("unknown option %q (want ca, cert, key or server_name)", k)
		}
		if len(vs) != 1 || vs[0] == "" {
			return bad("option %s wants one value", k)
		}
		opt[k] = vs[0]
	}
	if u.Scheme == "grpc" {
		if len(opt) > 0 {
			return bad("TLS options need grpcs://")
		}
		return o, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opt["server_name"]}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if ca := opt["ca"]; ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return bad("ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return bad("ca: no PEM certificate in %s", ca)
		}
	}
	if (opt["cert"] == "") != (opt["key"] == "") {
		return bad("give both cert and key, or neither")
	}
	if opt["cert"] != "" {
		pair, err := tls.LoadX509KeyPair(opt["cert"], opt["key"])
		if err != nil {
			return bad("cert and key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	o.TLS = cfg
	return o, nil
}

// Open returns a client of the chunk service that a grpc:// or grpcs://
// URL names. It does not connect (see the package documentation).
func Open(ctx context.Context, u *url.URL) (*Client, error) {
	o, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	return New(o)
}

// New returns a client of the chunk service that o describes. It does not
// connect.
func New(o Options) (*Client, error) {
	const op dfms.Op = "store/grpcstore.New"
	if o.Target == "" {
		return nil, dfms.Errorf(op, dfms.Invalid, "no target")
	}
	if o.MaxChunkSize <= 0 {
		o.MaxChunkSize = DefaultMaxChunkSize
	}
	creds, scheme := insecure.NewCredentials(), "grpc"
	if o.TLS != nil {
		creds, scheme = credentials.NewTLS(o.TLS), "grpcs"
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)),
		// Chunks are large: windows of several frames (instead of the
		// default's 64 KiB growing by estimate) and buffers of a quarter
		// frame (not 32 KiB) make fewer window updates and system calls.
		// Over loopback, Get of 1 MiB chunks went from about 800 to
		// about 900 MB/s (BenchmarkStore in server/chunkservice).
		grpc.WithInitialWindowSize(4 * FrameSize),
		grpc.WithInitialConnWindowSize(16 * FrameSize),
		grpc.WithWriteBufferSize(FrameSize / 4),
		grpc.WithReadBufferSize(FrameSize / 4),
	}, o.DialOptions...)
	conn, err := grpc.NewClient(o.Target, opts...)
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, err)
	}
	return &Client{conn: conn, rpc: chunkpb.NewChunkServiceClient(conn), target: o.Target, scheme: scheme, maxChunk: o.MaxChunkSize}, nil
}

// String returns the service's URL without options, as grpc://HOST:PORT
// or grpcs://HOST:PORT.
func (c *Client) String() string { return c.scheme + "://" + c.target }

// fail classifies an error of a call.
func (c *Client) fail(op dfms.Op, err error) error { return fromStatus(op, c.target, err) }

// bad reports a reply that breaks the protocol: a faulty server, or not
// a chunk service at all.
func (c *Client) bad(op dfms.Op, format string, args ...any) error {
	return dfms.E(op, dfms.Other, fmt.Errorf("%s: protocol error: "+format, append([]any{c.target}, args...)...))
}

// Put sends data in frames and waits until the service has stored it.
func (c *Client) Put(ctx context.Context, h dfms.Hash, data []byte) error {
	const op dfms.Op = "store/grpcstore.Put"
	if err := ctx.Err(); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	ctx, cancel := context.WithCancel(ctx) // ends the stream on every return
	defer cancel()
	st, err := c.rpc.Put(ctx)
	if err != nil {
		return c.fail(op, err)
	}
	err = sendChunk(h, data, func(hdr *chunkpb.ChunkHeader, frame []byte) error {
		return st.Send(&chunkpb.PutRequest{Header: hdr, Data: frame})
	})
	if err == nil || err == io.EOF {
		// io.EOF: the service ended the call early; CloseAndRecv gets
		// its status.
		_, err = st.CloseAndRecv()
	}
	return c.fail(op, err)
}

// sendChunk sends a chunk as the protocol wants it: its header with its
// first frame, then the other frames.
func sendChunk(h dfms.Hash, data []byte, send func(*chunkpb.ChunkHeader, []byte) error) error {
	hdr := &chunkpb.ChunkHeader{Hash: h[:], Size: int64(len(data))}
	for first := true; first || len(data) > 0; first = false {
		n := min(len(data), FrameSize)
		if err := send(hdr, data[:n]); err != nil {
			return err
		}
		hdr, data = nil, data[n:]
	}
	return nil
}

// Get appends the chunk's frames to buf, which it grows once, by the size
// the service announces if that is within the limit. On error it returns
// buf unchanged.
func (c *Client) Get(ctx context.Context, h dfms.Hash, buf []byte) ([]byte, error) {
	const op dfms.Op = "store/grpcstore.Get"
	if err := ctx.Err(); err != nil {
		return buf, dfms.E(op, dfms.Other, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.rpc.Get(ctx, &chunkpb.GetRequest{Hash: h[:]})
	if err != nil {
		return buf, c.fail(op, err)
	}
	m, err := st.Recv()
	if err == io.EOF {
		return buf, c.bad(op, "Get of %s ended without an answer", h)
	}
	if err != nil {
		return buf, c.fail(op, err)
	}
	if m.Size < 0 || m.Size > int64(c.maxChunk) {
		return buf, c.bad(op, "chunk %s has %d bytes, more than the %d this client accepts", h, m.Size, c.maxChunk)
	}
	size := int(m.Size)
	out := slices.Grow(buf, size)
	for {
		if len(m.Data) > size-(len(out)-len(buf)) {
			return buf, c.bad(op, "the service sent more than the %d bytes of chunk %s", size, h)
		}
		out = append(out, m.Data...)
		m, err = st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, c.fail(op, err)
		}
		if m.Size != 0 {
			return buf, c.bad(op, "a size in the middle of chunk %s", h)
		}
	}
	if got := len(out) - len(buf); got != size {
		return buf, c.bad(op, "the service sent %d of the %d bytes of chunk %s", got, size, h)
	}
	return out, nil
}

// Stat returns the stored size of h.
func (c *Client) Stat(ctx context.Context, h dfms.Hash) (int64, error) {
	const op dfms.Op = "store/grpcstore.Stat"
	if err := ctx.Err(); err != nil {
		return 0, dfms.E(op, dfms.Other, err)
	}
	r, err := c.rpc.Stat(ctx, &chunkpb.StatRequest{Hash: h[:]})
	if err != nil {
		return 0, c.fail(op, err)
	}
	return r.Size, nil
}

// Delete removes h.
func (c *Client) Delete(ctx context.Context, h dfms.Hash) error {
	const op dfms.Op = "store/grpcstore.Delete"
	if err := ctx.Err(); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	_, err := c.rpc.Delete(ctx, &chunkpb.DeleteRequest{Hash: h[:]})
	return c.fail(op, err)
}

// Walk calls fn for every chunk the service lists. An error from fn ends
// the call to the service and is returned as it is.
func (c *Client) Walk(ctx context.Context, fn func(dfms.ChunkInfo) error) error {
	const op dfms.Op = "store/grpcstore.Walk"
	if err := ctx.Err(); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.rpc.Walk(ctx, &chunkpb.WalkRequest{})
	if err != nil {
		return c.fail(op, err)
	}
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return c.fail(op, err)
		}
		for _, ci := range m.Chunks {
			if len(ci.Hash) != dfms.HashSize {
				return c.bad(op, "Walk listed a hash of %d bytes", len(ci.Hash))
			}
			info := dfms.ChunkInfo{Hash: dfms.Hash(ci.Hash), Size: ci.Size, ModTime: time.Unix(0, ci.ModTimeUnixNano)}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
}

// PutBatch stores chunks in calls of at most MaxBatchChunks chunks and
// MaxBatchBytes bytes, one after the other.
func (c *Client) PutBatch(ctx context.Context, chunks []dfms.ChunkData) error {
	const op dfms.Op = "store/grpcstore.PutBatch"
	if err := ctx.Err(); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	for len(chunks) > 0 {
		n, size := 0, 0
		for n < len(chunks) && n < MaxBatchChunks && (n == 0 || size+len(chunks[n].Data) <= MaxBatchBytes) {
			size += len(chunks[n].Data)
			n++
		}
		if err := c.putBatch(ctx, chunks[:n], size); err != nil {
			return c.fail(op, err)
		}
		chunks = chunks[n:]
	}
	return nil
}

// putBatch makes one PutBatch call.
func (c *Client) putBatch(ctx context.Context, chunks []dfms.ChunkData, size int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.rpc.PutBatch(ctx)
	if err != nil {
		return err
	}
	err = st.Send(&chunkpb.PutBatchRequest{Batch: &chunkpb.BatchHeader{Chunks: int64(len(chunks)), Bytes: int64(size)}})
	for _, ch := range chunks {
		if err != nil {
			break
		}
		err = sendChunk(ch.Hash, ch.Data, func(hdr *chunkpb.ChunkHeader, frame []byte) error {
			return st.Send(&chunkpb.PutBatchRequest{Header: hdr, Data: frame})
		})
	}
	if err == nil || err == io.EOF {
		_, err = st.CloseAndRecv()
	}
	return err
}

// RemoveStaleTemp asks the service to remove its store's stale temporary
// files (see disk.Disk.RemoveStaleTemp): the garbage collector of a
// server whose chunks are in a chunk service calls it through this.
func (c *Client) RemoveStaleTemp(ctx context.Context, cutoff time.Time) (int, error) {
	const op dfms.Op = "store/grpcstore.RemoveStaleTemp"
	if err := ctx.Err(); err != nil {
		return 0, dfms.E(op, dfms.Other, err)
	}
	r, err := c.rpc.RemoveStaleTemp(ctx, &chunkpb.RemoveStaleTempRequest{CutoffUnixNano: cutoff.UnixNano()})
	if err != nil {
		return 0, c.fail(op, err)
	}
	return int(r.Removed), nil
}

// Close closes the connection. Calls under way fail.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return dfms.E("store/grpcstore.Close", dfms.Other, err)
	}
	return nil
}
