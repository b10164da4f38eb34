// Package disk keeps chunks as files in a local directory. It is the file://
// backend of [dfms.ChunkStore], and the default that needs no service:
//
//	file:///var/lib/dfms/chunks
//
// # Layout
//
// A chunk is a file named by the lower-case hex of its hash, sharded by the
// hash's first two bytes so that no directory holds more than 1/65536 of the
// chunks:
//
//	DIR/9f/86/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//
// Anything else under DIR (other names, files of the wrong shape, a
// lost+found) is ignored by Walk and left alone.
//
// # Durability
//
// Put writes a temporary file (".tmp-" followed by random characters) in the
// chunk's own directory, fsyncs it, renames it over the final name and fsyncs
// the directory. A chunk is therefore either absent or complete, even if the
// process or the machine dies halfway; when Put returns nil it survives a
// power loss. A crash can leave temporary files behind: Get and Walk never see
// them, and [Disk.RemoveStaleTemp] deletes them (the garbage collector calls
// it on every run).
//
// Delete does not sync its directory: a chunk deleted just before a power loss
// may come back. That is harmless, because nothing references a deleted chunk
// and garbage collection finds it again.
//
// # Permissions
//
// Chunk files are created 0o600 and directories 0o700: chunks are users' file
// contents, and only the server that owns the directory should read them.
// Open does not change the mode of a directory that already exists.
//
// # Verification
//
// The store does not check that bytes match their hash (see
// [dfms.ChunkStore]): a file corrupted on disk is returned as it is, and the
// reader's re-hash detects it.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dfms/dfms"
)

// Disk is a chunk store over one local directory. It is safe for concurrent
// use, also by several processes sharing the directory.
type Disk struct {
	dir string

	// durable[i] is set once the shard directory of the hashes starting
	// with the two bytes i has been created and its entry synced by this
	// process. A directory found to exist is synced once anyway: a
	// concurrent Put, or a process that crashed, may have created it
	// without having synced its parent yet.
	durable [1 << 16]atomic.Bool
}

var _ dfms.ChunkStore = (*Disk)(nil)

const (
	tempPrefix = ".tmp-"
	dirMode    = 0o700
)

// Open returns the store over dir, creating the directory (and its parents)
// if needed.
func Open(dir string) (*Disk, error) {
	const op dfms.Op = "store/disk.Open"
	if dir == "" {
		return nil, dfms.Errorf(op, dfms.Invalid, "empty directory name")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, dfms.E(op, dfms.Invalid, err)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, dfms.E(op, dfms.NotDir, err)
		}
		return nil, dfms.E(op, kindOf(err), err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, dfms.E(op, kindOf(err), err)
	}
	if !fi.IsDir() {
		return nil, dfms.E(op, dfms.NotDir, fmt.Errorf("%s is not a directory", dir))
	}
	// The directory may have just been created: make its entry durable
	// before the first chunk relies on it.
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return nil, dfms.E(op, kindOf(err), err)
	}
	return &Disk{dir: dir}, nil
}

// String returns the store's URL, file:///DIR.
func (d *Disk) String() string { return "file://" + filepath.ToSlash(d.dir) }

// path returns the file name of h and the index of its shard directory.
func (d *Disk) path(h dfms.Hash) (name string, shard int) {
	x := h.String()
	return filepath.Join(d.dir, x[0:2], x[2:4], x), int(h[0])<<8 | int(h[1])
}

// Put stores data under h, durably. It writes the bytes even if the chunk
// is stored already, replacing the file: a Put then costs the same whether
// or not the chunk was there (a caller that must not reveal which chunks
// others stored relies on that), and a copy gone bad on disk is repaired.
func (d *Disk) Put(ctx context.Context, h dfms.Hash, data []byte) error {
	const op dfms.Op = "store/disk.Put"
	if err := ctx.Err(); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	name, shard := d.path(h)
	dir := filepath.Dir(name)
	if err := d.makeShard(shard, dir); err != nil {
		return dfms.E(op, writeKind(err), err)
	}
	if err := writeFile(dir, name, data); err != nil {
		return dfms.E(op, writeKind(err), err)
	}
	return nil
}

// makeShard creates the two levels of directories above a chunk, syncing each
// parent, once per shard and process.
func (d *Disk) makeShard(shard int, leaf string) error {
	if d.durable[shard].Load() {
		return nil
	}
	top := filepath.Dir(leaf)
	for _, dir := range []string{top, leaf} {
		if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	d.durable[shard].Store(true)
	return nil
}

// writeFile writes data to a new temporary file in dir, syncs it and renames
// it to name, then syncs dir. On failure it removes the temporary file.
func writeFile(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close() // may already be closed; the first error is the one to report
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(dir)
}

// Get appends the chunk stored under h to buf. It sizes buf once from the
// file's size and reads the file straight into it. On error it returns buf
// unchanged.
func (d *Disk) Get(ctx context.Context, h dfms.Hash, buf []byte) ([]byte, error) {
	const op dfms.Op = "store/disk.Get"
	if err := ctx.Err(); err != nil {
		return buf, dfms.E(op, dfms.Other, err)
	}
	name, _ := d.path(h)
	f, err := os.Open(name)
	if err != nil {
		return buf, dfms.E(op, kindOf(err), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf, dfms.E(op, kindOf(err), err)
	}
	size := fi.Size()
	if !fi.Mode().IsRegular() || size > math.MaxInt-int64(len(buf)) {
		return buf, dfms.E(op, dfms.Other, fmt.Errorf("%s is not a chunk file (mode %v, %d bytes)", name, fi.Mode(), size))
	}
	out := slices.Grow(buf, int(size))
	dst := out[len(buf) : len(buf)+int(size)]
	// Chunk files never change once renamed into place, so one ReadAt of
	// the size just read gets all of it.
	if _, err := f.ReadAt(dst, 0); err != nil {
		return buf, dfms.E(op, kindOf(err), fmt.Errorf("read %s: %w", name, err))
	}
	return out[:len(buf)+int(size)], nil
}

// Stat returns the size of the chunk stored under h.
func (d *Disk) Stat(ctx context.Context, h dfms.Hash) (int64, error) {
	const op dfms.Op = "store/disk.Stat"
	if err := ctx.Err(); err != nil {
		return 0, dfms.E(op, dfms.Other, err)
	}
	name, _ := d.path(h)
	fi, err := os.Stat(name)
	if err != nil {
		return 0, dfms.E(op, kindOf(err), err)
	}
	if !fi.Mode().IsRegular() {
		return 0, dfms.E(op, dfms.Other, fmt.Errorf("%s is not a chunk file (mode %v)", name, fi.Mode()))
	}
	return fi.Size(), nil
}

// Delete removes the chunk stored under h, if any. It leaves the shard
// directories in place: they are few and will be reused.
func (d *Disk) Delete(ctx context.Context, h dfms.Hash) error {
	const op dfms.Op = "store/disk.Delete"
	if err := ctx.Err(); err != nil {
		return dfms.E(op, dfms.Other, err)
	}
	name, _ := d.path(h)
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return dfms.E(op, writeKind(err), err)
	}
	return nil
}

// Walk calls fn for every chunk file, shard directory by shard directory.
// Temporary files and names that are not a chunk's are skipped, as are chunks
// that vanish while the walk runs.
func (d *Disk) Walk(ctx context.Context, fn func(dfms.ChunkInfo) error) error {
	const op dfms.Op = "store/disk.Walk"
	err := d.walkLeaves(ctx, func(leaf string, prefix string) error {
		ents, err := readDir(leaf)
		if err != nil {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			if len(name) != 2*dfms.HashSize || !strings.HasPrefix(name, prefix) {
				continue
			}
			h, err := dfms.ParseHash(name)
			if err != nil || h.String() != name {
				continue // not canonical lower-case hex: not ours
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since the directory was read
			}
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			if err := fn(dfms.ChunkInfo{Hash: h, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return callerError{err}
			}
		}
		return nil
	})
	var ce callerError
	if errors.As(err, &ce) {
		return ce.err // fn's error, exactly as fn returned it
	}
	if err != nil {
		return dfms.E(op, kindOf(err), err)
	}
	return nil
}

// callerError marks an error returned by Walk's fn, so that Walk passes it
// through unwrapped.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

// RemoveStaleTemp deletes the temporary files that Put and PutBatch leave
// behind when the process dies while writing, if they were last modified
// before cutoff, and returns how many it removed. A temporary file that a
// running Put is still writing is young: cutoff must be earlier than the
// start of the longest Put (an hour ago is generous). The garbage
// collector calls it (workers/gc).
func (d *Disk) RemoveStaleTemp(ctx context.Context, cutoff time.Time) (removed int, err error) {
	return d.staleTemp(ctx, "store/disk.RemoveStaleTemp", cutoff, true)
}

// CountStaleTemp returns how many temporary files RemoveStaleTemp would
// delete, and deletes nothing (a dry run of the garbage collector).
func (d *Disk) CountStaleTemp(ctx context.Context, cutoff time.Time) (int, error) {
	return d.staleTemp(ctx, "store/disk.CountStaleTemp", cutoff, false)
}

// staleTemp counts, and with remove deletes, the stale temporary files.
func (d *Disk) staleTemp(ctx context.Context, op dfms.Op, cutoff time.Time, remove bool) (removed int, err error) {
	err = d.walkLeaves(ctx, func(leaf string, _ string) error {
		ents, err := readDir(leaf)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), tempPrefix) {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
				continue
			}
			if !remove {
				removed++
				continue
			}
			if err := os.Remove(filepath.Join(leaf, e.Name())); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return removed, dfms.E(op, kindOf(err), err)
	}
	return removed, nil
}

// walkLeaves calls fn for every shard directory DIR/ab/cd, with the hex
// prefix "abcd" that the chunks in it must have. It stops at the first error
// from fn, or when ctx is done.
func (d *Disk) walkLeaves(ctx context.Context, fn func(leaf, prefix string) error) error {
	tops, err := readDir(d.dir)
	if err != nil {
		return err
	}
	for _, top := range tops {
		if !isShardName(top) {
			continue
		}
		topDir := filepath.Join(d.dir, top.Name())
		leaves, err := readDir(topDir)
		if err != nil {
			return err
		}
		for _, leaf := range leaves {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !isShardName(leaf) {
				continue
			}
			if err := fn(filepath.Join(topDir, leaf.Name()), top.Name()+leaf.Name()); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// isShardName reports whether e is a directory named by two lower-case hex
// digits.
func isShardName(e fs.DirEntry) bool {
	n := e.Name()
	return e.IsDir() && len(n) == 2 && isLowerHex(n[0]) && isLowerHex(n[1])
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// readDir lists dir in directory order (unsorted, which is cheaper). A
// directory that has vanished reads as empty.
func readDir(dir string) ([]fs.DirEntry, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// syncDir fsyncs a directory, making the entries created or renamed in it
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close releases nothing: a Disk holds no open files between calls.
func (d *Disk) Close() error { return nil }

// kindOf classifies a file system error.
func kindOf(err error) dfms.ErrorKind {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return dfms.NotExist
	case errors.Is(err, fs.ErrPermission):
		return dfms.Permission
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EROFS):
		// The node cannot take writes now; the caller can try another.
		return dfms.Unavailable
	}
	return dfms.Other
}

// writeKind is kindOf for writes, where a missing file or directory means the
// store's directory went away, not that a chunk does not exist.
func writeKind(err error) dfms.ErrorKind {
	if k := kindOf(err); k != dfms.NotExist {
		return k
	}
	return dfms.Unavailable
}
