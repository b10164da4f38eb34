package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/events/kafka"
)

// checkOps checks a process's operational endpoints on addr: /health
// answers 200 ok with the role (none for the API's), /ready 200 ready,
// /metrics 200 with each of the metric names in metrics.
func checkOps(t *testing.T, what, addr, role string, metrics ...string) {
	t.Helper()
	base := "http://" + addr
	code, body := getJSON(t, base+"/health")
	if code != http.StatusOK || body["status"] != "ok" || role != "" && body["role"] != role {
		t.Errorf("%s /health: got %d %v, want 200 ok with role %q", what, code, body, role)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		code, _ := getJSON(t, base+"/ready")
		return code == http.StatusOK
	}, "%s ready", what)
	// A metric with labels appears once it has a value (a health
	// monitor's after its first round).
	waitFor(t, 30*time.Second, what+" /metrics with "+strings.Join(metrics, ", "), func() (bool, string) {
		code, b := testkit.Get(t, base+"/metrics")
		if code != http.StatusOK {
			return false, fmt.Sprintf("status %d", code)
		}
		for _, m := range metrics {
			if !strings.Contains(string(b), "\n"+m) {
				return false, "no " + m
			}
		}
		return true, ""
	})
}

// metricValue returns the value of an unlabelled metric on a process's
// /metrics, or -1 if it has none.
func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	_, b := testkit.Get(t, "http://"+addr+"/metrics")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// role is a dfms process of one role that a test started: its command
// line, the address where /health answers (the API's for a gateway, the
// ops address for a worker), and the running process, which the test may
// kill and start again.
type role struct {
	name string
	args []string
	env  []string
	addr string
	dir  string
	p    *testkit.Proc
}

// startRole starts `dfms args…` with env (after the test defaults: cheap
// password hashing) and waits until addr answers /health.
func startRole(t *testing.T, name, addr string, env []string, args ...string) *role {
	t.Helper()
	r := &role{name: name, args: args, env: env, addr: addr, dir: t.TempDir()}
	r.start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, tail(r.p.Logs.String(), 3000))
		}
	})
	return r
}

func (r *role) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(dfmsBin, r.args...)
	cmd.Dir = r.dir
	cmd.Env = append(append(os.Environ(), "DFMS_BCRYPT_COST=4"), r.env...)
	r.p = testkit.StartProc(t, t, "dfms "+r.name, cmd, 60*time.Second, func() bool {
		resp, err := http.Get("http://" + r.addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, nil)
}

// kill stops the process with SIGKILL.
func (r *role) kill(t *testing.T) {
	t.Helper()
	if err := r.p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.p.Done
	r.p.Done <- nil
}

// finish stops the process with SIGTERM and fails t on an unclean exit
// or a data race (the binary is built with -race).
func (r *role) finish(t *testing.T) {
	t.Helper()
	r.p.Stop(t, 30*time.Second)
	noRace(t, r.p)
}

// api is a gateway (or server) role as the API tests' harness sees it.
func (r *role) api() *apiServer {
	return &apiServer{backend: r.name, base: "http://" + r.addr, p: &proc{Proc: r.p, addr: r.addr}}
}

// jwtKeys writes a token-signing key pair that several gateways share
// and returns the environment that names it.
func jwtKeys(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "jwt.pem"), filepath.Join(dir, "jwt.pub.pem")
	if out, err := exec.Command(dfmsBin, "keygen", "--private", priv, "--public", pub).CombinedOutput(); err != nil {
		t.Fatalf("dfms keygen: %v\n%s", err, out)
	}
	return []string{"DFMS_JWT_PRIVATE_KEY=" + priv, "DFMS_JWT_PUBLIC_KEY=" + pub}
}

// as returns c speaking to another gateway, with the same token.
func (c *client) as(s *apiServer) *client {
	d := *c
	d.s = s
	return &d
}

// purge deletes a file and then empties it from the trash: its chunks
// lose their references.
func (c *client) purge(t *testing.T, id int64) {
	t.Helper()
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/files/%d", id), nil, nil).want(t, http.StatusOK)
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/trash/%d", id), nil, nil).want(t, http.StatusOK)
}

// checkFiles downloads every file through c and compares it.
func checkFiles(t *testing.T, c *client, files map[int64][]byte, when string) {
	t.Helper()
	for id, data := range files {
		if got := c.download(t, id); !bytes.Equal(got, data) {
			t.Fatalf("%s: file %d through %s: %d bytes, not the %d uploaded", when, id, c.s.backend, len(got), len(data))
		}
	}
}

// TestRolesAsProcesses runs DFMS as an operator who scales it would: two
// `dfms gateway` processes and one `dfms worker` of each kind, against
// PostgreSQL and three S3 storage nodes (R = 2). A file uploaded through
// one gateway downloads through the other; every process answers
// /health, /ready and /metrics with its own metrics; a worker killed with
// SIGKILL stops only its own job (uploads and downloads go on, its work
// waits), and started again it does the work left meanwhile: the GC
// worker collects the garbage made while it was dead, the replication
// worker restores a copy deleted from a node while it was dead.
func TestRolesAsProcesses(t *testing.T) {
	nodes := []*s3Node{startS3Node(t, "n1", ""), startS3Node(t, "n2", ""), startS3Node(t, "n3", "")}
	broker := startBroker(t)
	common := append(baseEnv(jwtKeys(t)...), "DFMS_ADMIN_EMAIL=admin@example.com", "DFMS_ADMIN_PASSWORD="+testPassword,
		"DFMS_EVENTS_BROKERS="+broker.addr())
	backends := []string{"--config", clusterConfig(t, nodes, 2), "--metadata", testenv.Postgres(t)}
	gateway := func(name string) *role {
		addr := testkit.FreeAddr(t)
		return startRole(t, name, addr, common, append([]string{"gateway", "--addr", addr}, backends...)...)
	}
	worker := func(kind string, env ...string) *role {
		addr := testkit.FreeAddr(t)
		return startRole(t, "worker "+kind, addr, append(slices.Clone(common), env...),
			append([]string{"worker", kind, "--addr", addr}, backends...)...)
	}
	gw1, gw2 := gateway("gateway 1"), gateway("gateway 2")
	// A grace period longer than any upload here, even under the race
	// detector (a write that outlives it is refused with 409, by design).
	gcw := worker("gc", "DFMS_GC_INTERVAL=300ms", "DFMS_GC_GRACE=4s")
	repl := worker("replication", "DFMS_REPAIR_INTERVAL=500ms", "DFMS_REPAIR_DOWN_DELAY=2s", "DFMS_SCRUB_INTERVAL=1s")
	hw := worker("health", "DFMS_HEALTH_INTERVAL=300ms")
	relay := worker("relay")
	checkOps(t, "the relay worker", relay.addr, "worker relay", "dfms_events_published_total", "dfms_events_outbox_backlog", "dfms_build_info")
	// What the gateways change reaches the bus through the relay worker.
	bus, err := kafka.Open(kafka.Options{Brokers: []string{broker.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	bctx, stopConsumers := context.WithCancel(context.Background())
	var consumers sync.WaitGroup
	defer func() { stopConsumers(); consumers.Wait() }()
	fileEvents, repairEvents := &eventLog{}, &eventLog{}
	consumers.Go(func() { bus.Consume(bctx, dfms.TopicFiles, "test-roles", fileEvents.handle) })
	consumers.Go(func() { bus.Consume(bctx, dfms.TopicRepair, "test-roles", repairEvents.handle) })

	for _, r := range []*role{gw1, gw2} {
		checkOps(t, r.name, r.addr, "", "dfms_http_requests_total", "dfms_build_info")
		// The background work is the workers': a gateway has none of it.
		if _, b := testkit.Get(t, "http://"+r.addr+"/metrics"); strings.Contains(string(b), "dfms_replication_") ||
			strings.Contains(string(b), "dfms_node_probe_") {
			t.Errorf("%s exports a worker's metrics", r.name)
		}
	}
	checkOps(t, "the GC worker", gcw.addr, "worker gc", "dfms_gc_runs_total", "dfms_gc_chunks_deleted_total", "dfms_build_info")
	checkOps(t, "the replication worker", repl.addr, "worker replication", "dfms_replication_copies_total", "dfms_build_info")
	checkOps(t, "the health worker", hw.addr, "worker health", "dfms_node_probe_seconds", "dfms_build_info")

	// Uploaded through one gateway, downloaded through the other.
	c1 := newUser(t, gw1.api(), "roles")
	c2 := c1.as(gw2.api())
	files := uploadMany(t, c1, 20, 100<<10, 21)
	checkFiles(t, c2, files, "through the other gateway")
	testkit.Eventually(t, 30*time.Second, func() bool { return metricValue(t, gcw.addr, "dfms_gc_runs_total") > 0 },
		"the GC worker collecting")
	for id := range files {
		fileEvents.waitTypes(t, strconv.FormatInt(id, 10), dfms.EventEntryCreated, dfms.EventVersionCommitted)
	}

	// The relay worker dies: uploads go on, their events wait in the
	// outbox; started again, it publishes them.
	relay.kill(t)
	during := c1.upload(t, 0, "while the relay is dead", testkit.RandBytes(2200, 30<<10))
	relay.start(t)
	fileEvents.waitTypes(t, strconv.FormatInt(during.ID, 10), dfms.EventEntryCreated, dfms.EventVersionCommitted)

	// A bad copy that a gateway's download meets becomes a repair event
	// on the bus (for the replication workers' group).
	var sick dfms.Hash
	var sickID int64
	for id, data := range files {
		sick, sickID = chunkHashes(t, data)[0], id
		break
	}
	corruptOwnerCopy(t, nodes, sick, 0)
	if got := c2.download(t, sickID); !bytes.Equal(got, files[sickID]) {
		t.Fatal("a download with a corrupt copy returned other bytes")
	}
	repairEvents.waitTypes(t, sick.String(), dfms.EventRepairNeeded)

	// The GC worker dies: uploads and downloads go on, garbage stays.
	gcw.kill(t)
	doomed := testkit.RandBytes(2100, 90<<10)
	d := c2.upload(t, 0, "doomed", doomed)
	c1.purge(t, d.ID)
	for id, data := range uploadMany(t, c2, 5, 60<<10, 22) {
		files[id] = data
	}
	checkFiles(t, c1, files, "with the GC worker dead")
	live := chunksOf(t, files)
	var garbage []dfms.Hash
	for _, h := range chunkHashes(t, doomed) {
		if !live[h] {
			garbage = append(garbage, h)
		}
	}
	time.Sleep(6 * time.Second) // past the grace period and many intervals of the dead worker
	got := copies(t, nodes)
	for _, h := range garbage {
		if len(got[h]) == 0 {
			t.Fatalf("chunk %s of a purged file was collected with the GC worker dead", h)
		}
	}
	// `dfms gc --dry-run` on the same configuration (and grace) reports
	// it and deletes nothing.
	dry := exec.Command(dfmsBin, append([]string{"gc", "--dry-run", "--json", "--log-level", "warn"}, backends...)...)
	dry.Env = append(os.Environ(), "DFMS_GC_GRACE=4s")
	out, err := dry.Output()
	if err != nil {
		t.Fatalf("dfms gc --dry-run: %v\n%s", err, out)
	}
	var plan struct {
		DryRun bool  `json:"dry_run"`
		Chunks int   `json:"chunks"`
		Bytes  int64 `json:"bytes"`
	}
	if err := json.Unmarshal(out, &plan); err != nil || !plan.DryRun || plan.Chunks != len(garbage) || plan.Bytes <= 0 {
		t.Fatalf("dfms gc --dry-run --json: %s (%v); want the %d chunks of the purged file", out, err, len(garbage))
	}
	got = copies(t, nodes)
	for _, h := range garbage {
		if len(got[h]) == 0 {
			t.Fatalf("chunk %s deleted by dfms gc --dry-run", h)
		}
	}
	gcw.start(t)
	waitFor(t, 60*time.Second, "the garbage collected by the restarted GC worker", func() (bool, string) {
		got := copies(t, nodes)
		for _, h := range garbage {
			if len(got[h]) > 0 {
				return false, fmt.Sprintf("chunk %s still on %v", h, got[h])
			}
		}
		return true, ""
	})
	// (Counted once its run ends, which may be after the bytes went.)
	waitFor(t, 30*time.Second, "the restarted GC worker's metrics counting the garbage", func() (bool, string) {
		n := metricValue(t, gcw.addr, "dfms_gc_chunks_deleted_total")
		return n >= float64(len(garbage)), fmt.Sprintf("%v chunks deleted, want at least %d", n, len(garbage))
	})
	if n := metricValue(t, gcw.addr, "dfms_gc_chunks_deleted_total"); n != float64(plan.Chunks) {
		t.Errorf("the restarted GC worker deleted %v chunks, the dry run before it reported %d", n, plan.Chunks)
	}

	// The replication worker dies and a node loses a copy: uploads and
	// downloads go on; started again, the worker puts the copy back.
	repl.kill(t)
	var victim dfms.Hash
	for _, data := range files {
		victim = chunkHashes(t, data)[0]
		break
	}
	holders := copies(t, nodes)[victim]
	if len(holders) != 2 {
		t.Fatalf("chunk %s is on %v, want 2 nodes", victim, holders)
	}
	lost := holders[0]
	for _, n := range nodes {
		if n.id == lost {
			path, _ := testkit.CorruptFile(t, n.dir, victim.String())
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}
	}
	for id, data := range uploadMany(t, c1, 5, 60<<10, 23) {
		files[id] = data
	}
	checkFiles(t, c2, files, "with the replication worker dead")
	repl.start(t)
	waitFor(t, 60*time.Second, "the lost copy restored by the restarted replication worker", func() (bool, string) {
		got := copies(t, nodes)[victim]
		return len(got) == 2 && slices.Contains(got, lost), fmt.Sprintf("chunk %s is on %v", victim, got)
	})

	// The health worker dies: nothing else stops.
	hw.kill(t)
	for id, data := range uploadMany(t, c2, 5, 60<<10, 24) {
		files[id] = data
	}
	checkFiles(t, c1, files, "with the health worker dead")
	hw.start(t)
	checkOps(t, "the restarted health worker", hw.addr, "worker health", "dfms_node_state")

	for _, r := range []*role{gw1, gw2, gcw, repl, hw, relay} {
		r.finish(t)
	}
	// dfms fsck finds the cluster whole: every copy on its owners, the
	// counts right.
	fsck := exec.Command(dfmsBin, append([]string{"fsck", "--json", "--log-level", "warn"}, backends...)...)
	fsck.Env = append(os.Environ(), testChunking...)
	if out, err := fsck.CombinedOutput(); err != nil {
		t.Fatalf("dfms fsck after the roles: %v\n%s", err, tail(string(out), 3000))
	}
}
