// Package client is a typed Go client of the DFMS REST API (/api/v1).
//
// A Client holds a server's base URL and a token pair. Requests carry the
// access token; when the server answers 401, the client exchanges the
// refresh token for a new pair once, hands the pair to the TokenSaver (so
// the caller can persist it: the old refresh token is used up), and
// repeats the request. Refreshes are serialized, so concurrent requests
// never present the same refresh token twice (the server would revoke the
// whole login).
//
// Every failure is a *dfms.Error whose Kind classifies it (NotExist,
// Unauthenticated, Unavailable for transport failures, …). Failures the
// server reported also carry an *Error, reachable with errors.As, holding
// the HTTP status and the envelope's code and message.
//
// A client made WithServerWait repeats the requests marked safe to repeat
// when the server cannot be reached (connection refused or broken, or a
// proxy's 502, 503 or 504), with a backoff, until the server answers or
// the wait is over; see retry.
//
// Transfers stream: uploads read from an io.Reader and downloads write to
// an io.Writer, and neither holds a file in memory. Large files go through
// the resumable multipart protocol (UploadMultipart); downloads to a file
// resume from a partial file with a Range request (DownloadFile).
//
// A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dfms/dfms"
)

// Tokens is a token pair as the server issues it.
type Tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

// TokenSaver persists a new token pair. It is called after a login and
// after every refresh, with the client's refresh lock held (so calls never
// overlap). A refresh whose pair cannot be saved fails: the refresh token
// that was saved before is used up.
type TokenSaver func(Tokens) error

// Client talks to one DFMS server.
type Client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	hc    *http.Client
	save  TokenSaver
	agent string
	// wait bounds how long requests marked retry wait for a server that
	// cannot be reached (0: they fail at once).
	wait time.Duration
	log  *slog.Logger

	// refreshMu serializes refreshes (and TokenSaver calls). It is taken
	// before mu.
	refreshMu sync.Mutex
	// mu guards tokens and origin.
	mu     sync.Mutex
	tokens Tokens
	origin string

	// downMu guards downSince, since when requests find the server
	// unreachable (zero: they do not; any answer of the server ends it),
	// and gaveUp, whether that lasted the whole wait.
	downMu    sync.Mutex
	downSince time.Time
	gaveUp    bool
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: one without an overall
// timeout, since transfers of large files take long).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTokens sets the initial token pair.
func WithTokens(t Tokens) Option { return func(c *Client) { c.tokens = t } }

// WithTokenSaver sets the function that persists new token pairs.
func WithTokenSaver(fn TokenSaver) Option { return func(c *Client) { c.save = fn } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.agent = ua } }

// WithServerWait makes the requests that are safe to repeat wait up to d
// for a server that cannot be reached, sending them again with a backoff
// (default 0: they fail at once with kind dfms.Unavailable).
func WithServerWait(d time.Duration) Option { return func(c *Client) { c.wait = d } }

// WithLogger sets where the client says that the server cannot be
// reached and when it answers again (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// New returns a client of the server at baseURL (for example
// http://127.0.0.1:8080). A baseURL that is not an absolute http or https
// URL has kind dfms.Invalid.
func New(baseURL string, opts ...Option) (*Client, error) {
	const op dfms.Op = "client.New"
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("server URL %q: want http://host:port or https://host", baseURL))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("server URL %q: no user, query or fragment allowed", baseURL))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u.String(), hc: &http.Client{Transport: newTransport()}, agent: "dfms-client"}
	for _, o := range opts {
		o(c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// maxConnsIdle is how many idle connections to the server a client keeps:
// as many as a mount has requests in flight (reads ahead, uploads, the
// change feed's long poll), so that a burst does not open and close a
// connection per request. Go's default keeps 2.
const maxConnsIdle = 64

// newTransport is Go's default transport (proxies from the environment,
// HTTP/2 over TLS) keeping maxConnsIdle idle connections to the server.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxConnsIdle
	t.MaxIdleConnsPerHost = maxConnsIdle
	return t
}

// BaseURL returns the server's URL as normalized by New.
func (c *Client) BaseURL() string { return c.base }

// Tokens returns the current token pair.
func (c *Client) Tokens() Tokens {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens
}

// SetOrigin names the session the client's requests come from (the
// X-DFMS-Origin header): the change feed reports it with the changes they
// make. Empty: no header.
func (c *Client) SetOrigin(o string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.origin = o
}

// Origin returns what SetOrigin set.
func (c *Client) Origin() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.origin
}

// SetTokens replaces the token pair (without calling the TokenSaver).
func (c *Client) SetTokens(t Tokens) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens = t
}

// Request describes one API call.
type Request struct {
	Method string
	Path   string // under the base URL, e.g. /api/v1/files/3
	Query  url.Values
	Header http.Header
	// body is either nil, JSON to encode (JSON), or a stream (stream). A
	// stream can be sent again after a 401 only if it is an io.Seeker.
	JSON any
	Body io.Reader
	Size int64 // of stream; -1 unknown
	// Progress, if set, is told how many bytes of stream were sent so far.
	Progress func(sent int64)
	// Anonymous requests carry no token and are never refreshed.
	Anonymous bool
	// Retry marks a request that may be sent again while the server
	// cannot be reached (WithServerWait): one that is safe to repeat, or
	// one whose caller tells by delivered whether an earlier attempt
	// may have been made and checks the outcome.
	Retry bool
	// Delivered, if set, is set when an attempt failed after the request
	// may have reached the server: the connection broke after it was
	// sent, or a proxy answered 502, 503 or 504.
	Delivered *bool
}

// do sends r and returns the response of a 2xx status; the caller closes
// its body. Any other status becomes an error (the body decoded as the
// envelope). One 401 on an authenticated request triggers a refresh and
// a second attempt. A request marked retry is sent again while the server
// cannot be reached (retry).
func (c *Client) do(ctx context.Context, op dfms.Op, r Request) (*http.Response, error) {
	if !r.Retry || c.wait <= 0 {
		return c.send(ctx, op, r)
	}
	var resp *http.Response
	err := c.retry(ctx, op, r, func() (err error) {
		resp, err = c.send(ctx, op, r)
		return err
	})
	return resp, err
}

// DoBody sends r and hands the body of a 2xx answer to read. A request
// marked Retry is sent again, as do sends it, also when read fails with
// kind dfms.Unavailable (the transfer was cut short).
func (c *Client) DoBody(ctx context.Context, op dfms.Op, r Request, read func(io.Reader) error) error {
	attempt := func() error {
		resp, err := c.send(ctx, op, r)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return read(resp.Body)
	}
	if !r.Retry || c.wait <= 0 {
		return attempt()
	}
	return c.retry(ctx, op, r, attempt)
}

// retry runs attempt (which sends r) until it succeeds, fails otherwise
// than by the server being unreachable (kind dfms.Unavailable), or the
// client's wait is over (counted from when r began, or from when the
// server was found unreachable if earlier: once an outage lasted the
// whole wait, requests try once until the server answers again): then it
// fails with kind dfms.Unavailable and says so. Between attempts it waits 50 ms, doubling up to 1 s, and
// rewinds r's stream; a stream that cannot be rewound is not retried.
func (c *Client) retry(ctx context.Context, op dfms.Op, r Request, attempt func() error) error {
	start := int64(-1)
	if r.Body != nil {
		if s, ok := r.Body.(io.Seeker); ok {
			if off, err := s.Seek(0, io.SeekCurrent); err == nil {
				start = off
			}
		}
	}
	began := time.Now()
	backoff := 50 * time.Millisecond
	for {
		err := attempt()
		if err == nil {
			return nil
		}
		if !dfms.Is(err, dfms.Unavailable) || ctx.Err() != nil || (r.Body != nil && start < 0) {
			return err
		}
		if r.Delivered != nil && mayHaveArrived(err) {
			*r.Delivered = true
		}
		// The wait runs from when this request began, or from when the
		// server was found unreachable if earlier: past the wait, a
		// request tries once and fails.
		from := began
		if down := c.unreachable(err); down.Before(from) {
			from = down
		}
		waited := time.Since(from)
		if waited >= c.wait {
			cause := err
			if de := (*dfms.Error)(nil); errors.As(err, &de) && de.Err != nil {
				cause = de.Err // without the op and kind said again
			}
			return dfms.E(op, dfms.Unavailable, fmt.Errorf("the server %s could not be reached for %s, giving up: %w", c.base, waited.Round(100*time.Millisecond), cause))
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(backoff, c.wait-waited)):
		}
		backoff = min(2*backoff, time.Second)
		if start >= 0 {
			if _, err := r.Body.(io.Seeker).Seek(start, io.SeekStart); err != nil {
				return dfms.E(op, dfms.Other, err)
			}
		}
	}
}

// mayHaveArrived reports whether a request that failed with err, of kind
// dfms.Unavailable, may have reached the server: anything but a failure
// to connect, or an answer of the server itself (its error envelope: it
// changed nothing).
func mayHaveArrived(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return false
	}
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return false
	}
	return true
}

// proxyUnavailable reports whether status is a proxy's word that the
// server behind it cannot be reached.
func proxyUnavailable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// unreachable notes that a request found the server unreachable, and
// returns since when it is: the first such request since it last
// answered is logged, and so is the end of the wait.
func (c *Client) unreachable(err error) time.Time {
	c.downMu.Lock()
	first := c.downSince.IsZero()
	if first {
		c.downSince, c.gaveUp = time.Now(), false
	}
	since := c.downSince
	gaveUp := !c.gaveUp && time.Since(since) >= c.wait
	if gaveUp {
		c.gaveUp = true
	}
	c.downMu.Unlock()
	if first {
		c.log.Warn("the server cannot be reached; requests wait for it", "server", c.base, "wait", c.wait, "err", err)
	}
	if gaveUp {
		c.log.Error("the server could not be reached for the whole wait; requests fail until it answers", "server", c.base, "wait", c.wait, "err", err)
	}
	return since
}

// reachable notes that the server answered.
func (c *Client) reachable() {
	c.downMu.Lock()
	since := c.downSince
	c.downSince = time.Time{}
	c.downMu.Unlock()
	if !since.IsZero() {
		c.log.Info("the server answers again", "server", c.base, "after", time.Since(since).Round(time.Millisecond))
	}
}

// send is one attempt of do.
func (c *Client) send(ctx context.Context, op dfms.Op, r Request) (*http.Response, error) {
	var payload []byte
	if r.JSON != nil {
		var err error
		if payload, err = json.Marshal(r.JSON); err != nil {
			return nil, dfms.E(op, dfms.Invalid, err)
		}
	}
	start := int64(-1) // the stream's offset, if it can be rewound
	if s, ok := r.Body.(io.Seeker); ok {
		if off, err := s.Seek(0, io.SeekCurrent); err == nil {
			start = off
		}
	}
	if !r.Anonymous && r.Body != nil && start < 0 {
		// A stream that cannot be sent twice goes with a token that will
		// not expire on the way.
		if err := c.refreshIfExpiring(ctx, op); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		var body io.Reader
		switch {
		case payload != nil:
			body = bytes.NewReader(payload)
		case r.Body != nil:
			body = &countingReader{r: r.Body, fn: r.Progress}
		}
		req, err := http.NewRequestWithContext(ctx, r.Method, c.base+r.Path, body)
		if err != nil {
			return nil, dfms.E(op, dfms.Invalid, err)
		}
		if len(r.Query) > 0 {
			req.URL.RawQuery = r.Query.Encode()
		}
		for k, vs := range r.Header {
			req.Header[k] = vs
		}
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if r.Body != nil && r.Size >= 0 {
			req.ContentLength = r.Size
			if r.Size == 0 {
				req.Body = http.NoBody
			}
		}
		req.Header.Set("User-Agent", c.agent)
		req.Header.Set("Accept", "application/json")
		if o := c.Origin(); o != "" && !r.Anonymous {
			req.Header.Set("X-DFMS-Origin", o)
		}
		sentWith := ""
		if !r.Anonymous {
			sentWith = c.Tokens().Access
			if sentWith == "" {
				return nil, dfms.Errorf(op, dfms.Unauthenticated, "not logged in")
			}
			req.Header.Set("Authorization", "Bearer "+sentWith)
		}
		resp, err := c.hc.Do(req)
		if err == nil && c.wait > 0 && !proxyUnavailable(resp.StatusCode) {
			c.reachable()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, dfms.E(op, dfms.Other, ctx.Err())
			}
			var ce *clientSideError
			if errors.As(err, &ce) {
				return nil, dfms.E(op, dfms.Other, ce.err) // the caller's reader failed
			}
			return nil, dfms.E(op, dfms.Unavailable, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		apiErr := readError(resp)
		if resp.StatusCode != http.StatusUnauthorized || r.Anonymous || attempt > 0 {
			return nil, apiErr.Wrap(op)
		}
		if err := c.refresh(ctx, op, sentWith); err != nil {
			if dfms.Is(err, dfms.Unauthenticated) {
				return nil, apiErr.Wrap(op) // the session is over: report the original 401
			}
			return nil, err
		}
		if r.Body != nil {
			if start < 0 {
				return nil, apiErr.Wrap(op)
			}
			if _, err := r.Body.(io.Seeker).Seek(start, io.SeekStart); err != nil {
				return nil, dfms.E(op, dfms.Other, err)
			}
		}
	}
}

// DoJSON is do for a JSON answer decoded into out (nil: discarded). An
// answer cut short is, like a failure to send, kind dfms.Unavailable, and
// retried as do retries.
func (c *Client) DoJSON(ctx context.Context, op dfms.Op, r Request, out any) error {
	if !r.Retry || c.wait <= 0 {
		return c.sendJSON(ctx, op, r, out)
	}
	return c.retry(ctx, op, r, func() error { return c.sendJSON(ctx, op, r, out) })
}

func (c *Client) sendJSON(ctx context.Context, op dfms.Op, r Request, out any) error {
	resp, err := c.send(ctx, op, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		kind := dfms.Other
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if !errors.As(err, &se) && !errors.As(err, &te) && err != io.EOF && ctx.Err() == nil {
			kind = dfms.Unavailable // the connection broke in the body
		}
		return dfms.E(op, kind, fmt.Errorf("decoding the answer to %s %s: %w", r.Method, r.Path, err))
	}
	return nil
}

// refresh exchanges the refresh token for a new pair, unless the access
// token is no longer sentWith (another request refreshed meanwhile).
func (c *Client) refresh(ctx context.Context, op dfms.Op, sentWith string) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	cur := c.Tokens()
	if cur.Access != sentWith && cur.Access != "" {
		return nil
	}
	if cur.Refresh == "" {
		return dfms.Errorf(op, dfms.Unauthenticated, "no refresh token")
	}
	var out Tokens
	err := c.DoJSON(ctx, op, Request{Method: http.MethodPost, Path: "/api/v1/auth/refresh", Anonymous: true,
		JSON: map[string]string{"refresh_token": cur.Refresh}}, &out)
	if err != nil {
		return err
	}
	if out.Access == "" || out.Refresh == "" {
		return dfms.Errorf(op, dfms.Other, "the refresh answer holds no tokens")
	}
	c.SetTokens(out)
	if c.save != nil {
		if err := c.save(out); err != nil {
			return dfms.E(op, dfms.Other, fmt.Errorf("saving the refreshed tokens: %w", err))
		}
	}
	return nil
}

// refreshIfExpiring refreshes when the access token expires within a
// minute (read from its exp claim, unverified: the server decides).
func (c *Client) refreshIfExpiring(ctx context.Context, op dfms.Op) error {
	t := c.Tokens()
	if t.Access == "" || t.Refresh == "" {
		return nil
	}
	exp, ok := expiry(t.Access)
	if !ok || time.Until(exp) > time.Minute {
		return nil
	}
	return c.refresh(ctx, op, t.Access)
}

// expiry reads the exp claim of a JWT without verifying it.
func expiry(jwt string) (time.Time, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}

// countingReader reports progress and marks the caller's read errors, so
// that do can tell them from network failures.
type countingReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n += int64(n)
	if cr.fn != nil && n > 0 {
		cr.fn(cr.n)
	}
	if err != nil && err != io.EOF {
		err = &clientSideError{err}
	}
	return n, err
}

// clientSideError is a failure of the reader the caller gave.
type clientSideError struct{ err error }

func (e *clientSideError) Error() string { return e.err.Error() }
func (e *clientSideError) Unwrap() error { return e.err }

// escape encodes a path segment.
func escape(s string) string { return url.PathEscape(s) }

// PathID is the path form of an entry id; 0 (Root) is the caller's root
// folder.
func PathID(id dfms.EntryID) string {
	if id == Root {
		return "root"
	}
	return id.String()
}
