package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/placement/store/grpcstore"
)

func TestOpenDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct {
		url, dir string
	}{
		{"file://" + filepath.ToSlash(filepath.Join(dir, "a")), filepath.Join(dir, "a")},
		{"file://localhost" + filepath.ToSlash(filepath.Join(dir, "b")), filepath.Join(dir, "b")},
		{"file://" + filepath.ToSlash(filepath.Join(dir, "with space")), filepath.Join(dir, "with space")},
		{"file://" + filepath.ToSlash(filepath.Join(dir, "pct%20d")), filepath.Join(dir, "pct d")},
		{filepath.Join(dir, "c"), filepath.Join(dir, "c")},
		{"relative/d", filepath.Join(dir, "relative", "d")},
		{"./e:f", filepath.Join(dir, "e:f")},
	} {
		s, err := Open(ctx, tc.url)
		if err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
			continue
		}
		if _, ok := s.(*disk.Disk); !ok {
			t.Errorf("Open(%q): got %T, want *disk.Disk", tc.url, s)
		}
		data := []byte(tc.url)
		h := dfms.Sum(data)
		if err := s.Put(ctx, h, data); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(tc.dir); err != nil || !fi.IsDir() {
			t.Errorf("Open(%q): directory %s: got %v, want it created", tc.url, tc.dir, err)
		}
		if got, err := s.Get(ctx, h, nil); err != nil || !bytes.Equal(got, data) {
			t.Errorf("Open(%q): Get: got %q, %v; want %q", tc.url, got, err, data)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestOpenInvalid(t *testing.T) {
	for _, raw := range []string{
		"",
		"file://host/var/chunks",
		"file:relative",
		"file://",
		"file:///var/chunks?sync=no",
		"ftp://host/chunks",
		"mem:",
		"a:b",
		"s3://AK:SECRET@host/bucket?bogus=1",
		"s3://AK:SECRET@host:port/bucket",
		"s3://AK:SECRET@[::1/bucket",
		"grpc://host",
		"grpc://host:9091?ca=/etc/ca.pem",
		"grpcs://host:9091?bogus=1",
		"grpc://AK:SECRET@host:9091",
	} {
		s, err := Open(context.Background(), raw)
		if !dfms.Is(err, dfms.Invalid) {
			t.Errorf("Open(%q): got %v, %v (kind %v); want kind %v", raw, s, err, dfms.KindOf(err), dfms.Invalid)
			continue
		}
		if s != nil {
			t.Errorf("Open(%q): got store %v with error %v, want nil", raw, s, err)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("Open(%q): error %q shows the secret", raw, err)
		}
	}
}

func TestHasScheme(t *testing.T) {
	for s, want := range map[string]bool{
		"s3://x": true, "file:///x": true, "a:b": true, "x+y.z-1:": true,
		"/abs": false, "rel": false, "./a:b": false, "1a:b": false, ":x": false, "a/b:c": false,
	} {
		if got := hasScheme(s); got != want {
			t.Errorf("hasScheme(%q): got %v, want %v", s, got, want)
		}
	}
}

// grpc:// and grpcs:// open a chunk service's client, without connecting.
func TestOpenGRPC(t *testing.T) {
	for _, raw := range []string{"grpc://127.0.0.1:9091", "grpcs://chunks.example:9443"} {
		s, err := Open(context.Background(), raw)
		if err != nil {
			t.Errorf("Open(%q): %v", raw, err)
			continue
		}
		if c, ok := s.(*grpcstore.Client); !ok || c.String() != raw {
			t.Errorf("Open(%q): got %T %v, want a *grpcstore.Client", raw, s, s)
		}
		s.Close()
	}
}
