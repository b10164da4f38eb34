package remote_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/remote"
	"github.com/dfms/dfms/server/api/client/clienttest"
)

// The server lists a directory a page at a time: the remote mount's
// ReadDir follows the pages, so a directory larger than one page is listed
// whole, each entry once.
func TestReadDirFollowsPages(t *testing.T) {
	srv := clienttest.NewServer(t, clienttest.Options{})
	ctx := context.Background()
	m := srv.Files.Meta()
	const n = 2345 // more than two pages of the server's maximum
	ids, err := m.ReserveEntryIDs(ctx, srv.User.ID, n)
	if err != nil {
		t.Fatal(err)
	}
	es := make([]dfms.Entry, n)
	for i, id := range ids {
		es[i] = dfms.Entry{ID: id, Owner: srv.User.ID, Parent: srv.User.Root, Name: fmt.Sprintf("f%05d", i), Kind: dfms.KindFile, Mode: 0o644}
	}
	if _, err := m.CreateEntries(ctx, es); err != nil {
		t.Fatal(err)
	}
	b := remote.New(srv.Login(t))
	got, err := b.ReadDir(ctx, srv.User.Root)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.Name] {
			t.Fatalf("ReadDir listed %q twice", e.Name)
		}
		seen[e.Name] = true
	}
	if len(got) != n {
		t.Fatalf("ReadDir listed %d entries, want %d", len(got), n)
	}
}
