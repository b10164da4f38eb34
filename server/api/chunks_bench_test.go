package api

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"
)

// BenchmarkPutChunkOracle times PUT /chunks/{hash} of a 1 MiB chunk the
// caller does not possess, alternating between chunks another user stores
// already and chunks nobody stores, and reports the median of each
// (others_ms, nobody_ms) and their difference (gap_ms). A gap would tell
// a caller whether others store a chunk (a dedup oracle).
//
//	go test -run '^$' -bench PutChunkOracle -benchtime 100x ./server/api/
func BenchmarkPutChunkOracle(b *testing.B) {
	alice := newHarness(b, Config{})
	bob := newHarnessUser(b, alice, "bob@example.com")
	r := rand.New(rand.NewPCG(1, 2))
	chunk := func() ([]byte, string) {
		data := make([]byte, 1<<20)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		return data, fmt.Sprintf("%x", sha256.Sum256(data))
	}
	put := func(hs *harness, data []byte, h string) time.Duration {
		start := time.Now()
		rec := hs.do("PUT", "/api/v1/chunks/"+h, bytes.NewReader(data), "Content-Type", "application/octet-stream")
		d := time.Since(start)
		if rec.Code != http.StatusCreated {
			b.Fatalf("PUT: %d %s, want 201", rec.Code, rec.Body)
		}
		return d
	}
	var others, nobody []time.Duration
	for i := 0; b.Loop(); i++ {
		theirs, th := chunk()
		put(alice, theirs, th)
		fresh, fh := chunk()
		if i%2 == 0 { // alternate which goes first
			others = append(others, put(bob, theirs, th))
			nobody = append(nobody, put(bob, fresh, fh))
		} else {
			nobody = append(nobody, put(bob, fresh, fh))
			others = append(others, put(bob, theirs, th))
		}
	}
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	o, n := med(others), med(nobody)
	b.ReportMetric(o, "others_ms")
	b.ReportMetric(n, "nobody_ms")
	b.ReportMetric(n-o, "gap_ms")
}
