package local_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/fusefs/vfs/vfstest"
	"github.com/dfms/dfms/server/api/client/clienttest"
	"github.com/dfms/dfms/server/meta"
)

// The in-process backend, over the file layer of a real server (SQLite
// metadata, a disk chunk store), passes the backend conformance suite.
// Each case gets an owner of its own on one server.
func TestConformance(t *testing.T) {
	srv := clienttest.NewServer(t, clienttest.Options{})
	owners := 0
	vfstest.Run(t, func(t *testing.T) vfs.Backend {
		owners++
		u, err := srv.Auth.CreateUser(context.Background(), fmt.Sprintf("owner%d@example.com", owners), clienttest.Password, "Owner", meta.RoleUser, 0)
		if err != nil {
			t.Fatal(err)
		}
		return local.New(srv.Files, u.ID)
	})
}
