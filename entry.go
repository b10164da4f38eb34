package dfms

import (
	"fmt"
	"math"
	"time"
)

// EntryKind says what an entry of a tree is: a directory, a file or a
// symbolic link. The values are stored.
type EntryKind uint8

// The entry kinds.
const (
	KindDir     EntryKind = 1
	KindFile    EntryKind = 2
	KindSymlink EntryKind = 3
)

func (k EntryKind) String() string {
	switch k {
	case KindDir:
		return "dir"
	case KindFile:
		return "file"
	case KindSymlink:
		return "symlink"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
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
