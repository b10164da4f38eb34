package disk

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dfms/dfms"
)

var _ dfms.BatchPutter = (*Disk)(nil)

// PutBatch stores chunks with two file-system-wide durability barriers
// instead of several fsyncs per chunk: every chunk is written to a
// temporary file, syncfs makes their bytes durable, the files are renamed
// into place, and a second syncfs makes the names (and new shard
// directories) durable. A crash at any point leaves each chunk either
// absent, or present under its name with all of its bytes, as Put does.
func (d *Disk) PutBatch(ctx context.Context, chunks []dfms.ChunkData) (err error) {
	const op dfms.Op = "store/disk.PutBatch"
	if err := ctx.Err(); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	type pending struct{ tmp, name string }
	var todo []pending
	defer func() {
		if err != nil {
			for _, p := range todo {
				os.Remove(p.tmp)
			}
		}
	}()
	now := time.Now()
	for _, c := range chunks {
		name, _ := d.path(c.Hash)
		dir := filepath.Dir(name)
		if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(c.Data)) {
			if err := os.Chtimes(name, now, now); err != nil { // wanted again: tell GC
				return dfms.E(op, writeKind(err), err)
			}
			continue
		}
		if err := mkdirs(dir); err != nil {
			return dfms.E(op, writeKind(err), err)
		}
		f, err := os.CreateTemp(dir, tempPrefix+"*")
		if err != nil {
			return dfms.E(op, writeKind(err), err)
		}
		todo = append(todo, pending{f.Name(), name})
		_, werr := f.Write(c.Data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return dfms.E(op, writeKind(werr), werr)
		}
	}
	// The barrier also covers the directory entries of touched files,
	// which Put's early return syncs one by one.
	if err := d.syncfs(); err != nil {
		return dfms.E(op, writeKind(err), err)
	}
	if len(todo) == 0 {
		return nil
	}
	for _, p := range todo {
		if err := os.Rename(p.tmp, p.name); err != nil {
			return dfms.E(op, writeKind(err), err)
		}
	}
	todo = nil
	if err := d.syncfs(); err != nil {
		return dfms.E(op, writeKind(err), err)
	}
	return nil
}

// mkdirs creates a shard's two directory levels if missing. Their entries
// become durable at the next barrier.
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
