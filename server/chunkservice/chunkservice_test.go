package chunkservice

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/placement/store/grpcstore"
	"github.com/dfms/dfms/placement/store/grpcstore/chunkpb"
	"github.com/dfms/dfms/placement/store/storetest"
)

var ctx = context.Background()

// serve runs a Service over st on a loopback TCP port until t ends, with
// TLS if tlsCfg is not nil, and returns its address.
func serve(t testing.TB, st dfms.ChunkStore, opts Options, tlsCfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Log == nil {
		opts.Log = quietLog()
	}
	var extra []grpc.ServerOption
	if tlsCfg != nil {
		extra = append(extra, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- New(st, opts).Serve(sctx, ln, extra...) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// openDisk opens a disk store in a new temporary directory.
func openDisk(t testing.TB) (*disk.Disk, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d, dir
}

// dial opens the store at a chunk store URL, as the server does.
func dial(t testing.TB, raw string) dfms.ChunkStore {
	t.Helper()
	s, err := store.Open(ctx, raw)
	if err != nil {
		t.Fatalf("store.Open(%s): %v", raw, err)
	}
	return s
}

// rawClient is the generated client, for requests the Go client would
// never send.
func rawClient(t testing.TB, addr string) chunkpb.ChunkServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return chunkpb.NewChunkServiceClient(conn)
}

// The Go client over a real service over a disk store is a chunk store
// like any other, with batches and stale temporary files too.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dfms.ChunkStore {
		d, _ := openDisk(t)
		return dial(t, "grpc://"+serve(t, d, Options{}, nil))
	})
	storetest.RunReopen(t, func(t *testing.T) func(t *testing.T) dfms.ChunkStore {
		d, _ := openDisk(t)
		addr := serve(t, d, Options{}, nil)
		return func(t *testing.T) dfms.ChunkStore { return dial(t, "grpc://"+addr) }
	})
}

// The same over TLS, with a CA made here and client certificates
// required.
func TestConformanceTLS(t *testing.T) {
	pki := newPKI(t)
	storetest.Run(t, func(t *testing.T) dfms.ChunkStore {
		d, _ := openDisk(t)
		addr := serve(t, d, Options{}, pki.serverTLS(t, true))
		return dial(t, pki.url(addr, true))
	})
}

// A store that is not a BatchPutter gets a batch one Put at a time, and
// one without RemoveStaleTemp removes nothing.
func TestConformancePlainStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dfms.ChunkStore {
		d, _ := openDisk(t)
		return dial(t, "grpc://"+serve(t, plainStore{d}, Options{}, nil))
	})
}

// plainStore hides the disk store's optional interfaces.
type plainStore struct{ dfms.ChunkStore }

func TestTLSRefusals(t *testing.T) {
	pki := newPKI(t)
	d, _ := openDisk(t)
	addr := serve(t, d, Options{}, pki.serverTLS(t, true))
	data := []byte("tls")
	for _, tc := range []struct{ name, url string }{
		{"plaintext", "grpc://" + addr},
		{"no client certificate", pki.url(addr, false)},
		{"unknown authority", "grpcs://" + addr},
		{"wrong server name", pki.url(addr, true) + "&server_name=other.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := dial(t, tc.url)
			defer s.Close()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := s.Put(cctx, dfms.Sum(data), data)
			if !dfms.Is(err, dfms.Unavailable) {
				t.Fatalf("Put: got %v (kind %v), want kind %v", err, dfms.KindOf(err), dfms.Unavailable)
			}
		})
	}
	if _, err := d.Stat(ctx, dfms.Sum(data)); !dfms.Is(err, dfms.NotExist) {
		t.Errorf("a refused client stored a chunk: Stat: %v", err)
	}
}

// kindStore fails every call with an error of its kind.
type kindStore struct{ kind dfms.ErrorKind }

func (k kindStore) err(op dfms.Op) error {
	return dfms.E(op, k.kind, errors.New("injected"))
}
func (k kindStore) Put(context.Context, dfms.Hash, []byte) error { return k.err("kind.Put") }
func (k kindStore) Get(_ context.Context, _ dfms.Hash, b []byte) ([]byte, error) {
	return b, k.err("kind.Get")
}
func (k kindStore) Stat(context.Context, dfms.Hash) (int64, error) { return 0, k.err("kind.Stat") }
func (k kindStore) Delete(context.Context, dfms.Hash) error        { return k.err("kind.Delete") }
func (k kindStore) Walk(context.Context, func(dfms.ChunkInfo) error) error {
	return k.err("kind.Walk")
}
func (k kindStore) PutBatch(context.Context, []dfms.ChunkData) error { return k.err("kind.PutBatch") }
func (k kindStore) RemoveStaleTemp(context.Context, time.Time) (int, error) {
	return 0, k.err("kind.RemoveStaleTemp")
}
func (k kindStore) Close() error { return nil }

// Every error kind of the store reaches the client as that kind, with the
// server's operation in the message, by every call; and the status code
// is the one the table gives, for clients that are not ours.
func TestErrorKindsRoundTrip(t *testing.T) {
	data := []byte("kinds")
	h := dfms.Sum(data)
	for k := dfms.ErrorKind(0); k.String() != "unknown kind"; k++ {
		t.Run(k.String(), func(t *testing.T) {
			addr := serve(t, kindStore{k}, Options{}, nil)
			c := dial(t, "grpc://"+addr)
			defer c.Close()
			calls := map[string]error{
				"Put":    c.Put(ctx, h, data),
				"Delete": c.Delete(ctx, h),
				"Walk":   c.Walk(ctx, func(dfms.ChunkInfo) error { return nil }),
			}
			_, calls["Get"] = c.Get(ctx, h, nil)
			_, calls["Stat"] = c.Stat(ctx, h)
			calls["PutBatch"] = c.(dfms.BatchPutter).PutBatch(ctx, []dfms.ChunkData{{Hash: h, Data: data}})
			_, calls["RemoveStaleTemp"] = c.(interface {
				RemoveStaleTemp(context.Context, time.Time) (int, error)
			}).RemoveStaleTemp(ctx, time.Now())
			for name, err := range calls {
				if got := dfms.KindOf(err); err == nil || got != k {
					t.Errorf("%s: got %v (kind %v), want kind %v", name, err, got, k)
					continue
				}
				if want := "kind." + name; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), addr) {
					t.Errorf("%s: error %q does not name %s and the service %s", name, err, want, addr)
				}
			}
			_, err := rawClient(t, addr).Stat(ctx, &chunkpb.StatRequest{Hash: h[:]})
			want := map[dfms.ErrorKind]codes.Code{dfms.Other: codes.Internal, dfms.Invalid: codes.InvalidArgument,
				dfms.NotExist: codes.NotFound, dfms.Conflict: codes.Aborted, dfms.Quota: codes.ResourceExhausted,
				dfms.Unavailable: codes.Unavailable, dfms.Permission: codes.PermissionDenied, dfms.Corrupt: codes.DataLoss}
			if code, ok := want[k]; ok && status.Code(err) != code {
				t.Errorf("raw Stat: got code %v, want %v", status.Code(err), code)
			}
		})
	}
}

// A service that is not there is Unavailable, at once.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := dial(t, "grpc://"+addr)
	defer c.Close()
	start := time.Now()
	_, err = c.Stat(ctx, dfms.Sum(nil))
	if !dfms.Is(err, dfms.Unavailable) {
		t.Fatalf("Stat: got %v (kind %v), want kind %v", err, dfms.KindOf(err), dfms.Unavailable)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stat took %v to fail", d)
	}
}

// put sends a Put stream of the given messages and returns the status.
func put(t *testing.T, rc chunkpb.ChunkServiceClient, msgs ...*chunkpb.PutRequest) error {
	t.Helper()
	st, err := rc.Put(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := st.Send(m); err != nil {
			break // the status is CloseAndRecv's
		}
	}
	_, err = st.CloseAndRecv()
	return err
}

// putBatch sends a PutBatch stream of the given messages and returns the
// status.
func putBatch(t *testing.T, rc chunkpb.ChunkServiceClient, msgs ...*chunkpb.PutBatchRequest) error {
	t.Helper()
	st, err := rc.PutBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := st.Send(m); err != nil {
			break
		}
	}
	_, err = st.CloseAndRecv()
	return err
}

func hdr(h dfms.Hash, size int) *chunkpb.ChunkHeader {
	return &chunkpb.ChunkHeader{Hash: h[:], Size: int64(size)}
}

// Bad puts, which our client never sends, store nothing and fail with
// INVALID_ARGUMENT (or RESOURCE_EXHAUSTED for a message over gRPC's limit).
func TestBadPutsStoreNothing(t *testing.T) {
	d, _ := openDisk(t)
	const max = 1 << 20
	addr := serve(t, d, Options{MaxChunkSize: max}, nil)
	rc := rawClient(t, addr)
	data := bytes.Repeat([]byte("0123456789abcdef"), 2<<10) // 32 KiB
	h := dfms.Sum(data)
	big := bytes.Repeat([]byte{7}, max+1)
	other := dfms.Sum([]byte("other"))

	for _, tc := range []struct {
		name string
		err  func() error
		code codes.Code
	}{
		{"wrong hash", func() error {
			return put(t, rc, &chunkpb.PutRequest{Header: hdr(other, len(data)), Data: data})
		}, codes.InvalidArgument},
		{"one byte changed", func() error {
			bad := bytes.Clone(data)
			bad[1000] ^= 1
			return put(t, rc, &chunkpb.PutRequest{Header: hdr(h, len(data)), Data: bad[:10000]}, &chunkpb.PutRequest{Data: bad[10000:]})
		}, codes.InvalidArgument},
		{"truncated", func() error {
			return put(t, rc, &chunkpb.PutRequest{Header: hdr(h, len(data)), Data: data[:len(data)/2]})
		}, codes.InvalidArgument},
		{"too long", func() error {
			return put(t, rc, &chunkpb.PutRequest{Header: hdr(h, len(data)), Data: data}, &chunkpb.PutRequest{Data: []byte("x")})
		}, codes.InvalidArgument},
		{"declared oversize", func() error {
			return put(t, rc, &chunkpb.PutRequest{Header: hdr(dfms.Sum(big), len(big))})
		}, codes.InvalidArgument},
		{"declared 1 TiB", func() error {
			return put(t, rc, &chunkpb.PutRequest{Header: hdr(h, 1<<40)})
		}, codes.InvalidArgument},
		{"negative size", func() error {
			return put(t, rc, &chunkpb.PutRequest{Header: hdr(h, -1)})
		}, codes.InvalidArgument},
		{"no header", func() error {
			return put(t, rc, &chunkpb.PutRequest{Data: data})
		}, codes.InvalidArgument},
		{"empty stream", func() error { return put(t, rc) }, codes.InvalidArgument},
		{"short hash", func() error {
			return put(t, rc, &chunkpb.PutRequest{Header: &chunkpb.ChunkHeader{Hash: h[:31], Size: int64(len(data))}, Data: data})
		}, codes.InvalidArgument},
		{"two headers", func() error {
			return put(t, rc, &chunkpb.PutRequest{Header: hdr(h, len(data)), Data: data[:100]}, &chunkpb.PutRequest{Header: hdr(h, len(data)), Data: data[100:]})
		}, codes.InvalidArgument},
		{"message over the limit", func() error {
			huge := bytes.Repeat([]byte{1}, grpcstore.MaxMessageSize+1)
			return put(t, rc, &chunkpb.PutRequest{Header: hdr(dfms.Sum(huge), len(huge)), Data: huge})
		}, codes.ResourceExhausted},
		{"batch with one bad chunk", func() error {
			good := []byte("good chunk")
			return putBatch(t, rc,
				&chunkpb.PutBatchRequest{Batch: &chunkpb.BatchHeader{Chunks: 2, Bytes: int64(len(good) + len(data))}},
				&chunkpb.PutBatchRequest{Header: hdr(dfms.Sum(good), len(good)), Data: good},
				&chunkpb.PutBatchRequest{Header: hdr(other, len(data)), Data: data})
		}, codes.InvalidArgument},
		{"batch truncated", func() error {
			good := []byte("good chunk")
			return putBatch(t, rc,
				&chunkpb.PutBatchRequest{Batch: &chunkpb.BatchHeader{Chunks: 2, Bytes: int64(len(good) + len(data))}},
				&chunkpb.PutBatchRequest{Header: hdr(dfms.Sum(good), len(good)), Data: good},
				&chunkpb.PutBatchRequest{Header: hdr(h, len(data)), Data: data[:10]})
		}, codes.InvalidArgument},
		{"batch missing a chunk", func() error {
			return putBatch(t, rc,
				&chunkpb.PutBatchRequest{Batch: &chunkpb.BatchHeader{Chunks: 2, Bytes: int64(2 * len(data))}},
				&chunkpb.PutBatchRequest{Header: hdr(h, len(data)), Data: data})
		}, codes.InvalidArgument},
		{"batch with an extra chunk", func() error {
			return putBatch(t, rc,
				&chunkpb.PutBatchRequest{Batch: &chunkpb.BatchHeader{Chunks: 1, Bytes: int64(2 * len(data))}},
				&chunkpb.PutBatchRequest{Header: hdr(h, len(data)), Data: data},
				&chunkpb.PutBatchRequest{Header: hdr(h, len(data)), Data: data})
		}, codes.InvalidArgument},
		{"batch over its announced bytes", func() error {
			return putBatch(t, rc,
				&chunkpb.PutBatchRequest{Batch: &chunkpb.BatchHeader{Chunks: 1, Bytes: 10}},
				&chunkpb.PutBatchRequest{Header: hdr(h, len(data)), Data: data})
		}, codes.InvalidArgument},
		{"batch of 1 GiB", func() error {
			return putBatch(t, rc, &chunkpb.PutBatchRequest{Batch: &chunkpb.BatchHeader{Chunks: 1, Bytes: 1 << 30}})
		}, codes.InvalidArgument},
		{"batch of a million chunks", func() error {
			return putBatch(t, rc, &chunkpb.PutBatchRequest{Batch: &chunkpb.BatchHeader{Chunks: 1 << 20, Bytes: 0}})
		}, codes.InvalidArgument},
		{"batch without header", func() error {
			return putBatch(t, rc, &chunkpb.PutBatchRequest{Header: hdr(h, len(data)), Data: data})
		}, codes.InvalidArgument},
		{"batch with bytes before a chunk", func() error {
			return putBatch(t, rc, &chunkpb.PutBatchRequest{Batch: &chunkpb.BatchHeader{Chunks: 1, Bytes: int64(len(data))}, Data: data})
		}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want code %v", err, tc.code)
			}
			assertEmpty(t, d)
		})
	}

	// A put cut off by its client stores nothing either.
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		st, err := rc.Put(cctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&chunkpb.PutRequest{Header: hdr(h, len(data)), Data: data[:100]}); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := st.CloseAndRecv(); status.Code(err) != codes.Canceled {
			t.Fatalf("got %v, want code %v", err, codes.Canceled)
		}
		time.Sleep(100 * time.Millisecond) // for the server to see it
		assertEmpty(t, d)
	})

	// And the service still works.
	if err := put(t, rc, &chunkpb.PutRequest{Header: hdr(h, len(data)), Data: data}); err != nil {
		t.Fatalf("a good Put after the bad ones: %v", err)
	}
	if got, err := d.Get(ctx, h, nil); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get: %d bytes, %v", len(got), err)
	}
}

// assertEmpty fails t if the store holds a chunk.
func assertEmpty(t *testing.T, s dfms.ChunkStore) {
	t.Helper()
	n := 0
	if err := s.Walk(ctx, func(dfms.ChunkInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("the store holds %d chunks, want none", n)
	}
}

// The declared size may reach the configured maximum, not more, and the
// client's PutBatch splits what the protocol would refuse.
func TestLimits(t *testing.T) {
	d, _ := openDisk(t)
	const max = 2 << 20
	addr := serve(t, d, Options{MaxChunkSize: max}, nil)
	c := dial(t, "grpc://"+addr)
	defer c.Close()
	ok := bytes.Repeat([]byte{1}, max)
	if err := c.Put(ctx, dfms.Sum(ok), ok); err != nil {
		t.Fatalf("Put of %d bytes: %v", len(ok), err)
	}
	over := bytes.Repeat([]byte{2}, max+1)
	if err := c.Put(ctx, dfms.Sum(over), over); !dfms.Is(err, dfms.TooLarge) {
		t.Fatalf("Put of %d bytes: got %v (kind %v), want kind %v", len(over), err, dfms.KindOf(err), dfms.TooLarge)
	}

	// 3000 small chunks and 12 of 2 MiB: several calls each.
	var batch []dfms.ChunkData
	for i := range 3000 {
		b := []byte(fmt.Sprintf("chunk %d", i))
		batch = append(batch, dfms.ChunkData{Hash: dfms.Sum(b), Data: b})
	}
	for i := range 12 {
		b := bytes.Repeat([]byte{byte(10 + i)}, max)
		batch = append(batch, dfms.ChunkData{Hash: dfms.Sum(b), Data: b})
	}
	if err := c.(dfms.BatchPutter).PutBatch(ctx, batch); err != nil {
		t.Fatalf("PutBatch of %d chunks: %v", len(batch), err)
	}
	for _, b := range batch {
		if size, err := d.Stat(ctx, b.Hash); err != nil || size != int64(len(b.Data)) {
			t.Fatalf("Stat(%s): %d, %v; want %d", b.Hash, size, err, len(b.Data))
		}
	}
}

// blockingStore blocks Get until its context ends, and reports that end.
type blockingStore struct {
	dfms.ChunkStore
	started chan struct{}
	ended   chan error
}

func (b *blockingStore) Get(ctx context.Context, _ dfms.Hash, buf []byte) ([]byte, error) {
	close(b.started)
	<-ctx.Done()
	b.ended <- ctx.Err()
	return buf, ctx.Err()
}

// A client that gives up cancels the store call that serves it.
func TestCancellationPropagates(t *testing.T) {
	d, _ := openDisk(t)
	bs := &blockingStore{ChunkStore: d, started: make(chan struct{}), ended: make(chan error, 1)}
	c := dial(t, "grpc://"+serve(t, bs, Options{}, nil))
	defer c.Close()
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Get(cctx, dfms.Sum(nil), nil)
		errc <- err
	}()
	<-bs.started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Get: got %v, want an error wrapping %v", err, context.Canceled)
	}
	select {
	case err := <-bs.ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the store's context ended with %v, want %v", err, context.Canceled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the store's Get was not cancelled")
	}
}

// brokenStore fails Stat as a node whose disk is gone.
type brokenStore struct{ dfms.ChunkStore }

func (brokenStore) Stat(context.Context, dfms.Hash) (int64, error) {
	return 0, dfms.Errorf("broken.Stat", dfms.Unavailable, "disk gone")
}

// The standard health service answers for the chunk service, and says
// NOT_SERVING when the store fails.
func TestHealth(t *testing.T) {
	d, _ := openDisk(t)
	for _, tc := range []struct {
		name  string
		store dfms.ChunkStore
		want  healthpb.HealthCheckResponse_ServingStatus
	}{
		{"ok", d, healthpb.HealthCheckResponse_SERVING},
		{"store down", brokenStore{d}, healthpb.HealthCheckResponse_NOT_SERVING},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, tc.store, Options{}, nil)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			hc := healthpb.NewHealthClient(conn)
			for _, svc := range []string{"", ServiceName} {
				r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || r.Status != tc.want {
					t.Errorf("Check(%q): got %v, %v; want %v", svc, r, err, tc.want)
				}
			}
			if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
				t.Errorf("Check of an unknown service: got %v, want code %v", err, codes.NotFound)
			}
		})
	}
}

// Serve stops when its context ends, letting a call under way finish.
func TestGracefulStop(t *testing.T) {
	d, _ := openDisk(t)
	bs := &slowStore{ChunkStore: d, started: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- New(bs, Options{Log: quietLog()}).Serve(sctx, ln) }()
	c := dial(t, "grpc://"+ln.Addr().String())
	defer c.Close()
	data := []byte("slow")
	errc := make(chan error, 1)
	go func() { errc <- c.Put(ctx, dfms.Sum(data), data) }()
	<-bs.started
	stop()
	if err := <-errc; err != nil {
		t.Errorf("Put under way at shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := d.Stat(ctx, dfms.Sum(data)); err != nil {
		t.Errorf("the Put under way was not stored: %v", err)
	}
}

// slowStore takes half a second to Put.
type slowStore struct {
	dfms.ChunkStore
	started chan struct{}
}

func (s *slowStore) Put(ctx context.Context, h dfms.Hash, data []byte) error {
	close(s.started)
	time.Sleep(500 * time.Millisecond)
	return s.ChunkStore.Put(ctx, h, data)
}

// pki is a test CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type pki struct {
	dir                                  string
	ca, srvCert, srvKey, cliCert, cliKey string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{dir: dir}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dfms test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"chunks.test"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	p.srvCert, p.srvKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.cliCert, p.cliKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

// serverTLS is the service's TLS configuration, requiring client
// certificates if mutual.
func (p *pki) serverTLS(t *testing.T, mutual bool) *tls.Config {
	t.Helper()
	ca := ""
	if mutual {
		ca = p.ca
	}
	cfg, err := TLSConfig(p.srvCert, p.srvKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// url is the grpcs:// URL of the service at addr, with the client's
// certificate if withCert.
func (p *pki) url(addr string, withCert bool) string {
	q := url.Values{"ca": {p.ca}}
	if withCert {
		q.Set("cert", p.cliCert)
		q.Set("key", p.cliKey)
	}
	return "grpcs://" + addr + "?" + q.Encode()
}

func TestTLSConfigErrors(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct{ name, cert, key, ca string }{
		{"no key", p.srvCert, "", ""},
		{"missing file", filepath.Join(p.dir, "nope.pem"), p.srvKey, ""},
		{"key of another certificate", p.srvCert, p.cliKey, ""},
		{"client CA not PEM", p.srvCert, p.srvKey, p.srvKey},
	} {
		if _, err := TLSConfig(tc.cert, tc.key, tc.ca); !dfms.Is(err, dfms.Invalid) {
			t.Errorf("%s: got %v, want kind %v", tc.name, err, dfms.Invalid)
		}
	}
}

// BenchmarkStore compares Put and Get of 1 MiB chunks on a disk store
// directly and through the chunk service over loopback TCP.
func BenchmarkStore(b *testing.B) {
	for _, via := range []string{"disk", "grpc"} {
		open := func(b *testing.B) dfms.ChunkStore {
			d, _ := openDisk(b)
			if via == "disk" {
				return d
			}
			return dial(b, "grpc://"+serve(b, d, Options{}, nil))
		}
		b.Run(via+"/Put", func(b *testing.B) {
			s := open(b)
			defer s.Close()
			data, h := storetest.BenchChunk()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := s.Put(ctx, h, data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(via+"/Get", func(b *testing.B) {
			s := open(b)
			defer s.Close()
			storetest.BenchGet(b, s, 0)
		})
		b.Run(via+"/GetParallel", func(b *testing.B) {
			s := open(b)
			defer s.Close()
			storetest.BenchGet(b, s, 4)
		})
	}
}

// quietLog discards the service's log.
func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
