package sqlite_test

import (
	"fmt"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Migration 0008 rebuilds the chunks table in write order; its down file
// rebuilds it keyed by hash. Both keep every row as it was, and the hash
// stays unique.
func TestChunksMigrationKeepsRows(t *testing.T) {
	s, u := openWithUser(t)
	refs := make([]dfms.ChunkRef, 40)
	for i := range refs {
		refs[i] = dfms.ChunkRef{Hash: dfms.Sum([]byte(fmt.Sprint("c", i))), Size: uint32(10 + i)}
	}
	if err := s.ReserveChunks(ctx, refs); err != nil {
		t.Fatal(err)
	}
	if err := s.AddChunks(ctx, refs[:30]); err != nil { // the last ten stay pending
		t.Fatal(err)
	}
	m := dfms.Manifest{Chunks: append(refs[:20:20], refs[5])}
	if _, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "f", Manifest: m}); err != nil {
		t.Fatal(err)
	}
	before := make([]meta.Chunk, len(refs))
	for i, r := range refs {
		var err error
		if before[i], err = s.GetChunk(ctx, r.Hash); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"0008_chunks_in_write_order.down.sql", "0008_chunks_in_write_order.up.sql"} {
		runMigration(t, s, name)
		for i, r := range refs {
			got, err := s.GetChunk(ctx, r.Hash)
			if err != nil {
				t.Fatalf("after %s: %v", name, err)
			}
			if got != before[i] {
				t.Fatalf("after %s, chunk %d is %+v, was %+v", name, i, got, before[i])
			}
		}
		if _, err := s.DB().Exec(`INSERT INTO chunks (hash, size, created_at) VALUES (?, 1, 0)`, refs[0].Hash[:]); err == nil {
			t.Fatalf("after %s, a second row with the same hash was accepted", name)
		}
	}
	// The store works on the rebuilt table.
	if _, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "g", Manifest: m}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.GetChunk(ctx, refs[5].Hash); err != nil || c.Refs != 4 {
		t.Fatalf("chunk 5 after a second commit: %+v, %v (want 4 references)", c, err)
	}
}
