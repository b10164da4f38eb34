package testkit_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dfms/dfms/integration/testkit"
)

// Concurrent writes to a SyncBuffer all land, whole; Get returns the
// status and the body.
func TestSyncBufferAndGet(t *testing.T) {
	var buf testkit.SyncBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintln(&buf, "line")
			}
		})
	}
	wg.Wait()
	if got := strings.Count(buf.String(), "line\n"); got != 400 {
		t.Fatalf("got %d whole lines, want 400", got)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, r.URL.Path)
	}))
	defer srv.Close()
	if code, body := testkit.Get(t, srv.URL+"/x"); code != http.StatusTeapot || string(body) != "/x" {
		t.Fatalf("Get: %d %q, want 418 and the path", code, body)
	}
}
