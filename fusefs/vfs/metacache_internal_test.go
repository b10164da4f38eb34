package vfs

import (
	"errors"
	"testing"
	"time"

	"github.com/dfms/dfms"
)

func TestMetaCacheGenerations(t *testing.T) {
	c := newMetaCache()
	e := Entry{ID: 5, Parent: 1, Name: "a", Kind: dfms.KindFile, Live: true, Size: 3}
	c.put(c.begin(), e)
	if _, ok := c.get(5); ok {
		t.Fatal("the cache holds entries while it is off")
	}
	c.setOn(true)
	c.put(c.begin(), e)
	if got, ok := c.get(5); !ok || got.Size != 3 {
		t.Fatalf("get = %+v, %v", got, ok)
	}
	if got, ok, _ := c.lookup(1, "a"); !ok || got.ID != 5 {
		t.Fatalf("lookup = %+v, %v", got, ok)
	}

	// A read that began before a drop of its entry fills nothing.
	g := c.begin()
	c.drop(5)
	c.put(g, Entry{ID: 5, Parent: 1, Name: "a", Kind: dfms.KindFile, Live: true, Size: 1})
	if _, ok := c.get(5); ok {
		t.Fatal("a read older than a drop filled the cache")
	}
	// Drops of other entries do not stop it.
	g = c.begin()
	c.drop(6)
	c.put(g, e)
	if _, ok := c.get(5); !ok {
		t.Fatal("a drop of another entry stopped a fill")
	}

	// Renamed: the old name is gone, the new one found.
	c.put(c.begin(), Entry{ID: 5, Parent: 2, Name: "b", Kind: dfms.KindFile, Live: true})
	if _, ok, _ := c.lookup(1, "a"); ok {
		t.Fatal("the old name of a renamed entry is still found")
	}
	if got, ok, _ := c.lookup(2, "b"); !ok || got.ID != 5 {
		t.Fatalf("lookup of the new name = %+v, %v", got, ok)
	}
	// dropName drops the entry behind the name, and the directory.
	c.put(c.begin(), Entry{ID: 2, Parent: 1, Name: "d", Kind: dfms.KindDir, Live: true})
	c.dropName(2, "b")
	if _, ok := c.get(5); ok {
		t.Fatal("dropName kept the named entry")
	}
	if _, ok := c.get(2); ok {
		t.Fatal("dropName kept the directory")
	}
	// Entries in the trash are held by id, never by name.
	c.put(c.begin(), Entry{ID: 7, Parent: 1, Name: "t", Kind: dfms.KindFile})
	if _, ok, _ := c.lookup(1, "t"); ok {
		t.Fatal("a deleted entry is found by name")
	}

	// Too many drop records move the floor: older reads fill nothing.
	g = c.begin()
	for i := range maxDropped + 1 {
		c.drop(dfms.EntryID(1000 + i))
	}
	c.put(g, Entry{ID: 9, Parent: 1, Name: "n", Live: true})
	if _, ok := c.get(9); ok {
		t.Fatal("a read older than the floor filled the cache")
	}

	// Off empties it.
	c.put(c.begin(), e)
	wantEmptiedByFeedFailure(t, c)
}

// wantEmptiedByFeedFailure turns c off and on again, as the change
// feed's failure and return do, and fails t unless that emptied it of
// entry 5.
func wantEmptiedByFeedFailure(t *testing.T, c *metaCache) {
	t.Helper()
	c.setOn(false)
	c.setOn(true)
	if _, ok := c.get(5); ok {
		t.Fatal("the cache kept entries across the feed's failure")
	}
}

// A directory this mount created knows all its names until a rename or a
// change by someone else.
func TestMetaCacheCompleteDirs(t *testing.T) {
	c := newMetaCache()
	c.setOn(true)
	absent := func(dir dfms.EntryID, name string) bool {
		_, _, a := c.lookup(dir, name)
		return a
	}
	c.put(c.begin(), Entry{ID: 1, Parent: 0, Kind: dfms.KindDir, Live: true})
	c.created(c.begin(), Entry{ID: 2, Parent: 1, Name: "d", Kind: dfms.KindDir, Live: true}, false)
	if absent(1, "x") {
		t.Fatal("a directory this mount did not create is taken as complete")
	}
	if !absent(2, "x") {
		t.Fatal("a new directory is not complete")
	}
	g := c.begin()
	c.created(g, Entry{ID: 3, Parent: 2, Name: "f", Kind: dfms.KindFile, Live: true, CTime: time.Unix(5, 0)}, false)
	if e, ok, _ := c.lookup(2, "f"); !ok || e.ID != 3 {
		t.Fatalf("lookup of a created name = %+v, %v", e, ok)
	}
	if d, ok := c.get(2); !ok || !d.MTime.Equal(time.Unix(5, 0)) {
		t.Fatalf("the directory's times after a create = %+v, %v", d, ok)
	}
	c.drop(3) // a commit's drop of the file
	if absent(2, "f") {
		t.Fatal("a dropped entry's name is taken as absent")
	}
	c.removed(2, "f")
	if !absent(2, "f") {
		t.Fatal("a removed name is not absent")
	}
	c.created(c.begin(), Entry{ID: 4, Parent: 2, Name: "g", Kind: dfms.KindFile, Live: true}, false)
	c.dropName(2, "h") // a rename, or a failed change
	if absent(2, "x") {
		t.Fatal("a directory stays complete after a rename into it")
	}
	c.created(c.begin(), Entry{ID: 5, Parent: 1, Name: "e", Kind: dfms.KindDir, Live: true}, false)
	c.drop(5) // someone else changed something in it
	if absent(5, "x") {
		t.Fatal("a directory stays complete after a change by someone else")
	}
	// A directory dropped while its mkdir was in flight is not complete.
	g = c.begin()
	c.drop(6)
	c.created(g, Entry{ID: 6, Parent: 1, Name: "late", Kind: dfms.KindDir, Live: true}, false)
	if absent(6, "x") {
		t.Fatal("a directory changed during its mkdir is taken as complete")
	}
}

// Manifests go with their entries, by version ID.
func TestMetaCacheManifests(t *testing.T) {
	c := newMetaCache()
	c.setOn(true)
	m := dfms.Manifest{Chunks: []dfms.ChunkRef{{Size: 3}, {Size: 4}}}
	e := Entry{ID: 5, Parent: 1, Name: "f", Kind: dfms.KindFile, Live: true, Version: 2, Size: 7}
	c.replace(c.begin(), 5, &e, 2, &m)
	info, got, ok := c.manifest(5, 2)
	if !ok || info.ID != 2 || info.Size != 7 || len(got.Chunks) != 2 {
		t.Fatalf("manifest(5, 2) = %+v %+v %v", info, got, ok)
	}
	got.Chunks[0].Size = 99 // the caller's copy
	if _, again, _ := c.manifest(5, 2); again.Chunks[0].Size != 3 {
		t.Fatal("a caller changed the cached manifest")
	}
	if _, _, ok := c.manifest(5, 1); ok {
		t.Fatal("another version's manifest was answered")
	}
	c.drop(5)
	if _, _, ok := c.manifest(5, 2); ok {
		t.Fatal("a dropped entry's manifest is still held")
	}
	g := c.begin()
	c.drop(5)
	c.putManifest(g, 5, VersionInfo{Number: 2}, m)
	if _, _, ok := c.manifest(5, 2); ok {
		t.Fatal("a manifest read before a drop filled the cache")
	}
	big := dfms.Manifest{Chunks: make([]dfms.ChunkRef, maxCachedChunks+1)}
	c.putManifest(c.begin(), 6, VersionInfo{Number: 1}, big)
	if _, _, ok := c.manifest(6, 1); ok {
		t.Fatal("a manifest over the size bound was kept")
	}
}

// A complete directory expires as entries do: a name someone else made
// there shows up after the TTL even if the feed never tells.
func TestMetaCacheCompleteDirExpires(t *testing.T) {
	c := newMetaCache()
	c.setOn(true)
	c.created(c.begin(), Entry{ID: 2, Parent: 1, Name: "d", Kind: dfms.KindDir, Live: true}, false)
	if _, _, absent := c.lookup(2, "x"); !absent {
		t.Fatal("a new directory is not complete")
	}
	c.complete[2].at = time.Now().Add(-metaCacheTTL - time.Second)
	if _, _, absent := c.lookup(2, "x"); absent {
		t.Fatal("a complete directory older than the TTL still answers absent")
	}
}

// While the server cannot be reached the cache answers whatever the age
// of its entries; the feed answering again keeps them (and the TTL), any
// other answer first empties it and turns it off.
func TestMetaCacheOffline(t *testing.T) {
	c := newMetaCache()
	if c.setOffline() {
		t.Fatal("a cache that is off went offline")
	}
	c.setOn(true)
	e := Entry{ID: 5, Parent: 1, Name: "a", Kind: dfms.KindFile, Live: true, Size: 3, Version: 2}
	m := dfms.Manifest{Chunks: []dfms.ChunkRef{{Size: 3}}}
	c.replace(c.begin(), 5, &e, 2, &m)
	old := time.Now().Add(-metaCacheTTL - time.Second)
	age := func() {
		ce := c.entries[5]
		ce.at = old
		c.entries[5] = ce
		cm := c.mans[5]
		cm.at = old
		c.mans[5] = cm
	}
	age()
	if _, ok := c.get(5); ok {
		t.Fatal("an entry older than the TTL was answered")
	}
	c.replace(c.begin(), 5, &e, 2, &m)
	age()
	if !c.setOffline() {
		t.Fatal("setOffline says the cache is off")
	}
	if got, ok := c.get(5); !ok || got.Size != 3 {
		t.Fatalf("offline, get of an old entry = %+v, %v", got, ok)
	}
	if got, ok, _ := c.lookup(1, "a"); !ok || got.ID != 5 {
		t.Fatalf("offline, lookup of an old entry = %+v, %v", got, ok)
	}
	if _, _, ok := c.manifest(5, 2); !ok {
		t.Fatal("offline, an old manifest was not answered")
	}
	// The feed answers again: the entries stay, under the TTL again.
	c.setOn(true)
	if _, ok := c.get(5); ok {
		t.Fatal("back online, an entry older than the TTL was answered")
	}
	c.replace(c.begin(), 5, &e, 2, &m)
	c.setOffline()
	c.setOn(true)
	if _, ok := c.get(5); !ok {
		t.Fatal("the feed's return dropped a fresh entry")
	}
	// Another answer while offline: the server is back, the feed is not.
	c.setOffline()
	c.put(c.begin(), Entry{ID: 6, Parent: 1, Name: "b", Kind: dfms.KindFile, Live: true})
	if _, ok := c.get(5); ok {
		t.Fatal("an answer while offline left the cache on")
	}
	if _, ok := c.get(6); ok {
		t.Fatal("an answer while offline was kept")
	}
	if c.setOffline() {
		t.Fatal("the cache went offline again without the feed")
	}
	c.setOn(true)
	c.put(c.begin(), e)
	c.setOffline()
	wantEmptiedByFeedFailure(t, c)
}

// An answer to a request sent before the server went away says nothing of
// whether it is back: the cache stays offline and keeps answering (a
// read's late answer had turned it off and emptied it, so that a reader
// of cached files waited out a whole server restart).
func TestMetaCacheOfflineLateAnswer(t *testing.T) {
	c := newMetaCache()
	c.setOn(true)
	e := Entry{ID: 5, Parent: 1, Name: "a", Kind: dfms.KindFile, Live: true, Size: 3, Version: 2}
	c.put(c.begin(), e)
	before := c.begin()
	if !c.setOffline() {
		t.Fatal("setOffline says the cache is off")
	}
	c.put(before, Entry{ID: 6, Parent: 1, Name: "b", Kind: dfms.KindFile, Live: true})
	c.putManifest(before, 5, VersionInfo{ID: 2, Size: 3}, dfms.Manifest{Chunks: []dfms.ChunkRef{{Size: 3}}})
	c.listed(before, 1, []Entry{e})
	if got, ok := c.get(5); !ok || got.Size != 3 {
		t.Fatalf("after a late answer, get = %+v, %v; want the entry, offline", got, ok)
	}
	if !c.isOffline() {
		t.Fatal("a late answer ended the offline state")
	}
	// A late answer to a change drops what it changed, and no more.
	c.replace(before, 6, nil, 0, nil)
	c.dropAfter(nil, 6)
	if _, ok := c.get(5); !ok || !c.isOffline() {
		t.Fatal("a late answer to a change ended the offline state")
	}
	// An answer to a request sent since: the server is back.
	c.put(c.begin(), Entry{ID: 7, Parent: 1, Name: "c", Kind: dfms.KindFile, Live: true})
	if _, ok := c.get(5); ok || c.isOffline() {
		t.Fatal("an answer to a request sent while offline left the cache on")
	}
}

// The root is answered in an outage even when the cache does not hold it
// (a create in it dropped it just before): every path walk needs it, and
// without it a server outage failed every path with EIO.
func TestMetaCacheOfflineKeepsTheRoot(t *testing.T) {
	c := newMetaCache()
	root := Entry{ID: 1, Kind: dfms.KindDir, Live: true, Mode: 0o755}
	c.keepRoot(root)
	c.setOn(true)
	c.created(c.begin(), Entry{ID: 5, Parent: 1, Name: "a", Kind: dfms.KindFile, Live: true}, true)
	if _, ok := c.get(1); ok {
		t.Fatal("online, a root the cache does not hold was answered")
	}
	later := root
	later.Mode = 0o700
	c.put(c.begin(), later)
	c.drop(1)
	c.setOffline()
	if got, ok := c.get(1); !ok || got.Mode != 0o700 {
		t.Fatalf("offline, get of the root = %+v, %v; want the last one read", got, ok)
	}
}

// A change this mount tried while the server cannot be reached failed, so
// what the cache holds still holds: its drops wait for the feed's return
// (the change may have arrived without its answer), and until then the
// cache keeps answering, directory included (a failed mkdir in the root
// left the root's attributes to the server, whose outage made every path
// walk fail with EIO).
func TestMetaCacheOfflineDropsWait(t *testing.T) {
	c := newMetaCache()
	c.setOn(true)
	root := Entry{ID: 1, Kind: dfms.KindDir, Live: true}
	e := Entry{ID: 5, Parent: 1, Name: "a", Kind: dfms.KindFile, Live: true}
	c.put(c.begin(), root, e)
	c.setOffline()
	down := dfms.E("test", dfms.Unavailable, errors.New("connection refused"))
	c.dropNameAfter(down, 1, "d") // a mkdir of d failed
	c.dropAfter(down, 5)          // a commit of a failed
	if _, ok := c.get(1); !ok {
		t.Fatal("offline, a failed change in the root dropped the root")
	}
	if got, ok, _ := c.lookup(1, "a"); !ok || got.ID != 5 {
		t.Fatalf("offline, a failed change of a dropped it: %+v, %v", got, ok)
	}
	c.setOn(true) // the feed answers again: the drops are made
	if _, ok := c.get(1); ok {
		t.Fatal("back online, the drops that waited were not made")
	}
	if _, ok := c.get(5); ok {
		t.Fatal("back online, the drops that waited were not made")
	}
	c.put(c.begin(), root)
	if _, ok := c.get(1); !ok {
		t.Fatal("back online, the cache is not filled again")
	}
	// Offline again, a change the server answered (here refused): it is
	// back, so the cache starts over, off until the feed answers.
	c.setOffline()
	c.dropNameAfter(dfms.E("test", dfms.Exist, errors.New("exists")), 1, "d")
	if _, ok := c.get(1); ok {
		t.Fatal("an answer of the server while offline left the cache on")
	}
}

// A listing is newer than the names held in its directory: those it did
// not list are dropped (another client's unlink or rename the feed has not
// reported yet), so that a lookup after ls does not find a name ls did
// not show.
func TestMetaCacheListingDropsUnlistedNames(t *testing.T) {
	c := newMetaCache()
	c.setOn(true)
	a := Entry{ID: 5, Parent: 1, Name: "a", Kind: dfms.KindFile, Live: true}
	b := Entry{ID: 6, Parent: 1, Name: "b", Kind: dfms.KindDir, Live: true}
	other := Entry{ID: 7, Parent: 2, Name: "b", Kind: dfms.KindFile, Live: true}
	c.put(c.begin(), a, b, other)
	c.listed(c.begin(), 1, []Entry{a})
	if _, ok, _ := c.lookup(1, "a"); !ok {
		t.Fatal("a listed name was dropped")
	}
	if e, ok, _ := c.lookup(1, "b"); ok {
		t.Fatalf("a name the listing did not show is still found: %+v", e)
	}
	if _, ok, _ := c.lookup(2, "b"); !ok {
		t.Fatal("a name of another directory was dropped")
	}
}

// goneHere keeps the newest maxGone files.
func TestGoneHereBounded(t *testing.T) {
	var g goneHere
	for id := range dfms.EntryID(maxGone + 10) {
		g.add(id + 1)
	}
	if g.has(1) || g.has(10) {
		t.Fatal("the oldest files were kept past the bound")
	}
	if !g.has(11) || !g.has(maxGone+10) {
		t.Fatal("the newest files were not kept")
	}
	if len(g.ids) != maxGone {
		t.Fatalf("%d files held, want %d", len(g.ids), maxGone)
	}
}

// An answer to a read that began earlier does not replace what a later
// read put: the earlier one may have read the entry before a change
// that the later one saw (another client's commit whose feed event has
// not come yet), and the cache would then hold the entry as it was
// before (TestCoherenceOpenSeesCommittedVersion read a stale size).
func TestMetaCacheOlderReadDoesNotReplaceNewer(t *testing.T) {
	c := newMetaCache()
	c.setOn(true)
	old := Entry{ID: 5, Parent: 1, Name: "f", Kind: dfms.KindFile, Live: true, Size: 300_009, Version: 9}
	cur := Entry{ID: 5, Parent: 1, Name: "f", Kind: dfms.KindFile, Live: true, Size: 10, Version: 10}
	early := c.begin() // a stat sent before the commit of version 10
	late := c.begin()  // an open sent after it
	c.put(late, cur)
	c.put(early, old)
	if got, ok := c.get(5); !ok || got.Version != 10 || got.Size != 10 {
		t.Fatalf("get = %+v, %v; want version 10 of 10 bytes", got, ok)
	}
	// The other way round the later answer replaces the earlier one.
	c.put(c.begin(), cur)
	if got, _ := c.get(5); got.Version != 10 {
		t.Fatalf("get = %+v; want version 10", got)
	}
}
