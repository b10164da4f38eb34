package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Values of the "typ" claim.
const (
	typAccess  = "access"
	typRefresh = "refresh"
)

const (
	// leeway absorbs clock skew between the servers that issue and verify.
	leeway = 30 * time.Second
	// maxTokenBytes bounds the work spent on a presented token; ours are
	// well under 1 KiB.
	maxTokenBytes = 8 << 10
)

// Tokens is what a login or a refresh returns to the client.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"` // "Bearer"
	ExpiresIn    int    `json:"expires_in"` // lifetime of the access token, in seconds
}

// Claims is what a verified access token says.
type Claims struct {
	UserID    dfms.UserID
	Email     string
	Role      string
	ExpiresAt time.Time
	ID        string // the token's jti
}

// tokenClaims is the payload of both kinds of token; Typ tells them apart.
type tokenClaims struct {
	jwt.RegisteredClaims
	Typ   string `json:"typ"`
	Email string `json:"email,omitempty"` // access only
	Role  string `json:"role,omitempty"`  // access only
	Fam   string `json:"fam,omitempty"`   // refresh only
}

// newID returns a random 128-bit identifier, base64url without padding.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// registered returns the claims that both kinds of token carry: the
// subject sub, the service as issuer and audience, the times at which the
// token is issued and expires, and its id.
func (s *Service) registered(sub string, now, exp time.Time, id string) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Subject:   sub,
		Issuer:    s.cfg.Issuer,
		Audience:  jwt.ClaimStrings{s.cfg.Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        id,
	}
}

func (s *Service) sign(c *tokenClaims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = s.keys.KID
	return t.SignedString(s.keys.Private)
}

// issue signs an access token for u and a refresh token with id refreshID
// in family fam, expiring at refreshExp.
func (s *Service) issue(op dfms.Op, now time.Time, u meta.User, fam, refreshID string, refreshExp time.Time) (Tokens, error) {
	sub := strconv.FormatInt(int64(u.ID), 10)
	accessClaims := &tokenClaims{
		RegisteredClaims: s.registered(sub, now, now.Add(s.cfg.AccessTTL), newID()),
		Typ:              typAccess,
		Email:            u.Email,
		Role:             u.Role,
	}
	accessClaims.NotBefore = jwt.NewNumericDate(now)
	access, err := s.sign(accessClaims)
	if err != nil {
		return Tokens{}, dfms.E(op, dfms.Other, err)
	}
	refresh, err := s.sign(&tokenClaims{
		RegisteredClaims: s.registered(sub, now, refreshExp, refreshID),
		Typ:              typRefresh,
		Fam:              fam,
	})
	if err != nil {
		return Tokens{}, dfms.E(op, dfms.Other, err)
	}
	return Tokens{
		AccessToken:  access,
		RefreshToken: refresh,
		TokenType:    "Bearer",
		ExpiresIn:    int(s.cfg.AccessTTL / time.Second),
	}, nil
}

// Verify checks an access token and returns its claims. It accepts only
// ES256 tokens signed by the service's key, with the configured issuer and
// audience, within their validity period (30 seconds of clock skew
// allowed), of type "access", naming a positive user id. Every failure has
// kind dfms.Unauthenticated and a short reason.
//
// Verify reads no database: the token may belong to an account that was
// deactivated or changed since it was issued. Callers that must know
// re-check the user.
func (s *Service) Verify(accessToken string) (Claims, error) {
	const op dfms.Op = "auth.Verify"
	if cl, ok := s.verified.get(accessToken, s.now()); ok {
		return cl, nil
	}
	c, uid, err := s.parse(op, accessToken, typAccess, false)
	if err != nil {
		return Claims{}, err
	}
	if c.Role != meta.RoleUser && c.Role != meta.RoleAdmin {
		return Claims{}, dfms.Errorf(op, dfms.Unauthenticated, "unknown role")
	}
	cl := Claims{
		UserID:    uid,
		Email:     c.Email,
		Role:      c.Role,
		ExpiresAt: c.ExpiresAt.Time,
		ID:        c.ID,
	}
	s.verified.put(accessToken, verifiedToken{claims: cl, notBefore: c.NotBefore.Time, at: c.IssuedAt.Time})
	return cl, nil
}

// parse verifies raw's signature and claims and checks that it is a token
// of type typ. With anyTime, expiry and the other time claims are ignored
// (logout accepts an expired refresh token).
func (s *Service) parse(op dfms.Op, raw, typ string, anyTime bool) (*tokenClaims, dfms.UserID, error) {
	fail := func(reason string) (*tokenClaims, dfms.UserID, error) {
		return nil, 0, dfms.Errorf(op, dfms.Unauthenticated, reason)
	}
	if raw == "" {
		return fail("missing token")
	}
	if len(raw) > maxTokenBytes {
		return fail("token too long")
	}
	p := s.parser
	if anyTime {
		p = s.anyTimeParser
	}
	c := new(tokenClaims)
	if _, err := p.ParseWithClaims(raw, c, s.keyFunc); err != nil {
		return fail(reason(err))
	}
	if anyTime {
		// WithoutClaimsValidation skipped these too.
		if c.Issuer != s.cfg.Issuer {
			return fail("wrong issuer")
		}
	} else {
		if c.IssuedAt == nil {
			return fail("missing claim")
		}
		if typ == typAccess && c.NotBefore == nil {
			return fail("missing claim")
		}
	}
	// The parser accepts any list that contains our audience; we issue
	// exactly one.
	if len(c.Audience) != 1 || c.Audience[0] != s.cfg.Audience {
		return fail("wrong audience")
	}
	if c.Typ != typ {
		return fail("not " + article(typ) + " token")
	}
	if c.ID == "" {
		return fail("missing claim")
	}
	if typ == typRefresh && c.Fam == "" {
		return fail("missing claim")
	}
	n, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != c.Subject {
		return fail("bad subject")
	}
	return c, dfms.UserID(n), nil
}

func article(typ string) string {
	if typ == typAccess {
		return "an access"
	}
	return "a refresh"
}

// keyFunc hands the parser the one key it may verify with. The parser has
// already refused every method but ES256; checking again here keeps that
// true even if the options change.
func (s *Service) keyFunc(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodES256 {
		return nil, errors.New("unexpected signing method")
	}
	if kid, ok := t.Header["kid"]; ok && kid != s.keys.KID {
		return nil, errors.New("unknown key id")
	}
	return s.keys.Public, nil
}

// reason turns a parser error into a short message for the caller.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "invalid signature"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing claim"
	}
	return "invalid token"
}
