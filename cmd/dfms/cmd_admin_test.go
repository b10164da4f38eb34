package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/api/client/clienttest"
)

func loginAs(t *testing.T, srv *clienttest.Server, email string) {
	t.Helper()
	withStdin(t, clienttest.Password+"\n", func() {
		must(t, "login", "--server", srv.URL, "--email", email, "--password-stdin")
	})
}

// nodeRow matches the table row of node id with the columns given (each
// a regular expression), up to the URL.
func nodeRow(t *testing.T, out, id string, cols ...string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `\s+` + strings.Join(cols, `\s+`) + `(\s|$)`)
	if !re.MatchString(out) || !strings.HasPrefix(out, "ID ") {
		t.Errorf("no row %s %v in:\n%s", id, cols, out)
	}
}

func TestAdminNodeCommands(t *testing.T) {
	env(t)
	srv := clienttest.NewServer(t, clienttest.Options{Cluster: clienttest.AnyChange{}})
	loginAs(t, srv, srv.AddAdmin(t))

	if out := must(t, "admin", "node", "list"); strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "ID") {
		t.Errorf("list of no nodes:\n%s", out)
	}
	out := must(t, "admin", "node", "add", "n1", "file:///srv/n1", "--zone", "a")
	nodeRow(t, out, "n1", "up", "100", "a", "0", "0", "0", "-", `file:///srv/n1$`)
	// The URL from standard input keeps the secret off the command line.
	withStdin(t, "s3://key:secret@minio:9000/chunks?secure=false\n", func() {
		out = must(t, "admin", "node", "add", "n2", "-", "--weight", "0", "--drain")
	})
	nodeRow(t, out, "n2", "draining", "0", "-", "0", "0", "0", "-", `s3://key:x+@minio:9000/chunks\?secure=false$`)
	out = must(t, "admin", "node", "ls")
	nodeRow(t, out, "n1", "up", "100", "a")
	nodeRow(t, out, "n2", "draining", "0")
	if strings.Contains(out, "secret") {
		t.Errorf("list shows a secret:\n%s", out)
	}
	var ns []client.Node
	if err := json.Unmarshal([]byte(must(t, "admin", "node", "list", "--json")), &ns); err != nil || len(ns) != 2 || ns[0].ID != "n1" || ns[1].State != "draining" {
		t.Errorf("list --json: %+v, %v", ns, err)
	}

	nodeRow(t, must(t, "admin", "node", "set", "n1", "--weight", "50", "--zone", "b"), "n1", "up", "50", "b")
	nodeRow(t, must(t, "admin", "node", "set", "n1", "--url", "file:///srv/n1-moved"), "n1", "up", "50", "b", "0", "0", "0", "-", `file:///srv/n1-moved$`)
	nodeRow(t, must(t, "admin", "node", "drain", "n1"), "n1", "draining")
	nodeRow(t, must(t, "admin", "node", "undrain", "n2"), "n2", "up")

	// Removal: drained first.
	code, _, errs := dfmsRun(t, "admin", "node", "remove", "n2")
	if code != 1 || !strings.Contains(errs, "drain it first") || strings.Count(errs, "\n") != 1 {
		t.Errorf("remove of a node that is up: exit %d, stderr %q", code, errs)
	}
	must(t, "admin", "node", "drain", "n2")
	if out := must(t, "admin", "node", "rm", "n2"); out != "removed storage node n2\n" {
		t.Errorf("remove: %q", out)
	}
	if out := must(t, "admin", "node", "list"); strings.Contains(out, "n2") {
		t.Errorf("list after the removal:\n%s", out)
	}

	// The server's refusals exit 1 with one line; bad usage exits 2.
	for _, args := range [][]string{
		{"admin", "node", "remove", "n2"},                       // no such node
		{"admin", "node", "add", "n1", "file:///srv/elsewhere"}, // taken
		{"admin", "node", "add", "n3", "grpc://chunks:9090"},    // not a node's store
		{"admin", "node", "add", "n/3", "file:///srv/n3"},
		{"admin", "node", "set", "n1", "--weight", "-1"},
		{"admin", "node", "drain", "n9"},
	} {
		code, _, errs := dfmsRun(t, args...)
		if code != 1 || !strings.HasPrefix(errs, "dfms: ") || strings.Count(errs, "\n") != 1 {
			t.Errorf("dfms %s: exit %d, stderr %q; want 1 and one line", strings.Join(args, " "), code, errs)
		}
	}
	for _, args := range [][]string{
		{"admin", "node", "add", "n3"},
		{"admin", "node", "set", "n1"}, // nothing to change
		{"admin", "node", "bogus"},
		{"admin", "node", "drain"},
		{"admin", "node", "list", "extra"},
		{"admin", "node", "add", "n3", "-"}, // nothing on standard input
	} {
		withStdin(t, "", func() {
			if code, _, errs := dfmsRun(t, args...); code != 2 {
				t.Errorf("dfms %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), code, errs)
			}
		})
	}

	// A user who is not an administrator; a server without a cluster.
	loginAs(t, srv, clienttest.Email)
	if code, _, errs := dfmsRun(t, "admin", "node", "list"); code != 1 || !strings.Contains(errs, "administrators only") {
		t.Errorf("list as a user: exit %d, stderr %q", code, errs)
	}
	single := clienttest.NewServer(t, clienttest.Options{})
	loginAs(t, single, single.AddAdmin(t))
	if code, _, errs := dfmsRun(t, "admin", "node", "add", "n1", "file:///srv/n1"); code != 1 || !strings.Contains(errs, "configure storage.nodes") {
		t.Errorf("add without a cluster: exit %d, stderr %q", code, errs)
	}
}
