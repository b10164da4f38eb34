package vfs

import (
	"context"
	"fmt"
	"io"
	"mime"
	"path"
	"sort"
	"sync"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
)

// Local is the in-process Backend: the server's file layer, used directly
// by `dfms up`, which runs the server and the mount in one process.
type Local struct {
	files *files.Service
	owner dfms.UserID
}

var _ Backend = (*Local)(nil)

// NewLocal returns a Backend over svc that acts as owner.
func NewLocal(svc *files.Service, owner dfms.UserID) *Local {
	return &Local{files: svc, owner: owner}
}

func entryOf(e meta.Entry) Entry {
	out := Entry{ID: e.ID, Parent: e.Parent, Name: e.Name, Mode: e.Mode & 0o7777, UID: e.UID, GID: e.GID,
		Size: e.Size, MTime: e.MTime, CTime: e.CTime, Target: e.Target, Version: e.Version, Live: e.Live()}
	switch e.Kind {
	case meta.KindDir:
		out.Kind = KindDir
	case meta.KindSymlink:
		out.Kind = KindSymlink
	default:
		out.Kind = KindFile
	}
	return out
}

// Root implements Backend.
func (l *Local) Root(ctx context.Context) (Entry, error) {
	u, err := l.files.Meta().GetUser(ctx, l.owner)
	if err != nil {
		return Entry{}, err
	}
	return l.GetAttr(ctx, u.Root)
}

// Lookup implements Backend.
func (l *Local) Lookup(ctx context.Context, parent dfms.EntryID, name string) (Entry, error) {
	e, err := l.files.Lookup(ctx, l.owner, parent, name)
	if err != nil {
		return Entry{}, err
	}
	return entryOf(e), nil
}

// GetAttr implements Backend.
func (l *Local) GetAttr(ctx context.Context, id dfms.EntryID) (Entry, error) {
	e, err := l.files.Meta().GetEntry(ctx, l.owner, id)
	if err != nil {
		return Entry{}, err
	}
	return entryOf(e), nil
}

// ReadDir implements Backend.
func (l *Local) ReadDir(ctx context.Context, dir dfms.EntryID) ([]Entry, error) {
	es, err := l.files.List(ctx, l.owner, dir, meta.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = entryOf(e)
	}
	return out, nil
}

func (l *Local) create(ctx context.Context, e meta.Entry) (Entry, error) {
	e.Owner = l.owner
	out, err := l.files.Meta().CreateEntry(ctx, e)
	if err != nil {
		return Entry{}, err
	}
	return entryOf(out), nil
}

// Mkdir implements Backend.
func (l *Local) Mkdir(ctx context.Context, parent dfms.EntryID, name string, mode, uid, gid uint32) (Entry, error) {
	return l.create(ctx, meta.Entry{Parent: parent, Name: name, Kind: meta.KindDir, Mode: mode & 0o7777, UID: uid, GID: gid})
}

// Symlink implements Backend.
func (l *Local) Symlink(ctx context.Context, parent dfms.EntryID, name, target string, uid, gid uint32) (Entry, error) {
	return l.create(ctx, meta.Entry{Parent: parent, Name: name, Kind: meta.KindSymlink, Mode: 0o777, UID: uid, GID: gid, Target: target})
}

// Readlink implements Backend.
func (l *Local) Readlink(ctx context.Context, id dfms.EntryID) (string, error) {
	return l.files.Readlink(ctx, l.owner, id)
}

// CreateFile implements Backend.
func (l *Local) CreateFile(ctx context.Context, parent dfms.EntryID, name string, mode, uid, gid uint32) (Entry, error) {
	return l.create(ctx, meta.Entry{Parent: parent, Name: name, Kind: meta.KindFile, Mode: mode & 0o7777, UID: uid, GID: gid,
		MIME: mime.TypeByExtension(path.Ext(name))})
}

// Commit implements Backend.
func (l *Local) Commit(ctx context.Context, id dfms.EntryID, body io.Reader, size int64, mtime time.Time) (Entry, error) {
	res, err := l.files.Write(ctx, files.WriteRequest{Owner: l.owner, Entry: id, Body: io.LimitReader(body, size), MTime: mtime})
	if err != nil {
		return Entry{}, err
	}
	return entryOf(res.Entry), nil
}

// OpenVersion implements Backend.
func (l *Local) OpenVersion(ctx context.Context, id dfms.EntryID, number int64) (VersionReader, error) {
	v, err := l.files.OpenVersion(ctx, l.owner, id, number)
	if err != nil {
		return nil, err
	}
	r := &localVersion{files: l.files, v: v}
	r.info = VersionInfo{Number: v.Number, Size: v.Manifest.Size(), Time: v.CreatedAt}
	r.starts = make([]int64, len(v.Manifest.Chunks))
	var off int64
	for i, c := range v.Manifest.Chunks {
		r.starts[i] = off
		off += int64(c.Size)
	}
	return r, nil
}

// Versions implements Backend.
func (l *Local) Versions(ctx context.Context, id dfms.EntryID) ([]VersionInfo, error) {
	vs, err := l.files.Versions(ctx, l.owner, id)
	if err != nil {
		return nil, err
	}
	out := make([]VersionInfo, len(vs))
	for i, v := range vs {
		out[i] = VersionInfo{Number: v.Number, Size: v.Size, Time: v.CreatedAt}
	}
	return out, nil
}

// SetAttr implements Backend.
func (l *Local) SetAttr(ctx context.Context, id dfms.EntryID, a SetAttr) (Entry, error) {
	e, err := l.files.SetAttr(ctx, l.owner, id, meta.SetAttr{Mode: a.Mode, UID: a.UID, GID: a.GID, MTime: a.MTime})
	if err != nil {
		return Entry{}, err
	}
	return entryOf(e), nil
}

// Rename implements Backend.
func (l *Local) Rename(ctx context.Context, parent dfms.EntryID, name string, newParent dfms.EntryID, newName string, replace bool) error {
	const op dfms.Op = "vfs.Local.Rename"
	e, err := l.files.Lookup(ctx, l.owner, parent, name)
	if err != nil {
		return err
	}
	if _, err := l.files.Rename(ctx, l.owner, e.ID, newParent, newName, replace); err != nil {
		if dfms.Is(err, dfms.Conflict) {
			// The metadata store's only Conflict here is a directory
			// moved under itself, which rename(2) reports as EINVAL.
			return dfms.E(op, dfms.Invalid, err)
		}
		return err
	}
	return nil
}

// Unlink implements Backend.
func (l *Local) Unlink(ctx context.Context, parent dfms.EntryID, name string) error {
	const op dfms.Op = "vfs.Local.Unlink"
	e, err := l.files.Lookup(ctx, l.owner, parent, name)
	if err != nil {
		return err
	}
	if e.Kind == meta.KindDir {
		return dfms.E(op, dfms.IsDir, fmt.Errorf("%q is a directory", name))
	}
	return l.files.Delete(ctx, l.owner, e.ID)
}

// Rmdir implements Backend. The emptiness check and the deletion are two
// transactions: an entry created in between is trashed with the
// directory (and can be restored from the trash).
func (l *Local) Rmdir(ctx context.Context, parent dfms.EntryID, name string) error {
	const op dfms.Op = "vfs.Local.Rmdir"
	e, err := l.files.Lookup(ctx, l.owner, parent, name)
	if err != nil {
		return err
	}
	if e.Kind != meta.KindDir {
		return dfms.E(op, dfms.NotDir, fmt.Errorf("%q is not a directory", name))
	}
	n, err := l.files.Meta().CountDir(ctx, l.owner, e.ID)
	if err != nil {
		return err
	}
	if n > 0 {
		return dfms.E(op, dfms.NotEmpty, fmt.Errorf("%q is not empty", name))
	}
	return l.files.Delete(ctx, l.owner, e.ID)
}

// Usage implements Backend.
func (l *Local) Usage(ctx context.Context) (Usage, error) {
	u, err := l.files.Meta().GetUser(ctx, l.owner)
	if err != nil {
		return Usage{}, err
	}
	return Usage{UsedBytes: u.UsedBytes, QuotaBytes: u.QuotaBytes}, nil
}

// localVersion reads a version chunk by chunk. It remembers the last chunk
// it fetched, because the kernel reads in pieces far smaller than a chunk:
// without it a sequential read would fetch and verify each chunk many
// times. (The shared, bounded chunk cache of the mount replaces this.)
type localVersion struct {
	files  *files.Service
	v      meta.Version
	info   VersionInfo
	starts []int64 // offset of each chunk

	mu      sync.Mutex // guards lastIdx and last
	lastIdx int
	last    []byte
}

func (r *localVersion) Info() VersionInfo { return r.info }

func (r *localVersion) chunk(ctx context.Context, i int) ([]byte, error) {
	r.mu.Lock()
	if r.last != nil && r.lastIdx == i {
		b := r.last
		r.mu.Unlock()
		return b, nil
	}
	r.mu.Unlock()
	// Fetched outside the lock: concurrent reads of other chunks proceed.
	// The buffer is never reused, so readers of an older r.last are safe.
	b, err := r.files.ReadChunk(ctx, r.v.Manifest.Chunks[i], nil)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.lastIdx, r.last = i, b
	r.mu.Unlock()
	return b, nil
}

func (r *localVersion) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	size := r.info.Size
	if off < 0 {
		return 0, dfms.Errorf("vfs.Local.ReadAt", dfms.Invalid, "negative offset")
	}
	if off >= size {
		return 0, io.EOF
	}
	// The chunk holding off: the last one starting at or before it.
	i := sort.Search(len(r.starts), func(i int) bool { return r.starts[i] > off }) - 1
	n := 0
	for n < len(p) && i < len(r.starts) {
		b, err := r.chunk(ctx, i)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], b[off+int64(n)-r.starts[i]:])
		i++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
