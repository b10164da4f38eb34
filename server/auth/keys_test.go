package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
)

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: got mode %v, want %v", filepath.Base(path), got, want)
	}
}

func writePEM(t *testing.T, path string, blocks ...*pem.Block) {
	t.Helper()
	var b bytes.Buffer
	for _, bl := range blocks {
		pem.Encode(&b, bl)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrGenerateKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	priv, pub := filepath.Join(dir, "jwt-private.pem"), filepath.Join(dir, "jwt-public.pem")

	k1, err := LoadOrGenerateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantMode(t, priv, 0o600)
	wantMode(t, pub, 0o644)
	if n := len(k1.KID); n < 11 || n > 22 {
		t.Errorf("KID %q: got %d characters, want the base64url of 8 to 16 bytes", k1.KID, n)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("got %d files in the key directory, want 2 (no temporary files left)", len(entries))
	}
	for _, f := range []struct{ path, typ string }{{priv, "PRIVATE KEY"}, {pub, "PUBLIC KEY"}} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := pem.Decode(data); b == nil || b.Type != f.typ {
			t.Errorf("%s: want one PEM block of type %q", f.path, f.typ)
		}
	}

	// Loading again gives the same keys.
	k2, err := LoadOrGenerateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k2.KID != k1.KID || !k2.Private.Equal(k1.Private) || !k2.Public.Equal(k1.Public) {
		t.Errorf("second load: got KID %q, want the same keys (KID %q)", k2.KID, k1.KID)
	}

	// A lost public key is derived from the private one.
	if err := os.Remove(pub); err != nil {
		t.Fatal(err)
	}
	k3, err := LoadOrGenerateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k3.KID != k1.KID {
		t.Errorf("after losing the public key: got KID %q, want %q", k3.KID, k1.KID)
	}
	wantMode(t, pub, 0o644)

	// A lone public key is not replaced.
	if err := os.Remove(priv); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrGenerateKeys(dir)
	testkit.WantKind(t, err, dfms.Invalid)
	if _, err := os.Stat(priv); !os.IsNotExist(err) {
		t.Errorf("a private key was created next to a lone public key")
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	k := newKeys(t)
	other := newKeys(t)

	pkcs8 := testkit.Must(x509.MarshalPKCS8PrivateKey(k.Private))(t)
	sec1 := testkit.Must(x509.MarshalECPrivateKey(k.Private))(t)
	pubDER := testkit.Must(x509.MarshalPKIXPublicKey(k.Public))(t)
	otherDER := testkit.Must(x509.MarshalPKIXPublicKey(other.Public))(t)
	p384 := testkit.Must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))(t)
	p384Priv := testkit.Must(x509.MarshalPKCS8PrivateKey(p384))(t)
	p384Pub := testkit.Must(x509.MarshalPKIXPublicKey(&p384.PublicKey))(t)
	// The OID of prime256v1, as "openssl ecparam" writes before the key.
	params := &pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}

	writePEM(t, path("pkcs8.pem"), &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	writePEM(t, path("sec1.pem"), params, &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	writePEM(t, path("pub.pem"), &pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	writePEM(t, path("other-pub.pem"), &pem.Block{Type: "PUBLIC KEY", Bytes: otherDER})
	writePEM(t, path("p384.pem"), &pem.Block{Type: "PRIVATE KEY", Bytes: p384Priv})
	writePEM(t, path("p384-pub.pem"), &pem.Block{Type: "PUBLIC KEY", Bytes: p384Pub})
	writePEM(t, path("mislabelled.pem"), &pem.Block{Type: "PRIVATE KEY", Bytes: sec1})
	writePEM(t, path("cert.pem"), &pem.Block{Type: "CERTIFICATE", Bytes: pubDER})
	if err := os.WriteFile(path("garbage.pem"), []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, priv := range []string{"pkcs8.pem", "sec1.pem"} {
		got, err := LoadKeys(path(priv), path("pub.pem"))
		if err != nil {
			t.Errorf("LoadKeys(%s): %v", priv, err)
			continue
		}
		if got.KID != k.KID || !got.Private.Equal(k.Private) {
			t.Errorf("LoadKeys(%s): got KID %q, want %q", priv, got.KID, k.KID)
		}
	}

	tests := []struct {
		name, priv, pub string
		kind            dfms.ErrorKind
	}{
		{"mismatched pair", "pkcs8.pem", "other-pub.pem", dfms.Invalid},
		{"P-384 private key", "p384.pem", "p384-pub.pem", dfms.Invalid},
		{"P-384 public key", "pkcs8.pem", "p384-pub.pem", dfms.Invalid},
		{"SEC 1 labelled PKCS 8", "mislabelled.pem", "pub.pem", dfms.Invalid},
		{"wrong block type", "cert.pem", "pub.pem", dfms.Invalid},
		{"not PEM", "garbage.pem", "pub.pem", dfms.Invalid},
		{"public key as private", "pub.pem", "pub.pem", dfms.Invalid},
		{"private key as public", "pkcs8.pem", "pkcs8.pem", dfms.Invalid},
		{"missing private key", "missing.pem", "pub.pem", dfms.NotExist},
		{"missing public key", "pkcs8.pem", "missing.pem", dfms.NotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadKeys(path(tc.priv), path(tc.pub))
			testkit.WantKind(t, err, tc.kind)
		})
	}
}

func TestWriteKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.pub.pem")
	if err := WriteKeyFiles(priv, pub); err != nil {
		t.Fatal(err)
	}
	wantMode(t, priv, 0o600)
	wantMode(t, pub, 0o644)
	k, err := LoadKeys(priv, pub)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}

	err = WriteKeyFiles(priv, pub)
	testkit.WantKind(t, err, dfms.Exist)
	after, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("WriteKeyFiles replaced an existing private key")
	}
	if k2, err := LoadKeys(priv, pub); err != nil || k2.KID != k.KID {
		t.Errorf("after a refused WriteKeyFiles: got %v, want the original pair", err)
	}

	// Either file existing is enough to refuse, and nothing is written.
	fresh := filepath.Join(dir, "b.pem")
	err = WriteKeyFiles(fresh, pub)
	testkit.WantKind(t, err, dfms.Exist)
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("WriteKeyFiles wrote %s although the public file existed", fresh)
	}
}

func TestJWKS(t *testing.T) {
	// Find a key whose x or y coordinate has a leading zero byte, to see
	// the left padding (1 key in 128 has one).
	var k *Keys
	for range 10000 {
		k = newKeys(t)
		pt, err := k.Public.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if pt[1] == 0 || pt[33] == 0 {
			break
		}
	}

	data, err := k.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v\n%s", err, data)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("got %d keys, want 1", len(set.Keys))
	}
	jwk := set.Keys[0]
	for field, want := range map[string]string{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": k.KID} {
		if jwk[field] != want {
			t.Errorf("%s: got %q, want %q", field, jwk[field], want)
		}
	}
	if len(jwk) != 7 {
		t.Errorf("got fields %v, want exactly kty crv x y use alg kid", jwk)
	}
	pt := []byte{4}
	for _, field := range []string{"x", "y"} {
		if strings.ContainsAny(jwk[field], "=+/") {
			t.Errorf("%s = %q: want base64url without padding", field, jwk[field])
		}
		b, err := base64.RawURLEncoding.DecodeString(jwk[field])
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		if len(b) != 32 {
			t.Errorf("%s: got %d bytes, want 32", field, len(b))
		}
		pt = append(pt, b...)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		t.Fatalf("rebuilding the key from x and y: %v", err)
	}
	if !pub.Equal(k.Public) {
		t.Fatalf("the key rebuilt from the JWKS differs from the public key")
	}

	// A token issued by the service verifies with the rebuilt key alone.
	s := New(testkit.OpenSQLite(t), k, Config{BcryptCost: 4})
	_, tok := register(t, s, "jwks@example.com")
	parsed, err := jwt.Parse(tok.AccessToken, func(tk *jwt.Token) (any, error) {
		if tk.Header["kid"] != jwk["kid"] {
			t.Errorf("token kid: got %v, want %q", tk.Header["kid"], jwk["kid"])
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("dfms-api"), jwt.WithIssuer("dfms"))
	if err != nil || !parsed.Valid {
		t.Errorf("verifying with the JWKS key: %v", err)
	}
	if _, _, err := s.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Errorf("refresh: %v", err)
	}
}
