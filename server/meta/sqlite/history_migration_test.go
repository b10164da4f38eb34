package sqlite_test

import (
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Migration 0016 links a history to the file it continues; its down file
// (for a downgrade) puts each replaced file in the trash with all its
// versions, where the release before finds and restores it.
func TestHistoryMigrationDownKeepsReplacedFiles(t *testing.T) {
	s, u := openWithUser(t)
	commit := func(name string) dfms.Entry {
		t.Helper()
		c := dfms.ChunkRef{Hash: dfms.Sum([]byte(name)), Size: uint32(len(name))}
		if err := s.ReserveChunks(ctx, []dfms.ChunkRef{c}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddChunks(ctx, []dfms.ChunkRef{c}); err != nil {
			t.Fatal(err)
		}
		e, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: name, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{c}}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	old, tmp := commit("doc"), commit("doc.swp")
	if _, _, err := s.Rename(ctx, u.ID, tmp.ID, u.Root, "doc", true); err != nil {
		t.Fatal(err)
	}
	if trash, _, err := s.ListTrash(ctx, u.ID, 0, 0); err != nil || len(trash) != 0 {
		t.Fatalf("trash = %v, %v; want empty", trash, err)
	}
	runMigration(t, s, "0016_history.down.sql")
	runMigration(t, s, "0016_history.up.sql")
	trash, _, err := s.ListTrash(ctx, u.ID, 0, 0)
	if err != nil || len(trash) != 1 || trash[0].ID != old.ID {
		t.Fatalf("trash after a downgrade = %v, %v; want the replaced file", trash, err)
	}
	if vs, err := s.ListVersions(ctx, u.ID, tmp.ID); err != nil || len(vs) != 1 || vs[0].Entry != tmp.ID {
		t.Fatalf("the moved file's history after a downgrade = %+v, %v; want its own version", vs, err)
	}
	if vs, err := s.ListVersions(ctx, u.ID, old.ID); err != nil || len(vs) != 1 || vs[0].Entry != old.ID {
		t.Fatalf("the replaced file's history after a downgrade = %+v, %v; want its own version", vs, err)
	}
}
