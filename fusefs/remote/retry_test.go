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

// A chunk upload answered 429 is sent again, whole, after Retry-After.
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
	if whole := int64(dfms.HashSize + 4 + len(data)); err != nil || calls.Load() != 2 || lastLen.Load() != whole {
		t.Fatalf("the retried upload failed or sent a short body (%d bytes, want %d): %v", lastLen.Load(), whole, err)
	}
}
