package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/api"
	"github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/api/client/clienttest"
)

// recorder is an http.RoundTripper that records each request as
// "METHOD /path" (and its Range header, if any).
type recorder struct {
	mu   sync.Mutex
	reqs []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	s := req.Method + " " + req.URL.Path
	if rg := req.Header.Get("Range"); rg != "" {
		s += " Range:" + rg
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, s)
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// take returns the requests recorded so far and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

func matching(reqs []string, substr string) []string {
	var out []string
	for _, s := range reqs {
		if strings.Contains(s, substr) {
			out = append(out, s)
		}
	}
	return out
}

// login returns a logged-in client of srv whose requests rec records.
func login(t *testing.T, srv *clienttest.Server, rec *recorder, opts ...client.Option) *client.Client {
	t.Helper()
	if rec == nil {
		rec = &recorder{}
	}
	c, err := client.New(srv.URL, append([]client.Option{client.WithHTTPClient(&http.Client{Transport: rec})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), clienttest.Email, clienttest.Password); err != nil {
		t.Fatal(err)
	}
	return c
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := clienttest.NewServer(t, clienttest.Options{})
	c := login(t, srv, nil)

	me, err := c.Me(ctx)
	if err != nil || me.Email != clienttest.Email {
		t.Fatalf("Me = %+v, %v", me, err)
	}
	docs, err := c.Mkdir(ctx, client.Root, "docs")
	if err != nil {
		t.Fatal(err)
	}
	data := testkit.RandBytes(1, 3<<20+17)
	name := "naïve 100% [x].bin" // not ASCII, and a literal %
	var sent int64
	e, err := c.Upload(ctx, docs.ID, name, bytes.NewReader(data), client.UploadOptions{Size: int64(len(data)),
		Progress: func(n int64) { sent = n }})
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != name || e.Size != int64(len(data)) || e.Checksum != sum(data) || e.Version != 1 {
		t.Errorf("uploaded entry = %+v", e)
	}
	if sent != int64(len(data)) {
		t.Errorf("progress reported %d bytes, want %d", sent, len(data))
	}
	got, err := c.Resolve(ctx, "/docs/"+name)
	if err != nil || got.ID != e.ID {
		t.Fatalf("Resolve = %+v, %v; want id %d", got, err, e.ID)
	}
	var buf bytes.Buffer
	n, err := c.DownloadTo(ctx, e.ID, &buf, nil)
	if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("DownloadTo = %d, %v; content equal: %v", n, err, bytes.Equal(buf.Bytes(), data))
	}
	list, err := c.ListPath(ctx, "/docs")
	if err != nil || len(list) != 1 || list[0].Name != name {
		t.Errorf("ListPath(/docs) = %+v, %v", list, err)
	}
	root, err := c.List(ctx, client.Root)
	if err != nil || len(root) != 1 || !root[0].IsDir() {
		t.Errorf("List(root) = %+v, %v", root, err)
	}

	// A body of unknown size streams chunked; an empty one works too.
	e2, err := c.Upload(ctx, client.Root, "stream.txt", io.MultiReader(strings.NewReader("hello "), strings.NewReader("world")), client.UploadOptions{})
	if err != nil || e2.Size != 11 || e2.MIMEType != "text/plain; charset=utf-8" {
		t.Errorf("streamed upload = %+v, %v", e2, err)
	}
	empty, err := c.Upload(ctx, client.Root, "empty", bytes.NewReader(nil), client.UploadOptions{})
	if err != nil || empty.Size != 0 {
		t.Errorf("empty upload = %+v, %v", empty, err)
	}
	dst := filepath.Join(t.TempDir(), "empty")
	if _, err := c.DownloadFile(ctx, empty.ID, dst, nil); err != nil {
		t.Errorf("DownloadFile(empty): %v", err)
	}

	// Move, versions, restore, search, delete.
	moved, err := c.Move(ctx, e2.ID, docs.ID, "renamed.txt")
	if err != nil || moved.Name != "renamed.txt" || moved.ParentID != docs.ID {
		t.Fatalf("Move = %+v, %v", moved, err)
	}
	if _, err := c.Upload(ctx, docs.ID, "renamed.txt", strings.NewReader("second"), client.UploadOptions{Size: 6}); err != nil {
		t.Fatal(err)
	}
	vs, err := c.Versions(ctx, e2.ID)
	if err != nil || len(vs) != 2 || vs[0].Version != 2 || !vs[0].Current || vs[1].Size != 11 {
		t.Fatalf("Versions = %+v, %v", vs, err)
	}
	restored, v, err := c.RestoreVersion(ctx, e2.ID, 1)
	if err != nil || restored.Version != 3 || v.Size != 11 {
		t.Fatalf("RestoreVersion = %+v %+v, %v", restored, v, err)
	}
	res, total, err := c.Search(ctx, "renamed", client.SearchOptions{})
	if err != nil || total != 1 || len(res) != 1 || res[0].ID != e2.ID {
		t.Errorf("Search = %+v, %d, %v", res, total, err)
	}
	if err := c.Delete(ctx, docs.ID); err != nil { // a folder: the folder route
		t.Fatal(err)
	}
	if _, err := c.Resolve(ctx, "/docs"); !dfms.Is(err, dfms.NotExist) {
		t.Errorf("Resolve of a deleted folder: %v, want NotExist", err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(ctx); !dfms.Is(err, dfms.Unauthenticated) {
		t.Errorf("Me after logout: %v, want Unauthenticated", err)
	}
}

// failingReaderAt fails every read that reaches failAt.
type failingReaderAt struct {
	r      io.ReaderAt
	failAt int64
}

var errDiskGone = errors.New("disk gone")

func (f *failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.failAt {
		n := max(f.failAt-off, 0)
		m, _ := f.r.ReadAt(p[:n], off)
		return m, errDiskGone
	}
	return f.r.ReadAt(p, off)
}

func TestMultipartResume(t *testing.T) {
	ctx := context.Background()
	const part = 1 << 20
	srv := clienttest.NewServer(t, clienttest.Options{PartSize: part})
	rec := &recorder{}
	c := login(t, srv, rec)
	data := testkit.RandBytes(2, 5*part+part/2) // 6 parts
	var id string
	started := func(u string) error { id = u; return nil }

	// The first attempt dies in part 4: parts 1-3 are stored.
	_, err := c.UploadMultipart(ctx, client.Root, "big.bin", &failingReaderAt{bytes.NewReader(data), 3*part + 1000},
		int64(len(data)), client.MultipartOptions{Started: started})
	if !errors.Is(err, errDiskGone) {
		t.Fatalf("interrupted upload: %v, want %v", err, errDiskGone)
	}
	if id == "" {
		t.Fatal("Started was not called")
	}
	st, err := c.MultipartStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var have []int
	for _, p := range st.Parts {
		have = append(have, p.Number)
	}
	if !slices.Equal(have, []int{1, 2, 3}) {
		t.Fatalf("parts after the interruption: %v, want [1 2 3]", have)
	}

	// The local file changed in part 2 meanwhile: its stored copy no
	// longer matches and must be sent again, with 4-6.
	data[part+5] ^= 0xff
	rec.take()
	var done int64
	e, err := c.UploadMultipart(ctx, client.Root, "big.bin", bytes.NewReader(data), int64(len(data)),
		client.MultipartOptions{UploadID: id, Started: started, Progress: func(n int64) { done = n }})
	if err != nil {
		t.Fatal(err)
	}
	reqs := rec.take()
	var sentParts []string
	for _, r := range matching(reqs, "/part/") {
		sentParts = append(sentParts, r[strings.LastIndex(r, "/")+1:])
	}
	if want := []string{"2", "4", "5", "6"}; !slices.Equal(sentParts, want) {
		t.Errorf("parts sent on resume: %v, want %v (requests: %v)", sentParts, want, reqs)
	}
	if len(matching(reqs, "/multipart/init")) != 0 || len(matching(reqs, "GET /api/v1/files/upload/multipart/"+id)) != 1 {
		t.Errorf("resume did not ask the status once without a new init: %v", reqs)
	}
	if e.Checksum != sum(data) || e.Size != int64(len(data)) {
		t.Errorf("completed entry = %+v, want checksum %s", e, sum(data))
	}
	if done != int64(len(data)) {
		t.Errorf("progress ended at %d, want %d", done, len(data))
	}
	var buf bytes.Buffer
	if _, err := c.DownloadTo(ctx, e.ID, &buf, nil); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("download after multipart: %v, equal %v", err, bytes.Equal(buf.Bytes(), data))
	}

	// A completed upload is gone: resuming it starts a new one.
	rec.take()
	if _, err := c.UploadMultipart(ctx, client.Root, "big.bin", bytes.NewReader(data), int64(len(data)),
		client.MultipartOptions{UploadID: id}); err != nil {
		t.Fatal(err)
	}
	reqs = rec.take()
	if len(matching(reqs, "/multipart/init")) != 1 || len(matching(reqs, "/part/")) != 6 {
		t.Errorf("upload after completion: %v", reqs)
	}
	vs, err := c.Versions(ctx, e.ID)
	if err != nil || len(vs) != 2 {
		t.Errorf("versions = %+v, %v", vs, err)
	}
}

func TestDownloadResume(t *testing.T) {
	ctx := context.Background()
	srv := clienttest.NewServer(t, clienttest.Options{})
	rec := &recorder{}
	c := login(t, srv, rec)
	data := testkit.RandBytes(3, 2<<20+333)
	e, err := c.Upload(ctx, client.Root, "f.bin", bytes.NewReader(data), client.UploadOptions{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst := filepath.Join(dir, "f.bin")
	partial := dst + "." + e.Checksum[:16] + client.PartialSuffix
	const have = 1<<20 + 7
	if err := os.WriteFile(partial, data[:have], 0o600); err != nil {
		t.Fatal(err)
	}
	rec.take()
	var done, total int64
	if _, err := c.DownloadFile(ctx, e.ID, dst, func(d, t int64) { done, total = d, t }); err != nil {
		t.Fatal(err)
	}
	reqs := matching(rec.take(), "/download")
	if want := fmt.Sprintf("GET /api/v1/files/%d/download Range:bytes=%d-", e.ID, have); len(reqs) != 1 || reqs[0] != want {
		t.Errorf("download requests = %v, want [%s]", reqs, want)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("resumed download differs (%v)", err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial file left behind: %v", err)
	}
	if done != int64(len(data)) || total != int64(len(data)) {
		t.Errorf("progress = %d/%d, want %d", done, total, len(data))
	}

	// A partial file with wrong bytes fails the checksum and is removed;
	// the next attempt starts over and succeeds.
	bad := slices.Clone(data[:have])
	bad[10] ^= 1
	if err := os.WriteFile(partial, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DownloadFile(ctx, e.ID, dst, nil); !dfms.Is(err, dfms.Corrupt) {
		t.Fatalf("download onto a corrupt partial: %v, want kind Corrupt", err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("corrupt partial file kept: %v", err)
	}
	if _, err := c.DownloadFile(ctx, e.ID, dst, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Error("download after a corrupt partial differs")
	}
}

func TestAutoRefresh(t *testing.T) {
	ctx := context.Background()
	srv := clienttest.NewServer(t, clienttest.Options{})
	var saved []client.Tokens
	rec := &recorder{}
	c := login(t, srv, rec, client.WithTokenSaver(func(tk client.Tokens) error { saved = append(saved, tk); return nil }))
	if len(saved) != 1 {
		t.Fatalf("login saved %d pairs, want 1", len(saved))
	}
	first := c.Tokens()

	// An expired access token: the first request answers 401, the client
	// refreshes once, saves the pair and repeats the request.
	c.SetTokens(client.Tokens{Access: srv.ExpiredAccessToken(t), Refresh: first.Refresh})
	rec.take()
	if _, err := c.Me(ctx); err != nil {
		t.Fatalf("Me with an expired access token: %v", err)
	}
	if got, want := rec.take(), []string{"GET /api/v1/auth/me", "POST /api/v1/auth/refresh", "GET /api/v1/auth/me"}; !slices.Equal(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
	if len(saved) != 2 || saved[1] != c.Tokens() || saved[1].Refresh == first.Refresh {
		t.Fatalf("refresh did not save a new pair: %d saved", len(saved))
	}

	// A stream that cannot be rewound is not sent with an expiring token:
	// the client refreshes first.
	c.SetTokens(client.Tokens{Access: srv.ExpiredAccessToken(t), Refresh: saved[1].Refresh})
	if _, err := c.Upload(ctx, client.Root, "s.txt", io.MultiReader(strings.NewReader("abc")), client.UploadOptions{}); err != nil {
		t.Fatalf("upload with an expired token: %v", err)
	}
	if got, want := rec.take(), []string{"POST /api/v1/auth/refresh", "POST /api/v1/files/upload"}; !slices.Equal(got, want) {
		t.Errorf("requests = %v, want %v", got, want)
	}
	// A seekable body is rewound and sent again after a 401.
	c.SetTokens(client.Tokens{Access: srv.ExpiredAccessToken(t), Refresh: saved[2].Refresh})
	if _, err := c.Upload(ctx, client.Root, "s.txt", strings.NewReader("abcd"), client.UploadOptions{Size: 4}); err != nil {
		t.Fatalf("upload with an expired token: %v", err)
	}
	if e, err := c.Resolve(ctx, "/s.txt"); err != nil || e.Size != 4 || e.Version != 2 {
		t.Errorf("re-sent upload = %+v, %v", e, err)
	}

	// A used-up refresh token ends the session: the 401 is reported.
	c.SetTokens(client.Tokens{Access: srv.ExpiredAccessToken(t), Refresh: first.Refresh})
	_, err := c.Me(ctx)
	var ae *client.Error
	if !dfms.Is(err, dfms.Unauthenticated) || !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("Me with a used refresh token: %v", err)
	}
}

// Clients that share a refresh token refresh once, not once each: a
// second use of a refresh token would revoke the login.
func TestConcurrentRefresh(t *testing.T) {
	ctx := context.Background()
	srv := clienttest.NewServer(t, clienttest.Options{})
	rec := &recorder{}
	c := login(t, srv, rec)
	c.SetTokens(client.Tokens{Access: srv.ExpiredAccessToken(t), Refresh: c.Tokens().Refresh})
	rec.take()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := c.Me(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := len(matching(rec.take(), "/auth/refresh")); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	srv := clienttest.NewServer(t, clienttest.Options{API: api.Config{MaxUploadSize: 1000}})
	c := login(t, srv, nil)
	if _, err := c.Mkdir(ctx, client.Root, "d"); err != nil {
		t.Fatal(err)
	}
	f, err := c.Upload(ctx, client.Root, "f", strings.NewReader("x"), client.UploadOptions{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := client.New(srv.URL)
	for _, tc := range []struct {
		name   string
		call   func() error
		kind   dfms.ErrorKind
		status int
		code   string
	}{
		{"missing id", func() error { _, err := c.Stat(ctx, 987654); return err }, dfms.NotExist, 404, "NOT_FOUND"},
		{"folder exists", func() error { _, err := c.Mkdir(ctx, client.Root, "d"); return err }, dfms.Exist, 409, "ALREADY_EXISTS"},
		{"bad name", func() error { _, err := c.Mkdir(ctx, client.Root, "a/b"); return err }, dfms.Invalid, 400, "VALIDATION_FAILED"},
		{"not a folder", func() error { _, err := c.List(ctx, f.ID); return err }, dfms.NotDir, 400, "NOT_A_FOLDER"},
		{"too large", func() error {
			_, err := c.Upload(ctx, client.Root, "big", bytes.NewReader(make([]byte, 2000)), client.UploadOptions{Size: 2000})
			return err
		}, dfms.TooLarge, 413, "TOO_LARGE"},
		{"bad password", func() error { _, err := anon.Login(ctx, clienttest.Email, "wrong password"); return err }, dfms.Unauthenticated, 401, "AUTH_INVALID_CREDENTIALS"},
		{"no token", func() error {
			c2, _ := client.New(srv.URL, client.WithTokens(client.Tokens{Access: "junk"}))
			_, err := c2.Me(ctx)
			return err
		}, dfms.Unauthenticated, 401, "AUTH_TOKEN_INVALID"},
		{"bad version", func() error { _, _, err := c.RestoreVersion(ctx, f.ID, 9); return err }, dfms.NotExist, 404, "NOT_FOUND"},
		{"missing upload", func() error { _, err := c.MultipartStatus(ctx, "nope"); return err }, dfms.NotExist, 404, "NOT_FOUND"},
		{"missing path", func() error { _, err := c.Resolve(ctx, "/d/none/x"); return err }, dfms.NotExist, 0, ""},
		{"file in path", func() error { _, err := c.Resolve(ctx, "/f/x"); return err }, dfms.NotDir, 0, ""},
		{"not logged in", func() error { _, err := anon.Me(ctx); return err }, dfms.Unauthenticated, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := dfms.KindOf(err); got != tc.kind {
				t.Fatalf("kind of %v = %v, want %v", err, got, tc.kind)
			}
			var ae *client.Error
			if tc.status == 0 {
				if errors.As(err, &ae) {
					t.Errorf("%v carries a server error, want none", err)
				}
				return
			}
			if !errors.As(err, &ae) {
				t.Fatalf("%v: no *client.Error", err)
			}
			if ae.Status != tc.status || ae.Code != tc.code || ae.Message == "" {
				t.Errorf("got %d %s %q, want %d %s", ae.Status, ae.Code, ae.Message, tc.status, tc.code)
			}
		})
	}
}

// Answers that are not the envelope (a proxy in front) and unreachable
// servers are classified too.
func TestErrorMappingOutsideTheAPI(t *testing.T) {
	ctx := context.Background()
	proxy := clienttest.NewServer(t, clienttest.Options{Wrap: func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		})
	}})
	c, _ := client.New(proxy.URL, client.WithTokens(client.Tokens{Access: "a", Refresh: "r"}))
	_, err := c.Me(ctx)
	var ae *client.Error
	if !dfms.Is(err, dfms.Unavailable) || !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "" || !strings.Contains(ae.Message, "bad gateway") {
		t.Errorf("502 from a proxy: %v (%+v)", err, ae)
	}
	proxy.HTTP.Close()
	if _, err := c.Me(ctx); !dfms.Is(err, dfms.Unavailable) {
		t.Errorf("unreachable server: %v, want Unavailable", err)
	}
	for _, bad := range []string{"", "ftp://x", "127.0.0.1:8080", "http://h/?q=1"} {
		if _, err := client.New(bad); !dfms.Is(err, dfms.Invalid) {
			t.Errorf("New(%q): %v, want Invalid", bad, err)
		}
	}
}

// A burst of concurrent requests, again and again, reuses the connections
// of the one before: a mount's reads ahead and uploads do not open (and,
// over TLS, handshake) a connection per request. Go's default transport
// kept 2 idle, and a 16-request burst opened 14 new ones every time.
func TestConnectionsReused(t *testing.T) {
	var mu sync.Mutex
	opened := 0
	gate := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-gate
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			opened++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	c := testkit.Must(client.New(srv.URL))(t)
	const burst, rounds = 16, 3
	for range rounds {
		var wg sync.WaitGroup
		var started sync.WaitGroup
		for range burst {
			wg.Add(1)
			started.Add(1)
			go func() {
				defer wg.Done()
				started.Done()
				if err := c.DoJSON(context.Background(), "test", client.Request{Method: http.MethodGet, Path: "/x", Anonymous: true}, nil); err != nil {
					t.Error(err)
				}
			}()
		}
		started.Wait()
		close(gate) // all in flight at once, or as many as got there
		wg.Wait()
		gate = make(chan struct{})
	}
	if opened > burst {
		t.Errorf("%d rounds of %d concurrent requests opened %d connections, want at most %d", rounds, burst, opened, burst)
	}
}

// An administrator manages the storage nodes; the errors have their
// kinds.
func TestNodes(t *testing.T) {
	ctx := context.Background()
	srv := clienttest.NewServer(t, clienttest.Options{Cluster: clienttest.AnyChange{}})
	adm := srv.LoginAs(t, srv.AddAdmin(t))
	w := 0
	n, err := adm.AddNode(ctx, client.NewNode{ID: "n1", Endpoint: "s3://key:secret@minio:9000/chunks", Weight: &w, Zone: "a"})
	if err != nil || n.ID != "n1" || n.State != "up" || n.Weight != 0 || n.Zone != "a" || strings.Contains(n.Endpoint, "secret") || n.CreatedAt.IsZero() {
		t.Fatalf("AddNode = %+v, %v", n, err)
	}
	if again, err := adm.AddNode(ctx, client.NewNode{ID: "n1", Endpoint: "s3://key:secret@minio:9000/chunks", Weight: &w, Zone: "a"}); err != nil || again.ID != "n1" {
		t.Fatalf("AddNode again = %+v, %v; want the node (a retry)", again, err)
	}
	_, err = adm.AddNode(ctx, client.NewNode{ID: "n1", Endpoint: "file:///srv/n1"})
	testkit.WantKind(t, err, dfms.Exist, "AddNode of a taken id")
	_, err = adm.AddNode(ctx, client.NewNode{ID: "n2", Endpoint: "grpc://chunks:9090"})
	testkit.WantKind(t, err, dfms.Invalid, "AddNode of a grpc endpoint")
	if n, err := adm.AddNode(ctx, client.NewNode{ID: "n2", Endpoint: "file:///srv/n2", State: "draining"}); err != nil || n.State != "draining" || n.Weight != dfms.DefaultNodeWeight {
		t.Fatalf("AddNode draining = %+v, %v", n, err)
	}

	zone := "b"
	if n, err := adm.UpdateNode(ctx, "n1", client.NodeChange{Zone: &zone}); err != nil || n.Zone != "b" || n.Weight != 0 {
		t.Fatalf("UpdateNode = %+v, %v", n, err)
	}
	_, err = adm.UpdateNode(ctx, "nope", client.NodeChange{Zone: &zone})
	testkit.WantKind(t, err, dfms.NotExist, "UpdateNode of a missing node")
	if n, err := adm.DrainNode(ctx, "n1"); err != nil || n.State != "draining" {
		t.Fatalf("DrainNode = %+v, %v", n, err)
	}
	if n, err := adm.UndrainNode(ctx, "n2"); err != nil || n.State != "up" {
		t.Fatalf("UndrainNode = %+v, %v", n, err)
	}
	testkit.WantKind(t, adm.RemoveNode(ctx, "n2"), dfms.Conflict, "RemoveNode of a node that is up")
	testkit.OK(t, adm.RemoveNode(ctx, "n1"))
	testkit.WantKind(t, adm.RemoveNode(ctx, "n1"), dfms.NotExist, "RemoveNode again")
	ns, err := adm.Nodes(ctx)
	if err != nil || len(ns) != 1 || ns[0].ID != "n2" || ns[0].LastProbe != nil {
		t.Fatalf("Nodes = %+v, %v", ns, err)
	}

	// Not an administrator; not a cluster.
	_, err = srv.Login(t).Nodes(ctx)
	testkit.WantKind(t, err, dfms.Permission, "Nodes as a user")
	single := clienttest.NewServer(t, clienttest.Options{})
	_, err = single.LoginAs(t, single.AddAdmin(t)).AddNode(ctx, client.NewNode{ID: "n1", Endpoint: "file:///srv/n1"})
	testkit.WantKind(t, err, dfms.Conflict, "AddNode without a cluster")
}
