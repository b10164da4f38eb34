// Package memory is the in-process rate limiter: the mem:// backend of
// package ratelimit, and its default. It needs no service, and its counts
// belong to one process, so several gateways each allow the full limit;
// use ratelimit/redis to share the counts.
//
//	l := memory.New()
//	res, err := l.Allow(ctx, "user:42", ratelimit.Limit{Requests: 200, Window: time.Minute})
//
// It keeps, per key, the times of the requests allowed in the window (at
// most Requests of them; a request of weight n is kept n times), in a
// ring. Keys are spread over mutex-guarded
// shards, so requests on different keys rarely contend. A key whose
// requests have all left the window is deleted when its shard is next swept;
// each shard is swept at most once a minute, by the Allow call that finds
// the sweep due, so memory stays proportional to the keys active in the
// last window plus a minute, and no goroutine is involved.
package memory

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/dfms/dfms/server/ratelimit/internal/rate"
)

const (
	numShards  = 32
	sweepEvery = time.Minute
)

// Limiter is the in-process rate limiter. The zero value is not usable;
// call New.
type Limiter struct {
	now        func() time.Time
	base       time.Time // request times are stored as now().Sub(base), monotonic under the real clock
	seed       maphash.Seed
	sweepEvery int64 // nanoseconds; a field so that tests can shorten it
	shards     [numShards]shard
}

// rate.Limiter is ratelimit.Limiter (an alias), which this package cannot
// import: ratelimit imports it.
var _ rate.Limiter = (*Limiter)(nil)

type shard struct {
	mu sync.Mutex
	// Guarded by mu:
	keys      map[string]*entry
	nextSweep int64 // offset from base at which the shard is next swept
}

// entry is one key's log: the offsets from base of its allowed requests
// still in the window, oldest first, in the ring buffer ring[head:]+ring[:…].
type entry struct {
	ring  []int64
	head  int
	n     int
	until int64 // from this offset on, no logged request is in any window used so far
}

// Option configures New.
type Option func(*Limiter)

// WithClock makes the limiter read the time from now instead of
// time.Now; tests use it to step time deterministically. now must not go
// backwards (a time before the last one is taken as the last one).
func WithClock(now func() time.Time) Option {
	return func(l *Limiter) { l.now = now }
}

// New returns an empty in-process limiter.
func New(opts ...Option) *Limiter {
	l := &Limiter{now: time.Now, seed: maphash.MakeSeed(), sweepEvery: int64(sweepEvery)}
	for _, o := range opts {
		o(l)
	}
	l.base = l.now()
	for i := range l.shards {
		l.shards[i].keys = make(map[string]*entry)
		l.shards[i].nextSweep = l.sweepEvery
	}
	return l
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, lim rate.Limit) (rate.Result, error) {
	return l.AllowN(ctx, key, lim, 1)
}

// AllowN implements ratelimit.Limiter: a request of weight n is logged n
// times at its time.
func (l *Limiter) AllowN(ctx context.Context, key string, lim rate.Limit, n int) (rate.Result, error) {
	if r, decided, err := rate.Decide(ctx, "ratelimit/memory.Allow", lim, n); decided {
		return r, err
	}
	w := int64(lim.Window)
	s := &l.shards[maphash.String(l.seed, key)%numShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	// Read the clock under the lock, so that each log stays in time order.
	t := l.now()
	now := int64(t.Sub(l.base))
	if now >= s.nextSweep {
		s.sweep(now)
		s.nextSweep = now + l.sweepEvery
	}
	e := s.keys[key]
	if e == nil {
		e = &entry{}
		s.keys[key] = e
	}
	if e.n > 0 && now < e.at(e.n-1) {
		now = e.at(e.n - 1)
	}
	e.drop(now - w)
	if e.n+n <= lim.Requests {
		for range n {
			e.push(now, lim.Requests)
		}
		e.until = max(e.until, now+w)
		return rate.Result{
			Allowed:   true,
			Limit:     lim.Requests,
			Remaining: lim.Requests - e.n,
			Reset:     t.Add(time.Duration(e.at(0) + w - now)),
		}, nil
	}
	// The request is allowed once all but Requests-n of the logged ones
	// have left; with an unchanged limit and n = 1 that is when the oldest
	// leaves.
	retry := time.Duration(e.at(e.n-lim.Requests+n-1) + w - now)
	return rate.Result{
		Limit:      lim.Requests,
		Reset:      t.Add(retry),
		RetryAfter: retry,
	}, nil
}

// Close does nothing: the limiter holds only memory.
func (l *Limiter) Close() error { return nil }

// sweep deletes the keys whose requests have all left their windows.
func (s *shard) sweep(now int64) {
	for k, e := range s.keys {
		if e.until <= now {
			delete(s.keys, k)
		}
	}
}

// at returns the i-th oldest logged request.
func (e *entry) at(i int) int64 { return e.ring[(e.head+i)%len(e.ring)] }

// drop forgets the requests at or before cutoff.
func (e *entry) drop(cutoff int64) {
	for e.n > 0 && e.at(0) <= cutoff {
		e.head = (e.head + 1) % len(e.ring)
		e.n--
	}
}

// push logs a request at t, doubling the ring when it is full but never
// beyond limit slots (push is only called with e.n < limit).
func (e *entry) push(t int64, limit int) {
	if e.n == len(e.ring) {
		size := max(min(max(2*len(e.ring), 4), limit), e.n+1)
		r := make([]int64, size)
		for i := range e.n {
			r[i] = e.at(i)
		}
		e.ring, e.head = r, 0
	}
	e.ring[(e.head+e.n)%len(e.ring)] = t
	e.n++
}
