package vfs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dfms/dfms"
)

// A journal records how a stage differs from the version it is based on,
// so that written data outlives a crash of the mount: a header (file,
// base version by its lasting ID, size at the start) followed by one
// record per change, each appended before the change is acknowledged, and
// the commit ID of an attempt to commit them, appended before the attempt
// (so that recovery recognises a commit that was made just before a
// crash). The stage file holds the
// bytes. Recovery replays the records over the base version and commits
// the result. A crash of the mount leaves both files in the page cache, so
// no fsync is needed for that; a crash of the machine may lose what was
// not yet fsync'ed, as on any file system (fsync commits to the server).

const (
	stageSuffix   = ".data"
	journalSuffix = ".journal"

	// journalMagic starts a journal whose header names the base version by
	// its lasting ID; one of journalMagicV1, written by earlier releases,
	// names it by number.
	journalMagic   = "DFMSJNL2"
	journalMagicV1 = "DFMSJNL1"
	headerLen      = len(journalMagic) + 3*8
	recordLen      = 1 + 2*8

	recWrite    = 'W' // off, length
	recTruncate = 'T' // size, 0
	recMTime    = 'M' // unix nanoseconds, 0
	recCommit   = 'K' // the 16 bytes of a commit ID (newCommitID)
)

// newCommitID returns a new commit ID: 16 random bytes in hex.
func newCommitID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

type journal struct {
	f  *os.File
	id dfms.EntryID

	// mu orders the appends and resets of the file's owner (under the
	// file's mu) and of its pending create (under the pending files' mu).
	mu sync.Mutex
	// torn is set when a record could not be written and its torn part
	// not cut off again: the records after it would be unreadable, so
	// none is written until reset.
	torn error
}

// journalError is the error of a change whose journal record could not be
// written: the change is not made, and the caller sees EIO (the cache
// disk is full or failing), not a success whose data a crash would lose.
func journalError(op dfms.Op, err error) error {
	return dfms.E(op, dfms.Unavailable, fmt.Errorf("recording the change in the crash journal: %w", err))
}

// createJournal creates a journal whose first records are records.
func createJournal(path string, id dfms.EntryID, version, size int64, records []byte) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	j := &journal{f: f, id: id}
	// A new file: the header is its first write, and records follow.
	if _, err := f.Write(append(j.header(version, size), records...)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return j, nil
}

func (j *journal) header(version, size int64) []byte {
	h := make([]byte, headerLen)
	copy(h, journalMagic)
	binary.LittleEndian.PutUint64(h[8:], uint64(j.id))
	binary.LittleEndian.PutUint64(h[16:], uint64(version))
	binary.LittleEndian.PutUint64(h[24:], uint64(size))
	return h
}

// reset empties the journal and starts it over version, of size bytes.
func (j *journal) reset(version, size int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	_, err := j.f.WriteAt(j.header(version, size), 0)
	if err == nil {
		_, err = j.f.Seek(int64(headerLen), io.SeekStart)
	}
	if err == nil {
		j.torn = nil
	}
	return err
}

// append appends records b whole, or fails and leaves the journal as it
// was: a write that fails part way (a full disk) is cut off again.
func (j *journal) append(b []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.torn != nil {
		return j.torn
	}
	end, err := j.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(b); err != nil {
		if terr := j.f.Truncate(end); terr != nil {
			j.torn = fmt.Errorf("the journal ends in a torn record: %w", terr)
		} else if _, serr := j.f.Seek(end, io.SeekStart); serr != nil {
			j.torn = fmt.Errorf("the journal ends in a torn record: %w", serr)
		}
		return err
	}
	return nil
}

func (j *journal) record(kind byte, a, b int64) error {
	return j.append(appendRecord(make([]byte, 0, recordLen), kind, a, b))
}

// commit records the ID of a commit about to be attempted.
func (j *journal) commit(id string) error {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		return fmt.Errorf("commit id %q is not 16 bytes in hex", id)
	}
	return j.record(recCommit, int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:])))
}

func (j *journal) write(off, n int64) error  { return j.record(recWrite, off, n) }
func (j *journal) truncate(size int64) error { return j.record(recTruncate, size, 0) }
func (j *journal) mtime(t time.Time) error   { return j.record(recMTime, t.UnixNano(), 0) }
func (j *journal) close()                    { j.f.Close() }
func (j *journal) remove()                   { os.Remove(j.f.Name()) }
func stageBase(journalPath string) string    { return strings.TrimSuffix(journalPath, journalSuffix) }

// replayed is the state a journal describes.
type replayed struct {
	id      dfms.EntryID
	version int64 // lasting ID of the base version, or its number if byNumber
	// byNumber says version is a number (a journal of an earlier release).
	byNumber bool
	// commitID is the ID of the last commit attempted of the changes, ""
	// if none was since the last change.
	commitID string
	size     int64
	limit    int64
	base     int64 // size of the base version (the header's)
	dirty    extents
	mtime    time.Time
	// create is the pending file the journal creates (pending.go), nil
	// once it was materialized or if the file was not created here.
	create *Entry
	// links are the further names made while it was pending.
	links []nameKey
}

// replay reads a journal. A torn last record (a crash mid-append) is
// ignored: its change was never acknowledged.
func replay(path string) (replayed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return replayed{}, err
	}
	if len(b) < headerLen || (string(b[:8]) != journalMagic && string(b[:8]) != journalMagicV1) {
		return replayed{}, fmt.Errorf("%s is not a stage journal", path)
	}
	r := replayed{id: dfms.EntryID(binary.LittleEndian.Uint64(b[8:])), version: int64(binary.LittleEndian.Uint64(b[16:])),
		byNumber: string(b[:8]) == journalMagicV1}
	r.size = int64(binary.LittleEndian.Uint64(b[24:]))
	r.limit, r.base = r.size, r.size
	for p := b[headerLen:]; len(p) >= recordLen; p = p[recordLen:] {
		a, c := int64(binary.LittleEndian.Uint64(p[1:])), int64(binary.LittleEndian.Uint64(p[9:]))
		switch p[0] {
		case recCreate:
			if c < 0 || c > dfms.MaxNameLen || int64(len(p)) < int64(recordLen)+c {
				return r, nil // torn: the create was never acknowledged
			}
			if r.create == nil { // a rename (pending.go) keeps the attributes
				r.create = &Entry{ID: r.id, Kind: dfms.KindFile, Live: true}
			}
			r.create.Parent, r.create.Name = dfms.EntryID(a), string(p[recordLen:recordLen+int(c)])
			p = p[c:]
		case recPerm:
			if r.create != nil {
				r.create.Mode, r.create.UID, r.create.GID = uint32(a), uint32(uint64(c)>>32), uint32(c)
			}
		case recATime:
			if r.create != nil {
				r.create.ATime = time.Unix(0, a)
			}
		case recLink, recUnlink:
			if c < 0 || c > dfms.MaxNameLen || int64(len(p)) < int64(recordLen)+c {
				return r, nil // torn: never acknowledged
			}
			k := nameKey{dfms.EntryID(a), string(p[recordLen : recordLen+int(c)])}
			if p[0] == recLink {
				r.links = append(r.links, k)
			} else if i := slices.Index(r.links, k); i >= 0 {
				r.links = slices.Delete(r.links, i, i+1)
			}
			p = p[c:]
		case recCreated:
			r.create, r.links = nil, nil
		case recWrite:
			r.dirty = r.dirty.add(a, a+c)
			r.size = max(r.size, a+c)
			r.mtime = time.Now() // a write after a utimens moves the time again
			r.commitID = ""
		case recTruncate:
			if a < r.size {
				r.limit = min(r.limit, a)
				r.dirty = r.dirty.clip(a)
			}
			r.size = a
			r.mtime = time.Now()
			r.commitID = ""
		case recMTime:
			r.mtime = time.Unix(0, a)
			r.commitID = ""
		case recCommit:
			var id [16]byte
			binary.LittleEndian.PutUint64(id[:], uint64(a))
			binary.LittleEndian.PutUint64(id[8:], uint64(c))
			r.commitID = hex.EncodeToString(id[:])
		default:
			return r, fmt.Errorf("%s: unknown record %q", path, p[0])
		}
	}
	return r, nil
}

// recoverStages commits the stages a previous mount of this cache
// directory left behind (it crashed, or could not reach the server), oldest
// first. A stage of a file deleted since is dropped; one that cannot be
// committed now stays for the next mount.
func (fsys *FS) recoverStages(ctx context.Context) error {
	names, err := filepath.Glob(filepath.Join(fsys.stageDir, "*"+journalSuffix))
	if err != nil {
		return err
	}
	// Names are id-nanoseconds: order by the time part, so that two stages
	// of one file commit in the order they were written.
	stamp := func(p string) string {
		base := stageBase(filepath.Base(p))
		_, t, _ := strings.Cut(base, "-")
		return fmt.Sprintf("%020s", t)
	}
	sort.Slice(names, func(i, j int) bool { return stamp(names[i]) < stamp(names[j]) })
	fsys.dropStaleMarkers()
	var errs []error
	for _, jp := range names {
		// A stage whose recovery began and never ended killed the mount
		// that replayed it (a panic, the memory it took): replaying it
		// again would kill this one too.
		marker := stageBase(jp) + replayingSuffix
		if _, err := os.Stat(marker); err == nil {
			errs = append(errs, fsys.setAside(jp))
			continue
		}
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			errs = append(errs, err)
			continue
		}
		err := fsys.recoverStage(ctx, jp)
		os.Remove(marker)
		if err != nil {
			fsys.log.Error("staged data could not be committed; it is kept for the next mount", "journal", jp, "err", err)
			errs = append(errs, err)
			fsys.kept = append(fsys.kept, stageBase(jp)+stageSuffix)
		}
	}
	return errors.Join(errs...)
}

// replayingSuffix names the marker of a stage being recovered: it is made
// before the replay and removed after, whatever its outcome.
const replayingSuffix = ".replaying"

// setAside moves the stage of journal jp out of the way of recovery, into
// the cache directory's "aside" folder, where it is kept for a person to
// look at; the mount logs it and reports it at Close.
func (fsys *FS) setAside(jp string) error {
	base := stageBase(jp)
	dir := filepath.Join(filepath.Dir(fsys.stageDir), "aside")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, suffix := range []string{stageSuffix, journalSuffix} {
		if err := os.Rename(base+suffix, filepath.Join(dir, filepath.Base(base)+suffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	os.Remove(base + replayingSuffix)
	where := filepath.Join(dir, filepath.Base(base)+stageSuffix)
	fsys.log.Error("the last recovery of this staged data did not end (the mount died replaying it): it is set aside, not replayed again",
		"journal", filepath.Base(jp), "aside", where)
	fsys.aside = append(fsys.aside, where)
	return fmt.Errorf("staged data %s set aside: its recovery killed a mount", filepath.Base(base))
}

// dropStaleMarkers removes the recovery markers of stages that are gone:
// a mount that died between a stage's recovery and the marker's removal.
func (fsys *FS) dropStaleMarkers() {
	markers, _ := filepath.Glob(filepath.Join(fsys.stageDir, "*"+replayingSuffix))
	for _, m := range markers {
		if _, err := os.Stat(strings.TrimSuffix(m, replayingSuffix) + journalSuffix); errors.Is(err, fs.ErrNotExist) {
			os.Remove(m)
		}
	}
}

func (fsys *FS) recoverStage(ctx context.Context, jp string) error {
	base := stageBase(jp)
	r, err := replay(jp)
	if err != nil {
		return err
	}
	if r.size > fsys.maxSize {
		// Set aside, not replayed: committing it would list the file in
		// more chunks than a commit may hold (a journal of a release
		// without the limit, or of a mount with a larger one).
		return tooLarge("vfs.recover", fsys.maxSize)
	}
	drop := func() error {
		os.Remove(base + stageSuffix)
		os.Remove(jp)
		return nil
	}
	if r.create != nil {
		if err := fsys.recoverCreate(ctx, &r); err != nil {
			return err
		}
	}
	e, err := fsys.b.GetAttr(ctx, r.id)
	if dfms.Is(err, dfms.NotExist) || (err == nil && !e.Live) {
		fsys.log.Info("dropped the staged data of a file deleted since", "entry", r.id)
		return drop()
	}
	if err != nil {
		return err
	}
	if len(r.dirty) == 0 && r.size == r.limit && r.limit == r.base {
		return drop() // nothing was changed
	}
	if r.byNumber && r.version > 0 {
		// An earlier release's journal: the base by number, which a
		// rename over the file may have moved since; if so the base is
		// unknown, and the data is kept as a conflict copy.
		if v, err := fsys.versionNumbered(ctx, r.id, r.version); err == nil {
			r.version = v.ID
		} else if !dfms.Is(err, dfms.NotExist) {
			return err
		} else {
			r.version = -1
		}
	}
	st, err := os.OpenFile(base+stageSuffix, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	jf, err := os.OpenFile(jp, os.O_RDWR, 0)
	if err != nil {
		st.Close()
		return err
	}
	if _, err := jf.Seek(0, io.SeekEnd); err != nil {
		st.Close()
		jf.Close()
		return err
	}
	if r.mtime.IsZero() {
		r.mtime = time.Now()
	}
	// The commit requires its base to be current still, unless the
	// journal names an attempt the backend made already (it then answers
	// that version).
	f := &openFile{fsys: fsys, id: r.id, init: true, version: r.version, size: r.size, limit: r.limit,
		dirty: r.dirty, changed: true, mtime: r.mtime, stage: st, journal: &journal{f: jf, id: r.id},
		commitID: r.commitID, requireBase: true}
	f.mu.Lock()
	if e.Version != r.version && r.commitID == "" {
		err = dfms.Errorf("vfs.recover", dfms.Conflict, "the file moved on")
	} else {
		err = f.commitLocked(ctx)
	}
	if dfms.Is(err, dfms.Conflict) && f.changed {
		if cur, gerr := fsys.b.GetAttr(ctx, r.id); gerr == nil && cur.Live && cur.Version != r.version {
			// The file moved on since this stage was based on it (another
			// client committed): keep both, as a conflict copy beside it.
			err = f.commitConflictCopyLocked(ctx, cur)
		}
	}
	f.mu.Unlock()
	st.Close()
	jf.Close()
	if err != nil {
		return err
	}
	fsys.log.Info("committed data staged before the last unmount", "entry", r.id, "version", f.version, "size", f.size)
	return drop()
}

// recoverCreate creates the file a crashed mount created (pending.go) and
// had not materialized yet.
func (fsys *FS) recoverCreate(ctx context.Context, r *replayed) error {
	if _, err := fsys.b.GetAttr(ctx, r.id); !dfms.Is(err, dfms.NotExist) {
		if err == nil && len(r.links) > 0 {
			// Made, perhaps not with its links (a crash in between).
			return fsys.linkCreated(ctx, fsys.mc.begin(), r.id, r.links)
		}
		return err // it was materialized (nil), or the backend failed
	}
	c := *r.create
	c.MTime = r.mtime
	if c.MTime.IsZero() {
		c.MTime = time.Now()
	}
	c.CTime = c.MTime
	if fsys.pend != nil {
		res, err := fsys.createFiles(ctx, []Entry{c})
		if err == nil {
			err = res[0].Err
		}
		if err == nil {
			fsys.log.Info("created a file made before the last unmount", "entry", c.ID, "name", res[0].Entry.Name)
			err = fsys.linkCreated(ctx, fsys.mc.begin(), c.ID, r.links)
		}
		return err
	}
	// A backend that cannot take the reserved id: a new one.
	e, err := fsys.b.CreateFile(ctx, c.Parent, c.Name, c.Mode, c.UID, c.GID)
	if dfms.Is(err, dfms.Exist) {
		e, err = fsys.b.CreateFile(ctx, c.Parent, conflictName(c.Name, time.Now()), c.Mode, c.UID, c.GID)
	}
	if err != nil {
		return err
	}
	r.id = e.ID
	return nil
}

// commitConflictCopyLocked commits the content as a new file next to e,
// named after it, rather than over a version it was not based on.
func (f *openFile) commitConflictCopyLocked(ctx context.Context, e Entry) error {
	m, err := f.rechunkLocked(ctx)
	if err != nil {
		return err
	}
	name := conflictName(e.Name, time.Now())
	c, err := f.fsys.b.CreateFile(ctx, e.Parent, name, e.Mode, e.UID, e.GID)
	if err != nil {
		return err
	}
	if _, err := f.fsys.b.CommitManifest(ctx, Commit{ID: c.ID, Manifest: m, MTime: f.mtime, CommitID: newCommitID()}); err != nil {
		return err
	}
	f.changed, f.dirty = false, nil
	f.fsys.log.Warn("staged data was based on an older version; it is kept as a conflict copy",
		"entry", e.ID, "name", e.Name, "copy", name)
	return nil
}

// conflictName is "NAME (conflict 2006-01-02 150405)", shortened to fit a
// name.
func conflictName(name string, t time.Time) string {
	suffix := " (conflict " + t.UTC().Format("2006-01-02 150405.000") + ")"
	if max := dfms.MaxNameLen - len(suffix); len(name) > max {
		name = name[:max]
	}
	return name + suffix
}
