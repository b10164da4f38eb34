package files

import (
	"context"
	"fmt"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Copy makes a new file newParent/newName with the content of a file's
// current version, server-side: the chunks gain references, no data is
// copied. An existing target name fails with kind Exist.
func (s *Service) Copy(ctx context.Context, owner dfms.UserID, id, newParent dfms.EntryID, newName string) (dfms.Entry, dfms.Version, error) {
	const op dfms.Op = "files.Copy"
	src, err := s.Stat(ctx, owner, id)
	if err != nil {
		return src, dfms.Version{}, dfms.E(op, dfms.Other, err)
	}
	if src.Kind != dfms.KindFile {
		return src, dfms.Version{}, dfms.E(op, dfms.IsDir, fmt.Errorf("only files can be copied; %q is a %s", src.Name, src.Kind))
	}
	v, err := s.OpenVersion(ctx, owner, id, 0)
	if err != nil {
		return src, v, dfms.E(op, dfms.Other, err)
	}
	e, nv, err := s.versions.CommitVersion(ctx, meta.CommitRequest{Owner: owner, Parent: newParent, Name: newName,
		Mode: src.Mode, UID: src.UID, GID: src.GID, Manifest: *v.Manifest, SHA256: v.SHA256, MIME: src.MIME,
		MTime: src.MTime, CreateOnly: true, CreatedBy: owner})
	if err != nil {
		return e, nv, dfms.E(op, dfms.Other, commitError(err))
	}
	return e, nv, nil
}
