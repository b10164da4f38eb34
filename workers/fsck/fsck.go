// Package fsck checks that the metadata store and the chunk stores of
// DFMS agree, and repairs what can be repaired (dfms fsck).
//
// # What is checked
//
// A run makes four passes, each over pages of the metadata store
// (meta.Checker), in this order:
//
//  1. Copies. Every stored chunk row (neither pending, which is a write
//     in flight, nor being deleted by GC) is read from every node that
//     should hold it: with one chunk store, that store; in a cluster, the
//     chunk's owners on the ring and the nodes recorded as holding a
//     copy (meta.Replicas). Each copy must have the recorded size and
//     hash to the chunk's name. A copy that is missing or corrupt is a
//     bad copy. A chunk with no good copy on any node (the other nodes
//     are searched too) is lost (its bad copies are listed with it, not
//     counted as bad copies). A node that cannot be read (down,
//     unreachable) is counted as unchecked, not as damage.
//  2. Manifests. Every version's manifest and every multipart part's
//     must name chunks that are stored (a row that is neither pending nor
//     being deleted, with the size the manifest gives): otherwise the
//     chunk is missing. The files (path, version id) that need a missing
//     or lost chunk are listed.
//  3. Reference counts. Every chunk row's count must equal its
//     occurrences in all manifests and parts.
//  4. Files. No file, live or in the trash, may name a current version
//     that does not exist (a dangling file).
//
// # Repair
//
// With Repair set, a bad copy is replaced by a good one (read from a
// node whose copy hashes right, written to the bad node, read back and
// checked, and recorded as a copy), and a wrong count is set to the true
// one. What cannot be repaired is reported: a lost or missing chunk (no
// good bytes exist; the listed files need them restored from elsewhere,
// or deleted) and a dangling file.
//
// # A store in use
//
// A check may run while servers write, purge and collect garbage. What a
// page says may be stale by the time it is checked, so damage is
// confirmed before it is reported: a chunk whose copies look bad is
// looked up again (GC may be deleting it: no damage), a manifest that
// names a chunk not stored is read again with the chunk's row (a purge
// may have removed it, an upload stored the chunk), and counts are
// confirmed as below. A repair that writes a copy of a chunk GC starts
// deleting just then leaves at worst a copy without a row, which GC
// collects as an orphan.
//
// Counting references on a store in use races with commits and purges:
// pass 3 reads its pages one transaction at a time. So a count that pass
// 3 finds wrong is only a suspect: it is counted again by
// meta.Checker.RecountRefs, which reads every reference to the chunk and
// writes its count in one transaction (see there why this cannot race a
// commit or GC's mark and fence: the recount writes only rows that are
// not being deleted, and writes them as a commit or purge would, so
// GC's protocol holds as it does for them). Only what the recount
// confirms is reported, and only it is repaired. A count set to zero
// starts the chunk's GC grace period, as the purge of its last
// reference would.
//
// # Memory
//
// Memory stays bounded whatever the size of the store:
//
//   - pages of Page rows (versions, parts, chunks); a page of manifests
//     holds Page manifests, so the bound is Page times the largest
//     manifest (36 bytes per chunk of a file);
//   - Parallel chunks are read at once, each with at most one good copy
//     and one copy being checked in memory (2 × the largest chunk);
//   - the recount of pass 3 keeps a map of at most MaxCounts chunk hashes
//     and counts (about 100 bytes each): the hash space is cut into
//     ranges by the first 8 bytes of the hash, as many as the number of
//     chunk rows needs, and each range is a pass over every manifest; a
//     range whose manifests name more than MaxCounts distinct chunks is
//     halved and counted again;
//   - the report lists at most MaxListed items of each kind, and at most
//     MaxFiles files per chunk (the counts stay exact; Truncated says a
//     list was cut), and remembers at most MaxListed lost chunks for
//     pass 2 to find their files.
package fsck

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/server/meta"
)

// Meta is what a check uses of the metadata store: the Checker's pages
// and recount, and the record of copies (to record a copy it repaired).
type Meta interface {
	meta.Checker
	AddReplicas(ctx context.Context, rs []dfms.Replica) error
}

// Nodes is a cluster of storage nodes (a *placement.Cluster): its members
// with their stores, and each chunk's owners on the ring.
type Nodes interface {
	Members() []placement.Member
	Owners(h dfms.Hash) []string
}

// Defaults of Checker's bounds.
const (
	DefaultPage      = 200
	DefaultParallel  = 4
	DefaultMaxCounts = 1 << 20
	DefaultMaxListed = 1000
	DefaultMaxFiles  = 20
)

// Checker checks one metadata store against its chunk store or cluster.
// Its fields must not change while it runs.
type Checker struct {
	Meta Meta
	// Store is the single chunk store, used when Nodes is nil.
	Store dfms.ChunkStore
	// Nodes is the cluster of storage nodes, if there is one.
	Nodes Nodes
	// Repair repairs what can be repaired.
	Repair bool
	// Bounds (see Memory in the package doc); zero: the defaults.
	Page, Parallel, MaxCounts, MaxListed, MaxFiles int
	// Progress, if set, is told how far each pass is: done and total
	// bytes of chunks for pass "copies", and done items with total -1
	// (unknown) for the others ("manifests", "references", "files").
	// It is called from one goroutine at a time.
	Progress func(pass string, done, total int64)
}

func (c *Checker) page() int      { return or(c.Page, DefaultPage) }
func (c *Checker) parallel() int  { return or(c.Parallel, DefaultParallel) }
func (c *Checker) maxCounts() int { return or(c.MaxCounts, DefaultMaxCounts) }
func (c *Checker) maxListed() int { return or(c.MaxListed, DefaultMaxListed) }
func (c *Checker) maxFiles() int  { return or(c.MaxFiles, DefaultMaxFiles) }

func or(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func (c *Checker) progress(pass string, done, total int64) {
	if c.Progress != nil {
		c.Progress(pass, done, total)
	}
}

// run is the state of one Run.
type run struct {
	c   *Checker
	rep *Report
	// lost indexes rep.LostChunks by hash (at most MaxListed), missing
	// rep.MissingChunks.
	lost    map[dfms.Hash]int
	missing map[dfms.Hash]int
	rows    int64 // chunk rows seen by pass 1, for pass 3's ranges
}

// Run checks the whole store once and returns what it found (and, with
// Repair, what it repaired). An error means the check could not finish
// (the report then covers what was done); damage is not an error.
func (c *Checker) Run(ctx context.Context) (*Report, error) {
	if c.Meta == nil || c.Store == nil && c.Nodes == nil {
		return nil, dfms.Errorf("fsck.Run", dfms.Invalid, "a check needs the metadata store and a chunk store or cluster")
	}
	r := &run{c: c, rep: &Report{Repair: c.Repair}, lost: map[dfms.Hash]int{}, missing: map[dfms.Hash]int{}}
	for _, pass := range []func(context.Context) error{r.copies, r.manifests, r.references, r.files} {
		if err := pass(ctx); err != nil {
			r.rep.finish()
			return r.rep, err
		}
	}
	r.rep.finish()
	return r.rep, nil
}

// ---- pass 1: copies ----

// node is a chunk store to check, by id ("" for the single store).
type node struct {
	id    string
	store dfms.ChunkStore
	down  bool
}

// nodes returns the stores that may hold chunks, by id.
func (r *run) nodes() map[string]node {
	if r.c.Nodes == nil {
		return map[string]node{"": {store: r.c.Store}}
	}
	out := map[string]node{}
	for _, m := range r.c.Nodes.Members() {
		out[m.ID] = node{id: m.ID, store: m.Store, down: m.State == dfms.NodeDown}
	}
	return out
}

// expected returns the nodes that should hold a copy of ch: its owners
// and the nodes recorded as holding one (sorted, once each).
func (r *run) expected(ch meta.ChunkRecord) []string {
	if r.c.Nodes == nil {
		return []string{""}
	}
	ids := append(slices.Clone(r.c.Nodes.Owners(ch.Hash)), ch.Nodes...)
	slices.Sort(ids)
	return slices.Compact(ids)
}

func (r *run) copies(ctx context.Context) error {
	var total int64
	if r.c.Progress != nil {
		// The bar needs the total: a pass over the rows (metadata only).
		if err := r.eachChunkPage(ctx, func(page []meta.ChunkRecord) error {
			for _, ch := range page {
				if !ch.Pending && !ch.Deleting {
					total += ch.Size
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	nodes := r.nodes()
	var done int64
	r.c.progress("copies", 0, total)
	return r.eachChunkPage(ctx, func(page []meta.ChunkRecord) error {
		results := make([]chunkResult, len(page))
		sem := make(chan struct{}, r.c.parallel())
		var wg sync.WaitGroup
		for i, ch := range page {
			r.rows++
			if ch.Pending || ch.Deleting {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return ctx.Err()
			}
			wg.Go(func() {
				defer func() { <-sem }()
				results[i] = r.checkChunk(ctx, nodes, ch)
			})
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return err
		}
		for i, ch := range page {
			if ch.Pending || ch.Deleting {
				continue
			}
			if err := r.add(ctx, ch, results[i]); err != nil {
				return err
			}
			done += ch.Size
			r.c.progress("copies", done, total)
		}
		return nil
	})
}

// eachChunkPage calls fn with every page of chunk rows, in hash order.
func (r *run) eachChunkPage(ctx context.Context, fn func([]meta.ChunkRecord) error) error {
	var from dfms.Hash
	for {
		page, err := r.c.Meta.CheckChunks(ctx, from, r.c.page())
		if err != nil {
			return err
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < r.c.page() {
			return nil
		}
		last := page[len(page)-1].Hash
		if last == maxHash {
			return nil
		}
		from = next(last)
	}
}

var maxHash = func() (h dfms.Hash) {
	for i := range h {
		h[i] = 0xff
	}
	return h
}()

// next returns the hash after h (h is not maxHash).
func next(h dfms.Hash) dfms.Hash {
	for i := len(h) - 1; i >= 0; i-- {
		h[i]++
		if h[i] != 0 {
			break
		}
	}
	return h
}

// chunkResult is what checking one chunk's copies found.
type chunkResult struct {
	copies    int64
	copyBytes int64
	bad       []BadCopy
	lost      bool
	unchecked int
	err       error // the check itself failed
}

// checkChunk reads every copy of ch that should exist, and with Repair
// replaces the bad ones by a good one.
func (r *run) checkChunk(ctx context.Context, nodes map[string]node, ch meta.ChunkRecord) chunkResult {
	var res chunkResult
	var good []byte
	for _, id := range r.expected(ch) {
		n, known := nodes[id]
		if !known {
			// A copy recorded on a node that left the cluster: out of
			// reach, as a down node's.
			res.unchecked++
			continue
		}
		if n.down {
			res.unchecked++
			continue
		}
		data, problem, err := readCopy(ctx, n.store, ch.Chunk)
		if ctx.Err() != nil {
			res.err = ctx.Err()
			return res
		}
		switch {
		case problem == "" && err != nil:
			res.unchecked++
			continue
		case problem == "":
			res.copies++
			res.copyBytes += int64(len(data))
			if good == nil {
				good = data
			}
			continue
		}
		res.copies++
		res.copyBytes += int64(len(data))
		bc := BadCopy{Chunk: ch.Hash.String(), Node: id, Problem: problem}
		if err != nil {
			bc.Error = err.Error()
		}
		res.bad = append(res.bad, bc)
	}
	if len(res.bad) == 0 {
		return res
	}
	// GC may have begun deleting the chunk since its page was read: then
	// its copies are going, and that is no damage.
	if gone, err := r.goneSince(ctx, ch.Hash); err != nil || gone {
		return chunkResult{err: err}
	}
	if good == nil {
		// Another node may hold a good copy (a ring change not yet
		// repaired, an unrecorded copy).
		expected := r.expected(ch)
		for id, n := range nodes {
			if n.down || slices.Contains(expected, id) {
				continue
			}
			if data, problem, err := readCopy(ctx, n.store, ch.Chunk); problem == "" && err == nil {
				good = data
				break
			}
		}
	}
	if good == nil {
		res.lost = res.unchecked == 0 || r.c.Nodes == nil
		if !res.lost {
			// The only good copy may be on a node that could not be read.
			for i := range res.bad {
				res.bad[i].Note = "no good copy on the nodes that could be read"
			}
		}
		return res
	}
	if !r.c.Repair {
		return res
	}
	for i := range res.bad {
		bc := &res.bad[i]
		if bc.Problem == ProblemSize {
			bc.Note = "the chunk's recorded size is wrong, not its bytes: not repairable here"
			continue
		}
		if err := r.replace(ctx, nodes[bc.Node], ch.Chunk, good); err != nil {
			bc.Note = "repair failed: " + err.Error()
			continue
		}
		bc.Repaired = true
	}
	return res
}

// goneSince reports whether chunk h has no stored row any more (GC took
// it, or is taking it).
func (r *run) goneSince(ctx context.Context, h dfms.Hash) (bool, error) {
	rows, err := r.c.Meta.LookupChunks(ctx, []dfms.Hash{h})
	if err != nil {
		return false, err
	}
	return len(rows) == 0 || rows[0].Deleting, nil
}

// Problems of a copy.
const (
	ProblemMissing = "missing"
	ProblemCorrupt = "corrupt"
	// ProblemSize: the bytes hash to the chunk's name, but their length
	// is not the recorded size (the row is wrong).
	ProblemSize = "size"
)

// readCopy reads ch from one store and says what is wrong with it:
// "" and a nil error for a good copy; a problem; or "" and the error of
// a store that could not answer.
func readCopy(ctx context.Context, st dfms.ChunkStore, ch meta.Chunk) ([]byte, string, error) {
	data, err := st.Get(ctx, ch.Hash, nil)
	switch {
	case dfms.Is(err, dfms.NotExist):
		return nil, ProblemMissing, nil
	case dfms.Is(err, dfms.Corrupt):
		return nil, ProblemCorrupt, err
	case err != nil:
		return nil, "", err
	case dfms.Sum(data) != ch.Hash:
		return data, ProblemCorrupt, nil
	case int64(len(data)) != ch.Size:
		return data, ProblemSize, nil
	}
	return data, "", nil
}

// replace writes good over node n's copy of ch, reads it back, and
// records the copy.
func (r *run) replace(ctx context.Context, n node, ch meta.Chunk, good []byte) error {
	if err := n.store.Put(ctx, ch.Hash, good); err != nil {
		return err
	}
	if _, problem, err := readCopy(ctx, n.store, ch); problem != "" || err != nil {
		return fmt.Errorf("the copy written reads back bad (%s): %v", problem, err)
	}
	if r.c.Nodes == nil {
		return nil
	}
	return r.c.Meta.AddReplicas(ctx, []dfms.Replica{{Hash: ch.Hash, Node: n.id}})
}

// add adds one chunk's result to the report.
func (r *run) add(ctx context.Context, ch meta.ChunkRecord, res chunkResult) error {
	if res.err != nil {
		return res.err
	}
	rep := r.rep
	rep.Chunks++
	rep.Bytes += ch.Size
	rep.Copies += res.copies
	rep.CopyBytes += res.copyBytes
	rep.Unchecked += res.unchecked
	if res.lost {
		// Its copies are all bad: the lost chunk says so, with them.
		rep.Damage.LostChunks++
		if len(rep.LostChunks) < r.c.maxListed() {
			r.lost[ch.Hash] = len(rep.LostChunks)
			rep.LostChunks = append(rep.LostChunks, LostChunk{Chunk: ch.Hash.String(), Size: ch.Size, Refs: ch.Refs, Copies: res.bad})
		} else {
			rep.Truncated = true
		}
		return nil
	}
	for _, bc := range res.bad {
		rep.Damage.BadCopies++
		if bc.Repaired {
			rep.Damage.Repaired++
		}
		if len(rep.BadCopies) < r.c.maxListed() {
			rep.BadCopies = append(rep.BadCopies, bc)
		} else {
			rep.Truncated = true
		}
	}
	return nil
}

// ---- pass 2: manifests ----

func (r *run) manifests(ctx context.Context) error {
	var done int64
	r.c.progress("manifests", 0, -1)
	var after int64
	for {
		page, err := r.c.Meta.CheckVersions(ctx, after, r.c.page())
		if err != nil {
			return err
		}
		if err := r.checkManifests(ctx, page); err != nil {
			return err
		}
		r.rep.Versions += int64(len(page))
		done += int64(len(page))
		r.c.progress("manifests", done, -1)
		if len(page) < r.c.page() {
			break
		}
		after = page[len(page)-1].Version
	}
	var key meta.PartKey
	for {
		page, err := r.c.Meta.CheckParts(ctx, key, r.c.page())
		if err != nil {
			return err
		}
		if err := r.checkManifests(ctx, page); err != nil {
			return err
		}
		r.rep.Parts += int64(len(page))
		done += int64(len(page))
		r.c.progress("manifests", done, -1)
		if len(page) < r.c.page() {
			return nil
		}
		last := page[len(page)-1]
		key = meta.PartKey{Upload: last.Upload, Number: last.Part}
	}
}

// checkManifests checks that the chunks of a page of manifests are
// stored, and lists the files that need a missing or lost chunk.
func (r *run) checkManifests(ctx context.Context, page []meta.CheckedManifest) error {
	set := map[dfms.Hash]bool{}
	for _, m := range page {
		for _, ref := range m.Manifest.Chunks {
			if !ref.IsHole() {
				set[ref.Hash] = true
			}
		}
	}
	hashes := make([]dfms.Hash, 0, len(set))
	for h := range set {
		hashes = append(hashes, h)
	}
	rows := make(map[dfms.Hash]meta.Chunk, len(hashes))
	for part := range slices.Chunk(hashes, meta.MaxRecount) {
		cs, err := r.c.Meta.LookupChunks(ctx, part)
		if err != nil {
			return err
		}
		for _, ch := range cs {
			rows[ch.Hash] = ch
		}
	}
	for _, m := range page {
		seen := map[dfms.Hash]bool{} // a manifest needs a chunk once, however often it names it
		for _, ref := range m.Manifest.Chunks {
			if ref.IsHole() || seen[ref.Hash] {
				continue
			}
			seen[ref.Hash] = true
			ch, found := rows[ref.Hash]
			var why string
			switch {
			case !found:
				why = "no row in the chunk index"
			case ch.Deleting:
				why = "being deleted by GC"
			case ch.Pending:
				why = "reserved, never recorded as stored"
			case ch.Size != int64(ref.Size):
				why = fmt.Sprintf("recorded with %d bytes, the manifest says %d", ch.Size, ref.Size)
			}
			if why != "" {
				if still, err := r.stillNeeded(ctx, ref.Hash, m); err != nil || !still {
					if err != nil {
						return err
					}
					continue
				}
				if err := r.missingRef(ctx, ref.Hash, why, m); err != nil {
					return err
				}
				continue
			}
			if i, lost := r.lost[ref.Hash]; lost {
				if err := r.addFile(ctx, &r.rep.LostChunks[i].Files, m); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// stillNeeded reports whether manifest m still exists and chunk h is
// still not stored: the page was read a while ago, and a purge (and GC)
// or an upload may have moved on since.
func (r *run) stillNeeded(ctx context.Context, h dfms.Hash, m meta.CheckedManifest) (bool, error) {
	var again []meta.CheckedManifest
	var err error
	if m.Upload != "" {
		again, err = r.c.Meta.CheckParts(ctx, meta.PartKey{Upload: m.Upload, Number: m.Part - 1}, 1)
		if err == nil && (len(again) == 0 || again[0].Upload != m.Upload || again[0].Part != m.Part) {
			return false, nil
		}
	} else {
		again, err = r.c.Meta.CheckVersions(ctx, m.Version-1, 1)
		if err == nil && (len(again) == 0 || again[0].Version != m.Version) {
			return false, nil
		}
	}
	if err != nil {
		return false, err
	}
	rows, err := r.c.Meta.LookupChunks(ctx, []dfms.Hash{h})
	if err != nil {
		return false, err
	}
	return len(rows) == 0 || rows[0].Pending || rows[0].Deleting || !sizeIn(rows[0].Size, h, m.Manifest), nil
}

// sizeIn reports whether m names chunk h with the given size.
func sizeIn(size int64, h dfms.Hash, m dfms.Manifest) bool {
	for _, c := range m.Chunks {
		if c.Hash == h {
			return int64(c.Size) == size
		}
	}
	return false
}

// missingRef records that manifest m needs chunk h, which is not stored.
func (r *run) missingRef(ctx context.Context, h dfms.Hash, why string, m meta.CheckedManifest) error {
	i, listed := r.missing[h]
	if !listed {
		r.rep.Damage.MissingChunks++
		if len(r.rep.MissingChunks) >= r.c.maxListed() {
			// Past the bound a chunk is counted per manifest that needs
			// it: it cannot be remembered.
			r.rep.Truncated = true
			return nil
		}
		i = len(r.rep.MissingChunks)
		r.missing[h] = i
		r.rep.MissingChunks = append(r.rep.MissingChunks, MissingChunk{Chunk: h.String(), Why: why})
	}
	return r.addFile(ctx, &r.rep.MissingChunks[i].Files, m)
}

// addFile lists the file (or upload part) of manifest m in files.
func (r *run) addFile(ctx context.Context, files *[]File, m meta.CheckedManifest) error {
	if len(*files) >= r.c.maxFiles() {
		r.rep.Truncated = true
		return nil
	}
	f := File{Owner: int64(m.Owner), Entry: int64(m.Entry), Version: m.Version, Upload: m.Upload, Part: m.Part}
	p, err := r.c.Meta.PlaceOf(ctx, m.Entry)
	if err != nil && !dfms.Is(err, dfms.NotExist) {
		return err
	}
	if err == nil {
		f.Path, f.Trashed = p.Path, p.Trashed
	}
	*files = append(*files, f)
	return nil
}

// ---- pass 3: reference counts ----

// span is a range of hashes by their first 8 bytes, both ends included.
type span struct{ lo, hi uint64 }

func prefix(h dfms.Hash) uint64 { return binary.BigEndian.Uint64(h[:8]) }

// errTooMany ends the count of a span whose manifests name more than
// MaxCounts distinct chunks.
var errTooMany = errors.New("too many chunks in the span")

func (r *run) references(ctx context.Context) error {
	// As many spans as the rows need, with room for references to chunks
	// without a row.
	n := uint64(r.rows*5/4)/uint64(r.c.maxCounts()) + 1
	step := ^uint64(0) / n
	var todo []span
	for i := uint64(0); i < n; i++ {
		s := span{lo: i * step, hi: (i+1)*step - 1}
		if i == n-1 {
			s.hi = ^uint64(0)
		}
		todo = append(todo, s)
	}
	slices.Reverse(todo)
	var done int64
	r.c.progress("references", 0, -1)
	for len(todo) > 0 {
		s := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		counts, err := r.count(ctx, s)
		if errors.Is(err, errTooMany) {
			if s.lo == s.hi {
				return fmt.Errorf("fsck: more than %d chunks share the hash prefix %016x", r.c.maxCounts(), s.lo)
			}
			mid := s.lo + (s.hi-s.lo)/2
			todo = append(todo, span{mid + 1, s.hi}, span{s.lo, mid})
			continue
		}
		if err != nil {
			return err
		}
		var suspects []dfms.Hash
		from := dfms.Hash{}
		binary.BigEndian.PutUint64(from[:8], s.lo)
	rows:
		for {
			page, err := r.c.Meta.CheckChunks(ctx, from, r.c.page())
			if err != nil {
				return err
			}
			for _, ch := range page {
				if prefix(ch.Hash) > s.hi {
					break rows
				}
				done++
				if ch.Refs != counts[ch.Hash] {
					suspects = append(suspects, ch.Hash)
					if len(suspects) == meta.MaxRecount {
						if err := r.recount(ctx, suspects); err != nil {
							return err
						}
						suspects = suspects[:0]
					}
				}
			}
			r.c.progress("references", done, -1)
			if len(page) < r.c.page() || page[len(page)-1].Hash == maxHash {
				break
			}
			from = next(page[len(page)-1].Hash)
		}
		if err := r.recount(ctx, suspects); err != nil {
			return err
		}
	}
	return nil
}

// count counts the references of every manifest and part to the chunks
// of span s.
func (r *run) count(ctx context.Context, s span) (map[dfms.Hash]int64, error) {
	counts := map[dfms.Hash]int64{}
	add := func(page []meta.CheckedManifest) error {
		for _, m := range page {
			for _, ref := range m.Manifest.Chunks {
				if ref.IsHole() {
					continue
				}
				if p := prefix(ref.Hash); p < s.lo || p > s.hi {
					continue
				}
				counts[ref.Hash]++
				if len(counts) > r.c.maxCounts() {
					return errTooMany
				}
			}
		}
		return nil
	}
	var after int64
	for {
		page, err := r.c.Meta.CheckVersions(ctx, after, r.c.page())
		if err != nil {
			return nil, err
		}
		if err := add(page); err != nil {
			return nil, err
		}
		if len(page) < r.c.page() {
			break
		}
		after = page[len(page)-1].Version
	}
	var key meta.PartKey
	for {
		page, err := r.c.Meta.CheckParts(ctx, key, r.c.page())
		if err != nil {
			return nil, err
		}
		if err := add(page); err != nil {
			return nil, err
		}
		if len(page) < r.c.page() {
			return counts, nil
		}
		last := page[len(page)-1]
		key = meta.PartKey{Upload: last.Upload, Number: last.Part}
	}
}

// recount confirms suspects in one transaction (and repairs them with
// Repair), and reports those confirmed.
func (r *run) recount(ctx context.Context, suspects []dfms.Hash) error {
	if len(suspects) == 0 {
		return nil
	}
	rcs, err := r.c.Meta.RecountRefs(ctx, suspects, r.c.Repair)
	if err != nil {
		return err
	}
	for _, rc := range rcs {
		if !rc.Found || rc.Recorded == rc.Counted {
			continue // gone, or right after all (a commit or purge moved on meanwhile)
		}
		r.rep.Damage.RefCounts++
		rcr := RefCount{Chunk: rc.Hash.String(), Recorded: rc.Recorded, Counted: rc.Counted, Repaired: rc.Set}
		if rc.Set {
			r.rep.Damage.Repaired++
		}
		switch {
		case rc.Deleting:
			rcr.Note = "the chunk is being deleted by GC: its versions need it restored"
		case rc.Pending:
			rcr.Note = "the chunk is reserved, not stored"
		}
		if len(r.rep.RefCounts) < r.c.maxListed() {
			r.rep.RefCounts = append(r.rep.RefCounts, rcr)
		} else {
			r.rep.Truncated = true
		}
	}
	return nil
}

// ---- pass 4: files ----

func (r *run) files(ctx context.Context) error {
	var after dfms.EntryID
	var done int64
	r.c.progress("files", 0, -1)
	for {
		page, err := r.c.Meta.DanglingEntries(ctx, after, r.c.page())
		if err != nil {
			return err
		}
		for _, d := range page {
			r.rep.Damage.DanglingFiles++
			if len(r.rep.DanglingFiles) >= r.c.maxListed() {
				r.rep.Truncated = true
				continue
			}
			f := File{Owner: int64(d.Owner), Entry: int64(d.Entry), Version: d.VersionID, Trashed: d.Trashed}
			if p, err := r.c.Meta.PlaceOf(ctx, d.Entry); err == nil {
				f.Path, f.Trashed = p.Path, p.Trashed
			} else if !dfms.Is(err, dfms.NotExist) {
				return err
			}
			r.rep.DanglingFiles = append(r.rep.DanglingFiles, f)
		}
		done += int64(len(page))
		r.c.progress("files", done, -1)
		if len(page) < r.c.page() {
			return nil
		}
		after = page[len(page)-1].Entry
	}
}
