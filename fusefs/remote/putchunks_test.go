package remote_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/remote"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/api/client/clienttest"
)

// Many small chunks go in a few batch requests; a server without the
// batch route (an older one) gets them one a request. Either way every
// chunk is stored.
func TestPutChunksBatches(t *testing.T) {
	for _, older := range []bool{false, true} {
		t.Run(fmt.Sprintf("older server %v", older), func(t *testing.T) {
			ctx := t.Context()
			var mu sync.Mutex
			reqs := map[string]int{}
			srv := clienttest.NewServer(t, clienttest.Options{Wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					route := r.Method + " " + r.URL.Path
					if strings.HasPrefix(r.URL.Path, "/api/v1/chunks/") && r.URL.Path != "/api/v1/chunks/batch" && r.URL.Path != "/api/v1/chunks/missing" {
						route = r.Method + " /api/v1/chunks/HASH"
					}
					mu.Lock()
					reqs[route]++
					mu.Unlock()
					if older && r.URL.Path == "/api/v1/chunks/batch" {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(http.StatusNotFound)
						fmt.Fprint(w, `{"error":{"code":"NOT_FOUND","message":"no such route"}}`)
						return
					}
					h.ServeHTTP(w, r)
				})
			}})
			b := remote.New(srv.LoginAs(t, srv.AddUser(t).Email))
			const n = 1500 // more than one batch holds
			cs := make([]dfms.ChunkData, n)
			hs := make([]dfms.Hash, n)
			for i := range cs {
				data := []byte(fmt.Sprintf("small chunk %d", i))
				cs[i] = dfms.ChunkData{Hash: dfms.Sum(data), Data: data}
				hs[i] = cs[i].Hash
			}
			if err := b.PutChunks(ctx, cs); err != nil {
				t.Fatal(err)
			}
			if miss := testkit.Must(b.Missing(ctx, hs))(t); len(miss) != 0 {
				t.Fatalf("%d chunks missing after PutChunks", len(miss))
			}
			mu.Lock()
			defer mu.Unlock()
			batches, singles := reqs["POST /api/v1/chunks/batch"], reqs["PUT /api/v1/chunks/HASH"]
			t.Logf("%d chunks: %d batch requests, %d single", n, batches, singles)
			if !older && (batches != 2 || singles != 0) {
				t.Errorf("%d chunks went in %d batch requests and %d single ones, want 2 and 0", n, batches, singles)
			}
			if older && singles != n {
				t.Errorf("to an older server %d chunks went in %d single requests, want %d", n, singles, n)
			}
		})
	}
}
