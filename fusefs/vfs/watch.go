package vfs

import (
	"context"
	"time"

	"github.com/dfms/dfms"
)

// Watch follows the backend's change feed until ctx ends and calls fn with
// each batch of changes made since Watch started, by this mount or
// anyone else: the FUSE adapter drops what the kernel cached of them. A
// backend without a feed returns at once. Failures of the feed are
// retried every second.
func (fsys *FS) Watch(ctx context.Context, fn func([]Change)) {
	feed, ok := fsys.b.(ChangeFeed)
	if !ok {
		return
	}
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
	for ctx.Err() == nil {
		chs, next, err := feed.Changes(ctx, cursor, 25*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				fsys.log.Warn("change feed", "err", err)
			}
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		cursor = next
		fsys.forget(chs)
		if others := fsys.others(chs); len(others) > 0 {
			fn(others)
		}
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

// forget drops what the FS remembers of changed files: the version whose
// pages the kernel may keep.
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

// ownChangeWindow is how long after this mount changed an entry the feed's
// reports of that entry are taken for its own.
const ownChangeWindow = 2 * time.Second

// touch records that this mount is changing entries ids.
func (fsys *FS) touch(ids ...dfms.EntryID) {
	now := time.Now()
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	for _, id := range ids {
		fsys.touched[id] = now
	}
	if len(fsys.touched) > 10000 {
		for id, t := range fsys.touched {
			if now.Sub(t) > ownChangeWindow {
				delete(fsys.touched, id)
			}
		}
	}
}

// others drops the changes this mount made itself: the kernel already
// knows them, and invalidating them would only race with its requests
// (an invalidation of a name waits for the directory's lock, held by
// requests this mount is serving).
func (fsys *FS) others(chs []Change) []Change {
	now := time.Now()
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	recent := func(id dfms.EntryID) bool {
		t, ok := fsys.touched[id]
		return ok && now.Sub(t) < ownChangeWindow
	}
	var out []Change
	for _, c := range chs {
		switch c.Op {
		case "version", "attr":
			if recent(c.Entry) {
				continue
			}
		default: // the names of a directory changed
			if recent(c.Parent) {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}
