// Package vfs is the client-side file system layer of the DFMS mount: the
// POSIX-shaped operations (lookup, getattr, readdir, create, open, read,
// write, truncate, rename, …) on inode numbers, without any FUSE type.
// Package fusefs adapts it to the kernel; tests drive it directly.
//
// What a user of the mount may expect is described in docs/mount.md;
// this comment is how it is done, and the file comments named
// below hold the details.
//
// # Backends
//
// The layer talks to the server through the narrow [Backend] interface:
// tree operations by entry id, and content as manifests and chunks.
// Package fusefs/local is the in-process implementation over the
// server's file layer (server/files), which `dfms up` uses; fusefs/remote
// is the one over the REST API (server/api/client), which `dfms mount`
// uses. The layer itself imports neither.
//
// # Reads
//
// A file's version is read as its manifest's chunks, through a chunk
// cache: a small in-memory LRU and an optional on-disk LRU bounded in
// bytes (Options.CacheSize; `dfms mount --cache-size`, 10 GiB by
// default). Chunks are named by their SHA-256, so a cached chunk is never
// stale, and every chunk is verified before use. A sequential read fetches
// the next chunks in the background (Options.ReadAhead, 8 chunks by
// default). Opening a file whose version did not change since the kernel
// cached its pages lets the kernel keep them (Handle.KeepCache), and so
// does opening a file written here and not committed yet: what was
// written went through those pages, and dropping them would lose a write
// the kernel has copied there and not sent yet. The kernel's own
// read-ahead for the mount is raised by package fusefs.
//
// # Consistency and writes
//
// Close-to-open, as NFS: opening a file sees the version that is current
// at that moment on the server (stale.go: the open asks it, since the
// change feed tells of others' changes only with its lag; an inode
// deleted elsewhere since the kernel looked it up answers ESTALE, and the
// kernel looks its name up again); a writer's data becomes a new version when it closes
// (flush), calls fsync, or releases the file. With Options.WriteBack the
// commit of a close runs in the background right after it
// (writeback.go): this mount sees the data at once, other clients a
// moment later, and every close is still a version of its own. A version
// is per open, not per descriptor: changes made through an open after
// one of its duplicated descriptors was closed (a shell's redirect
// closes one before it writes) join what that close sealed, and without
// write-back a close that finds the file truncated to nothing leaves it
// for the writes that follow, so no empty version comes first. Until
// then a file is its base version plus what was written: the written
// ranges are kept in a sparse stage file, truncation lowers a limit past
// which base bytes are gone, and nothing is copied. A commit re-cuts content-defined chunks
// only around the changes (rechunk.go), uploads the chunks the server
// lacks and commits the manifest, so a one-byte edit of a large file
// costs one or two chunks. What nobody wrote (past the limit, or in a
// hole of the base version) becomes a hole of the manifest, which stores
// nothing: a sparse file costs its data. Stat counts a file's data bytes
// in st_blocks, and Handle.Seek answers SEEK_DATA and SEEK_HOLE. All handles of one file in this mount share
// one stage. Every change is appended to a journal next to the stage
// (journal.go): the next mount of the same cache directory commits what a
// crashed mount left behind. A commit that fails at close keeps the data
// staged; it is retried (in the background with write-back, otherwise at
// the next flush or release), at Close, or by the next mount. A file
// unlinked while open is written to its stage only: its data goes when it
// is released, as on a local disk. A file renamed over another continues
// its history on the server (an editor's save keeps .versions): the
// replaced file's versions come first, unchanged, and the moved file's
// own count after them.
//
// Staged data whose file was changed elsewhere meanwhile (found by the
// recovery of a crashed mount's stage, which commits with its base
// version required) is never written over the newer version: it is kept
// as a conflict copy beside it, "NAME (conflict <time>)" (conflictName),
// and the log says so.
//
// Write-back commits the files closed in a short span together: a
// committer takes up to 64 queued files at once, uploads small ones
// together and commits them in one metadata transaction; a commit that
// fails is logged and retried with a backoff (up to 30 s between tries).
// fsync(2) of a file waits for its commit, fsync of a directory (and
// `dfms sync`, since sync(2) does not reach FUSE) for every changed file
// of the mount ([FS.Sync]). A committer holds each file of its batch for
// the whole upload and commit; stat of such a file answers at once from a
// snapshot of its size and mtime as written, instead of waiting for it.
// A version written elsewhere between a close here and its background
// commit ends up under the mount's commit; both stay in the history.
//
// A file written from its start (new, or truncated to nothing, written
// sequentially) is pre-cut (precut.go): once the written prefix runs 16
// MiB past what is done, a worker cuts, hashes and uploads it in rounds
// of at most 32 MiB while the application is still writing, with two
// rounds uploading at once. The commit waits for the rounds under way and
// cuts only what they leave.
//
// # Deferred creates and unlinks
//
// Over a backend that can create files under ids reserved ahead
// ([FileCreator]) and trash them in batches ([Trasher]) — both backends,
// so `dfms up` and `dfms mount` — creates and unlinks of files do not
// wait for it. A
// created file takes a reserved id and is pending (pending.go): this
// mount shows it, its journal records it, and the backend learns of it
// with its first commit (the write-back creates the pending files of a
// batch in one transaction) or as soon as anything else needs it there:
// an unlink, a rename over another file, rmdir of its folder, xattrs,
// fsync. chmod, chown, utimens and a rename to a free name before that
// cost no transaction (tar's fchmod after each file, git's temporary
// object files). An unlinked file's name goes at once and its removal is
// logged in the cache directory (removals.go); a remover trashes those in
// one transaction every 20 ms. Any other change sent to the backend goes
// after the removals made before it, so the backend sees this mount's
// changes in order, with the times they were made. Other clients see a
// new file, or a name go away, in that fraction of a second. If another
// client takes the name of a pending file meanwhile (or removes its
// folder), the file is made beside it (or in the root) under a conflict
// name, and the log says so. A crash of the mount loses neither: the next
// mount of the cache directory makes what the journals and the log
// record. Over a backend without them, creates and unlinks are made at
// once. Over the REST API a batch is one request (POST /fs/files,
// /fs/trash) with ids reserved ahead (POST /fs/ids), and a retried batch
// is answered as made.
//
// # .versions
//
// Every directory has a hidden, read-only `.versions` directory: reachable
// by name, absent from ReadDir. `.versions/NAME/` lists the versions of
// file NAME as v1, v2, … (mode 0444, size and mtime of that version), and
// reading one reads exactly that version. Anything that would change the
// .versions tree fails with kind ReadOnly (EROFS). Copying a version back
// over NAME is an ordinary write, so it makes a new version; its chunks
// are all known to the server, so it stores nothing new.
//
// # Coherence
//
// [FS.Watch] follows the backend's change feed; the FUSE adapter uses it
// to drop what the kernel cached of changes made elsewhere (the REST API,
// other mounts), so that they show up at once rather than after the
// one-second attribute and entry timeouts. Changes carry the origin of
// the backend that made them ([Originator]; over the REST API each
// request carries it in X-DFMS-Origin, and the feed reports it with every
// change), so the mount skips exactly its own. While the feed answers,
// the FS also keeps a cache of the entries it read or changed, which the
// feed's changes invalidate (metacache.go): a stat, lookup or open of an
// entry seen lately costs no request, and a directory this mount created
// answers lookups of names that are not there (a create's first question)
// by itself. Others' changes drop what they changed within the feed's
// latency (about 0.1 s). The cache starts empty whenever the feed starts
// or fails (a long poll past its deadline counts as failed), and nothing
// in it, a directory's list of names included, is used for more than
// 30 s without being read again. One failure is different: while the
// server cannot be reached (the feed fails with kind Unavailable),
// nothing can change through it, so the cache keeps answering with what
// it holds, whatever its age, and the feed, resumed from where it
// stopped, drops what changed meanwhile (through another server of a
// cluster) once it answers; any other answer first (the server is back,
// the feed not yet) empties the cache instead. Other operations then wait
// for the server as the backend does (remote.Backend waits up to
// `dfms mount --server-wait`, and repeats only what is safe to repeat).
//
// # Durability
//
// A version is durable once committed. A backend may acknowledge
// namespace changes before they are durable ([Syncer]; the in-process one
// does, as a local file system does): fsync(2) of a file or directory,
// [FS.Sync] and [FS.Close] make them durable. With `dfms up`, names and
// attributes (create, mkdir, rename, unlink, chmod, utimens, xattrs) are
// made at once, in order and atomically, and survive a crash of the
// process; they are durable against a crash of the machine with the next
// version commit, or at the latest when fsync of any file or directory of
// the mount, `dfms sync` or the unmount asks for it. On SQLite those
// transactions run with synchronous=NORMAL (meta.WithLazyDurability) and
// the barrier is an fsync of the write-ahead log. Changes made through
// the REST API, and all of a remote mount's, are durable when answered.
//
// # Extended attributes
//
// Stored by the server per entry (xattr.go): user.*, trusted.* and
// security.*, values up to 64 KiB (meta.MaxXattrValue); system.* (POSIX
// ACLs, not enforced) is NotSupported, and security.capability is
// answered "none" without a round trip, since the kernel asks for it
// before every write.
//
// # Requests
//
// Over the REST API every lookup, create and chunk the FS cannot answer
// itself is a request, so a busy mount makes many: the server's default
// rate limits allow one (2,000 requests/s per user); lower limits slow it
// down. The API takes only names that are valid UTF-8; others fail with
// kind Invalid (EINVAL).
package vfs
