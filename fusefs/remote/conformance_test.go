package remote_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dfms/dfms/fusefs/remote"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/fusefs/vfs/vfstest"
	"github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/api/client/clienttest"
	"github.com/dfms/dfms/server/meta"
)

// The REST backend, over a real API, passes the backend conformance
// suite. Each case gets an owner of its own on one server, and a client
// logged in as that owner.
func TestConformance(t *testing.T) {
	srv := clienttest.NewServer(t, clienttest.Options{})
	owners := 0
	vfstest.Run(t, func(t *testing.T) vfs.Backend {
		ctx := context.Background()
		owners++
		email := fmt.Sprintf("owner%d@example.com", owners)
		if _, err := srv.Auth.CreateUser(ctx, email, clienttest.Password, "Owner", meta.RoleUser, 0); err != nil {
			t.Fatal(err)
		}
		c, err := client.New(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Login(ctx, email, clienttest.Password); err != nil {
			t.Fatal(err)
		}
		return remote.New(c)
	})
}
