package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement/store"
	"github.com/dfms/dfms/workers/fsck"
)

// runFsck runs `dfms fsck --json` with args and returns its report and
// exit code.
func runFsck(t *testing.T, args ...string) (fsck.Report, int) {
	t.Helper()
	cmd := exec.Command(dfmsBin, append([]string{"fsck", "--json"}, args...)...)
	cmd.Env = append(os.Environ(), "DFMS_LOG_LEVEL=warn")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var rep fsck.Report
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		t.Fatalf("dfms fsck %v (exit %d): %v in %q; stderr:\n%s", args, code, jerr, out, stderr.String())
	}
	return rep, code
}

func wantFsck(t *testing.T, what string, rep fsck.Report, code int, want fsck.Damage) {
	t.Helper()
	wantCode := 0
	if want.Total() > 0 {
		wantCode = 1
	}
	if rep.Damage != want || code != wantCode || rep.Clean != (wantCode == 0) {
		b, _ := json.MarshalIndent(rep, "", "  ")
		t.Fatalf("%s: exit %d, damage %+v; want exit %d, %+v\n%s", what, code, rep.Damage, wantCode, want, b)
	}
}

// TestFsckCluster: `dfms fsck` over PostgreSQL and three S3 nodes with two
// copies each, after uploads through a real server. Healthy, it reports
// nothing and exits 0. Then one copy of a chunk is corrupted on its node,
// another chunk is deleted from every node, and a third chunk's count is
// skewed in PostgreSQL: fsck reports each and exits 1; --repair restores
// the copy and the count and names the files the lost chunk belonged to;
// a second check reports only the lost chunk.
func TestFsckCluster(t *testing.T) {
	nodes := []*s3Node{startS3Node(t, "n1", ""), startS3Node(t, "n2", ""), startS3Node(t, "n3", "")}
	metaURL := testenv.Postgres(t)
	dir := t.TempDir()
	cfg := clusterConfig(t, nodes, 2)
	p := startServer(t, dir, baseEnv(), "--data", filepath.Join(dir, "data"), "--metadata", metaURL, "--config", cfg)
	s := &apiServer{backend: "fsck", base: "http://" + p.addr, data: filepath.Join(dir, "data"), p: p}
	c := newUser(t, s, "fsck")
	docs := c.mkdir(t, 0, "docs")
	aData, bData, cData := testkit.RandBytes(71, 200<<10), testkit.RandBytes(72, 150<<10), testkit.RandBytes(73, 120<<10)
	c.upload(t, docs.ID, "a.bin", aData)
	c.upload(t, docs.ID, "b.bin", bData)
	c.upload(t, docs.ID, "b-again.bin", bData) // the same chunks: two files need them
	c.upload(t, 0, "c.bin", cData)
	// The store is checked at rest: the server's own repair would race
	// the damage the test makes.
	s.finish(t)

	args := []string{"--metadata", metaURL, "--config", cfg, "--data", filepath.Join(dir, "fsck")}
	rep, code := runFsck(t, args...)
	wantFsck(t, "healthy", rep, code, fsck.Damage{})
	distinct := map[dfms.Hash]bool{}
	for _, d := range [][]byte{aData, bData, cData} {
		for _, h := range chunkHashes(t, d) {
			distinct[h] = true
		}
	}
	if rep.Chunks != int64(len(distinct)) || rep.Copies != 2*rep.Chunks || rep.Versions != 4 {
		t.Fatalf("healthy: checked %d chunks, %d copies, %d versions; want %d chunks, 2 copies each, 4 versions",
			rep.Chunks, rep.Copies, rep.Versions, len(distinct))
	}

	ctx := context.Background()
	held := copies(t, nodes)
	byID := map[string]*s3Node{}
	for _, n := range nodes {
		byID[n.id] = n
	}
	corrupt := chunkHashes(t, aData)[0]
	corruptNode := byID[held[corrupt][0]]
	testkit.CorruptFile(t, corruptNode.dir, corrupt.String())
	lost := chunkHashes(t, bData)[1]
	for _, id := range held[lost] {
		st := testkit.Must(store.Open(ctx, byID[id].url()))(t)
		testkit.OK(t, st.Delete(ctx, lost))
		st.Close()
	}
	skewed := chunkHashes(t, cData)[0]
	db := testkit.Must(sql.Open("pgx", metaURL))(t)
	defer db.Close()
	testkit.Must(db.ExecContext(ctx, `UPDATE chunks SET refs = refs + 3 WHERE hash = $1`, skewed[:]))(t)

	rep, code = runFsck(t, args...)
	wantFsck(t, "damaged", rep, code, fsck.Damage{BadCopies: 1, LostChunks: 1, RefCounts: 1, Unrepaired: 3})
	if bc := rep.BadCopies[0]; bc.Chunk != corrupt.String() || bc.Node != corruptNode.id || bc.Problem != fsck.ProblemCorrupt {
		t.Fatalf("bad copy %+v, want %s corrupt on %s", bc, corrupt, corruptNode.id)
	}
	if rc := rep.RefCounts[0]; rc.Chunk != skewed.String() || rc.Counted != 1 || rc.Recorded != 4 {
		t.Fatalf("count %+v, want %s recorded 4, counted 1", rc, skewed)
	}
	lostFiles := func(rep fsck.Report) []string {
		t.Helper()
		if len(rep.LostChunks) != 1 || rep.LostChunks[0].Chunk != lost.String() || len(rep.LostChunks[0].Copies) != 2 {
			t.Fatalf("lost chunks %+v, want %s with its 2 missing copies", rep.LostChunks, lost)
		}
		var ps []string
		for _, f := range rep.LostChunks[0].Files {
			if f.Version == 0 {
				t.Errorf("file %+v without its version", f)
			}
			ps = append(ps, f.Path)
		}
		return ps
	}
	if got := lostFiles(rep); strings.Join(got, ",") != "/docs/b.bin,/docs/b-again.bin" {
		t.Fatalf("the lost chunk's files are %v, want /docs/b.bin and /docs/b-again.bin", got)
	}

	rep, code = runFsck(t, append(args, "--repair")...)
	wantFsck(t, "repair", rep, code, fsck.Damage{BadCopies: 1, LostChunks: 1, RefCounts: 1, Repaired: 2, Unrepaired: 1})
	if !rep.BadCopies[0].Repaired || !rep.RefCounts[0].Repaired {
		t.Fatalf("not repaired: %+v, %+v", rep.BadCopies, rep.RefCounts)
	}
	if got := lostFiles(rep); len(got) != 2 {
		t.Fatalf("--repair names %v as needing the lost chunk", got)
	}
	st := testkit.Must(store.Open(ctx, corruptNode.url()))(t)
	if data := testkit.Must(st.Get(ctx, corrupt, nil))(t); dfms.Sum(data) != corrupt {
		t.Fatalf("the copy on %s is still corrupt", corruptNode.id)
	}
	st.Close()
	var refs int64
	testkit.OK(t, db.QueryRowContext(ctx, `SELECT refs FROM chunks WHERE hash = $1`, skewed[:]).Scan(&refs))
	if refs != 1 {
		t.Fatalf("refs of the skewed chunk = %d after the repair, want 1", refs)
	}

	rep, code = runFsck(t, args...)
	wantFsck(t, "after the repair", rep, code, fsck.Damage{LostChunks: 1, Unrepaired: 1})
	lostFiles(rep)

	// The text form says the same for people.
	out, err := exec.Command(dfmsBin, append([]string{"fsck"}, args...)...).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("dfms fsck (text): %v", err)
	}
	for _, w := range []string{"lost chunk " + lost.String(), "needed by /docs/b.bin", "needed by /docs/b-again.bin", "1 lost chunks"} {
		if !strings.Contains(string(out), w) {
			t.Fatalf("the text report lacks %q:\n%s", w, out)
		}
	}
}
