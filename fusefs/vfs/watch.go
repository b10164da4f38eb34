package vfs

import (
	"context"
	"time"

	"github.com/dfms/dfms"
)

// Watch follows the backend's change feed until ctx ends (or Close) and calls fn with
// each batch of changes made since Watch started by others than this
// mount (the REST API, other mounts): the FUSE adapter drops what the
// kernel cached of them. While the feed answers, the FS keeps a cache of
// entries that the feed's changes invalidate (metacache.go). A backend
// without a feed returns at once. Failures of the feed are retried every
// second; while they say the server cannot be reached, the cache keeps
// answering (metacache.go).
func (fsys *FS) Watch(ctx context.Context, fn func([]Change)) {
	feed, ok := fsys.b.(ChangeFeed)
	if !ok {
		return
	}
	fsys.watchMu.Lock()
	if fsys.closing {
		fsys.watchMu.Unlock()
		return
	}
	fsys.watching.Add(1)
	fsys.watchMu.Unlock()
	defer fsys.watching.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-fsys.watchStop:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer fsys.mc.setOn(false)
	var cursor int64
	for {
		c, err := feed.LatestChange(ctx)
		if err == nil {
			cursor = c
			break
		}
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
	if fsys.mc.setOn(true) {
		fsys.warmCache(ctx)
	}
	offline := false // the feed failed because the server cannot be reached
	for ctx.Err() == nil {
		chs, next, err := feed.Changes(ctx, cursor, 25*time.Second)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				fsys.mc.setOn(false)
			case dfms.Is(err, dfms.Unavailable):
				// The server cannot be reached: nothing changes
				// through it meanwhile (metacache.go).
				kept := fsys.mc.setOffline()
				if !offline {
					offline = true
					fsys.log.Warn("change feed: the server cannot be reached; the mount answers from its cache until it is back", "cache", kept, "err", err)
				}
			default:
				fsys.mc.setOn(false)
				fsys.log.Warn("change feed", "err", err)
			}
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		cursor = next
		others := fsys.others(chs)
		fsys.forget(others)
		if fsys.mc.setOn(true) {
			fsys.warmCache(ctx)
		}
		if offline {
			offline = false
			fsys.log.Info("change feed: the server answers again")
		}
		if len(others) > 0 {
			fn(others)
		}
	}
}

// warmCache reads the root's entry into the metadata cache, which has
// just started empty: every path walk of the kernel needs it once the
// kernel's own copy expires, and what the kernel read before the cache
// was on is not in it, so without this a server outage that began before
// the next read of it would fail every path with EIO (the cache answers
// in an outage only with what it holds).
func (fsys *FS) warmCache(ctx context.Context) {
	if _, err := fsys.getEntry(ctx, fsys.root); err != nil {
		fsys.log.Debug("reading the root into the metadata cache", "err", err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// forget drops what the FS remembers of files others changed: the
// version whose pages the kernel may keep. Not for this mount's own
// changes: what it wrote went through the kernel's pages, and the report
// of one of its commits comes when a later one may have been made.
func (fsys *FS) forget(chs []Change) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	for _, c := range chs {
		if c.Op != "version" || fsys.cachedVersion[c.Entry] != c.Version {
			delete(fsys.cachedVersion, c.Entry)
		}
	}
}

// keepCache reports whether the kernel's cached pages of file id are
// still its content at version, and records version as cached.
func (fsys *FS) keepCache(id dfms.EntryID, version int64) bool {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	keep := version > 0 && fsys.cachedVersion[id] == version
	fsys.cachedVersion[id] = version
	return keep
}

// EntryName returns the current name of entry ino (live or in the trash).
func (fsys *FS) EntryName(ctx context.Context, ino Ino) (string, error) {
	e, err := fsys.b.GetAttr(ctx, ino.entry())
	if err != nil {
		return "", err
	}
	return e.Name, nil
}

// touch records that this mount changed entries ids, or tried to (the
// change ended with err): the metadata cache drops them (the feed's
// reports of this mount's own changes are skipped). It is called once
// the change is made or has failed.
func (fsys *FS) touch(err error, ids ...dfms.EntryID) { fsys.mc.dropAfter(err, ids...) }

// nameChanged records the outcome of this mount's removal of dir/name.
func (fsys *FS) nameChanged(dir dfms.EntryID, name string, err error) {
	if err == nil {
		fsys.mc.removed(dir, name)
	} else {
		fsys.touchName(err, dir, name)
	}
}

// touchName is touch of the entry named name in dir, and of dir.
func (fsys *FS) touchName(err error, dir dfms.EntryID, name string) {
	fsys.mc.dropNameAfter(err, dir, name)
}

// others drops the changes this mount made itself (by the backend's
// Originator): the kernel and the metadata cache know them already, and
// invalidating them would only race with its requests (an invalidation of
// a name waits for the directory's lock, held by requests this mount is
// serving). What is left is dropped from the metadata cache.
func (fsys *FS) others(chs []Change) []Change {
	own := ""
	if o, ok := fsys.b.(Originator); ok {
		own = o.Origin()
	}
	var out []Change
	var ids []dfms.EntryID
	for _, c := range chs {
		if own != "" && c.Origin == own {
			continue
		}
		out = append(out, c)
		switch c.Op {
		case "trash", "restore", "purge": // of a whole tree, maybe
			fsys.mc.reset()
		}
		ids = append(ids, c.Entry)
		if c.Parent != 0 {
			ids = append(ids, c.Parent)
		}
	}
	if len(ids) > 0 {
		fsys.mc.drop(ids...)
	}
	return out
}
