package dfms

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

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

// Limits of a storage node's description.
const (
	MaxNodeIDLen   = 128  // bytes
	MaxNodeZoneLen = 128  // bytes
	MaxNodeURLLen  = 4096 // bytes
)

// CheckNodeID reports, with kind Invalid, whether id cannot name a storage
// node: an id is 1 to MaxNodeIDLen bytes of ASCII letters, digits, '.',
// '_' and '-', so that it reads the same in a URL path, a log line, a
// metric label and a shell.
func CheckNodeID(id string) error {
	const op Op = "dfms.CheckNodeID"
	if id == "" || len(id) > MaxNodeIDLen {
		return Errorf(op, Invalid, fmt.Sprintf("a node id is 1 to %d bytes", MaxNodeIDLen))
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return E(op, Invalid, fmt.Errorf("node id %q: only letters, digits, '.', '_' and '-' are allowed", id))
		}
	}
	return nil
}

// Check reports, with kind Invalid, what makes n an invalid description of
// a storage node: an id that CheckNodeID refuses; a URL that is not a
// chunk store of a node, file:///ABSOLUTE/PATH or
// s3://[KEY:SECRET@]HOST[:PORT]/BUCKET[/PREFIX][?OPTIONS], or is longer
// than MaxNodeURLLen (grpc:// names a client of a chunk service, not a
// node; the s3 options are checked only when the store is opened); a
// negative weight; a zone longer than MaxNodeZoneLen or that is not
// printable UTF-8; a state that is not empty (up, for a new node) or one
// of the NodeStates. Failures and the times are not checked.
func (n StorageNode) Check() error {
	const op Op = "dfms.CheckNode"
	if err := CheckNodeID(n.ID); err != nil {
		return err
	}
	if err := checkNodeURL(n.URL); err != nil {
		return E(op, Invalid, fmt.Errorf("node %s: %w", n.ID, err))
	}
	switch {
	case n.Weight < 0:
		return E(op, Invalid, fmt.Errorf("node %s: negative weight %d", n.ID, n.Weight))
	case len(n.Zone) > MaxNodeZoneLen:
		return E(op, Invalid, fmt.Errorf("node %s: a zone is at most %d bytes", n.ID, MaxNodeZoneLen))
	case !utf8.ValidString(n.Zone) || strings.ContainsFunc(n.Zone, func(r rune) bool { return !unicode.IsPrint(r) }):
		return E(op, Invalid, fmt.Errorf("node %s: the zone %q is not printable text", n.ID, n.Zone))
	case n.State != "" && !n.State.Valid():
		return E(op, Invalid, fmt.Errorf("node %s: unknown state %q", n.ID, n.State))
	}
	return nil
}

// checkNodeURL checks a node's chunk store URL; its errors never show the
// URL's secret.
func checkNodeURL(raw string) error {
	if raw == "" {
		return errors.New("a node needs a chunk store URL (file:// or s3://)")
	}
	if len(raw) > MaxNodeURLLen {
		return fmt.Errorf("the chunk store URL is longer than %d bytes", MaxNodeURLLen)
	}
	u, err := ParseSecretURL(raw)
	if err != nil {
		return fmt.Errorf("malformed chunk store URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		if u.Opaque != "" || u.Host != "" && u.Host != "localhost" || u.User != nil || !path.IsAbs(u.Path) ||
			u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("chunk store URL %s: want file:///ABSOLUTE/PATH", u.Redacted())
		}
	case "s3":
		if u.Opaque != "" || u.Host == "" || strings.Trim(u.Path, "/") == "" || u.Fragment != "" {
			return fmt.Errorf("chunk store URL %s: want s3://[KEY:SECRET@]HOST[:PORT]/BUCKET[/PREFIX]", u.Redacted())
		}
	default:
		return fmt.Errorf("chunk store URL %s: the scheme is %q; a node's chunk store is file:// or s3://", u.Redacted(), u.Scheme)
	}
	return nil
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
