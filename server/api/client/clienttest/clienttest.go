// Package clienttest runs the real DFMS API (SQLite metadata and a disk
// chunk store under a test's temporary directory) behind an httptest
// server, for tests of the client and of the CLI.
package clienttest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/api"
	"github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/auth"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// The account every Server has.
const (
	Email    = "alice@example.com"
	Password = "correct horse battery"
)

// Server is a running API.
type Server struct {
	URL   string
	API   *api.API
	Auth  *auth.Service
	Keys  *auth.Keys
	Files *files.Service
	User  meta.User // the account Email/Password
	HTTP  *httptest.Server

	users atomic.Int64 // accounts AddUser created
}

// Options configure NewServer.
type Options struct {
	API  api.Config
	Auth auth.Config // BcryptCost defaults to 4 (fast tests)
	// PartSize, if set, is the part size the API suggests to multipart
	// clients (API.PartSize), for callers that set nothing else of API.
	PartSize int64
	// Wrap, if set, wraps the API's handler (to observe or break requests).
	Wrap func(http.Handler) http.Handler
	// Cluster, if set, makes the server one that keeps its chunks on
	// storage nodes, as far as the admin API can tell: it lets
	// administrators add, change and remove nodes (api.Deps.Cluster).
	// The chunks stay in the one store under the test's directory.
	Cluster api.Membership
}

// AnyChange is an api.Membership that allows every change of the storage
// nodes.
type AnyChange struct{}

// CheckChange implements api.Membership.
func (AnyChange) CheckChange(before, after []dfms.StorageNode) error { return nil }

// NewServer starts the API and creates the account Email/Password. It
// stops when the test ends.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	st := testkit.NewStack(t, testkit.Options{NoUser: true})
	keys, err := auth.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if o.Auth.BcryptCost == 0 {
		o.Auth.BcryptCost = 4
	}
	as := auth.New(st.Meta, keys, o.Auth)
	if o.PartSize != 0 {
		o.API.PartSize = o.PartSize
	}
	a := api.New(api.Deps{Files: st.Files, Auth: as, Keys: keys, Cluster: o.Cluster, Log: slog.New(slog.DiscardHandler), Version: "test"}, o.API)
	var h http.Handler = a.Handler()
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := as.CreateUser(context.Background(), Email, Password, "Alice", meta.RoleUser, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &Server{URL: srv.URL, API: a, Auth: as, Keys: keys, Files: st.Files, User: u, HTTP: srv}
}

// ExpiredAccessToken returns an access token for the account, signed with
// the server's key, that expired a minute ago (past the verifier's 30 s
// leeway): what a client holds after a long pause.
func (s *Server) ExpiredAccessToken(t testing.TB) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":   s.User.ID.String(),
		"iss":   auth.DefaultIssuer,
		"aud":   []string{auth.DefaultAudience},
		"iat":   now.Add(-20 * time.Minute).Unix(),
		"nbf":   now.Add(-20 * time.Minute).Unix(),
		"exp":   now.Add(-time.Minute).Unix(),
		"jti":   "expired-test-token",
		"typ":   "access",
		"email": s.User.Email,
		"role":  s.User.Role,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = s.Keys.KID
	signed, err := tok.SignedString(s.Keys.Private)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// Login returns a client of the server logged in as the account.
func (s *Server) Login(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	return s.LoginAs(t, Email, opts...)
}

// LoginAs returns a client of the server logged in as the account email,
// whose password is Password.
func (s *Server) LoginAs(t testing.TB, email string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(s.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), email, Password); err != nil {
		t.Fatal(err)
	}
	return c
}

// AddAdmin creates an administrator, with an address of its own
// (returned) and the password Password.
func (s *Server) AddAdmin(t testing.TB) string {
	t.Helper()
	email := fmt.Sprintf("admin%d@example.com", s.users.Add(1))
	if _, err := s.Auth.CreateUser(context.Background(), email, Password, "Admin", meta.RoleAdmin, 0); err != nil {
		t.Fatal(err)
	}
	return email
}

// AddUser creates another account, with an address of its own and the
// password Password: an owner for a test that needs one apart from User.
func (s *Server) AddUser(t testing.TB) meta.User {
	t.Helper()
	email := fmt.Sprintf("user%d@example.com", s.users.Add(1))
	u, err := s.Auth.CreateUser(context.Background(), email, Password, "User", meta.RoleUser, 0)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
