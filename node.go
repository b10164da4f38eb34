package dfms

import "time"

// NodeState is a storage node's state, as the health monitor and the
// operator set it. The values are stored.
type NodeState string

// The node states. Chunks are placed on nodes that are up or suspect (one
// failed probe is not an outage); a node that is down or draining is
// skipped by placement, and a draining node's chunks move away.
const (
	NodeUp       NodeState = "up"
	NodeSuspect  NodeState = "suspect"
	NodeDown     NodeState = "down"
	NodeDraining NodeState = "draining"
)

// Valid reports whether s is one of the states above.
func (s NodeState) Valid() bool {
	switch s {
	case NodeUp, NodeSuspect, NodeDown, NodeDraining:
		return true
	}
	return false
}

// Placeable reports whether new replicas may be placed on a node in state
// s: it is up, or suspect.
func (s NodeState) Placeable() bool { return s == NodeUp || s == NodeSuspect }

// DefaultNodeWeight is the weight of a node declared without one.
const DefaultNodeWeight = 100

// StorageNode is a storage node: a chunk store that holds chunk replicas,
// with its share of chunks and its failure domain.
type StorageNode struct {
	ID string
	// URL names the node's chunk store (file:// or s3://). It may hold a
	// secret: show it with RedactURL.
	URL string
	// Weight is the node's share of chunks relative to the other nodes'
	// (DefaultNodeWeight for an ordinary node); 0 places nothing on it.
	Weight int
	// Zone is the node's failure domain: replicas of a chunk go to
	// distinct zones whenever there are enough of them. Empty is a zone
	// of its own name, like any other.
	Zone      string
	State     NodeState
	Failures  int       // consecutive failed probes
	LastProbe time.Time // zero if never probed
	CreatedAt time.Time
}

// Replica is a copy of a chunk on a storage node.
type Replica struct {
	Hash Hash
	Node string
}

// NodeUsage is what a storage node holds, as the metadata records it.
type NodeUsage struct {
	Chunks int64 // replicas on the node
	Bytes  int64 // their total size
}
