package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dfms/dfms/fusefs/fusetest"
	"github.com/dfms/dfms/integration/testkit"
)

// mountPairs are the pairs of clients of one server the coherence tests
// run on: two `dfms mount`s, as two machines would have, and `dfms up`
// (server and mount in one process) with a `dfms mount` of it; each
// returns the two mount points, the first one the writer.
var mountPairs = map[string]func(t *testing.T) (a, b string){
	"remote+remote": func(t *testing.T) (a, b string) {
		data, addr := t.TempDir(), testkit.FreeAddr(t)
		const email, password = "two@example.com", "a long enough password"
		startServer(t, data, addr, email, password)
		a, b = t.TempDir(), t.TempDir()
		startMount(t, t, a, t.TempDir(), addr, email, password)
		startMount(t, t, b, t.TempDir(), addr, email, password)
		return a, b
	},
	"up+remote": upAndRemote,
	"remote+up": func(t *testing.T) (a, b string) {
		up, remote := upAndRemote(t)
		return remote, up
	},
}

// upAndRemote starts `dfms up` and a `dfms mount` of its server.
func upAndRemote(t *testing.T) (up, remote string) {
	data, addr := t.TempDir(), testkit.FreeAddr(t)
	up, remote = t.TempDir(), t.TempDir()
	startUp(t, up, data, addr)
	email, password := readCredentials(t, data)
	startMount(t, t, remote, t.TempDir(), addr, email, password)
	return up, remote
}

// onPairs runs fn on every pair of mounts.
func onPairs(t *testing.T, fn func(t *testing.T, a, b string)) {
	fusetest.Require(t)
	for name, pair := range mountPairs {
		t.Run(name, func(t *testing.T) {
			a, b := pair(t)
			fn(t, a, b)
		})
	}
}

// Close-to-open across clients: once one mount's version of a file is on
// the server, an open of it on the other mount sees that version whole,
// its size and its bytes, although the other mount's kernel cached the
// attributes and pages of the version before. (Its kernel kept the old
// size and read the new bytes: 10 bytes of the 300,000 written.)
func TestCoherenceOpenSeesCommittedVersion(t *testing.T) {
	onPairs(t, openSeesCommittedVersion)
}

func openSeesCommittedVersion(t *testing.T, a, b string) {
	pa, pb := filepath.Join(a, "f"), filepath.Join(b, "f")
	for i := range 30 {
		size := 10
		if i%2 == 1 {
			size = 300_000 + i
		}
		want := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		if err := os.WriteFile(pa, want, 0o644); err != nil {
			t.Fatal(err)
		}
		fusetest.Fsync(t, a)
		got, err := os.ReadFile(pb)
		if err != nil {
			t.Fatalf("step %d: read on the other mount: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("step %d: the other mount read %d bytes (%.12q…), want the version committed: %d bytes of %q", i, len(got), got, len(want), want[0])
		}
	}
}

// A name another mount deleted a moment ago is created at once with
// open(O_CREAT|O_TRUNC), although this mount's kernel still holds the
// name for the deleted file (it failed with ENOENT, or wrote to the
// deleted file), and what is written there is the file under that name;
// the other mount sees it within the change feed's lag.
func TestCoherenceCreateNameDeletedElsewhere(t *testing.T) {
	onPairs(t, createNameDeletedElsewhere)
}

func createNameDeletedElsewhere(t *testing.T, a, b string) {
	for i := range 40 {
		name := fmt.Sprintf("n%d", i%4)
		pa, pb := filepath.Join(a, name), filepath.Join(b, name)
		if err := os.WriteFile(pa, []byte("first"), 0o644); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		fusetest.Fsync(t, a)
		if _, ok := within(10e9, fileIs(pb, []byte("first"))); !ok {
			t.Fatalf("step %d: the other mount does not see %s", i, name)
		}
		if err := os.Remove(pb); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		fusetest.Fsync(t, b)
		want := []byte(fmt.Sprintf("second %d", i))
		if err := os.WriteFile(pa, want, 0o644); err != nil {
			t.Fatalf("step %d: create of %s, deleted on the other mount: %v", i, name, err)
		}
		fusetest.Fsync(t, a)
		// The other mount learns of the name within the feed's lag.
		if _, ok := within(10e9, fileIs(pb, want)); !ok {
			got, err := os.ReadFile(pb)
			t.Fatalf("step %d: the other mount reads %s as %q, %v; want %q", i, name, got, err, want)
		}
		if err := os.Remove(pa); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		fusetest.Fsync(t, a)
	}
}
