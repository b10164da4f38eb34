package files_test

import (
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// A client's manifest that gives a stored chunk another size than it has is
// bad input (kind Invalid) whichever way it is committed, not corruption:
// the stored bytes are intact. Nothing is committed.
func TestCommitWrongChunkSize(t *testing.T) {
	forEach(t, files.Options{}, func(t *testing.T, e *env) {
		data := testkit.RandBytes(11, 5000)
		h := dfms.Sum(data)
		if _, err := e.svc.PutChunk(ctx, e.user.ID, h, data); err != nil {
			t.Fatal(err)
		}
		commits := []struct {
			name string
			opts files.CommitOptions
		}{
			{"Commit verified", files.CommitOptions{Verify: true}},
			{"Commit", files.CommitOptions{}},
		}
		for _, c := range commits {
			for _, size := range []uint32{uint32(len(data)) - 1, uint32(len(data)) + 1, 1} {
				for _, sum := range []dfms.Hash{{}, dfms.Sum(data)} {
					req := meta.CommitRequest{Owner: e.user.ID, Parent: e.user.Root, Name: "f", CreatedBy: e.user.ID, SHA256: sum,
						Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{{Hash: h, Size: size}}}}
					_, err := e.svc.Commit(ctx, req, c.opts)
					if !dfms.Is(err, dfms.Invalid) {
						t.Errorf("%s of a %d-byte chunk as %d bytes (checksum %v): got %v (kind %q), want kind Invalid",
							c.name, len(data), size, !sum.IsZero(), err, dfms.KindOf(err))
					}
				}
			}
		}
		if _, err := e.meta.Lookup(ctx, e.user.ID, e.user.Root, "f"); !dfms.Is(err, dfms.NotExist) {
			t.Errorf("after the refused commits: Lookup f = %v, want NotExist", err)
		}
		if ch, err := e.meta.GetChunk(ctx, h); err != nil || ch.Refs != 0 {
			t.Errorf("after the refused commits: chunk %+v, %v; want no references", ch, err)
		}
		if u, err := e.meta.GetUser(ctx, e.user.ID); err != nil || u.UsedBytes != 0 {
			t.Errorf("after the refused commits: used bytes %d, %v; want 0", u.UsedBytes, err)
		}
	})
}
