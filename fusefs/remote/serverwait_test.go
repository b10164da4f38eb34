package remote_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/remote"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/api/client/clienttest"
)

// restartable serves an API on a fixed address that can be stopped (the
// port then refuses connections) and started again.
type restartable struct {
	t    *testing.T
	h    http.Handler
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func newRestartable(t *testing.T, h http.Handler) *restartable {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &restartable{t: t, h: h, addr: ln.Addr().String()}
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) serve(ln net.Listener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.srv = &http.Server{Handler: r.h}
	go r.srv.Serve(ln)
}

func (r *restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

func (r *restartable) start() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Error(err)
		return
	}
	r.serve(ln)
}

// With WithServerWait, requests made while the server is down wait for it
// and succeed once it is back; the log says when it went and came back.
func TestServerWaitRetriesUntilBack(t *testing.T) {
	srv := clienttest.NewServer(t, clienttest.Options{})
	rs := newRestartable(t, srv.API.Handler())
	var logs testkit.SyncBuffer
	c, err := client.New("http://"+rs.addr, client.WithServerWait(time.Minute),
		client.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Login(ctx, clienttest.Email, clienttest.Password); err != nil {
		t.Fatal(err)
	}
	b := remote.New(c)
	root, err := b.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}

	rs.stop()
	back := make(chan struct{})
	go func() {
		time.Sleep(500 * time.Millisecond)
		rs.start()
		close(back)
	}()
	e, err := b.Mkdir(ctx, root.ID, "made while down", 0o755, 1, 2)
	if err != nil {
		t.Fatalf("mkdir while the server was down: %v", err)
	}
	<-back
	if got, err := b.Lookup(ctx, root.ID, "made while down"); err != nil || got.ID != e.ID {
		t.Fatalf("lookup after: %+v %v", got, err)
	}
	out := logs.String()
	t.Logf("log:\n%s", out)
	if !strings.Contains(out, "the server cannot be reached") || !strings.Contains(out, "the server answers again") {
		t.Error("the log does not say that the server went away and came back")
	}
}

// Past the wait a request fails with kind Unavailable, saying why, and
// until the server answers again later ones try once; without
// WithServerWait a request fails at once.
func TestServerWaitGivesUp(t *testing.T) {
	srv := clienttest.NewServer(t, clienttest.Options{})
	rs := newRestartable(t, srv.API.Handler())
	ctx := context.Background()
	for _, wait := range []time.Duration{0, time.Second} {
		c, err := client.New("http://"+rs.addr, client.WithServerWait(wait))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Login(ctx, clienttest.Email, clienttest.Password); err != nil {
			t.Fatal(err)
		}
		b := remote.New(c)
		rs.stop()
		began := time.Now()
		_, err = b.Root(ctx)
		took := time.Since(began)
		t.Logf("wait %v: failed after %v: %v", wait, took, err)
		if !dfms.Is(err, dfms.Unavailable) {
			t.Fatalf("wait %v: got %v, want kind Unavailable", wait, err)
		}
		if wait > 0 {
			if took < wait || !strings.Contains(err.Error(), "could not be reached for") {
				t.Errorf("wait %v: gave up after %v with %q", wait, took, err)
			}
			began = time.Now()
			_, err = b.Root(ctx)
			took = time.Since(began)
			t.Logf("again: failed after %v: %v", took, err)
			if !dfms.Is(err, dfms.Unavailable) || took >= wait {
				t.Errorf("a request past the wait failed after %v with %v, want at once", took, err)
			}
		}
		rs.start()
		if _, err := b.Root(ctx); err != nil {
			t.Fatalf("once the server is back: %v", err)
		}
		if wait > 0 {
			// The outage is over: a new one is waited for again.
			rs.stop()
			go func() {
				time.Sleep(300 * time.Millisecond)
				rs.start()
			}()
			if _, err := b.Root(ctx); err != nil {
				t.Fatalf("a new outage: %v", err)
			}
		}
	}
}

// loser makes the server do a request and lose its answer (the connection
// closes), as when the server is killed before it answers.
type loser struct {
	mu   sync.Mutex
	next string // the method whose next request loses its answer
	lost int
}

func (l *loser) loseNext(method string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next = method
}

func (l *loser) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		lose := l.next == r.Method && !strings.HasPrefix(r.URL.Path, "/api/v1/auth/")
		if lose {
			l.next = ""
			l.lost++
		}
		l.mu.Unlock()
		if !lose {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	})
}

// A create, rename or removal whose answer was lost is sent again; what
// the first attempt did is then success, not Exist or NotExist, and is
// not done twice; what it did not do still fails.
func TestServerWaitAnswerLost(t *testing.T) {
	l := &loser{}
	srv := clienttest.NewServer(t, clienttest.Options{Wrap: l.wrap})
	c := srv.Login(t, client.WithServerWait(time.Minute))
	ctx := context.Background()
	b := remote.New(c)
	root := srv.User.Root
	lost := func(method string, fn func() error) error {
		t.Helper()
		l.mu.Lock()
		before := l.lost
		l.mu.Unlock()
		l.loseNext(method)
		err := fn()
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.lost != before+1 {
			t.Fatalf("no answer of a %s was lost", method)
		}
		return err
	}

	var d vfs.Entry
	if err := lost("POST", func() (err error) { d, err = b.Mkdir(ctx, root, "d", 0o750, 1, 2); return err }); err != nil {
		t.Fatalf("mkdir whose answer was lost: %v", err)
	}
	if got, err := b.Lookup(ctx, root, "d"); err != nil || got.ID != d.ID || got.Kind != dfms.KindDir {
		t.Fatalf("mkdir answered %+v; the server has %+v (%v)", d, got, err)
	}
	if _, err := b.Mkdir(ctx, root, "d", 0o750, 1, 2); !dfms.Is(err, dfms.Exist) {
		t.Fatalf("a second mkdir: %v, want Exist", err)
	}
	var f vfs.Entry
	if err := lost("POST", func() (err error) { f, err = b.CreateFile(ctx, d.ID, "f", 0o640, 1, 2); return err }); err != nil || f.Name != "f" {
		t.Fatalf("create whose answer was lost: %+v %v", f, err)
	}
	if err := lost("POST", func() error { _, err := b.Symlink(ctx, d.ID, "s", "f", 1, 2); return err }); err != nil {
		t.Fatalf("symlink whose answer was lost: %v", err)
	}

	// A name that was taken before, by an entry other than the create
	// makes, is Exist even so.
	if _, err := b.Mkdir(ctx, root, "other-mode", 0o700, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := lost("POST", func() error { _, err := b.Mkdir(ctx, root, "other-mode", 0o755, 1, 2); return err }); !dfms.Is(err, dfms.Exist) {
		t.Fatalf("mkdir over a directory of another mode: %v, want Exist", err)
	}
	data := []byte("some content")
	h := dfms.Sum(data)
	if err := b.PutChunks(ctx, []dfms.ChunkData{{Hash: h, Data: data}}); err != nil {
		t.Fatal(err)
	}
	full, err := b.CreateFile(ctx, root, "full", 0o644, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	m := dfms.Manifest{Chunks: []dfms.ChunkRef{{Hash: h, Size: uint32(len(data))}}}
	// A commit whose answer was lost makes one version.
	if err := lost("POST", func() error {
		_, err := b.CommitManifest(ctx, vfs.Commit{ID: full.ID, Manifest: m, CommitID: "0123456789abcdef0123456789abcdef"})
		return err
	}); err != nil {
		t.Fatalf("commit whose answer was lost: %v", err)
	}
	if vs, err := b.Versions(ctx, full.ID); err != nil || len(vs) != 1 {
		t.Fatalf("after a commit whose answer was lost: %d versions (%v), want 1", len(vs), err)
	}
	if err := lost("POST", func() error { _, err := b.CreateFile(ctx, root, "full", 0o644, 1, 2); return err }); !dfms.Is(err, dfms.Exist) {
		t.Fatalf("create over a file with content: %v, want Exist", err)
	}

	if err := lost("POST", func() error { return b.Rename(ctx, d.ID, "s", root, "s2", false) }); err != nil {
		t.Fatalf("rename whose answer was lost: %v", err)
	}
	if _, err := b.Lookup(ctx, root, "s2"); err != nil {
		t.Fatalf("the renamed symlink: %v", err)
	}
	if err := lost("PUT", func() error { return b.SetXattr(ctx, f.ID, "user.a", []byte("v"), dfms.XattrCreate) }); err != nil {
		t.Fatalf("xattr create whose answer was lost: %v", err)
	}
	if err := lost("DELETE", func() error { return b.RemoveXattr(ctx, f.ID, "user.a") }); err != nil {
		t.Fatalf("xattr removal whose answer was lost: %v", err)
	}
	if err := lost("DELETE", func() error { return b.Unlink(ctx, d.ID, "f") }); err != nil {
		t.Fatalf("unlink whose answer was lost: %v", err)
	}
	if err := b.Unlink(ctx, d.ID, "f"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("a second unlink: %v, want NotExist", err)
	}
	if err := lost("DELETE", func() error { return b.Rmdir(ctx, root, "d") }); err != nil {
		t.Fatalf("rmdir whose answer was lost: %v", err)
	}
	if _, err := b.Lookup(ctx, root, "d"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("after rmdir: %v", err)
	}
}

// The change feed is not waited for: the mount's watcher retries it
// itself and must learn at once that the server is gone.
func TestServerWaitNotForTheFeed(t *testing.T) {
	count := 0
	var mu sync.Mutex
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/v1/changes" && r.URL.Query().Get("cursor") != "latest" {
				mu.Lock()
				count++
				mu.Unlock()
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	srv := clienttest.NewServer(t, clienttest.Options{Wrap: wrap})
	c := srv.Login(t, client.WithServerWait(time.Minute))
	ctx := context.Background()
	b := remote.New(c)
	cur, err := b.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = b.Changes(ctx, cur, time.Second)
	if !dfms.Is(err, dfms.Unavailable) {
		t.Fatalf("a broken feed: %v, want kind Unavailable", err)
	}
	var ae *client.Error
	mu.Lock()
	defer mu.Unlock()
	// net/http itself may send an idempotent request again once.
	if count > 2 || errors.As(err, &ae) {
		t.Fatalf("the feed was sent %d times (%v)", count, err)
	}
}
