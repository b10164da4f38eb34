package client

import (
	"time"

	"github.com/dfms/dfms"
)

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
