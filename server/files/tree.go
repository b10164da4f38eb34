package files

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// Mkdir creates directory parent/name.
func (s *Service) Mkdir(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string, mode uint32) (dfms.Entry, error) {
	if mode == 0 {
		mode = 0o755
	}
	return s.tree.CreateEntry(ctx, dfms.Entry{Owner: owner, Parent: parent, Name: name, Kind: dfms.KindDir, Mode: mode & 0o7777})
}

// Symlink creates a symbolic link parent/name pointing at target.
func (s *Service) Symlink(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name, target string) (dfms.Entry, error) {
	return s.tree.CreateEntry(ctx, dfms.Entry{Owner: owner, Parent: parent, Name: name, Kind: dfms.KindSymlink, Mode: 0o777, Target: target})
}

// Readlink returns a symlink's target.
func (s *Service) Readlink(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (string, error) {
	e, err := s.Stat(ctx, owner, id)
	if err != nil {
		return "", err
	}
	if e.Kind != dfms.KindSymlink {
		return "", dfms.E("files.Readlink", dfms.Invalid, fmt.Errorf("%q is not a symlink", e.Name))
	}
	return e.Target, nil
}

// Stat returns a live entry.
func (s *Service) Stat(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (dfms.Entry, error) {
	e, err := s.tree.GetEntry(ctx, owner, id)
	if err == nil && !e.Live() {
		return e, dfms.E("files.Stat", dfms.NotExist, fmt.Errorf("entry %d is in the trash", id))
	}
	return e, err
}

// Lookup returns the live entry parent/name.
func (s *Service) Lookup(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string) (dfms.Entry, error) {
	return s.tree.Lookup(ctx, owner, parent, name)
}

// List returns a directory's live entries by name.
func (s *Service) List(ctx context.Context, owner dfms.UserID, dir dfms.EntryID, opts meta.ListOptions) ([]dfms.Entry, error) {
	return s.tree.ListDir(ctx, owner, dir, opts)
}

// SetAttr changes mode, owner ids or mtime.
func (s *Service) SetAttr(ctx context.Context, owner dfms.UserID, id dfms.EntryID, a dfms.SetAttr) (dfms.Entry, error) {
	return s.tree.SetAttr(ctx, owner, id, a)
}

// Rename moves id to newParent/newName; see meta.Tree.Rename.
func (s *Service) Rename(ctx context.Context, owner dfms.UserID, id, newParent dfms.EntryID, newName string, replace bool) (dfms.Entry, error) {
	e, _, err := s.tree.Rename(ctx, owner, id, newParent, newName, replace)
	return e, err
}

// Delete moves an entry, and everything under it, to the trash.
func (s *Service) Delete(ctx context.Context, owner dfms.UserID, id dfms.EntryID) error {
	return s.trash.Trash(ctx, owner, id)
}

// Restore brings a deleted entry back from the trash.
func (s *Service) Restore(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (dfms.Entry, error) {
	return s.trash.Restore(ctx, owner, id)
}

// Trash lists a page of what the owner deleted, newest first, and how
// much that is in all (see meta.Trash.ListTrash).
func (s *Service) Trash(ctx context.Context, owner dfms.UserID, offset, limit int) ([]dfms.Entry, int, error) {
	return s.trash.ListTrash(ctx, owner, offset, limit)
}

// Purge deletes a trashed entry for good, releasing its chunks to GC.
func (s *Service) Purge(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (meta.PurgeStats, error) {
	return s.trash.Purge(ctx, owner, id)
}

// Versions lists a file's versions, oldest first.
func (s *Service) Versions(ctx context.Context, owner dfms.UserID, id dfms.EntryID) ([]dfms.Version, error) {
	return s.versions.ListVersions(ctx, owner, id)
}

// DeleteVersion removes an old version of a file.
func (s *Service) DeleteVersion(ctx context.Context, owner dfms.UserID, id dfms.EntryID, number int64) error {
	return s.versions.DeleteVersion(ctx, owner, id, number)
}

// RestoreVersion makes version number of a file its newest version again:
// a new version with the same manifest. No chunk is stored; the old
// version's chunks gain references.
func (s *Service) RestoreVersion(ctx context.Context, owner dfms.UserID, id dfms.EntryID, number int64) (dfms.Entry, dfms.Version, error) {
	const op dfms.Op = "files.RestoreVersion"
	old, err := s.versions.GetVersion(ctx, owner, id, number)
	if err != nil {
		return dfms.Entry{}, old, dfms.E(op, dfms.Other, err)
	}
	cur, err := s.Stat(ctx, owner, id)
	if err != nil {
		return cur, old, dfms.E(op, dfms.Other, err)
	}
	e, v, err := s.versions.CommitVersion(ctx, meta.CommitRequest{Owner: owner, Entry: id, Manifest: *old.Manifest,
		SHA256: old.SHA256, MTime: time.Now(), Base: cur.VersionID, CreatedBy: owner})
	if err != nil {
		return e, v, dfms.E(op, dfms.Other, err)
	}
	return e, v, nil
}

// Search finds live entries; it returns one page and the total number of
// matches.
func (s *Service) Search(ctx context.Context, owner dfms.UserID, q meta.SearchQuery) ([]dfms.Entry, int, error) {
	return s.tree.Search(ctx, owner, q)
}

// Resolve walks a slash-separated path from the owner's root ("" and "/"
// name the root) and returns the live entry it names. Symlinks are not
// followed.
func (s *Service) Resolve(ctx context.Context, owner dfms.UserID, path string) (dfms.Entry, error) {
	u, err := s.users.GetUser(ctx, owner)
	if err != nil {
		return dfms.Entry{}, err
	}
	e, err := s.tree.GetEntry(ctx, owner, u.Root)
	if err != nil {
		return e, err
	}
	for _, name := range strings.Split(path, "/") {
		if name == "" || name == "." {
			continue
		}
		if e, err = s.tree.Lookup(ctx, owner, e.ID, name); err != nil {
			return e, err
		}
	}
	return e, nil
}

// StoredBytes returns what the owner's data takes after deduplication.
func (s *Service) StoredBytes(ctx context.Context, owner dfms.UserID) (int64, error) {
	return s.tree.StoredBytes(ctx, owner)
}

// UnlinkName removes the name parent/name of a file, symlink or special
// file, as unlink(2): a directory fails with IsDir. A file with other
// names (hard links) keeps them; its last name moves it to the trash.
func (s *Service) UnlinkName(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string) error {
	_, err := s.tree.Unlink(ctx, owner, parent, name)
	return err
}

// Link gives file id the further name parent/name, as link(2): a hard
// link. A directory fails with IsDir, a taken name with Exist.
func (s *Service) Link(ctx context.Context, owner dfms.UserID, id, parent dfms.EntryID, name string) (dfms.Entry, error) {
	return s.tree.Link(ctx, owner, id, parent, name)
}

// RmdirName moves the empty directory parent/name to the trash, as
// rmdir(2): a non-directory fails with NotDir, a directory with live
// entries with NotEmpty. The check and the deletion are two transactions:
// an entry created in between goes to the trash with the directory (and
// can be restored from there).
func (s *Service) RmdirName(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string) error {
	const op dfms.Op = "files.Rmdir"
	e, err := s.Lookup(ctx, owner, parent, name)
	if err != nil {
		return err
	}
	if e.Kind != dfms.KindDir {
		return dfms.E(op, dfms.NotDir, fmt.Errorf("%q is not a directory", name))
	}
	n, err := s.tree.CountDir(ctx, owner, e.ID)
	if err != nil {
		return err
	}
	if n > 0 {
		return dfms.E(op, dfms.NotEmpty, fmt.Errorf("%q is not empty", name))
	}
	return s.Delete(ctx, owner, e.ID)
}

// RenameName moves parent/name to newParent/newName, as rename(2) (see
// meta.Tree.RenameName for replace and hard links); moving a directory
// under itself fails with Invalid, as rename(2) reports it.
func (s *Service) RenameName(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string, newParent dfms.EntryID, newName string, replace bool) (dfms.Entry, error) {
	moved, _, err := s.tree.RenameName(ctx, owner, parent, name, newParent, newName, replace)
	if dfms.Is(err, dfms.Conflict) {
		// The metadata store's only Conflict here is a directory moved
		// under itself.
		return dfms.Entry{}, dfms.E("files.Rename", dfms.Invalid, err)
	}
	return moved, err
}
