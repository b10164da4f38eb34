// Package redis is the rate limiter whose counts live in Redis: the
// redis:// backend of package ratelimit. Every gateway that points at the
// same Redis (and key prefix) shares the counts, so a limit holds across
// all of them.
//
// The URL is go-redis's, plus a key prefix:
//
//	redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=dfms:rl:&dial_timeout=1s&…]
//	rediss://…   the same over TLS
//
// prefix defaults to "dfms:rl:"; the other query options (dial_timeout,
// read_timeout, write_timeout, max_retries, pool_size, …) are go-redis's.
// Unless the URL sets them, the dial, read and write timeouts are 1 s and a
// failed command is retried once, so an unreachable Redis costs a request
// about a second, not go-redis's default of many.
//
// # Algorithm
//
// Each key is a sorted set whose members are the allowed requests, scored
// by their time in microseconds (a request of weight n is n members). One
// Lua script, run atomically by Redis, removes the members at or before
// now − window, counts the rest, and if the request still fits under the
// limit adds it and sets the key to expire (PEXPIRE, in milliseconds,
// rounded up) one window later, when all its members are out of the
// window. "Now" is the Redis server's clock (TIME), so gateways with skewed
// clocks still agree; the times in a Result are converted to the local
// clock as offsets from the server's now. [WithClock] replaces TIME with a
// clock of the caller's, for tests. The script touches only its one key, so
// it runs on Redis Cluster too. It needs Redis 5 or later (scripts that
// call TIME before writing).
//
// A key costs 50 to 125 bytes per logged request (Redis 7.0: a small set
// is packed, one over 128 members is not): a limit of 200 per minute holds
// at most 200 members, about 25 KiB, for at most a minute after the key's
// last allowed request.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/ratelimit/internal/rate"
)

// debugLogger takes go-redis's own log lines (a failed dial, say) off the
// process's stderr, where the library writes them unasked, to slog's debug
// level: the failures themselves reach the caller as errors (Open's, and
// Allow's, which the API logs), so a start that fails prints one line.
type debugLogger struct{}

func (debugLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

var quietOnce sync.Once

// DefaultPrefix is put before every key unless WithPrefix or the URL's
// prefix option says otherwise.
const DefaultPrefix = "dfms:rl:"

// Defaults that replace go-redis's (5 s dial and read timeouts, 3 retries,
// 5 dial attempts) unless the URL sets them: a limiter sits in front of
// every request, and waiting long for it is worse than failing fast.
const (
	defaultTimeout = time.Second
	defaultRetries = 1
)

// Limiter is the Redis rate limiter. It is safe for concurrent use.
type Limiter struct {
	c      goredis.Scripter
	prefix string
	now    func() time.Time // nil: the server's TIME
	owned  *goredis.Client  // the client Open made, closed by Close; nil after New
}

// rate.Limiter is ratelimit.Limiter (an alias), which this package cannot
// import: ratelimit imports it.
var _ rate.Limiter = (*Limiter)(nil)

// Option configures New and Open.
type Option func(*Limiter)

// WithPrefix puts p before every key, instead of DefaultPrefix or the
// URL's prefix.
func WithPrefix(p string) Option {
	return func(l *Limiter) { l.prefix = p }
}

// WithClock makes the limiter stamp requests with now, read on the gateway,
// instead of the Redis server's TIME; tests use it to step time
// deterministically. Production leaves it unset, and should: the server's
// clock is the one clock that every gateway sharing the counts reads, while
// gateways' own clocks are skewed, and a gateway whose clock runs ahead
// would push the others' requests out of the window early (and one that
// lags, keep them in late), so the limit would no longer hold across them.
// Keys still expire by the server's clock, one window after their last
// allowed request. now must not go backwards, and its times are kept to the
// microsecond.
func WithClock(now func() time.Time) Option {
	return func(l *Limiter) { l.now = now }
}

// New returns a limiter that runs its script through c: a *goredis.Client,
// or a ClusterClient, Ring or Pipeline-free wrapper of one. The caller
// keeps ownership of c; Close does not close it.
func New(c goredis.Scripter, opts ...Option) *Limiter {
	l := &Limiter{c: c, prefix: DefaultPrefix}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Open connects to the Redis that rawURL names (see the package
// documentation for its form) and pings it. A malformed URL fails with kind
// Invalid, an unreachable or refusing Redis with kind Unavailable. Errors
// never show the URL's password. Close closes the connection.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Limiter, error) {
	const op dfms.Op = "ratelimit/redis.Open"
	u, err := dfms.ParseSecretURL(rawURL)
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("malformed Redis URL: %w", err))
	}
	q := u.Query()
	prefix := DefaultPrefix
	if q.Has("prefix") {
		prefix = q.Get("prefix")
		q.Del("prefix")
		u.RawQuery = q.Encode()
	}
	o, err := goredis.ParseURL(u.String())
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("Redis URL %s: %w", u.Redacted(), err))
	}
	if !q.Has("dial_timeout") {
		o.DialTimeout = defaultTimeout
		o.DialerRetries = 1
	}
	if !q.Has("read_timeout") {
		o.ReadTimeout = defaultTimeout
	}
	if !q.Has("write_timeout") {
		o.WriteTimeout = defaultTimeout
	}
	if !q.Has("max_retries") {
		o.MaxRetries = defaultRetries
	}
	// Let a caller's deadline cut a slow command short, too.
	o.ContextTimeoutEnabled = true
	quietOnce.Do(func() { goredis.SetLogger(debugLogger{}) })
	c := goredis.NewClient(o)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, classify(ctx, op, fmt.Errorf("Redis at %s: %w", u.Redacted(), err))
	}
	l := New(c, append([]Option{WithPrefix(prefix)}, opts...)...)
	l.owned = c
	return l, nil
}

// allowScript is the whole algorithm (see the package documentation).
//
//	KEYS[1]  the key's sorted set
//	ARGV[1]  window, µs
//	ARGV[2]  limit (> 0)
//	ARGV[3]  expiry, ms: the window rounded up
//	ARGV[4]  random suffix that keeps members unique across gateways
//	ARGV[5]  the request's weight n (1..limit): it is logged n times
//	ARGV[6]  optional: now, µs (WithClock); the server's TIME if absent
//
// It returns {allowed (1 or 0), members now in the window, a time in µs,
// the script's now in µs}. The third is, when allowed, when the oldest
// member leaves the window; when denied, when a request would next be
// allowed. Numbers stay below 2^53, so Lua's doubles hold them exactly.
var allowScript = goredis.NewScript(`
local now, stamp
if ARGV[6] then
	now, stamp = tonumber(ARGV[6]), ARGV[6]
else
	local t = redis.call('TIME')
	now = tonumber(t[1]) * 1000000 + tonumber(t[2])
	stamp = t[1] .. string.format('%06d', tonumber(t[2]))
end
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local weight = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n + weight <= limit then
	local member = stamp .. '-' .. ARGV[4]
	for i = 1, weight do
		redis.call('ZADD', KEYS[1], now, member .. '-' .. i)
	end
	redis.call('PEXPIRE', KEYS[1], ARGV[3])
	local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
	return {1, n + weight, tonumber(oldest[2]) + window, now}
end
-- Allowed again once all but limit-weight members have left; with an
-- unchanged limit and a weight of 1, that is when the oldest leaves.
local m = redis.call('ZRANGE', KEYS[1], n - limit + weight - 1, n - limit + weight - 1, 'WITHSCORES')
return {0, n, tonumber(m[2]) + window, now}
`)

// Allow implements ratelimit.Limiter. Any Redis failure is of kind
// Unavailable, unless ctx was done.
func (l *Limiter) Allow(ctx context.Context, key string, lim rate.Limit) (rate.Result, error) {
	return l.AllowN(ctx, key, lim, 1)
}

// AllowN implements ratelimit.Limiter, as Allow.
func (l *Limiter) AllowN(ctx context.Context, key string, lim rate.Limit, n int) (rate.Result, error) {
	const op dfms.Op = "ratelimit/redis.Allow"
	if r, decided, err := rate.Decide(ctx, op, lim, n); decided {
		return r, err
	}
	windowUS := ceilDiv(lim.Window, time.Microsecond)
	ttlMS := ceilDiv(lim.Window, time.Millisecond)
	suffix := strconv.FormatUint(rand.Uint64(), 36)
	args := []any{windowUS, lim.Requests, ttlMS, suffix, n}
	var at time.Time
	if l.now != nil {
		at = l.now()
		args = append(args, at.UnixMicro())
	}
	v, err := allowScript.Run(ctx, l.c, []string{l.prefix + key}, args...).Int64Slice()
	if err != nil {
		return rate.Result{}, classify(ctx, op, err)
	}
	if len(v) != 4 {
		return rate.Result{}, dfms.E(op, dfms.Other, fmt.Errorf("rate-limit script returned %d values, want 4", len(v)))
	}
	// Offsets from the script's now, applied to the local clock: the time
	// the request was stamped with, or else the local clock read after the
	// reply, late by the round trip at most, never early.
	wait := time.Duration(v[2]-v[3]) * time.Microsecond
	now := at
	if l.now == nil {
		now = time.Now()
	}
	if v[0] == 1 {
		return rate.Result{
			Allowed:   true,
			Limit:     lim.Requests,
			Remaining: max(lim.Requests-int(v[1]), 0),
			Reset:     now.Add(wait),
		}, nil
	}
	// v[2] > v[3] always (members at or before now − window are gone), and
	// v[2] − v[3] <= the window rounded up to a microsecond; the bounds keep
	// the contract (0 < RetryAfter <= Window) for windows that are not
	// whole microseconds, and if the server's clock misbehaves.
	wait = min(max(wait, time.Microsecond), lim.Window)
	return rate.Result{
		Limit:      lim.Requests,
		Reset:      now.Add(wait),
		RetryAfter: wait,
	}, nil
}

// Close closes the connection Open made; after New it does nothing.
func (l *Limiter) Close() error {
	if l.owned == nil {
		return nil
	}
	if err := l.owned.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
		return dfms.E("ratelimit/redis.Close", dfms.Other, err)
	}
	return nil
}

// classify gives a Redis error its kind: the caller's cancellation stays
// the caller's (wrapping ctx.Err()), anything else means Redis is not
// serving us.
func classify(ctx context.Context, op dfms.Op, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		if !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return dfms.E(op, dfms.Other, err)
	}
	return dfms.E(op, dfms.Unavailable, err)
}

func ceilDiv(d, unit time.Duration) int64 {
	return int64((d + unit - 1) / unit)
}
