package memory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dfms/dfms/server/ratelimit"
	"github.com/dfms/dfms/server/ratelimit/memory"
	"github.com/dfms/dfms/server/ratelimit/ratelimittest"
)

func TestConformance(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
		return memory.New(memory.WithClock(now))
	})
}

// TestExactTimes steps a clock through the boundaries of a window to the
// nanosecond, finer than the conformance suite's microsecond steps: the
// times in Results are exact, and a request leaves the window exactly
// Window after it was made, (t − Window, t] being half-open.
func TestExactTimes(t *testing.T) {
	c := ratelimittest.NewClock()
	t0 := c.Now()
	l := memory.New(memory.WithClock(c.Now))
	lim := ratelimit.Limit{Requests: 2, Window: 10 * time.Second}
	steps := []struct {
		at        time.Duration // since t0
		allowed   bool
		remaining int
		reset     time.Duration // since t0
	}{
		{0, true, 1, 10 * time.Second},
		{3 * time.Second, true, 0, 10 * time.Second},
		{5 * time.Second, false, 0, 10 * time.Second},
		{10*time.Second - 1, false, 0, 10 * time.Second},
		{10 * time.Second, true, 0, 13 * time.Second}, // the first left at exactly t0+10s
		{10 * time.Second, false, 0, 13 * time.Second},
		{13*time.Second - 1, false, 0, 13 * time.Second},
		{13 * time.Second, true, 0, 20 * time.Second},
		{40 * time.Second, true, 1, 50 * time.Second},
	}
	for i, st := range steps {
		c.Advance(t0.Add(st.at).Sub(c.Now()))
		res, err := l.Allow(context.Background(), "k", lim)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		var retry time.Duration
		if !st.allowed {
			retry = st.reset - st.at
		}
		want := ratelimit.Result{Allowed: st.allowed, Limit: 2, Remaining: st.remaining, Reset: t0.Add(st.reset), RetryAfter: retry}
		if res != want {
			t.Errorf("step %d at t0+%v: got %+v, want %+v", i, st.at, res, want)
		}
	}
}

// TestModel compares the limiter, on a stepped clock, with a naive
// reference: a plain list of allowed times per key, scanned in full.
func TestModel(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			c := ratelimittest.NewClock()
			l := memory.New(memory.WithClock(c.Now))
			limits := map[string]ratelimit.Limit{
				"tiny":  {Requests: 1, Window: 50 * time.Millisecond},
				"small": {Requests: 3, Window: time.Second},
				"big":   {Requests: 100, Window: 2 * time.Second},
				"odd":   {Requests: 37, Window: 777 * time.Millisecond},
			}
			keys := []string{"tiny", "small", "big", "odd"}
			log := map[string][]time.Time{}
			for i := range 5000 {
				c.Advance(time.Duration(r.ExpFloat64() * float64(5*time.Millisecond)))
				now := c.Now()
				k := keys[r.IntN(len(keys))]
				lim := limits[k]
				var in []time.Time
				for _, at := range log[k] {
					if at.After(now.Add(-lim.Window)) {
						in = append(in, at)
					}
				}
				want := ratelimit.Result{Limit: lim.Requests}
				if len(in) < lim.Requests {
					in = append(in, now)
					log[k] = in
					want.Allowed = true
					want.Remaining = lim.Requests - len(in)
					want.Reset = in[0].Add(lim.Window)
				} else {
					want.Reset = in[len(in)-lim.Requests].Add(lim.Window)
					want.RetryAfter = want.Reset.Sub(now)
				}
				got, err := l.Allow(context.Background(), k, lim)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Reset.Equal(want.Reset) {
					t.Fatalf("request %d (%s): got Reset %v, want %v", i, k, got.Reset, want.Reset)
				}
				got.Reset = want.Reset
				if got != want {
					t.Fatalf("request %d (%s): got %+v, want %+v", i, k, got, want)
				}
			}
		})
	}
}
