// Package meta defines the metadata store of DFMS: users, the entry tree,
// file versions and their manifests, chunks with exact reference counts,
// storage nodes, multipart uploads and the change journal.
//
// The contract is [Store], cut by capability into [Users], [Tree],
// [Trash], [Xattrs], [Versions], [Chunks], [Sweeper], [Uploads],
// [Journal], [Nodes], [Replicas] and [Lifecycle]: a consumer takes the ones it uses
// (the garbage collector a Sweeper, authentication Users), and only what
// opens or assembles a store takes the whole. Two implementations share
// one SQL core (package meta/sqlmeta): meta/sqlite, the embedded default
// (sqlite:///var/lib/dfms/meta.db), and meta/postgres
// (postgres://user:pass@host:5432/db). One conformance suite,
// meta/metatest, runs every case on both.
//
// # What it holds
//
//   - users;
//   - the entry tree: directories, files and symlinks with their POSIX
//     attributes, one live name per directory, enforced by a unique index
//     that covers the root too;
//   - versions, whose manifests are stored as packed (hash, length)
//     records;
//   - chunks, with reference counts kept exactly (below);
//   - storage nodes;
//   - multipart uploads and their parts, which hold references until the
//     upload is completed or aborted;
//   - the change journal, whose rows name the origin of each change (the
//     X-DFMS-Origin of the request), so that a mount can skip its own.
//
// # Transactions
//
// Every method is one transaction: it either happens completely or not at
// all. Transactions that fail with a serialization failure, a deadlock or a
// busy database are retried inside the store, so callers never see those
// (PostgreSQL's write transactions are SERIALIZABLE; SQLite has one writer
// connection). In particular [Versions.CommitVersion] adds the version, its
// chunk references, the owner's usage and a change-journal row
// atomically.
//
// A commit is durable when the method returns, except in a context marked
// with [WithLazyDurability] (the mount's namespace changes in `dfms up`):
// such transactions may be acknowledged before they are durable, and
// become durable with the next durable commit or [Lifecycle.Sync]. On SQLite
// they run with synchronous=NORMAL on the writer connection.
//
// # Batches and ids reserved ahead
//
// Entry ids can be reserved ahead ([Tree.ReserveEntryIDs]: SQLite moves
// its AUTOINCREMENT counter, PostgreSQL draws from the identity
// sequence), so that a client names an entry before it creates it. An
// id is reserved for one owner, who alone may create an entry with it,
// once; an owner holds at most MaxReservedIDs (the oldest go first).
// [Tree.CreateEntries] and [Trash.TrashEntries] make a batch of creates
// or deletions in one transaction, with the times the client made them (a
// directory's times move up to them, never back). A batch (those two, and
// [Versions.CommitVersions]) runs in one savepoint, and item by item, a
// savepoint each, only when one of its items fails, so that a failing
// item changes nothing and the others still land.
//
// # Search
//
// [Tree.Search] matches names and MIME types by substring, through
// trigram indexes: SQLite's FTS5 with the trigram tokenizer (words shorter
// than three characters use LIKE), PostgreSQL's pg_trgm. See package
// meta/sqlite for how its index is kept up to date.
//
// # Reference counts
//
// A chunk's count is the number of occurrences of its hash across all
// committed versions and all multipart parts, counted per occurrence: a
// manifest that lists the same chunk sixteen times holds sixteen references.
// Counts change only in the transaction that adds or removes the manifest
// holding them, so they are exact at every commit.
//
// # Chunks and garbage collection
//
// A write reserves a chunk before storing its bytes ([Chunks.ReserveChunks]
// creates a pending row, which keeps the orphan collector away from the
// bytes and cannot be referenced), and [Chunks.AddChunks] marks it stored,
// with zero references, once the bytes are durable. Alternatively the
// commit that references the chunks marks them stored in its own
// transaction ([CommitRequest.Stored]): the in-process mount's fsync
// writes the bytes while the commit's statements run, and the transaction
// commits only once they are durable ([CommitRequest.Durable]), or rolls
// back if they could not be stored. Commits only increment rows that are
// stored and live; if one is missing, pending or being deleted the commit
// fails with a *MissingChunksError and changes nothing, and the caller
// uploads the chunk again. The sweeper deletes a chunk in three steps: it
// marks the row deleting (only if the count is still zero after the grace
// period), deletes the bytes, then deletes the row. Because of that order,
// no committed version can reference a chunk whose bytes were deleted,
// whatever the interleaving of uploads and sweeps (see package gc). A
// mark belongs to the sweeper that made it (a [Fence]), so that two
// sweepers never delete one chunk: one could otherwise delete bytes
// stored again after the other finished.
//
// # Quota
//
// A user's quota bounds every byte the user makes the server keep, counted
// in two sums of the user's row:
//
//   - Used bytes (User.UsedBytes) are what the user's tree holds: the size
//     of every stored version (trash included, shared chunks counted per
//     version) less its holes (a sparse file's extents of zeros keep
//     nothing, so a 1 TiB file of one written byte is charged one byte),
//     and the name and value of every extended attribute. A version is
//     charged in the transaction that commits it, an attribute in the one
//     that sets it.
//   - Held bytes (User.HeldBytes) are what the server keeps for the user
//     that no version accounts for yet: the parts of its open multipart
//     uploads (from PutPart until the upload completes, is aborted or
//     expires), and the chunks it stored that nothing referenced when it
//     stored them (HoldChunks: possession without reference). A chunk is
//     held for a fixed time from its last store, which the caller sets to
//     at least the GC grace period plus the interval between collections,
//     so that it is charged for as long as it may be kept; a commit or
//     part of the user that references it ends the hold at once (its
//     bytes then count as used).
//
// Every admission of new bytes (HoldChunks, PutPart, SetXattr, a commit)
// fails with kind Quota, changing nothing, when used + held + new would
// exceed the quota, so a user's bytes exceed its quota at no moment by more
// than the chunks whose holds ended while GC has not collected them yet.
// Users without a quota hold nothing (HoldChunks does not write for them).
//
// # Visibility
//
// Methods take the calling owner explicitly. An entry, version or upload of
// another owner is reported as kind NotExist, exactly as a missing one.
package meta

import (
	"context"
	"fmt"
	"time"

	"github.com/dfms/dfms"
)

// Roles of users.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// User is an account. Email is unique without regard to case.
type User struct {
	ID           dfms.UserID
	Email        string
	PasswordHash string
	DisplayName  string
	Role         string // RoleUser or RoleAdmin
	Active       bool
	QuotaBytes   int64 // 0: unlimited
	UsedBytes    int64 // data bytes of every stored version (trash included; holes are free) and extended attribute
	HeldBytes    int64 // bytes kept for the user that no version accounts for (see Quota above)
	Root         dfms.EntryID
	CreatedAt    time.Time
}

// RefreshToken is a stored refresh token (only its id, the JWT's jti, is
// kept). Tokens of one login form a family: each use replaces the token by
// the next, and presenting a replaced or revoked token revokes the family.
type RefreshToken struct {
	ID         string
	User       dfms.UserID
	Family     string
	ExpiresAt  time.Time
	Revoked    bool
	ReplacedBy string
	CreatedAt  time.Time
}

// Chunk is the metadata of one stored chunk.
type Chunk struct {
	Hash      dfms.Hash
	Size      int64
	Refs      int64
	Pending   bool // reserved, bytes not yet recorded as stored
	Deleting  bool
	ZeroSince time.Time // when Refs last became zero; zero time while referenced
	CreatedAt time.Time
}

// Upload is a multipart upload in progress.
type Upload struct {
	ID        string
	Owner     dfms.UserID
	Parent    dfms.EntryID
	Name      string
	Size      int64 // declared total size; 0 if unknown
	PartSize  int64
	CreatedAt time.Time
	// ExpiresAt is when the upload expires unless a part pushes it out
	// (by the lifetime it was created with, ExpiresAt − CreatedAt), never
	// past Deadline: an upload lives at most until Deadline however busy.
	// An expired upload takes no parts and cannot complete; GC aborts it.
	ExpiresAt time.Time
	Deadline  time.Time
}

// Part is one uploaded part of a multipart upload. Its chunks hold
// references until the upload completes or is aborted.
type Part struct {
	Number    int
	Size      int64
	SHA256    dfms.Hash
	Manifest  *dfms.Manifest // filled by PartManifests; nil in ListParts
	CreatedAt time.Time
}

// Change is one row of the change journal (the outbox): every mutation of an
// owner's tree writes one in the same transaction.
type Change struct {
	Seq    int64
	Owner  dfms.UserID
	Entry  dfms.EntryID
	Parent dfms.EntryID
	Op     string
	// Version is, for OpVersion, the ID of the version the change made
	// current (or, negated, of the version it deleted).
	Version int64
	At      time.Time
	// Origin is the WithOrigin of the change's context ("" if none).
	Origin string
}

// ListOptions pages a directory listing.
type ListOptions struct {
	After  string // list names greater than this (name order only)
	Offset int    // skip this many entries first
	Limit  int    // 0: no limit
	// Sort is SortName (default), SortSize or SortMTime; Desc reverses it.
	// Directories come before other entries, except in name order with
	// After or ByName set.
	Sort string
	Desc bool
	// ByName lists in plain name order (byte order), as the pages of a
	// walk with After do: the first page of such a walk.
	ByName bool
}

// MaxTrashPage bounds a page of ListTrash.
const MaxTrashPage = 1000

// Sort orders of ListDir.
const (
	SortName  = "name"
	SortSize  = "size"
	SortMTime = "mtime"
)

// CommitRequest describes a new version of a file.
type CommitRequest struct {
	Owner dfms.UserID
	// Either Entry names an existing file, or Parent and Name name the file,
	// which is created if it does not exist (with Mode, UID, GID).
	Entry  dfms.EntryID
	Parent dfms.EntryID
	Name   string
	Mode   uint32
	UID    uint32
	GID    uint32

	Manifest dfms.Manifest
	SHA256   dfms.Hash
	MIME     string
	MTime    time.Time // zero: now
	// Base is the ID of the version this content was edited from (0:
	// none). If RequireBase is set and the file's current version is
	// another, the commit fails with kind Conflict; otherwise Base is only
	// recorded.
	Base        int64
	RequireBase bool
	// CommitID, if set, identifies the commit for good (up to
	// MaxCommitIDLen bytes, unique per committing user): a commit whose
	// CommitID a version of the same user already has makes nothing and
	// answers that version and its entry, as the first attempt did, so
	// that a client can retry a commit whose answer it lost, or recover
	// one it made just before a crash, without a duplicate. The same
	// CommitID with another manifest fails with kind Conflict.
	CommitID string
	// CreateOnly makes the commit fail with kind Exist if Parent/Name
	// already exists (server-side copy, create-exclusive).
	CreateOnly bool
	CreatedBy  dfms.UserID

	// Stored and Durable let a commit record chunks whose bytes are still
	// being written, so that the write overlaps the commit's work (the
	// mount in the server's process does this). Stored are rows reserved
	// with ReserveChunks: the commit marks them stored, as AddChunks
	// would, in its own transaction. Durable is called after the commit's
	// work and before its transaction commits, and returns once the bytes
	// are durable (or why they are not, which fails the commit and changes
	// nothing). It runs while the transaction holds its locks, so it
	// should not wait long (files.Commit bounds it). It may
	// be called more than once (a transaction retried), and is required
	// when Stored is set.
	Stored  []dfms.ChunkRef
	Durable func() error
}

// CommitResult is the outcome of one commit of a CommitVersions batch.
type CommitResult struct {
	Entry   dfms.Entry
	Version dfms.Version
	Err     error
}

// TrashItem is one entry of a TrashEntries batch, and when it was deleted
// (zero: now; a client that deletes first and tells later says when): the
// entry's deletion time, and its directory's times move up to it, not
// back.
type TrashItem struct {
	ID dfms.EntryID
	At time.Time
}

// MaxReservedIDs bounds the entry ids one owner holds reserved
// (ReserveEntryIDs).
const MaxReservedIDs = 1 << 16

// CreateResult is the outcome of one entry of a CreateEntries batch.
type CreateResult struct {
	Entry dfms.Entry
	Err   error
}

// PurgeStats reports what a purge released.
type PurgeStats struct {
	Entries  int
	Versions int
	Bytes    int64 // logical bytes released from the owner's usage
}

// SearchQuery selects live entries. Every word of Text must occur, without
// regard to case, in the entry's name or MIME type; wildcards are literal.
// The other fields filter; zero values do not.
type SearchQuery struct {
	Text    string
	Kind    dfms.EntryKind
	MIME    string // exact type, or a prefix ending in '/' (image/)
	MinSize int64
	MaxSize int64
	After   time.Time // modified at or after
	Before  time.Time // modified before
	Folder  dfms.EntryID
	Offset  int
	Limit   int // at most 1000
}

// Usage summarises an owner's storage.
type Usage struct {
	LogicalBytes int64 // User.UsedBytes: every stored version's data bytes and every extended attribute
	HeldBytes    int64 // User.HeldBytes
	Files        int64
	Dirs         int64
	Versions     int64
	QuotaBytes   int64
}

// MaxCommitIDLen bounds CommitRequest.CommitID.
const MaxCommitIDLen = 64

// Fence is one holding of a named lock (Sweeper.Lock). Each taking of any
// lock gets an Epoch greater than every one before, and the store keeps
// the latest Epoch of each lock. A holder can lose its lock without
// knowing (on PostgreSQL the lock lives on a connection, which a restart,
// a failover or an idle timeout can end) while another takes it: the
// writes it makes on behalf of the lock carry the fence, and the store
// refuses them, in the same transaction, once the fence is no longer the
// lock's latest.
//
// What a holder does outside the store (deleting a chunk's bytes) cannot
// be refused that way. The store records the fence on each chunk it
// marks deleting, and no other holder may take that mark over until it is
// old (BeginDelete's stale): a collector must finish deleting the bytes
// well within that time of asking for the mark (see workers/gc).
type Fence struct {
	Name  string
	Epoch int64
}

// MissingChunksError is returned by commits that reference chunks whose rows
// do not exist or are being deleted. Nothing was changed; the caller should
// store those chunks again (and AddChunks them), then retry.
type MissingChunksError struct {
	Hashes []dfms.Hash
}

func (e *MissingChunksError) Error() string {
	return fmt.Sprintf("%d chunk(s) not stored, e.g. %s", len(e.Hashes), e.Hashes[0])
}

// Store is the metadata store: every capability below, which each
// implementation provides and meta/metatest checks. It is safe for
// concurrent use, as is each capability. A consumer takes the narrowest
// capability it needs; the whole Store is for whoever opens or assembles
// one. Errors carry dfms kinds: NotExist for missing or foreign items,
// Exist for a taken name or email, NotDir/IsDir/NotEmpty for tree misuse,
// Invalid for bad arguments, Conflict for cycles, stale bases and chunk
// races, Quota when an owner's quota would be exceeded.
type Store interface {
	Users
	Tree
	Trash
	Xattrs
	Versions
	Chunks
	Sweeper
	Uploads
	Journal
	Outbox
	Nodes
	Replicas
	Lifecycle
}

// Users holds the accounts and their refresh tokens: what authentication
// needs.
type Users interface {
	// CreateUser adds a user and its root directory. Email is matched
	// without regard to case (kind Exist if taken).
	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, id dfms.UserID) (User, error)
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// UpdateUser writes the mutable fields of u (password hash, display
	// name, role, active, quota). An update that would leave no active
	// administrator, where there was one, fails with kind Conflict.
	UpdateUser(ctx context.Context, u User) error
	ListUsers(ctx context.Context) ([]User, error)

	// CreateRefreshToken stores a new refresh token (the first of a family,
	// at login).
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken uses token id: it stores next (same user and
	// family) and marks id replaced by it, in one transaction, and returns
	// the used token. A token that is unknown fails with NotExist; one that
	// is expired, revoked or already replaced fails with Permission, and a
	// replaced or revoked one also revokes its whole family (the token was
	// stolen or replayed).
	RotateRefreshToken(ctx context.Context, id string, next RefreshToken) (RefreshToken, error)
	// RevokeRefreshToken revokes the family of token id (logout).
	RevokeRefreshToken(ctx context.Context, id string) error
	// RevokeUserRefreshTokens revokes every refresh token of a user
	// (password change, deactivation).
	RevokeUserRefreshTokens(ctx context.Context, user dfms.UserID) error
}

// Tree holds each owner's entries: lookups, listings, creation,
// attributes, renames, search, and the owner's usage.
type Tree interface {
	// GetEntry returns the entry with id, live or trashed.
	GetEntry(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (dfms.Entry, error)
	// Lookup returns the live entry named name in directory parent.
	Lookup(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string) (dfms.Entry, error)
	// ListDir returns the live entries of dir in the order opts asks for.
	ListDir(ctx context.Context, owner dfms.UserID, dir dfms.EntryID, opts ListOptions) ([]dfms.Entry, error)
	// CountDir returns the number of live entries of dir.
	CountDir(ctx context.Context, owner dfms.UserID, dir dfms.EntryID) (int, error)
	// CreateEntry adds a directory, a symlink, a special file or an
	// empty file (version 0) under e.Parent. ID, Size, Version and the trash fields are ignored.
	CreateEntry(ctx context.Context, e dfms.Entry) (dfms.Entry, error)
	// ReserveEntryIDs returns n entry ids that no entry has and that
	// CreateEntry will never pick, reserved for owner: the owner may name
	// entries with them before it creates them (CreateEntries). Past
	// MaxReservedIDs held by the owner, the oldest are dropped.
	ReserveEntryIDs(ctx context.Context, owner dfms.UserID, n int) ([]dfms.EntryID, error)
	// CreateEntries adds each entry as CreateEntry would, with the id in
	// its ID (one ReserveEntryIDs reserved for its Owner) and its CTime
	// (zero: now; the directory's times move up to it, not back), in one
	// transaction; one that fails (Exist for a taken name, NotExist for a
	// missing parent, Invalid for an id not reserved for its owner) does
	// not stop the others. An entry that exists already with its id, as
	// the owner's, in its directory under its name (a batch sent again)
	// is answered as created. The error is for the whole batch (nothing
	// was created).
	CreateEntries(ctx context.Context, es []dfms.Entry) ([]CreateResult, error)
	// SetAttr changes an entry's attributes and returns the result.
	SetAttr(ctx context.Context, owner dfms.UserID, id dfms.EntryID, a dfms.SetAttr) (dfms.Entry, error)
	// Rename moves id to newParent/newName. A directory cannot move into
	// itself or a descendant (Conflict). If the name is taken: with replace
	// unset it fails with Exist; with replace set, a file moved over a file
	// with versions continues its history (ListVersions of the moved file
	// lists the replaced file's versions 1..n, unchanged and still the
	// replaced file's, then its own, counted from n+1: an editor's save
	// keeps the history) and the replaced file leaves the tree but not for
	// the trash: it holds those versions until the moved file is purged.
	// A file that already continues a history keeps it, and the file it
	// replaces moves to the trash. Any other file or symlink
	// there moves to the trash, as does an empty directory, and a
	// non-empty one fails with NotEmpty. It returns the moved entry and the
	// replaced one (ID 0 if none).
	Rename(ctx context.Context, owner dfms.UserID, id, newParent dfms.EntryID, newName string, replace bool) (moved, replaced dfms.Entry, err error)
	// RenameName is Rename of the name parent/name, which may be any of
	// an entry's names (hard links). A name over another name of the same
	// entry does nothing, as POSIX says; a file with other names replaced
	// by the move loses only the name it had there (and keeps its
	// history). The moved entry has the new parent and name.
	RenameName(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string, newParent dfms.EntryID, newName string, replace bool) (moved, replaced dfms.Entry, err error)
	// Link gives entry id, which must not be a directory (IsDir), the
	// further name parent/name: a hard link (Exist if the name is taken).
	// The entry is returned under the new name; its Nlink counts its
	// names.
	Link(ctx context.Context, owner dfms.UserID, id, parent dfms.EntryID, name string) (dfms.Entry, error)
	// Unlink removes the name parent/name of a non-directory (IsDir for a
	// directory). An entry with other names stays live under them; its
	// last name moves it to the trash, as Trash does. It returns the
	// entry as it is after.
	Unlink(ctx context.Context, owner dfms.UserID, parent dfms.EntryID, name string) (dfms.Entry, error)
	// Search finds live entries, ordered by name, and returns one page and
	// the total number of matches.
	Search(ctx context.Context, owner dfms.UserID, q SearchQuery) ([]dfms.Entry, int, error)
	// Usage returns the owner's storage summary.
	Usage(ctx context.Context, owner dfms.UserID) (Usage, error)
	// StoredBytes returns the bytes of the distinct chunks that the
	// owner's versions reference: what the owner's data takes after
	// deduplication. It reads every manifest of the owner.
	StoredBytes(ctx context.Context, owner dfms.UserID) (int64, error)
}

// Trash moves subtrees to the trash, lists it, restores from it and
// purges it.
type Trash interface {
	// Trash moves id and its whole subtree to the trash. A file goes
	// under all its names (its hard links are removed, and a restore
	// brings back its first name); links held in a directory's subtree
	// go, and a file named in the subtree and elsewhere stays live
	// elsewhere.
	Trash(ctx context.Context, owner dfms.UserID, id dfms.EntryID) error
	// TrashEntries trashes each item's entry as Trash would, in one
	// transaction; one that fails (NotExist if it is not live) does not
	// stop the others. The error is for the whole batch (nothing was
	// trashed).
	TrashEntries(ctx context.Context, owner dfms.UserID, items []TrashItem) ([]error, error)
	// Restore brings a trashed subtree back under its old parent, which must
	// be live (Conflict otherwise; Exist if its name was taken meanwhile).
	Restore(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (dfms.Entry, error)
	// ListTrash returns one page of the entries the owner deleted (the
	// roots of trashed subtrees), newest first: at most limit (0 or more
	// than MaxTrashPage: MaxTrashPage) after skipping offset, and the total
	// number of them.
	ListTrash(ctx context.Context, owner dfms.UserID, offset, limit int) ([]dfms.Entry, int, error)
	// Purge deletes a trashed subtree for good: its entries, all their
	// versions and the chunk references they held.
	Purge(ctx context.Context, owner dfms.UserID, id dfms.EntryID) (PurgeStats, error)
}

// Xattrs holds entries' extended attributes.
type Xattrs interface {
	// GetXattr returns extended attribute name of entry id, with found
	// false (and no error) if the entry has no such attribute.
	GetXattr(ctx context.Context, owner dfms.UserID, id dfms.EntryID, name string) (value []byte, found bool, err error)
	// ListXattrs returns the names of entry id's extended attributes.
	ListXattrs(ctx context.Context, owner dfms.UserID, id dfms.EntryID) ([]string, error)
	// SetXattr sets an extended attribute. With XattrCreate it fails with
	// Exist if the attribute exists; with XattrReplace with NotExist if it
	// does not. The name and value count as used bytes (kind Quota if
	// they do not fit).
	SetXattr(ctx context.Context, owner dfms.UserID, id dfms.EntryID, name string, value []byte, mode dfms.XattrMode) error
	// RemoveXattr removes an extended attribute (NotExist if absent).
	RemoveXattr(ctx context.Context, owner dfms.UserID, id dfms.EntryID, name string) error
}

// Versions commits new versions of files and reads, checksums and
// deletes old ones.
type Versions interface {
	// CommitVersion adds a new version of a file as described by req, with
	// its chunk references, in one transaction.
	CommitVersion(ctx context.Context, req CommitRequest) (dfms.Entry, dfms.Version, error)
	// CommitVersions makes several commits in one transaction, each as
	// CommitVersion would. A commit that fails (its result's Err) changes
	// nothing and does not stop the others; the error returned is for the
	// batch as a whole (nothing was committed).
	CommitVersions(ctx context.Context, reqs []CommitRequest) ([]CommitResult, error)
	// GetVersion returns a version with its manifest (number 0: current).
	GetVersion(ctx context.Context, owner dfms.UserID, id dfms.EntryID, number int64) (dfms.Version, error)
	// VersionByID returns the version with ID vid, with its manifest,
	// whichever file holds it now (NotExist if none of owner's does).
	VersionByID(ctx context.Context, owner dfms.UserID, vid int64) (dfms.Version, error)
	// ListVersions returns every version of a file, oldest first.
	ListVersions(ctx context.Context, owner dfms.UserID, id dfms.EntryID) ([]dfms.Version, error)
	// SetChecksum records the SHA-256 of the version with ID vid,
	// committed without one (a zero SHA256 means "not computed yet"); a
	// version that already has one keeps it.
	SetChecksum(ctx context.Context, owner dfms.UserID, vid int64, sum dfms.Hash) error
	// DeleteVersion removes one version that is not the current one and
	// releases its chunk references.
	DeleteVersion(ctx context.Context, owner dfms.UserID, id dfms.EntryID, number int64) error
}

// Chunks is the chunk index as writers use it: which chunks are stored,
// reservations before their bytes are stored, possession and holds (see
// Chunks and garbage collection, and Quota, in the package doc).
type Chunks interface {
	// MissingChunks returns those of hashes that are not stored (no row, or
	// a pending one), in the order given, without duplicates. If one of them is being deleted by
	// GC it fails with kind Conflict instead: its bytes may vanish after
	// the caller stores them, so the caller must wait until the sweep has
	// finished (then the chunk is missing) and ask again.
	MissingChunks(ctx context.Context, hashes []dfms.Hash) ([]dfms.Hash, error)
	// ReserveChunks records, before their bytes are stored, chunks the
	// caller is about to store: rows are created pending (or an existing
	// row's grace period is re-armed). A row being deleted makes it fail
	// with kind Conflict. A pending row protects the bytes from the orphan
	// collector and cannot be referenced until AddChunks.
	ReserveChunks(ctx context.Context, refs []dfms.ChunkRef) error
	// AddChunks marks reserved chunks stored once their bytes are durable,
	// with no references, re-arming their grace period. A chunk without a
	// row (its reservation was collected) or being deleted makes it fail
	// with kind Conflict: store it again. Never record a chunk that the
	// caller did not store itself: see KeepChunks.
	AddChunks(ctx context.Context, refs []dfms.ChunkRef) error
	// UnownedChunks returns those of hashes (in order, without duplicates)
	// that owner may not reference: chunks it never sent the bytes of nor
	// committed, and chunks that are not stored. A chunk being deleted by
	// GC fails it with kind Conflict, as for MissingChunks.
	UnownedChunks(ctx context.Context, owner dfms.UserID, hashes []dfms.Hash) ([]dfms.Hash, error)
	// OwnChunks records that owner has sent the bytes of hashes (proof of
	// possession). CommitVersion and PutPart record their chunks too.
	// Possession is of stored bytes: it is recorded only for chunks with
	// a row that is not being deleted, and it ends when GC deletes the
	// chunk, so that storing the same bytes later, by anyone, does not
	// bring it back.
	OwnChunks(ctx context.Context, owner dfms.UserID, hashes []dfms.Hash) error
	// HoldChunks charges owner, before it stores them, for the chunks of
	// refs that nothing references (no row yet, or a count of zero) and
	// that it does not hold already: they count as held bytes for d from
	// now (see Quota in the package doc); chunks it holds already have
	// their hold renewed for d at no charge. It fails with kind Quota,
	// holding nothing, if the owner's quota cannot take the new bytes. An
	// owner without a quota is not charged.
	HoldChunks(ctx context.Context, owner dfms.UserID, refs []dfms.ChunkRef, d time.Duration) error
	// KeepChunks re-arms the GC grace period of chunks that a write relies
	// on without storing them (MissingChunks reported them present). It
	// fails with kind Conflict if one of them has no row any more or is
	// being deleted: the caller must then store it after all.
	KeepChunks(ctx context.Context, hashes []dfms.Hash) error
	// GetChunk returns a chunk's row.
	GetChunk(ctx context.Context, h dfms.Hash) (Chunk, error)
}

// Sweeper is the garbage collector's side of the chunk index: the
// collection's lock and the fenced three-step deletion of a chunk.
type Sweeper interface {
	// Lock takes the named cluster-wide lock (the GC sweep is a
	// singleton) and returns its fence and its release; kind Conflict if
	// it is held.
	Lock(ctx context.Context, name string) (f Fence, unlock func(), err error)
	// SweepCandidates returns up to limit chunks whose count has been zero
	// since before cutoff, and rows left deleting by an interrupted sweep.
	SweepCandidates(ctx context.Context, cutoff time.Time, limit int) ([]Chunk, error)
	// BeginDelete marks h deleting on behalf of the holder of f if its
	// count is still zero since before cutoff, and reports whether it
	// did. A row already deleting is the holder's own again if f marked
	// it, or is taken over if another holder marked it before stale (that
	// collector died or lost its lock: see Fence); a younger mark of
	// another holder is left alone, and BeginDelete reports false. Only
	// after true may the caller delete the bytes, and then call
	// FinishDelete. A stale f fails it with kind Conflict.
	BeginDelete(ctx context.Context, f Fence, h dfms.Hash, cutoff, stale time.Time) (bool, error)
	// FinishDelete removes the row of a chunk that f marked deleting
	// (BeginDelete, ClaimOrphan), and every user's possession of it (see
	// OwnChunks); kind Conflict if the row is not marked by f (never
	// marked, or taken over).
	FinishDelete(ctx context.Context, f Fence, h dfms.Hash) error
	// ClaimOrphan records h, found in a chunk store without a row, as
	// deleting on behalf of the holder of f and reports whether it did;
	// false means a row exists (an upload reserved or recorded it
	// meanwhile) and the bytes must stay. After true the caller deletes
	// the bytes and calls FinishDelete. A stale f fails it with kind
	// Conflict.
	ClaimOrphan(ctx context.Context, f Fence, h dfms.Hash, size int64) (bool, error)
}

// Uploads holds multipart uploads and their parts.
type Uploads interface {
	// CreateUpload starts a multipart upload of parent/name, expiring at
	// u.ExpiresAt (zero: in a day) and living at most until u.Deadline
	// (zero: a week, or ExpiresAt if later). With maxOpen > 0, an owner
	// who has maxOpen uploads that have not expired gets kind Quota.
	CreateUpload(ctx context.Context, u Upload, maxOpen int) (Upload, error)
	GetUpload(ctx context.Context, owner dfms.UserID, id string) (Upload, error)
	// PutPart records part number n (replacing an earlier one with the same
	// number), takes references on its chunks, and extends the upload's
	// expiry by its original lifetime (uploads expire when idle), never
	// past its Deadline. The part's size is charged to the owner's held
	// bytes (kind Quota if it does not fit; a replaced part's size is
	// given back), and ends the owner's holds on its chunks. An expired
	// upload fails with kind NotExist.
	PutPart(ctx context.Context, owner dfms.UserID, id string, n int, size int64, sum dfms.Hash, m dfms.Manifest) error
	ListParts(ctx context.Context, owner dfms.UserID, id string) ([]Part, error)
	// PartManifests is ListParts with each part's Manifest filled in.
	PartManifests(ctx context.Context, owner dfms.UserID, id string) ([]Part, error)
	// CompleteUpload commits the parts 1..N (no gaps: Invalid otherwise) as
	// a new version, moving the parts' references (and their bytes, from
	// held to used) to it, and removes the upload. sum is the SHA-256 of the whole content. If expect is not
	// nil, the parts must still make exactly that manifest (the one sum was
	// computed over), or it fails with kind Conflict.
	CompleteUpload(ctx context.Context, owner dfms.UserID, id string, sum dfms.Hash, mime string, expect *dfms.Manifest) (dfms.Entry, dfms.Version, error)
	// AbortUpload removes an upload and releases its parts' references
	// and held bytes.
	AbortUpload(ctx context.Context, owner dfms.UserID, id string) error
	// ExpiredUploads lists uploads that expired before now.
	ExpiredUploads(ctx context.Context, now time.Time, limit int) ([]Upload, error)
}

// Journal reads each owner's change journal.
type Journal interface {
	// Changes returns the owner's journal rows with Seq > after, oldest
	// first, at most limit. An owner's rows become visible in Seq order
	// (a transaction draws its numbers only after the owner's earlier
	// ones committed), so a reader that moves its cursor to the last Seq
	// it got sees every change exactly once.
	Changes(ctx context.Context, owner dfms.UserID, after int64, limit int) ([]Change, error)
	// LastChange returns the sequence number of the owner's latest change
	// (0 if none): a cursor from which Changes reports only what follows.
	LastChange(ctx context.Context, owner dfms.UserID) (int64, error)
}

// Outbox holds the events (dfms.Event) that transactions wrote with the
// changes they describe, until the relay has published them. Every
// transaction that changes an entry, a version, a chunk's existence, a
// user or a storage node adds its events to the outbox itself; these
// methods are the relay's.
type Outbox interface {
	// PendingEvents returns up to limit events not yet published, in ID
	// order. Events of one key were written by transactions that ran one
	// after the other, so they appear in their order; an event of a
	// transaction still running appears later, after some with higher IDs.
	PendingEvents(ctx context.Context, limit int) ([]dfms.Event, error)
	// DeleteEvents removes the events with these IDs, which the bus has:
	// the relay's mark that they are published.
	DeleteEvents(ctx context.Context, ids []int64) error
	// AppendEvents adds events that no other change carries (a copy of
	// a chunk found bad by a read), with their Topic, Key, Type and Data;
	// their IDs and times are the store's.
	AppendEvents(ctx context.Context, evs []dfms.Event) error
	// OutboxBacklog returns how many events wait for the relay and the
	// time of the oldest (zero if none).
	OutboxBacklog(ctx context.Context) (int64, time.Time, error)
}

// Nodes holds the storage nodes.
//
// A node's state has two owners. Draining is the operator's: only
// SetNodeDraining moves a node into or out of it. Up, suspect and down
// are the health monitor's, recorded by SetNodeState, which never
// overwrites draining and never sets it, so that a drain made between
// the monitor's read of a node and its write is not lost, nor an undrain
// undone. The other methods keep a known node's state as it is.
type Nodes interface {
	// PutNode registers n, or replaces the URL, weight and zone of the
	// node with its id; a known node keeps its state and probe record
	// (its owners' to change, not a registration's). n.State is the state
	// of a new node (empty: up). n must pass StorageNode.Check (kind
	// Invalid otherwise). The server registers its configured nodes with
	// it on every start.
	PutNode(ctx context.Context, n dfms.StorageNode) error
	// AddNode registers n, a new node, as PutNode would; kind Exist if a
	// node has its id (which is left as it is).
	AddNode(ctx context.Context, n dfms.StorageNode) error
	// UpdateNode changes what c sets of node id's description, in one
	// transaction, and returns the node as recorded; the state and probe
	// record stay. Kind NotExist if there is no such node, Invalid if the
	// result does not pass StorageNode.Check (nothing changes).
	UpdateNode(ctx context.Context, id string, c NodeChange) (dfms.StorageNode, error)
	// SetNodeDraining drains node id (drain true: its state becomes
	// draining), or ends its drain (false): a draining node becomes up if
	// its last probe passed (no failures), suspect otherwise, and the
	// health monitor takes it from there; a node that is not draining is
	// left as it is. It returns the node as recorded, and is idempotent;
	// kind NotExist if there is no such node.
	SetNodeDraining(ctx context.Context, id string, drain bool) (dfms.StorageNode, error)
	// RemoveNode removes node id if it is draining and no copy is
	// recorded on it (Replicas): kind Conflict otherwise, and nothing
	// changes; kind NotExist if there is no such node.
	RemoveNode(ctx context.Context, id string) error
	// ListNodes returns every node, by id.
	ListNodes(ctx context.Context) ([]dfms.StorageNode, error)
	// SetNodeState records a probe's outcome: the node's consecutive
	// failures and the probe's time, and its state, which is left as it
	// is if the node is draining or state is draining (the operator's:
	// see above). It returns the state recorded; kind NotExist if there
	// is no such node.
	SetNodeState(ctx context.Context, id string, state dfms.NodeState, failures int, probe time.Time) (dfms.NodeState, error)
}

// NodeChange is a change of a storage node's description (UpdateNode):
// each field that is not nil replaces the node's.
type NodeChange struct {
	URL    *string
	Weight *int
	Zone   *string
}

// Replicas records which storage nodes hold a copy of which chunks. The
// record follows the chunk stores (a copy is recorded after it is
// durable, and forgotten after it is deleted), so it may lag them but
// never names a copy that was not stored; readers that miss a recorded
// copy look further.
type Replicas interface {
	// AddReplicas records the copies rs (again: their stored time is
	// renewed). Their nodes must be registered (PutNode).
	AddReplicas(ctx context.Context, rs []dfms.Replica) error
	// DropReplicas forgets the copies rs; forgetting one not recorded is
	// not an error.
	DropReplicas(ctx context.Context, rs []dfms.Replica) error
	// DropSurplusReplica forgets the copy r, as DropReplicas does, only
	// if at least keep other copies of its chunk stay recorded, and
	// reports whether it did; decisions on copies of one chunk are
	// serialised, so that two processes removing different surplus
	// copies at once cannot leave fewer than keep. The caller deletes the
	// copy's bytes only after true.
	DropSurplusReplica(ctx context.Context, r dfms.Replica, keep int) (bool, error)
	// ChunkReplicas returns the ids of the nodes recorded as holding h,
	// sorted.
	ChunkReplicas(ctx context.Context, h dfms.Hash) ([]string, error)
	// NodeUsage returns, per node that holds any, the copies recorded on
	// it and their bytes.
	NodeUsage(ctx context.Context) (map[string]dfms.NodeUsage, error)
	// ChunkCopies returns up to limit stored chunks (neither pending nor
	// being deleted) whose hash sorts after after, in hash order, each
	// with the nodes recorded as holding a copy: the replication
	// manager's pass over the chunk index.
	ChunkCopies(ctx context.Context, after dfms.Hash, limit int) ([]ChunkCopies, error)
}

// ChunkCopies is a chunk with the nodes recorded as holding a copy.
type ChunkCopies struct {
	Hash  dfms.Hash
	Size  int64
	Nodes []string // sorted
}

// Lifecycle checks, syncs and closes the store as a whole.
type Lifecycle interface {
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Sync makes every write committed so far durable, the ones made
	// with WithLazyDurability included.
	Sync(ctx context.Context) error
	Close() error
}

// lazy marks the contexts of WithLazyDurability.
var lazy = dfms.NewContextFlag("meta.LazyDurability")

// WithLazyDurability marks the writes made with ctx as ones that may
// become durable after they return: each is still atomic, ordered after
// the writes before it and visible at once, and survives a crash of the
// process, but a crash of the machine may undo the latest of them until
// the next durable write or Sync. The mount makes its namespace changes
// this way (a local file system makes a create durable at fsync too).
// Stores whose every commit is durable anyway ignore it.
func WithLazyDurability(ctx context.Context) context.Context {
	return lazy.Set(ctx)
}

// LazyDurability reports whether ctx carries WithLazyDurability.
func LazyDurability(ctx context.Context) bool { return lazy.In(ctx) }

// unreserved marks the contexts of WithUnreservedIDs.
var unreserved = dfms.NewContextFlag("meta.UnreservedIDs")

// WithUnreservedIDs marks the creates made with ctx (CreateEntries) as
// ones whose ids need not be reserved for their owner: the embedded
// mount's, in the store's own process, whose journal may name files with
// ids reserved before reservations were kept per owner (an upgrade over
// a crashed mount). An id taken is still refused. Never for a request of
// a client.
func WithUnreservedIDs(ctx context.Context) context.Context {
	return unreserved.Set(ctx)
}

// UnreservedIDs reports whether ctx carries WithUnreservedIDs.
func UnreservedIDs(ctx context.Context) bool { return unreserved.In(ctx) }

type originKey struct{}

// MaxOriginLen bounds an origin.
const MaxOriginLen = 64

// WithOrigin names who makes the writes done with ctx (a mount's
// session): the change feed reports it with each change, so that a
// client can tell its own changes from others'.
func WithOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, originKey{}, origin)
}

// Origin returns the WithOrigin of ctx, or "".
func Origin(ctx context.Context) string {
	v, _ := ctx.Value(originKey{}).(string)
	return v
}

// Checker is the metadata side of a consistency check (dfms fsck, package
// workers/fsck): pages over every manifest and chunk row, the files whose
// current version is gone, where a file is, and the recount of reference
// counts. It is an optional capability, found by type assertion on a
// Store (package meta/sqlmeta has it): nothing but a check needs it.
//
// The pages are read each in its own transaction, so a check of a store
// in use sees a moving target; what it finds wrong is confirmed by a
// transaction of its own (RecountRefs) before it is reported as damage.
type Checker interface {
	// CheckVersions returns up to limit versions whose ID is greater than
	// after, in ID order, each with its manifest, file and owner: the
	// versions of every file, trashed ones and the earlier files of a
	// history included.
	CheckVersions(ctx context.Context, after int64, limit int) ([]CheckedManifest, error)
	// CheckParts returns up to limit parts of multipart uploads that sort
	// after after (by upload id, then part number), each with its
	// manifest, upload and owner (Entry is the upload's directory).
	CheckParts(ctx context.Context, after PartKey, limit int) ([]CheckedManifest, error)
	// CheckChunks returns up to limit chunk rows, in every state, whose
	// hash is at least from, in hash order, each with the nodes recorded
	// as holding a copy (sorted).
	CheckChunks(ctx context.Context, from dfms.Hash, limit int) ([]ChunkRecord, error)
	// LookupChunks returns the rows, in every state, of those of hashes
	// that have one, in no particular order.
	LookupChunks(ctx context.Context, hashes []dfms.Hash) ([]Chunk, error)
	// DanglingEntries returns up to limit files whose id is greater than
	// after, in id order, whose current version (Entry.VersionID) names
	// no version: live files and trashed ones (Trashed says which).
	DanglingEntries(ctx context.Context, after dfms.EntryID, limit int) ([]DanglingEntry, error)
	// PlaceOf says where the versions of file id are seen: the path of the
	// file whose history holds them (id itself, or the file that took its
	// name and continues its history), from its owner's root, and whether
	// that file is in the trash. Kind NotExist if there is no entry id.
	PlaceOf(ctx context.Context, id dfms.EntryID) (Place, error)
	// RecountRefs counts, in one transaction, the references to each of
	// hashes (at most MaxRecount) in every version's manifest and every
	// multipart part, per occurrence, and compares them with the chunks'
	// recorded counts. With apply set it also sets each recorded count that
	// differs to the true one, in that transaction, except on rows being
	// deleted (a sweep owns them; Deleting says so) and pending rows,
	// which a commit cannot reference: a count set to zero starts the
	// chunk's grace period then, as a purge that releases the last
	// reference does, and a count set above zero ends it.
	//
	// It is safe against concurrent commits, purges and sweeps because it
	// is one transaction that reads every reference to those chunks and
	// writes their rows: any transaction that changes their references
	// writes the same rows (PostgreSQL's serializable transactions let
	// only one of two such commit, and the other is retried; SQLite runs
	// writers one at a time), and a sweep marks a row deleting only while
	// its count is zero, which the recount either precedes (the sweep then
	// sees the true count) or follows (the row is left alone).
	RecountRefs(ctx context.Context, hashes []dfms.Hash, apply bool) ([]Recount, error)
}

// MaxRecount bounds the hashes of one RecountRefs.
const MaxRecount = 1000

// CheckedManifest is a manifest that holds references: a version's
// (Version is its ID) or a multipart part's (Upload and Part name it).
type CheckedManifest struct {
	Version  int64
	Upload   string
	Part     int
	Entry    dfms.EntryID // the version's file; the upload's directory
	Owner    dfms.UserID
	Manifest dfms.Manifest
}

// PartKey names a multipart part: the cursor of CheckParts (the zero
// PartKey sorts first).
type PartKey struct {
	Upload string
	Number int
}

// ChunkRecord is a chunk's row with the nodes recorded as holding a copy.
type ChunkRecord struct {
	Chunk
	Nodes []string
}

// DanglingEntry is a file whose current version names no version.
type DanglingEntry struct {
	Entry     dfms.EntryID
	Owner     dfms.UserID
	VersionID int64
	Trashed   bool
}

// Place is where a file is: its owner, its path from the owner's root
// ("/" separated, starting with "/"), and whether it is in the trash.
type Place struct {
	Owner   dfms.UserID
	Path    string
	Trashed bool
}

// Recount is one chunk's count as recorded and as counted (RecountRefs).
type Recount struct {
	Hash     dfms.Hash
	Found    bool  // the chunk has a row
	Recorded int64 // its count before (0 without a row)
	Counted  int64 // the references in manifests and parts
	Pending  bool
	Deleting bool
	Set      bool // the count was set to Counted (apply)
}
