package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dfms/dfms/fusefs/fusetest"
	"github.com/dfms/dfms/integration/testkit"
)

// The stress test's shape: files, writers per file (each file also has a
// reader), the most a file grows to, and the commit delay the issue allows.
const (
	stressFiles        = 20
	stressWriters      = 4
	stressMaxSize      = 3 << 20
	stressCommitWithin = 2 * time.Second
)

// stressDuration is how long TestUpStress writes: 60 s, or
// DFMS_STRESS_DURATION (a Go duration) for a shorter run while iterating.
func stressDuration(t *testing.T) time.Duration {
	s := os.Getenv("DFMS_STRESS_DURATION")
	if s == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 4*time.Second {
		t.Fatalf("DFMS_STRESS_DURATION=%q: want a duration of at least 4s", s)
	}
	return d
}

// TestUpStress is the acceptance test of the mount's data safety: 4
// writers and a reader per file on 20 files, for 60 s, through a real
// `dfms up` mount with write-back on; in the middle the process is killed
// with SIGKILL and started again on the same data and cache directories.
//
// The writers of one file take turns (a lock per file in the test), so
// that the content of every close is known: a turn opens the file (plain,
// O_APPEND or O_TRUNC) and makes random writes, appends, holes and
// truncations, sometimes fsyncs, reads what it is about to close back
// through its descriptor and closes; or it saves as an editor does,
// writing a temporary file and renaming it over the name. Readers open,
// read and close the files all along. For the kill the writers stop
// between two steps, some with the file open and changed, and the mount
// is killed at once, while closes just made are still being committed in
// the background.
//
// Afterwards the history of each file, read through the REST API, must be
// exactly the sequence of changes the writers made: one version per close
// or fsync that changed something (a saved temporary file's versions
// follow the name's own), and one for what was written and not closed
// when the process died. So no version holds content no writer closed or
// fsynced (an empty one in particular), nothing acknowledged is lost
// across the kill, and every close is committed within 2 s (a close the
// kill interrupted: by the restarted mount's recovery). The last version
// of each file is what was closed last, and no conflict copy appears.
func TestUpStress(t *testing.T) {
	if testing.Short() {
		t.Skip("writes for a minute")
	}
	fusetest.Require(t)
	data, mnt, addr := t.TempDir(), t.TempDir(), testkit.FreeAddr(t)
	runStress(t, mnt, func() *upProc { return startUp(t, mnt, data, addr) }, func() *restClient {
		email, password := readCredentials(t, data)
		return login(t, addr, email, password)
	})
}

// TestMountStress is TestUpStress on `dfms mount` of a `dfms server`:
// the mount (not the server) is killed with SIGKILL in the middle, with
// batches of creates, unlinks, renames and commits under way, and
// mounted again on the same cache directory. Its recovery sends the
// batches again: nothing acknowledged is lost, and nothing is made
// twice (one version per close, no conflict copy).
func TestMountStress(t *testing.T) {
	if testing.Short() {
		t.Skip("writes for a minute")
	}
	fusetest.Require(t)
	const email, password = "stress@example.com", "a long enough password"
	data, mnt, cache, addr := t.TempDir(), t.TempDir(), t.TempDir(), testkit.FreeAddr(t)
	startServer(t, data, addr, email, password)
	runStress(t, mnt, func() *upProc { return &startMount(t, t, mnt, cache, addr, email, password).upProc }, func() *restClient {
		return login(t, addr, email, password)
	})
}

// runStress runs the stress workload on the mount at mnt, which mount
// starts (again after the kill), and checks the histories through the
// REST client that client returns.
func runStress(t *testing.T, mnt string, mount func() *upProc, client func() *restClient) {
	dur := stressDuration(t)
	p := mount()
	s := &stress{dir: filepath.Join(mnt, "stress"), gate: newStressGate(stressFiles * stressWriters)}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("DFMS_STRESS_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("%d files, %d writers and a reader each, for %v; seed %d (DFMS_STRESS_SEED)", stressFiles, stressWriters, dur, seed)

	s.files = make([]*stressFile, stressFiles)
	r := newStressRand(seed, 0)
	for i := range s.files {
		f := &stressFile{name: fmt.Sprintf("f%02d", i), lock: make(chan struct{}, 1)}
		f.path = filepath.Join(s.dir, f.name)
		s.files[i] = f
		content := r.bytes(1 + r.IntN(256<<10))
		start := time.Now()
		if err := os.WriteFile(f.path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		f.cur = content
		f.events = append(f.events, stressEvent{kind: "create", sum: sha256.Sum256(content), size: len(content),
			start: start, at: at, deadline: at.Add(stressCommitWithin), writer: -1})
	}

	start := time.Now()
	s.end = start.Add(dur)
	s.doing = make([]atomic.Pointer[string], stressFiles*stressWriters)
	var wg sync.WaitGroup
	for i, f := range s.files {
		for j := range stressWriters {
			w := i*stressWriters + j
			wg.Go(func() { s.writer(w, f, newStressRand(seed, uint64(w)+1)) })
		}
		wg.Go(func() { s.reader(f, newStressRand(seed, uint64(1000+i))) })
	}

	// The kill, in the middle: every writer stops at its next step, and
	// the process dies at once, with commits of closes under way.
	time.Sleep(time.Until(start.Add(dur / 2)))
	if !s.gate.pause(time.Minute) {
		for _, e := range s.errors() {
			t.Error(e)
		}
		t.Fatalf("writers did not stop for the kill within a minute; they are in:\n%s", s.busy())
	}
	s.killAt = time.Now()
	s.down.Store(true)
	s.epoch.Add(1)
	p.kill9(t, mnt)
	killedLog := p.Logs
	p = mount()
	s.upAt = time.Now()
	s.down.Store(false)
	s.epoch.Add(1)
	t.Logf("killed at %s (%v in), mounted again at %s", s.killAt.Format("15:04:05.000"), s.killAt.Sub(start).Round(time.Millisecond), s.upAt.Format("15:04:05.000"))
	s.gate.resume(true)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(s.end) + time.Minute):
		for _, e := range s.errors() {
			t.Error(e)
		}
		t.Fatalf("writers still busy a minute after the end; they are in:\n%s", s.busy())
	}
	for _, e := range s.errors() {
		t.Error(e)
	}

	// No sync: each close must get committed within its 2 s by itself.
	time.Sleep(stressCommitWithin + 500*time.Millisecond)
	a := client()
	c := &stressCheck{t: t, s: s, a: a, sums: map[int64][32]byte{}}
	checkStart := time.Now()
	lost := c.run()
	t.Logf("the histories were checked in %v", time.Since(checkStart).Round(time.Millisecond))
	if len(lost) > 0 {
		// Whether a directory fsync commits what was missing: then it was
		// staged, and its commit was never started by itself.
		fusetest.Fsync(t, s.dir)
		c.recheck(lost)
	}
	for _, log := range []*testkit.SyncBuffer{killedLog, p.Logs} {
		if strings.Contains(log.String(), "(conflict") {
			t.Errorf("the mount made a conflict copy; its log:\n%s", grepLog(log.String(), "conflict"))
		}
	}
	if t.Failed() {
		t.Logf("warnings and errors of the killed process:\n%s", grepLog(killedLog.String(), "level=WARN", "level=ERROR"))
		t.Logf("warnings and errors of the restarted process:\n%s", grepLog(p.Logs.String(), "level=WARN", "level=ERROR"))
	}

	p.Stop(t, 30*time.Second)
}

// stressEvent is a change of a file's content that must be a version of
// its own: a close or fsync after changes, a temporary file's versions
// when it is renamed over the name, or what was written and not closed
// when the process was killed.
type stressEvent struct {
	kind     string // create, close, fsync, rename (of an empty file), recovered
	turn     string // edit, append, rewrite, save (a temporary file renamed over the name)
	sum      [32]byte
	size     int
	start    time.Time // the writer's open: no version of this change is older
	at       time.Time // close or fsync returned; recovered: the remount
	deadline time.Time // committed by then
	writer   int
}

func (e stressEvent) String() string {
	return fmt.Sprintf("%s (%s) by writer %d at %s (%d bytes, sha256 %x)", e.kind, e.turn, e.writer, e.at.Format("15:04:05.000"), e.size, e.sum[:6])
}

// stressFile is one file and its model: what was closed last, and every
// change that must be a version, in order. The lock is the writers' turn.
type stressFile struct {
	name, path string
	lock       chan struct{}
	// Only with the lock held (or after the run):
	cur     []byte
	unknown bool // a failed step left cur unknown: the next writer takes what it reads
	events  []stressEvent
	turns   []*stressTurn // for the report of a failure
	seq     int           // names of temporary files
}

// stressTurn is what one writer's turn did, with the times.
type stressTurn struct {
	writer     int
	kind       string
	start, end time.Time
	steps      []string
}

func (tr *stressTurn) note(format string, args ...any) {
	tr.steps = append(tr.steps, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

type stress struct {
	dir    string
	files  []*stressFile
	end    time.Time
	gate   *stressGate
	killAt time.Time // set before the writers resume
	upAt   time.Time

	// down is set while the mount is away; epoch changes when it goes
	// and when it comes back (a reader's error then is expected).
	down  atomic.Bool
	epoch atomic.Int64
	doing []atomic.Pointer[string] // what each writer is doing, for a hang's report

	mu      sync.Mutex
	errs    []string
	dropped int

	closes, fsyncs, saves, recovered, noops, reads atomic.Int64
}

func (s *stress) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) >= 100 {
		s.dropped++
		return
	}
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

func (s *stress) errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := s.errs
	if s.dropped > 0 {
		errs = append(errs, fmt.Sprintf("… and %d more errors", s.dropped))
	}
	s.errs, s.dropped = nil, 0
	return errs
}

func (s *stress) setDoing(w int, format string, args ...any) {
	d := fmt.Sprintf(format, args...)
	s.doing[w].Store(&d)
}

func (s *stress) busy() string {
	var b strings.Builder
	for w := range s.doing {
		if d := s.doing[w].Load(); d != nil && *d != "" {
			fmt.Fprintf(&b, "  writer %d: %s\n", w, *d)
		}
	}
	return b.String()
}

// stressGate stops the writers between two steps and lets them go on.
type stressGate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	asking  bool
	stop    chan struct{} // closed while a pause is asked
	resumed chan struct{} // closed when it ends
	parked  int
	active  int // writers still running
	kills   int
}

func newStressGate(writers int) *stressGate {
	g := &stressGate{stop: make(chan struct{}), resumed: make(chan struct{}), active: writers}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *stressGate) stopping() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stop
}

func (g *stressGate) asked() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.asking
}

// park waits while a pause is asked. It reports whether the mount was
// killed meanwhile: descriptors opened before are dead.
func (g *stressGate) park() bool {
	g.mu.Lock()
	if !g.asking {
		g.mu.Unlock()
		return false
	}
	resumed, kills := g.resumed, g.kills
	g.parked++
	g.cond.Broadcast()
	g.mu.Unlock()
	<-resumed
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.kills != kills
}

func (g *stressGate) leave() {
	g.mu.Lock()
	g.active--
	g.cond.Broadcast()
	g.mu.Unlock()
}

// pause asks every writer to stop at its next step and waits until all
// have, or timeout passes.
func (g *stressGate) pause(timeout time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asking = true
	close(g.stop)
	deadline := time.Now().Add(timeout)
	wake := time.AfterFunc(timeout, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer wake.Stop()
	for g.parked < g.active && time.Now().Before(deadline) {
		g.cond.Wait()
	}
	return g.parked >= g.active
}

func (g *stressGate) resume(killed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if killed {
		g.kills++
	}
	g.asking, g.parked = false, 0
	g.stop = make(chan struct{})
	close(g.resumed)
	g.resumed = make(chan struct{})
}

// stressRand is a writer's source of choices and content.
type stressRand struct {
	*rand.Rand
	c *rand.ChaCha8
}

func newStressRand(seed, stream uint64) stressRand {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], stream)
	c := rand.NewChaCha8(key)
	return stressRand{rand.New(c), c}
}

func (r stressRand) bytes(n int) []byte {
	b := make([]byte, n)
	r.c.Read(b)
	return b
}

// size is the length of a write: mostly up to 64 KiB, sometimes up to
// 1 MiB, sometimes a few bytes.
func (r stressRand) size() int {
	switch x := r.IntN(10); {
	case x == 0:
		return 1 + r.IntN(1<<20)
	case x < 3:
		return 1 + r.IntN(16)
	default:
		return 1 + r.IntN(64<<10)
	}
}

func (s *stress) lock(f *stressFile) bool {
	for {
		select {
		case f.lock <- struct{}{}:
			return true
		case <-s.gate.stopping():
			s.gate.park()
		}
		if !time.Now().Before(s.end) {
			return false
		}
	}
}

func (s *stress) writer(w int, f *stressFile, r stressRand) {
	defer s.gate.leave()
	defer s.setDoing(w, "")
	for time.Now().Before(s.end) {
		s.setDoing(w, "waiting for %s", f.name)
		s.gate.park()
		if !s.lock(f) {
			return
		}
		s.turn(w, f, r)
		<-f.lock
		s.setDoing(w, "")
		time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
	}
}

// readAllAt reads the whole file through f, from offset 0.
func readAllAt(f *os.File) ([]byte, error) {
	var b []byte
	buf := make([]byte, 256<<10)
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		b = append(b, buf[:n]...)
		off += int64(n)
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// modelWrite puts p at off in content, zero-filling a hole before it.
func modelWrite(content []byte, off int, p []byte) []byte {
	if end := off + len(p); end > len(content) {
		content = append(content, make([]byte, end-len(content))...)
	}
	copy(content[off:], p)
	return content
}

func modelTruncate(content []byte, size int) []byte {
	if size <= len(content) {
		return content[:size]
	}
	return append(content, make([]byte, size-len(content))...)
}

// turn is one writer's turn at file f, with its lock held.
func (s *stress) turn(w int, f *stressFile, r stressRand) {
	var kind string
	switch x := r.IntN(100); {
	case x < 40:
		kind = "edit" // random writes, holes, truncations, appends
	case x < 60:
		kind = "append" // O_APPEND
	case x < 78:
		kind = "rewrite" // O_TRUNC
	case x < 93:
		kind = "save" // a temporary file renamed over the name
	default:
		kind = "look" // open for writing, change nothing, close
	}
	tr := &stressTurn{writer: w, kind: kind, start: time.Now()}
	f.turns = append(f.turns, tr)
	defer func() { tr.end = time.Now() }()
	path, flags := f.path, os.O_RDWR
	var content []byte
	dirty := false // changed since the last commit (close or fsync)
	switch kind {
	case "append":
		flags |= os.O_APPEND
	case "rewrite":
		flags |= os.O_TRUNC
		dirty = len(f.cur) > 0 || f.unknown
	case "save":
		f.seq++
		path = filepath.Join(s.dir, fmt.Sprintf(".%s.%d-%d.tmp", f.name, w, f.seq))
		flags |= os.O_CREATE | os.O_EXCL
	}
	start := time.Now()
	s.setDoing(w, "%s of %s: open", kind, f.name)
	fd, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		s.fail("writer %d: %s of %s: open: %v", w, kind, f.name, err)
		return
	}
	tr.note("opened %s", filepath.Base(path))
	failed := func(step string, err error) {
		tr.note("%s: %v", step, err)
		s.fail("writer %d: %s of %s: %s: %v", w, kind, f.name, step, err)
		fd.Close()
		f.unknown = true
		if kind == "save" {
			os.Remove(path)
		}
	}
	if kind == "edit" || kind == "append" || kind == "look" {
		s.setDoing(w, "%s of %s: read at open", kind, f.name)
		got, err := readAllAt(fd)
		if err != nil {
			failed("read at open", err)
			return
		}
		if !f.unknown && !bytes.Equal(got, f.cur) {
			s.fail("writer %d: %s of %s: opened after the last close (%d bytes, sha256 %x), it reads %d bytes (sha256 %x)",
				w, kind, f.name, len(f.cur), sha256Prefix(f.cur), len(got), sha256Prefix(got))
		}
		content = got
		f.unknown = false
	}

	// fsyncs of a temporary file are the name's versions once it is
	// renamed over it.
	var synced []stressEvent
	steps := 1 + r.IntN(6)
	switch kind {
	case "rewrite":
		steps = r.IntN(5) // zero: an empty file is closed
	case "look":
		steps = 0
	}
	for i := range steps {
		op := "write"
		switch x := r.IntN(100); {
		case x < 12:
			op = "fsync"
		case kind == "edit" && x < 30:
			op = "truncate"
		case kind == "edit" && x < 45:
			op = "append"
		case kind == "edit" && x < 55:
			op = "hole" // a write past the end
		}
		var p []byte
		off := len(content)
		if op != "fsync" && op != "truncate" {
			p = r.bytes(r.size())
			switch op {
			case "write":
				if kind == "edit" {
					off = r.IntN(len(content) + 1)
				}
			case "hole":
				off += 1 + r.IntN(64<<10)
			}
			if off+len(p) > stressMaxSize {
				op = "truncate" // the file is big enough
			}
		}
		s.setDoing(w, "%s of %s: step %d: %s", kind, f.name, i, op)
		switch op {
		case "fsync":
			if err := fd.Sync(); err != nil {
				failed("fsync", err)
				return
			}
			if dirty {
				e := stressEvent{kind: "fsync", turn: kind, sum: sha256.Sum256(content), size: len(content), start: start, at: time.Now(), writer: w}
				e.deadline = e.at
				synced = append(synced, e)
				s.fsyncs.Add(1)
			}
			dirty = false
		case "truncate":
			size := r.IntN(len(content) + 1)
			if r.IntN(3) == 0 {
				size = min(len(content)+r.IntN(256<<10), stressMaxSize)
			}
			if err := fd.Truncate(int64(size)); err != nil {
				failed("ftruncate", err)
				return
			}
			dirty = dirty || size != len(content)
			content = modelTruncate(content, size)
		default:
			var err error
			if kind == "append" {
				_, err = fd.Write(p) // O_APPEND: at the end
			} else {
				_, err = fd.WriteAt(p, int64(off))
			}
			if err != nil {
				failed(op, err)
				return
			}
			content = modelWrite(content, off, p)
			dirty = true
		}
		if op == "truncate" || op == "fsync" {
			tr.note("%s: %d bytes", op, len(content))
		} else {
			tr.note("%s %d bytes at %d: %d bytes", op, len(p), off, len(content))
		}
		if s.gate.asked() && s.gate.park() {
			tr.note("killed meanwhile")
			s.crashed(w, f, fd, kind, path, content, dirty, start, synced)
			return
		}
	}

	s.setDoing(w, "%s of %s: read back", kind, f.name)
	got, err := readAllAt(fd)
	if err != nil {
		failed("read back", err)
		return
	}
	if !bytes.Equal(got, content) {
		s.fail("writer %d: %s of %s: reads back %d bytes (sha256 %x) through its descriptor, it wrote %d (sha256 %x)",
			w, kind, f.name, len(got), sha256Prefix(got), len(content), sha256Prefix(content))
	}
	s.setDoing(w, "%s of %s: close", kind, f.name)
	if err := fd.Close(); err != nil {
		s.fail("writer %d: %s of %s: close: %v", w, kind, f.name, err)
		f.unknown = true
		return
	}
	at := time.Now()
	tr.note("closed, %d bytes", len(content))
	if dirty {
		synced = append(synced, stressEvent{kind: "close", turn: kind, sum: sha256.Sum256(content), size: len(content),
			start: start, at: at, deadline: at.Add(stressCommitWithin), writer: w})
		s.closes.Add(1)
	} else {
		s.noops.Add(1)
	}
	if kind == "save" {
		s.setDoing(w, "%s of %s: rename", kind, f.name)
		if err := os.Rename(path, f.path); err != nil {
			s.fail("writer %d: rename %s over %s: %v", w, filepath.Base(path), f.name, err)
			os.Remove(path)
			return
		}
		tr.note("renamed over %s", f.name)
		s.saves.Add(1)
		if len(synced) == 0 {
			// Nothing was committed to the temporary file: the rename
			// gives the name an empty version (its content).
			at := time.Now()
			synced = append(synced, stressEvent{kind: "rename", turn: kind, sum: sha256.Sum256(nil),
				start: start, at: at, deadline: at, writer: w})
		}
	}
	f.events = append(f.events, synced...)
	f.cur = content
}

// crashed ends a turn that the kill interrupted with the file open: what
// was written and not closed must have been committed by the next mount,
// as a version of the file, or as the temporary file a save had made.
func (s *stress) crashed(w int, f *stressFile, fd *os.File, kind, path string, content []byte, dirty bool, start time.Time, synced []stressEvent) {
	fd.Close() // a descriptor of the killed mount
	s.recovered.Add(1)
	if kind == "save" {
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, content) {
			s.fail("writer %d: after the remount the temporary file %s written before the kill reads %d bytes (sha256 %x, %v), want the %d written (sha256 %x)",
				w, filepath.Base(path), len(got), sha256Prefix(got), err, len(content), sha256Prefix(content))
		}
		if err := os.Remove(path); err != nil {
			s.fail("writer %d: removing %s after the remount: %v", w, filepath.Base(path), err)
		}
		return
	}
	f.events = append(f.events, synced...)
	// What was not closed is a version unless it reads as the last one
	// (written, then truncated back): then it may be dropped.
	if dirty && (len(f.events) == 0 || f.events[len(f.events)-1].sum != sha256.Sum256(content)) {
		f.events = append(f.events, stressEvent{kind: "recovered", turn: kind, sum: sha256.Sum256(content), size: len(content),
			start: start, at: s.upAt, deadline: s.upAt, writer: w})
	}
	f.cur = content
}

func (s *stress) reader(f *stressFile, r stressRand) {
	for time.Now().Before(s.end) {
		epoch := s.epoch.Load()
		_, err := os.ReadFile(f.path)
		if err != nil {
			if !s.down.Load() && s.epoch.Load() == epoch {
				s.fail("reader of %s at %s: %v", f.name, time.Now().Format("15:04:05.000"), err)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		s.reads.Add(1)
		time.Sleep(time.Duration(r.IntN(3000)) * time.Microsecond)
	}
}

func sha256Prefix(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:6]
}

// grepLog returns the lines of log holding any of words.
func grepLog(log string, words ...string) string {
	var b strings.Builder
	n := 0
	for line := range strings.Lines(log) {
		for _, w := range words {
			if strings.Contains(line, w) {
				if n++; n <= 50 {
					b.WriteString(line)
				}
				break
			}
		}
	}
	if n > 50 {
		fmt.Fprintf(&b, "… %d lines in all\n", n)
	}
	return b.String()
}

// stressCheck reads the files' histories through the REST API and checks
// them against the model.
type stressCheck struct {
	t    *testing.T
	s    *stress
	a    *restClient
	ids  map[string]int64 // file name → entry id
	sums map[int64][32]byte
	mu   sync.Mutex
}

type stressVersion struct {
	ID        int64     `json:"id"`
	Version   int64     `json:"version"`
	Size      int64     `json:"size"`
	Checksum  string    `json:"checksum"`
	CreatedAt time.Time `json:"created_at"`
	sum       [32]byte
}

func (c *stressCheck) entries(id int64) []stressEntry {
	var out struct {
		Items []stressEntry `json:"items"`
	}
	if err := json.Unmarshal(c.a.get(c.t, fmt.Sprintf("/fs/entries/%d/children", id)), &out); err != nil {
		c.t.Fatal(err)
	}
	return out.Items
}

type stressEntry struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// head asks the server for the SHA-256 of version n of file id.
func (c *stressCheck) head(id, n int64) ([32]byte, error) {
	var sum [32]byte
	req, _ := http.NewRequest("HEAD", fmt.Sprintf("%s/files/%d/versions/%d/download", c.a.base, id, n), nil)
	req.Header.Set("Authorization", "Bearer "+c.a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sum, err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return sum, fmt.Errorf("HEAD version %d of entry %d: %s", n, id, resp.Status)
	}
	b, err := hex.DecodeString(resp.Header.Get("X-Checksum-SHA256"))
	if err != nil || len(b) != 32 {
		return sum, fmt.Errorf("HEAD version %d of entry %d: checksum %q", n, id, resp.Header.Get("X-Checksum-SHA256"))
	}
	copy(sum[:], b)
	return sum, nil
}

// history returns the versions of file id, oldest first, with their
// checksums.
func (c *stressCheck) history(id int64) []stressVersion {
	var out struct {
		Versions []stressVersion `json:"versions"`
	}
	if err := json.Unmarshal(c.a.get(c.t, fmt.Sprintf("/files/%d/versions", id)), &out); err != nil {
		c.t.Fatal(err)
	}
	slices.Reverse(out.Versions) // the API lists newest first
	return out.Versions
}

// fill sets the checksum of every version of hs, asking the server (a
// version committed by the mount has its checksum computed on first
// download) a few at once.
func (c *stressCheck) fill(id int64, hs []stressVersion) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range work {
				v := &hs[i]
				c.mu.Lock()
				sum, ok := c.sums[v.ID]
				c.mu.Unlock()
				if b, err := hex.DecodeString(v.Checksum); !ok && err == nil && len(b) == len(sum) {
					copy(sum[:], b)
					ok = true
				}
				if !ok {
					var err error
					if sum, err = c.head(id, v.Version); err != nil {
						c.t.Error(err)
						continue
					}
					c.mu.Lock()
					c.sums[v.ID] = sum
					c.mu.Unlock()
				}
				v.sum = sum
			}
		})
	}
	for i := range hs {
		work <- i
	}
	close(work)
	wg.Wait()
}

// deadline is when e must have been committed: a close the kill
// interrupted before its 2 s were up is committed by the next mount's
// recovery, before it mounts.
func (c *stressCheck) deadline(e stressEvent) time.Time {
	if e.at.Before(c.s.killAt) && e.deadline.After(c.s.killAt) {
		return maxTime(e.deadline, c.s.upAt)
	}
	return e.deadline
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// run checks every file and returns the changes missing from the
// histories, by file name.
func (c *stressCheck) run() map[string][]stressEvent {
	t, s := c.t, c.s
	var root struct {
		Entry stressEntry `json:"entry"`
	}
	if err := json.Unmarshal(c.a.get(t, "/fs/root"), &root); err != nil {
		t.Fatal(err)
	}
	c.ids = map[string]int64{}
	for _, e := range c.entries(root.Entry.ID) {
		if e.Name == "stress" {
			for _, e := range c.entries(e.ID) {
				c.ids[e.Name] = e.ID
			}
		} else {
			t.Errorf("the root folder holds %q (%s)", e.Name, e.Kind)
		}
	}
	for name := range c.ids {
		if !slices.ContainsFunc(s.files, func(f *stressFile) bool { return f.name == name }) {
			t.Errorf("the folder holds %q, which no writer left there (a conflict copy, or a temporary file)", name)
		}
	}

	var versions, viaRecovery int
	var latencies []time.Duration
	lost := map[string][]stressEvent{}
	for _, f := range s.files {
		id, ok := c.ids[f.name]
		if !ok {
			t.Errorf("%s is not on the server", f.name)
			continue
		}
		hs := c.history(id)
		c.fill(id, hs)
		versions += len(hs)
		lost[f.name] = c.compare(f, hs)
		if len(lost[f.name]) == 0 {
			delete(lost, f.name)
		}
		for i, e := range f.events {
			if i < len(hs) && hs[i].sum == e.sum {
				if e.kind == "close" {
					latencies = append(latencies, hs[i].CreatedAt.Sub(e.at))
				}
				if e.at.Before(s.killAt) && hs[i].CreatedAt.After(s.killAt) {
					viaRecovery++
				}
			}
		}

		// An old version read through the mount's .versions.
		if len(hs) > 0 {
			v := hs[len(hs)/2]
			p := filepath.Join(s.dir, ".versions", f.name, fmt.Sprintf("v%d", v.Version))
			if got, err := os.ReadFile(p); err != nil || sha256.Sum256(got) != v.sum {
				t.Errorf("%s reads %d bytes (%v) through the mount, not v%d as the server has it (%d bytes)", p, len(got), err, v.Version, v.Size)
			}
		}

		// The content now: through the mount, and the current version.
		if got, err := os.ReadFile(f.path); err != nil || !bytes.Equal(got, f.cur) {
			t.Errorf("%s reads %d bytes (sha256 %x, %v) through the mount, the last close left %d (sha256 %x)",
				f.name, len(got), sha256Prefix(got), err, len(f.cur), sha256Prefix(f.cur))
		}
		if len(hs) > 0 && hs[len(hs)-1].sum != sha256.Sum256(f.cur) {
			t.Errorf("the current version of %s (v%d, %d bytes) is not what was closed last (%d bytes)",
				f.name, hs[len(hs)-1].Version, hs[len(hs)-1].Size, len(f.cur))
		}
		if got := c.a.get(t, fmt.Sprintf("/files/%d/download", id)); !bytes.Equal(got, f.cur) {
			t.Errorf("%s downloads as %d bytes (sha256 %x) through the REST API, the last close left %d (sha256 %x)",
				f.name, len(got), sha256Prefix(got), len(f.cur), sha256Prefix(f.cur))
		}
	}

	slices.Sort(latencies)
	q := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[int(p*float64(len(latencies)-1))].Round(time.Millisecond)
	}
	t.Logf("%d closes with changes (%d of them saves), %d fsyncs, %d closes without changes, %d turns cut by the kill, %d reads; %d versions",
		s.closes.Load(), s.saves.Load(), s.fsyncs.Load(), s.noops.Load(), s.recovered.Load(), s.reads.Load(), versions)
	t.Logf("close to commit: median %v, 99th percentile %v, max %v; %d changes acknowledged before the kill were committed after it",
		q(0.5), q(0.99), q(1), viaRecovery)
	return lost
}

// compare checks the history hs of f against its changes and returns the
// changes missing from it.
func (c *stressCheck) compare(f *stressFile, hs []stressVersion) []stressEvent {
	t := c.t
	es := f.events
	exact := len(hs) == len(es)
	for i := 0; exact && i < len(hs); i++ {
		exact = hs[i].sum == es[i].sum
	}
	if exact {
		late := 0
		for i, e := range es {
			if d := c.deadline(e); hs[i].CreatedAt.After(d) {
				msg := fmt.Sprintf("%s v%d, the %s, was committed %v after it, %v late", f.name, hs[i].Version, e,
					hs[i].CreatedAt.Sub(e.at).Round(time.Millisecond), hs[i].CreatedAt.Sub(d).Round(time.Millisecond))
				if late++; late == 1 {
					msg += "; the turns about the time of the commit:\n" + turnsAround(f, hs[i].CreatedAt)
				}
				t.Error(msg)
			}
		}
		return nil
	}

	// Not the sequence of changes: say where it departs, then what is
	// extra, missing or late.
	i := 0
	for i < len(hs) && i < len(es) && hs[i].sum == es[i].sum {
		i++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the history of %s is not the writers' changes: %d versions for %d changes; from v%d on:\n", f.name, len(hs), len(es), i+1)
	for j := max(0, i-2); j < i+4 && (j < len(hs) || j < len(es)); j++ {
		fmt.Fprintf(&b, "  %3d: ", j+1)
		if j < len(hs) {
			fmt.Fprintf(&b, "v%d %d bytes sha256 %x created %s", hs[j].Version, hs[j].Size, hs[j].sum[:6], hs[j].CreatedAt.Local().Format("15:04:05.000"))
		} else {
			b.WriteString("(no version)")
		}
		if j < len(es) {
			fmt.Fprintf(&b, "  |  %s", es[j])
		}
		b.WriteString("\n")
	}
	if i < len(hs) {
		fmt.Fprintf(&b, "the turns about the time of v%d:\n%s", i+1, turnsAround(f, hs[i].CreatedAt))
	}
	t.Error(b.String())

	known := map[[32]byte]bool{}
	for _, e := range es {
		known[e.sum] = true
	}
	bad := 0
	for _, v := range hs {
		if !known[v.sum] {
			if bad++; bad <= 5 {
				t.Errorf("%s v%d (%d bytes, created %s) is no content a writer closed or fsynced; the turns about then:\n%s",
					f.name, v.Version, v.Size, v.CreatedAt.Local().Format("15:04:05.000"), turnsAround(f, v.CreatedAt))
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d versions in all are no content a writer closed or fsynced", f.name, bad)
	}
	var lost []stressEvent
	late := 0
	for _, e := range es {
		// The first version of this content made after the writer opened.
		found := false
		for _, v := range hs {
			if v.sum == e.sum && !v.CreatedAt.Before(e.start.Add(-time.Millisecond)) {
				found = true
				if d := c.deadline(e); v.CreatedAt.After(d) {
					if late++; late <= 5 {
						t.Errorf("%s: the %s is first v%d, committed %v after it, %v late", f.name, e, v.Version,
							v.CreatedAt.Sub(e.at).Round(time.Millisecond), v.CreatedAt.Sub(d).Round(time.Millisecond))
					}
				}
				break
			}
		}
		if !found {
			lost = append(lost, e)
		}
	}
	if late > 5 {
		t.Errorf("%s: %d changes in all were committed late", f.name, late)
	}
	for i, e := range lost {
		if i == 5 {
			t.Errorf("%s: %d changes in all are lost", f.name, len(lost))
			break
		}
		when := "after the kill"
		if e.at.Before(c.s.killAt) {
			when = "before the kill"
		}
		t.Errorf("%s: the %s (%s) is in no version", f.name, e, when)
	}
	return lost
}

// turnsAround reports the turns at f that ran in the second before t.
func turnsAround(f *stressFile, t time.Time) string {
	var b strings.Builder
	for _, tr := range f.turns {
		if tr.start.After(t.Add(100*time.Millisecond)) || tr.end.Before(t.Add(-time.Second)) {
			continue
		}
		fmt.Fprintf(&b, "  writer %d, %s:\n", tr.writer, tr.kind)
		for _, s := range tr.steps {
			fmt.Fprintf(&b, "    %s\n", s)
		}
	}
	return b.String()
}

// recheck says which of the lost changes a directory fsync committed:
// those were staged, and nothing started their commit.
func (c *stressCheck) recheck(lost map[string][]stressEvent) {
	for name, es := range lost {
		hs := c.history(c.ids[name])
		c.fill(c.ids[name], hs)
		for _, e := range es {
			if slices.ContainsFunc(hs, func(v stressVersion) bool { return v.sum == e.sum }) {
				c.t.Errorf("%s: the %s was committed only by a directory fsync after the run", name, e)
			}
		}
	}
}
