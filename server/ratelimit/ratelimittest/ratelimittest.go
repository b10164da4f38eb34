// Package ratelimittest is the conformance suite of ratelimit.Limiter.
// Every backend runs all of it:
//
//	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter { return memory.New() })
//
// open is called once per case and must return a working limiter on the
// real clock; the suite closes it. Cases run in parallel and their keys are
// unique to the run, so limiters may share a backend. Some cases sleep
// through short windows (about 1.5 s in all, since they run in parallel):
// backends whose clock lives elsewhere (Redis's TIME) cannot be stepped.
// Times are checked to within tolerance of what the log semantics say. A
// bug found in one backend becomes a case here.
package ratelimittest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/ratelimit"
)

// tolerance is how far a backend's times may stray from those the local
// clock predicts: a round trip to the backend, the scheduler, -race.
const tolerance = 100 * time.Millisecond

// Run runs every case against limiters made by open.
func Run(t *testing.T, open func(t *testing.T) ratelimit.Limiter) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"CountDown", testCountDown},
		{"KeysIndependent", testKeysIndependent},
		{"Unlimited", testUnlimited},
		{"InvalidLimit", testInvalidLimit},
		{"ContextDone", testContextDone},
		{"WindowPasses", testWindowPasses},
		{"Sliding", testSliding},
		{"SmallerLimit", testSmallerLimit},
		{"Concurrent", testConcurrent},
		{"Weighted", testWeighted},
	}
	run := fmt.Sprintf("rltest-%x", rand.Uint64())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := open(t)
			t.Cleanup(func() {
				if err := l.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, &suite{l: l, prefix: run + "/" + tc.name + "/"})
		})
	}
}

type suite struct {
	l      ratelimit.Limiter
	prefix string
}

// key returns a key unique to the run and case.
func (s *suite) key(name string) string { return s.prefix + name }

// allow calls Allow and fails the test on an error. It also returns the
// midpoint of the call, the local time that best matches the backend's.
func (s *suite) allow(t *testing.T, key string, l ratelimit.Limit) (ratelimit.Result, time.Time) {
	t.Helper()
	start := time.Now()
	res, err := s.l.Allow(context.Background(), key, l)
	if err != nil {
		t.Fatalf("Allow(%q, %v): %v", key, l, err)
	}
	return res, start.Add(time.Since(start) / 2)
}

// wantAllowed checks an allowed result.
func wantAllowed(t *testing.T, what string, res ratelimit.Result, l ratelimit.Limit, remaining int) {
	t.Helper()
	if !res.Allowed {
		t.Fatalf("%s: denied (retry after %v), want allowed", what, res.RetryAfter)
	}
	if res.Limit != l.Requests || res.Remaining != remaining || res.RetryAfter != 0 {
		t.Errorf("%s: got Limit %d, Remaining %d, RetryAfter %v; want %d, %d, 0",
			what, res.Limit, res.Remaining, res.RetryAfter, l.Requests, remaining)
	}
}

// wantDenied checks a denied result, and that RetryAfter is about
// wantRetry (to within tolerance) and within (0, l.Window].
func wantDenied(t *testing.T, what string, res ratelimit.Result, l ratelimit.Limit, at time.Time, wantRetry time.Duration) {
	t.Helper()
	if res.Allowed {
		t.Fatalf("%s: allowed (remaining %d), want denied", what, res.Remaining)
	}
	if res.Limit != l.Requests || res.Remaining != 0 {
		t.Errorf("%s: got Limit %d, Remaining %d; want %d, 0", what, res.Limit, res.Remaining, l.Requests)
	}
	if res.RetryAfter <= 0 || res.RetryAfter > l.Window {
		t.Errorf("%s: got RetryAfter %v, want in (0, %v]", what, res.RetryAfter, l.Window)
	}
	if d := res.RetryAfter - wantRetry; d < -tolerance || d > tolerance {
		t.Errorf("%s: got RetryAfter %v, want %v ± %v", what, res.RetryAfter, wantRetry, tolerance)
	}
	wantTime(t, what+": Reset", res.Reset, at.Add(res.RetryAfter))
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want); d < -tolerance || d > tolerance {
		t.Errorf("%s: got %v, want %v ± %v (off by %v)", what, got.Format(time.StampMilli), want.Format(time.StampMilli), tolerance, d)
	}
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// testCountDown: Remaining counts down to 0, then requests are denied
// with Remaining 0 and a RetryAfter that ends the oldest's window.
func testCountDown(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 5, Window: 10 * time.Second}
	k := s.key("k")
	var first time.Time
	for i := range 5 {
		res, at := s.allow(t, k, l)
		if i == 0 {
			first = at
		}
		wantAllowed(t, fmt.Sprintf("request %d", i+1), res, l, 4-i)
		wantTime(t, fmt.Sprintf("request %d: Reset", i+1), res.Reset, first.Add(l.Window))
	}
	for i := 6; i <= 8; i++ {
		res, at := s.allow(t, k, l)
		wantDenied(t, fmt.Sprintf("request %d", i), res, l, at, first.Add(l.Window).Sub(at))
	}
}

// testKeysIndependent: exhausting one key leaves others alone, however
// similar their names.
func testKeysIndependent(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 2, Window: 10 * time.Second}
	a := s.key("a")
	for i := range 2 {
		res, _ := s.allow(t, a, l)
		wantAllowed(t, fmt.Sprintf("a, request %d", i+1), res, l, 1-i)
	}
	if res, _ := s.allow(t, a, l); res.Allowed {
		t.Fatalf("a, request 3: allowed, want denied")
	}
	for _, k := range []string{"b", "A", "a:", "a/x", "a "} {
		res, _ := s.allow(t, s.key(k), l)
		wantAllowed(t, fmt.Sprintf("key %q after a is exhausted", k), res, l, 1)
	}
}

// testUnlimited: Requests <= 0 lets everything through and counts nothing.
func testUnlimited(t *testing.T, s *suite) {
	k := s.key("k")
	for _, l := range []ratelimit.Limit{{}, {Requests: 0, Window: time.Second}, {Requests: -1, Window: time.Second}, {Requests: -5}} {
		for i := range 50 {
			res, _ := s.allow(t, k, l)
			if !res.Allowed || res.RetryAfter != 0 {
				t.Fatalf("%v, request %d: got Allowed %v, RetryAfter %v; want true, 0", l, i+1, res.Allowed, res.RetryAfter)
			}
		}
	}
	l := ratelimit.Limit{Requests: 1, Window: 10 * time.Second}
	res, _ := s.allow(t, k, l)
	wantAllowed(t, "first limited request after 200 unlimited ones", res, l, 0)
}

// testInvalidLimit: a limited Limit without a positive window is the
// caller's bug.
func testInvalidLimit(t *testing.T, s *suite) {
	for _, l := range []ratelimit.Limit{{Requests: 1}, {Requests: 3, Window: -time.Second}} {
		_, err := s.l.Allow(context.Background(), s.key("k"), l)
		if !dfms.Is(err, dfms.Invalid) {
			t.Errorf("Allow with %+v: got error %v (kind %v), want kind %v", l, err, dfms.KindOf(err), dfms.Invalid)
		}
	}
}

// testContextDone: a cancelled or expired ctx fails the call, which then
// counts nothing.
func testContextDone(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 1, Window: 10 * time.Second}
	k := s.key("k")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		res, err := s.l.Allow(c.ctx, k, l)
		if !errors.Is(err, c.want) {
			t.Errorf("Allow with a done ctx: got %v, %v; want an error wrapping %v", res, err, c.want)
		}
	}
	res, _ := s.allow(t, k, l)
	wantAllowed(t, "after the failed calls", res, l, 0)
}

// testWindowPasses: once the window has passed, the full limit is
// available again, however many denied requests came in between: denied
// requests are not counted.
func testWindowPasses(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 2, Window: time.Second}
	k := s.key("k")
	_, first := s.allow(t, k, l)
	_, second := s.allow(t, k, l)
	for deadline := first.Add(l.Window / 2); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		res, at := s.allow(t, k, l)
		wantDenied(t, "denied request within the window", res, l, at, first.Add(l.Window).Sub(at))
	}
	sleepUntil(second.Add(l.Window + tolerance))
	for i := range 2 {
		res, _ := s.allow(t, k, l)
		wantAllowed(t, fmt.Sprintf("request %d after the window", i+1), res, l, 1-i)
	}
	if res, _ := s.allow(t, k, l); res.Allowed {
		t.Fatalf("request 3 after the window: allowed, want denied")
	}
}

// testSliding: requests spread over the window leave it one by one, each a
// window after it was made; a fixed window would free them all at once.
func testSliding(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 3, Window: time.Second}
	k := s.key("k")
	start := time.Now()
	var at [3]time.Time
	for i := range at {
		sleepUntil(start.Add(time.Duration(i) * 300 * time.Millisecond))
		var res ratelimit.Result
		res, at[i] = s.allow(t, k, l)
		wantAllowed(t, fmt.Sprintf("request %d", i+1), res, l, 2-i)
		wantTime(t, fmt.Sprintf("request %d: Reset", i+1), res.Reset, at[0].Add(l.Window))
	}
	res, now := s.allow(t, k, l)
	wantDenied(t, "request 4, right after", res, l, now, at[0].Add(l.Window).Sub(now))

	// Just before the first request leaves, still full.
	sleepUntil(at[0].Add(l.Window - tolerance))
	res, now = s.allow(t, k, l)
	wantDenied(t, "request just before the first leaves", res, l, now, at[0].Add(l.Window).Sub(now))

	// Just after, exactly one slot is free.
	sleepUntil(at[0].Add(l.Window + tolerance))
	res, now = s.allow(t, k, l)
	wantAllowed(t, "request just after the first leaves", res, l, 0)
	wantTime(t, "its Reset (when the second leaves)", res.Reset, at[1].Add(l.Window))
	res, now = s.allow(t, k, l)
	wantDenied(t, "the next one", res, l, now, at[1].Add(l.Window).Sub(now))

	// RetryAfter is right: waiting it out (and a little) is enough.
	time.Sleep(res.RetryAfter + 20*time.Millisecond)
	res, _ = s.allow(t, k, l)
	wantAllowed(t, "request after waiting RetryAfter", res, l, 0)
	res, now = s.allow(t, k, l)
	wantDenied(t, "the next one", res, l, now, at[2].Add(l.Window).Sub(now))
}

// testSmallerLimit: a key's older requests count against a smaller limit.
func testSmallerLimit(t *testing.T, s *suite) {
	big := ratelimit.Limit{Requests: 5, Window: 10 * time.Second}
	small := ratelimit.Limit{Requests: 2, Window: 10 * time.Second}
	k := s.key("k")
	var first time.Time
	for i := range 4 {
		_, at := s.allow(t, k, big)
		if i == 0 {
			first = at
		}
	}
	res, now := s.allow(t, k, small)
	// Three of the four must leave: the requests were made together, so
	// about when the first leaves.
	wantDenied(t, "request under the smaller limit", res, small, now, first.Add(small.Window).Sub(now))
}

// testConcurrent: of a burst on one key from many goroutines, exactly
// Requests are allowed, each with a different Remaining.
func testConcurrent(t *testing.T, s *suite) {
	const goroutines, each = 20, 3
	l := ratelimit.Limit{Requests: 7, Window: 10 * time.Second}
	k := s.key("k")
	results := make(chan ratelimit.Result, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				res, err := s.l.Allow(context.Background(), k, l)
				if err != nil {
					t.Errorf("Allow: %v", err)
					return
				}
				results <- res
			}
		})
	}
	wg.Wait()
	close(results)
	var remaining []int
	for res := range results {
		if res.Allowed {
			remaining = append(remaining, res.Remaining)
		}
	}
	slices.Sort(remaining)
	if want := []int{0, 1, 2, 3, 4, 5, 6}; !slices.Equal(remaining, want) {
		t.Errorf("Remaining of the allowed requests: got %v, want %v", remaining, want)
	}
}

// testWeighted: AllowN counts a request n times, all or nothing: it is
// allowed only if n slots are free, and a denied one takes none. n must be
// in 1..Requests (a request that can never be allowed is the caller's
// bug), and an unlimited limit lets any weight through.
func testWeighted(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 10, Window: 10 * time.Second}
	k := s.key("k")
	allowN := func(n int) (ratelimit.Result, time.Time) {
		t.Helper()
		start := time.Now()
		res, err := s.l.AllowN(context.Background(), k, l, n)
		if err != nil {
			t.Fatalf("AllowN(%d): %v", n, err)
		}
		return res, start.Add(time.Since(start) / 2)
	}
	res, first := allowN(4)
	wantAllowed(t, "a request of 4", res, l, 6)
	wantTime(t, "its Reset", res.Reset, first.Add(l.Window))
	res, now := allowN(7)
	wantDenied(t, "a request of 7 with 6 free", res, l, now, first.Add(l.Window).Sub(now))
	res, _ = allowN(6)
	wantAllowed(t, "a request of 6 after the denied one", res, l, 0)
	res, now = s.allow(t, k, l)
	wantDenied(t, "a plain request", res, l, now, first.Add(l.Window).Sub(now))

	for _, n := range []int{0, -1, l.Requests + 1} {
		_, err := s.l.AllowN(context.Background(), s.key("bad"), l, n)
		if !dfms.Is(err, dfms.Invalid) {
			t.Errorf("AllowN(%d) under %v: got error %v (kind %v), want kind %v", n, l, err, dfms.KindOf(err), dfms.Invalid)
		}
	}
	res, _ = s.allow(t, s.key("bad"), l)
	wantAllowed(t, "after the invalid calls", res, l, l.Requests-1)
	res, err := s.l.AllowN(context.Background(), s.key("free"), ratelimit.Limit{}, 1000)
	if err != nil || !res.Allowed {
		t.Errorf("AllowN(1000) unlimited: got %+v, %v; want allowed", res, err)
	}
}
