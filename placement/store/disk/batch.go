package disk

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/dfms/dfms"
)

var _ dfms.BatchPutter = (*Disk)(nil)

const (
	// writeWorkers is how many files PutBatch writes at once.
	writeWorkers = 8
	// syncWorkers is how many files or directories PutBatch syncs at
	// once: concurrent syncs share the file system's journal commits.
	syncWorkers = 32
	// perFileSyncMin is the average chunk size from which PutBatch syncs
	// each file rather than the whole file system.
	perFileSyncMin = 256 << 10
)

// PutBatch stores chunks so that a crash at any point leaves each chunk
// either absent, or present under its name with all of its bytes, as Put
// does: every chunk is written to a temporary file, the bytes are made
// durable, the files are renamed into place, and then the names (and new
// shard directories) are made durable.
//
// The durability barriers come in two kinds, chosen by the average chunk
// size. A syncfs flushes every dirty byte of the file system, the
// caller's unrelated ones too (a mount's stage on the same disk, for
// instance), at a fixed cost per barrier: two of them serve a batch of
// many small chunks best. Large chunks are synced file by file instead,
// so that a batch costs its own bytes only: each file's write-out starts
// as soon as it is written, then all are synced at once (a journaling
// file system commits concurrent syncs together), renamed, and their
// directories (with the parents of new shard directories) synced at once.
func (d *Disk) PutBatch(ctx context.Context, chunks []dfms.ChunkData) (err error) {
	const op dfms.Op = "store/disk.PutBatch"
	if err := ctx.Err(); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	if len(chunks) == 0 {
		return nil
	}
	var total int
	for _, c := range chunks {
		total += len(c.Data)
	}
	perFile := total/len(chunks) >= perFileSyncMin
	b := &putBatch{d: d, perFile: perFile, dirs: map[string]bool{}}
	defer func() {
		if err != nil {
			for _, p := range b.todo {
				if p.f != nil {
					p.f.Close()
				}
				os.Remove(p.tmp)
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(writeWorkers)
	for _, c := range chunks {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			return b.write(c)
		})
	}
	if err := g.Wait(); err != nil {
		return dfms.E(op, writeKind(err), err)
	}
	if perFile {
		err = parallel(len(b.todo), func(i int) error {
			p := &b.todo[i]
			err := unix.Fdatasync(int(p.f.Fd()))
			if cerr := p.f.Close(); err == nil {
				err = cerr
			}
			p.f = nil
			return err
		})
	} else {
		err = d.syncfs()
	}
	if err != nil {
		return dfms.E(op, writeKind(err), err)
	}
	for _, p := range b.todo {
		if err := os.Rename(p.tmp, p.name); err != nil {
			return dfms.E(op, writeKind(err), err)
		}
	}
	b.todo = nil
	if !perFile {
		if len(b.dirs) > 0 {
			err = d.syncfs()
		}
	} else {
		dirs := make([]string, 0, len(b.dirs))
		for dir := range b.dirs {
			dirs = append(dirs, dir)
		}
		err = parallel(len(dirs), func(i int) error { return syncDir(dirs[i]) })
	}
	if err != nil {
		return dfms.E(op, writeKind(err), err)
	}
	for _, shard := range b.shards {
		d.durable[shard].Store(true)
	}
	return nil
}

// parallel runs fn(0..n-1) on up to syncWorkers goroutines and returns
// the first error.
func parallel(n int, fn func(i int) error) error {
	var g errgroup.Group
	g.SetLimit(syncWorkers)
	for i := range n {
		g.Go(func() error { return fn(i) })
	}
	return g.Wait()
}

// putBatch is one PutBatch in progress.
type putBatch struct {
	d       *Disk
	perFile bool

	mu     sync.Mutex
	todo   []pendingChunk  // written to temporary files, to rename
	dirs   map[string]bool // directories to sync at the end
	shards []int           // shard directories made durable by those syncs
}

// pendingChunk is a chunk written to a temporary file; f is the file,
// still open when it is to be synced file by file.
type pendingChunk struct {
	tmp, name string
	f         *os.File
}

// write writes one chunk to a temporary file (its write-out started when
// it is synced file by file), stored already or not, as Put does.
func (b *putBatch) write(c dfms.ChunkData) error {
	name, shard := b.d.path(c.Hash)
	dir := filepath.Dir(name)
	if err := mkdirs(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	p := pendingChunk{tmp: f.Name(), name: name}
	_, werr := f.Write(c.Data)
	if werr == nil && b.perFile {
		// Start the write-out now; the sync after the last write then
		// mostly waits for what is already under way.
		werr = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
		if werr == nil {
			p.f = f
		}
	}
	if p.f == nil {
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
	}
	b.mu.Lock()
	b.todo = append(b.todo, p)
	b.dirs[dir] = true
	if b.perFile && !b.d.durable[shard].Load() {
		// New shard directories must be durable with the chunk's name
		// (a directory found to exist is synced too: whoever made it
		// may have died before syncing its parent).
		b.dirs[filepath.Dir(dir)] = true
		b.dirs[filepath.Dir(filepath.Dir(dir))] = true
		b.shards = append(b.shards, shard)
	}
	b.mu.Unlock()
	return werr
}

// mkdirs creates a shard's two directory levels if missing. Their entries
// become durable at the next syncfs.
func mkdirs(leaf string) error {
	if _, err := os.Stat(leaf); err == nil {
		return nil
	}
	for _, dir := range []string{filepath.Dir(leaf), leaf} {
		if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// syncfs flushes the file system holding the store.
func (d *Disk) syncfs() error {
	f, err := os.Open(d.dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
