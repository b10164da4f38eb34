package server

import (
	"fmt"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement"
)

// nodeRules judges changes of the storage nodes made through the admin
// API (api.Membership) for a server that runs a cluster.
type nodeRules struct {
	// replicas and quorum are storage.replicas and write_quorum (0: the
	// defaults), as placement.Cluster reads them.
	replicas, quorum int
	// configured are the nodes of storage.nodes, which the server
	// registers again, as the file describes them, at every start.
	configured []NodeConfig
}

// configuredNode returns the configuration of node id, if it has one.
func (r nodeRules) configuredNode(id string) (NodeConfig, bool) {
	for _, n := range r.configured {
		if n.ID == id {
			return n, true
		}
	}
	return NodeConfig{}, false
}

// CheckChange refuses a change after which placement.Cluster would refuse
// the membership (every server would keep its old ring, and none could
// start), and a change to a configured node, which the next start of this
// server would undo (a removed node would come back up). It repeats the
// rules of placement.Cluster.SetNodes.
func (r nodeRules) CheckChange(before, after []dfms.StorageNode) error {
	weighted := 0
	for _, n := range after {
		if n.Weight > 0 {
			weighted++
		}
	}
	rep := r.replicas
	if rep == 0 {
		rep = placement.DefaultReplicas(weighted)
	}
	w := r.quorum
	if w == 0 {
		w = rep
	}
	switch {
	case weighted == 0:
		return fmt.Errorf("no storage node would be left with a weight: chunks could be placed nowhere")
	case rep > weighted:
		return fmt.Errorf("%d storage nodes would be left with a weight, fewer than the %d copies of each chunk (storage.replicas)", weighted, rep)
	case w > rep:
		return fmt.Errorf("storage.write_quorum %d would exceed the %d copies of each chunk", w, rep)
	}
	now := make(map[string]dfms.StorageNode, len(after))
	for _, n := range after {
		now[n.ID] = n
	}
	for _, old := range before {
		cfg, ok := r.configuredNode(old.ID)
		if !ok {
			continue
		}
		n, kept := now[old.ID]
		switch {
		case !kept:
			return fmt.Errorf("storage node %s is in the storage.nodes of this server's configuration, which would register it again at its next start: remove it from there first", old.ID)
		case n.URL != old.URL || n.Weight != old.Weight || n.Zone != old.Zone:
			return fmt.Errorf("storage node %s is described by the storage.nodes of this server's configuration (url %s, weight %d, zone %q), which its next start would apply again: change it there",
				old.ID, dfms.RedactURL(cfg.URL), cfg.Weight, cfg.Zone)
		}
	}
	return nil
}
