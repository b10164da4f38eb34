package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
)

// This file attacks the REST API of a real server: another user's ids,
// forged and stale tokens, bad input, and the rate limits.

// ---- another user's ids ----

// snapshot is everything a user can observe of its data.
type snapshot struct {
	lists    map[int64][]fileJSON // folder → entries
	versions map[int64][]versionJSON
	bytes    map[string][]byte // "id/version" → content
	trash    []fileJSON
	usage    usageJSON
	upload   string // the multipart upload's status body
}

func takeSnapshot(t *testing.T, c *client, folders, files []int64, uploadID string) snapshot {
	t.Helper()
	s := snapshot{lists: map[int64][]fileJSON{}, versions: map[int64][]versionJSON{}, bytes: map[string][]byte{}}
	for _, f := range folders {
		s.lists[f] = c.list(t, f)
	}
	for _, f := range files {
		s.versions[f] = c.versions(t, f)
		for _, v := range s.versions[f] {
			r := c.get(t, fmt.Sprintf("/api/v1/files/%d/versions/%d/download", f, v.Version)).want(t, http.StatusOK)
			s.bytes[fmt.Sprintf("%d/%d", f, v.Version)] = r.body
		}
		s.bytes[fmt.Sprintf("%d/current", f)] = c.download(t, f)
	}
	s.trash = c.trash(t)
	s.usage = c.usage(t)
	s.upload = string(c.get(t, "/api/v1/files/upload/multipart/"+uploadID).want(t, http.StatusOK).body)
	return s
}

func (s snapshot) diff(o snapshot) string {
	var out []string
	for k, v := range s.lists {
		if !slices.Equal(v, o.lists[k]) {
			out = append(out, fmt.Sprintf("folder %d: got %+v, want %+v", k, o.lists[k], v))
		}
	}
	for k, v := range s.versions {
		if !slices.Equal(v, o.versions[k]) {
			out = append(out, fmt.Sprintf("versions of %d: got %+v, want %+v", k, o.versions[k], v))
		}
	}
	for k, v := range s.bytes {
		if !bytes.Equal(v, o.bytes[k]) {
			out = append(out, fmt.Sprintf("content %s: got %d bytes (sha %s), want %d (sha %s)", k, len(o.bytes[k]), sha(o.bytes[k]), len(v), sha(v)))
		}
	}
	if !slices.Equal(s.trash, o.trash) {
		out = append(out, fmt.Sprintf("trash: got %+v, want %+v", o.trash, s.trash))
	}
	if s.usage != o.usage {
		out = append(out, fmt.Sprintf("usage: got %+v, want %+v", o.usage, s.usage))
	}
	if s.upload != o.upload {
		out = append(out, fmt.Sprintf("upload: got %s, want %s", o.upload, s.upload))
	}
	return strings.Join(out, "\n")
}

type manifestJSON struct {
	Version  int64
	Size     int64
	Checksum string
	Chunks   []struct {
		Hash string `json:"hash"`
		Size uint32 `json:"size"`
	}
}

func (c *client) manifest(t *testing.T, id int64, version int64) manifestJSON {
	t.Helper()
	var m manifestJSON
	c.get(t, fmt.Sprintf("/api/v1/files/%d/manifest?version=%d", id, version)).want(t, http.StatusOK).decode(t, &m)
	if len(m.Chunks) == 0 {
		t.Fatalf("manifest of %d v%d: no chunks", id, version)
	}
	return m
}

// formBody is a multipart/form-data upload body.
func formBody(t *testing.T, fields [][2]string, fileName string, data []byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range fields {
		w.WriteField(f[0], f[1])
	}
	fw, err := w.CreateFormFile("file", fileName)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	w.Close()
	return b.Bytes(), w.FormDataContentType()
}

// testCrossUser: user B gets 404 NOT_FOUND, exactly as for a missing id,
// on every endpoint for every id of user A, and A's data is unchanged
// afterwards.
func testCrossUser(t *testing.T, s *apiServer) {
	a := newUser(t, s, "alice")
	b := newUser(t, s, "bob")

	// A's data: folders, a file with two versions, a file in the root,
	// a trashed file and folder, a multipart upload with one part.
	fa := a.mkdir(t, 0, "a-private")
	fa2 := a.mkdir(t, fa.ID, "nested")
	v1, v2 := testkit.RandBytes(100, 60<<10), testkit.RandBytes(101, 70<<10)
	secret := a.upload(t, fa.ID, "secret.txt", v1)
	secret = a.upload(t, fa.ID, "secret.txt", v2)
	rootFile := a.upload(t, 0, "root-secret.bin", testkit.RandBytes(102, 30<<10))
	trashed := a.upload(t, fa2.ID, "trashed.txt", []byte("trash me"))
	a.do(t, "DELETE", fmt.Sprintf("/api/v1/files/%d", trashed.ID), nil, nil).want(t, http.StatusOK)
	trashedDir := a.mkdir(t, 0, "trashed-folder")
	a.do(t, "DELETE", fmt.Sprintf("/api/v1/folders/%d", trashedDir.ID), nil, nil).want(t, http.StatusOK)
	var up struct {
		UploadID string `json:"upload_id"`
	}
	a.json(t, "POST", "/api/v1/files/upload/multipart/init", map[string]any{"file_name": "big.bin", "folder_id": fa.ID}).
		want(t, http.StatusCreated).decode(t, &up)
	a.do(t, "PUT", "/api/v1/files/upload/multipart/"+up.UploadID+"/part/1", testkit.RandBytes(103, 20<<10), nil).want(t, http.StatusOK)
	aManifest := a.manifest(t, secret.ID, 1)
	aHash := aManifest.Chunks[0].Hash

	folders := []int64{a.root, fa.ID, fa2.ID}
	filesA := []int64{secret.ID, rootFile.ID}
	before := takeSnapshot(t, a, []int64{0, fa.ID, fa2.ID}, filesA, up.UploadID)

	// B's own things, which B tries to move into A's folders. B's file
	// has A's content (v2), so its chunks exist for the commits below.
	mine := b.upload(t, 0, "mine.txt", v2)
	bFolder := b.mkdir(t, 0, "b-folder")
	bManifest := b.manifest(t, mine.ID, 1)
	commitChunks := bManifest.Chunks

	type req struct {
		method, path string
		body         any
		h            hdr
	}
	var reqs []req
	jsonReq := func(method, path string, body any) req {
		bb, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		return req{method, path, bb, hdr{"Content-Type", "application/json"}}
	}
	for _, id := range filesA {
		f := fmt.Sprintf("/api/v1/files/%d", id)
		reqs = append(reqs,
			req{"GET", f, nil, nil},
			req{"GET", f + "/download", nil, nil},
			req{"GET", f + "/download", nil, hdr{"Range", "bytes=0-9"}},
			req{"GET", fmt.Sprintf("/api/v1/folders/%d", id), nil, nil},
			jsonReq("PATCH", f, map[string]any{"name": "pwned"}),
			jsonReq("PATCH", f, map[string]any{"parent_id": bFolder.ID}),
			jsonReq("PUT", f+"/move", map[string]any{"new_parent_id": bFolder.ID}),
			jsonReq("PUT", f+"/move", map[string]any{"new_parent_id": nil}),
			jsonReq("POST", f+"/copy", map[string]any{}),
			jsonReq("POST", f+"/copy", map[string]any{"parent_id": bFolder.ID, "name": "stolen"}),
			req{"GET", f + "/versions", nil, nil},
			req{"GET", f + "/versions/1/download", nil, nil},
			req{"POST", f + "/versions/1/restore", nil, nil},
			req{"DELETE", f + "/versions/1", nil, nil},
			req{"GET", f + "/manifest", nil, nil},
			req{"GET", f + "/manifest?version=1", nil, nil},
			req{"GET", f + "/versions/1/chunks/" + aHash, nil, nil},
			req{"GET", f + "/versions/2/chunks/" + commitChunks[0].Hash, nil, nil},
			req{"POST", fmt.Sprintf("/api/v1/trash/%d/restore", id), nil, nil},
			req{"DELETE", fmt.Sprintf("/api/v1/trash/%d", id), nil, nil},
			jsonReq("POST", "/api/v1/files/commit", map[string]any{"file_id": id, "checksum": sha(v2), "chunks": commitChunks}),
			jsonReq("POST", "/api/v1/files/commit", map[string]any{"file_id": id, "base_version": 2, "require_base": true,
				"checksum": sha(v2), "chunks": commitChunks}),
			req{"DELETE", f, nil, nil},
		)
	}
	for _, id := range folders {
		d := fmt.Sprintf("/api/v1/folders/%d", id)
		form, ctype := formBody(t, [][2]string{{"folder_id", strconv.FormatInt(id, 10)}}, "x.txt", []byte("x"))
		reqs = append(reqs,
			req{"GET", d, nil, nil},
			req{"GET", d + "/contents", nil, nil},
			req{"GET", fmt.Sprintf("/api/v1/files?folder_id=%d", id), nil, nil},
			jsonReq("PATCH", d, map[string]any{"name": "pwned"}),
			jsonReq("PUT", d+"/move", map[string]any{"new_parent_id": bFolder.ID}),
			jsonReq("POST", "/api/v1/folders", map[string]any{"name": "intruder", "parent_id": id}),
			req{"POST", "/api/v1/files/upload", []byte("intruder"), hdr{"X-File-Name", "intruder.txt", "X-Folder-ID", strconv.FormatInt(id, 10)}},
			req{"POST", fmt.Sprintf("/api/v1/files/upload?name=intruder.txt&folder_id=%d", id), []byte("intruder"), nil},
			req{"POST", "/api/v1/files/upload", form, hdr{"Content-Type", ctype}},
			jsonReq("PATCH", fmt.Sprintf("/api/v1/files/%d", mine.ID), map[string]any{"parent_id": id}),
			jsonReq("PUT", fmt.Sprintf("/api/v1/files/%d/move", mine.ID), map[string]any{"new_parent_id": id}),
			jsonReq("PUT", fmt.Sprintf("/api/v1/folders/%d/move", bFolder.ID), map[string]any{"new_parent_id": id}),
			jsonReq("POST", fmt.Sprintf("/api/v1/files/%d/copy", mine.ID), map[string]any{"parent_id": id}),
			jsonReq("POST", "/api/v1/files/upload/multipart/init", map[string]any{"file_name": "intruder.bin", "folder_id": id}),
			jsonReq("POST", "/api/v1/files/commit", map[string]any{"folder_id": id, "name": "intruder.txt", "checksum": sha(v2), "chunks": commitChunks}),
			req{"DELETE", d, nil, nil},
		)
	}
	for _, id := range []int64{trashed.ID, trashedDir.ID} {
		reqs = append(reqs,
			req{"GET", fmt.Sprintf("/api/v1/files/%d", id), nil, nil},
			req{"POST", fmt.Sprintf("/api/v1/trash/%d/restore", id), nil, nil},
			req{"DELETE", fmt.Sprintf("/api/v1/trash/%d", id), nil, nil},
		)
	}
	u := "/api/v1/files/upload/multipart/" + up.UploadID
	reqs = append(reqs,
		req{"PUT", u + "/part/2", []byte("more"), nil},
		req{"PUT", u + "/part/1", []byte("overwrite"), nil},
		req{"GET", u, nil, nil},
		req{"POST", u + "/complete", nil, nil},
		req{"DELETE", u, nil, nil},
		// B's own file, A's chunk: chunks are read through the reader's
		// own manifests only.
		req{"GET", fmt.Sprintf("/api/v1/files/%d/versions/1/chunks/%s", mine.ID, aHash), nil, nil},
	)
	for _, r := range reqs {
		b.do(t, r.method, r.path, r.body, r.h).wantErr(t, http.StatusNotFound, "NOT_FOUND")
	}

	// Search and the change feed show nothing of A.
	aIDs := map[int64]bool{a.root: true, fa.ID: true, fa2.ID: true, secret.ID: true, rootFile.ID: true, trashed.ID: true, trashedDir.ID: true}
	for _, q := range []string{"?q=secret", "?q=", "?q=a-private", "?type=folder", "?q=trashed", "?page_size=100"} {
		var res struct{ Results []fileJSON }
		b.get(t, "/api/v1/search"+q).want(t, http.StatusOK).decode(t, &res)
		for _, f := range res.Results {
			if aIDs[f.ID] || f.ID != mine.ID && f.ID != bFolder.ID {
				t.Errorf("search%s as B: got %+v, which is not B's", q, f)
			}
		}
	}
	for _, id := range folders {
		r := b.get(t, fmt.Sprintf("/api/v1/search?q=secret&folder_id=%d", id))
		if r.status == http.StatusOK {
			var res struct{ Results []fileJSON }
			r.decode(t, &res)
			if len(res.Results) != 0 {
				t.Errorf("search in A's folder %d as B: got %+v, want nothing", id, res.Results)
			}
		} else {
			r.wantErr(t, http.StatusNotFound, "NOT_FOUND")
		}
	}
	var feed struct {
		Changes []struct {
			FileID   int64 `json:"file_id"`
			FolderID int64 `json:"folder_id"`
		}
	}
	b.get(t, "/api/v1/changes").want(t, http.StatusOK).decode(t, &feed)
	if len(feed.Changes) == 0 {
		t.Errorf("B's change feed is empty; want B's own changes")
	}
	for _, ch := range feed.Changes {
		if aIDs[ch.FileID] || aIDs[ch.FolderID] {
			t.Errorf("B's change feed shows A's entry: %+v", ch)
		}
	}
	if tr := b.trash(t); len(tr) != 0 {
		t.Errorf("B's trash: got %+v, want empty", tr)
	}

	// Controls: the same requests on B's own ids succeed, so the 404s above
	// come from the owner check and not from the requests' shape.
	b.json(t, "POST", "/api/v1/files/commit", map[string]any{"file_id": mine.ID, "checksum": sha(v2), "chunks": commitChunks}).
		want(t, http.StatusCreated)
	b.json(t, "POST", "/api/v1/files/commit", map[string]any{"folder_id": bFolder.ID, "name": "committed.txt", "checksum": sha(v2), "chunks": commitChunks}).
		want(t, http.StatusCreated)
	b.json(t, "POST", "/api/v1/folders", map[string]any{"name": "inside", "parent_id": bFolder.ID}).want(t, http.StatusCreated)
	b.json(t, "POST", "/api/v1/files/upload/multipart/init", map[string]any{"file_name": "mine.bin", "folder_id": bFolder.ID}).
		want(t, http.StatusCreated)
	b.get(t, fmt.Sprintf("/api/v1/files/%d/versions/1/chunks/%s", mine.ID, commitChunks[0].Hash)).want(t, http.StatusOK)

	after := takeSnapshot(t, a, []int64{0, fa.ID, fa2.ID}, filesA, up.UploadID)
	if d := before.diff(after); d != "" {
		t.Errorf("A's data changed under B's requests:\n%s", d)
	}
	// B's own data is intact too, and B's file still downloads.
	if got := b.download(t, mine.ID); !bytes.Equal(got, v2) {
		t.Errorf("B's file: got %d bytes, want its upload", len(got))
	}
	if l := b.list(t, 0); !slices.Equal(ids(l), []int64{min(mine.ID, bFolder.ID), max(mine.ID, bFolder.ID)}) {
		t.Errorf("B's root: got %v, want only B's file and folder", ids(l))
	}
}

// ---- tokens ----

// serverKeys reads the server's signing key from its data directory, and
// the public key in PEM and DER.
func serverKeys(t *testing.T, s *apiServer) (*ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	// read returns a key file's PEM and the DER of its block.
	read := func(name string) ([]byte, []byte) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(s.data, "keys", name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatal(name + ": no PEM block")
		}
		return b, blk.Bytes
	}
	_, privDER := read("jwt-private.pem")
	k, err := x509.ParsePKCS8PrivateKey(privDER)
	if err != nil {
		t.Fatal(err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("jwt-private.pem holds a %T, want an ECDSA key", k)
	}
	pubPEM, pubDER := read("jwt-public.pem")
	return priv, pubPEM, pubDER
}

// testJWT presents forged, stale and misused tokens over HTTP; every one
// gets 401 AUTH_TOKEN_INVALID.
func testJWT(t *testing.T, s *apiServer) {
	victim, reg := register(t, s, "victim")
	victim.get(t, "/api/v1/auth/me").want(t, http.StatusOK)
	priv, pubPEM, pubDER := serverKeys(t, s)

	// The JWK Set serves the same key as the PEM file.
	var jwks struct {
		Keys []struct{ Kty, Crv, X, Y, Alg, Kid string }
	}
	(&client{s: s}).get(t, "/.well-known/jwks.json").want(t, http.StatusOK).decode(t, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Alg != "ES256" {
		t.Fatalf("JWKS: got %+v, want one ES256 key", jwks)
	}
	jk := jwks.Keys[0]
	pt, _ := priv.PublicKey.Bytes() // 0x04 || X || Y
	if jk.X != base64.RawURLEncoding.EncodeToString(pt[1:33]) || jk.Y != base64.RawURLEncoding.EncodeToString(pt[33:]) {
		t.Fatalf("JWKS key %+v is not the key in %s/keys", jk, s.data)
	}

	// claims returns the genuine access token's claims.
	claims := func() jwt.MapClaims {
		m := jwt.MapClaims{}
		tok, _, err := jwt.NewParser().ParseUnverified(reg.AccessToken, m)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Header["kid"] != jk.Kid {
			t.Fatalf("token kid %v, JWKS kid %s", tok.Header["kid"], jk.Kid)
		}
		return m
	}
	sign := func(method jwt.SigningMethod, key any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = jk.Kid
		raw, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// forge signs the genuine claims, changed, with the real key: only
	// the change is wrong with the token.
	forge := func(change func(jwt.MapClaims)) string {
		c := claims()
		change(c)
		return sign(jwt.SigningMethodES256, priv, c)
	}
	now := time.Now()

	// The control: the genuine claims re-signed are accepted, so each
	// case below fails for its one defect.
	(&client{s: s, token: forge(func(jwt.MapClaims) {})}).get(t, "/api/v1/auth/me").want(t, http.StatusOK)

	parts := strings.Split(reg.AccessToken, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	tamper := func(change func(map[string]any)) string {
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		payload, _ = json.Marshal(m)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	}
	admin, adminLogin := login(t, s, adminEmail, adminPassword)
	tests := []struct {
		name  string
		token string
	}{
		{"alg none, no signature", noneHeader + "." + parts[1] + "."},
		{"alg none, signature kept", noneHeader + "." + parts[1] + "." + parts[2]},
		{"alg none via the library", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims())},
		{"HS256 keyed with the public key PEM", sign(jwt.SigningMethodHS256, pubPEM, claims())},
		{"HS256 keyed with the public key DER", sign(jwt.SigningMethodHS256, pubDER, claims())},
		{"HS256 keyed with the JWK x", sign(jwt.SigningMethodHS256, []byte(jk.X), claims())},
		{"expired", forge(func(c jwt.MapClaims) {
			c["iat"], c["nbf"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		})},
		{"not yet valid", forge(func(c jwt.MapClaims) {
			c["nbf"], c["exp"] = now.Add(time.Hour).Unix(), now.Add(2*time.Hour).Unix()
		})},
		{"no expiry", forge(func(c jwt.MapClaims) { delete(c, "exp") })},
		{"wrong issuer", forge(func(c jwt.MapClaims) { c["iss"] = "evil" })},
		{"wrong audience", forge(func(c jwt.MapClaims) { c["aud"] = []string{"other-api"} })},
		{"extra audience", forge(func(c jwt.MapClaims) { c["aud"] = []string{"dfms-api", "other-api"} })},
		{"refresh type", forge(func(c jwt.MapClaims) { c["typ"] = "refresh" })},
		{"tampered: role admin", tamper(func(m map[string]any) { m["role"] = "admin" })},
		{"tampered: the admin's id", tamper(func(m map[string]any) { m["sub"] = strconv.FormatInt(admin.userID, 10) })},
		{"tampered: later expiry", tamper(func(m map[string]any) { m["exp"] = now.Add(24 * time.Hour).Unix() })},
		{"signature truncated", reg.AccessToken[:len(reg.AccessToken)-6]},
		{"refresh token as the access token", reg.RefreshToken},
		{"garbage", "not.a.token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &client{s: s, token: tc.token}
			c.get(t, "/api/v1/auth/me").wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
			c.get(t, "/api/v1/files").wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
			c.get(t, "/api/v1/admin/users").wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
		})
	}
	anon := &client{s: s}
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic " + reg.AccessToken, "bearer" + reg.AccessToken} {
		r := anon.do(t, "GET", "/api/v1/auth/me", nil, hdr{"Authorization", h})
		if r.status != http.StatusUnauthorized {
			t.Errorf("Authorization %.20q: got %d, want 401", h, r.status)
		}
	}

	refresh := func(tok string) *response {
		return anon.json(t, "POST", "/api/v1/auth/refresh", map[string]string{"refresh_token": tok})
	}
	t.Run("access token as a refresh token", func(t *testing.T) {
		refresh(reg.AccessToken).wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
	})
	t.Run("forged refresh token", func(t *testing.T) {
		m := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(reg.RefreshToken, m); err != nil {
			t.Fatal(err)
		}
		m["iss"] = "evil"
		refresh(sign(jwt.SigningMethodES256, priv, m)).wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
	})
	t.Run("reused refresh token", func(t *testing.T) {
		// The administrator's family (the victim's is needed intact below).
		var r1 authJSON
		refresh(adminLogin.RefreshToken).want(t, http.StatusOK).decode(t, &r1)
		if r1.RefreshToken == "" || r1.RefreshToken == adminLogin.RefreshToken {
			t.Fatalf("refresh: got %+v, want a new refresh token", r1)
		}
		(&client{s: s, token: r1.AccessToken}).get(t, "/api/v1/auth/me").want(t, http.StatusOK)
		refresh(adminLogin.RefreshToken).wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
		// The reuse revoked the family: its newest token fails too.
		refresh(r1.RefreshToken).wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
	})
	// Last: the victim's tokens fail for this reason only from here on.
	t.Run("deactivated user", func(t *testing.T) {
		if exp, _ := claims().GetExpirationTime(); exp == nil || !exp.After(time.Now().Add(time.Minute)) {
			t.Fatalf("the victim's access token expires at %v; want it still valid for this case", exp)
		}
		var out struct{ User struct{ Active bool } }
		admin.json(t, "PATCH", fmt.Sprintf("/api/v1/admin/users/%d", victim.userID), map[string]any{"active": false}).
			want(t, http.StatusOK).decode(t, &out)
		if out.User.Active {
			t.Fatalf("PATCH active=false: got active %v", out.User.Active)
		}
		victim.get(t, "/api/v1/auth/me").wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
		victim.get(t, "/api/v1/files").wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
		refresh(reg.RefreshToken).wantErr(t, http.StatusUnauthorized, "AUTH_TOKEN_INVALID")
		// An administrator cannot lock themselves out.
		admin.json(t, "PATCH", fmt.Sprintf("/api/v1/admin/users/%d", admin.userID), map[string]any{"active": false}).
			wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
		admin.get(t, "/api/v1/auth/me").want(t, http.StatusOK)
	})
}

// ---- bad input ----

const (
	smallMaxUpload = 1 << 20 // DFMS_MAX_UPLOAD_SIZE of the bad-input server
	smallQuota     = 2 << 20 // DFMS_DEFAULT_QUOTA of the bad-input server
)

// badNames are names no entry may take.
var badNames = []struct{ name, value string }{
	{"empty", ""},
	{"dot", "."},
	{"dotdot", ".."},
	{"slash", "a/b"},
	{"only slash", "/"},
	{"NUL", "a\x00b"},
	{"256 bytes", strings.Repeat("x", 256)},
	{"256 bytes of UTF-8", strings.Repeat("é", 128)},
	{"reserved .versions", ".versions"},
}

// TestAPIBadInput sends bad input of every kind; each gets its 4xx with the
// envelope and the right code, and changes nothing.
func TestAPIBadInput(t *testing.T) {
	env := baseEnv(fmt.Sprintf("DFMS_MAX_UPLOAD_SIZE=%d", smallMaxUpload), fmt.Sprintf("DFMS_DEFAULT_QUOTA=%d", smallQuota))
	forEachBackend(t, env, func(t *testing.T, s *apiServer) {
		c := newUser(t, s, "bad")
		dir := c.mkdir(t, 0, "target")
		data := testkit.RandBytes(200, 40<<10)
		file := c.upload(t, dir.ID, "existing.txt", data)
		empty := c.upload(t, 0, "empty.txt", nil)
		snap := func() snapshotLite { return takeLite(t, c, dir.ID) }
		before := snap()
		unchanged := func(t *testing.T, what string) {
			t.Helper()
			if d := before.diff(snap()); d != "" {
				t.Errorf("after %s: %s", what, d)
			}
		}

		t.Run("names", func(t *testing.T) {
			fid, did := fmt.Sprintf("/api/v1/files/%d", file.ID), fmt.Sprintf("/api/v1/folders/%d", dir.ID)
			for _, bn := range badNames {
				t.Run(bn.name, func(t *testing.T) {
					// Raw upload, the name in X-File-Name (percent-encoded
					// where it is not plain ASCII) or in ?name=.
					c.do(t, "POST", "/api/v1/files/upload", []byte("x"), hdr{"X-File-Name", escapeName(bn.value)}).
						wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
					c.do(t, "POST", "/api/v1/files/upload", []byte("x"), hdr{"X-File-Name", pathEscape(bn.value)}).
						wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
					c.do(t, "POST", "/api/v1/files/upload?name="+url.QueryEscape(bn.value), []byte("x"), nil).
						wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
					// multipart/form-data with a name field.
					form, ctype := formBody(t, [][2]string{{"name", bn.value}}, "ok.txt", []byte("x"))
					if bn.value != "" { // an empty name field means: use the file name
						c.do(t, "POST", "/api/v1/files/upload", form, hdr{"Content-Type", ctype}).
							wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
					}
					c.json(t, "POST", "/api/v1/folders", map[string]any{"name": bn.value, "parent_id": dir.ID}).
						wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
					c.json(t, "PATCH", fid, map[string]any{"name": bn.value}).wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
					c.json(t, "PATCH", did, map[string]any{"name": bn.value}).wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
					c.json(t, "POST", fid+"/copy", map[string]any{"name": bn.value}).wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
					c.json(t, "POST", "/api/v1/files/upload/multipart/init", map[string]any{"file_name": bn.value, "file_size": 10}).
						wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
					c.json(t, "POST", "/api/v1/files/commit", map[string]any{"folder_id": dir.ID, "name": bn.value,
						"checksum": sha(data), "chunks": c.manifest(t, file.ID, 1).Chunks}).
						wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
				})
			}
			// A form upload's file name is checked as well.
			for _, n := range []string{"..", ".versions"} {
				form, ctype := formBody(t, nil, n, []byte("x"))
				c.do(t, "POST", "/api/v1/files/upload", form, hdr{"Content-Type", ctype}).
					wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
			}
			unchanged(t, "bad names")
		})

		t.Run("json", func(t *testing.T) {
			big := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
			endpoints := []struct{ method, path string }{
				{"POST", "/api/v1/folders"},
				{"PATCH", fmt.Sprintf("/api/v1/files/%d", file.ID)},
				{"PATCH", fmt.Sprintf("/api/v1/folders/%d", dir.ID)},
				{"PUT", fmt.Sprintf("/api/v1/files/%d/move", file.ID)},
				{"POST", fmt.Sprintf("/api/v1/files/%d/copy", file.ID)},
				{"POST", "/api/v1/files/upload/multipart/init"},
				{"POST", "/api/v1/files/commit"},
				{"POST", "/api/v1/chunks/missing"},
				{"PUT", "/api/v1/auth/password"},
				{"POST", "/api/v1/auth/login"},
				{"POST", "/api/v1/auth/register"},
				{"POST", "/api/v1/auth/refresh"},
			}
			bodies := []struct {
				name, body string
				status     int
				code       string
			}{
				{"malformed", `{"name":`, 400, "VALIDATION_FAILED"},
				{"not JSON", `name=x`, 400, "VALIDATION_FAILED"},
				{"unknown field", `{"name":"x","bogus":1}`, 400, "VALIDATION_FAILED"},
				{"trailing object", `{"name":"x"} {"name":"y"}`, 400, "VALIDATION_FAILED"},
				{"trailing garbage", `{"name":"x"}x`, 400, "VALIDATION_FAILED"},
				{"array", `[]`, 400, "VALIDATION_FAILED"},
				{"wrong type", `{"name":5}`, 400, "VALIDATION_FAILED"},
				{"over 1 MiB", big, 413, "TOO_LARGE"},
			}
			for _, ep := range endpoints {
				for _, b := range bodies {
					if b.name == "wrong type" && !strings.Contains(ep.path, "folders") {
						continue // only the folder endpoints have a "name" field for sure
					}
					c.do(t, ep.method, ep.path, b.body, hdr{"Content-Type", "application/json"}).wantErr(t, b.status, b.code)
				}
			}
			// Required bodies.
			for _, p := range []string{"/api/v1/folders", "/api/v1/files/upload/multipart/init", "/api/v1/files/commit"} {
				c.do(t, "POST", p, nil, nil).wantErr(t, 400, "VALIDATION_FAILED")
			}
			unchanged(t, "bad JSON")
		})

		t.Run("oversized headers", func(t *testing.T) {
			r := c.do(t, "GET", "/api/v1/files", nil, hdr{"X-Padding", strings.Repeat("p", 100<<10)})
			if r.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("a 100 KiB header: got %d, want 431", r.status)
			}
			c.get(t, "/api/v1/files").want(t, http.StatusOK) // the server is fine
		})

		t.Run("upload size", func(t *testing.T) {
			over := testkit.RandBytes(201, smallMaxUpload+1)
			c.do(t, "POST", "/api/v1/files/upload", over, hdr{"X-File-Name", "big.bin"}).wantErr(t, 413, "TOO_LARGE")
			// Without a Content-Length: stopped while streaming.
			c.do(t, "POST", "/api/v1/files/upload", bytes.NewReader(over), hdr{"X-File-Name", "big.bin"}).wantErr(t, 413, "TOO_LARGE")
			form, ctype := formBody(t, nil, "big.bin", over)
			c.do(t, "POST", "/api/v1/files/upload", form, hdr{"Content-Type", ctype}).wantErr(t, 413, "TOO_LARGE")
			c.json(t, "POST", "/api/v1/files/upload/multipart/init", map[string]any{"file_name": "big.bin", "file_size": smallMaxUpload + 1}).
				wantErr(t, 413, "TOO_LARGE")
			// Exactly the limit is fine (then deleted and purged).
			f := c.upload(t, 0, "limit.bin", over[:smallMaxUpload])
			c.do(t, "DELETE", fmt.Sprintf("/api/v1/files/%d", f.ID), nil, nil).want(t, 200)
			c.do(t, "DELETE", fmt.Sprintf("/api/v1/trash/%d", f.ID), nil, nil).want(t, 200)
			unchanged(t, "uploads over the size limit")
		})

		t.Run("multipart upload size", func(t *testing.T) {
			// A multipart upload that declares no size still may not grow
			// past the limit.
			p := c.initMultipart(t, map[string]any{"file_name": "parts.bin"})
			half := testkit.RandBytes(202, smallMaxUpload/2+1024)
			c.do(t, "PUT", p+"/part/1", half, nil).want(t, 200)
			r2 := c.do(t, "PUT", p+"/part/2", half, nil)
			if r2.status == 200 {
				r := c.do(t, "POST", p+"/complete", nil, nil)
				r.wantErr(t, 413, "TOO_LARGE")
				if r.status == http.StatusCreated { // undo, so that the next cases start from the same state
					var done struct{ File fileJSON }
					r.decode(t, &done)
					c.do(t, "DELETE", fmt.Sprintf("/api/v1/files/%d", done.File.ID), nil, nil)
					c.do(t, "DELETE", fmt.Sprintf("/api/v1/trash/%d", done.File.ID), nil, nil)
				}
			} else {
				r2.wantErr(t, 413, "TOO_LARGE")
			}
			c.do(t, "DELETE", p, nil, nil)
			unchanged(t, "a multipart upload over the size limit")
		})

		t.Run("truncated bodies", func(t *testing.T) {
			// A body that ends early is the client's fault: a 4xx, never a
			// 5xx, and nothing stored.
			up := c.initMultipart(t, map[string]any{"file_name": "short.bin"})
			form, ctype := formBody(t, nil, "short.bin", testkit.RandBytes(208, 1000))
			form = form[:len(form)-200] // the file part loses its end and the closing boundary
			c.do(t, "POST", "/api/v1/files/upload", form, hdr{"Content-Type", ctype}).wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")

			// Bodies shorter than announced go over a raw connection whose
			// writing half is closed after them, so the answer can still be
			// read. (The server may also see the close as the client going
			// away; either way the fault is the client's.)
			tests := []struct {
				name, head string
				body       []byte
			}{
				{"raw upload, Content-Length 1000, 10 bytes sent",
					"POST /api/v1/files/upload HTTP/1.1\r\nX-File-Name: short.bin\r\nContent-Length: 1000\r\n", []byte("0123456789")},
				{"raw upload, chunked, no last chunk",
					"POST /api/v1/files/upload HTTP/1.1\r\nX-File-Name: short.bin\r\nTransfer-Encoding: chunked\r\n", []byte("a\r\n0123456789\r\n")},
				{"multipart part, Content-Length 1000, 10 bytes sent",
					"PUT " + up + "/part/1 HTTP/1.1\r\nContent-Length: 1000\r\n", []byte("0123456789")},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					conn.SetDeadline(time.Now().Add(20 * time.Second))
					fmt.Fprintf(conn, "%sHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", tc.head, strings.TrimPrefix(s.base, "http://"), c.token)
					conn.Write(tc.body)
					conn.(*net.TCPConn).CloseWrite()
					resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
					if err != nil {
						t.Fatalf("no answer: %v", err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode < 400 || resp.StatusCode >= 500 {
						t.Errorf("got %d %s, want a 4xx", resp.StatusCode, b)
					} else {
						r := &response{method: "raw", path: tc.name, status: resp.StatusCode, header: resp.Header, body: b}
						r.wantErr(t, resp.StatusCode, "")
					}
				})
			}
			var st struct{ Parts []any }
			c.get(t, up).want(t, 200).decode(t, &st)
			if len(st.Parts) != 0 {
				t.Errorf("the upload holds %d parts after a truncated part, want none", len(st.Parts))
			}
			c.do(t, "DELETE", up, nil, nil).want(t, 200)
			unchanged(t, "truncated bodies")
		})

		t.Run("part numbers", func(t *testing.T) {
			p := c.initMultipart(t, map[string]any{"file_name": "p.bin", "file_size": 3})
			for _, n := range []string{"0", "10001", "-1", "abc", "1.5", "99999999999999999999"} {
				c.do(t, "PUT", p+"/part/"+n, []byte("abc"), nil).wantErr(t, 400, "VALIDATION_FAILED")
			}
			c.do(t, "PUT", p+"/part/10000", []byte("abc"), nil).want(t, 200)
			// Parts 1..9999 are missing.
			c.do(t, "POST", p+"/complete", nil, nil).wantErr(t, 400, "VALIDATION_FAILED")
			c.do(t, "DELETE", p, nil, nil).want(t, 200)
			c.get(t, p).wantErr(t, 404, "NOT_FOUND")
			c.do(t, "PUT", "/api/v1/files/upload/multipart/no-such-upload/part/1", []byte("abc"), nil).wantErr(t, 404, "NOT_FOUND")
			unchanged(t, "bad part numbers")
		})

		t.Run("ranges", func(t *testing.T) {
			path := fmt.Sprintf("/api/v1/files/%d/download", file.ID)
			size := len(data)
			for _, rng := range []string{
				fmt.Sprintf("bytes=%d-", size),
				fmt.Sprintf("bytes=%d-%d", size, size+10),
				fmt.Sprintf("bytes=%d-", size*10),
			} {
				r := c.do(t, "GET", path, nil, hdr{"Range", rng})
				r.wantErr(t, http.StatusRequestedRangeNotSatisfiable, "RANGE_NOT_SATISFIABLE")
				if got, want := r.header.Get("Content-Range"), fmt.Sprintf("bytes */%d", size); got != want {
					t.Errorf("Range %s: got Content-Range %q, want %q", rng, got, want)
				}
			}
			r := c.do(t, "GET", fmt.Sprintf("/api/v1/files/%d/download", empty.ID), nil, hdr{"Range", "bytes=0-"})
			r.wantErr(t, http.StatusRequestedRangeNotSatisfiable, "RANGE_NOT_SATISFIABLE")
			if got := r.header.Get("Content-Range"); got != "bytes */0" {
				t.Errorf("a range of an empty file: got Content-Range %q, want bytes */0", got)
			}
			// Malformed ranges: refused with 416 (and the size), or ignored
			// (200 and the whole file); never a partial answer.
			for _, rng := range []string{"bytes=abc", "bytes=5-2", "bytes=--1", "bytes=-0", "bytes=-", "bytes=1-2-3",
				"bytes=0-1,3-4", "bytes=-1-2", "bytes=1e3-", "bytes=0x10-", "bytes=99999999999999999999-"} {
				r := c.do(t, "GET", path, nil, hdr{"Range", rng})
				switch r.status {
				case http.StatusOK:
					if !bytes.Equal(r.body, data) {
						t.Errorf("Range %q ignored: got %d bytes, want the whole file", rng, len(r.body))
					}
				case http.StatusRequestedRangeNotSatisfiable:
					r.wantErr(t, 416, "RANGE_NOT_SATISFIABLE")
					if got, want := r.header.Get("Content-Range"), fmt.Sprintf("bytes */%d", size); got != want {
						t.Errorf("Range %q: got Content-Range %q, want %q", rng, got, want)
					}
				default:
					t.Errorf("Range %q: got %d, want 416 or 200", rng, r.status)
				}
			}
			// RFC 9110 §14.2: a range unit the server does not understand
			// MUST be ignored.
			if r := c.do(t, "GET", path, nil, hdr{"Range", "items=0-5"}); r.status != http.StatusOK || !bytes.Equal(r.body, data) {
				t.Errorf("Range in an unknown unit: got %d (%d bytes), want 200 and the whole file (RFC 9110 §14.2)", r.status, len(r.body))
			}
		})

		t.Run("ids", func(t *testing.T) {
			f := fmt.Sprintf("/api/v1/files/%d", file.ID)
			hash := c.manifest(t, file.ID, 1).Chunks[0].Hash
			var paths []struct{ method, path string }
			add := func(ids []string, patterns ...string) {
				for _, id := range ids {
					for _, p := range patterns {
						m, pth, _ := strings.Cut(p, " ")
						paths = append(paths, struct{ method, path string }{m, fmt.Sprintf(pth, id)})
					}
				}
			}
			// In the path, 0 is not an id either; in a folder reference
			// (query, header, JSON) 0 and blank mean the root.
			add([]string{"abc", "-1", "0", "1.5", "99999999999999999999", "0x10", "%20", "1%00"},
				"GET /api/v1/files/%s", "GET /api/v1/files/%s/download", "GET /api/v1/files/%s/versions",
				"GET /api/v1/files/%s/manifest", "DELETE /api/v1/files/%s", "GET /api/v1/folders/%s",
				"GET /api/v1/folders/%s/contents", "DELETE /api/v1/folders/%s", "POST /api/v1/trash/%s/restore",
				"DELETE /api/v1/trash/%s", "GET /api/v1/files/%s/versions/1/download",
				"GET /api/v1/files/%s/versions/1/chunks/"+hash,
				"GET "+f+"/versions/%s/download", "POST "+f+"/versions/%s/restore", "DELETE "+f+"/versions/%s",
				"GET "+f+"/versions/%s/chunks/"+hash, "GET "+f+"/manifest?version=%s")
			add([]string{"abc", "-1", "1.5", "99999999999999999999", "0x10", "1%00"},
				"GET /api/v1/files?folder_id=%s", "GET /api/v1/search?folder_id=%s")
			for _, p := range paths {
				c.do(t, p.method, p.path, nil, nil).wantErr(t, 400, "VALIDATION_FAILED")
			}
			for _, h := range []string{"abc", "-1", "1.5"} {
				c.do(t, "POST", "/api/v1/files/upload", []byte("x"), hdr{"X-File-Name", "x.txt", "X-Folder-ID", h}).
					wantErr(t, 400, "VALIDATION_FAILED")
			}
			c.json(t, "POST", "/api/v1/folders", map[string]any{"name": "x", "parent_id": "abc"}).wantErr(t, 400, "VALIDATION_FAILED")
			c.json(t, "PUT", f+"/move", map[string]any{"new_parent_id": "abc"}).wantErr(t, 400, "VALIDATION_FAILED")
			c.json(t, "PUT", f+"/move", map[string]any{"new_parent_id": true}).wantErr(t, 400, "VALIDATION_FAILED")
			c.json(t, "PUT", f+"/move", map[string]any{}).wantErr(t, 400, "VALIDATION_FAILED")
			c.get(t, f+"/versions/1/chunks/nothex").wantErr(t, 400, "VALIDATION_FAILED")
			for _, q := range []string{"page=0", "page=abc", "page_size=0", "page_size=-5", "sort=bogus", "order=up"} {
				c.get(t, "/api/v1/files?"+q).wantErr(t, 400, "VALIDATION_FAILED")
				c.get(t, "/api/v1/folders/root/contents?"+q).wantErr(t, 400, "VALIDATION_FAILED")
				if strings.HasPrefix(q, "page") { // search has no sort order of its own
					c.get(t, "/api/v1/search?"+q+"&q=x").wantErr(t, 400, "VALIDATION_FAILED")
				}
			}
			for _, q := range []string{"min_size=-1", "max_size=abc", "after=yesterday", "before=2020-13-45", "q=" + strings.Repeat("q", 300)} {
				c.get(t, "/api/v1/search?"+q).wantErr(t, 400, "VALIDATION_FAILED")
			}
			unchanged(t, "bad ids")
		})

		t.Run("quota", func(t *testing.T) {
			u := c.usage(t)
			if u.QuotaBytes != smallQuota {
				t.Fatalf("quota: got %d, want DFMS_DEFAULT_QUOTA %d", u.QuotaBytes, smallQuota)
			}
			// Fill the quota to within 300 KiB.
			fill1 := testkit.RandBytes(203, smallMaxUpload-100)
			fill2 := testkit.RandBytes(207, smallQuota-int(u.UsedBytes)-len(fill1)-300<<10)
			c.upload(t, dir.ID, "fill1.bin", fill1)
			c.upload(t, dir.ID, "fill2.bin", fill2)
			full := takeLite(t, c, dir.ID)
			if left := smallQuota - full.usage.UsedBytes; left != 300<<10 {
				t.Fatalf("quota left: got %d, want %d", left, 300<<10)
			}
			over := testkit.RandBytes(204, 400<<10)
			// Streamed without a Content-Length: refused when the quota
			// runs out, and nothing is stored.
			c.do(t, "POST", "/api/v1/files/upload", bytes.NewReader(over), hdr{"X-File-Name", "over.bin"}).
				wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			c.do(t, "POST", "/api/v1/files/upload", over, hdr{"X-File-Name", "over.bin"}).
				wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			c.do(t, "POST", "/api/v1/files/upload", over, hdr{"X-File-Name", "existing.txt", "X-Folder-ID", strconv.FormatInt(dir.ID, 10)}).
				wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			form, ctype := formBody(t, nil, "over.bin", over)
			c.do(t, "POST", "/api/v1/files/upload", form, hdr{"Content-Type", ctype}).
				wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			c.json(t, "POST", "/api/v1/files/upload/multipart/init", map[string]any{"file_name": "over.bin", "file_size": len(over)}).
				wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			if d := full.diff(takeLite(t, c, dir.ID)); d != "" {
				t.Errorf("after uploads over the quota: %s", d)
			}
		})

		t.Run("quota on every path", func(t *testing.T) {
			// The quota is nearly used up (the previous case): the other
			// ways of making a new version must not get around it.
			big := c.upload(t, 0, "big-enough.bin", testkit.RandBytes(205, 250<<10)) // fits in what is left
			full := takeLite(t, c, dir.ID)
			p := c.initMultipart(t, map[string]any{"file_name": "undeclared.bin"})
			// Parts count against the quota as they arrive: the part that
			// does not fit is refused, and the upload cannot complete.
			c.do(t, "PUT", p+"/part/1", testkit.RandBytes(206, 200<<10), nil).wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			if r := c.do(t, "POST", p+"/complete", nil, nil); r.status == http.StatusCreated {
				t.Errorf("completing a multipart upload over the quota (no size declared): got %d %s, want a 4xx", r.status, tail(string(r.body), 200))
			}
			c.do(t, "DELETE", p, nil, nil).want(t, http.StatusOK)
			if r := c.json(t, "POST", fmt.Sprintf("/api/v1/files/%d/copy", big.ID), map[string]any{}); r.status != http.StatusInsufficientStorage {
				t.Errorf("a copy over the quota: got %d %s, want 507", r.status, tail(string(r.body), 200))
			}
			m := c.manifest(t, big.ID, 1)
			if r := c.json(t, "POST", "/api/v1/files/commit", map[string]any{"name": "committed.bin", "checksum": m.Checksum, "chunks": m.Chunks}); r.status != http.StatusInsufficientStorage {
				t.Errorf("a manifest commit over the quota: got %d %s, want 507", r.status, tail(string(r.body), 200))
			}
			if d := full.diff(takeLite(t, c, dir.ID)); d != "" {
				t.Errorf("after the other paths over the quota: %s", d)
			}
		})

		t.Run("quota counts held bytes", func(t *testing.T) {
			// What is left of the quota (the previous cases) is less than
			// a chunk, a part or an attribute below: each is refused
			// before it is stored, and the usage does not move.
			full := takeLite(t, c, dir.ID)
			left := smallQuota - full.usage.UsedBytes - full.usage.HeldBytes
			if left <= 0 || left >= 60<<10 {
				t.Fatalf("quota left: %d, want 1..60 KiB", left)
			}
			big := testkit.RandBytes(209, 60<<10)
			c.do(t, "PUT", "/api/v1/chunks/"+sha(big), big, nil).wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			c.json(t, "POST", "/api/v1/chunks/missing", map[string]any{"hashes": []string{sha(big)}}).want(t, http.StatusOK)
			p := c.initMultipart(t, map[string]any{"file_name": "held.bin"})
			c.do(t, "PUT", p+"/part/1", big, nil).wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			c.do(t, "DELETE", p, nil, nil).want(t, http.StatusOK)
			c.json(t, "PUT", fmt.Sprintf("/api/v1/fs/entries/%d/xattrs/user.big", file.ID), map[string]any{"value": big}).
				wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			if d := full.diff(takeLite(t, c, dir.ID)); d != "" {
				t.Errorf("after chunks, parts and attributes over the quota: %s", d)
			}
			// A chunk that fits is held until a commit references it.
			small := testkit.RandBytes(210, int(left))
			c.do(t, "PUT", "/api/v1/chunks/"+sha(small), small, nil).want(t, http.StatusCreated)
			if u := c.usage(t); u.HeldBytes != full.usage.HeldBytes+left || u.UsedBytes != full.usage.UsedBytes {
				t.Errorf("after a chunk of %d bytes: usage %+v, want %d more held", left, u, left)
			}
			c.do(t, "PUT", "/api/v1/chunks/"+sha(big[:1024]), big[:1024], nil).wantErr(t, http.StatusInsufficientStorage, "QUOTA_EXCEEDED")
			c.json(t, "POST", "/api/v1/files/commit", map[string]any{"name": "held.bin", "folder_id": dir.ID, "defer_checksum": true,
				"chunks": []map[string]any{{"hash": sha(small), "size": len(small)}}}).want(t, http.StatusCreated)
			if u := c.usage(t); u.HeldBytes != full.usage.HeldBytes || u.UsedBytes != full.usage.UsedBytes+left {
				t.Errorf("after committing it: usage %+v, want %d more used and nothing more held", u, left)
			}
		})
	})
}

// snapshotLite is a user's listing and usage.
type snapshotLite struct {
	root, dir []fileJSON
	usage     usageJSON
}

func takeLite(t *testing.T, c *client, dir int64) snapshotLite {
	t.Helper()
	return snapshotLite{c.list(t, 0), c.list(t, dir), c.usage(t)}
}

func (s snapshotLite) diff(o snapshotLite) string {
	var out []string
	if !slices.Equal(s.root, o.root) {
		out = append(out, fmt.Sprintf("root: got %+v, want %+v", o.root, s.root))
	}
	if !slices.Equal(s.dir, o.dir) {
		out = append(out, fmt.Sprintf("folder: got %+v, want %+v", o.dir, s.dir))
	}
	if s.usage != o.usage {
		out = append(out, fmt.Sprintf("usage: got %+v, want %+v", o.usage, s.usage))
	}
	return strings.Join(out, "; ")
}

// ---- rate limits ----

// TestAPIRateLimit: with DFMS_RATE_LIMIT_AUTH=5, the sixth login attempt
// in a minute gets 429 with Retry-After and the X-RateLimit-* headers, on
// the in-memory limiter and on Redis (whose keys must expire within the
// window). The limiter does not depend on the metadata backend, so this
// runs on the embedded default only.
func TestAPIRateLimit(t *testing.T) {
	const adminEmail, adminPassword = "limits@example.com", "admin password 2"
	for _, limiter := range []string{"memory", "redis"} {
		t.Run(limiter, func(t *testing.T) {
			t.Parallel()
			env := append(slices.Clone(testChunking), "DFMS_RATE_LIMIT_AUTH=5", "DFMS_GC_INTERVAL=-1s",
				"DFMS_ADMIN_EMAIL="+adminEmail, "DFMS_ADMIN_PASSWORD="+adminPassword)
			var redisURL string
			if limiter == "redis" {
				redisURL = testenv.Redis(t)
				env = append(env, "DFMS_RATE_LIMIT_URL="+redisURL)
			}
			s := startAPIServer(t, "sqlite", env)
			anon := &client{s: s}
			loginBody := map[string]string{"email": adminEmail, "password": adminPassword}
			attempts := []struct {
				body   any
				status int
			}{
				{loginBody, 200},
				{map[string]string{"email": adminEmail, "password": "wrong password"}, 401},
				{`{"email":`, 400},
				{`{"email":`, 400},
				{`[]`, 400},
			}
			start := time.Now()
			for i, a := range attempts {
				r := anon.json(t, "POST", "/api/v1/auth/login", a.body).want(t, a.status)
				if got, want := r.header.Get("X-RateLimit-Remaining"), strconv.Itoa(4-i); got != want || r.header.Get("X-RateLimit-Limit") != "5" {
					t.Errorf("attempt %d: got X-RateLimit-Limit %q, -Remaining %q; want 5, %s", i+1, r.header.Get("X-RateLimit-Limit"), got, want)
				}
			}
			r := anon.json(t, "POST", "/api/v1/auth/login", loginBody)
			r.wantErr(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
			ra, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 60 {
				t.Errorf("429: got Retry-After %q, want 1..60 seconds", r.header.Get("Retry-After"))
			}
			if r.header.Get("X-RateLimit-Limit") != "5" || r.header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("429: got X-RateLimit-Limit %q, -Remaining %q; want 5, 0", r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"))
			}
			reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
			if err != nil || reset < start.Unix() || reset > time.Now().Add(61*time.Second).Unix() {
				t.Errorf("429: got X-RateLimit-Reset %q, want a Unix time within the minute", r.header.Get("X-RateLimit-Reset"))
			}
			// Still limited; other routes have limits of their own, and the
			// probes none.
			anon.json(t, "POST", "/api/v1/auth/login", loginBody).wantErr(t, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED")
			anon.json(t, "POST", "/api/v1/auth/register", `{"email":`).wantErr(t, http.StatusBadRequest, "VALIDATION_FAILED")
			anon.get(t, "/health").want(t, http.StatusOK)

			if limiter == "redis" {
				u, err := url.Parse(redisURL)
				if err != nil {
					t.Fatal(err)
				}
				q := u.Query()
				prefix := q.Get("prefix")
				q.Del("prefix") // go-redis rejects options it does not know
				u.RawQuery = q.Encode()
				opts, err := goredis.ParseURL(u.String())
				if err != nil {
					t.Fatal(err)
				}
				rc := goredis.NewClient(opts)
				defer rc.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				keys, err := rc.Keys(ctx, prefix+"*").Result()
				if err != nil {
					t.Fatal(err)
				}
				if !slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "/api/v1/auth/login") }) {
					t.Errorf("redis keys under %q: got %q, want the login route's", prefix, keys)
				}
				for _, k := range keys {
					ttl, err := rc.PTTL(ctx, k).Result()
					if err != nil {
						t.Fatal(err)
					}
					if ttl <= 0 || ttl > time.Minute {
						t.Errorf("redis key %q: got PTTL %v, want in (0, 60s]", k, ttl)
					}
				}
			}
			s.finish(t)
		})
	}
}
