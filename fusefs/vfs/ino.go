package vfs

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dfms/dfms"
)

// Ino is an inode number of the mount. A stored entry's inode number is
// its EntryID. The read-only `.versions` tree lives in a separate space,
// marked by the two top bits:
//
//	01 | D            the .versions directory of directory D
//	10 | F            .versions/NAME, the directory of file F's versions
//	11 | F<<20 | N    .versions/NAME/vN, version N of file F
//
// Version inodes hold file ids below 2^42 and version numbers below 2^20;
// versions beyond that are not reachable through the mount (they are
// through the API).
type Ino uint64

const (
	inoTagShift     = 62
	inoTagMask      = Ino(3) << inoTagShift
	tagEntry        = Ino(0)
	tagVersionsDir  = Ino(1) << inoTagShift
	tagVersionsFile = Ino(2) << inoTagShift
	tagVersion      = Ino(3) << inoTagShift

	versionBits = 20
	maxVersion  = 1<<versionBits - 1
	maxFileID   = 1<<(inoTagShift-versionBits) - 1
)

func (i Ino) tag() Ino { return i & inoTagMask }

func (i Ino) entry() dfms.EntryID { return dfms.EntryID(i &^ inoTagMask) }

// version splits a version inode into its file and number.
func (i Ino) version() (dfms.EntryID, int64) {
	v := i &^ inoTagMask
	return dfms.EntryID(v >> versionBits), int64(v & maxVersion)
}

func versionsDirIno(dir dfms.EntryID) Ino   { return tagVersionsDir | Ino(dir) }
func versionsFileIno(file dfms.EntryID) Ino { return tagVersionsFile | Ino(file) }

func versionIno(file dfms.EntryID, n int64) (Ino, bool) {
	if file > maxFileID || n < 1 || n > maxVersion {
		return 0, false
	}
	return tagVersion | Ino(file)<<versionBits | Ino(n), true
}

// versionName is the name of version n in .versions/NAME/.
func versionName(n int64) string { return "v" + strconv.FormatInt(n, 10) }

// parseVersionName parses "v12" as 12.
func parseVersionName(name string) (int64, bool) {
	if !strings.HasPrefix(name, "v") || len(name) < 2 || name[1] == '0' {
		return 0, false
	}
	n, err := strconv.ParseInt(name[1:], 10, 64)
	return n, err == nil && n > 0
}

func (i Ino) String() string {
	switch i.tag() {
	case tagVersionsDir:
		return fmt.Sprintf("versions-dir(%d)", i.entry())
	case tagVersionsFile:
		return fmt.Sprintf("versions-of(%d)", i.entry())
	case tagVersion:
		f, n := i.version()
		return fmt.Sprintf("version(%d,%d)", f, n)
	}
	return strconv.FormatUint(uint64(i), 10)
}
