// Package placement decides which storage nodes hold each chunk: a
// consistent-hashing ring ([Ring]) with virtual nodes, weights, zones and
// node states; and stores chunks there: [Cluster], the replicated chunk
// store over the nodes' own stores (package placement/store). The
// replication manager (workers/replication) brings chunks back to R
// copies on their owners; the health monitor (workers/health) sets the
// states.
//
// # Virtual nodes
//
// The ring has 2⁶⁴ positions. A node of weight w has
// vnodes·w/[dfms.DefaultNodeWeight] virtual nodes, rounded half up (vnodes is
// [DefaultVNodes], 150, unless configured; a positive weight gets at least
// one, weight 0 gets none and owns nothing). Virtual node i of the node
// with id ID sits at
//
//	position(ID, i) = first 8 bytes, big-endian, of SHA-256(uint32 big-endian i ‖ ID)
//
// A node's positions depend on its id and weight only, never on the other
// nodes or on its state: adding or removing a node adds or removes its own
// virtual nodes and moves no other.
//
// # Looking a chunk up
//
// A chunk's hash h is looked up at eight probe positions: its four 64-bit
// big-endian words, then the same four words with their 32-bit halves
// swapped (a SHA-256 is uniform, so these are eight independent uniform
// positions, at no cost). From each probe a walk goes clockwise; the
// chunk's order of nodes, [Ring.Sequence], is the order in which the
// eight walks, merged by distance from their probe, first meet each node.
// Equivalently: each node's distance from h is the shortest clockwise
// distance from a probe to one of its virtual nodes, and nodes come in
// increasing distance (ties, which need two equal 64-bit distances, go to
// the lower probe, then the lower id). This is the "ring order from h" of
// the API. With one probe it would be the classic ring walk.
//
// [Ring.Owners] is the first n nodes of that order that may take new
// replicas (see States), in distinct zones as far as the zones allow. A
// reader that misses a replica on the owners goes on along Sequence: after
// a node is added or goes down, the chunk's earlier owners are a step or
// two further along it.
//
// Why eight probes (multi-probe consistent hashing, Appleton and O'Reilly,
// 2015, arXiv:1505.00062): with one probe a node's share of chunks is the
// sum of the arcs in front of its virtual nodes, and arcs vary as much as
// their mean, so a node's share varies by about 1/√vnodes, 8 % at 150 (in
// a 10-node cluster the largest deviation is typically 15 %, and over 10 %
// in most clusters). Spreading a node's own virtual nodes evenly does not
// help: the arcs depend on where the other nodes' virtual nodes fall. With
// k probes a chunk goes to the virtual node nearest after any of them,
// which evens out the arcs' shares: the deviation falls to about
// 1/√((2k−1)·vnodes), 2 % for k = 8 (measured over 100 nodes: a standard
// deviation of 1.9 %, every node within ±5.2 %). Movement stays minimal, because a node's distance
// from h depends on its own virtual nodes only: a node added is inserted
// into each chunk's order and a node removed is taken out of it, and the
// other nodes keep their order. So adding one node to N moves 1/(N+1) of
// the replicas, all to the new node, and removing one moves only its own.
// The price is eight searches instead of one: Owners takes about 0.2–0.5
// µs. (Each search is a table lookup: the ring keeps an index of its
// positions by their top bits.)
//
// # Weights and zones
//
// A node's share is proportional to its number of virtual nodes, so to its
// weight. A zone is a failure domain ([dfms.StorageNode].Zone; the empty
// zone is a zone like any other): Owners picks, in order, nodes of zones
// not yet used until it has n nodes or every zone is used, then the rest
// in order. So with 3 zones and 3 replicas each zone holds one, and with 2
// zones both hold one.
//
// # States
//
// States matter only at lookup. Owners takes nodes whose state is up or
// suspect ([dfms.NodeState.Placeable]); it skips a node that is down or
// draining, which stays in Sequence (a draining node still holds its
// chunks, a down node may come back). A node going down therefore changes
// the owners of the chunks it owned, and of no other chunk: its place goes
// to the next node of each chunk's order.
//
// # The replicated store
//
// [Cluster] is a [dfms.ChunkStore] over the nodes' stores, tested by the
// chunk-store conformance suite like any other. A Put goes to the chunk's
// R owners in parallel and succeeds once W of them (the write quorum,
// default R) have it durably; the copies stored are recorded (the metadata
// store's chunk_replicas) after they are. A Get reads the owners in order,
// then the recorded holders, then the rest of the ring (draining and down
// nodes last), and re-hashes what it reads: a missing or corrupt copy is
// skipped and reported, never served. Delete removes every copy from every
// node that is not down. Walk lists each chunk once. A chunk whose only
// copies are on down nodes is unavailable (kind Unavailable), not missing.
//
// # A storage format
//
// Where chunks are stored follows from the placement, so the placement is
// part of the storage format: the position hash and its byte layout, the
// vnode count of a weight, the probes and the merge order above. Changing
// any of them moves most chunks and needs a migration, like a change of
// chunking parameters; TestFormat pins them.
package placement
