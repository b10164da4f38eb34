package auth

import (
	"sync"
	"time"
)

// maxVerified bounds the access tokens remembered as verified; past it
// the memory starts over (each client then verifies its token once more).
const maxVerified = 4096

// verifiedTokens remembers access tokens whose signature and claims
// Verify checked, by the token itself, so that a client's every request
// does not pay an ECDSA verification (a tenth of a millisecond of CPU,
// as much as the rest of a small request). The keys never change while
// the server runs, so a signature once good stays good; the time claims
// are checked again on every use, as the parser checks them.
type verifiedTokens struct {
	mu     sync.Mutex
	tokens map[string]verifiedToken
}

type verifiedToken struct {
	claims        Claims
	notBefore, at time.Time // the token's nbf and iat
}

// get returns the claims of raw if it was verified and its time claims
// hold at now (with the leeway).
func (v *verifiedTokens) get(raw string, now time.Time) (Claims, bool) {
	v.mu.Lock()
	t, ok := v.tokens[raw]
	v.mu.Unlock()
	if !ok || now.After(t.claims.ExpiresAt.Add(leeway)) || now.Add(leeway).Before(t.notBefore) || now.Add(leeway).Before(t.at) {
		return Claims{}, false
	}
	return t.claims, true
}

func (v *verifiedTokens) put(raw string, t verifiedToken) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tokens == nil || len(v.tokens) >= maxVerified {
		v.tokens = map[string]verifiedToken{}
	}
	v.tokens[raw] = t
}
