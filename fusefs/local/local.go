// Package local is the in-process backend of the mount: the server's file
// layer used directly, as `dfms up` runs the server and the mount in one
// process.
package local

import (
	"context"
	"mime"
	"path"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// Backend is the in-process vfs.Backend: the server's file layer, used directly
// by `dfms up`, which runs the server and the mount in one process.
//
// Its namespace changes (create, mkdir, symlink, unlink, rmdir, rename,
// attributes, xattrs) are made with meta.WithLazyDurability, as a local
// file system makes them: atomic and in order at once, durable with the
// next version commit or Sync (fsync(2) of any file or directory of the
// mount). Version commits are durable when they return.
type Backend struct {
	// files.Meta is the whole metadata store, which the backend mirrors
	// most of (tree, trash, xattrs, journal, users, chunk index, Sync).
	files  *files.Service
	owner  dfms.UserID
	origin string // stamped on every change it makes
	// lazy counts the lazy writes made; durable is the count up to which
	// they are known durable (a durable commit or Sync started after them).
	lazy, durable atomic.Int64
}

var (
	_ vfs.Backend       = (*Backend)(nil)
	_ vfs.CommitBatcher = (*Backend)(nil)
	_ vfs.Syncer        = (*Backend)(nil)
	_ vfs.Originator    = (*Backend)(nil)
	_ vfs.FileCreator   = (*Backend)(nil)
	_ vfs.Trasher       = (*Backend)(nil)
)

// Origin implements vfs.Originator.
func (l *Backend) Origin() string { return l.origin }

// lazyCtx marks a namespace change; done counts it once made.
func (l *Backend) lazyCtx(ctx context.Context) context.Context {
	return meta.WithLazyDurability(l.ctx(ctx))
}

// ctx names the changes made with it as this backend's.
func (l *Backend) ctx(ctx context.Context) context.Context { return meta.WithOrigin(ctx, l.origin) }

func (l *Backend) done(err error) error {
	if err == nil {
		l.lazy.Add(1)
	}
	return err
}

// madeDurable records that the lazy writes counted up to n are durable.
func (l *Backend) madeDurable(n int64) {
	for {
		d := l.durable.Load()
		if n <= d || l.durable.CompareAndSwap(d, n) {
			return
		}
	}
}

// Sync implements vfs.Syncer: it makes the namespace changes made so far
// durable, unless a durable commit since has done so.
func (l *Backend) Sync(ctx context.Context) error {
	n := l.lazy.Load()
	if n <= l.durable.Load() {
		return nil
	}
	if err := l.files.Meta().Sync(ctx); err != nil {
		return err
	}
	l.madeDurable(n)
	return nil
}

// New returns a vfs.Backend over svc that acts as owner.
func New(svc *files.Service, owner dfms.UserID) *Backend {
	return &Backend{files: svc, owner: owner, origin: vfs.NewOrigin()}
}

func entryOf(e dfms.Entry) vfs.Entry {
	return vfs.Entry{ID: e.ID, Parent: e.Parent, Name: e.Name, Kind: e.Kind, Mode: e.Mode & 0o7777, UID: e.UID, GID: e.GID,
		Size: e.Size, DataSize: e.DataSize, MTime: e.MTime, CTime: e.CTime, ATime: e.ATime, Target: e.Target, Rdev: e.Rdev, Nlink: e.Nlink, Version: e.VersionID, Live: e.Live()}
}

// Root implements vfs.Backend.
func (l *Backend) Root(ctx context.Context) (vfs.Entry, error) {
	u, err := l.files.Meta().GetUser(ctx, l.owner)
	if err != nil {
		return vfs.Entry{}, err
	}
	return l.GetAttr(ctx, u.Root)
}

// Lookup implements vfs.Backend.
func (l *Backend) Lookup(ctx context.Context, parent dfms.EntryID, name string) (vfs.Entry, error) {
	e, err := l.files.Lookup(ctx, l.owner, parent, name)
	if err != nil {
		return vfs.Entry{}, err
	}
	return entryOf(e), nil
}

// GetAttr implements vfs.Backend.
func (l *Backend) GetAttr(ctx context.Context, id dfms.EntryID) (vfs.Entry, error) {
	e, err := l.files.Meta().GetEntry(ctx, l.owner, id)
	if err != nil {
		return vfs.Entry{}, err
	}
	return entryOf(e), nil
}

// ReadDir implements vfs.Backend.
func (l *Backend) ReadDir(ctx context.Context, dir dfms.EntryID) ([]vfs.Entry, error) {
	es, err := l.files.List(ctx, l.owner, dir, meta.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]vfs.Entry, len(es))
	for i, e := range es {
		out[i] = entryOf(e)
	}
	return out, nil
}

func (l *Backend) create(ctx context.Context, e dfms.Entry) (vfs.Entry, error) {
	e.Owner = l.owner
	out, err := l.files.Meta().CreateEntry(l.lazyCtx(ctx), e)
	if l.done(err) != nil {
		return vfs.Entry{}, err
	}
	return entryOf(out), nil
}

// Mkdir implements vfs.Backend.
func (l *Backend) Mkdir(ctx context.Context, parent dfms.EntryID, name string, mode, uid, gid uint32) (vfs.Entry, error) {
	return l.create(ctx, dfms.Entry{Parent: parent, Name: name, Kind: dfms.KindDir, Mode: mode & 0o7777, UID: uid, GID: gid})
}

// Symlink implements vfs.Backend.
func (l *Backend) Symlink(ctx context.Context, parent dfms.EntryID, name, target string, uid, gid uint32) (vfs.Entry, error) {
	return l.create(ctx, dfms.Entry{Parent: parent, Name: name, Kind: dfms.KindSymlink, Mode: 0o777, UID: uid, GID: gid, Target: target})
}

// Mknod implements vfs.Backend.
func (l *Backend) Mknod(ctx context.Context, parent dfms.EntryID, name string, kind dfms.EntryKind, mode, rdev, uid, gid uint32) (vfs.Entry, error) {
	if !kind.Special() {
		return vfs.Entry{}, dfms.Errorf("local.Mknod", dfms.Invalid, "mknod makes FIFOs, sockets and devices")
	}
	return l.create(ctx, dfms.Entry{Parent: parent, Name: name, Kind: kind, Mode: mode & 0o7777, Rdev: rdev, UID: uid, GID: gid})
}

// Link implements vfs.Backend.
func (l *Backend) Link(ctx context.Context, id, parent dfms.EntryID, name string) (vfs.Entry, error) {
	e, err := l.files.Link(l.lazyCtx(ctx), l.owner, id, parent, name)
	if l.done(err) != nil {
		return vfs.Entry{}, err
	}
	return entryOf(e), nil
}

// Readlink implements vfs.Backend.
func (l *Backend) Readlink(ctx context.Context, id dfms.EntryID) (string, error) {
	return l.files.Readlink(ctx, l.owner, id)
}

// CreateFile implements vfs.Backend.
func (l *Backend) CreateFile(ctx context.Context, parent dfms.EntryID, name string, mode, uid, gid uint32) (vfs.Entry, error) {
	return l.create(ctx, dfms.Entry{Parent: parent, Name: name, Kind: dfms.KindFile, Mode: mode & 0o7777, UID: uid, GID: gid,
		MIME: mime.TypeByExtension(path.Ext(name))})
}

// ReserveIDs implements vfs.FileCreator. The reservation is durable when it
// returns: an id a journal names is never handed to another entry.
func (l *Backend) ReserveIDs(ctx context.Context, n int) ([]dfms.EntryID, error) {
	return l.files.Meta().ReserveEntryIDs(l.ctx(ctx), l.owner, n)
}

// CreateFiles implements vfs.FileCreator: one metadata transaction.
func (l *Backend) CreateFiles(ctx context.Context, es []vfs.Entry) ([]vfs.CommitResult, error) {
	in := make([]dfms.Entry, len(es))
	for i, e := range es {
		in[i] = dfms.Entry{ID: e.ID, Owner: l.owner, Parent: e.Parent, Name: e.Name, Kind: dfms.KindFile, Mode: e.Mode & 0o7777,
			UID: e.UID, GID: e.GID, MTime: e.MTime, CTime: e.CTime, ATime: e.ATime, Named: e.Named,
			MIME: mime.TypeByExtension(path.Ext(e.Name))}
	}
	// Its journal may hold ids reserved before they were kept per owner.
	res, err := l.files.Meta().CreateEntries(meta.WithUnreservedIDs(l.lazyCtx(ctx)), in)
	if l.done(err) != nil {
		return nil, err
	}
	out := make([]vfs.CommitResult, len(res))
	for i, r := range res {
		out[i] = vfs.CommitResult{Err: r.Err}
		if r.Err == nil {
			out[i].Entry = entryOf(r.Entry)
		}
	}
	return out, nil
}

// VerifiesChunks reports that ReadChunk verifies what it returns
// (files.ReadChunk does), so the mount does not hash chunks again.
func (l *Backend) VerifiesChunks() bool { return true }

// Manifest implements vfs.Backend.
func (l *Backend) Manifest(ctx context.Context, id dfms.EntryID, version int64) (vfs.VersionInfo, dfms.Manifest, error) {
	var v dfms.Version
	var err error
	if version == 0 {
		v, err = l.files.OpenVersion(ctx, l.owner, id, 0)
	} else {
		v, err = l.files.VersionByID(ctx, l.owner, version)
	}
	if err != nil {
		return vfs.VersionInfo{}, dfms.Manifest{}, err
	}
	var m dfms.Manifest
	if v.Manifest != nil {
		m = *v.Manifest
	}
	return vfs.VersionInfo{ID: v.ID, Number: max(v.Number, 0), Size: m.Size(), Time: v.CreatedAt}, m, nil
}

// ReadChunk implements vfs.Backend. The file layer reads and verifies it.
func (l *Backend) ReadChunk(ctx context.Context, _ dfms.EntryID, _ int64, ref dfms.ChunkRef) ([]byte, error) {
	return l.files.ReadChunk(ctx, ref, nil)
}

// Chunking implements vfs.Backend.
func (l *Backend) Chunking(context.Context) (chunking.Params, error) {
	return l.files.Chunking(), nil
}

// Missing implements vfs.Backend. A hole (the zero hash) is never
// missing: it names no chunk.
func (l *Backend) Missing(ctx context.Context, hs []dfms.Hash) ([]dfms.Hash, error) {
	miss, err := l.files.Meta().UnownedChunks(ctx, l.owner, hs)
	return slices.DeleteFunc(miss, dfms.Hash.IsZero), err
}

// PutChunks implements vfs.Backend. The chunks' bytes are durable when it
// returns; their rows become durable with the commit that references them
// (a durable commit syncs every write made before it): until then a crash
// leaves unrecorded bytes, which the orphan collector removes.
func (l *Backend) PutChunks(ctx context.Context, cs []dfms.ChunkData) error {
	_, err := l.files.PutChunks(meta.WithLazyDurability(l.ctx(ctx)), l.owner, cs, true) // hashed by the mount, in this process
	return err
}

// commitRequest is the metadata store's request for commit c.
func (l *Backend) commitRequest(c vfs.Commit) meta.CommitRequest {
	return meta.CommitRequest{Owner: l.owner, Entry: c.ID, Manifest: c.Manifest, Base: c.Base, RequireBase: c.RequireBase,
		MTime: c.MTime, CommitID: c.CommitID}
}

// CommitManifest implements vfs.Backend.
func (l *Backend) CommitManifest(ctx context.Context, c vfs.Commit) (vfs.Entry, error) {
	n := l.lazy.Load()
	res, err := l.files.Commit(l.ctx(ctx), l.commitRequest(c), files.CommitOptions{Trusted: true})
	if err != nil {
		return vfs.Entry{}, err
	}
	l.madeDurable(n) // a durable commit: the lazy writes before it are durable too
	return committed(res.Entry, res.Version), nil
}

// CommitManifestStoring implements vfs.ChunkCommitter: the chunks' bytes are
// written while the commit's metadata work runs (files.CommitOptions.Chunks).
func (l *Backend) CommitManifestStoring(ctx context.Context, c vfs.Commit, cs []dfms.ChunkData) (vfs.Entry, int, error) {
	n := l.lazy.Load()
	res, err := l.files.Commit(l.ctx(ctx), l.commitRequest(c), files.CommitOptions{Trusted: true, Chunks: cs})
	if err != nil {
		return vfs.Entry{}, res.Stored, err
	}
	l.madeDurable(n)
	return committed(res.Entry, res.Version), res.Stored, nil
}

// CommitManifests implements vfs.CommitBatcher: one metadata transaction.
func (l *Backend) CommitManifests(ctx context.Context, cs []vfs.Commit) ([]vfs.CommitResult, error) {
	reqs := make([]meta.CommitRequest, len(cs))
	for i, c := range cs {
		reqs[i] = l.commitRequest(c)
	}
	n := l.lazy.Load()
	res, err := l.files.CommitBatch(l.ctx(ctx), reqs, files.CommitOptions{Trusted: true})
	if err != nil {
		return nil, err
	}
	// A batch whose every commit failed wrote nothing, so synced nothing.
	if slices.ContainsFunc(res, func(r meta.CommitResult) bool { return r.Err == nil }) {
		l.madeDurable(n)
	}
	out := make([]vfs.CommitResult, len(res))
	for i, r := range res {
		out[i] = vfs.CommitResult{Entry: committed(r.Entry, r.Version), Err: r.Err}
	}
	return out, nil
}

// Versions implements vfs.Backend.
func (l *Backend) Versions(ctx context.Context, id dfms.EntryID) ([]vfs.VersionInfo, error) {
	vs, err := l.files.Versions(ctx, l.owner, id)
	if err != nil {
		return nil, err
	}
	out := make([]vfs.VersionInfo, len(vs))
	for i, v := range vs {
		out[i] = vfs.VersionInfo{ID: v.ID, Number: v.Number, Size: v.Size, Time: v.CreatedAt}
	}
	return out, nil
}

// SetAttr implements vfs.Backend.
func (l *Backend) SetAttr(ctx context.Context, id dfms.EntryID, a dfms.SetAttr) (vfs.Entry, error) {
	e, err := l.files.SetAttr(l.lazyCtx(ctx), l.owner, id, a)
	if l.done(err) != nil {
		return vfs.Entry{}, err
	}
	return entryOf(e), nil
}

// Rename implements vfs.Backend.
func (l *Backend) Rename(ctx context.Context, parent dfms.EntryID, name string, newParent dfms.EntryID, newName string, replace bool) error {
	_, err := l.files.RenameName(l.lazyCtx(ctx), l.owner, parent, name, newParent, newName, replace)
	return l.done(err)
}

// Unlink implements vfs.Backend.
func (l *Backend) Unlink(ctx context.Context, parent dfms.EntryID, name string) error {
	return l.done(l.files.UnlinkName(l.lazyCtx(ctx), l.owner, parent, name))
}

// TrashFiles implements vfs.Trasher: one metadata transaction.
func (l *Backend) TrashFiles(ctx context.Context, ids []dfms.EntryID, at []time.Time) ([]error, error) {
	items := make([]meta.TrashItem, len(ids))
	for i, id := range ids {
		items[i] = meta.TrashItem{ID: id, At: at[i]}
	}
	errs, err := l.files.Meta().TrashEntries(l.lazyCtx(ctx), l.owner, items)
	return errs, l.done(err)
}

// Rmdir implements vfs.Backend.
func (l *Backend) Rmdir(ctx context.Context, parent dfms.EntryID, name string) error {
	return l.done(l.files.RmdirName(l.lazyCtx(ctx), l.owner, parent, name))
}

// vfs.Usage implements vfs.Backend.
func (l *Backend) Usage(ctx context.Context) (vfs.Usage, error) {
	u, err := l.files.Meta().GetUser(ctx, l.owner)
	if err != nil {
		return vfs.Usage{}, err
	}
	return vfs.Usage{UsedBytes: u.UsedBytes, QuotaBytes: u.QuotaBytes}, nil
}

// LatestChange implements vfs.ChangeFeed.
func (l *Backend) LatestChange(ctx context.Context) (int64, error) {
	return l.files.Meta().LastChange(ctx, l.owner)
}

// Changes implements vfs.ChangeFeed, polling the journal every 100 ms.
func (l *Backend) Changes(ctx context.Context, cursor int64, wait time.Duration) ([]vfs.Change, int64, error) {
	deadline := time.Now().Add(wait)
	for {
		chs, err := l.files.Meta().Changes(ctx, l.owner, cursor, 1000)
		if err != nil {
			return nil, cursor, err
		}
		if len(chs) > 0 || !time.Now().Before(deadline) {
			out := make([]vfs.Change, len(chs))
			for i, c := range chs {
				out[i] = vfs.Change{Entry: c.Entry, Parent: c.Parent, Op: c.Op, Version: c.Version, Origin: c.Origin}
				cursor = c.Seq
			}
			return out, cursor, nil
		}
		select {
		case <-ctx.Done():
			return nil, cursor, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// GetXattr implements vfs.Backend.
func (l *Backend) GetXattr(ctx context.Context, id dfms.EntryID, name string) ([]byte, bool, error) {
	return l.files.Meta().GetXattr(ctx, l.owner, id, name)
}

// ListXattrs implements vfs.Backend.
func (l *Backend) ListXattrs(ctx context.Context, id dfms.EntryID) ([]string, error) {
	return l.files.Meta().ListXattrs(ctx, l.owner, id)
}

// SetXattr implements vfs.Backend.
func (l *Backend) SetXattr(ctx context.Context, id dfms.EntryID, name string, value []byte, mode dfms.XattrMode) error {
	return l.done(l.files.Meta().SetXattr(l.lazyCtx(ctx), l.owner, id, name, value, mode))
}

// RemoveXattr implements vfs.Backend.
func (l *Backend) RemoveXattr(ctx context.Context, id dfms.EntryID, name string) error {
	return l.done(l.files.Meta().RemoveXattr(l.lazyCtx(ctx), l.owner, id, name))
}

// committed is the entry a commit answers: the file, with the version the
// commit made, which is not the current one when the commit was a repeat
// (its CommitID known) and other commits followed the first.
func committed(e dfms.Entry, v dfms.Version) vfs.Entry {
	out := entryOf(e)
	if v.ID != 0 {
		out.Version, out.Size = v.ID, v.Size
	}
	return out
}
