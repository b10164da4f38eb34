package testkit_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// RandBytes is deterministic, and a shorter run is a prefix of a longer one.
func TestRandBytes(t *testing.T) {
	a, b := testkit.RandBytes(1, 1000), testkit.RandBytes(1, 1003)
	if !bytes.Equal(a, b[:1000]) {
		t.Fatal("RandBytes(1, 1000) is not a prefix of RandBytes(1, 1003)")
	}
	if bytes.Equal(a, testkit.RandBytes(2, 1000)) {
		t.Fatal("seeds 1 and 2 give the same bytes")
	}
}

// A stack stores and reads back a file of its user, through the wrappers
// it was given.
func TestNewStack(t *testing.T) {
	var wrapped bool
	s := testkit.NewStack(t, testkit.Options{WrapMeta: func(m meta.Store) meta.Store { wrapped = true; return m }})
	if !wrapped || s.User.Email != testkit.Email || s.Disk == nil || s.ChunkDir == "" {
		t.Fatalf("stack: wrapped %v, user %q, disk %v, chunk dir %q", wrapped, s.User.Email, s.Disk, s.ChunkDir)
	}
	ctx := context.Background()
	data := testkit.RandBytes(3, 5000)
	res, err := s.Files.Write(ctx, files.WriteRequest{Owner: s.User.ID, Parent: s.User.Root, Name: "f", Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := s.Files.ReadFile(ctx, s.User.ID, res.Entry.ID, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read back %d bytes, %v", out.Len(), err)
	}
	_, err = s.Meta.Lookup(ctx, s.User.ID, s.User.Root, "missing")
	testkit.WantKind(t, err, dfms.NotExist, "lookup of %q", "missing")
	n := 0
	testkit.Eventually(t, time.Second, func() bool { n++; return n == 3 }, "the third call")
}
