package auth

import (
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/golang-jwt/jwt/v5"
)

// A token verified once is answered from memory after that (a client's
// every request would otherwise pay an ECDSA verification), but only
// while its time claims hold, with the same leeway as a first
// verification; a token that failed is checked again every time.
func TestVerifyRemembersOnlyWhileValid(t *testing.T) {
	s, _ := newService(t)
	now := time.Now()
	s.now = func() time.Time { return now }
	c := accessClaims(s)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Minute))
	raw := s.mustSign(t, c)
	if _, err := s.Verify(raw); err != nil {
		t.Fatal(err)
	}
	if !s.verified.has(raw) {
		t.Fatal("a verified token is not remembered")
	}
	got, err := s.Verify(raw)
	if err != nil || got.ID != c.ID {
		t.Fatalf("again: %+v, %v; want the same claims", got, err)
	}
	now = now.Add(time.Minute + leeway - time.Second)
	if _, err := s.Verify(raw); err != nil {
		t.Fatalf("within the leeway past expiry: %v; want accepted", err)
	}
	now = now.Add(2 * time.Second)
	if _, err := s.Verify(raw); !dfms.Is(err, dfms.Unauthenticated) {
		t.Fatalf("past expiry and leeway: %v; want Unauthenticated", err)
	}

	// Not valid yet: not remembered as valid.
	now = time.Now()
	c = accessClaims(s)
	c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
	c.IssuedAt = c.NotBefore
	early := s.mustSign(t, c)
	for range 2 {
		if _, err := s.Verify(early); !dfms.Is(err, dfms.Unauthenticated) {
			t.Fatalf("a token valid in an hour: %v; want Unauthenticated", err)
		}
	}
	if s.verified.has(early) {
		t.Fatal("a token that failed is remembered")
	}
}

// The memory is bounded, whatever the number of tokens.
func TestVerifiedBounded(t *testing.T) {
	s, _ := newService(t)
	for range maxVerified + 10 {
		if _, err := s.Verify(s.mustSign(t, accessClaims(s))); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.verified.len(); n > maxVerified {
		t.Fatalf("%d tokens remembered; want at most %d", n, maxVerified)
	}
}

// has and len are for the tests.
func (v *verifiedTokens) has(raw string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.tokens[raw]
	return ok
}

func (v *verifiedTokens) len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.tokens)
}
