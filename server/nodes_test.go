package server

import (
	"strings"
	"testing"

	"github.com/dfms/dfms"
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
