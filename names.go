package dfms

import (
	"fmt"
	"strings"
)

// MaxNameLen is the longest entry name in bytes (NAME_MAX on Linux).
const MaxNameLen = 255

// VersionsDir is the reserved name under which every directory of the mount
// shows the history of its files. No entry may take it.
const VersionsDir = ".versions"

// ValidName checks that name can name an entry: non-empty, at most
// MaxNameLen bytes, not "." or "..", free of '/' and NUL, valid UTF-8 is not
// required (POSIX names are bytes), and not the reserved VersionsDir.
func ValidName(name string) error {
	const op Op = "dfms.ValidName"
	switch {
	case name == "":
		return Errorf(op, Invalid, "empty name")
	case name == "." || name == "..":
		return E(op, Invalid, fmt.Errorf("name %q is reserved", name))
	case name == VersionsDir:
		return E(op, Invalid, fmt.Errorf("name %q is reserved for version history", name))
	case len(name) > MaxNameLen:
		return E(op, Invalid, fmt.Errorf("name of %d bytes is longer than %d", len(name), MaxNameLen))
	case strings.ContainsAny(name, "/\x00"):
		return E(op, Invalid, fmt.Errorf("name %q contains '/' or NUL", name))
	}
	return nil
}
