package local_test

import (
	"testing"

	"github.com/dfms/dfms/fusefs/local"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/fusefs/vfs/vfstest"
	"github.com/dfms/dfms/server/api/client/clienttest"
)

// The in-process backend, over the file layer of a real server (SQLite
// metadata, a disk chunk store), passes the backend conformance suite.
// Each case gets an owner of its own on one server.
func TestConformance(t *testing.T) {
	srv := clienttest.NewServer(t, clienttest.Options{})
	vfstest.Run(t, func(t *testing.T) vfs.Backend {
		return local.New(srv.Files, srv.AddUser(t).ID)
	})
}
