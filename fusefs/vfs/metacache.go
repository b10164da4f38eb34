package vfs

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dfms/dfms"
)

// The metadata cache keeps the entries this mount read from the backend,
// by id and by name, so that stat, lookup and open of a file seen lately
// cost no request (an in-process read of SQLite, or an HTTP round trip
// for `dfms mount`). The kernel's own caches stay short (one second); this
// one stays valid until the entry changes, as the change feed tells:
//
//   - It is used only while FS.Watch follows the feed and the feed
//     answers; it starts empty when the feed starts, and is emptied when
//     the feed fails. Entries are kept at most metaCacheTTL in any case.
//   - Except while the server cannot be reached (the feed fails with kind
//     Unavailable: a restart, a network blip): then nothing can change
//     through it, so the cache stays as it was and answers whatever the
//     age of its entries (offline). The feed resumes from where it
//     stopped, so its first answers drop what changed meanwhile (in a
//     cluster, through another server). An answer of the backend to a
//     read sent since, before the feed's, ends that: the server is back
//     but the feed is not, so the cache is emptied and off until the feed
//     answers. (An answer to a request sent before the outage proves
//     nothing: it may have been on its way when the server went.) The
//     root's last entry is kept through every drop and answers for it
//     offline if nothing else does: every path walk needs it.
//   - Every change made by someone else drops the changed entry and its
//     directory when the feed reports it (within the feed's latency, as
//     the kernel's caches are dropped); moving a tree to or from the trash,
//     or purging it, changes its descendants too, so it empties the cache.
//   - Every change this mount makes drops what it changed once it is made
//     (FS.touch), since the feed's reports of it are skipped.
//   - A read whose entry was dropped while it was in flight does not fill
//     the cache (generations): it may be older than the drop.
//   - With an entry goes the manifest of its current version, if read
//     or committed here (only manifests of up to maxCachedChunks chunks),
//     so that reading a small file seen lately costs no request but the
//     open's (openedEntry asks the server which version is current).
//     Manifests are kept by their versions' lasting IDs.
//   - A directory this mount created is complete: the cache knows every
//     name in it (the ones this mount made there since), so a lookup of
//     another name fails without a request, as a create's lookup does.
//     A rename into or out of it, or any change in it by someone else,
//     ends that.
type metaCache struct {
	mu      sync.Mutex
	on      bool // the feed is followed and healthy
	offline bool // on, but the server cannot be reached
	// offlineGen is the generation at which the cache went offline: only
	// an answer to a request begun since tells that the server is back.
	offlineGen uint64
	// dropsWaiting: changes tried while offline failed, and their drops
	// wait for the feed's return (dropAfter).
	dropsWaiting bool
	gen          uint64                  // bumped by every drop
	floor        uint64                  // reads begun before it fill nothing
	dropped      map[dfms.EntryID]uint64 // the gen of each entry's last drop, since floor
	entries      map[dfms.EntryID]cachedEntry
	names        map[nameKey]dfms.EntryID         // of the live entries held
	byDir        map[dfms.EntryID]map[string]bool // the names held, by directory
	mans         map[dfms.EntryID]cachedManifest  // of the entries' current versions
	manChunks    int                              // chunk references held in mans
	// complete holds every name of the directories known complete, since
	// when (they expire as entries do).
	complete      map[dfms.EntryID]*completeDir
	completeNames int
	// root is the last entry of the root directory read, kept whatever
	// is dropped or reset: offline, it answers for the root when nothing
	// else does (every path walk needs it).
	root Entry
	// droppedNames is the gen of each name's last drop by a change by name
	// whose entry was not known, since floor: a read of the entry that
	// had it, begun before, must not put it back.
	droppedNames map[nameKey]uint64
}

type completeDir struct {
	names map[string]struct{}
	at    time.Time
}

type cachedEntry struct {
	e  Entry
	at time.Time
	g  uint64 // the generation of the read or change it came from
}

type cachedManifest struct {
	info VersionInfo
	m    dfms.Manifest
	at   time.Time
}

type nameKey struct {
	dir  dfms.EntryID
	name string
}

const (
	// maxCachedChunks bounds the chunks of a manifest kept, and
	// maxCachedChunkRefs those of all of them.
	maxCachedChunks    = 4096
	maxCachedChunkRefs = 1 << 20
	// maxCompleteNames bounds the names of complete directories held.
	maxCompleteNames = 200_000
	// metaCacheTTL bounds how long an entry is used without a read.
	metaCacheTTL = 30 * time.Second
	// metaCacheMax bounds the entries held; past it the cache starts over.
	metaCacheMax = 200_000
	// maxDropped bounds the drop records; past it the floor moves up.
	maxDropped = 20_000
)

func newMetaCache() *metaCache {
	return &metaCache{dropped: map[dfms.EntryID]uint64{}, entries: map[dfms.EntryID]cachedEntry{}, names: map[nameKey]dfms.EntryID{}, byDir: map[dfms.EntryID]map[string]bool{},
		complete: map[dfms.EntryID]*completeDir{}, mans: map[dfms.EntryID]cachedManifest{}, droppedNames: map[nameKey]uint64{}}
}

// keepRoot records the root directory's entry (root).
func (c *metaCache) keepRoot(e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.root = e
}

// begin returns the generation to pass to put for a read starting now:
// a new one, later than every drop so far and than every read begun
// before, so that an answer never replaces one to a later read.
func (c *metaCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	return c.gen
}

// put keeps e, read by a read that began at generation g, unless the cache
// is off, e was dropped since, or the cache holds e from a read begun
// later (which may have seen a change this one did not).
func (c *metaCache) put(g uint64, es ...Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answeredLocked(g)
	if !c.on || g < c.floor {
		return
	}
	if len(c.entries)+len(es) > metaCacheMax {
		c.resetLocked()
		return
	}
	now := time.Now()
	for _, e := range es {
		if c.dropped[e.ID] > g || c.droppedNames[nameKey{e.Parent, e.Name}] > g {
			continue
		}
		if old, ok := c.entries[e.ID]; ok {
			if old.g > g {
				continue
			}
			c.unnameLocked(old.e)
		}
		c.storeLocked(e, now, g)
	}
}

// listed keeps the entries of directory dir that a listing begun at
// generation g read (put), and drops the names held in dir that it did
// not list: the listing is newer than they are (another client's unlink
// or rename the feed has not reported yet; without this, an ls showed a
// name gone while a lookup of it, as mkdir's, still found it).
func (c *metaCache) listed(g uint64, dir dfms.EntryID, es []Entry) {
	c.put(g, es...)
	c.mu.Lock()
	defer c.mu.Unlock()
	held := c.byDir[dir]
	if len(held) == 0 {
		return
	}
	in := make(map[string]bool, len(es))
	for _, e := range es {
		in[e.Name] = true
	}
	var gone []string
	for name := range held {
		if !in[name] {
			gone = append(gone, name)
		}
	}
	for _, name := range gone {
		c.dropNameLocked(dir, name)
	}
}

func (c *metaCache) setNameLocked(k nameKey, id dfms.EntryID) {
	c.names[k] = id
	m := c.byDir[k.dir]
	if m == nil {
		m = map[string]bool{}
		c.byDir[k.dir] = m
	}
	m[k.name] = true
}

func (c *metaCache) delNameLocked(k nameKey) {
	delete(c.names, k)
	if m := c.byDir[k.dir]; m != nil {
		delete(m, k.name)
		if len(m) == 0 {
			delete(c.byDir, k.dir)
		}
	}
}

// storeLocked holds e, read at time at by a read or change of
// generation g, by id and, if live, by name.
func (c *metaCache) storeLocked(e Entry, at time.Time, g uint64) {
	c.entries[e.ID] = cachedEntry{e, at, g}
	if e.ID == c.root.ID {
		c.root = e
	}
	if e.Live && e.Parent != 0 {
		c.setNameLocked(nameKey{e.Parent, e.Name}, e.ID)
	}
}

// replace drops entry id and keeps the result of a change this mount just
// made to it (a change begun at generation g): the entry e if not nil, and
// the manifest m of the version with lasting ID version if not nil. Nothing is kept if a read
// that began at g would be refused: then someone else's change, or
// another of this mount, may have followed it.
func (c *metaCache) replace(g uint64, id dfms.EntryID, e *Entry, version int64, m *dfms.Manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answeredLocked(g)
	keep := c.on && g >= c.floor && c.dropped[id] <= g && len(c.entries) < metaCacheMax
	c.gen++
	c.dropLocked(id)
	if !keep {
		return
	}
	if e != nil && e.ID == id && c.droppedNames[nameKey{e.Parent, e.Name}] <= g {
		c.storeLocked(*e, time.Now(), c.gen)
	}
	if m != nil && version > 0 {
		c.putManifestLocked(id, VersionInfo{ID: version, Size: m.Size()}, *m)
	}
}

// accessed moves the atime of entry id, if held, to atime, which the
// backend answered to a read's access (atime.go): nothing else of the
// entry is taken from that answer, nor is its age renewed.
func (c *metaCache) accessed(id dfms.EntryID, atime time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ce, ok := c.entries[id]; ok && atime.After(ce.e.ATime) {
		ce.e.ATime = atime
		c.entries[id] = ce
	}
}

// manifest returns the manifest of the version with lasting ID version
// of entry id if held.
func (c *metaCache) manifest(id dfms.EntryID, version int64) (VersionInfo, dfms.Manifest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cm, ok := c.mans[id]
	if !ok || !c.on || cm.info.ID != version || c.expiredLocked(cm.at) {
		return VersionInfo{}, dfms.Manifest{}, false
	}
	return cm.info, dfms.Manifest{Chunks: slices.Clone(cm.m.Chunks)}, true
}

// putManifest keeps the manifest of a version of entry id, read by a read
// that began at generation g.
func (c *metaCache) putManifest(g uint64, id dfms.EntryID, info VersionInfo, m dfms.Manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answeredLocked(g)
	if c.on && g >= c.floor && c.dropped[id] <= g {
		c.putManifestLocked(id, info, m)
	}
}

func (c *metaCache) putManifestLocked(id dfms.EntryID, info VersionInfo, m dfms.Manifest) {
	if len(m.Chunks) > maxCachedChunks {
		return
	}
	if c.manChunks+len(m.Chunks) > maxCachedChunkRefs {
		clear(c.mans)
		c.manChunks = 0
	}
	if old, ok := c.mans[id]; ok {
		c.manChunks -= len(old.m.Chunks)
	}
	c.mans[id] = cachedManifest{info, dfms.Manifest{Chunks: slices.Clone(m.Chunks)}, time.Now()}
	c.manChunks += len(m.Chunks)
}

// get returns the entry id if held and fresh.
func (c *metaCache) get(id dfms.EntryID) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ce, ok := c.entries[id]
	if !ok && c.offline && id == c.root.ID && id != 0 {
		return c.root, true
	}
	if !ok || !c.on || c.expiredLocked(ce.at) {
		return Entry{}, false
	}
	return ce.e, true
}

// lookup returns the live entry named name in dir if held and fresh;
// absent reports that dir is complete and has no such name.
func (c *metaCache) lookup(dir dfms.EntryID, name string) (e Entry, ok, absent bool) {
	c.mu.Lock()
	id, ok := c.names[nameKey{dir, name}]
	if !ok && c.on {
		if cd, complete := c.complete[dir]; complete && !c.expiredLocked(cd.at) {
			_, has := cd.names[name]
			c.mu.Unlock()
			return Entry{}, false, !has
		}
	}
	c.mu.Unlock()
	if !ok {
		return Entry{}, false, false
	}
	e, ok = c.get(id)
	if !ok || !e.Live || e.Parent != dir || e.Name != name {
		return Entry{}, false, false
	}
	return e, true, false
}

// created records e, which this mount just created in its directory by a
// change begun at generation g: the directory's times are e's change
// time (the server sets both in one transaction), the name joins a
// complete directory, and a new directory is complete.
func (c *metaCache) created(g uint64, e Entry, deferred bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answeredLocked(g)
	keep := c.on && g >= c.floor
	dir, dirOK := c.entries[e.Parent]
	dirOK = dirOK && keep && c.dropped[e.Parent] <= g
	c.gen++
	c.dropLocked(e.Parent)
	if dirOK {
		// As the server sets them: to the create's time; a deferred
		// create (pending.go), older than its transaction, only moves
		// them forward.
		if !deferred || dir.e.MTime.Before(e.CTime) {
			dir.e.MTime = e.CTime
		}
		if !deferred || dir.e.CTime.Before(e.CTime) {
			dir.e.CTime = e.CTime
		}
		if e.Kind == dfms.KindDir && dir.e.Nlink > 0 {
			dir.e.Nlink++ // a subdirectory's ".."
		}
		c.storeLocked(dir.e, dir.at, dir.g)
	}
	if cd, ok := c.complete[e.Parent]; ok {
		cd.names[e.Name] = struct{}{}
		c.completeNames++
	}
	if !keep || c.dropped[e.ID] > g || c.droppedNames[nameKey{e.Parent, e.Name}] > g || len(c.entries) >= metaCacheMax {
		return
	}
	c.storeLocked(e, time.Now(), c.gen)
	if e.Kind == dfms.KindDir {
		c.complete[e.ID] = &completeDir{names: map[string]struct{}{}, at: time.Now()}
	}
	if c.completeNames > maxCompleteNames {
		clear(c.complete)
		c.completeNames = 0
	}
}

// removed records that this mount removed dir/name: a complete directory
// stays complete without it.
func (c *metaCache) removed(dir dfms.EntryID, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropNameLocked(dir, name)
	if cd, ok := c.complete[dir]; ok {
		delete(cd.names, name)
	}
}

// dropAfter is drop of what a change this mount made changed, or may
// have: one that ended with err. A change that failed because the server
// cannot be reached, while the cache is offline, changed nothing as far
// as anyone can tell (it may have arrived without its answer): the cache
// goes on answering as it was, and the drop is made when the feed
// answers again, by starting over. Otherwise (the change was made, or
// refused) what it changed is dropped now.
func (c *metaCache) dropAfter(err error, ids ...dfms.EntryID) {
	if c.waitOffline(err) {
		return
	}
	c.drop(ids...)
}

// dropNameAfter is dropName after a change that ended with err
// (dropAfter).
func (c *metaCache) dropNameAfter(err error, dir dfms.EntryID, name string) {
	if c.waitOffline(err) {
		return
	}
	c.dropName(dir, name)
}

// waitOffline reports whether the drops after a change that ended with
// err wait for the feed (dropAfter). An answer of the server does not
// end the offline state here: the change may have been sent before the
// server went away (a read begun since does, answeredLocked).
func (c *metaCache) waitOffline(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.offline || err == nil || !dfms.Is(err, dfms.Unavailable) {
		return false
	}
	c.dropsWaiting = true
	return true
}

// drop forgets entries ids (and that they are complete directories).
func (c *metaCache) drop(ids ...dfms.EntryID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range ids {
		c.dropLocked(id)
		delete(c.complete, id)
	}
	c.boundDropsLocked()
}

// dropName forgets the entry named name in dir, dir itself, and that dir
// is complete: for changes by name, whose entry this mount may not know.
func (c *metaCache) dropName(dir dfms.EntryID, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropNameLocked(dir, name)
	delete(c.complete, dir)
}

func (c *metaCache) dropNameLocked(dir dfms.EntryID, name string) {
	c.gen++
	c.dropLocked(dir)
	k := nameKey{dir, name}
	if id, ok := c.names[k]; ok {
		c.dropLocked(id)
		delete(c.complete, id) // a directory renamed away
	}
	c.delNameLocked(k)
	// The entry that had the name may be in a read right now, by id.
	c.droppedNames[k] = c.gen
	c.boundDropsLocked()
}

// boundDropsLocked keeps the drop records bounded: past maxDropped, the
// floor moves up (reads begun before fill nothing) and they start over.
func (c *metaCache) boundDropsLocked() {
	if len(c.dropped)+len(c.droppedNames) > maxDropped {
		c.floor = c.gen
		clear(c.dropped)
		clear(c.droppedNames)
	}
}

func (c *metaCache) dropLocked(id dfms.EntryID) {
	c.dropped[id] = c.gen
	if old, ok := c.entries[id]; ok {
		c.unnameLocked(old.e)
		delete(c.entries, id)
	}
	if old, ok := c.mans[id]; ok {
		c.manChunks -= len(old.m.Chunks)
		delete(c.mans, id)
	}
}

func (c *metaCache) unnameLocked(e Entry) {
	k := nameKey{e.Parent, e.Name}
	if c.names[k] == e.ID {
		c.delNameLocked(k)
	}
}

// setOn turns the cache on (the feed is followed from now on, or answers
// again) or off (the feed failed); either way it starts empty, except
// that the feed answering again after the server could not be reached
// keeps what the cache held (setOffline). It reports whether the cache
// is on and started empty.
func (c *metaCache) setOn(on bool) (started bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on && c.offline {
		c.offline = false
		if c.dropsWaiting {
			c.resetLocked()
			return true
		}
		return false
	}
	c.offline = false
	if c.on == on {
		return false
	}
	c.on = on
	c.resetLocked()
	return on
}

// isOffline reports whether the cache answers for a server that cannot
// be reached (setOffline).
func (c *metaCache) isOffline() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offline
}

// setOffline records that the feed failed because the server cannot be
// reached: a cache that is on keeps its entries and answers with them,
// whatever their age, until the feed answers again (setOn) or another
// request begun since does (answeredLocked). It reports whether the cache
// is on.
func (c *metaCache) setOffline() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on && !c.offline {
		c.offline = true
		c.gen++
		c.offlineGen = c.gen
	}
	return c.on
}

// answeredLocked records that the backend answered a request begun at
// generation g: if the cache is offline and the request was sent since it
// went offline, the server is back but the feed has not answered yet (or
// fails otherwise), so the cache goes off, empty. An answer to a request
// sent before says nothing of that: it may have been on its way when the
// server went away.
func (c *metaCache) answeredLocked(g uint64) {
	if c.offline && g >= c.offlineGen {
		c.offline, c.on = false, false
		c.resetLocked()
	}
}

// expiredLocked reports whether what was read at is too old to use: older
// than metaCacheTTL, unless the cache is offline.
func (c *metaCache) expiredLocked(at time.Time) bool {
	return !c.offline && time.Since(at) > metaCacheTTL
}

// reset forgets everything.
func (c *metaCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
}

func (c *metaCache) resetLocked() {
	c.dropsWaiting = false
	c.gen++
	c.floor = c.gen
	clear(c.dropped)
	clear(c.droppedNames)
	clear(c.entries)
	clear(c.names)
	clear(c.byDir)
	clear(c.complete)
	c.completeNames = 0
	clear(c.mans)
	c.manChunks = 0
}

// changed records the outcome of a change of entry id that this mount
// began at generation g: the entry it answered (err nil), or nothing
// known.
func (fsys *FS) changed(g uint64, id dfms.EntryID, e Entry, err error) {
	if err != nil || e.ID != id {
		fsys.mc.dropAfter(err, id)
		return
	}
	fsys.mc.replace(g, id, &e, 0, nil)
}

// committed records the outcome of a commit of manifest m to entry id
// that began at generation g: the manifest of the new version, and the
// entry the backend answered if complete (a REST commit's answer lacks
// the owner ids).
func (fsys *FS) committed(g uint64, id dfms.EntryID, e Entry, complete bool, m dfms.Manifest, err error) {
	if err != nil || e.ID != id {
		fsys.mc.dropAfter(err, id)
		return
	}
	var ep *Entry
	if complete {
		ep = &e
	}
	fsys.mc.replace(g, id, ep, e.Version, &m)
}

// getEntry is the backend's GetAttr through the metadata cache.
func (fsys *FS) getEntry(ctx context.Context, id dfms.EntryID) (Entry, error) {
	if e, ok := fsys.pendingEntry(id); ok {
		return e, nil
	}
	if e, ok := fsys.removedEntry(id); ok {
		return e, nil
	}
	if e, ok := fsys.mc.get(id); ok {
		return e, nil
	}
	g := fsys.mc.begin()
	e, err := fsys.b.GetAttr(ctx, id)
	if err == nil {
		fsys.mc.put(g, e)
	}
	return e, err
}

// lookupEntry is the backend's Lookup through the metadata cache (a name
// that is not there is asked for every time).
func (fsys *FS) lookupEntry(ctx context.Context, dir dfms.EntryID, name string) (Entry, error) {
	if e, ok := fsys.pendingLookup(dir, name); ok {
		return e, nil
	}
	if fsys.removedName(dir, name) {
		return Entry{}, dfms.E("vfs.Lookup", dfms.NotExist, fmt.Errorf("%q not found", name))
	}
	if e, ok, absent := fsys.mc.lookup(dir, name); ok {
		return e, nil
	} else if absent {
		return Entry{}, dfms.E("vfs.Lookup", dfms.NotExist, fmt.Errorf("%q not found", name))
	}
	g := fsys.mc.begin()
	e, err := fsys.b.Lookup(ctx, dir, name)
	if err == nil {
		fsys.mc.put(g, e)
	}
	return e, err
}
