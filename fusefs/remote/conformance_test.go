package remote_test

import (
	"testing"

	"github.com/dfms/dfms/fusefs/remote"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/fusefs/vfs/vfstest"
	"github.com/dfms/dfms/server/api/client/clienttest"
)

// The REST backend, over a real API, passes the backend conformance
// suite. Each case gets an owner of its own on one server, and a client
// logged in as that owner.
func TestConformance(t *testing.T) {
	srv := clienttest.NewServer(t, clienttest.Options{})
	vfstest.Run(t, func(t *testing.T) vfs.Backend {
		return remote.New(srv.LoginAs(t, srv.AddUser(t).Email))
	})
}
