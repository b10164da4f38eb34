package integration

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/placement/store"
)

// gcLockHolder returns the PostgreSQL backend that holds the GC sweep's
// session lock for the connections named app (application_name), or 0.
func gcLockHolder(t *testing.T, db *sql.DB, app string) int {
	t.Helper()
	var pid int
	// A session lock on one key (objsubid 1); the metadata store's
	// transaction locks are on two.
	err := db.QueryRow(`SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND a.application_name = $1 LIMIT 1`, app).Scan(&pid)
	if err == sql.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Errorf("reading pg_locks: %v", err)
	}
	return pid
}

// okRuns is how many of a GC worker's collections succeeded (took the
// lock and finished).
func okRuns(t *testing.T, r *role) float64 {
	return metricValue(t, r.addr, "dfms_gc_runs_total") - metricValue(t, r.addr, "dfms_gc_failures_total")
}

// uploadRetrying uploads data as name, again while the gateway refuses it
// with 409 (a write that outlived the tiny grace period finds a chunk
// collected, and is refused with nothing committed: a client retries).
// It returns the file's id and how many attempts were refused.
func uploadRetrying(t *testing.T, c *client, name string, data []byte) (int64, int) {
	refused := 0
	for {
		r, err := c.send("POST", "/api/v1/files/upload", data, hdr{"Content-Type", "application/octet-stream", "X-File-Name", name})
		if err != nil {
			t.Errorf("upload %s: %v", name, err)
			return 0, refused
		}
		switch r.status {
		case http.StatusCreated:
			var f fileJSON
			r.decode(t, &f)
			return f.ID, refused
		case http.StatusConflict:
			if refused++; refused == 50 {
				t.Errorf("upload %s refused 50 times: %v", name, r)
				return 0, refused
			}
		default:
			t.Errorf("upload %s: %v", name, r)
			return 0, refused
		}
	}
}

// TestGCWorkersStalledLockLost: two `dfms worker gc` processes collect
// together (PostgreSQL metadata, S3 chunks, a tiny grace period) while
// 100 rounds each upload a content X, purge it, and upload X again just
// when the sweep deletes it. Meanwhile, several times, worker A is
// stopped (SIGSTOP) while it holds the sweep's lock, its PostgreSQL
// sessions are terminated so that the lock is freed (as a network cut or
// a failover would), worker B takes the lock and sweeps, and A continues
// (SIGCONT) believing it still holds the lock. No live chunk may be
// deleted: every acknowledged upload downloads intact, and every chunk of
// every committed version is in the store. (The stalls last less, then
// more, than half of the lease: A resumes a deletion it began, or finds
// it too late.)
func TestGCWorkersStalledLockLost(t *testing.T) {
	pg, s3 := testenv.Postgres(t), testenv.S3(t)
	db, err := sql.Open("pgx", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const grace = "1s"
	addr := testkit.FreeAddr(t)
	gw := startRole(t, "gateway", addr, baseEnv("DFMS_GC_GRACE="+grace),
		"gateway", "--addr", addr, "--metadata", pg, "--chunks", s3)
	worker := func(name string) *role {
		addr := testkit.FreeAddr(t)
		// application_name tells the workers' sessions apart in pg_locks.
		// A short lease: a mark that A leaves when it loses its lock is
		// taken over by B within seconds, not minutes (A deletes bytes
		// only within half of it after asking for the mark).
		return startRole(t, "worker gc "+name, addr, baseEnv("DFMS_GC_INTERVAL=100ms", "DFMS_GC_GRACE="+grace, "DFMS_GC_LEASE=4s"),
			"worker", "gc", "--addr", addr, "--metadata", pg+"&application_name=dfms-gc-"+name, "--chunks", s3)
	}
	a, b := worker("a"), worker("b")
	c := newUser(t, gw.api(), "stall")

	const rounds, writers = 100, 4
	var (
		mu       sync.Mutex
		kept     = map[int64][]byte{}
		refused  atomic.Int64
		finished atomic.Bool
		wg       sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := w; i < rounds; i += writers {
				x := testkit.RandBytes(uint64(3000+i), 5000+rng.IntN(40<<10))
				first, n := uploadRetrying(t, c, fmt.Sprintf("x-%03d-first", i), x)
				refused.Add(int64(n))
				if first == 0 {
					return
				}
				c.purge(t, first)
				// Upload X again about when the sweep deletes it: the
				// grace period ends 1 s after the purge, and a sweep runs
				// every 100 ms.
				time.Sleep(time.Duration(800+rng.IntN(600)) * time.Millisecond)
				again, n := uploadRetrying(t, c, fmt.Sprintf("x-%03d-again", i), x)
				refused.Add(int64(n))
				if again == 0 {
					return
				}
				mu.Lock()
				kept[again] = x
				mu.Unlock()
			}
		})
	}

	// The stalls: A stopped while it holds the lock, its session killed,
	// B takes the lock over, A continues.
	stalls := 0
	var stallErr string
	stalled := make(chan struct{})
	go func() {
		defer close(stalled)
		for stalls < 4 && !finished.Load() {
			pid := gcLockHolder(t, db, "dfms-gc-a")
			if pid == 0 {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			if err := a.p.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				stallErr = err.Error()
				return
			}
			if gcLockHolder(t, db, "dfms-gc-a") != pid { // released just before the stop
				a.p.Cmd.Process.Signal(syscall.SIGCONT)
				continue
			}
			// Every session of A ends, as a network cut would end them:
			// the lock's, and any other that A stopped inside a
			// transaction, whose row locks would hold B up.
			before := okRuns(t, b)
			if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dfms-gc-a'`); err != nil {
				stallErr = err.Error()
				a.p.Cmd.Process.Signal(syscall.SIGCONT)
				return
			}
			// B takes the lock: its collections succeed again.
			deadline := time.Now().Add(30 * time.Second)
			for okRuns(t, b) <= before && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if okRuns(t, b) <= before {
				stallErr = "worker B never collected while A was stalled without its lock"
				a.p.Cmd.Process.Signal(syscall.SIGCONT)
				return
			}
			// B sweeps while A sleeps: within half of the lease, so that
			// a deletion A has begun is still A's to finish, or past it.
			time.Sleep(time.Duration(1000+1500*(stalls%2)) * time.Millisecond)
			a.p.Cmd.Process.Signal(syscall.SIGCONT)
			stalls++
			time.Sleep(1500 * time.Millisecond)
		}
	}()
	wg.Wait()
	finished.Store(true)
	<-stalled
	a.p.Cmd.Process.Signal(syscall.SIGCONT) // in case
	if stallErr != "" {
		t.Fatal(stallErr)
	}
	if stalls == 0 {
		t.Fatal("worker A was never caught holding the lock")
	}
	if len(kept) != rounds {
		t.Fatalf("%d of %d rounds were acknowledged", len(kept), rounds)
	}

	// Every acknowledged upload is intact, and every chunk of every
	// committed version (only the second uploads are left) is stored.
	checkFiles(t, c, kept, "after the stalls")
	st, err := store.Open(context.Background(), s3)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checked := 0
	for id := range kept {
		var man struct {
			Chunks []struct {
				Hash string `json:"hash"`
				Size int64  `json:"size"`
			} `json:"chunks"`
		}
		c.get(t, fmt.Sprintf("/api/v1/files/%d/manifest", id)).want(t, http.StatusOK).decode(t, &man)
		for _, ch := range man.Chunks {
			h, err := dfms.ParseHash(ch.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if size, err := st.Stat(context.Background(), h); err != nil || size != ch.Size {
				t.Errorf("file %d: chunk %s: %d bytes, %v; want its %d bytes in the store", id, h, size, err, ch.Size)
			}
			checked++
		}
	}
	deleted := metricValue(t, a.addr, "dfms_gc_chunks_deleted_total") + metricValue(t, b.addr, "dfms_gc_chunks_deleted_total")
	failed := strings.Count(a.p.Logs.String(), "garbage collection failed")
	fenced := strings.Count(a.p.Logs.String(), "was taken again since")
	t.Logf("%d rounds, %d stalls of A, %d refused upload attempts, %.0f chunks swept by A and B, %d chunks of live versions checked; "+
		"%d collections of A failed after a stall, %d of them refused for the lost lock",
		rounds, stalls, refused.Load(), deleted, checked, failed, fenced)
	if deleted < rounds {
		t.Errorf("the workers swept %.0f chunks in %d rounds: the sweep did not race the uploads", deleted, rounds)
	}
	for _, r := range []*role{gw, a, b} {
		r.finish(t)
	}
	// And dfms fsck, with everything stopped, finds no damage: manifests,
	// copies and reference counts agree.
	fsck := exec.Command(dfmsBin, "fsck", "--json", "--metadata", pg, "--chunks", s3, "--log-level", "warn")
	fsck.Env = append(os.Environ(), testChunking...)
	if out, err := fsck.CombinedOutput(); err != nil {
		t.Fatalf("dfms fsck after the stalls: %v\n%s", err, tail(string(out), 3000))
	}
}
