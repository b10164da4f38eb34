package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// chunkRecords is the body of POST /chunks/batch for chunks, each named by
// its own hash unless name gives another.
func chunkRecords(chunks [][]byte, name map[int][32]byte) []byte {
	var b bytes.Buffer
	for i, c := range chunks {
		h := sha256.Sum256(c)
		if n, ok := name[i]; ok {
			h = n
		}
		b.Write(h[:])
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(c))))
		b.Write(c)
	}
	return b.Bytes()
}

// POST /chunks/batch stores many chunks in one request and says how many
// the caller lacked; a chunk that does not hash to its name, a record cut
// short, an empty or oversized chunk, an empty batch or one too large is
// refused and stores nothing.
func TestPutChunksBatch(t *testing.T) {
	hs := newHarness(t, Config{})
	old := []byte("a chunk the user has already")
	hs.putChunk(t, old)
	chunks := [][]byte{old, []byte("first new chunk"), []byte("second new chunk")}
	post := func(body []byte) (int, string) {
		rec := hs.do("POST", "/api/v1/chunks/batch", bytes.NewReader(body), "Content-Type", "application/octet-stream")
		checkAnswer(t, "POST /chunks/batch", rec)
		return rec.Code, rec.Body.String()
	}
	missing := func() []string {
		var out struct {
			Missing []string `json:"missing"`
		}
		var hs2 []string
		for _, c := range chunks[1:] {
			hs2 = append(hs2, fmt.Sprintf("%q", sum(c)))
		}
		hs.mustJSON(t, 200, "POST", "/api/v1/chunks/missing", `{"hashes":[`+strings.Join(hs2, ",")+`]}`, &out)
		return out.Missing
	}
	var wrong [32]byte
	wrong[0] = 1
	full := chunkRecords(chunks, nil)
	for _, bad := range []struct {
		name string
		body []byte
		code int
	}{
		{"a chunk named by another hash", chunkRecords(chunks, map[int][32]byte{2: wrong}), 400},
		{"a record cut short", full[:len(full)-3], 400},
		{"a header cut short", append(bytes.Clone(full), 1, 2, 3), 400},
		{"an empty chunk", chunkRecords([][]byte{chunks[1], {}}, nil), 400},
		{"no chunk", nil, 400},
		{"too many bytes", bytes.Repeat(full, (maxBatchChunkBytes/len(full))+1), 413},
	} {
		if code, body := post(bad.body); code != bad.code {
			t.Errorf("%s: %d %s, want %d", bad.name, code, body, bad.code)
		}
	}
	if got := missing(); len(got) != 2 {
		t.Fatalf("after the refused batches the user has %d of the new chunks", 2-len(got))
	}
	code, body := post(full)
	var res struct {
		Chunks, New int
	}
	if err := json.Unmarshal([]byte(body), &res); code != http.StatusOK || err != nil || res.Chunks != 3 || res.New != 2 {
		t.Fatalf("a batch of 3 chunks, 2 new: %d %s", code, body)
	}
	if got := missing(); len(got) != 0 {
		t.Fatalf("after the batch %d chunks are missing", len(got))
	}
	for i, c := range chunks {
		rec := hs.do("PUT", "/api/v1/chunks/"+sum(c), bytes.NewReader(c), "Content-Type", "application/octet-stream")
		if rec.Code != http.StatusOK {
			t.Errorf("chunk %d sent again alone: %d, want 200 (the user has it)", i, rec.Code)
		}
	}
}
