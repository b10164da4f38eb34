package files_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// The chunk index writes of an upload may become durable late, but never
// after the answer: the last write before a chunk upload or a file write
// returns is a durable one, which makes those before it durable too (a
// store's commits are ordered). A machine crash before it undoes only
// what was not acknowledged.
func TestUploadsEndWithADurableWrite(t *testing.T) {
	var rec *recordingMeta
	s := testkit.NewStack(t, testkit.Options{
		WrapMeta: func(m meta.Store) meta.Store { rec = &recordingMeta{Store: m}; return rec },
	})
	check := func(what string, writes []string) {
		t.Helper()
		if len(writes) == 0 {
			t.Fatalf("%s made no metadata write", what)
		}
		if last := writes[len(writes)-1]; last != "OwnChunks" && last != "CommitVersion" {
			t.Fatalf("%s: writes %v; want a durable OwnChunks or CommitVersion last", what, writes)
		}
		lazy := 0
		for _, w := range writes {
			if strings.HasSuffix(w, "(lazy)") {
				lazy++
			}
		}
		if lazy == 0 {
			t.Fatalf("%s: writes %v; want the index writes before the last one lazy", what, writes)
		}
	}
	data := testkit.RandBytes(50, 3<<20)
	rec.take()
	cs := []dfms.ChunkData{{Hash: dfms.Sum(data[:1000]), Data: data[:1000]}, {Hash: dfms.Sum(data[1000:9000]), Data: data[1000:9000]}}
	if _, err := s.Files.PutChunks(ctx, s.User.ID, cs, false); err != nil {
		t.Fatal(err)
	}
	check("PutChunks", rec.take())
	for i := range 2 { // new bytes, then the same again (kept, not stored)
		if _, err := s.Files.Write(ctx, files.WriteRequest{Owner: s.User.ID, Parent: s.User.Root, Name: fmt.Sprint("f", i), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprint("write ", i), rec.take())
	}
}
