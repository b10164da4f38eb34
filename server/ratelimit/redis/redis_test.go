package redis_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/server/ratelimit"
	"github.com/dfms/dfms/server/ratelimit/ratelimittest"
	"github.com/dfms/dfms/server/ratelimit/redis"
)

func open(t *testing.T, rawURL string) *redis.Limiter {
	t.Helper()
	l, err := redis.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestConformance runs the suite on the suite's clock (WithClock), in
// place of the server's TIME, which no test can step; TestServerClock
// checks the production path.
func TestConformance(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
		l, err := redis.Open(context.Background(), testenv.Redis(t), redis.WithClock(now))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return l
	})
}

// TestServerClock: without WithClock, requests are stamped by the server's
// TIME, and the times in a Result are carried over to the local clock
// (the server runs on this machine, so the two clocks agree): a Reset a
// window after a request made between start and end, and a RetryAfter
// that ends it.
func TestServerClock(t *testing.T) {
	ctx := context.Background()
	l := open(t, testenv.Redis(t))
	lim := ratelimit.Limit{Requests: 2, Window: time.Minute}
	start := time.Now()
	var results []ratelimit.Result
	for range 3 {
		res, err := l.Allow(ctx, "k", lim)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	end := time.Now()
	for i, res := range results {
		if allowed := i < 2; res.Allowed != allowed {
			t.Fatalf("request %d: got %+v, want Allowed %v", i+1, res, allowed)
		}
		// The server's microseconds may round the local times down.
		if lo, hi := lim.Window-time.Microsecond, end.Sub(start)+lim.Window; res.Reset.Before(start.Add(lo)) || res.Reset.After(start.Add(hi)) {
			t.Errorf("request %d: got Reset start+%v, want in [start+%v, start+%v]", i+1, res.Reset.Sub(start), lo, hi)
		}
	}
	if lo, d := lim.Window-end.Sub(start)-time.Microsecond, results[2]; d.RetryAfter < lo || d.RetryAfter > lim.Window {
		t.Errorf("the denied request: got RetryAfter %v, want in [%v, %v]", d.RetryAfter, lo, lim.Window)
	}
}

// TestServerClockSlides: on the server's own clock the window slides, as
// the suite checks on a fake one: a request is denied while the window
// is full and allowed once its oldest request has left it. The suite
// cannot drive the server's TIME, so this case waits, once, for a short
// window to pass.
func TestServerClockSlides(t *testing.T) {
	ctx := context.Background()
	l := open(t, testenv.Redis(t))
	lim := ratelimit.Limit{Requests: 2, Window: time.Second}
	allow := func(what string, want bool) ratelimit.Result {
		t.Helper()
		res, err := l.Allow(ctx, "slide", lim)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed != want {
			t.Fatalf("%s: got %+v, want Allowed %v", what, res, want)
		}
		return res
	}
	allow("the first request", true)
	time.Sleep(lim.Window / 2)
	allow("the second request, half a window later", true)
	denied := allow("a third request in the window", false)
	if denied.RetryAfter <= 0 || denied.RetryAfter > lim.Window/2 {
		t.Fatalf("the denied request: RetryAfter %v, want in (0, %v]", denied.RetryAfter, lim.Window/2)
	}
	// The server's clock: nothing else moves it. Once the first request
	// left, the second is still in the window for about half of it.
	time.Sleep(denied.RetryAfter + 20*time.Millisecond)
	allow("a request once the first left the window", true)
	allow("another, with the second and that one in the window", false)
	allow("another request with the window full again", false)
}

// client returns a go-redis client for the test server and the key prefix
// testenv chose, for the tests that look at the keys themselves.
func client(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	u, err := url.Parse(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	prefix := q.Get("prefix")
	q.Del("prefix")
	u.RawQuery = q.Encode()
	o, err := goredis.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c, prefix
}

// TestExpiry: a key expires one window after its last allowed request,
// in milliseconds (the old limiter passed microseconds as seconds), and
// then it is gone.
func TestExpiry(t *testing.T) {
	ctx := context.Background()
	c, prefix := client(t)
	l := redis.New(c, redis.WithPrefix(prefix))

	for _, tc := range []struct {
		window time.Duration
		wantMS int64 // the TTL right after the request: the window in ms, rounded up
	}{
		{time.Minute, 60000},
		{1500*time.Millisecond + 300*time.Microsecond, 1501},
	} {
		key := "ttl" + tc.window.String()
		if _, err := l.Allow(ctx, key, ratelimit.Limit{Requests: 5, Window: tc.window}); err != nil {
			t.Fatal(err)
		}
		ttl, err := c.PTTL(ctx, prefix+key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ms := ttl.Milliseconds(); ms <= tc.wantMS-1000 || ms > tc.wantMS {
			t.Errorf("window %v: got PTTL %d ms, want in (%d, %d]", tc.window, ms, tc.wantMS-1000, tc.wantMS)
		}
		if n, err := c.ZCard(ctx, prefix+key).Result(); err != nil || n != 1 {
			t.Errorf("window %v: got ZCARD %d, %v; want 1", tc.window, n, err)
		}
	}

	lim := ratelimit.Limit{Requests: 2, Window: time.Second}
	start := time.Now()
	for range 3 { // the third is denied and must not extend the expiry
		if _, err := l.Allow(ctx, "gone", lim); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Until(start.Add(lim.Window - 200*time.Millisecond)))
	if n, err := c.Exists(ctx, prefix+"gone").Result(); err != nil || n != 1 {
		t.Errorf("within the window: got EXISTS %d, %v; want 1", n, err)
	}
	time.Sleep(time.Until(start.Add(lim.Window + 200*time.Millisecond)))
	if n, err := c.Exists(ctx, prefix+"gone").Result(); err != nil || n != 0 {
		t.Errorf("after the window: got EXISTS %d, %v; want 0 (the key should have expired)", n, err)
	}
}

// TestShared: limiters on one Redis and prefix (two gateways) share the
// counts; another prefix has its own.
func TestShared(t *testing.T) {
	ctx := context.Background()
	u := testenv.Redis(t)
	a, b := open(t, u), open(t, u)
	lim := ratelimit.Limit{Requests: 3, Window: 10 * time.Second}
	for i, l := range []*redis.Limiter{a, b, a} {
		res, err := l.Allow(ctx, "k", lim)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed || res.Remaining != 2-i {
			t.Fatalf("request %d: got %+v, want allowed with Remaining %d", i+1, res, 2-i)
		}
	}
	if res, err := b.Allow(ctx, "k", lim); err != nil || res.Allowed {
		t.Fatalf("request 4 through the other limiter: got %+v, %v; want denied", res, err)
	}
	c, prefix := client(t)
	other := redis.New(c, redis.WithPrefix(prefix+"other:"))
	if res, err := other.Allow(ctx, "k", lim); err != nil || !res.Allowed {
		t.Fatalf("same key under another prefix: got %+v, %v; want allowed", res, err)
	}
}

func TestOpenInvalid(t *testing.T) {
	for _, u := range []string{
		"redis://127.0.0.1:1/notadb",
		"redis://127.0.0.1:1/?bogus=1",
		"redis://:sekrit@127.0.0.1:1/?dial_timeout=soon",
		"redis://:sekrit@[::1",
		"http://127.0.0.1:1",
	} {
		_, err := redis.Open(context.Background(), u)
		if !dfms.Is(err, dfms.Invalid) {
			t.Errorf("Open(%q): got %v, want kind %v", u, err, dfms.Invalid)
		}
		if err != nil && strings.Contains(err.Error(), "sekrit") {
			t.Errorf("Open(%q): the error shows the password: %v", u, err)
		}
	}
}

// wantUnavailable checks that err is of kind Unavailable and came within
// limit.
func wantUnavailable(t *testing.T, what string, err error, took, limit time.Duration) {
	t.Helper()
	if !dfms.Is(err, dfms.Unavailable) {
		t.Errorf("%s: got %v (kind %v), want kind %v", what, err, dfms.KindOf(err), dfms.Unavailable)
	}
	if took > limit {
		t.Errorf("%s: took %v, want at most %v", what, took, limit)
	}
	t.Logf("%s: %v after %v", what, err, took)
}

// TestUnreachable: nothing listening, a server that never answers, and one
// that goes away after Open all fail with kind Unavailable, and quickly.
func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	lim := ratelimit.Limit{Requests: 1, Window: time.Second}

	start := time.Now()
	_, err := redis.Open(ctx, "redis://:sekrit@127.0.0.1:1")
	wantUnavailable(t, "Open with nothing listening", err, time.Since(start), time.Second)
	if err != nil && strings.Contains(err.Error(), "sekrit") {
		t.Errorf("the error shows the password: %v", err)
	}

	l := redis.New(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: time.Second, MaxRetries: -1}))
	start = time.Now()
	_, err = l.Allow(ctx, "k", lim)
	wantUnavailable(t, "Allow with nothing listening", err, time.Since(start), time.Second)

	silent := listen(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	start = time.Now()
	_, err = redis.Open(ctx, "redis://"+silent)
	// Read timeout 1 s, one retry.
	wantUnavailable(t, "Open on a server that never answers", err, time.Since(start), 4*time.Second)
}

func TestStopped(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	// A proxy stands for the Redis server, so that it can be stopped.
	p := newProxy(t, u.Host)
	u.Host = p.addr
	l := open(t, u.String())
	lim := ratelimit.Limit{Requests: 5, Window: time.Second}
	if res, err := l.Allow(ctx, "k", lim); err != nil || !res.Allowed {
		t.Fatalf("before the stop: got %+v, %v; want allowed", res, err)
	}
	p.stop()
	start := time.Now()
	_, err = l.Allow(ctx, "k", lim)
	wantUnavailable(t, "Allow after Redis stopped", err, time.Since(start), 2*time.Second)
}

// listen serves every connection to a loopback listener with serve, until
// the test ends; it returns the listener's address.
func listen(t *testing.T, serve func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		// Guarded by mu:
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// proxy forwards loopback connections to a target until stopped.
type proxy struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	// Guarded by mu:
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(d, c); d.Close() })
			p.wg.Go(func() { io.Copy(c, d); c.Close() })
		}
	})
	t.Cleanup(p.stop)
	return p
}

// stop closes the listener and every connection, as a stopping server
// would. It may be called more than once.
func (p *proxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
