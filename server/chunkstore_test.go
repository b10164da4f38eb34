package server

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/placement/store/grpcstore"
	"github.com/dfms/dfms/server/chunkservice"
)

// OpenChunks opens a local store, and refuses to make a chunk service
// the client of one.
func TestOpenChunks(t *testing.T) {
	cfg := testConfig(t)
	s, err := OpenChunks(context.Background(), &cfg, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Store.(*disk.Disk); !ok {
		t.Errorf("default chunk store: got %T, want *disk.Disk", s.Store)
	}
	s.Close()
	for _, raw := range []string{"grpc://127.0.0.1:9091", "GRPCS://chunks.example:9443?ca=/etc/ca.pem"} {
		cfg.Chunks.URL = raw
		if s, err := OpenChunks(context.Background(), &cfg, nil, quiet); !dfms.Is(err, dfms.Invalid) {
			t.Errorf("OpenChunks(%s): got %v, %v; want kind %v", raw, s, err, dfms.Invalid)
		}
	}
}

// A server whose chunks.url is grpc:// keeps its chunks in the chunk
// service's store, and its garbage collector removes that store's stale
// temporary files through the service.
func TestServerOverChunkService(t *testing.T) {
	ctx := context.Background()
	chunkDir := t.TempDir()
	d, err := disk.Open(chunkDir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- chunkservice.New(d, chunkservice.Options{Log: quiet}).Serve(sctx, ln) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	cfg := testConfig(t)
	cfg.Chunks.URL = "grpc://" + ln.Addr().String()
	cfg.Admin.Email, cfg.Admin.Password = "admin@example.com", "a long password"
	s, err := New(ctx, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.chunks.(*grpcstore.Client); !ok {
		t.Fatalf("chunk store: got %T, want *grpcstore.Client", s.chunks)
	}
	w := filesWrite(t, s)
	data := bytes.Repeat([]byte("over grpc "), 300000) // 3 MB: a few chunks
	w.Body = bytes.NewReader(data)
	if _, err := s.Files().Write(ctx, w); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := d.Walk(ctx, func(ci dfms.ChunkInfo) error { n += ci.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) {
		t.Errorf("the chunk service's store holds %d bytes, want %d", n, len(data))
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "chunks")); err == nil {
		t.Errorf("the server made a local chunk directory although its chunks are in a chunk service")
	}

	stale := filepath.Join(chunkDir, "ab", "cd", ".tmp-dead")
	if err := os.MkdirAll(filepath.Dir(stale), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("half a chunk"), 0o600); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, long, long); err != nil {
		t.Fatal(err)
	}
	st, err := s.gc.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil || st.TempFiles != 1 {
		t.Errorf("GC through the chunk service: removed %d temporary files (stat: %v), want the stale one", st.TempFiles, err)
	}
}
