package gc_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/placement/store/disk"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/gc"
)

// GC over a cluster: a collected chunk goes from every node that holds a
// copy, stray copies included, and an object on one node with no chunk
// row is collected as an orphan after the grace period.
func TestCollectsAcrossNodes(t *testing.T) {
	m := testkit.OpenSQLite(t)
	cl, nodes, _ := diskCluster(t, m, 3)
	e := envOf(testkit.NewStack(t, testkit.Options{Meta: m, Chunks: cl, Files: files.Options{Chunking: smallChunks}}))
	count := func() (n int) {
		for _, d := range nodes {
			d.Walk(ctx, func(dfms.ChunkInfo) error { n++; return nil })
		}
		return n
	}

	a := e.write(t, "a", testkit.RandBytes(20, 200<<10))
	// A stray copy of a's first chunk on every node (a ring change left
	// it), and an orphan on one node.
	var chunks []dfms.Hash
	testkit.OK(t, cl.Walk(ctx, func(ci dfms.ChunkInfo) error { chunks = append(chunks, ci.Hash); return nil }))
	first := chunks[0]
	data := testkit.Must(cl.Get(ctx, first, nil))(t)
	for _, d := range nodes {
		testkit.OK(t, d.Put(ctx, first, data))
	}
	orphan := testkit.RandBytes(21, 3000)
	testkit.OK(t, nodes[1].Put(ctx, dfms.Sum(orphan), orphan))
	if count() == 0 {
		t.Fatal("nothing stored")
	}

	testkit.OK(t, e.svc.Delete(ctx, e.user.ID, a.Entry.ID))
	testkit.Must(e.svc.Purge(ctx, e.user.ID, a.Entry.ID))(t)
	now := time.Now().Add(3 * time.Hour)
	c := &gc.Collector{Meta: m, Chunks: cl, Grace: time.Hour, Now: func() time.Time { return now }}
	st, err := c.Run(ctx)
	testkit.OK(t, err)
	if st.Orphans != 1 || st.Chunks != len(chunks) {
		t.Fatalf("collected %+v, want the orphan and a's %d chunks", st, len(chunks))
	}
	if n := count(); n != 0 {
		t.Fatalf("%d copies left on the nodes", n)
	}
	if u := testkit.Must(m.NodeUsage(ctx))(t); len(u) != 0 {
		t.Fatalf("copies still recorded: %+v", u)
	}
}

// GC over a cluster of disk nodes removes the temporary files that dead
// writes left on each node.
func TestCollectsTempFilesOnNodes(t *testing.T) {
	m := testkit.OpenSQLite(t)
	cl, _, dirs := diskCluster(t, m, 2)
	old := time.Now().Add(-3 * time.Hour)
	for _, dir := range dirs {
		sub := filepath.Join(dir, "ab", "cd")
		testkit.OK(t, os.MkdirAll(sub, 0o700))
		name := filepath.Join(sub, ".tmp-dead")
		testkit.OK(t, os.WriteFile(name, []byte("half"), 0o600))
		testkit.OK(t, os.Chtimes(name, old, old))
	}
	c := &gc.Collector{Meta: m, Chunks: cl, Grace: time.Hour}
	st, err := c.Run(ctx)
	testkit.OK(t, err)
	if st.TempFiles != 2 {
		t.Fatalf("collected %+v, want the 2 temporary files", st)
	}
}

// diskCluster returns a cluster of n disk nodes (R = 2), registered in m,
// with the nodes' stores and directories.
func diskCluster(t *testing.T, m meta.Store, n int) (*placement.Cluster, []*disk.Disk, []string) {
	t.Helper()
	var ms []placement.Member
	var nodes []*disk.Disk
	var dirs []string
	for i := range n {
		dir := t.TempDir()
		d, err := disk.Open(dir)
		testkit.OK(t, err)
		sn := dfms.StorageNode{ID: fmt.Sprintf("n%d", i), URL: fmt.Sprint("file:///n", i), Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp}
		testkit.OK(t, m.PutNode(ctx, sn))
		ms = append(ms, placement.Member{StorageNode: sn, Store: d})
		nodes, dirs = append(nodes, d), append(dirs, dir)
	}
	cl, err := placement.NewCluster(ms, placement.Options{Replicas: 2, Log: m})
	testkit.OK(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl, nodes, dirs
}
