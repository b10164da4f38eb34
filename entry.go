package dfms

import (
	"fmt"
	"math"
	"time"
)

// EntryKind says what an entry of a tree is: a directory, a file, a
// symbolic link or a special file. The values are stored.
type EntryKind uint8

// The entry kinds. Special files (a FIFO, a socket, a character or block
// device) have no content: the kernel serves their I/O, and the store
// keeps their attributes and, for a device, its number.
const (
	KindDir      EntryKind = 1
	KindFile     EntryKind = 2
	KindSymlink  EntryKind = 3
	KindFIFO     EntryKind = 4
	KindSocket   EntryKind = 5
	KindCharDev  EntryKind = 6
	KindBlockDev EntryKind = 7
)

// entryKindNames are the kinds' names, as the API spells them.
var entryKindNames = [...]string{KindDir: "dir", KindFile: "file", KindSymlink: "symlink",
	KindFIFO: "fifo", KindSocket: "socket", KindCharDev: "chardev", KindBlockDev: "blockdev"}

func (k EntryKind) String() string {
	if k.Valid() {
		return entryKindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is one of the kinds above.
func (k EntryKind) Valid() bool { return k >= KindDir && k <= KindBlockDev }

// Special reports whether k is a special file's kind.
func (k EntryKind) Special() bool { return k >= KindFIFO && k <= KindBlockDev }

// Device reports whether k is a device's kind, which has a device number.
func (k EntryKind) Device() bool { return k == KindCharDev || k == KindBlockDev }

// ParseEntryKind returns the kind String names.
func ParseEntryKind(s string) (EntryKind, bool) {
	for k := KindDir; k <= KindBlockDev; k++ {
		if entryKindNames[k] == s {
			return k, true
		}
	}
	return 0, false
}

// What a change of an owner's tree did, as the change journal records it
// and the change feed reports it.
const (
	ChangeCreate  = "create"  // entry created (mkdir, symlink, new file)
	ChangeVersion = "version" // a new version committed
	ChangeAttr    = "attr"    // attributes changed
	ChangeRename  = "rename"  // moved or renamed
	ChangeTrash   = "trash"   // moved to trash
	ChangeRestore = "restore" // restored from trash
	ChangePurge   = "purge"   // deleted for good
)

// XattrMode says whether setting an extended attribute may create or
// replace it.
type XattrMode int

// XattrMode values, as setxattr(2)'s flags.
const (
	XattrAny     XattrMode = iota // create or replace
	XattrCreate                   // only create
	XattrReplace                  // only replace
)

// Bounds of extended attributes.
const (
	MaxXattrName  = 255
	MaxXattrValue = 64 << 10
	MaxXattrs     = 1024 // per entry
)

// Times are kept as nanoseconds since 1970 in 64 bits: MinTime and MaxTime
// (1677-09-21 and 2262-04-11) are the earliest and latest that can be
// kept. Callers refuse others (ValidTime) rather than let them wrap around.
var (
	MinTime = time.Unix(0, math.MinInt64).UTC()
	MaxTime = time.Unix(0, math.MaxInt64).UTC()
)

// ValidTime reports whether t can be kept.
func ValidTime(t time.Time) bool { return !t.Before(MinTime) && !t.After(MaxTime) }

// Entry is a node of a user's tree, as the metadata store keeps it. Each user has one root directory, whose
// Parent is 0 and Name is "".
type Entry struct {
	ID     EntryID
	Owner  UserID
	Parent EntryID
	Name   string
	Kind   EntryKind
	Mode   uint32 // permission bits (and set-id/sticky bits); the type is Kind
	UID    uint32
	GID    uint32
	Size   int64 // bytes of the current version; length of Target for symlinks
	// DataSize is how many of Size chunks hold: Size less the holes of
	// a sparse file (what st_blocks counts).
	DataSize int64
	MTime    time.Time
	CTime    time.Time
	ATime    time.Time // last access, as set (reads do not move it)
	Target   string    // symlink target
	Rdev     uint32    // a device's number, as the kernel encodes it; 0 for other kinds
	// Nlink counts the entry's names (hard links) for a file, symlink or
	// special file (0 once in the trash); for a directory it is 2 + its
	// subdirectories, as POSIX file systems count.
	Nlink   uint32
	MIME    string
	Version int64 // current version number of a file; 0 for none yet
	// VersionID is the current version's ID (0 for none): unlike its
	// number, it names that version for good.
	VersionID int64
	SHA256    Hash // of the current version's content (zero if none)

	// Named is when the entry got its name, for a create made later than
	// that (CreateEntries of a mount's deferred creates): its directory's
	// times move up to it, not to CTime, which a later chmod or chown of
	// the entry moved on. Zero: CTime. Not stored.
	Named time.Time

	// Trash state: DeletedAt is zero for live entries. TrashRoot is the
	// entry whose deletion moved this one to the trash (itself for the
	// entry the user deleted).
	DeletedAt time.Time
	TrashRoot EntryID
}

// Live reports whether e is not in the trash.
func (e *Entry) Live() bool { return e.DeletedAt.IsZero() }

// SetAttr lists the attributes of an entry to change; nil fields are
// left alone.
type SetAttr struct {
	Mode  *uint32 // permission, set-id and sticky bits (others are dropped)
	UID   *uint32
	GID   *uint32
	MTime *time.Time
	ATime *time.Time
	Size  *int64 // only through a new version: a store's SetAttr rejects it
	// Accessed says ATime is a read's (relatime), not a change: only
	// ATime is set, and only if later than the entry's; the change time
	// stays and no change is journaled.
	Accessed bool
}

// Apply sets the mode, owner ids and times of e that a changes.
func (a SetAttr) Apply(e *Entry) { a.ApplyTo(&e.Mode, &e.UID, &e.GID, &e.MTime, &e.ATime) }

// ApplyTo is Apply for an entry of another type (the mount's): it sets
// what a changes of the mode, owner ids and times given.
func (a SetAttr) ApplyTo(mode, uid, gid *uint32, mtime, atime *time.Time) {
	if a.Mode != nil {
		*mode = *a.Mode & 0o7777
	}
	if a.UID != nil {
		*uid = *a.UID
	}
	if a.GID != nil {
		*gid = *a.GID
	}
	if a.MTime != nil {
		*mtime = *a.MTime
	}
	if a.ATime != nil {
		*atime = *a.ATime
	}
}

// Version is one immutable version of a file.
//
// Its ID is its identity: assigned at commit, never changed and never
// reused, so that whoever must keep naming one version (an open file's
// base, a checksum computed after a download, a crash journal) names it
// by ID. Its Number is its place in the history of the file that holds it
// (1, 2, …, oldest first), which is what users see: a rename of a file
// over another with history makes the moved file hold both histories,
// and renumbers its own versions after the adopted ones (Rename).
type Version struct {
	ID         int64
	Entry      EntryID
	Number     int64 // 1, 2, …
	Size       int64
	SHA256     Hash // of the whole content
	ChunkCount int
	Base       int64 // the ID of the version this one was edited from; 0 if none
	// CommitID is the identity the committing client gave the commit
	// (CommitRequest.CommitID), "" if none.
	CommitID  string
	CreatedAt time.Time
	CreatedBy UserID
	Manifest  *Manifest // filled by GetVersion, nil in lists
}

// RelatimeAge is how old an access time may grow before a read moves it
// again (RelatimeDue).
const RelatimeAge = 24 * time.Hour

// RelatimeDue reports whether a read at now moves an entry's access time,
// as Linux's relatime says: when the atime is not later than the mtime or
// the ctime (so that a reader can tell the file was read since it
// changed), or is RelatimeAge old. Other reads write nothing.
func RelatimeDue(atime, mtime, ctime, now time.Time) bool {
	return !atime.After(mtime) || !atime.After(ctime) || now.Sub(atime) >= RelatimeAge
}
