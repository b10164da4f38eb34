package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dfms/dfms/server/ratelimit/memory"
)

// limitedRequest serves one request from the peer at remote (host:port)
// with extra headers as name, value pairs.
func limitedRequest(h http.Handler, remote, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = remote
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return serve(h, r, "", hdr...)
}

// refused reports whether rec is the answer of a limit (429). Any answer
// but that and want fails the test.
func refused(t *testing.T, what string, rec *httptest.ResponseRecorder, want int) bool {
	t.Helper()
	checkAnswer(t, what, rec)
	switch rec.Code {
	case http.StatusTooManyRequests:
		return true
	case want:
		return false
	}
	t.Fatalf("%s: got %d %s, want %d or 429", what, rec.Code, rec.Body, want)
	return false
}

// A client that rotates X-Forwarded-For (or X-Real-IP) on every login
// attempt stays one client: forwarding headers count only from configured
// proxies, and there are none by default.
func TestAuthLimitIgnoresForwardingHeadersOfClients(t *testing.T) {
	const login = `{"email":"nobody@example.com","password":"wrong password"}`
	for _, header := range []string{"X-Forwarded-For", "X-Real-IP"} {
		t.Run(header, func(t *testing.T) {
			a := newTestAPI(t, Deps{Limiter: memory.New()}, Config{Limits: Limits{Auth: rateLimit(5)}})
			var limited int
			for i := range 25 {
				rec := limitedRequest(a.Handler(), "198.51.100.7:40000", "POST", "/api/v1/auth/login", login,
					header, fmt.Sprintf("203.0.113.%d", i+1))
				if refused(t, fmt.Sprintf("login attempt %d", i+1), rec, http.StatusUnauthorized) {
					limited++
				}
			}
			if limited != 20 {
				t.Errorf("got %d of 25 attempts refused, want 20 (the limit is 5 per client)", limited)
			}
		})
	}
}

// Behind a configured proxy, the address the proxy reports is the client:
// two clients behind it have a budget each, and a peer that is not a
// configured proxy is still counted by its own address.
func TestAuthLimitTrustsConfiguredProxies(t *testing.T) {
	const login = `{"email":"nobody@example.com","password":"wrong password"}`
	a := newTestAPI(t, Deps{Limiter: memory.New()}, Config{TrustedProxies: []string{"10.0.0.0/8"}, Limits: Limits{Auth: rateLimit(2)}})
	h := a.Handler()
	for _, client := range []string{"203.0.113.1", "203.0.113.2"} {
		for i := range 2 {
			if rec := limitedRequest(h, "10.1.2.3:5000", "POST", "/api/v1/auth/login", login, "X-Forwarded-For", client); rec.Code != http.StatusUnauthorized {
				t.Fatalf("client %s attempt %d through the proxy: got %d %s, want 401", client, i+1, rec.Code, rec.Body)
			}
		}
		if rec := limitedRequest(h, "10.1.2.3:5000", "POST", "/api/v1/auth/login", login, "X-Forwarded-For", client); rec.Code != http.StatusTooManyRequests {
			t.Fatalf("client %s attempt 3 through the proxy: got %d, want 429", client, rec.Code)
		}
	}
	// A direct peer claiming to forward for a fresh client is not a proxy.
	for i := range 3 {
		rec := limitedRequest(h, "198.51.100.9:5000", "POST", "/api/v1/auth/login", login, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i))
		if want := []int{401, 401, 429}[i]; rec.Code != want {
			t.Fatalf("direct attempt %d: got %d, want %d", i+1, rec.Code, want)
		}
	}
}

// registerFrom registers a user from the peer at remote and returns its
// access token.
func registerFrom(t *testing.T, h http.Handler, remote, email string) string {
	t.Helper()
	rec := limitedRequest(h, remote, "POST", "/api/v1/auth/register", `{"email":"`+email+`","password":"a long password"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("register %s: got %d %s, want 201", email, rec.Code, rec.Body)
	}
	var reg struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &reg); err != nil || reg.AccessToken == "" {
		t.Fatalf("register %s: %v in %s", email, err, rec.Body)
	}
	return reg.AccessToken
}

// Anonymous requests (no token, a bad token, the public auth routes) are
// limited per client address: a flood of them from one address exhausts
// that address's budget only. Users who authenticate are never refused
// because of it, and every caller sees its own counters.
func TestAnonymousTrafficIsLimitedPerAddress(t *testing.T) {
	a := newTestAPI(t, Deps{Limiter: memory.New()}, Config{Limits: Limits{Global: rateLimit(30), User: rateLimit(20)}})
	h := a.Handler()
	alice := registerFrom(t, h, "192.0.2.10:1000", "alice@example.com")
	admin := registerFrom(t, h, "192.0.2.11:1000", "admin@example.com")

	const flooder = "198.51.100.66:4000"
	allowed := 0
	for i := range 200 {
		var rec *httptest.ResponseRecorder
		switch i % 3 {
		case 0:
			rec = limitedRequest(h, flooder, "GET", "/api/v1/files", "")
		case 1:
			rec = limitedRequest(h, flooder, "GET", "/api/v1/files", "", "Authorization", "Bearer not-a-token")
		case 2:
			rec = limitedRequest(h, flooder, "POST", "/api/v1/auth/refresh", `{"refresh_token":"nope"}`)
		}
		if !refused(t, fmt.Sprintf("anonymous request %d", i+1), rec, http.StatusUnauthorized) {
			allowed++
		}
	}
	if allowed != 20 {
		t.Errorf("the flooder got %d of 200 requests served, want 20 (its address's budget)", allowed)
	}

	for _, u := range []struct{ name, remote, token string }{{"alice", "192.0.2.10:1001", alice}, {"admin", "192.0.2.11:1001", admin}} {
		rec := limitedRequest(h, u.remote, "GET", "/api/v1/auth/me", "", "Authorization", "Bearer "+u.token)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s after the flood: got %d %s, want 200", u.name, rec.Code, rec.Body)
		}
		if l, r := rec.Header().Get("X-RateLimit-Limit"), rec.Header().Get("X-RateLimit-Remaining"); l != "20" || r != "19" {
			t.Errorf("%s's first request: got X-RateLimit-Limit %q, -Remaining %q; want its own 20, 19", u.name, l, r)
		}
	}
	// A new anonymous client sees its own budget, not the server's.
	rec := limitedRequest(h, "203.0.113.5:1000", "POST", "/api/v1/auth/login", `{"email":"alice@example.com","password":"wrong password"}`)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("a new client's login: got %d %s, want 401", rec.Code, rec.Body)
	}
	if l, r := rec.Header().Get("X-RateLimit-Limit"), rec.Header().Get("X-RateLimit-Remaining"); l != "20" || r != "19" {
		t.Errorf("a new client's first request: got X-RateLimit-Limit %q, -Remaining %q; want its own 20, 19", l, r)
	}
}

// Guessing the current password through PUT /auth/password costs a bcrypt
// per guess: it is in the auth tier, counted per user (a stolen token does
// not get more guesses from more addresses).
func TestPasswordChangeIsInTheAuthTier(t *testing.T) {
	a := newTestAPI(t, Deps{Limiter: memory.New()}, Config{Limits: Limits{Auth: rateLimit(3)}})
	h := a.Handler()
	token := registerFrom(t, h, "192.0.2.10:1000", "alice@example.com")
	var limited int
	for i := range 10 {
		rec := limitedRequest(h, fmt.Sprintf("198.51.100.%d:1000", i), "PUT", "/api/v1/auth/password",
			`{"old_password":"guess `+fmt.Sprint(i)+`","new_password":"a new long password"}`, "Authorization", "Bearer "+token)
		if refused(t, fmt.Sprintf("PUT /auth/password, guess %d", i+1), rec, http.StatusForbidden) {
			limited++
		}
	}
	if limited != 7 {
		t.Errorf("got %d of 10 guesses refused, want 7 (the auth limit is 3)", limited)
	}
	// The refusals did not lock the user out of anything else.
	if rec := limitedRequest(h, "192.0.2.10:1000", "GET", "/api/v1/auth/me", "", "Authorization", "Bearer "+token); rec.Code != http.StatusOK {
		t.Errorf("GET /auth/me after the guesses: got %d, want 200", rec.Code)
	}
}
