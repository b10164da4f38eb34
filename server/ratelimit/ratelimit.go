// Package ratelimit limits how many requests a key (a user, a client
// address, a route) may make in a sliding window. The contract is
// [Limiter]; [Open] picks the backend by URL:
//
//	mem://          (or "") in-process counts, package ratelimit/memory; the default
//	redis://[:PASSWORD@]HOST:PORT[/DB][?prefix=dfms:rl:]
//	rediss://…      counts shared by every gateway through Redis, package
//	                ratelimit/redis, which documents the options
//
// One conformance suite, ratelimit/ratelimittest, runs on both.
//
// # Semantics
//
// The limit is a sliding-window log, exactly: a request at time t is allowed
// iff fewer than Requests requests for its key were allowed in
// (t − Window, t]. Unlike a fixed window, it never lets 2×Requests through
// around a window boundary, and unlike a token bucket it has no burst
// parameter. Denied requests are not counted.
//
// A [Result] carries what an HTTP layer needs for its headers: Limit and
// Remaining for X-RateLimit-Limit and -Remaining, Reset for
// X-RateLimit-Reset, and RetryAfter for Retry-After on a 429 (the HTTP
// layer rounds it up to whole seconds).
//
// # Failures
//
// When Redis is down, Allow fails with kind Unavailable and the caller
// decides whether to fail open (let the request through) or closed (503):
// the limiter has no policy of its own.
package ratelimit

import (
	"context"
	"fmt"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/ratelimit/internal/rate"
	"github.com/dfms/dfms/server/ratelimit/memory"
	"github.com/dfms/dfms/server/ratelimit/redis"
)

// The contract's types live in an internal package, so that the backends,
// which this package imports, can use them too; these aliases are their
// public names, and they are the same types.
type (
	// Limit allows Requests requests per sliding Window. Requests <= 0
	// means unlimited (Window is then ignored); a limited Limit needs a
	// positive Window.
	Limit = rate.Limit

	// Result is the outcome of one Allow:
	//
	//	Allowed    whether the request may proceed (a denied one was not counted)
	//	Limit      the limit's Requests (0 when unlimited)
	//	Remaining  requests left in the window after this one (0 when denied)
	//	Reset      when the oldest counted request leaves the window, freeing a slot
	//	RetryAfter when denied, how long until a request would be allowed
	//	           (> 0 and at most the window); 0 when allowed
	Result = rate.Result

	// Limiter counts requests per key. See rate.Limiter's methods for
	// the full contract; in short:
	//
	// Allow counts one request for key under limit l and reports whether
	// it is allowed. Denied requests are not counted. An unlimited l is
	// allowed without touching the backend; a limited l with Window <= 0
	// fails with kind Invalid; a done ctx fails with an error wrapping
	// ctx.Err(); an unreachable backend fails with kind Unavailable. It is
	// safe for concurrent use, including on one key.
	//
	// AllowN counts a request that weighs n (1..l.Requests): all n slots
	// or none. The API charges a commit this way, by the bytes it makes.
	//
	// Close releases the limiter's resources; Allow must not be called
	// after it.
	Limiter = rate.Limiter
)

var (
	_ Limiter = (*memory.Limiter)(nil)
	_ Limiter = (*redis.Limiter)(nil)
)

// Open returns the limiter that rawURL names (see the package
// documentation); "" means mem://. For redis:// it connects and pings, and
// fails with kind Unavailable if Redis does not answer. A malformed URL or
// an unknown scheme fails with kind Invalid; errors never show a password.
func Open(ctx context.Context, rawURL string) (Limiter, error) {
	const op dfms.Op = "ratelimit.Open"
	if rawURL == "" {
		return memory.New(), nil
	}
	u, err := dfms.ParseSecretURL(rawURL)
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("malformed rate-limiter URL: %w", err))
	}
	switch u.Scheme {
	case "mem":
		if u.Host != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" || u.RawQuery != "" {
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("rate-limiter URL %q: mem:// takes no host, path or options", rawURL))
		}
		return memory.New(), nil
	case "redis", "rediss":
		l, err := redis.Open(ctx, rawURL)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("rate-limiter URL %s: unknown scheme %q (want mem:// or redis://)", u.Redacted(), u.Scheme))
}
