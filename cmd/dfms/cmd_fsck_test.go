package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/fsck"
)

// dfms fsck on the embedded backends of a data directory: 0 on a clean
// store, 1 and the files that need a lost chunk on a damaged one (with
// --repair too: a lost chunk cannot be repaired), 2 for bad usage.
func TestFsckCommand(t *testing.T) {
	data := t.TempDir()
	var out, errb strings.Builder
	if code := run([]string{"fsck", "--data", data}, &out, &errb); code != 0 || !strings.Contains(out.String(), "no damage found") {
		t.Fatalf("clean store: code %d, %q %q", code, out.String(), errb.String())
	}

	// A version whose chunk is recorded as stored but has no bytes.
	ctx := context.Background()
	m := testkit.Must(server.OpenMeta(ctx, "sqlite://"+filepath.Join(data, "meta.db")))(t)
	u := testkit.Must(m.CreateUser(ctx, meta.User{Email: "fsck@example.com", Active: true}))(t)
	ref := dfms.ChunkRef{Hash: dfms.Sum([]byte("never stored")), Size: 12}
	testkit.OK(t, m.ReserveChunks(ctx, []dfms.ChunkRef{ref}))
	testkit.OK(t, m.AddChunks(ctx, []dfms.ChunkRef{ref}))
	_, v, err := m.CommitVersion(ctx, meta.CommitRequest{Owner: u.ID, Parent: u.Root, Name: "f", Mode: 0o644,
		Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{ref}}})
	testkit.OK(t, err)
	testkit.OK(t, m.Close())

	for _, args := range [][]string{{"--json"}, {"--json", "--repair"}} {
		out.Reset()
		errb.Reset()
		if code := run(append([]string{"fsck", "--data", data}, args...), &out, &errb); code != 1 {
			t.Fatalf("%v: code %d, want 1; %s", args, code, errb.String())
		}
		var rep fsck.Report
		testkit.OK(t, json.Unmarshal([]byte(out.String()), &rep))
		if rep.Clean || rep.Damage.LostChunks != 1 || rep.Damage.Unrepaired != 1 || len(rep.LostChunks[0].Files) != 1 ||
			rep.LostChunks[0].Files[0].Path != "/f" || rep.LostChunks[0].Files[0].Version != v.ID {
			t.Fatalf("%v: report %s", args, out.String())
		}
		if !strings.Contains(errb.String(), "fsck found 1 damaged things") {
			t.Fatalf("%v: stderr %q", args, errb.String())
		}
	}

	for _, args := range [][]string{{"--no-such-flag"}, {"--chunks", "grpc://127.0.0.1:9091"}, {"--metadata", "mysql://x"}} {
		if code := run(append([]string{"fsck", "--data", data}, args...), &out, &errb); code != 2 {
			t.Errorf("%v: code %d, want 2", args, code)
		}
	}
}
