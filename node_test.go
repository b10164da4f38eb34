package dfms

import (
	"strings"
	"testing"
)

func TestStorageNodeCheck(t *testing.T) {
	good := StorageNode{ID: "n-1.a_B", URL: "s3://key:secret@minio:9000/chunks/pre?secure=false", Weight: 100, Zone: "rack 1 · eu"}
	if err := good.Check(); err != nil {
		t.Fatalf("Check(%+v) = %v", good, err)
	}
	for _, n := range []StorageNode{
		{ID: "n1", URL: "file:///var/lib/dfms/n1"},
		{ID: "n1", URL: "file://localhost/srv/n1", Weight: 0, State: NodeDraining},
		{ID: strings.Repeat("x", MaxNodeIDLen), URL: "s3://h/b", Zone: strings.Repeat("z", MaxNodeZoneLen)},
	} {
		if err := n.Check(); err != nil {
			t.Errorf("Check(%+v) = %v, want nil", n, err)
		}
	}
	for _, tc := range []struct {
		name string
		n    StorageNode
	}{
		{"no id", StorageNode{URL: "file:///a"}},
		{"long id", StorageNode{ID: strings.Repeat("x", MaxNodeIDLen+1), URL: "file:///a"}},
		{"slash in id", StorageNode{ID: "a/b", URL: "file:///a"}},
		{"space in id", StorageNode{ID: "a b", URL: "file:///a"}},
		{"non-ASCII id", StorageNode{ID: "nœud", URL: "file:///a"}},
		{"no URL", StorageNode{ID: "n"}},
		{"grpc", StorageNode{ID: "n", URL: "grpc://chunks:9090"}},
		{"http", StorageNode{ID: "n", URL: "http://minio:9000/b"}},
		{"plain path", StorageNode{ID: "n", URL: "/var/lib/dfms/n"}},
		{"relative file", StorageNode{ID: "n", URL: "file:rel/dir"}},
		{"file with a host", StorageNode{ID: "n", URL: "file://other/dir"}},
		{"file with options", StorageNode{ID: "n", URL: "file:///dir?x=1"}},
		{"s3 without a bucket", StorageNode{ID: "n", URL: "s3://k:s@minio:9000/?secure=false"}},
		{"s3 without a host", StorageNode{ID: "n", URL: "s3:///bucket"}},
		{"malformed", StorageNode{ID: "n", URL: "s3://k:s@[::1/b"}},
		{"long URL", StorageNode{ID: "n", URL: "file:///" + strings.Repeat("d", MaxNodeURLLen)}},
		{"negative weight", StorageNode{ID: "n", URL: "file:///a", Weight: -1}},
		{"long zone", StorageNode{ID: "n", URL: "file:///a", Zone: strings.Repeat("z", MaxNodeZoneLen+1)}},
		{"control in zone", StorageNode{ID: "n", URL: "file:///a", Zone: "a\nb"}},
		{"bad UTF-8 zone", StorageNode{ID: "n", URL: "file:///a", Zone: "\xff"}},
		{"bad state", StorageNode{ID: "n", URL: "file:///a", State: "gone"}},
	} {
		err := tc.n.Check()
		if !Is(err, Invalid) {
			t.Errorf("%s: Check(%+v) = %v, want kind Invalid", tc.name, tc.n, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the secret: %v", tc.name, err)
		}
	}
	if err := (StorageNode{ID: "n", URL: "ftp://user:secret@h/b"}).Check(); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Check of a URL with a secret = %v, want an error without the secret", err)
	}
}
