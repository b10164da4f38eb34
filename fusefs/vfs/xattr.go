package vfs

import (
	"context"
	"strings"

	"github.com/dfms/dfms"
)

// Extended attributes are stored by the server as opaque names and
// values, per entry. Two namespaces are not: system.* (POSIX ACLs, which
// the mount does not enforce) fails with NotSupported, and
// security.capability, which the kernel asks for before every write to
// decide whether to drop file capabilities, is answered "none" here
// without a round trip to the server (and cannot be set).

const capabilityXattr = "security.capability"

func checkXattrName(op dfms.Op, name string) error {
	switch {
	case name == "" || len(name) > dfms.MaxXattrName:
		return dfms.Errorf(op, dfms.Invalid, "bad attribute name")
	case strings.HasPrefix(name, "system.") || name == capabilityXattr:
		return dfms.Errorf(op, dfms.NotSupported, "this attribute is not supported")
	}
	return nil
}

// GetXattr returns extended attribute name of ino, with found false if it
// has none of that name.
func (fsys *FS) GetXattr(ctx context.Context, ino Ino, name string) ([]byte, bool, error) {
	if ino.tag() != tagEntry || name == capabilityXattr || strings.HasPrefix(name, "system.") || fsys.isPending(ino.entry()) {
		return nil, false, nil
	}
	return fsys.b.GetXattr(ctx, ino.entry(), name)
}

// ListXattrs returns the names of ino's extended attributes.
func (fsys *FS) ListXattrs(ctx context.Context, ino Ino) ([]string, error) {
	if ino.tag() != tagEntry || fsys.isPending(ino.entry()) {
		return nil, nil
	}
	return fsys.b.ListXattrs(ctx, ino.entry())
}

// Setxattr flags, as setxattr(2).
const (
	XattrCreate  = 1
	XattrReplace = 2
)

// SetXattr sets extended attribute name of ino; flags is setxattr(2)'s.
func (fsys *FS) SetXattr(ctx context.Context, ino Ino, name string, value []byte, flags int) error {
	const op dfms.Op = "vfs.SetXattr"
	if ino.tag() != tagEntry {
		return errReadOnly(op)
	}
	if err := checkXattrName(op, name); err != nil {
		return err
	}
	mode := dfms.XattrAny
	switch {
	case flags&XattrCreate != 0 && flags&XattrReplace != 0:
		return dfms.Errorf(op, dfms.Invalid, "XATTR_CREATE and XATTR_REPLACE together")
	case flags&XattrCreate != 0:
		mode = dfms.XattrCreate
	case flags&XattrReplace != 0:
		mode = dfms.XattrReplace
	}
	if err := fsys.materialize(ctx, ino.entry()); err != nil {
		return err
	}
	err := fsys.b.SetXattr(ctx, ino.entry(), name, value, mode)
	fsys.touch(err, ino.entry())
	return err
}

// RemoveXattr removes extended attribute name of ino (NotExist if absent).
func (fsys *FS) RemoveXattr(ctx context.Context, ino Ino, name string) error {
	const op dfms.Op = "vfs.RemoveXattr"
	if ino.tag() != tagEntry {
		return errReadOnly(op)
	}
	if err := checkXattrName(op, name); err != nil {
		return err
	}
	if err := fsys.materialize(ctx, ino.entry()); err != nil {
		return err
	}
	err := fsys.b.RemoveXattr(ctx, ino.entry(), name)
	fsys.touch(err, ino.entry())
	return err
}
