package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/sqlite"
)

// BenchmarkCommitEdit commits new versions of a file of 256 chunks, each
// differing from the one before in one chunk: the metadata side of a
// one-byte edit of a 256 MiB file through the mount.
func BenchmarkCommitEdit(b *testing.B) {
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	u, err := s.CreateUser(ctx, meta.User{Email: "bench@example.com", Active: true})
	if err != nil {
		b.Fatal(err)
	}
	// Other files' chunks, so that the edited file's rows are spread over
	// the table as in a store in use.
	for i := range 40 {
		refs := make([]dfms.ChunkRef, 256)
		for j := range refs {
			refs[j] = dfms.ChunkRef{Hash: dfms.Sum([]byte(fmt.Sprintf("other %d %d", i, j))), Size: 1 << 20}
		}
		if err := s.ReserveChunks(ctx, refs); err != nil {
			b.Fatal(err)
		}
		if err := s.AddChunks(ctx, refs); err != nil {
			b.Fatal(err)
		}
	}
	m := dfms.Manifest{Chunks: make([]dfms.ChunkRef, 256)}
	for j := range m.Chunks {
		m.Chunks[j] = dfms.ChunkRef{Hash: dfms.Sum([]byte(fmt.Sprint("chunk ", j))), Size: 1 << 20}
	}
	first := func(i int) {
		m.Chunks[128] = dfms.ChunkRef{Hash: dfms.Sum([]byte(fmt.Sprint("edit ", i))), Size: 1 << 20}
		if err := s.ReserveChunks(ctx, m.Chunks); err != nil {
			b.Fatal(err)
		}
		if err := s.AddChunks(ctx, m.Chunks); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "big", Manifest: m}); err != nil {
			b.Fatal(err)
		}
	}
	first(-1)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		m.Chunks[128] = dfms.ChunkRef{Hash: dfms.Sum([]byte(fmt.Sprint("edit ", i))), Size: 1 << 20}
		if err := s.ReserveChunks(ctx, m.Chunks[128:129]); err != nil {
			b.Fatal(err)
		}
		if err := s.AddChunks(ctx, m.Chunks[128:129]); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "big", Manifest: m}); err != nil {
			b.Fatal(err)
		}
	}
}
