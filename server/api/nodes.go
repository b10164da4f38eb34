package api

// The storage nodes, as administrators manage them (/admin/nodes): list,
// add, change, drain, undrain, remove. The node table in the metadata
// store is the truth every server follows (server/cluster.go re-reads it
// every few seconds), so a change made here reaches the whole deployment;
// the handlers only check, write the table and log who did what.

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/dfms/dfms"
	apiclient "github.com/dfms/dfms/server/api/client"
	"github.com/dfms/dfms/server/meta"
)

// nodeOf is n as the API shows it, with what it holds.
func nodeOf(n dfms.StorageNode, u dfms.NodeUsage) apiclient.Node {
	v := apiclient.Node{ID: n.ID, Endpoint: dfms.RedactURL(n.URL), Weight: n.Weight, Zone: n.Zone, State: string(n.State),
		Failures: n.Failures, Chunks: u.Chunks, UsedBytes: u.Bytes, CreatedAt: n.CreatedAt.UTC()}
	if !n.LastProbe.IsZero() {
		t := n.LastProbe.UTC()
		v.LastProbe = &t
	}
	return v
}

func (a *API) adminNodes(c *gin.Context) {
	ns, err := a.nodes.ListNodes(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	usage, err := a.replicas.NodeUsage(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]apiclient.Node, len(ns))
	for i, n := range ns {
		out[i] = nodeOf(n, usage[n.ID])
	}
	c.JSON(http.StatusOK, gin.H{"nodes": out, "total": len(out)})
}

// replyNode answers status with node id as it is now.
func (a *API) replyNode(c *gin.Context, status int, id string) {
	ctx := c.Request.Context()
	ns, err := a.nodes.ListNodes(ctx)
	if err != nil {
		a.fail(c, err)
		return
	}
	usage, err := a.replicas.NodeUsage(ctx)
	if err != nil {
		a.fail(c, err)
		return
	}
	for _, n := range ns {
		if n.ID == id {
			c.JSON(status, gin.H{"node": nodeOf(n, usage[id])})
			return
		}
	}
	// Removed by someone else in the meantime.
	a.fail(c, dfms.E("api.node", dfms.NotExist, fmt.Errorf("no storage node %q", id)))
}

// clustered answers 409 and reports false unless the server keeps its
// chunks on storage nodes: a node registered on a server with a single
// store would never be used.
func (a *API) clustered(c *gin.Context) bool {
	if a.Cluster == nil {
		a.failCode(c, http.StatusConflict, "CONFLICT",
			"this server keeps its chunks in a single store (chunks.url): configure storage.nodes to run a cluster of storage nodes")
		return false
	}
	return true
}

// nodeParam returns the node id of the path, or answers 400.
func (a *API) nodeParam(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if err := dfms.CheckNodeID(id); err != nil {
		a.fail(c, err)
		return "", false
	}
	return id, true
}

// checkNodes asks the cluster whether the nodes may change as change
// (which gets a copy of them) changes them, and answers 409 if not.
func (a *API) checkNodes(c *gin.Context, change func([]dfms.StorageNode) []dfms.StorageNode) bool {
	ns, err := a.nodes.ListNodes(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return false
	}
	if err := a.Cluster.CheckChange(ns, change(slices.Clone(ns))); err != nil {
		a.fail(c, dfms.E("api.checkNodes", dfms.Conflict, err))
		return false
	}
	return true
}

// adminAddNode adds a node. Adding a node that exists with the same
// description (a retry) answers 200 and changes nothing; one with
// another description is a conflict: PATCH changes a node.
func (a *API) adminAddNode(c *gin.Context) {
	if !a.clustered(c) {
		return
	}
	var b apiclient.NewNode
	if !a.bindJSON(c, &b, false) {
		return
	}
	n := dfms.StorageNode{ID: b.ID, URL: b.Endpoint, Weight: dfms.DefaultNodeWeight, Zone: b.Zone, State: dfms.NodeState(b.State)}
	if b.Weight != nil {
		n.Weight = *b.Weight
	}
	if n.State != "" && n.State != dfms.NodeUp && n.State != dfms.NodeDraining {
		a.bad(c, "a new node is up or draining, not %q", b.State)
		return
	}
	ctx := c.Request.Context()
	err := a.nodes.AddNode(ctx, n)
	if dfms.Is(err, dfms.Exist) {
		if a.sameNode(c, n) {
			a.replyNode(c, http.StatusOK, n.ID)
		}
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	a.Log.Info("storage node added", "node", n.ID, "url", dfms.RedactURL(n.URL), "weight", n.Weight, "zone", n.Zone,
		"state", string(n.State), "by", user(c).Email)
	a.replyNode(c, http.StatusCreated, n.ID)
}

// sameNode reports whether the node with n's id is described as n is, and
// answers 409 if it is not.
func (a *API) sameNode(c *gin.Context, n dfms.StorageNode) bool {
	ns, err := a.nodes.ListNodes(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return false
	}
	for _, k := range ns {
		if k.ID == n.ID && k.URL == n.URL && k.Weight == n.Weight && k.Zone == n.Zone && (n.State == "" || k.State == n.State) {
			return true
		}
	}
	a.failCode(c, http.StatusConflict, "ALREADY_EXISTS",
		fmt.Sprintf("storage node %s exists, described otherwise: change it with PATCH /api/v1/admin/nodes/%s (dfms admin node set)", n.ID, n.ID))
	return false
}

func (a *API) adminPatchNode(c *gin.Context) {
	if !a.clustered(c) {
		return
	}
	id, ok := a.nodeParam(c)
	if !ok {
		return
	}
	var b apiclient.NodeChange
	if !a.bindJSON(c, &b, false) {
		return
	}
	if b.Weight != nil && *b.Weight < 0 {
		a.bad(c, "negative weight %d", *b.Weight)
		return
	}
	if (b.Endpoint != nil || b.Weight != nil || b.Zone != nil) && !a.checkNodes(c, func(ns []dfms.StorageNode) []dfms.StorageNode {
		for i := range ns {
			if ns[i].ID != id {
				continue
			}
			if b.Endpoint != nil {
				ns[i].URL = *b.Endpoint
			}
			if b.Weight != nil {
				ns[i].Weight = *b.Weight
			}
			if b.Zone != nil {
				ns[i].Zone = *b.Zone
			}
		}
		return ns
	}) {
		return
	}
	n, err := a.nodes.UpdateNode(c.Request.Context(), id, meta.NodeChange{URL: b.Endpoint, Weight: b.Weight, Zone: b.Zone})
	if err != nil {
		a.fail(c, err)
		return
	}
	a.Log.Info("storage node changed", "node", id, "url", dfms.RedactURL(n.URL), "weight", n.Weight, "zone", n.Zone, "by", user(c).Email)
	a.replyNode(c, http.StatusOK, id)
}

func (a *API) adminDrainNode(c *gin.Context)   { a.drainNode(c, true) }
func (a *API) adminUndrainNode(c *gin.Context) { a.drainNode(c, false) }

func (a *API) drainNode(c *gin.Context, drain bool) {
	if !a.clustered(c) {
		return
	}
	id, ok := a.nodeParam(c)
	if !ok {
		return
	}
	n, err := a.nodes.SetNodeDraining(c.Request.Context(), id, drain)
	if err != nil {
		a.fail(c, err)
		return
	}
	a.Log.Info("storage node "+map[bool]string{true: "drained", false: "undrained"}[drain], "node", id, "state", string(n.State),
		"by", user(c).Email)
	a.replyNode(c, http.StatusOK, id)
}

// adminRemoveNode removes a node that is draining and holds no copies
// (the metadata store checks both in the transaction that removes it).
func (a *API) adminRemoveNode(c *gin.Context) {
	if !a.clustered(c) {
		return
	}
	id, ok := a.nodeParam(c)
	if !ok {
		return
	}
	if !a.checkNodes(c, func(ns []dfms.StorageNode) []dfms.StorageNode {
		out := ns[:0]
		for _, n := range ns {
			if n.ID != id {
				out = append(out, n)
			}
		}
		return out
	}) {
		return
	}
	if err := a.nodes.RemoveNode(c.Request.Context(), id); err != nil {
		a.fail(c, err)
		return
	}
	a.Log.Info("storage node removed", "node", id, "by", user(c).Email)
	c.Status(http.StatusNoContent)
}
