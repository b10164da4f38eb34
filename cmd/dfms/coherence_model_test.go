package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dfms/dfms/fusefs/fusetest"
)

// The coherence model test: two clients of one server take random steps
// (replace, append, truncate, rename, unlink, mkdir, rmdir) on one tree,
// checked against a model after each. The client that took the step sees
// the model at once, without any error; the other converges to it (within
// convergeBound, a liveness bound: the lag is logged, not asserted), and
// shows on the way only states some client closed: no file content, size
// or name that was never there.
func TestCoherenceModel(t *testing.T) {
	seeds, steps := 5, 200
	if testing.Short() {
		seeds, steps = 2, 50
	}
	for _, pair := range []string{"remote+remote", "up+remote"} {
		t.Run(pair, func(t *testing.T) {
			fusetest.Require(t)
			a, b := mountPairs[pair](t)
			var lags []time.Duration
			for seed := range seeds {
				lags = append(lags, runModel(t, uint64(seed), steps, [2]string{a, b})...)
			}
			slices.Sort(lags)
			t.Logf("%d steps: the other client converged in %v at the median, %v at p90, %v at most",
				len(lags), lags[len(lags)/2], lags[len(lags)*9/10], lags[len(lags)-1])
		})
	}
}

// convergeBound is how long the other client may take to show a step: far
// above the lag docs/mount.md states, so that a loaded machine does not fail
// the test, and short enough that a change never shown fails it.
const convergeBound = 15 * time.Second

// model is the tree as the clients closed it: files by path (relative to
// the seed's directory) and directories, with every content and name each
// path ever had.
type model struct {
	files    map[string][]byte
	dirs     map[string]bool
	contents map[string]map[[32]byte]bool // every content each path had, by hash
	log      []string
}

func (m *model) closed(p string, data []byte) {
	m.files[p] = data
	if m.contents[p] == nil {
		m.contents[p] = map[[32]byte]bool{}
	}
	m.contents[p][sha256.Sum256(data)] = true
}

func (m *model) fail(t *testing.T, format string, args ...any) {
	t.Helper()
	tail := m.log[max(0, len(m.log)-40):]
	t.Fatalf("%s\nthe last %d steps:\n  %s", fmt.Sprintf(format, args...), len(tail), strings.Join(tail, "\n  "))
}

func runModel(t *testing.T, seed uint64, steps int, mounts [2]string) []time.Duration {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	root := fmt.Sprintf("model-%d", seed)
	if err := os.Mkdir(filepath.Join(mounts[0], root), 0o755); err != nil {
		t.Fatal(err)
	}
	fusetest.Fsync(t, mounts[0])
	m := &model{files: map[string][]byte{}, dirs: map[string]bool{"": true}, contents: map[string]map[[32]byte]bool{}}
	var lags []time.Duration
	for step := range steps {
		actor := rng.IntN(2)
		at := func(p string) string { return filepath.Join(mounts[actor], root, p) }
		desc, err := modelStep(rng, m, at)
		m.log = append(m.log, fmt.Sprintf("seed %d step %d, client %c: %s", seed, step, 'A'+actor, desc))
		if err != nil {
			m.fail(t, "%s: %v", desc, err)
		}
		fusetest.Fsync(t, mounts[actor])
		// The client that took the step sees the model at once.
		if diff := compareTree(m, filepath.Join(mounts[actor], root), false); diff != "" {
			m.fail(t, "the client that took the step: %s", diff)
		}
		// The other converges, through closed states only.
		other := filepath.Join(mounts[1-actor], root)
		start := time.Now()
		for {
			diff := compareTree(m, other, true)
			if diff == "" {
				break
			}
			if strings.HasPrefix(diff, "never closed: ") || strings.HasPrefix(diff, "error: ") {
				m.fail(t, "the other client: %s", diff)
			}
			if time.Since(start) > convergeBound {
				m.fail(t, "the other client did not converge in %v: %s", convergeBound, diff)
			}
			time.Sleep(5 * time.Millisecond)
		}
		lags = append(lags, time.Since(start))
	}
	return lags
}

// modelStep takes one random step through the mount at, and records it in
// m if it succeeded.
func modelStep(rng *rand.Rand, m *model, at func(string) string) (string, error) {
	dirs := slices.Sorted(maps.Keys(m.dirs))
	files := slices.Sorted(maps.Keys(m.files))
	anyFile := func() string { // a file path in an existing directory
		d := dirs[rng.IntN(len(dirs))]
		return filepath.Join(d, fmt.Sprintf("f%d", rng.IntN(4)))
	}
	bytesOf := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	content := func() []byte {
		sizes := []int{0, 10, 1000, 70_000, 300_000}
		return bytesOf(sizes[rng.IntN(len(sizes))])
	}
	switch op := rng.IntN(10); {
	case op < 3 || len(files) == 0: // replace (or create)
		p, data := anyFile(), content()
		if m.dirs[p] {
			return "replace onto a directory: skipped", nil
		}
		if err := os.WriteFile(at(p), data, 0o644); err != nil {
			return "replace " + p, err
		}
		m.closed(p, data)
		return fmt.Sprintf("replace %s with %d bytes", p, len(data)), nil
	case op == 3: // append
		p := files[rng.IntN(len(files))]
		more := bytesOf(1 + rng.IntN(5000))
		f, err := os.OpenFile(at(p), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return "append to " + p, err
		}
		_, err = f.Write(more)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "append to " + p, err
		}
		m.closed(p, append(slices.Clone(m.files[p]), more...))
		return fmt.Sprintf("append %d bytes to %s", len(more), p), nil
	case op == 4: // truncate
		p := files[rng.IntN(len(files))]
		n := rng.IntN(len(m.files[p]) + 1)
		if err := os.Truncate(at(p), int64(n)); err != nil {
			return "truncate " + p, err
		}
		m.closed(p, slices.Clone(m.files[p][:n]))
		return fmt.Sprintf("truncate %s to %d", p, n), nil
	case op == 5: // rename, maybe over another file
		p, q := files[rng.IntN(len(files))], anyFile()
		if p == q || m.dirs[q] {
			return "rename onto itself or a directory: skipped", nil
		}
		if err := os.Rename(at(p), at(q)); err != nil {
			return fmt.Sprintf("rename %s to %s", p, q), err
		}
		data := m.files[p]
		delete(m.files, p)
		m.closed(q, data)
		return fmt.Sprintf("rename %s to %s", p, q), nil
	case op == 6: // unlink
		p := files[rng.IntN(len(files))]
		if err := os.Remove(at(p)); err != nil {
			return "unlink " + p, err
		}
		delete(m.files, p)
		return "unlink " + p, nil
	case op == 7 || op == 8: // mkdir
		d := fmt.Sprintf("d%d", rng.IntN(2))
		if m.dirs[d] {
			return "mkdir of an existing directory: skipped", nil
		}
		if _, ok := m.files[d]; ok {
			return "mkdir onto a file: skipped", nil
		}
		if err := os.Mkdir(at(d), 0o755); err != nil {
			return "mkdir " + d, err
		}
		m.dirs[d] = true
		return "mkdir " + d, nil
	default: // rmdir of an empty directory
		for _, d := range dirs {
			if d == "" || !emptyIn(m, d) {
				continue
			}
			if err := os.Remove(at(d)); err != nil {
				return "rmdir " + d, err
			}
			delete(m.dirs, d)
			return "rmdir " + d, nil
		}
		return "rmdir: no empty directory", nil
	}
}

func emptyIn(m *model, d string) bool {
	for p := range m.files {
		if filepath.Dir(p) == d {
			return false
		}
	}
	return true
}

// compareTree compares the tree under dir with m: "" if equal, else what
// differs. With lagging (the other client), a difference that is an
// earlier closed state is reported plainly (it may still converge); a
// content no client closed is reported with the prefix "never closed: ",
// and an error the application should never see with "error: ".
func compareTree(m *model, dir string, lagging bool) string {
	seen := map[string]bool{}
	var diff string
	note := func(s string) {
		if diff == "" {
			diff = s
		}
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			rel = ""
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && lagging {
				note(fmt.Sprintf("%s went away while listed", rel))
				return nil
			}
			return err
		}
		if d.IsDir() {
			if !m.dirs[rel] {
				note(fmt.Sprintf("directory %s is there, not in the model", rel))
			}
			seen[rel] = true
			return nil
		}
		seen[rel] = true
		got, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && lagging {
			note(fmt.Sprintf("%s is listed, and gone when opened", rel))
			return nil
		}
		if err != nil {
			return err
		}
		want, ok := m.files[rel]
		if !m.contents[rel][sha256.Sum256(got)] {
			diff = fmt.Sprintf("never closed: %s reads %d bytes, no client closed that content there (model: %d bytes, in model %v)", rel, len(got), len(want), ok)
			return fs.SkipAll
		}
		if !ok {
			note(fmt.Sprintf("file %s is there, not in the model", rel))
		} else if !bytes.Equal(got, want) {
			note(fmt.Sprintf("%s reads %d bytes of an earlier version, want %d", rel, len(got), len(want)))
		}
		return nil
	})
	if err != nil {
		return "error: " + err.Error()
	}
	if strings.HasPrefix(diff, "never closed: ") {
		return diff
	}
	for p := range m.files {
		if !seen[p] {
			note(fmt.Sprintf("file %s is missing", p))
		}
	}
	for d := range m.dirs {
		if !seen[d] {
			note(fmt.Sprintf("directory %s is missing", d))
		}
	}
	if diff != "" && !lagging {
		return "error: " + diff
	}
	return diff
}
