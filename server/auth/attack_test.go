package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

// accessClaims returns the claims of a valid access token for user 1,
// issued now; cases change one thing.
func accessClaims(s *Service) *tokenClaims {
	now := time.Now()
	return &tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "1",
			Issuer:    s.cfg.Issuer,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
			ID:        "test-jti",
		},
		Typ:   typAccess,
		Email: "a@example.com",
		Role:  meta.RoleUser,
	}
}

// signWith signs c with method and key, with our kid in the header.
func signWith(t *testing.T, s *Service, method jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = s.keys.KID
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// tamper decodes the payload of raw, lets f change it, and puts it back
// with the original header and signature.
func tamper(t *testing.T, raw string, f func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	payload, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestVerifyAttacks(t *testing.T) {
	s, _ := newService(t)
	_, tok := register(t, s, "victim@example.com")
	if _, err := s.Verify(tok.AccessToken); err != nil {
		t.Fatalf("the genuine token does not verify: %v", err)
	}

	pubDER, err := x509.MarshalPKIXPublicKey(s.keys.Public)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	other := newKeys(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// es256 makes a case's token: genuine claims, changed, signed with the
	// service's key.
	es256 := func(change func(*tokenClaims)) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := accessClaims(s)
			change(c)
			return signWith(t, s, jwt.SigningMethodES256, s.keys.Private, c)
		}
	}
	hour := time.Hour

	tests := []struct {
		name  string
		token func(t *testing.T) string
	}{
		{"alg none", func(t *testing.T) string {
			return signWith(t, s, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, accessClaims(s))
		}},
		{"alg none with a signature kept", func(t *testing.T) string {
			parts := strings.Split(tok.AccessToken, ".")
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
			return h + "." + parts[1] + "." + parts[2]
		}},
		{"alg none, no signature", func(t *testing.T) string {
			parts := strings.Split(tok.AccessToken, ".")
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
			return h + "." + parts[1] + "."
		}},
		{"HS256 keyed with the public key PEM", func(t *testing.T) string {
			return signWith(t, s, jwt.SigningMethodHS256, pubPEM, accessClaims(s))
		}},
		{"HS256 keyed with the public key DER", func(t *testing.T) string {
			return signWith(t, s, jwt.SigningMethodHS256, pubDER, accessClaims(s))
		}},
		{"RS256", func(t *testing.T) string {
			return signWith(t, s, jwt.SigningMethodRS256, rsaKey, accessClaims(s))
		}},
		{"ES384", func(t *testing.T) string {
			return signWith(t, s, jwt.SigningMethodES384, p384, accessClaims(s))
		}},
		{"another ES256 key, our kid", func(t *testing.T) string {
			return signWith(t, s, jwt.SigningMethodES256, other.Private, accessClaims(s))
		}},
		{"another ES256 key, its kid", func(t *testing.T) string {
			return New(nil, other, s.cfg).mustSign(t, accessClaims(s))
		}},
		{"unknown kid", func(t *testing.T) string {
			tk := jwt.NewWithClaims(jwt.SigningMethodES256, accessClaims(s))
			tk.Header["kid"] = "not-our-key"
			raw, err := tk.SignedString(s.keys.Private)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}},
		{"expired", es256(func(c *tokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-2 * hour))
			c.NotBefore = c.IssuedAt
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-hour))
		})},
		{"expired beyond the leeway", es256(func(c *tokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-hour))
			c.NotBefore = c.IssuedAt
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-31 * time.Second))
		})},
		{"no expiry", es256(func(c *tokenClaims) { c.ExpiresAt = nil })},
		{"not yet valid", es256(func(c *tokenClaims) {
			c.NotBefore = jwt.NewNumericDate(time.Now().Add(hour))
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(2 * hour))
		})},
		{"issued in the future", es256(func(c *tokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(hour))
		})},
		{"no iat", es256(func(c *tokenClaims) { c.IssuedAt = nil })},
		{"no nbf", es256(func(c *tokenClaims) { c.NotBefore = nil })},
		{"wrong issuer", es256(func(c *tokenClaims) { c.Issuer = "dfms-auth" })},
		{"missing issuer", es256(func(c *tokenClaims) { c.Issuer = "" })},
		{"wrong audience", es256(func(c *tokenClaims) { c.Audience = jwt.ClaimStrings{"other-api"} })},
		{"missing audience", es256(func(c *tokenClaims) { c.Audience = nil })},
		{"extra audience", es256(func(c *tokenClaims) { c.Audience = append(c.Audience, "other-api") })},
		{"tampered payload: role admin, signature kept", func(t *testing.T) string {
			return tamper(t, tok.AccessToken, func(m map[string]any) { m["role"] = meta.RoleAdmin })
		}},
		{"tampered payload: other user, signature kept", func(t *testing.T) string {
			return tamper(t, tok.AccessToken, func(m map[string]any) { m["sub"] = "2" })
		}},
		{"tampered payload: later expiry, signature kept", func(t *testing.T) string {
			return tamper(t, tok.AccessToken, func(m map[string]any) { m["exp"] = time.Now().Add(24 * hour).Unix() })
		}},
		{"signature truncated", func(t *testing.T) string {
			return tok.AccessToken[:len(tok.AccessToken)-4]
		}},
		{"signature of another token", func(t *testing.T) string {
			_, tok2, err := s.Login(ctx, "victim@example.com", testPassword)
			if err != nil {
				t.Fatal(err)
			}
			p1, p2 := strings.Split(tok.AccessToken, "."), strings.Split(tok2.AccessToken, ".")
			return p1[0] + "." + p1[1] + "." + p2[2]
		}},
		{"refresh token given to Verify", func(t *testing.T) string { return tok.RefreshToken }},
		{"no typ", es256(func(c *tokenClaims) { c.Typ = "" })},
		{"unknown role", es256(func(c *tokenClaims) { c.Role = "root" })},
		{"sub zero", es256(func(c *tokenClaims) { c.Subject = "0" })},
		{"sub negative", es256(func(c *tokenClaims) { c.Subject = "-1" })},
		{"sub leading zero", es256(func(c *tokenClaims) { c.Subject = "01" })},
		{"sub plus sign", es256(func(c *tokenClaims) { c.Subject = "+1" })},
		{"sub not a number", es256(func(c *tokenClaims) { c.Subject = "alice" })},
		{"sub missing", es256(func(c *tokenClaims) { c.Subject = "" })},
		{"no jti", es256(func(c *tokenClaims) { c.ID = "" })},
		{"empty string", func(t *testing.T) string { return "" }},
		{"three dots", func(t *testing.T) string { return "..." }},
		{"two dots", func(t *testing.T) string { return ".." }},
		{"garbage", func(t *testing.T) string { return "garbage" }},
		{"garbage parts", func(t *testing.T) string { return "a.b.c" }},
		{"bearer prefix left on", func(t *testing.T) string { return "Bearer " + tok.AccessToken }},
		{"padded base64", func(t *testing.T) string {
			parts := strings.Split(tok.AccessToken, ".")
			return parts[0] + "==." + parts[1] + "." + parts[2]
		}},
		{"huge", func(t *testing.T) string { return strings.Repeat("A", 1<<20) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.token(t)
			c, err := s.Verify(raw)
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", c)
			}
			testkit.WantKind(t, err, dfms.Unauthenticated)
			if c != (Claims{}) {
				t.Errorf("got claims %+v with the error, want none", c)
			}
			if raw != tok.RefreshToken { // which Refresh does accept
				// Neither may it pass as a refresh token.
				_, _, err = s.Refresh(ctx, raw)
				testkit.WantKind(t, err, dfms.Unauthenticated)
			}
		})
	}
}

// mustSign signs c with the service's own key and kid.
func (s *Service) mustSign(t *testing.T, c *tokenClaims) string {
	t.Helper()
	raw, err := s.sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The leeway tolerates small clock skew, and no more.
func TestVerifyLeeway(t *testing.T) {
	s, _ := newService(t)
	c := accessClaims(s)
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-10 * time.Second))
	if _, err := s.Verify(s.mustSign(t, c)); err != nil {
		t.Errorf("expired 10s ago: got %v, want accepted within the leeway", err)
	}
	c = accessClaims(s)
	c.NotBefore = jwt.NewNumericDate(time.Now().Add(10 * time.Second))
	c.IssuedAt = c.NotBefore
	if _, err := s.Verify(s.mustSign(t, c)); err != nil {
		t.Errorf("valid in 10s: got %v, want accepted within the leeway", err)
	}
}

func TestRefreshAttacks(t *testing.T) {
	s, m := newService(t)
	n := 0
	// login registers a new user and returns it with its first tokens.
	login := func(t *testing.T) (meta.User, Tokens) {
		n++
		return register(t, s, "user"+string(rune('a'+n))+"@example.com")
	}
	// refreshClaims makes a case's token: a genuine refresh token's
	// claims, changed, signed again.
	refreshClaims := func(change func(*tokenClaims)) func(t *testing.T) string {
		return func(t *testing.T) string {
			u, tok := login(t)
			c := new(tokenClaims)
			if _, _, err := jwt.NewParser().ParseUnverified(tok.RefreshToken, c); err != nil {
				t.Fatal(err)
			}
			if c.Subject != u.ID.String() {
				t.Fatalf("refresh token sub: got %q, want %q", c.Subject, u.ID)
			}
			change(c)
			return s.mustSign(t, c)
		}
	}

	tests := []struct {
		name  string
		token func(t *testing.T) string
	}{
		{"access token given to Refresh", func(t *testing.T) string {
			_, tok := login(t)
			return tok.AccessToken
		}},
		{"refresh token of another key", func(t *testing.T) string {
			_, tok := login(t)
			c := new(tokenClaims)
			jwt.NewParser().ParseUnverified(tok.RefreshToken, c)
			return New(nil, newKeys(t), s.cfg).mustSign(t, c)
		}},
		{"expired refresh token", func(t *testing.T) string {
			u, _ := login(t)
			s.now = func() time.Time { return time.Now().Add(-8 * 24 * time.Hour) }
			defer func() { s.now = time.Now }()
			_, tok, err := s.Login(ctx, u.Email, testPassword)
			if err != nil {
				t.Fatal(err)
			}
			return tok.RefreshToken
		}},
		{"wrong issuer", refreshClaims(func(c *tokenClaims) { c.Issuer = "evil" })},
		{"missing audience", refreshClaims(func(c *tokenClaims) { c.Audience = nil })},
		{"no family", refreshClaims(func(c *tokenClaims) { c.Fam = "" })},
		{"other family", refreshClaims(func(c *tokenClaims) { c.Fam = "someone-else" })},
		{"other user", refreshClaims(func(c *tokenClaims) { c.Subject = "1" })},
		{"unknown jti", refreshClaims(func(c *tokenClaims) { c.ID = newID() })},
		{"reused after rotation", func(t *testing.T) string {
			_, t0 := login(t)
			if _, _, err := s.Refresh(ctx, t0.RefreshToken); err != nil {
				t.Fatal(err)
			}
			return t0.RefreshToken
		}},
		{"newest of a family after reuse", func(t *testing.T) string {
			_, t0 := login(t)
			_, t1, err := s.Refresh(ctx, t0.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Refresh(ctx, t0.RefreshToken); err == nil {
				t.Fatal("reuse accepted")
			}
			return t1.RefreshToken
		}},
		{"after logout", func(t *testing.T) string {
			_, tok := login(t)
			if err := s.Logout(ctx, tok.RefreshToken); err != nil {
				t.Fatal(err)
			}
			return tok.RefreshToken
		}},
		{"after password change", func(t *testing.T) string {
			u, tok := login(t)
			if err := s.ChangePassword(ctx, u.ID, testPassword, "new password"); err != nil {
				t.Fatal(err)
			}
			return tok.RefreshToken
		}},
		{"of a deactivated user", func(t *testing.T) string {
			u, tok := login(t)
			if err := s.SetActive(ctx, u.ID, false); err != nil {
				t.Fatal(err)
			}
			return tok.RefreshToken
		}},
		{"of a user reactivated after deactivation", func(t *testing.T) string {
			u, tok := login(t)
			if err := s.SetActive(ctx, u.ID, false); err != nil {
				t.Fatal(err)
			}
			if err := s.SetActive(ctx, u.ID, true); err != nil {
				t.Fatal(err)
			}
			return tok.RefreshToken
		}},
		{"of a user deactivated in the database", func(t *testing.T) string {
			u, tok := login(t)
			updateStored(t, m, u.ID, func(u *meta.User) { u.Active = false })
			return tok.RefreshToken
		}},
		{"tampered payload, signature kept", func(t *testing.T) string {
			_, tok := login(t)
			return tamper(t, tok.RefreshToken, func(m map[string]any) { m["sub"] = "1" })
		}},
		{"empty string", func(t *testing.T) string { return "" }},
		{"three dots", func(t *testing.T) string { return "..." }},
		{"garbage", func(t *testing.T) string { return "not.a.token" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.token(t)
			u, tok, err := s.Refresh(ctx, raw)
			if err == nil {
				t.Fatalf("Refresh accepted it: user %d", u.ID)
			}
			testkit.WantKind(t, err, dfms.Unauthenticated)
			if tok != (Tokens{}) || u.ID != 0 {
				t.Errorf("got user %d and tokens %+v with the error, want none", u.ID, tok)
			}
			// A second try fails too (nothing was half-done by the first).
			_, _, err = s.Refresh(ctx, raw)
			testkit.WantKind(t, err, dfms.Unauthenticated)
		})
	}
}
