package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"testing"
	"time"

	"github.com/dfms/dfms/server/ratelimit/internal/rate"
)

// size returns the number of keys held.
func (l *Limiter) size() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}

// TestSweep: keys whose requests have all left their window are deleted
// once their shard is next used after a sweep falls due; others stay.
func TestSweep(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	l := New(WithClock(func() time.Time { return now }))
	ctx := context.Background()
	short := rate.Limit{Requests: 3, Window: time.Second}
	long := rate.Limit{Requests: 3, Window: time.Hour}
	for i := range 1000 {
		if _, err := l.Allow(ctx, fmt.Sprint("idle", i), short); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if _, err := l.Allow(ctx, fmt.Sprint("long", i), long); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := l.size(), 1010; got != want {
		t.Fatalf("keys after the burst: got %d, want %d", got, want)
	}

	// Within the sweep interval nothing goes, even if expired.
	now = now.Add(sweepEvery / 2)
	if _, err := l.Allow(ctx, "fresh", short); err != nil {
		t.Fatal(err)
	}
	if got, want := l.size(), 1011; got != want {
		t.Fatalf("keys before a sweep is due: got %d, want %d", got, want)
	}

	// After it, touching every shard once sweeps them all.
	now = now.Add(sweepEvery)
	touched := map[uint64]bool{}
	n := 0
	for i := 0; len(touched) < numShards; i++ {
		k := fmt.Sprint("new", i)
		touched[maphash.String(l.seed, k)%numShards] = true
		if _, err := l.Allow(ctx, k, short); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if got, want := l.size(), n+10; got != want {
		t.Errorf("keys after the sweep: got %d, want %d (the %d new and 10 long-window ones)", got, want, n)
	}
	for i := range 10 {
		res, err := l.Allow(ctx, fmt.Sprint("long", i), long)
		if err != nil {
			t.Fatal(err)
		}
		if res.Remaining != 1 {
			t.Errorf("long%d after the sweep: got Remaining %d, want 1 (its log kept)", i, res.Remaining)
		}
	}
}

// TestRingGrowth: the log of a key with a large limit grows in steps and
// keeps its order across wraparounds.
func TestRingGrowth(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	l := New(WithClock(func() time.Time { return now }))
	lim := rate.Limit{Requests: 50, Window: time.Second}
	for i := range 1000 {
		res, err := l.Allow(context.Background(), "k", lim)
		if err != nil {
			t.Fatal(err)
		}
		// One request every 30 ms: at most 34 are ever in the window.
		if want := 50 - min(i+1, 34); !res.Allowed || res.Remaining != want {
			t.Fatalf("request %d: got %+v, want allowed with Remaining %d", i, res, want)
		}
		now = now.Add(30 * time.Millisecond)
	}
	s := &l.shards[maphash.String(l.seed, "k")%numShards]
	if got := len(s.keys["k"].ring); got > 50 || got < 34 {
		t.Errorf("ring size: got %d, want between 34 and 50", got)
	}
}
