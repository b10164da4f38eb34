package remote_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/fusefs/remote"
	"github.com/dfms/dfms/server/api/client"
)

// A chunk PUT answered 429 is sent again, whole, after Retry-After.
func TestPutChunkRetryAfter429(t *testing.T) {
	var calls atomic.Int32
	var lastLen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		lastLen.Store(int64(len(b)))
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"code":"RATE_LIMITED","message":"slow down"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTokens(client.Tokens{Access: "a", Refresh: "r"})
	b := remote.New(c)
	data := []byte("some chunk bytes")
	err = b.PutChunks(context.Background(), []dfms.ChunkData{{Hash: dfms.Sum(data), Data: data}})
	t.Logf("calls %d, last body %d bytes, err %v", calls.Load(), lastLen.Load(), err)
	if err != nil || lastLen.Load() != int64(len(data)) {
		t.Fatalf("the retried PUT failed or sent a short body: %v", err)
	}
}
