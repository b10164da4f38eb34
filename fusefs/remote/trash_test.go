package remote_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/remote"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/api/client/clienttest"
)

// More files than one request holds are trashed in several, each file
// once, with its outcome in order.
func TestTrashFilesInBatches(t *testing.T) {
	ctx := t.Context()
	srv := clienttest.NewServer(t, clienttest.Options{})
	b := remote.New(srv.LoginAs(t, srv.AddUser(t).Email))
	root := testkit.Must(b.Root(ctx))(t).ID
	const n = 1030
	var ids []dfms.EntryID
	var at []time.Time
	for i := range n {
		e := testkit.Must(b.CreateFile(ctx, root, fmt.Sprintf("f%04d", i), 0o644, 0, 0))(t)
		ids = append(ids, e.ID)
		at = append(at, time.Time{})
	}
	ids = append(ids, ids[3]) // in the second request, trashed by the first
	at = append(at, time.Time{})
	errs := testkit.Must(b.TrashFiles(ctx, ids, at))(t)
	if len(errs) != n+1 {
		t.Fatalf("%d outcomes for %d files", len(errs), n+1)
	}
	for i, err := range errs[:n] {
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
	}
	testkit.WantKind(t, errs[n], dfms.NotExist, "a file trashed by an earlier request")
	if left := testkit.Must(b.ReadDir(ctx, root))(t); len(left) != 0 {
		t.Fatalf("%d files left", len(left))
	}
}
