package client

import (
	"time"

	"github.com/dfms/dfms"
)

// The JSON shapes of the API's nouns, defined once: the server
// (server/api) answers and reads these, and this client decodes and
// sends them.

// User is an account as the API shows it.
type User struct {
	ID          dfms.UserID  `json:"id"`
	Email       string       `json:"email"`
	DisplayName string       `json:"display_name"`
	Role        string       `json:"role"`
	Active      bool         `json:"active"`
	QuotaBytes  int64        `json:"quota_bytes"`
	UsedBytes   int64        `json:"used_bytes"`
	RootID      dfms.EntryID `json:"root_folder_id"`
}

// Entry is an entry (a file, folder, symlink or special file) as the
// /files, /folders, /search and /trash endpoints show it.
type Entry struct {
	ID          dfms.EntryID `json:"id"`
	ParentID    dfms.EntryID `json:"parent_id,omitempty"` // 0 for the root folder
	Name        string       `json:"name"`
	Type        string       `json:"type"` // file, folder, symlink, fifo, socket, chardev or blockdev
	IsDirectory bool         `json:"is_directory"`
	Size        int64        `json:"size"`
	MIMEType    string       `json:"mime_type,omitempty"`
	Checksum    string       `json:"checksum,omitempty"` // hex SHA-256 of the current version
	Version     int64        `json:"version,omitempty"`
	VersionID   int64        `json:"version_id,omitempty"` // the current version's lasting id
	Mode        uint32       `json:"mode"`
	Target      string       `json:"target,omitempty"`
	Rdev        uint32       `json:"rdev,omitempty"` // a device's number
	UpdatedAt   time.Time    `json:"updated_at"`
	ChangedAt   time.Time    `json:"changed_at"`
	DeletedAt   *time.Time   `json:"deleted_at,omitempty"`
}

// IsDir reports whether e is a folder.
func (e Entry) IsDir() bool { return e.IsDirectory || e.Type == "folder" }

// FSEntry is an entry as the /fs endpoints (the mount's) show it: with
// its owner ids, mode, link count and nanosecond times.
type FSEntry struct {
	ID      dfms.EntryID `json:"id"`
	Parent  dfms.EntryID `json:"parent_id"`
	Name    string       `json:"name"`
	Kind    string       `json:"kind"` // file, dir, symlink, fifo, socket, chardev or blockdev (dfms.EntryKind)
	Mode    uint32       `json:"mode"`
	UID     uint32       `json:"uid"`
	GID     uint32       `json:"gid"`
	Size    int64        `json:"size"`
	MTime   time.Time    `json:"mtime"`
	CTime   time.Time    `json:"ctime"`
	ATime   time.Time    `json:"atime"`
	Target  string       `json:"target,omitempty"`
	Rdev    uint32       `json:"rdev,omitempty"` // a device's number
	Nlink   uint32       `json:"nlink"`          // names of a file (hard links); 2 + subdirectories of a directory
	Version int64        `json:"version"`
	// VersionID is the current version's lasting id: the mount names a
	// version by it.
	VersionID int64 `json:"version_id"`
	Live      bool  `json:"live"`
	// DataSize is how many of Size bytes data chunks hold: Size less the
	// holes of a sparse file (what st_blocks counts). This server always
	// sends it; an older one does not (nil: all of Size).
	DataSize *int64 `json:"data_size"`
}

// Version is one version of a file.
type Version struct {
	ID         int64     `json:"id"`      // lasting: it names this version for good; Version is its place in the history
	File       int64     `json:"file_id"` // the file it was made in
	Version    int64     `json:"version"`
	Size       int64     `json:"size"`
	Checksum   string    `json:"checksum,omitempty"` // absent until computed (files.Checksum)
	ChunkCount int       `json:"chunk_count"`
	Base       int64     `json:"base_version_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	Current    bool      `json:"current"`
}

// NewFile is one file of POST /fs/files: an empty file to create with an
// id reserved for the caller (POST /fs/ids), with the times it was made
// at (absent: now).
type NewFile struct {
	ID     dfms.EntryID `json:"id"`
	Parent dfms.EntryID `json:"parent_id"`
	Name   string       `json:"name"`
	Mode   uint32       `json:"mode"`
	UID    uint32       `json:"uid"`
	GID    uint32       `json:"gid"`
	MTime  *time.Time   `json:"mtime,omitempty"`
	CTime  *time.Time   `json:"ctime,omitempty"`
	ATime  *time.Time   `json:"atime,omitempty"`
	Named  *time.Time   `json:"named,omitempty"` // when it took its name
}

// TrashItem is one entry of POST /fs/trash, with when it was deleted
// (absent: now).
type TrashItem struct {
	ID dfms.EntryID `json:"id"`
	At *time.Time   `json:"at,omitempty"`
}

// ChunkRef is one chunk of a manifest as the API carries it: its hash
// (hex SHA-256; a hole's is the zero hash) and length.
type ChunkRef struct {
	Hash string `json:"hash"`
	Size uint32 `json:"size"`
}

// ChunkRefs is m's chunk list as the API carries it.
func ChunkRefs(m dfms.Manifest) []ChunkRef {
	refs := make([]ChunkRef, len(m.Chunks))
	for i, r := range m.Chunks {
		refs[i] = ChunkRef{r.Hash.String(), r.Size}
	}
	return refs
}

// ManifestOf is the manifest of refs; a hash that does not parse fails
// as dfms.ParseHash does.
func ManifestOf(refs []ChunkRef) (dfms.Manifest, error) {
	var m dfms.Manifest
	for _, r := range refs {
		h, err := dfms.ParseHash(r.Hash)
		if err != nil {
			return dfms.Manifest{}, err
		}
		m.Chunks = append(m.Chunks, dfms.ChunkRef{Hash: h, Size: r.Size})
	}
	return m, nil
}

// Commit is one commit of POST /fs/commits: a new version of an existing
// file, made of chunks the caller stored, edited from version BaseID.
type Commit struct {
	FileID      dfms.EntryID `json:"file_id"`
	BaseID      int64        `json:"base_version_id"`
	RequireBase bool         `json:"require_base,omitempty"`
	CommitID    string       `json:"commit_id,omitempty"`
	MTime       *time.Time   `json:"mtime,omitempty"`
	Chunks      []ChunkRef   `json:"chunks"`
}

// Node is a storage node as the admin API shows it.
type Node struct {
	ID string `json:"id"`
	// Endpoint is the node's chunk store URL, its password or secret key
	// redacted.
	Endpoint  string     `json:"endpoint"`
	Weight    int        `json:"weight"`
	Zone      string     `json:"zone"`
	State     string     `json:"state"`    // up, suspect, down or draining (dfms.NodeState)
	Failures  int        `json:"failures"` // consecutive failed probes
	LastProbe *time.Time `json:"last_probe,omitempty"`
	Chunks    int64      `json:"chunks"`     // chunk copies recorded on it
	UsedBytes int64      `json:"used_bytes"` // their bytes
	CreatedAt time.Time  `json:"created_at"`
}

// NewNode is a storage node to add (POST /admin/nodes).
type NewNode struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`         // file:///PATH or s3://KEY:SECRET@HOST:PORT/BUCKET
	Weight   *int   `json:"weight,omitempty"` // nil: dfms.DefaultNodeWeight
	Zone     string `json:"zone,omitempty"`
	// State is the node's first state: up (empty), or draining, which
	// keeps new chunks off it until it is undrained.
	State string `json:"state,omitempty"`
}

// NodeChange is a change of a storage node (PATCH /admin/nodes/{id}):
// the fields set replace the node's.
type NodeChange struct {
	Endpoint *string `json:"endpoint,omitempty"`
	Weight   *int    `json:"weight,omitempty"`
	Zone     *string `json:"zone,omitempty"`
}
