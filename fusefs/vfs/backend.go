package vfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
)

// Entry is an entry as the backend stores it.
type Entry struct {
	ID     dfms.EntryID
	Parent dfms.EntryID
	Name   string
	Kind   dfms.EntryKind
	Mode   uint32 // permission bits with set-id and sticky bits (07777)
	UID    uint32
	GID    uint32
	Size   int64 // of the current version; length of Target for symlinks
	MTime  time.Time
	CTime  time.Time
	ATime  time.Time // as last set; zero: the mtime
	// Named is when a file created here got its name (FileCreator: the
	// directory's times are those of the name, not of a later chown).
	Named  time.Time
	Target string // symlink target
	Rdev   uint32 // a device's number
	// Nlink counts a file's names (hard links), or a directory's 2 +
	// subdirectories; 0 if the backend does not say.
	Nlink uint32
	// Version is the lasting ID of the current version of a file (0:
	// created, never written, empty). IDs of a file's successive current
	// versions grow; unlike a version's number, an ID never comes to
	// name other content (a rename over a file renumbers versions).
	Version int64
	// Live is false once the entry is in the trash: it was unlinked or
	// replaced, but may still be open.
	Live bool
	// DataSize is how many of a file's Size bytes chunks hold: Size less
	// the holes of a sparse file.
	DataSize int64
}

// VersionInfo describes one committed version of a file.
type VersionInfo struct {
	ID     int64 // lasting: names this version for good
	Number int64 // 1, 2, … its place in the file's history, as users see it
	Size   int64
	Time   time.Time // when it was committed
}

// Usage is what statfs reports.
type Usage struct {
	UsedBytes  int64
	QuotaBytes int64 // 0: unlimited
}

// noWait marks the contexts of WithoutWait.
var noWait = dfms.NewContextFlag("vfs.WithoutWait")

// WithoutWait returns ctx marked for a request whose caller has an answer
// of its own if the server cannot be reached: a backend that waits for an
// unreachable server (REST, with its bounded wait) fails it at once with
// kind dfms.Unavailable instead. Only GetAttr (FS.Open's check of the
// current version) and SetAttr of a read's access time are asked so.
func WithoutWait(ctx context.Context) context.Context {
	return noWait.Set(ctx)
}

// NoWait reports whether ctx was marked by WithoutWait.
func NoWait(ctx context.Context) bool { return noWait.In(ctx) }

// Backend is what the file layer needs from the server: one owner's tree,
// as seen by that owner. Implementations are safe for concurrent use.
// Errors carry dfms kinds: NotExist for a missing name or entry, Exist for
// a taken name, NotDir, IsDir and NotEmpty for misuse of the tree, Invalid
// for bad names or arguments, Quota and TooLarge when a commit does not
// fit. Methods that take a name never follow symlinks.
//
// It is the union of the capabilities below, consumed whole by FS, which
// serves every file-system operation from it.
type Backend interface {
	Tree
	Content
	Xattrs
}

// Tree is the namespace part of a Backend: entries, names and attributes.
type Tree interface {
	// Root returns the owner's root directory.
	Root(ctx context.Context) (Entry, error)
	// Lookup returns the live entry parent/name.
	Lookup(ctx context.Context, parent dfms.EntryID, name string) (Entry, error)
	// GetAttr returns an entry by id, live or trashed (Live tells).
	GetAttr(ctx context.Context, id dfms.EntryID) (Entry, error)
	// ReadDir returns the live entries of a directory.
	ReadDir(ctx context.Context, dir dfms.EntryID) ([]Entry, error)

	// Mkdir creates directory parent/name.
	Mkdir(ctx context.Context, parent dfms.EntryID, name string, mode, uid, gid uint32) (Entry, error)
	// Symlink creates symlink parent/name pointing at target.
	Symlink(ctx context.Context, parent dfms.EntryID, name, target string, uid, gid uint32) (Entry, error)
	// Mknod creates special file parent/name of kind (a FIFO, a socket or
	// a device) with rdev, a device's number (0 for the others).
	Mknod(ctx context.Context, parent dfms.EntryID, name string, kind dfms.EntryKind, mode, rdev, uid, gid uint32) (Entry, error)
	// Link gives entry id (not a directory: IsDir) the further name
	// parent/name, a hard link (Exist if it is taken), and returns the
	// entry under that name.
	Link(ctx context.Context, id, parent dfms.EntryID, name string) (Entry, error)
	// Readlink returns a symlink's target (Invalid if id is no symlink).
	Readlink(ctx context.Context, id dfms.EntryID) (string, error)
	// CreateFile creates an empty file parent/name with no version yet;
	// Exist if the name is taken.
	CreateFile(ctx context.Context, parent dfms.EntryID, name string, mode, uid, gid uint32) (Entry, error)
	// SetAttr changes mode, owner ids or mtime of entry id.
	SetAttr(ctx context.Context, id dfms.EntryID, a dfms.SetAttr) (Entry, error)

	// Rename moves parent/name to newParent/newName. If the new name is
	// taken: without replace it fails with Exist; with replace a file or
	// symlink there moves to the trash, an empty directory is removed, a
	// non-empty one fails with NotEmpty, and a kind mismatch fails with
	// IsDir or NotDir. Moving a directory under itself fails with Invalid.
	Rename(ctx context.Context, parent dfms.EntryID, name string, newParent dfms.EntryID, newName string, replace bool) error
	// Unlink removes the name parent/name of a non-directory (IsDir for a
	// directory): a file with other names keeps them, and its last name
	// moves it to the trash. Open readers keep reading it.
	Unlink(ctx context.Context, parent dfms.EntryID, name string) error
	// Rmdir moves the empty directory parent/name to the trash (NotDir
	// for a non-directory, NotEmpty if it has live entries).
	Rmdir(ctx context.Context, parent dfms.EntryID, name string) error

	// Usage returns the owner's storage use and quota.
	Usage(ctx context.Context) (Usage, error)
}

// Content is the data part of a Backend: versions as manifests of chunks.
type Content interface {
	// Manifest returns the version of file id with lasting ID version (0:
	// the current one) and its chunk list; the version is found even if
	// another file holds it now (a rename over id took id's history). A
	// file never written has version 0 and no chunks.
	Manifest(ctx context.Context, id dfms.EntryID, version int64) (VersionInfo, dfms.Manifest, error)
	// ReadChunk returns the bytes of chunk ref of the version with
	// lasting ID version of file id (they say the caller may read it).
	// The caller verifies them.
	ReadChunk(ctx context.Context, id dfms.EntryID, version int64, ref dfms.ChunkRef) ([]byte, error)
	// Chunking returns the parameters the server chunks with; the mount
	// chunks with the same ones, so that its chunks deduplicate with
	// everyone else's.
	Chunking(ctx context.Context) (chunking.Params, error)
	// Missing returns the hashes among hs that must be sent (PutChunks)
	// before a manifest may name them.
	Missing(ctx context.Context, hs []dfms.Hash) ([]dfms.Hash, error)
	// PutChunks stores chunks; each one's data hashes to its hash.
	PutChunks(ctx context.Context, cs []dfms.ChunkData) error
	// CommitManifest makes c.Manifest the new current version of file
	// c.ID, as c describes. A file in the trash fails with NotExist and is
	// not brought back; a chunk that was not sent fails it with Conflict.
	// The entry returned carries the version this commit made and its
	// mtime (other fields may be partial).
	CommitManifest(ctx context.Context, c Commit) (Entry, error)
	// Versions lists the versions of file id, oldest first.
	Versions(ctx context.Context, id dfms.EntryID) ([]VersionInfo, error)
}

// Xattrs is the extended-attribute part of a Backend.
type Xattrs interface {
	// GetXattr returns extended attribute name of entry id, with found
	// false if it has none of that name.
	GetXattr(ctx context.Context, id dfms.EntryID, name string) (value []byte, found bool, err error)
	// ListXattrs returns the names of entry id's extended attributes.
	ListXattrs(ctx context.Context, id dfms.EntryID) ([]string, error)
	// SetXattr sets an extended attribute (Exist or NotExist per mode, as
	// meta.Xattrs.SetXattr).
	SetXattr(ctx context.Context, id dfms.EntryID, name string, value []byte, mode dfms.XattrMode) error
	// RemoveXattr removes an extended attribute (NotExist if absent).
	RemoveXattr(ctx context.Context, id dfms.EntryID, name string) error
}

// Change is one change of the owner's tree, as the change feed reports
// it: what changed (Entry), in which directory (Parent), and how (Op, one
// of the meta.Op* names).
type Change struct {
	Entry   dfms.EntryID
	Parent  dfms.EntryID
	Op      string
	Version int64  // for "version": the lasting ID of the version made current
	Origin  string // the Originator.Origin of the backend that made it, or ""
}

// ChangeFeed is implemented by backends that report changes made by
// others (the REST API, other mounts), so that the mount can drop what
// the kernel cached of them.
type ChangeFeed interface {
	// LatestChange returns the cursor of the latest change.
	LatestChange(ctx context.Context) (int64, error)
	// Changes returns the changes after cursor, waiting up to wait for
	// one, and the cursor to ask from next.
	Changes(ctx context.Context, cursor int64, wait time.Duration) ([]Change, int64, error)
}

// Commit is one commit of a file (Backend.CommitManifest).
type Commit struct {
	ID       dfms.EntryID
	Manifest dfms.Manifest
	// Base is the lasting ID of the version the content was edited from.
	// With RequireBase a file at another version fails with Conflict.
	Base        int64
	RequireBase bool
	MTime       time.Time // zero: now
	// CommitID identifies this commit for good (newCommitID): a commit
	// with the ID of one the backend made already makes nothing and
	// answers that one's version, so that a commit whose answer was lost,
	// or made just before a crash, can be retried without a duplicate.
	CommitID string
}

// CommitResult is the outcome of one Commit: the entry as CommitManifest
// returns it, or the error it would return.
type CommitResult struct {
	Entry Entry
	Err   error
}

// CommitBatcher is implemented by backends that commit several files in
// one request: the write-back commits many small files that way.
type CommitBatcher interface {
	// CommitManifests makes each commit as CommitManifest would; one that
	// fails does not stop the others. The error is for the whole batch
	// (nothing was committed).
	CommitManifests(ctx context.Context, cs []Commit) ([]CommitResult, error)
}

// ChunkCommitter is implemented by backends that store a commit's new
// chunks while the commit runs (Local): the chunk write overlaps the
// commit's metadata work, and the commit is made once they are durable.
type ChunkCommitter interface {
	// CommitManifestStoring is CommitManifest for a manifest that also
	// references cs (hashed; those the backend has already are not stored
	// again). It returns how many of cs it stored.
	CommitManifestStoring(ctx context.Context, c Commit, cs []dfms.ChunkData) (Entry, int, error)
}

// FileCreator is implemented by backends that create files under ids
// reserved ahead (Local): the mount then creates a file without a round
// trip and tells the backend with the file's first commit (pending.go).
type FileCreator interface {
	// ReserveIDs returns n entry ids no entry has or will be given.
	ReserveIDs(ctx context.Context, n int) ([]dfms.EntryID, error)
	// CreateFiles creates each of es (ID reserved, Parent, Name, Mode,
	// UID, GID, MTime, ATime) as an empty file, as CreateFile would; one that
	// fails does not stop the others. The error is for the whole batch.
	CreateFiles(ctx context.Context, es []Entry) ([]CommitResult, error)
}

// Syncer is implemented by backends that acknowledge namespace changes
// before they are durable (Local): Sync makes what was acknowledged so far
// durable. fsync(2) of a file or directory, FS.Sync and FS.Close call it.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Originator is implemented by backends that name the changes they make
// with an origin of their own, which the change feed reports: the mount
// skips its own changes by it.
type Originator interface {
	Origin() string
}

// NewOrigin returns a new random origin (a session's name).
func NewOrigin() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "m-" + hex.EncodeToString(b[:])
}
