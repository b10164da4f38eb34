package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/dfms/dfms/integration/testkit"
)

// startChunkService runs `dfms chunk-service --config cfg` and waits until
// the standard gRPC health check of the address answers SERVING.
func startChunkService(t *testing.T, cfg, addr string) *testkit.Proc {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	cmd := exec.Command(dfmsBin, "chunk-service", "--config", cfg)
	return testkit.StartProc(t, t, "dfms chunk-service", cmd, 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "dfms.chunk.v1.ChunkService"})
		return err == nil && r.Status == healthpb.HealthCheckResponse_SERVING
	}, nil)
}

// noRace fails t if p (built with -race) reported a data race.
func noRace(t *testing.T, p *testkit.Proc) {
	t.Helper()
	if logs := p.Logs.String(); strings.Contains(logs, "WARNING: DATA RACE") {
		t.Errorf("%s reported a data race:\n%s", p.Name, logs)
	}
}

// A `dfms server` whose chunks.url is grpc:// keeps its chunks in a `dfms
// chunk-service` process: files go up and come back byte for byte, every
// chunk is a file in the chunk service's directory and none is in the
// server's, /ready follows the chunk service down and up again, and both
// stop cleanly on SIGTERM.
func TestChunkService(t *testing.T) {
	csDir, srvDir := t.TempDir(), t.TempDir()
	csAddr, csOps := testkit.FreeAddr(t), testkit.FreeAddr(t)
	chunkDir := filepath.Join(csDir, "chunks")
	// One configuration file each, as two machines would have: the chunk
	// service serves its directory, the server is its client.
	csCfg := filepath.Join(csDir, "dfms.yaml")
	if err := os.WriteFile(csCfg, fmt.Appendf(nil, "chunks:\n  url: file://%s\nchunk_service:\n  listen: %s\n  ops_addr: %s\n", chunkDir, csAddr, csOps), 0o600); err != nil {
		t.Fatal(err)
	}
	srvCfg := filepath.Join(srvDir, "dfms.yaml")
	if err := os.WriteFile(srvCfg, fmt.Appendf(nil, "data_dir: %s\nchunks:\n  url: grpc://%s\n", filepath.Join(srvDir, "data"), csAddr), 0o600); err != nil {
		t.Fatal(err)
	}
	cs := startChunkService(t, csCfg, csAddr)
	checkOps(t, "chunk service", csOps, "chunk-service", "dfms_build_info")
	srv := startServer(t, srvDir, []string{"DFMS_GC_INTERVAL=-1s"}, "--config", srvCfg)
	base := "http://" + srv.addr
	token := registerUser(t, base, "chunks@example.com")

	type file struct {
		id   int64
		data []byte
	}
	var files []file
	for i, size := range []int{1, 100 << 10, 6 << 20, 9<<20 + 3} {
		data := make([]byte, size)
		rand.Read(data)
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/files/upload", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-File-Name", fmt.Sprintf("f%d.bin", i))
		var up struct {
			ID int64 `json:"id"`
		}
		doJSON(t, req, http.StatusCreated, &up)
		files = append(files, file{up.ID, data})
	}
	download := func(f file) ([]byte, error) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/files/%d/download", base, f.id), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %.200s", resp.Status, body)
		}
		return body, err
	}
	checkDownloads := func(when string) {
		t.Helper()
		for _, f := range files {
			got, err := download(f)
			if err != nil || !bytes.Equal(got, f.data) {
				t.Fatalf("%s: download of file %d: %d bytes, %v; want its %d bytes", when, f.id, len(got), err, len(f.data))
			}
		}
	}
	checkDownloads("first")

	// Every chunk of every manifest is a file of the chunk service (the
	// layout of package disk), of the right size.
	var total int64
	for _, f := range files {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/files/%d/manifest", base, f.id), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		var man struct {
			Chunks []struct {
				Hash string `json:"hash"`
				Size int64  `json:"size"`
			} `json:"chunks"`
		}
		doJSON(t, req, http.StatusOK, &man)
		for _, c := range man.Chunks {
			fi, err := os.Stat(filepath.Join(chunkDir, c.Hash[:2], c.Hash[2:4], c.Hash))
			if err != nil || fi.Size() != c.Size {
				t.Fatalf("file %d: chunk %s (%d bytes) in the chunk service's directory: %v", f.id, c.Hash, c.Size, err)
			}
			total += c.Size
		}
	}
	if want := int64(1 + 100<<10 + 6<<20 + 9<<20 + 3); total != want {
		t.Errorf("the manifests' chunks add up to %d bytes, want %d", total, want)
	}
	if _, err := os.Stat(filepath.Join(srvDir, "data", "chunks")); err == nil {
		t.Error("the server has a chunk directory of its own")
	}

	// The chunk service stops: the server is not ready, and says why;
	// started again on its port, everything is there.
	cs.Stop(t, 30*time.Second)
	noRace(t, cs)
	if !strings.Contains(cs.Logs.String(), "chunk service stopped") {
		t.Errorf("no clean-shutdown log line:\n%s", cs.Logs)
	}
	code, body := getJSON(t, base+"/ready")
	if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body), "chunks") {
		t.Errorf("/ready with the chunk service down: %d %v; want 503 naming the chunks", code, body)
	}
	if _, err := download(files[2]); err == nil {
		t.Error("a download succeeded with the chunk service down")
	}
	cs = startChunkService(t, csCfg, csAddr)
	testkit.Eventually(t, 30*time.Second, func() bool {
		code, _ := getJSON(t, base+"/ready")
		return code == http.StatusOK
	}, "the server ready again")
	checkDownloads("after the chunk service restarted")

	srv.stop(t)
	noRace(t, srv.Proc)
	cs.Stop(t, 30*time.Second)
	noRace(t, cs)
}
