package client

import (
	"context"
	"net/http"

	"github.com/dfms/dfms"
)

// The storage nodes, as administrators manage them (/admin/nodes). Every
// method needs an administrator's login (kind dfms.Permission otherwise);
// a server that keeps its chunks in a single store lists no nodes and
// refuses changes with kind dfms.Conflict.

// Nodes lists the storage nodes, by id.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out struct {
		Nodes []Node `json:"nodes"`
	}
	err := c.DoJSON(ctx, "client.Nodes", Request{Method: http.MethodGet, Path: "/api/v1/admin/nodes", Retry: true}, &out)
	return out.Nodes, err
}

// AddNode adds a storage node and returns it. Adding one that exists,
// described as n, returns it (a retry); one described otherwise fails
// with kind dfms.Exist.
func (c *Client) AddNode(ctx context.Context, n NewNode) (Node, error) {
	return c.node(ctx, "client.AddNode", Request{Method: http.MethodPost, Path: "/api/v1/admin/nodes", JSON: n, Retry: true})
}

// UpdateNode changes what ch sets of node id and returns the node.
func (c *Client) UpdateNode(ctx context.Context, id string, ch NodeChange) (Node, error) {
	return c.node(ctx, "client.UpdateNode", Request{Method: http.MethodPatch, Path: nodePath(id), JSON: ch, Retry: true})
}

// DrainNode drains node id (nothing new is placed on it) and returns it.
func (c *Client) DrainNode(ctx context.Context, id string) (Node, error) {
	return c.node(ctx, "client.DrainNode", Request{Method: http.MethodPost, Path: nodePath(id) + "/drain", Retry: true})
}

// UndrainNode ends the drain of node id and returns it: up, or suspect if
// its last health probe failed.
func (c *Client) UndrainNode(ctx context.Context, id string) (Node, error) {
	return c.node(ctx, "client.UndrainNode", Request{Method: http.MethodPost, Path: nodePath(id) + "/undrain", Retry: true})
}

// RemoveNode removes node id, which must be draining and hold no chunk
// copies (kind dfms.Conflict otherwise, with the server's reason).
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	return c.DoJSON(ctx, "client.RemoveNode", Request{Method: http.MethodDelete, Path: nodePath(id)}, nil)
}

func (c *Client) node(ctx context.Context, op dfms.Op, r Request) (Node, error) {
	var out struct {
		Node Node `json:"node"`
	}
	err := c.DoJSON(ctx, op, r, &out)
	return out.Node, err
}

func nodePath(id string) string { return "/api/v1/admin/nodes/" + escape(id) }
