package disk

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/dfms/dfms"
)

var _ dfms.BatchPutter = (*Disk)(nil)

const (
	// syncWorkers is how many files PutBatch writes and syncs at once.
	syncWorkers = 8
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
// many small chunks best. Large chunks are synced file by file instead
// (fdatasync of each, then fsync of each directory, several at once), so
// that a batch costs its own bytes only.
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
	b := &putBatch{d: d, perFile: perFile, now: time.Now(), dirs: map[string]bool{}}
	defer func() {
		if err != nil {
			for _, p := range b.todo {
				os.Remove(p.tmp)
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(syncWorkers)
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
	if !perFile {
		// The barrier also covers the directory entries of chunks found
		// stored already, which Put's early return syncs one by one.
		if err := d.syncfs(); err != nil {
			return dfms.E(op, writeKind(err), err)
		}
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
		g, _ := errgroup.WithContext(ctx)
		g.SetLimit(syncWorkers)
		for dir := range b.dirs {
			g.Go(func() error { return syncDir(dir) })
		}
		err = g.Wait()
	}
	if err != nil {
		return dfms.E(op, writeKind(err), err)
	}
	return nil
}

// putBatch is one PutBatch in progress.
type putBatch struct {
	d       *Disk
	perFile bool
	now     time.Time

	mu   sync.Mutex
	todo []pendingChunk  // written to temporary files, to rename
	dirs map[string]bool // shard directories to sync at the end
}

type pendingChunk struct{ tmp, name string }

// write writes one chunk to a temporary file (synced when per file), or
// finds it stored already.
func (b *putBatch) write(c dfms.ChunkData) error {
	name, shard := b.d.path(c.Hash)
	dir := filepath.Dir(name)
	if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(c.Data)) {
		if err := os.Chtimes(name, b.now, b.now); err != nil { // wanted again: tell GC
			return err
		}
		if b.perFile {
			// An earlier Put may have died between its rename and its
			// directory sync.
			b.mu.Lock()
			b.dirs[dir] = true
			b.mu.Unlock()
		}
		return nil
	}
	mkdir := mkdirs
	if b.perFile {
		// New shard directories must be durable before the leaf's sync
		// means anything: makeShard syncs their parents.
		mkdir = func(leaf string) error { return b.d.makeShard(shard, leaf) }
	}
	if err := mkdir(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.todo = append(b.todo, pendingChunk{f.Name(), name})
	b.dirs[dir] = true
	b.mu.Unlock()
	_, werr := f.Write(c.Data)
	if werr == nil && b.perFile {
		werr = unix.Fdatasync(int(f.Fd()))
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
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
