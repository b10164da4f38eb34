package dfms

import (
	"encoding/json"
	"time"
)

// Event is one event of DFMS: something that changed in the metadata
// store, written in the same transaction as the change (the outbox) and
// published to the event bus afterwards. Delivery is at least once: a
// consumer that must act once per event remembers the IDs it has handled.
//
// Events of one key (one file, one chunk, one user, one node) are
// delivered in the order they happened; events of different keys, or of
// different topics, in no particular order. That is why every event of a
// file, whatever it says (a version, a rename, a deletion), is on
// TopicFiles.
type Event struct {
	// ID is the event's position in the outbox: unique, and increasing
	// with the order of the events of a key.
	ID    int64     `json:"id"`
	Topic string    `json:"topic"`
	Key   string    `json:"key"`
	Type  string    `json:"type"`
	At    time.Time `json:"at"`
	// Data is the event's payload, one of the *Event types below as
	// JSON, by Topic.
	Data json.RawMessage `json:"data"`
	// Headers carry what the bus adds on the way: for an event parked in
	// a dead-letter topic, the group that failed it and why.
	Headers map[string]string `json:"headers,omitempty"`
}

// The topics of the event bus and their event types. The key of each
// topic's events is in brackets.
const (
	// TopicFiles: a file's, directory's or link's changes [entry ID]:
	// a FileEvent.
	TopicFiles = "dfms.files"
	// TopicChunks: chunks stored for the first time and deleted [hash]:
	// a ChunkEvent.
	TopicChunks = "dfms.chunks"
	// TopicUsers: accounts created and changed [user ID]: a UserEvent.
	TopicUsers = "dfms.users"
	// TopicNodes: storage nodes added, changed, removed, and their state
	// changes [node ID]: a NodeEvent.
	TopicNodes = "dfms.nodes"
	// TopicRepair: chunks whose copies need repair [hash]: a RepairEvent.
	TopicRepair = "dfms.repair"
)

// Topics lists every topic of the event bus.
var Topics = []string{TopicFiles, TopicChunks, TopicUsers, TopicNodes, TopicRepair}

// DeadLetterTopic is where a consumer group parks the events of topic it
// failed to handle after its retries.
func DeadLetterTopic(topic string) string { return topic + ".dlq" }

// Event types.
const (
	EventEntryCreated     = "entry.created"     // a directory, file, link or special file created
	EventVersionCommitted = "version.committed" // a new version of a file became current
	EventVersionDeleted   = "version.deleted"   // a version of a file was deleted
	EventEntryChanged     = "entry.changed"     // attributes changed
	EventEntryRenamed     = "entry.renamed"     // moved or renamed
	EventEntryDeleted     = "entry.deleted"     // moved to the trash
	EventEntryRestored    = "entry.restored"    // restored from the trash
	EventEntryPurged      = "entry.purged"      // deleted for good, with what it contained

	EventChunkCreated = "chunk.created" // a chunk's bytes stored and recorded for the first time
	EventChunkDeleted = "chunk.deleted" // a chunk's bytes deleted by garbage collection

	EventUserCreated = "user.created"
	EventUserUpdated = "user.updated"

	EventNodeAdded   = "node.added"
	EventNodeChanged = "node.changed" // its URL, weight or zone, or drained / undrained
	EventNodeState   = "node.state"   // the health monitor changed its state
	EventNodeRemoved = "node.removed"

	EventRepairNeeded = "repair.needed" // a copy of a chunk was found bad or missing
)

// FileEvent is the payload of TopicFiles' events.
type FileEvent struct {
	Owner  UserID  `json:"owner"`
	Entry  EntryID `json:"entry"`
	Parent EntryID `json:"parent"`
	// OldParent is, for an entry.renamed that moved the entry to another
	// directory, the directory it left.
	OldParent EntryID `json:"old_parent,omitempty"`
	// Version is the ID of the version committed (version.committed) or
	// deleted (version.deleted).
	Version int64 `json:"version,omitempty"`
	// Origin names the client that made the change, if it said
	// (a mount, to tell its own changes from others').
	Origin string `json:"origin,omitempty"`
}

// ChunkEvent is the payload of TopicChunks' events.
type ChunkEvent struct {
	Hash string `json:"hash"` // hexadecimal SHA-256
	Size int64  `json:"size"`
}

// UserEvent is the payload of TopicUsers' events.
type UserEvent struct {
	ID   UserID `json:"id"`
	Role string `json:"role"`
}

// NodeEvent is the payload of TopicNodes' events.
type NodeEvent struct {
	ID    string    `json:"id"`
	State NodeState `json:"state,omitempty"`
	// Previous is the state before a node.state event.
	Previous NodeState `json:"previous,omitempty"`
}

// RepairEvent is the payload of TopicRepair's events.
type RepairEvent struct {
	Hash string `json:"hash"` // hexadecimal SHA-256
	// Node is the node whose copy is bad or missing ("" if unknown).
	Node   string `json:"node,omitempty"`
	Reason string `json:"reason"`
}

// changeEvents maps the change journal's operations to event types.
var changeEvents = map[string]string{
	ChangeCreate: EventEntryCreated, ChangeVersion: EventVersionCommitted, ChangeAttr: EventEntryChanged,
	ChangeRename: EventEntryRenamed, ChangeTrash: EventEntryDeleted, ChangeRestore: EventEntryRestored,
	ChangePurge: EventEntryPurged,
}

// ChangeEvent returns the event type of a change of the journal (op, as
// ChangeCreate…); version is the change's version (negative: a version
// deleted).
func ChangeEvent(op string, version int64) string {
	if op == ChangeVersion && version < 0 {
		return EventVersionDeleted
	}
	if t, ok := changeEvents[op]; ok {
		return t
	}
	return "entry." + op
}
