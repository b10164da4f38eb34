package files_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/server/files"
)

// claims is a chunk store that answers VerifiesGet as told, whatever its
// Get does.
type claims struct {
	dfms.ChunkStore
	verifies bool
}

func (c claims) VerifiesGet() bool { return c.verifies }

// ReadChunk re-hashes what a plain store returns, and skips only the hash
// (never the size check) for a store whose Get verifies.
func TestReadChunkVerification(t *testing.T) {
	e := newEnv(t, backends[0], testkit.Options{})
	good := testkit.RandBytes(11, 100<<10)
	ref := dfms.ChunkRef{Hash: dfms.Sum(good), Size: uint32(len(good))}
	rotten := bytes.Clone(good)
	rotten[len(rotten)/2] ^= 0x01
	short := good[:len(good)-1]

	// store returns a disk store holding data under ref.Hash.
	store := func(t *testing.T, data []byte) dfms.ChunkStore {
		d, err := disk.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Put(ctx, ref.Hash, data); err != nil {
			t.Fatal(err)
		}
		return d
	}
	// cluster returns a cluster of 2 disk nodes, both owners of ref.Hash
	// (R = 2), holding the copies given.
	cluster := func(t *testing.T, copies ...[]byte) dfms.ChunkStore {
		var ms []placement.Member
		for i, data := range copies {
			ms = append(ms, placement.Member{StorageNode: dfms.StorageNode{ID: fmt.Sprint("n", i+1), URL: fmt.Sprint("file:///n", i),
				Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp}, Store: store(t, data)})
		}
		c, err := placement.NewCluster(ms, placement.Options{Replicas: len(copies)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	var wrongSize dfms.ChunkRef = ref
	wrongSize.Size++
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) dfms.ChunkStore
		ref   dfms.ChunkRef
		want  []byte // nil: kind Corrupt
	}{
		{"plain store, good bytes", func(t *testing.T) dfms.ChunkStore { return store(t, good) }, ref, good},
		{"plain store, flipped bit", func(t *testing.T) dfms.ChunkStore { return store(t, rotten) }, ref, nil},
		{"plain store, a byte short", func(t *testing.T) dfms.ChunkStore { return store(t, short) }, ref, nil},
		{"plain store, reference of the wrong size", func(t *testing.T) dfms.ChunkStore { return store(t, good) }, wrongSize, nil},
		{"store that does not verify, flipped bit", func(t *testing.T) dfms.ChunkStore { return claims{store(t, rotten), false} }, ref, nil},
		{"verifying store, reference of the wrong size", func(t *testing.T) dfms.ChunkStore { return claims{store(t, good), true} }, wrongSize, nil},
		{"verifying store, a byte short", func(t *testing.T) dfms.ChunkStore { return claims{store(t, short), true} }, ref, nil},
		// The claim is believed: this is the hash the skip saves.
		{"verifying store, flipped bit", func(t *testing.T) dfms.ChunkStore { return claims{store(t, rotten), true} }, ref, rotten},
		// A wrapper that embeds the ChunkStore interface does not pass the
		// claim on: it is a plain store.
		{"wrapper of a verifying store, flipped bit", func(t *testing.T) dfms.ChunkStore {
			return failingPuts{claims{store(t, rotten), true}, errors.New("unused")}
		}, ref, nil},
		{"cluster, one copy rotten", func(t *testing.T) dfms.ChunkStore { return cluster(t, rotten, good) }, ref, good},
		{"cluster, other copy rotten", func(t *testing.T) dfms.ChunkStore { return cluster(t, good, rotten) }, ref, good},
		{"cluster, every copy rotten", func(t *testing.T) dfms.ChunkStore { return cluster(t, rotten, rotten) }, ref, nil},
		{"cluster, reference of the wrong size", func(t *testing.T) dfms.ChunkStore { return cluster(t, good, good) }, wrongSize, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := files.New(e.meta, tc.store(t), files.Options{})
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("kept")
			got, err := svc.ReadChunk(ctx, tc.ref, bytes.Clone(prefix))
			switch {
			case tc.want == nil && !dfms.Is(err, dfms.Corrupt):
				t.Fatalf("got error %v, want kind Corrupt", err)
			case tc.want == nil && !bytes.Equal(got, prefix):
				t.Fatalf("got %d bytes after a failed read, want the %d of the buffer given", len(got), len(prefix))
			case tc.want != nil && err != nil:
				t.Fatalf("got error %v, want the chunk", err)
			case tc.want != nil && !bytes.Equal(got, append(bytes.Clone(prefix), tc.want...)):
				t.Fatalf("got %d bytes, want the buffer given and the %d bytes stored", len(got), len(tc.want))
			}
		})
	}
}
