package server

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/api/client"
)

// The admin API refuses a change of the storage nodes after which the
// cluster could not run, or which this server's configuration would undo
// at its next start.
func TestNodeRules(t *testing.T) {
	node := func(id string, weight int) dfms.StorageNode {
		return dfms.StorageNode{ID: id, URL: "file:///srv/" + id, Weight: weight}
	}
	three := []dfms.StorageNode{node("a", 100), node("b", 100), node("c", 100)}
	without := func(ns []dfms.StorageNode, id string) []dfms.StorageNode {
		var out []dfms.StorageNode
		for _, n := range ns {
			if n.ID != id {
				out = append(out, n)
			}
		}
		return out
	}
	with := func(ns []dfms.StorageNode, n dfms.StorageNode) []dfms.StorageNode {
		out := without(ns, n.ID)
		return append(out, n)
	}
	configured := []NodeConfig{{ID: "a", URL: "file:///srv/a", Weight: 100}}
	for _, tc := range []struct {
		name          string
		rules         nodeRules
		before, after []dfms.StorageNode
		refused       string // a part of the reason; "" if allowed
	}{
		{"remove one of three, default copies", nodeRules{}, three, without(three, "c"), ""},
		{"remove down to one, default copies", nodeRules{}, three[:2], three[:1], ""},
		{"remove the last", nodeRules{}, three[:1], nil, "no storage node"},
		{"weight 0 on the last", nodeRules{}, three[:1], []dfms.StorageNode{node("a", 0)}, "no storage node"},
		{"remove below R", nodeRules{replicas: 3}, three, without(three, "c"), "fewer than the 3 copies"},
		{"weight 0 below R", nodeRules{replicas: 3}, three, with(three, node("c", 0)), "fewer than the 3 copies"},
		{"remove above R", nodeRules{replicas: 2}, three, without(three, "c"), ""},
		{"quorum above the default R", nodeRules{quorum: 2}, three[:2], three[:1], "write_quorum 2"},
		{"remove a configured node", nodeRules{configured: configured}, three, without(three, "a"), "storage.nodes of this server's configuration"},
		{"reweigh a configured node", nodeRules{configured: configured}, three, with(three, node("a", 50)), "change it there"},
		{"rezone a configured node", nodeRules{configured: configured}, three,
			with(three, dfms.StorageNode{ID: "a", URL: "file:///srv/a", Weight: 100, Zone: "z"}), "change it there"},
		{"change another node", nodeRules{configured: configured}, three, with(three, node("b", 50)), ""},
		{"drain a configured node", nodeRules{configured: configured}, three,
			with(three, dfms.StorageNode{ID: "a", URL: "file:///srv/a", Weight: 100, State: dfms.NodeDraining}), ""},
	} {
		err := tc.rules.CheckChange(tc.before, tc.after)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s: got %v, want a refusal that says %q", tc.name, err, tc.refused)
		}
	}
}

// clusterConfig is testConfig with chunks on storage nodes of file://
// directories, one copy each.
func clusterConfig(t *testing.T, ids ...string) Config {
	var c Config
	c.DataDir = filepath.Join(t.TempDir(), "data")
	c.Addr = "127.0.0.1:0"
	c.Auth.BcryptCost = 4
	c.Admin.Email, c.Admin.Password = "admin@example.com", "a long password"
	c.Storage.Replicas = 1
	for _, id := range ids {
		c.Storage.Nodes = append(c.Storage.Nodes, NodeConfig{ID: id, URL: "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), id))})
	}
	c.Defaults()
	return c
}

// The admin API changes the node table of a running cluster, which the
// server's next refresh applies to its ring; the configured nodes are
// the configuration's.
func TestClusterNodesThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	cfg := clusterConfig(t, "n1", "n2")
	s := testkit.Must(New(ctx, cfg, quiet))(t)
	c := testkit.Must(client.New(serve(t, s)))(t)
	testkit.Must(c.Login(ctx, cfg.Admin.Email, cfg.Admin.Password))(t)
	members := func() []string {
		t.Helper()
		testkit.OK(t, s.local.cluster.refresh(ctx)) // what follow does every 10 s
		var ids []string
		for _, m := range s.local.cluster.Members() {
			ids = append(ids, m.ID+":"+string(m.State))
		}
		return ids
	}

	n3 := "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "n3"))
	testkit.Must(c.AddNode(ctx, client.NewNode{ID: "n3", Endpoint: n3, Zone: "z"}))(t)
	if got := members(); !slices.Equal(got, []string{"n1:up", "n2:up", "n3:up"}) {
		t.Fatalf("members after an add: %v", got)
	}
	testkit.Must(c.DrainNode(ctx, "n3"))(t)
	if got := members(); !slices.Equal(got, []string{"n1:up", "n2:up", "n3:draining"}) {
		t.Fatalf("members after a drain: %v", got)
	}
	testkit.OK(t, c.RemoveNode(ctx, "n3"))
	if got := members(); !slices.Equal(got, []string{"n1:up", "n2:up"}) {
		t.Fatalf("members after the removal: %v", got)
	}

	// The configured nodes are changed in the configuration.
	w := 5
	_, err := c.UpdateNode(ctx, "n1", client.NodeChange{Weight: &w})
	testkit.WantKind(t, err, dfms.Conflict, "re-weighing a configured node")
	testkit.Must(c.DrainNode(ctx, "n1"))(t)
	err = c.RemoveNode(ctx, "n1")
	testkit.WantKind(t, err, dfms.Conflict, "removal of a configured node")
	if err == nil || !strings.Contains(err.Error(), "storage.nodes") {
		t.Errorf("removal of a configured node: %v, want it to name storage.nodes", err)
	}
	if got := members(); !slices.Equal(got, []string{"n1:draining", "n2:up"}) {
		t.Fatalf("members after refused changes: %v", got)
	}
}

// A server that keeps its chunks in one store lists no nodes and adds
// none.
func TestSingleStoreRefusesNodes(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.Admin.Email, cfg.Admin.Password = "admin@example.com", "a long password"
	s := testkit.Must(New(ctx, cfg, quiet))(t)
	c := testkit.Must(client.New(serve(t, s)))(t)
	testkit.Must(c.Login(ctx, cfg.Admin.Email, cfg.Admin.Password))(t)
	if ns, err := c.Nodes(ctx); err != nil || len(ns) != 0 {
		t.Fatalf("Nodes = %v, %v; want none", ns, err)
	}
	_, err := c.AddNode(ctx, client.NewNode{ID: "n1", Endpoint: "file:///srv/n1"})
	testkit.WantKind(t, err, dfms.Conflict, "AddNode on a single store")
}
