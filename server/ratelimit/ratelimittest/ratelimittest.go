// Package ratelimittest is the conformance suite of ratelimit.Limiter.
// Every backend runs all of it, on a fake clock that the suite steps:
//
//	ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
//		return memory.New(memory.WithClock(now))
//	})
//
// open is called once per case and must return a working limiter that
// reads the time from now alone; the suite closes it. Each case has a
// [Clock] of its own, which stands still until the case advances it, so
// the suite never sleeps and every time in a Result is checked exactly.
// The clock moves in whole microseconds, the finest step of every backend
// (Redis scores requests in microseconds). Cases run in parallel and
// their keys are unique to the run, so limiters may share a backend; the
// windows are a minute long, so a backend that also expires keys by a
// clock of its own (Redis does, by the server's) keeps them for the whole
// case. A bug found in one backend becomes a case here.
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
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/ratelimit"
)

// Clock is a fake clock: it stands still until Advance moves it. It is
// safe for concurrent use; its Now is what a limiter's clock option takes.
type Clock = testkit.Clock

// NewClock returns a clock stopped at a fixed time, a whole second.
func NewClock() *Clock { return testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// tick is the smallest step the suite takes: every backend tells times a
// microsecond apart.
const tick = time.Microsecond

// window is the window of the cases' limits.
const window = time.Minute

// Run runs every case against limiters made by open, each reading the
// time from now.
func Run(t *testing.T, open func(t *testing.T, now func() time.Time) ratelimit.Limiter) {
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
			c := NewClock()
			l := open(t, c.Now)
			t.Cleanup(func() {
				if err := l.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, &suite{l: l, clock: c, t0: c.Now(), prefix: run + "/" + tc.name + "/"})
		})
	}
}

type suite struct {
	l      ratelimit.Limiter
	clock  *Clock
	t0     time.Time // the clock's time when the case began
	prefix string
}

// key returns a key unique to the run and case.
func (s *suite) key(name string) string { return s.prefix + name }

// at returns the time d after the case began.
func (s *suite) at(d time.Duration) time.Time { return s.t0.Add(d) }

// set moves the clock forward to d after the case began.
func (s *suite) set(t *testing.T, d time.Duration) {
	t.Helper()
	step := s.at(d).Sub(s.clock.Now())
	if step < 0 {
		t.Fatalf("the clock cannot go back to t0+%v", d)
	}
	s.clock.Advance(step)
}

// allow calls Allow and fails the test on an error.
func (s *suite) allow(t *testing.T, key string, l ratelimit.Limit) ratelimit.Result {
	t.Helper()
	return s.allowN(t, key, l, 1)
}

// allowN calls AllowN and fails the test on an error.
func (s *suite) allowN(t *testing.T, key string, l ratelimit.Limit, n int) ratelimit.Result {
	t.Helper()
	res, err := s.l.AllowN(context.Background(), key, l, n)
	if err != nil {
		t.Fatalf("AllowN(%q, %v, %d) at t0+%v: %v", key, l, n, s.clock.Now().Sub(s.t0), err)
	}
	return res
}

// wantAllowed checks an allowed result: its counts, and that the oldest
// request counted leaves the window at reset.
func (s *suite) wantAllowed(t *testing.T, what string, res ratelimit.Result, l ratelimit.Limit, remaining int, reset time.Time) {
	t.Helper()
	if !res.Allowed {
		t.Fatalf("%s: denied (retry after %v), want allowed", what, res.RetryAfter)
	}
	if res.Limit != l.Requests || res.Remaining != remaining || res.RetryAfter != 0 {
		t.Errorf("%s: got Limit %d, Remaining %d, RetryAfter %v; want %d, %d, 0",
			what, res.Limit, res.Remaining, res.RetryAfter, l.Requests, remaining)
	}
	s.wantTime(t, what+": Reset", res.Reset, reset)
}

// wantDenied checks a denied result, and that a request is next allowed
// at reset: RetryAfter is the time from now until then, within
// (0, l.Window].
func (s *suite) wantDenied(t *testing.T, what string, res ratelimit.Result, l ratelimit.Limit, reset time.Time) {
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
	if want := reset.Sub(s.clock.Now()); res.RetryAfter != want {
		t.Errorf("%s: got RetryAfter %v, want %v", what, res.RetryAfter, want)
	}
	s.wantTime(t, what+": Reset", res.Reset, reset)
}

// wantTime checks a time, showing both as offsets from t0.
func (s *suite) wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s: got t0+%v, want t0+%v", what, got.Sub(s.t0), want.Sub(s.t0))
	}
}

// testCountDown: Remaining counts down to 0, then requests are denied
// with Remaining 0 and a RetryAfter that ends the oldest's window.
func testCountDown(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 5, Window: window}
	k := s.key("k")
	for i := range 5 { // at t0, t0+1s, …, t0+4s
		s.set(t, time.Duration(i)*time.Second)
		s.wantAllowed(t, fmt.Sprintf("request %d", i+1), s.allow(t, k, l), l, 4-i, s.at(l.Window))
	}
	for i := 6; i <= 8; i++ { // at t0+4s, right after the fifth, t0+5s and t0+6s
		s.set(t, time.Duration(i-2)*time.Second)
		s.wantDenied(t, fmt.Sprintf("request %d", i), s.allow(t, k, l), l, s.at(l.Window))
	}
}

// testKeysIndependent: exhausting one key leaves others alone, however
// similar their names.
func testKeysIndependent(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 2, Window: window}
	a := s.key("a")
	for i := range 2 {
		s.wantAllowed(t, fmt.Sprintf("a, request %d", i+1), s.allow(t, a, l), l, 1-i, s.at(l.Window))
	}
	s.wantDenied(t, "a, request 3", s.allow(t, a, l), l, s.at(l.Window))
	for _, k := range []string{"b", "A", "a:", "a/x", "a "} {
		s.wantAllowed(t, fmt.Sprintf("key %q after a is exhausted", k), s.allow(t, s.key(k), l), l, 1, s.at(l.Window))
	}
}

// testUnlimited: Requests <= 0 lets everything through and counts nothing;
// its Result has no limit, and no Reset.
func testUnlimited(t *testing.T, s *suite) {
	k := s.key("k")
	for _, l := range []ratelimit.Limit{{}, {Requests: 0, Window: time.Second}, {Requests: -1, Window: time.Second}, {Requests: -5}} {
		for i := range 50 {
			res := s.allow(t, k, l)
			if !res.Allowed || res.Limit != 0 || res.RetryAfter != 0 || !res.Reset.IsZero() {
				t.Fatalf("%v, request %d: got %+v; want allowed, with Limit 0, RetryAfter 0 and no Reset", l, i+1, res)
			}
		}
	}
	l := ratelimit.Limit{Requests: 1, Window: window}
	s.wantAllowed(t, "first limited request after 200 unlimited ones", s.allow(t, k, l), l, 0, s.at(l.Window))
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
	l := ratelimit.Limit{Requests: 1, Window: window}
	k := s.key("k")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	// Contexts keep the real clock: a deadline in its past has expired.
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
	s.wantAllowed(t, "after the failed calls", s.allow(t, k, l), l, 0, s.at(l.Window))
}

// testWindowPasses: once the window has passed, the full limit is
// available again, however many denied requests came in between: denied
// requests are not counted.
func testWindowPasses(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 2, Window: window}
	k := s.key("k")
	s.wantAllowed(t, "request 1", s.allow(t, k, l), l, 1, s.at(l.Window))
	s.set(t, time.Second)
	s.wantAllowed(t, "request 2", s.allow(t, k, l), l, 0, s.at(l.Window))
	for d := time.Second; d <= l.Window/2; d += 3 * time.Second {
		s.set(t, d)
		s.wantDenied(t, fmt.Sprintf("denied request at t0+%v", d), s.allow(t, k, l), l, s.at(l.Window))
	}
	// The second request leaves exactly a window after it was made, and
	// the denied ones after it are not in the window.
	after := time.Second + l.Window
	s.set(t, after)
	for i := range 2 {
		s.wantAllowed(t, fmt.Sprintf("request %d after the window", i+1), s.allow(t, k, l), l, 1-i, s.at(after+l.Window))
	}
	s.wantDenied(t, "request 3 after the window", s.allow(t, k, l), l, s.at(after+l.Window))
}

// testSliding: requests spread over the window leave it one by one, each
// exactly a window after it was made (the window (t − Window, t] is
// half-open); a fixed window would free them all at once.
func testSliding(t *testing.T, s *suite) {
	l := ratelimit.Limit{Requests: 3, Window: window}
	k := s.key("k")
	sent := []time.Duration{0, 10 * time.Second, 20 * time.Second}
	for i, d := range sent {
		s.set(t, d)
		s.wantAllowed(t, fmt.Sprintf("request %d", i+1), s.allow(t, k, l), l, 2-i, s.at(l.Window))
	}
	s.wantDenied(t, "request 4, right after", s.allow(t, k, l), l, s.at(l.Window))

	// Just before the first request leaves, still full.
	s.set(t, l.Window-tick)
	s.wantDenied(t, "request just before the first leaves", s.allow(t, k, l), l, s.at(l.Window))

	// As it leaves, exactly one slot is free.
	s.set(t, l.Window)
	s.wantAllowed(t, "request as the first leaves", s.allow(t, k, l), l, 0, s.at(sent[1]+l.Window))
	res := s.allow(t, k, l)
	s.wantDenied(t, "the next one", res, l, s.at(sent[1]+l.Window))

	// RetryAfter is right: waiting it out is enough.
	s.clock.Advance(res.RetryAfter)
	s.wantAllowed(t, "request after waiting RetryAfter", s.allow(t, k, l), l, 0, s.at(sent[2]+l.Window))
	s.wantDenied(t, "the next one", s.allow(t, k, l), l, s.at(sent[2]+l.Window))
}

// testSmallerLimit: a key's older requests count against a smaller limit:
// a request waits until all but Requests-1 of them have left, not just the
// oldest.
func testSmallerLimit(t *testing.T, s *suite) {
	big := ratelimit.Limit{Requests: 5, Window: window}
	small := ratelimit.Limit{Requests: 2, Window: window}
	k := s.key("k")
	for i := range 4 { // at t0, t0+1s, t0+2s, t0+3s
		s.set(t, time.Duration(i)*time.Second)
		s.wantAllowed(t, fmt.Sprintf("request %d", i+1), s.allow(t, k, big), big, 4-i, s.at(big.Window))
	}
	// Three must leave; the third was made at t0+2s.
	s.wantDenied(t, "request under the smaller limit", s.allow(t, k, small), small, s.at(2*time.Second+small.Window))
	s.set(t, 2*time.Second+small.Window)
	s.wantAllowed(t, "request under the smaller limit once the third left", s.allow(t, k, small), small, 0, s.at(3*time.Second+small.Window))
}

// testConcurrent: of a burst on one key from many goroutines, exactly
// Requests are allowed, each with a different Remaining.
func testConcurrent(t *testing.T, s *suite) {
	const goroutines, each = 20, 3
	l := ratelimit.Limit{Requests: 7, Window: window}
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
			s.wantAllowed(t, "an allowed request", res, l, res.Remaining, s.at(l.Window))
		} else {
			s.wantDenied(t, "a denied request", res, l, s.at(l.Window))
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
	l := ratelimit.Limit{Requests: 10, Window: window}
	k := s.key("k")
	s.wantAllowed(t, "a request of 4", s.allowN(t, k, l, 4), l, 6, s.at(l.Window))
	s.set(t, time.Second)
	s.wantDenied(t, "a request of 7 with 6 free", s.allowN(t, k, l, 7), l, s.at(l.Window))
	s.wantAllowed(t, "a request of 6 after the denied one", s.allowN(t, k, l, 6), l, 0, s.at(l.Window))
	s.wantDenied(t, "a plain request", s.allow(t, k, l), l, s.at(l.Window))

	// As the 4 leave, 4 slots are free: a request of 5 waits for the 6.
	s.set(t, l.Window)
	s.wantDenied(t, "a request of 5 with 4 free", s.allowN(t, k, l, 5), l, s.at(time.Second+l.Window))
	s.wantAllowed(t, "a request of 4 with 4 free", s.allowN(t, k, l, 4), l, 0, s.at(time.Second+l.Window))

	for _, n := range []int{0, -1, l.Requests + 1} {
		_, err := s.l.AllowN(context.Background(), s.key("bad"), l, n)
		if !dfms.Is(err, dfms.Invalid) {
			t.Errorf("AllowN(%d) under %v: got error %v (kind %v), want kind %v", n, l, err, dfms.KindOf(err), dfms.Invalid)
		}
	}
	s.wantAllowed(t, "after the invalid calls", s.allow(t, s.key("bad"), l), l, l.Requests-1, s.clock.Now().Add(l.Window))
	res, err := s.l.AllowN(context.Background(), s.key("free"), ratelimit.Limit{}, 1000)
	if err != nil || !res.Allowed {
		t.Errorf("AllowN(1000) unlimited: got %+v, %v; want allowed", res, err)
	}
}
