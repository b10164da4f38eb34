package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement"
	"github.com/dfms/dfms/placement/store"
)

// The storage cluster through real processes: S3 servers of the test's own
// (versitygw), one per storage node, and a dfms server that replicates
// chunks over them.

// s3Node is one storage node of a test cluster: a versitygw process with
// its own directory and address, which a test may kill and start again.
type s3Node struct {
	id, zone string
	addr     string
	dir      string
	ak, sk   string
	p        *testkit.Proc
}

// url is the node's chunk store URL: bucket "chunks" on its server.
func (n *s3Node) url() string {
	return fmt.Sprintf("s3://%s:%s@%s/chunks?secure=false", n.ak, n.sk, n.addr)
}

// startS3Node starts a storage node's S3 server.
func startS3Node(t *testing.T, id, zone string) *s3Node {
	t.Helper()
	n := &s3Node{id: id, zone: zone, addr: testkit.FreeAddr(t), dir: t.TempDir(),
		ak: testenv.RandomName("ak"), sk: testenv.RandomName("sk")}
	n.start(t)
	return n
}

func (n *s3Node) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(testenv.Versitygw(t), "--port", n.addr, "--quiet", "posix", n.dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+n.ak, "ROOT_SECRET_KEY="+n.sk)
	n.p = testkit.StartProc(t, t, "versitygw "+n.id, cmd, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + n.addr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, nil)
}

// kill stops the node's server with SIGKILL.
func (n *s3Node) kill(t *testing.T) {
	t.Helper()
	if err := n.p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.p.Done
	n.p.Done <- nil
}

// clusterConfig is a server configuration file for nodes with r copies.
func clusterConfig(t *testing.T, nodes []*s3Node, r int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "storage:\n  replicas: %d\n  nodes:\n", r)
	for _, n := range nodes {
		fmt.Fprintf(&b, "    - id: %s\n      url: %q\n", n.id, n.url())
		if n.zone != "" {
			fmt.Fprintf(&b, "      zone: %s\n", n.zone)
		}
	}
	f := filepath.Join(t.TempDir(), "dfms.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// startClusterServer starts a dfms server (embedded metadata) whose
// chunks live on nodes, r copies each.
func startClusterServer(t *testing.T, nodes []*s3Node, r int, env ...string) *apiServer {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := startServer(t, dir, baseEnv(env...), "--data", data, "--config", clusterConfig(t, nodes, r))
	s := &apiServer{backend: "cluster", base: "http://" + p.addr, data: data, p: p}
	t.Cleanup(func() {
		if !s.stopped {
			p.Cmd.Process.Kill()
			<-p.Done
			s.stopped = true
		}
		if t.Failed() {
			t.Logf("cluster server log:\n%s", tail(p.Logs.String(), 6000))
		}
	})
	return s
}

// copies lists every node's bucket (not the metadata) and returns, for
// each chunk found, the nodes that hold it.
func copies(t *testing.T, nodes []*s3Node) map[dfms.Hash][]string {
	t.Helper()
	ctx := context.Background()
	out := make(map[dfms.Hash][]string)
	for _, n := range nodes {
		st, err := store.Open(ctx, n.url())
		if err != nil {
			t.Fatalf("node %s: %v", n.id, err)
		}
		err = st.Walk(ctx, func(ci dfms.ChunkInfo) error {
			out[ci.Hash] = append(out[ci.Hash], n.id)
			return nil
		})
		st.Close()
		if err != nil {
			t.Fatalf("listing node %s: %v", n.id, err)
		}
	}
	return out
}

// chunkHashes returns the chunks data is cut into with the test servers'
// chunking parameters.
func chunkHashes(t *testing.T, data []byte) []dfms.Hash {
	t.Helper()
	p := chunking.Params{Algorithm: chunking.DefaultParams().Algorithm, Min: 4096, Avg: 16384, Max: 65536}
	var hs []dfms.Hash
	err := chunking.Split(context.Background(), bytes.NewReader(data), p, 1, func(c chunking.HashedChunk) error {
		hs = append(hs, c.Hash)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// uploadMany uploads n files of random sizes (up to max bytes) from 4
// clients at once and returns their contents by file id.
func uploadMany(t *testing.T, c *client, n, max int, seed uint64) map[int64][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	files := make([][]byte, n)
	for i := range files {
		files[i] = testkit.RandBytes(seed<<32|uint64(i), 1+rng.IntN(max))
	}
	out := make(map[int64][]byte, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				f := c.upload(t, 0, fmt.Sprintf("file-%d-%04d", seed, i), files[i])
				mu.Lock()
				out[f.ID] = files[i]
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// TestClusterReplicates: with three S3 nodes and R = 2, every chunk of 200
// uploaded files is on exactly two distinct nodes, as the nodes' buckets
// list them; every file downloads byte-exact; the nodes share the chunks.
func TestClusterReplicates(t *testing.T) {
	nodes := []*s3Node{startS3Node(t, "n1", ""), startS3Node(t, "n2", ""), startS3Node(t, "n3", "")}
	s := startClusterServer(t, nodes, 2)
	c := newUser(t, s, "cluster")
	defer s.finish(t)
	files := uploadMany(t, c, 200, 150<<10, 1)

	want := make(map[dfms.Hash]bool)
	for _, data := range files {
		for _, h := range chunkHashes(t, data) {
			want[h] = true
		}
	}
	got := copies(t, nodes)
	perNode := make(map[string]int)
	for h := range want {
		holders := got[h]
		if len(holders) != 2 {
			t.Errorf("chunk %s is on %d nodes %v, want 2", h, len(holders), holders)
		}
		for _, n := range holders {
			perNode[n]++
		}
	}
	for h, holders := range got {
		if !want[h] {
			t.Errorf("chunk %s on %v is no file's", h, holders)
		}
	}
	t.Logf("%d files, %d chunks, copies per node %v", len(files), len(want), perNode)
	for _, n := range nodes {
		// Fair is 2/3 of the chunks per node; a node far off it means the
		// ring does not spread them.
		if f := float64(perNode[n.id]) / float64(len(want)); f < 0.45 || f > 0.9 {
			t.Errorf("node %s holds %.0f %% of the chunks, want about 67 %%", n.id, 100*f)
		}
	}
	for id, data := range files {
		if got := c.download(t, id); !bytes.Equal(got, data) {
			t.Fatalf("file %d: downloaded %d bytes, not the %d uploaded", id, len(got), len(data))
		}
	}
}

// TestClusterZones: with three zones and R = 3, every chunk has one copy
// in each zone (here: on each node, one node per zone, plus a second node
// in one zone that must then hold no chunk twice over its zone).
func TestClusterZones(t *testing.T) {
	nodes := []*s3Node{startS3Node(t, "a1", "a"), startS3Node(t, "a2", "a"),
		startS3Node(t, "b1", "b"), startS3Node(t, "c1", "c")}
	zone := map[string]string{}
	for _, n := range nodes {
		zone[n.id] = n.zone
	}
	s := startClusterServer(t, nodes, 3)
	c := newUser(t, s, "zones")
	defer s.finish(t)
	files := uploadMany(t, c, 40, 100<<10, 2)
	got := copies(t, nodes)
	if len(got) == 0 {
		t.Fatal("no chunk on any node")
	}
	for h, holders := range got {
		zones := make([]string, len(holders))
		for i, n := range holders {
			zones[i] = zone[n]
		}
		slices.Sort(zones)
		if !slices.Equal(zones, []string{"a", "b", "c"}) {
			t.Errorf("chunk %s is on %v in zones %v, want one copy per zone", h, holders, zones)
		}
	}
	for id, data := range files {
		if got := c.download(t, id); !bytes.Equal(got, data) {
			t.Fatalf("file %d: download differs", id)
		}
	}
}

// fastCluster makes the health monitor and the replication manager act
// within seconds.
var fastCluster = []string{"DFMS_HEALTH_INTERVAL=300ms", "DFMS_REPAIR_INTERVAL=500ms", "DFMS_REPAIR_DOWN_DELAY=2s",
	"DFMS_ADMIN_EMAIL=admin@example.com", "DFMS_ADMIN_PASSWORD=" + testPassword}

// nodeState returns a node's state as the admin API shows it.
func nodeState(t *testing.T, admin *client, id string) string {
	t.Helper()
	var v struct {
		Nodes []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"nodes"`
	}
	admin.get(t, "/api/v1/admin/nodes").want(t, http.StatusOK).decode(t, &v)
	for _, n := range v.Nodes {
		if n.ID == id {
			return n.State
		}
	}
	t.Fatalf("no node %s in the admin API's list", id)
	return ""
}

// chunksOf returns the chunks of every file in files.
func chunksOf(t *testing.T, files map[int64][]byte) map[dfms.Hash]bool {
	t.Helper()
	out := make(map[dfms.Hash]bool)
	for _, data := range files {
		for _, h := range chunkHashes(t, data) {
			out[h] = true
		}
	}
	return out
}

// everyChunkOn reports whether every chunk of want is on exactly n of nodes
// (as their buckets list them), and describes the first that is not.
func everyChunkOn(t *testing.T, nodes []*s3Node, want map[dfms.Hash]bool, n int) (bool, string) {
	t.Helper()
	got := copies(t, nodes)
	for h := range want {
		if len(got[h]) != n {
			return false, fmt.Sprintf("chunk %s is on %v", h, got[h])
		}
	}
	return true, ""
}

// waitFor polls cond until it holds, and fails t with cond's last
// explanation after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	for {
		ok, why := cond()
		if ok {
			t.Logf("%s after %.1f s", what, time.Since(start).Seconds())
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v: %s", what, timeout, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestClusterNodeKilled: kill -9 of one node's S3 server while files are
// uploaded and downloaded. Every acknowledged upload survives and every
// download is byte-exact; the node is marked down; the two survivors get
// R = 2 back; the node, started again, loses nothing and the surplus
// copies made meanwhile are removed.
func TestClusterNodeKilled(t *testing.T) {
	nodes := []*s3Node{startS3Node(t, "n1", ""), startS3Node(t, "n2", ""), startS3Node(t, "n3", "")}
	s := startClusterServer(t, nodes, 2, fastCluster...)
	defer s.finish(t)
	admin, _ := login(t, s, "admin@example.com", testPassword)
	c := newUser(t, s, "killed")
	before := uploadMany(t, c, 30, 120<<10, 3)

	var mu sync.Mutex
	acked := make(map[int64][]byte)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refused, downloads int
	wg.Go(func() { // uploads: an acknowledged one must survive; others may fail
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			data := testkit.RandBytes(uint64(1000+i), 1+(i*7919)%(120<<10))
			r, err := c.send("POST", "/api/v1/files/upload", data, hdr{"Content-Type", "application/octet-stream", "X-File-Name", fmt.Sprintf("during-%04d", i)})
			if err != nil {
				t.Errorf("upload %d: %v", i, err)
				return
			}
			mu.Lock()
			if r.status == http.StatusCreated {
				var f fileJSON
				r.decode(t, &f)
				acked[f.ID] = data
			} else {
				refused++
			}
			mu.Unlock()
		}
	})
	wg.Go(func() { // downloads of files stored before the kill: all must work
		for {
			for id, data := range before {
				select {
				case <-stop:
					return
				default:
				}
				r, err := c.send("GET", fmt.Sprintf("/api/v1/files/%d/download", id), nil, nil)
				if err != nil || r.status != http.StatusOK || !bytes.Equal(r.body, data) {
					t.Errorf("download of file %d during the outage: %v %v", id, err, r)
					return
				}
				mu.Lock()
				downloads++
				mu.Unlock()
			}
		}
	})
	time.Sleep(time.Second)
	nodes[1].kill(t)
	killed := time.Now()
	testkit.Eventually(t, 60*time.Second, func() bool { return nodeState(t, admin, "n2") == "down" }, "node n2 marked down")
	t.Logf("n2 marked down %.1f s after the kill", time.Since(killed).Seconds())
	// Uploads go on, on the survivors.
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	testkit.Eventually(t, 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= n+5
	}, "uploads acknowledged once the node is down")
	close(stop)
	wg.Wait()
	t.Logf("%d uploads acknowledged, %d refused, %d downloads during the outage", len(acked), refused, downloads)

	for id, data := range before {
		acked[id] = data
	}
	for id, data := range acked {
		if got := c.download(t, id); !bytes.Equal(got, data) {
			t.Fatalf("file %d: downloaded %d bytes, not the %d acknowledged", id, len(got), len(data))
		}
	}
	want := chunksOf(t, acked)
	survivors := []*s3Node{nodes[0], nodes[2]}
	waitFor(t, 120*time.Second, "R = 2 restored on the survivors", func() (bool, string) {
		return everyChunkOn(t, survivors, want, 2)
	})

	// n2 comes back: it is marked up, gets what it owns, and the surplus
	// copies go: every chunk ends on exactly two of the three nodes.
	nodes[1].start(t)
	testkit.Eventually(t, 60*time.Second, func() bool { return nodeState(t, admin, "n2") == "up" }, "node n2 up again")
	waitFor(t, 120*time.Second, "two copies of every chunk once n2 is back", func() (bool, string) {
		return everyChunkOn(t, nodes, want, 2)
	})
	got := copies(t, nodes)
	onN2 := 0
	for h := range want {
		if slices.Contains(got[h], "n2") {
			onN2++
		}
	}
	if onN2 == 0 {
		t.Fatal("n2 holds no chunk after it came back")
	}
	for id, data := range acked {
		if got := c.download(t, id); !bytes.Equal(got, data) {
			t.Fatalf("file %d differs after the node came back", id)
		}
	}
}

// TestClusterCorruptCopy: copies' bytes corrupted on the nodes' disks.
// Downloads stay correct; a copy that a read meets (the chunk's first
// owner's) is repaired on the read's report, and one that reads never
// meet (a second owner's) by the scrubber.
func TestClusterCorruptCopy(t *testing.T) {
	corruptCopyRepaired(t, true, append(fastCluster, "DFMS_SCRUB_INTERVAL=3s")...)
}

// TestClusterCorruptCopyEvent: with no pass and no scrub due, the bad
// copies that downloads meet are repaired through repair.needed events
// (outbox, relay, bus, the replication manager's consumer).
func TestClusterCorruptCopyEvent(t *testing.T) {
	corruptCopyRepaired(t, false, "DFMS_SCRUB_INTERVAL=-1s", "DFMS_REPAIR_INTERVAL=1h", "DFMS_HEALTH_INTERVAL=300ms")
}

// corruptOwnerCopy corrupts chunk h's copy on its i-th owner (0: the
// first) in a cluster of 2 copies, as every process computes the owners
// from the node list, and returns the copy's path and its good bytes.
func corruptOwnerCopy(t *testing.T, nodes []*s3Node, h dfms.Hash, i int) (string, []byte) {
	t.Helper()
	var sn []dfms.StorageNode
	dirs := map[string]string{}
	for _, n := range nodes {
		sn = append(sn, dfms.StorageNode{ID: n.id, URL: n.url(), Weight: dfms.DefaultNodeWeight, State: dfms.NodeUp})
		dirs[n.id] = n.dir
	}
	ring, err := placement.NewRing(sn, 0)
	testkit.OK(t, err)
	return testkit.CorruptFile(t, dirs[ring.Owners(h, 2)[i]], h.String())
}

// corruptCopyRepaired corrupts a copy of two files' chunks on one owner
// each (the first owner of both, or the first of one and the second of
// the other: reads never meet that one, the scrub does), downloads them
// (which must return the right bytes), and waits until the copies are
// repaired.
func corruptCopyRepaired(t *testing.T, secondOwner bool, env ...string) {
	nodes := []*s3Node{startS3Node(t, "n1", ""), startS3Node(t, "n2", ""), startS3Node(t, "n3", "")}
	s := startClusterServer(t, nodes, 2, env...)
	defer s.finish(t)
	c := newUser(t, s, "corrupt")
	files := uploadMany(t, c, 10, 60<<10, 4)
	type damage struct {
		path string
		good []byte
	}
	var damaged []damage
	var read []int64
	for id, data := range files {
		h := chunkHashes(t, data)[0]
		owner := 0
		if secondOwner && len(damaged) == 1 {
			owner = 1
		}
		path, good := corruptOwnerCopy(t, nodes, h, owner)
		damaged = append(damaged, damage{path, good})
		read = append(read, id)
		if len(damaged) == 2 {
			break
		}
	}
	for range 3 {
		for _, id := range read {
			if got := c.download(t, id); !bytes.Equal(got, files[id]) {
				t.Fatal("a download returned other bytes than uploaded")
			}
		}
	}
	for i, d := range damaged {
		testkit.Eventually(t, 60*time.Second, func() bool {
			b, err := os.ReadFile(d.path)
			return err == nil && bytes.Equal(b, d.good)
		}, "corrupt copy %d repaired", i)
	}
}

// TestClusterAddDrainRemove: a 4th node added through the admin API gets
// the chunks it now owns, no chunk ever has fewer than R copies on the
// way, and about a quarter of the copies move; drained, it is emptied,
// and then it can be removed.
func TestClusterAddDrainRemove(t *testing.T) {
	nodes := []*s3Node{startS3Node(t, "n1", ""), startS3Node(t, "n2", ""), startS3Node(t, "n3", "")}
	s := startClusterServer(t, nodes, 2, fastCluster...)
	defer s.finish(t)
	admin, _ := login(t, s, "admin@example.com", testPassword)
	c := newUser(t, s, "rebalance")
	files := uploadMany(t, c, 150, 100<<10, 5)
	want := chunksOf(t, files)
	before := copies(t, nodes)

	n4 := startS3Node(t, "n4", "")
	all := append(slices.Clone(nodes), n4)
	admin.json(t, "POST", "/api/v1/admin/nodes", map[string]any{"id": "n4", "endpoint": n4.url()}).want(t, http.StatusCreated)
	// Until the servers' rings have n4 and repair has moved what it owns,
	// every listing must still show R copies of every chunk (it lists n4,
	// where copies go, last: see the drain below).
	waitFor(t, 120*time.Second, "the chunks n4 owns copied to it, the surplus removed", func() (bool, string) {
		got := copies(t, all)
		for h := range want {
			if len(got[h]) < 2 {
				t.Fatalf("chunk %s has %d copies (%v) during the rebalance", h, len(got[h]), got[h])
			}
		}
		onN4 := 0
		for h := range want {
			if slices.Contains(got[h], "n4") {
				onN4++
			}
		}
		if onN4 == 0 {
			return false, "nothing on n4 yet"
		}
		return everyChunkOn(t, all, want, 2)
	})
	got := copies(t, all)
	moved := 0
	for h := range want {
		for _, id := range got[h] {
			if !slices.Contains(before[h], id) {
				moved++
			}
		}
	}
	frac := float64(moved) / float64(2*len(want))
	t.Logf("a 4th node: %d of %d copies moved (%.1f %%; ideal 25 %%)", moved, 2*len(want), 100*frac)
	if frac > 0.30 {
		t.Errorf("%.1f %% of the copies moved, want at most 25 %% + 5 %%", 100*frac)
	}

	// Drained, n4 is emptied; then it can be removed. (The listings go
	// from the nodes copies leave to those they go to: a copy is written
	// before the one it replaces is deleted, so a listing in that order
	// sees every chunk that always had R copies at least once.)
	admin.json(t, "POST", "/api/v1/admin/nodes/n4/drain", nil).want(t, http.StatusOK)
	waitFor(t, 120*time.Second, "n4 emptied by its drain", func() (bool, string) {
		got := copies(t, append([]*s3Node{n4}, nodes...))
		for h := range want {
			if len(got[h]) < 2 {
				t.Fatalf("chunk %s has %d copies (%v) during the drain", h, len(got[h]), got[h])
			}
			if slices.Contains(got[h], "n4") {
				return false, fmt.Sprintf("chunk %s still on n4", h)
			}
		}
		return everyChunkOn(t, nodes, want, 2)
	})
	admin.do(t, "DELETE", "/api/v1/admin/nodes/n4", nil, nil).want(t, http.StatusNoContent)
	for id, data := range files {
		if got := c.download(t, id); !bytes.Equal(got, data) {
			t.Fatalf("file %d differs after the rebalance", id)
		}
	}
}

// TestClusterThroughChunkService: the replication suite through a separate
// `dfms chunk-service` process that runs the cluster (three S3 nodes, R =
// 2), with the dfms server its gRPC client; both share a PostgreSQL
// metadata store.
func TestClusterThroughChunkService(t *testing.T) {
	nodes := []*s3Node{startS3Node(t, "n1", ""), startS3Node(t, "n2", ""), startS3Node(t, "n3", "")}
	broker := startBroker(t)
	metaURL := testenv.Postgres(t)
	listen, opsAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	dir := t.TempDir()
	cmd := exec.Command(dfmsBin, "chunk-service", "--ops-addr", opsAddr, "--config", clusterConfig(t, nodes, 2), "--metadata", metaURL,
		"--data", filepath.Join(dir, "cs"))
	// No repair pass or scrub due: a bad copy is repaired through its
	// repair event only.
	cmd.Env = append(os.Environ(), "DFMS_CHUNK_SERVICE_LISTEN="+listen, "DFMS_LOG_LEVEL=warn",
		"DFMS_CHUNKING_MIN_SIZE=4096", "DFMS_CHUNKING_AVG_SIZE=16384", "DFMS_CHUNKING_MAX_SIZE=65536",
		"DFMS_EVENTS_BROKERS="+broker.addr(), "DFMS_REPAIR_INTERVAL=1h", "DFMS_SCRUB_INTERVAL=-1s")
	cs := testkit.StartProc(t, t, "dfms chunk-service", cmd, 60*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, nil)
	// It keeps the cluster whole: the health monitor's and the
	// replication manager's metrics are its.
	checkOps(t, "chunk service", opsAddr, "chunk-service", "dfms_node_state", "dfms_replication_copies_total")
	data := filepath.Join(dir, "data")
	p := startServer(t, dir, baseEnv("DFMS_EVENTS_BROKERS="+broker.addr()), "--data", data, "--metadata", metaURL, "--chunks", "grpc://"+listen)
	s := &apiServer{backend: "chunk-service", base: "http://" + p.addr, data: data, p: p}
	defer s.finish(t)
	c := newUser(t, s, "viagrpc")
	files := uploadMany(t, c, 200, 100<<10, 6)
	if ok, why := everyChunkOn(t, nodes, chunksOf(t, files), 2); !ok {
		t.Fatal(why)
	}
	for id, data := range files {
		if got := c.download(t, id); !bytes.Equal(got, data) {
			t.Fatalf("file %d differs", id)
		}
	}
	// A bad copy that a download meets in the chunk service: the event
	// goes out through the server's relay and comes back to the chunk
	// service's replication manager, which repairs the copy.
	for id, data := range files {
		path, good := corruptOwnerCopy(t, nodes, chunkHashes(t, data)[0], 0)
		if got := c.download(t, id); !bytes.Equal(got, data) {
			t.Fatalf("file %d differs with a corrupt copy", id)
		}
		testkit.Eventually(t, 60*time.Second, func() bool {
			b, err := os.ReadFile(path)
			return err == nil && bytes.Equal(b, good)
		}, "the corrupt copy repaired through its repair event")
		break
	}
	cs.Stop(t, 30*time.Second)
}
