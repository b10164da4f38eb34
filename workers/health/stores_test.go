package health_test

import (
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/placement/store/s3"
)

// newStoreEnv is a monitor of one node, "n1", whose chunk store is s.
func newStoreEnv(t *testing.T, s dfms.ChunkStore) *env {
	t.Helper()
	e := newEnv(t, map[string]dfms.NodeState{"n1": dfms.NodeUp})
	e.stores["n1"] = s
	e.mon.Timeout = 5 * time.Second
	return e
}

// expect runs a round and checks the node's state and failures after it.
func (e *env) expect(t *testing.T, state dfms.NodeState, failures int) {
	t.Helper()
	e.clock.Advance(10 * time.Second)
	e.round(t)
	if n := e.node(t, "n1"); n.State != state || n.Failures != failures {
		t.Fatalf("got %s with %d failures, want %s with %d; the monitor logged:\n%s", n.State, n.Failures, state, failures, e.log)
	}
}

// stored returns how many chunks s holds.
func stored(t *testing.T, s dfms.ChunkStore) int {
	t.Helper()
	n := 0
	testkit.OK(t, s.Walk(ctx, func(dfms.ChunkInfo) error { n++; return nil }))
	return n
}

// A disk store passes its probes and keeps nothing of them; one whose
// directory is gone fails them.
func TestDiskStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "chunks")
	d, err := disk.Open(dir)
	testkit.OK(t, err)
	e := newStoreEnv(t, d)
	e.expect(t, dfms.NodeUp, 0)
	e.expect(t, dfms.NodeUp, 0)
	if n := stored(t, d); n != 0 {
		t.Fatalf("%d probe chunks left on disk", n)
	}
	testkit.OK(t, filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			t.Errorf("probe left %s behind", path)
		}
		return err
	}))

	// The disk goes away: a file stands where the directory was.
	testkit.OK(t, os.RemoveAll(dir))
	testkit.OK(t, os.WriteFile(dir, nil, 0o600))
	e.expect(t, dfms.NodeSuspect, 1)
	e.expect(t, dfms.NodeSuspect, 2)
	e.expect(t, dfms.NodeDown, 3)

	testkit.OK(t, os.Remove(dir))
	testkit.OK(t, os.Mkdir(dir, 0o700))
	e.expect(t, dfms.NodeDown, 0)
	e.expect(t, dfms.NodeUp, 0)
}

// An S3 store whose endpoint stops answering (a closed port) fails its
// probes, and is down after three rounds. It needs no S3 server: the
// store is opened against a stub that answers only the bucket check,
// which then closes.
func TestS3ClosedPort(t *testing.T) {
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			http.Error(w, "a stub", http.StatusNotImplemented)
		}
	}))
	s, err := s3.New(ctx, s3.Options{Endpoint: stub.Listener.Addr().String(), Bucket: "chunks", Insecure: true})
	testkit.OK(t, err)
	t.Cleanup(func() { s.Close() })
	stub.Close()
	e := newStoreEnv(t, s)
	e.expect(t, dfms.NodeSuspect, 1)
	e.expect(t, dfms.NodeSuspect, 2)
	e.expect(t, dfms.NodeDown, 3)
}

// A real S3 store (versitygw in `make test`) passes its probes and keeps
// nothing of them; reached through a proxy that is stopped, it goes
// down after three rounds, and up again two rounds after the proxy
// returns on the same port.
func TestS3Store(t *testing.T) {
	raw := testenv.S3(t)
	u, err := url.Parse(raw)
	testkit.OK(t, err)
	o, err := s3.ParseURL(u)
	testkit.OK(t, err)
	direct, err := s3.New(ctx, o)
	testkit.OK(t, err)
	t.Cleanup(func() { direct.Close() })
	e := newStoreEnv(t, direct)
	e.expect(t, dfms.NodeUp, 0)
	e.expect(t, dfms.NodeUp, 0)
	if n := stored(t, direct); n != 0 {
		t.Fatalf("%d probe chunks left in the bucket", n)
	}

	server := o.Endpoint
	p := startProxy(t, "127.0.0.1:0", server)
	addr := p.addr()
	o.Endpoint = addr
	proxied, err := s3.New(ctx, o)
	testkit.OK(t, err)
	t.Cleanup(func() { proxied.Close() })
	e.stores["n1"] = proxied
	e.expect(t, dfms.NodeUp, 0)
	p.close()
	e.expect(t, dfms.NodeSuspect, 1)
	e.expect(t, dfms.NodeSuspect, 2)
	e.expect(t, dfms.NodeDown, 3)
	startProxy(t, addr, server)
	e.expect(t, dfms.NodeDown, 0)
	e.expect(t, dfms.NodeUp, 0)
	if n := stored(t, direct); n != 0 {
		t.Fatalf("%d probe chunks left in the bucket", n)
	}
}

// proxy forwards TCP connections to a target until closed.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool // guarded by mu; open connections, both sides
}

// startProxy listens on addr and forwards to target; it is closed when
// the test ends, if not before.
func startProxy(t *testing.T, addr, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("proxy on %s: %v", addr, err)
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]bool)}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
			p.wg.Go(func() {
				io.Copy(pair[0], pair[1])
				pair[0].Close()
				pair[1].Close()
			})
		}
	}
}

// track records open connections; false if the proxy is closed.
func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

// close stops listening, cuts every connection and waits for the
// forwarding goroutines. It may be called more than once.
func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
