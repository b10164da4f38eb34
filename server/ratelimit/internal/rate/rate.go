// Package rate holds the types of the rate-limiter contract, so that the
// backends (ratelimit/memory, ratelimit/redis) and package ratelimit, which
// opens them by URL, can share them without an import cycle. Package
// ratelimit re-exports every name here as an alias and documents the
// contract; nothing outside server/ratelimit imports this package.
package rate

import (
	"context"
	"fmt"
	"time"

	"github.com/dfms/dfms"
)

// Limit allows Requests requests per sliding Window. Requests <= 0 means
// unlimited, and then Window is ignored.
type Limit struct {
	Requests int
	Window   time.Duration
}

// Unlimited reports whether l lets every request through.
func (l Limit) Unlimited() bool { return l.Requests <= 0 }

func (l Limit) String() string {
	if l.Unlimited() {
		return "unlimited"
	}
	return fmt.Sprintf("%d per %v", l.Requests, l.Window)
}

// Result is the outcome of one Limiter.Allow call.
type Result struct {
	// Allowed reports whether the request may proceed. A denied request
	// was not counted.
	Allowed bool

	// Limit is the limit's Requests, or 0 when the limit is unlimited.
	Limit int

	// Remaining is how many more requests the window admits after this
	// one; 0 when denied.
	Remaining int

	// Reset is when the oldest request counted in the window leaves it,
	// freeing a slot. It is zero when the limit is unlimited.
	Reset time.Time

	// RetryAfter, when denied, is how long until a request would be
	// allowed; it is > 0 and at most the window. It is 0 when allowed.
	// Rounding it up to whole seconds for a Retry-After header is the
	// HTTP layer's job.
	RetryAfter time.Duration
}

// Limiter counts requests per key under a sliding-window-log limit.
type Limiter interface {
	// Allow counts one request for key under limit l and reports
	// whether it is allowed: it is iff fewer than l.Requests requests
	// for key were allowed in the half-open interval (now − l.Window,
	// now]. Denied requests are not counted, so a client that keeps
	// retrying is not locked out for longer than the window.
	//
	// The count of a key belongs to the key alone: callers put the tier
	// in the key ("user:42", "ip:10.0.0.1:/login") and should use one
	// Limit per key; a key used with a smaller limit than before counts
	// its older requests against the new one.
	//
	// An unlimited l (Requests <= 0) is allowed without touching the
	// backend. A limited one with Window <= 0 fails with kind Invalid.
	// A cancelled ctx fails with an error that wraps ctx.Err(). A backend
	// that cannot be reached fails with kind Unavailable, and the caller
	// decides whether to fail open or closed. Allow is safe for
	// concurrent use, including on one key: exactly l.Requests of any
	// burst are allowed.
	Allow(ctx context.Context, key string, l Limit) (Result, error)

	// AllowN is Allow for a request that weighs n: it is allowed iff at
	// most l.Requests − n requests were allowed in the window, and is
	// then counted n times (Remaining and Reset as after n requests at
	// once); a denied one is not counted at all. n must be in
	// 1..l.Requests for a limited l (a request that could never be
	// allowed is the caller's bug: kind Invalid); an unlimited l lets any
	// n > 0 through. Allow is AllowN with n = 1.
	AllowN(ctx context.Context, key string, l Limit, n int) (Result, error)

	// Close releases the limiter's resources. Allow must not be called
	// after Close.
	Close() error
}

// Decide answers the AllowN calls that need no backend: decided is true
// with Check's error, or with an allowed Result for an unlimited l; false
// when the backend must count the request.
func Decide(ctx context.Context, op dfms.Op, l Limit, n int) (r Result, decided bool, err error) {
	if err := Check(ctx, op, l, n); err != nil {
		return Result{}, true, err
	}
	return Result{Allowed: true}, l.Unlimited(), nil
}

// Check returns the error AllowN reports, before any work: for an
// unlimited l, a weight n below 1; for a limited one, a malformed l, a
// weight n outside 1..l.Requests, or a ctx that is already done. It
// returns nil otherwise, and the backend then lets an unlimited request
// through without counting it (Decide).
func Check(ctx context.Context, op dfms.Op, l Limit, n int) error {
	if l.Unlimited() {
		if n < 1 {
			return dfms.E(op, dfms.Invalid, fmt.Errorf("a request of weight %d", n))
		}
		return nil
	}
	if l.Window <= 0 {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("limit %d per %v: the window must be positive", l.Requests, l.Window))
	}
	if n < 1 || n > l.Requests {
		return dfms.E(op, dfms.Invalid, fmt.Errorf("a request of weight %d under a limit of %d", n, l.Requests))
	}
	if err := ctx.Err(); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	return nil
}
