package grpcstore

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store/grpcstore/chunkpb"
)

var ctx = context.Background()

func TestParseURL(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		raw, target, serverName string
		tls                     bool
	}{
		{raw: "grpc://127.0.0.1:9091", target: "127.0.0.1:9091"},
		{raw: "grpc://node-1.example:9091/", target: "node-1.example:9091"},
		{raw: "grpc://[::1]:9091", target: "[::1]:9091"},
		{raw: "grpcs://node-1.example:9443", target: "node-1.example:9443", tls: true, serverName: "node-1.example"},
		{raw: "grpcs://10.0.0.1:9443?server_name=chunks.internal", target: "10.0.0.1:9443", tls: true, serverName: "chunks.internal"},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		o, err := ParseURL(u)
		if err != nil {
			t.Errorf("ParseURL(%s): %v", tc.raw, err)
			continue
		}
		if o.Target != tc.target || (o.TLS != nil) != tc.tls {
			t.Errorf("ParseURL(%s): got target %q, TLS %v; want %q, %v", tc.raw, o.Target, o.TLS != nil, tc.target, tc.tls)
		}
		if tc.tls && o.TLS.ServerName != tc.serverName {
			t.Errorf("ParseURL(%s): got server name %q, want %q", tc.raw, o.TLS.ServerName, tc.serverName)
		}
	}
	for _, raw := range []string{
		"grpc://127.0.0.1",
		"grpc://:9091",
		"grpc://host:0",
		"grpc://host:99999",
		"grpc://host:9091/path",
		"grpc://user:pass@host:9091",
		"grpc://host:9091?ca=/etc/ca.pem",
		"grpc://host:9091#frag",
		"grpcs://host:9091?bogus=1",
		"grpcs://host:9091?cert=/a.pem",
		"grpcs://host:9091?ca=",
		"grpcs://host:9091?ca=" + filepath.Join(dir, "missing.pem"),
		"grpcs://host:9091?ca=" + notPEM,
		"grpcs://host:9091?cert=" + notPEM + "&key=" + notPEM,
		"http://host:9091",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if o, err := ParseURL(u); !dfms.Is(err, dfms.Invalid) {
			t.Errorf("ParseURL(%s): got %+v, %v; want kind %v", raw, o, err, dfms.Invalid)
		}
	}
}

// Every kind has a status code, and kinds survive the round trip
// through a status even where they share a code.
func TestStatusRoundTrip(t *testing.T) {
	n := 0
	for k := dfms.ErrorKind(0); k.String() != "unknown kind"; k++ {
		n++
		if _, ok := kindCodes[k]; !ok {
			t.Errorf("kind %v has no status code", k)
		}
		err := fromStatus("test.Op", "host:1", ToStatus(dfms.E("remote.Op", k, errors.New("boom"))))
		if dfms.KindOf(err) != k {
			t.Errorf("kind %v: got back %v (kind %v)", k, err, dfms.KindOf(err))
		}
		if !strings.Contains(err.Error(), "remote.Op") || !strings.Contains(err.Error(), "host:1") {
			t.Errorf("kind %v: %q names neither the remote operation nor the service", k, err)
		}
	}
	if len(kindCodes) != n {
		t.Errorf("kindCodes has %d kinds, dfms %d", len(kindCodes), n)
	}
}

// Statuses without our detail (gRPC's own, another server's) get the kind
// of their code; cancellation is context.Canceled.
func TestFromStatusCodes(t *testing.T) {
	for _, tc := range []struct {
		code codes.Code
		kind dfms.ErrorKind
	}{
		{codes.NotFound, dfms.NotExist},
		{codes.InvalidArgument, dfms.Invalid},
		{codes.Unavailable, dfms.Unavailable},
		{codes.ResourceExhausted, dfms.TooLarge},
		{codes.PermissionDenied, dfms.Permission},
		{codes.Unauthenticated, dfms.Unauthenticated},
		{codes.DataLoss, dfms.Corrupt},
		{codes.Aborted, dfms.Conflict},
		{codes.Unimplemented, dfms.NotSupported},
		{codes.Internal, dfms.Other},
		{codes.Unknown, dfms.Other},
	} {
		err := fromStatus("test.Op", "host:1", status.Error(tc.code, "x"))
		if dfms.KindOf(err) != tc.kind {
			t.Errorf("%v: got kind %v, want %v", tc.code, dfms.KindOf(err), tc.kind)
		}
		var re *RemoteError
		if !errors.As(err, &re) || re.Code != tc.code {
			t.Errorf("%v: %v does not wrap a RemoteError with the code", tc.code, err)
		}
	}
	for code, want := range map[codes.Code]error{codes.Canceled: context.Canceled, codes.DeadlineExceeded: context.DeadlineExceeded} {
		if err := fromStatus("test.Op", "host:1", status.Error(code, "x")); !errors.Is(err, want) {
			t.Errorf("%v: got %v, want an error wrapping %v", code, err, want)
		}
	}
	// A kind this build does not know falls back on the code.
	st, _ := status.New(codes.NotFound, "x").WithDetails(&chunkpb.Error{Kind: 200})
	if err := fromStatus("test.Op", "host:1", st.Err()); !dfms.Is(err, dfms.NotExist) {
		t.Errorf("unknown kind: got %v, want kind %v", err, dfms.NotExist)
	}
	// A context error on the server becomes the matching code.
	if c := status.Code(ToStatus(dfms.E("x", dfms.Other, context.Canceled))); c != codes.Canceled {
		t.Errorf("ToStatus(canceled): got %v", c)
	}
}

// liar is a chunk service whose Get misbehaves as told.
type liar struct {
	chunkpb.UnimplementedChunkServiceServer
	get func(st grpc.ServerStreamingServer[chunkpb.GetResponse]) error
}

func (l *liar) Get(_ *chunkpb.GetRequest, st grpc.ServerStreamingServer[chunkpb.GetResponse]) error {
	return l.get(st)
}

// Get accepts no more than the size it was told, and no size over its
// limit: a faulty server cannot make it allocate without bound.
func TestGetBounds(t *testing.T) {
	const limit = 1 << 20
	frame := make([]byte, FrameSize)
	for _, tc := range []struct {
		name string
		get  func(st grpc.ServerStreamingServer[chunkpb.GetResponse]) error
	}{
		{"size over the limit", func(st grpc.ServerStreamingServer[chunkpb.GetResponse]) error {
			return st.Send(&chunkpb.GetResponse{Size: 1 << 40})
		}},
		{"negative size", func(st grpc.ServerStreamingServer[chunkpb.GetResponse]) error {
			return st.Send(&chunkpb.GetResponse{Size: -1})
		}},
		{"more bytes than announced", func(st grpc.ServerStreamingServer[chunkpb.GetResponse]) error {
			if err := st.Send(&chunkpb.GetResponse{Size: 10, Data: frame[:10]}); err != nil {
				return err
			}
			for range 100 { // stops when the client goes
				if err := st.Send(&chunkpb.GetResponse{Data: frame}); err != nil {
					return err
				}
			}
			return nil
		}},
		{"fewer bytes than announced", func(st grpc.ServerStreamingServer[chunkpb.GetResponse]) error {
			return st.Send(&chunkpb.GetResponse{Size: 10, Data: frame[:5]})
		}},
		{"no answer", func(st grpc.ServerStreamingServer[chunkpb.GetResponse]) error { return nil }},
		{"a second size", func(st grpc.ServerStreamingServer[chunkpb.GetResponse]) error {
			if err := st.Send(&chunkpb.GetResponse{Size: 10, Data: frame[:5]}); err != nil {
				return err
			}
			return st.Send(&chunkpb.GetResponse{Size: 10, Data: frame[:5]})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			g := grpc.NewServer()
			chunkpb.RegisterChunkServiceServer(g, &liar{get: tc.get})
			go g.Serve(ln)
			defer g.Stop()
			c, err := New(Options{Target: ln.Addr().String(), MaxChunkSize: limit})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := []byte("prefix")
			got, err := c.Get(ctx, dfms.Hash{1}, buf)
			if err == nil || dfms.KindOf(err) != dfms.Other {
				t.Fatalf("Get: got %d bytes, %v; want an error of kind %v", len(got), err, dfms.Other)
			}
			if string(got) != "prefix" || cap(got) != cap(buf) {
				t.Fatalf("Get: got %q (cap %d) on error, want the caller's buffer unchanged", got, cap(got))
			}
		})
	}
}
