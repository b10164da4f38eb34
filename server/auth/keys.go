package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dfms/dfms"
)

// The file names LoadOrGenerateKeys uses inside its directory.
const (
	PrivateKeyFile = "jwt-private.pem"
	PublicKeyFile  = "jwt-public.pem"
)

// Keys is the ES256 key pair that signs and verifies tokens. KID names the
// public key in token headers and in the JWK Set.
type Keys struct {
	Private *ecdsa.PrivateKey
	Public  *ecdsa.PublicKey
	KID     string
}

// NewKeys wraps a P-256 private key, deriving the public key and the KID.
func NewKeys(priv *ecdsa.PrivateKey) (*Keys, error) {
	const op dfms.Op = "auth.NewKeys"
	if priv == nil || priv.Curve != elliptic.P256() {
		return nil, dfms.Errorf(op, dfms.Invalid, "the key is not an ECDSA P-256 key")
	}
	pub := &priv.PublicKey
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, err)
	}
	sum := sha256.Sum256(der)
	return &Keys{Private: priv, Public: pub, KID: base64.RawURLEncoding.EncodeToString(sum[:12])}, nil
}

// GenerateKeys makes a new random key pair.
func GenerateKeys() (*Keys, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, dfms.E("auth.GenerateKeys", dfms.Other, err)
	}
	return NewKeys(priv)
}

// LoadKeys reads a key pair from PEM files: the private key as PKCS #8
// ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY", as openssl ecparam writes
// it), the public key as PKIX ("PUBLIC KEY"). Both must be P-256 and the
// public key must belong to the private one. A missing file has kind
// NotExist, a malformed or mismatched one kind Invalid.
func LoadKeys(privPath, pubPath string) (*Keys, error) {
	const op dfms.Op = "auth.LoadKeys"
	priv, err := readPrivateKey(op, privPath)
	if err != nil {
		return nil, err
	}
	k, err := NewKeys(priv)
	if err != nil {
		return nil, err
	}
	pub, err := readPublicKey(op, pubPath)
	if err != nil {
		return nil, err
	}
	if !k.Public.Equal(pub) {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("%s does not hold the public key of %s", pubPath, privPath))
	}
	return k, nil
}

// LoadOrGenerateKeys loads dir/jwt-private.pem and dir/jwt-public.pem, or
// creates them (mode 0600 and 0644, each written atomically) if neither
// exists, so that a server starts with no configuration. If only the
// private key exists, the public file is derived from it. If only the
// public key exists, it fails with kind Invalid rather than replace a key
// that clients may already trust.
func LoadOrGenerateKeys(dir string) (*Keys, error) {
	const op dfms.Op = "auth.LoadOrGenerateKeys"
	privPath := filepath.Join(dir, PrivateKeyFile)
	pubPath := filepath.Join(dir, PublicKeyFile)
	privOK, err := exists(privPath)
	if err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	pubOK, err := exists(pubPath)
	if err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	switch {
	case privOK && pubOK:
		return LoadKeys(privPath, pubPath)
	case pubOK:
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("%s exists but %s does not", pubPath, privPath))
	case !privOK:
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, dfms.E(op, dfms.Other, err)
		}
		k, err := GenerateKeys()
		if err != nil {
			return nil, err
		}
		data, err := privatePEM(k.Private)
		if err != nil {
			return nil, dfms.E(op, dfms.Other, err)
		}
		// Losing a race with another process starting on the same
		// directory is fine: its key is as good as ours, so use it.
		if err := writeExclusive(privPath, data, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, dfms.E(op, dfms.Other, err)
		}
	}
	// The private key exists: derive the public file from it. A crash
	// between the two writes of a first start also ends up here.
	priv, err := readPrivateKey(op, privPath)
	if err != nil {
		return nil, err
	}
	data, err := publicPEM(&priv.PublicKey)
	if err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	if err := writeExclusive(pubPath, data, 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, dfms.E(op, dfms.Other, err)
	}
	return LoadKeys(privPath, pubPath)
}

// WriteKeyFiles generates a new key pair and writes it to privPath (PKCS #8,
// mode 0600) and pubPath (PKIX, mode 0644). It never overwrites a file: if
// either exists it fails with kind Exist and writes nothing.
func WriteKeyFiles(privPath, pubPath string) error {
	const op dfms.Op = "auth.WriteKeyFiles"
	for _, p := range []string{privPath, pubPath} {
		ok, err := exists(p)
		if err != nil {
			return dfms.E(op, dfms.Other, err)
		}
		if ok {
			return dfms.E(op, dfms.Exist, fmt.Errorf("%s already exists", p))
		}
	}
	k, err := GenerateKeys()
	if err != nil {
		return err
	}
	privData, err := privatePEM(k.Private)
	if err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	pubData, err := publicPEM(k.Public)
	if err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	if err := writeExclusive(privPath, privData, 0o600); err != nil {
		return dfms.E(op, existKind(err), err)
	}
	if err := writeExclusive(pubPath, pubData, 0o644); err != nil {
		// Do not leave half a pair behind.
		os.Remove(privPath)
		return dfms.E(op, existKind(err), err)
	}
	return nil
}

func existKind(err error) dfms.ErrorKind {
	if errors.Is(err, fs.ErrExist) {
		return dfms.Exist
	}
	return dfms.Other
}

// jwk is one JSON Web Key (RFC 7517, RFC 7518 §6.2).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// JWKS returns the JWK Set holding the public key, as served at
// /.well-known/jwks.json.
func (k *Keys) JWKS() ([]byte, error) {
	const op dfms.Op = "auth.JWKS"
	// Bytes is the uncompressed point 0x04 || X || Y, each coordinate
	// left-padded to 32 bytes as RFC 7518 requires.
	pt, err := k.Public.Bytes()
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, err)
	}
	if len(pt) != 65 || pt[0] != 4 {
		return nil, dfms.Errorf(op, dfms.Invalid, "the public key is not a P-256 key")
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{[]jwk{{
		Kty: "EC",
		Crv: "P-256",
		X:   base64.RawURLEncoding.EncodeToString(pt[1:33]),
		Y:   base64.RawURLEncoding.EncodeToString(pt[33:]),
		Use: "sig",
		Alg: "ES256",
		Kid: k.KID,
	}}}
	return json.Marshal(set)
}

func privatePEM(priv *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func publicPEM(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// readPEM returns the first block of the file whose type is one of types,
// skipping others (openssl ecparam puts "EC PARAMETERS" first).
func readPEM(op dfms.Op, path string, types ...string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, dfms.E(op, dfms.NotExist, err)
	}
	if err != nil {
		return nil, dfms.E(op, dfms.Other, err)
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("%s: no PEM block of type %q", path, types))
		}
		for _, t := range types {
			if b.Type == t {
				return b, nil
			}
		}
	}
}

func readPrivateKey(op dfms.Op, path string) (*ecdsa.PrivateKey, error) {
	return readKey[*ecdsa.PrivateKey](op, path, "private", func(b *pem.Block) (any, error) {
		if b.Type == "EC PRIVATE KEY" {
			return x509.ParseECPrivateKey(b.Bytes)
		}
		return x509.ParsePKCS8PrivateKey(b.Bytes)
	}, "PRIVATE KEY", "EC PRIVATE KEY")
}

func readPublicKey(op dfms.Op, path string) (*ecdsa.PublicKey, error) {
	return readKey[*ecdsa.PublicKey](op, path, "public", func(b *pem.Block) (any, error) {
		return x509.ParsePKIXPublicKey(b.Bytes)
	}, "PUBLIC KEY")
}

// readKey reads the ECDSA P-256 key, private or public (what), from the
// first PEM block of path whose type is one of types, which parse decodes.
func readKey[K *ecdsa.PrivateKey | *ecdsa.PublicKey](op dfms.Op, path, what string, parse func(*pem.Block) (any, error), types ...string) (K, error) {
	b, err := readPEM(op, path, types...)
	if err != nil {
		return nil, err
	}
	key, err := parse(b)
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("%s: %w", path, err))
	}
	k, ok := key.(K)
	if !ok || !isP256(k) {
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("%s: not an ECDSA P-256 %s key", path, what))
	}
	return k, nil
}

// isP256 reports whether key, an ECDSA key, is on the P-256 curve.
func isP256(key any) bool {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k.Curve == elliptic.P256()
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256()
	}
	return false
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// writeExclusive writes data to path with mode perm, atomically and without
// ever replacing an existing file (the error then satisfies
// errors.Is(err, fs.ErrExist)). The bytes go to a temporary file that is
// synced, then hard-linked into place: unlike rename, link fails if the
// target exists, so two processes racing cannot swap keys under each other.
func writeExclusive(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := writeSynced(f, data); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// Some file systems have no hard links; an exclusive create still
		// never replaces a file, only a crash could leave it short.
		if err := writeNew(path, data, perm); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := writeSynced(f, data); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// writeSynced writes data to f, syncs it and closes it (whatever fails),
// and returns the first error.
func writeSynced(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a new directory entry durable. Not every platform can sync
// a directory, so failure to open or sync it is ignored.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	d.Sync()
	return d.Close()
}
