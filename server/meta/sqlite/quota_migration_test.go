package sqlite_test

import (
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Migration 0012 charges what users kept before it: the bytes of their
// extended attributes as used, the parts of their open uploads as held.
// Its down file gives the attributes' bytes back.
func TestQuotaMigrationCountsExistingBytes(t *testing.T) {
	s, u := openWithUser(t)
	f, err := s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "f", Kind: dfms.KindFile, Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetXattr(ctx, u.ID, f.ID, "user.é", make([]byte, 40), dfms.XattrAny); err != nil { // 7-byte name
		t.Fatal(err)
	}
	part := dfms.ChunkRef{Hash: dfms.Sum([]byte("part")), Size: 25}
	if err := s.ReserveChunks(ctx, []dfms.ChunkRef{part}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddChunks(ctx, []dfms.ChunkRef{part}); err != nil {
		t.Fatal(err)
	}
	up, err := s.CreateUpload(ctx, meta.Upload{Owner: u.ID, Parent: u.Root, Name: "g", PartSize: 25}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPart(ctx, u.ID, up.ID, 1, 25, dfms.Hash{}, dfms.Manifest{Chunks: []dfms.ChunkRef{part}}); err != nil {
		t.Fatal(err)
	}
	runMigration(t, s, "0012_quota.down.sql")
	var used int64
	if err := s.DB().QueryRow(`SELECT used_bytes FROM users WHERE id = ?`, u.ID).Scan(&used); err != nil || used != 0 {
		t.Fatalf("used bytes before 0012: %d, %v; want 0", used, err)
	}
	runMigration(t, s, "0012_quota.up.sql")
	got, err := s.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UsedBytes != 47 || got.HeldBytes != 25 {
		t.Fatalf("after 0012: used %d, held %d; want 47 (the attribute), 25 (the part)", got.UsedBytes, got.HeldBytes)
	}
	if u2, err := s.GetUpload(ctx, u.ID, up.ID); err != nil || u2.Deadline.Sub(u2.CreatedAt) < u2.ExpiresAt.Sub(u2.CreatedAt) {
		t.Fatalf("after 0012 the upload is %+v, %v; want a deadline no earlier than its expiry", u2, err)
	}
}
