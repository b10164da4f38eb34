package vfs

import (
	"container/list"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/dfms/dfms"
)

// chunkCache holds chunks the mount has read or written. Chunks are named
// by their hash, so a cached chunk is never stale. Two levels: a small
// in-memory LRU of verified chunks, which serves the kernel's reads of a
// few pages at a time, and an optional on-disk LRU bounded in bytes, which
// survives remounts. A chunk from the backend or from disk is verified
// before it is used; one that fails is never returned (kind Corrupt) and
// is dropped from the disk cache.
type chunkCache struct {
	disk *diskCache // nil: no disk cache
	// trusted: the backend verifies what it returns (the in-process one
	// reads the chunk store through files.ReadChunk, which does), so
	// chunks from it are not hashed again.
	trusted bool

	mu       sync.Mutex
	lru      *list.List // of *memChunk, most recent first
	byHash   map[dfms.Hash]*list.Element
	memBytes int64
	memMax   int64
	inflight map[dfms.Hash]*fetchCall

	// fetched counts chunks fetched from the backend.
	fetched atomic.Int64
	// prefetch bounds concurrent read-ahead fetches.
	prefetch chan struct{}
}

type memChunk struct {
	hash dfms.Hash
	data []byte
}

type fetchCall struct {
	done chan struct{}
	data []byte
	err  error
}

func newChunkCache(memMax int64, disk *diskCache, trusted bool, readAhead int) *chunkCache {
	return &chunkCache{disk: disk, trusted: trusted, lru: list.New(), byHash: map[dfms.Hash]*list.Element{},
		memMax: memMax, inflight: map[dfms.Hash]*fetchCall{}, prefetch: make(chan struct{}, max(readAhead, 1))}
}

// memGet returns a chunk held in memory.
func (c *chunkCache) memGet(h dfms.Hash) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byHash[h]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*memChunk).data, true
	}
	return nil, false
}

// memPut keeps a verified chunk in memory. data must not change later.
func (c *chunkCache) memPut(h dfms.Hash, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byHash[h]; ok || int64(len(data)) > c.memMax {
		return
	}
	c.byHash[h] = c.lru.PushFront(&memChunk{hash: h, data: data})
	c.memBytes += int64(len(data))
	for c.memBytes > c.memMax {
		el := c.lru.Back()
		mc := el.Value.(*memChunk)
		c.lru.Remove(el)
		delete(c.byHash, mc.hash)
		c.memBytes -= int64(len(mc.data))
	}
}

// put records a chunk this mount wrote (its hash is known to be right).
func (c *chunkCache) put(h dfms.Hash, data []byte) {
	c.memPut(h, data)
	if c.disk != nil {
		c.disk.put(h, data)
	}
}

// get returns chunk ref, from the cache or fetched with load. Concurrent
// gets of one chunk share one fetch. The returned bytes are shared: never
// modify them.
func (c *chunkCache) get(ctx context.Context, ref dfms.ChunkRef, load func(context.Context) ([]byte, error)) ([]byte, error) {
	const op dfms.Op = "vfs.readChunk"
	if b, ok := c.memGet(ref.Hash); ok {
		return b, nil
	}
	c.mu.Lock()
	if call, ok := c.inflight[ref.Hash]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.data, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &fetchCall{done: make(chan struct{})}
	c.inflight[ref.Hash] = call
	c.mu.Unlock()

	call.data, call.err = c.fill(ctx, ref, load)
	if call.err != nil {
		call.err = dfms.E(op, dfms.Other, call.err)
	}
	c.mu.Lock()
	delete(c.inflight, ref.Hash)
	c.mu.Unlock()
	close(call.done)
	return call.data, call.err
}

func (c *chunkCache) fill(ctx context.Context, ref dfms.ChunkRef, load func(context.Context) ([]byte, error)) ([]byte, error) {
	if c.disk != nil {
		if b, ok := c.disk.get(ref); ok {
			c.memPut(ref.Hash, b)
			return b, nil
		}
	}
	b, err := load(ctx)
	if err != nil {
		return nil, err
	}
	c.fetched.Add(1)
	if len(b) != int(ref.Size) || (!c.trusted && dfms.Sum(b) != ref.Hash) {
		return nil, dfms.E("vfs.readChunk", dfms.Corrupt, fmt.Errorf("chunk %s failed verification (%d bytes, want %d)", ref.Hash, len(b), ref.Size))
	}
	c.memPut(ref.Hash, b)
	if c.disk != nil {
		c.disk.put(ref.Hash, b)
	}
	return b, nil
}

// prefetchAsync fetches ref in the background unless it is cached or
// being fetched, or the read-ahead budget is spent.
func (c *chunkCache) prefetchAsync(ref dfms.ChunkRef, load func(context.Context) ([]byte, error)) {
	c.mu.Lock()
	_, mem := c.byHash[ref.Hash]
	_, busy := c.inflight[ref.Hash]
	c.mu.Unlock()
	if mem || busy {
		return
	}
	select {
	case c.prefetch <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-c.prefetch }()
		_, _ = c.get(context.Background(), ref, load)
	}()
}

// diskCache is a directory of chunk files, ab/<hash>, bounded in bytes;
// the least recently used go first. What it holds is indexed at start.
type diskCache struct {
	dir string
	max int64

	mu     sync.Mutex
	lru    *list.List // of *diskEntry, most recent first
	byHash map[dfms.Hash]*list.Element
	bytes  int64
}

type diskEntry struct {
	hash dfms.Hash
	size int64
}

func openDiskCache(dir string, maxBytes int64) (*diskCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := &diskCache{dir: dir, max: maxBytes, lru: list.New(), byHash: map[dfms.Hash]*list.Element{}}
	type found struct {
		h    dfms.Hash
		size int64
		mod  int64
	}
	var all []found
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return nil
		}
		h, perr := dfms.ParseHash(de.Name())
		if perr != nil {
			os.Remove(p) // a temp file left by a crash
			return nil
		}
		if info, ierr := de.Info(); ierr == nil {
			all = append(all, found{h, info.Size(), info.ModTime().UnixNano()})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod > all[j].mod })
	for _, f := range all {
		d.byHash[f.h] = d.lru.PushBack(&diskEntry{f.h, f.size})
		d.bytes += f.size
	}
	d.mu.Lock()
	d.evictLocked()
	d.mu.Unlock()
	return d, nil
}

func (d *diskCache) path(h dfms.Hash) string {
	s := h.String()
	return filepath.Join(d.dir, s[:2], s)
}

func (d *diskCache) has(h dfms.Hash) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.byHash[h]
	return ok
}

// get reads and verifies a cached chunk; a chunk that fails verification
// is removed.
func (d *diskCache) get(ref dfms.ChunkRef) ([]byte, bool) {
	d.mu.Lock()
	el, ok := d.byHash[ref.Hash]
	if ok {
		d.lru.MoveToFront(el)
	}
	d.mu.Unlock()
	if !ok {
		return nil, false
	}
	b, err := os.ReadFile(d.path(ref.Hash))
	if err == nil && len(b) == int(ref.Size) && dfms.Sum(b) == ref.Hash {
		return b, true
	}
	d.remove(ref.Hash)
	return nil, false
}

func (d *diskCache) remove(h dfms.Hash) {
	d.mu.Lock()
	if el, ok := d.byHash[h]; ok {
		d.lru.Remove(el)
		delete(d.byHash, h)
		d.bytes -= el.Value.(*diskEntry).size
	}
	d.mu.Unlock()
	os.Remove(d.path(h))
}

// put stores a chunk. Failures only cost a later fetch, so they are
// ignored.
func (d *diskCache) put(h dfms.Hash, data []byte) {
	if int64(len(data)) > d.max || d.has(h) {
		return
	}
	p := d.path(h)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), p) != nil {
		os.Remove(tmp.Name())
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.byHash[h]; ok {
		return
	}
	d.byHash[h] = d.lru.PushFront(&diskEntry{h, int64(len(data))})
	d.bytes += int64(len(data))
	d.evictLocked()
}

func (d *diskCache) evictLocked() {
	for d.bytes > d.max && d.lru.Len() > 0 {
		el := d.lru.Back()
		e := el.Value.(*diskEntry)
		d.lru.Remove(el)
		delete(d.byHash, e.hash)
		d.bytes -= e.size
		os.Remove(d.path(e.hash))
	}
}
