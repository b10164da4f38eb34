package metatest

import (
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

// Special files (FIFOs, sockets, devices) are entries with a kind and,
// for devices, a number, and no content: they are created, found, listed,
// changed, renamed, trashed and restored like files, and never take a
// version.
func testSpecialFiles(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	made := map[string]dfms.Entry{}
	for _, e := range []dfms.Entry{
		{Name: "fifo", Kind: dfms.KindFIFO, Mode: 0o640},
		{Name: "sock", Kind: dfms.KindSocket, Mode: 0o755},
		{Name: "null", Kind: dfms.KindCharDev, Mode: 0o666, Rdev: 0x103},
		{Name: "sda", Kind: dfms.KindBlockDev, Mode: 0o660, Rdev: 0x800, UID: 7, GID: 8},
	} {
		e.Owner, e.Parent = u.ID, u.Root
		got := testkit.Must(s.CreateEntry(ctx, e))(t)
		if got.Kind != e.Kind || got.Mode != e.Mode || got.Rdev != e.Rdev || got.UID != e.UID || got.GID != e.GID || got.Size != 0 {
			t.Fatalf("created %+v, want %+v", got, e)
		}
		if again := testkit.Must(s.GetEntry(ctx, u.ID, got.ID))(t); again.Kind != e.Kind || again.Rdev != e.Rdev {
			t.Fatalf("GetEntry %s = %+v", e.Name, again)
		}
		made[e.Name] = got
	}
	list := testkit.Must(s.ListDir(ctx, u.ID, u.Root, meta.ListOptions{}))(t)
	if len(list) != 4 {
		t.Fatalf("listed %v, want the 4 special files", names(list))
	}
	for _, e := range list {
		if m := made[e.Name]; e.Kind != m.Kind || e.Rdev != m.Rdev {
			t.Fatalf("listed %+v, want %+v", e, m)
		}
	}

	for _, c := range []struct {
		what string
		e    dfms.Entry
	}{
		{"a FIFO with a device number", dfms.Entry{Name: "bad1", Kind: dfms.KindFIFO, Rdev: 1}},
		{"a file with a device number", dfms.Entry{Name: "bad2", Kind: dfms.KindFile, Rdev: 1}},
		{"kind 8", dfms.Entry{Name: "bad3", Kind: 8}},
		{"kind 0", dfms.Entry{Name: "bad4", Kind: 0}},
	} {
		c.e.Owner, c.e.Parent = u.ID, u.Root
		_, err := s.CreateEntry(ctx, c.e)
		testkit.WantKind(t, err, dfms.Invalid, c.what)
	}
	if _, err := s.Lookup(ctx, u.ID, u.Root, "bad1"); !dfms.Is(err, dfms.NotExist) {
		t.Fatalf("a refused create left an entry: %v", err)
	}

	// No content.
	storeChunks(t, s, []dfms.ChunkRef{chunk("special", 10)})
	_, _, err := s.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "fifo",
		Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{chunk("special", 10)}}, SHA256: dfms.Sum([]byte("x"))})
	testkit.WantKind(t, err, dfms.Invalid, "a commit onto a FIFO")

	// Attributes, names and the trash.
	mode, uid := uint32(0o600), uint32(9)
	if e := testkit.Must(s.SetAttr(ctx, u.ID, made["null"].ID, dfms.SetAttr{Mode: &mode, UID: &uid}))(t); e.Mode != 0o600 || e.UID != 9 || e.Rdev != 0x103 {
		t.Fatalf("after chmod and chown: %+v", e)
	}
	d := mkdir(t, s, u.ID, u.Root, "d")
	_, _, err = s.Rename(ctx, u.ID, made["sock"].ID, d.ID, "s", false)
	ok(t, err)
	if e := testkit.Must(s.Lookup(ctx, u.ID, d.ID, "s"))(t); e.ID != made["sock"].ID || e.Kind != dfms.KindSocket {
		t.Fatalf("renamed socket: %+v", e)
	}
	_, _, err = s.Rename(ctx, u.ID, made["fifo"].ID, u.Root, "sda", true) // over the block device
	ok(t, err)
	if e := testkit.Must(s.GetEntry(ctx, u.ID, made["sda"].ID))(t); e.Live() {
		t.Fatalf("the device renamed over is still live: %+v", e)
	}
	ok(t, s.Trash(ctx, u.ID, made["null"].ID))
	if e := testkit.Must(s.Restore(ctx, u.ID, made["null"].ID))(t); e.Kind != dfms.KindCharDev || e.Rdev != 0x103 || !e.Live() {
		t.Fatalf("restored device: %+v", e)
	}
}
