package s3

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/placement/store/storetest"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Options
	}{
		{"s3://AK:SK@127.0.0.1:57070/chunks?secure=false&region=eu-west-1",
			Options{Endpoint: "127.0.0.1:57070", Bucket: "chunks", AccessKey: "AK", SecretKey: "SK", Insecure: true, Region: "eu-west-1"}},
		{"s3://s3.example.com/chunks",
			Options{Endpoint: "s3.example.com", Bucket: "chunks"}},
		{"s3://AK:S%2FK%40@host:9000/chunks/node-1/a/?secure=true&lookup=path",
			Options{Endpoint: "host:9000", Bucket: "chunks", Prefix: "node-1/a", AccessKey: "AK", SecretKey: "S/K@", Lookup: "path"}},
		{"S3://host/bkt//p", Options{Endpoint: "host", Bucket: "bkt", Prefix: "p"}},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseURL(u)
		if err != nil {
			t.Errorf("ParseURL(%s): %v", tc.url, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseURL(%s):\ngot  %+v\nwant %+v", tc.url, got, tc.want)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, raw := range []string{
		"http://host/bucket",
		"s3:bucket",
		"s3:///bucket",
		"s3://host",
		"s3://host/",
		"s3://AK@host/bucket",
		"s3://AK:@host/bucket",
		"s3://:SK@host/bucket",
		"s3://host/Bad_Bucket",
		"s3://host/b",
		"s3://host/bucket/a//b",
		"s3://host/bucket?secure=maybe",
		"s3://host/bucket?secure=false&secure=true",
		"s3://host/bucket?region=",
		"s3://host/bucket?lookup=sideways",
		"s3://host/bucket?sekure=false",
		"s3://host/bucket?%zz",
		"s3://host/bucket#frag",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("url.Parse(%s): %v", raw, err)
		}
		o, err := ParseURL(u)
		if !dfms.Is(err, dfms.Invalid) {
			t.Errorf("ParseURL(%s): got %+v, %v (kind %v); want kind %v", raw, o, err, dfms.KindOf(err), dfms.Invalid)
		}
	}
}

func TestParseURLRedactsSecret(t *testing.T) {
	u, _ := url.Parse("s3://AK:VERYSECRET@host/bucket?bogus=1")
	_, err := ParseURL(u)
	if err == nil || strings.Contains(err.Error(), "VERYSECRET") {
		t.Errorf("got error %v, want one that does not show the secret", err)
	}
}

func TestNewInvalid(t *testing.T) {
	for _, o := range []Options{
		{Bucket: "chunks"},
		{Endpoint: "host"},
		{Endpoint: "host", Bucket: "chunks", Prefix: "/p"},
		{Endpoint: "host", Bucket: "chunks", MaxRetries: -1},
	} {
		if _, err := New(context.Background(), o); !dfms.Is(err, dfms.Invalid) {
			t.Errorf("New(%+v): got %v, want kind %v", o, err, dfms.Invalid)
		}
	}
}

// TestUnreachable needs no server: nothing listens on port 1.
func TestUnreachable(t *testing.T) {
	_, err := New(context.Background(), Options{Endpoint: "127.0.0.1:1", Bucket: "chunks", Insecure: true, MaxRetries: 1})
	if !dfms.Is(err, dfms.Unavailable) {
		t.Errorf("New on a closed port: got %v (kind %v), want kind %v", err, dfms.KindOf(err), dfms.Unavailable)
	}
}

func TestKey(t *testing.T) {
	h := dfms.Sum([]byte("abc"))
	x := h.String()
	for _, prefix := range []string{"", "p/q/"} {
		s := &Store{prefix: prefix}
		k := s.key(h)
		if want := prefix + x[:2] + "/" + x[2:4] + "/" + x; k != want {
			t.Errorf("key: got %q, want %q", k, want)
		}
		if got, ok := s.parseKey(k); !ok || got != h {
			t.Errorf("parseKey(%q): got %s, %v; want %s, true", k, got, ok, h)
		}
		for _, bad := range []string{
			prefix + x[:2] + "/" + x[2:4] + "/" + strings.ToUpper(x),
			prefix + "00/00/" + x,
			prefix + x[:2] + "/" + x[2:4] + "/" + x + "x",
			prefix + x[:2] + "/" + x[2:4] + "/",
			"other/" + x[:2] + "/" + x[2:4] + "/" + x,
		} {
			if bad == k {
				continue
			}
			if got, ok := s.parseKey(bad); ok {
				t.Errorf("parseKey(%q): got %s, true; want false", bad, got)
			}
		}
	}
}

// openURL opens the store at rawURL.
func openURL(t testing.TB, rawURL string) *Store {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), u)
	if err != nil {
		t.Fatalf("Open(%s): %v", u.Redacted(), err)
	}
	return s
}

// testBucket returns the URL of a fresh bucket, which is emptied and removed
// when the test ends.
func testBucket(t testing.TB) string {
	t.Helper()
	raw := testenv.S3(t)
	t.Cleanup(func() { removeBucket(t, raw) })
	return raw
}

func removeBucket(t testing.TB, raw string) {
	ctx := context.Background()
	u, _ := url.Parse(raw)
	o, err := ParseURL(u)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	s, err := New(ctx, o)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer s.Close()
	// Test buckets are small: list, then remove one by one.
	var keys []string
	for obj := range s.core.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Errorf("cleanup: list %s: %v", s.bucket, obj.Err)
			return
		}
		keys = append(keys, obj.Key)
	}
	for _, k := range keys {
		if err := s.core.RemoveObject(ctx, s.bucket, k, minio.RemoveObjectOptions{}); err != nil {
			t.Errorf("cleanup: remove %s: %v", k, err)
		}
	}
	if err := s.core.RemoveBucket(ctx, s.bucket); err != nil {
		t.Errorf("cleanup: remove bucket %s: %v", s.bucket, err)
	}
}

// withPrefix returns the store URL raw with a key prefix added.
func withPrefix(t testing.TB, raw, prefix string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path += "/" + prefix
	return u.String()
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dfms.ChunkStore { return openURL(t, testBucket(t)) })
	storetest.RunReopen(t, func(t *testing.T) func(t *testing.T) dfms.ChunkStore {
		raw := withPrefix(t, testBucket(t), "some/prefix")
		return func(t *testing.T) dfms.ChunkStore { return openURL(t, raw) }
	})
}

// TestPrefixes checks that stores on one bucket with different prefixes do
// not see each other's chunks, nor the bucket's other keys.
func TestPrefixes(t *testing.T) {
	ctx := context.Background()
	raw := testBucket(t)
	root := openURL(t, raw)
	defer root.Close()
	a := openURL(t, withPrefix(t, raw, "a"))
	defer a.Close()
	b := openURL(t, withPrefix(t, raw, "a/b"))
	defer b.Close()

	stored := map[*Store]dfms.Hash{}
	for i, s := range []*Store{root, a, b} {
		data := []byte{byte(i)}
		h := dfms.Sum(data)
		if err := s.Put(ctx, h, data); err != nil {
			t.Fatal(err)
		}
		stored[s] = h
	}
	// A foreign object, in the layout's shape but in the wrong shard.
	x := dfms.Sum(nil).String()
	if _, err := root.core.PutObject(ctx, root.bucket, "00/00/"+x, bytes.NewReader(nil), 0, "", "", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	for s, h := range stored {
		var got []dfms.Hash
		if err := s.Walk(ctx, func(ci dfms.ChunkInfo) error { h := ci.Hash; got = append(got, h); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != h {
			t.Errorf("%s: Walk: got %v, want [%s]", s, got, h)
		}
	}
}

func TestPutMismatch(t *testing.T) {
	ctx := context.Background()
	s := openURL(t, testBucket(t))
	defer s.Close()
	h := dfms.Sum([]byte("right"))
	err := s.Put(ctx, h, []byte("wrong"))
	if !dfms.Is(err, dfms.Invalid) {
		t.Errorf("Put of bytes that do not match the hash: got %v (kind %v), want kind %v", err, dfms.KindOf(err), dfms.Invalid)
	}
	if _, err := s.Stat(ctx, h); !dfms.Is(err, dfms.NotExist) {
		t.Errorf("Stat after the refused Put: got %v, want kind %v", err, dfms.NotExist)
	}
}

func TestBadCredentials(t *testing.T) {
	raw := testenv.S3(t)
	u, _ := url.Parse(raw)
	u.User = url.UserPassword("nobody", "wrongsecret")
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	o.MaxRetries = 1
	_, err = New(context.Background(), o)
	if !dfms.Is(err, dfms.Permission) {
		t.Errorf("New with wrong credentials: got %v (kind %v), want kind %v", err, dfms.KindOf(err), dfms.Permission)
	}
}

// TestBucketExists checks that opening twice (the second time finding the
// bucket) works, as does opening concurrently.
func TestBucketExists(t *testing.T) {
	raw := testBucket(t)
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			u, _ := url.Parse(raw)
			s, err := Open(context.Background(), u)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	s := openURL(t, raw)
	s.Close()
}

func TestNoSuchBucket(t *testing.T) {
	ctx := context.Background()
	raw := testenv.S3(t)
	s := openURL(t, raw)
	defer s.Close()
	if err := s.core.RemoveBucket(ctx, s.bucket); err != nil {
		t.Fatal(err)
	}
	h := dfms.Sum(nil)
	_, err := s.Get(ctx, h, nil)
	if !dfms.Is(err, dfms.Unavailable) {
		t.Errorf("Get from a removed bucket: got %v (kind %v), want kind %v", err, dfms.KindOf(err), dfms.Unavailable)
	}
	if err := s.Put(ctx, h, nil); !dfms.Is(err, dfms.Unavailable) {
		t.Errorf("Put to a removed bucket: got %v (kind %v), want kind %v", err, dfms.KindOf(err), dfms.Unavailable)
	}
}

// benchStore opens a store on a fresh bucket for a benchmark, or skips.
func benchStore(b *testing.B) *Store {
	s := openURL(b, testBucket(b))
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkPut1MiB overwrites one object: an S3 PUT always sends the bytes.
func BenchmarkPut1MiB(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	data, h := storetest.BenchChunk()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := s.Put(ctx, h, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet1MiB(b *testing.B) {
	storetest.BenchGet(b, benchStore(b), 0)
}

// The parallel benchmarks run 16 requests at a time per GOMAXPROCS, as the
// replicated store and the read-ahead do.
func BenchmarkPut1MiBParallel(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	data, h := storetest.BenchChunk()
	b.SetBytes(int64(len(data)))
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Put(ctx, h, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGet1MiBParallel(b *testing.B) {
	storetest.BenchGet(b, benchStore(b), 16)
}

// TestConnectionReuse checks that Get and Put leave their connection
// reusable (a body not read to its end would force a new one per request).
func TestConnectionReuse(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(testBucket(t))
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTransport(DefaultMaxIdleConnsPerHost)
	var dials, closing atomic.Int64
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	o.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := tr.RoundTrip(r)
		if err == nil && resp.Close {
			closing.Add(1)
		}
		return resp, err
	})
	s, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()

	for _, size := range []int{0, 1000, 1 << 20} {
		data := bytes.Repeat([]byte{'x'}, size)
		h := dfms.Sum(data)
		before := dials.Load()
		for range 10 {
			if err := s.Put(ctx, h, data); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, h, nil); err != nil {
				t.Fatal(err)
			}
		}
		if closing.Load() > 0 {
			t.Skip("the server closes every connection (versitygw does unless started with --keep-alive)")
		}
		if n := dials.Load() - before; n > 1 {
			t.Errorf("%d bytes: got %d connections for 10 Puts and 10 Gets, want at most 1", size, n)
		}
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
