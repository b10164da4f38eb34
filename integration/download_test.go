package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A chunk corrupted on disk is never served: a download that reaches it is
// cut (the client sees an error, not a complete body), and a range inside
// it answers 500 DATA_CORRUPT before any byte is sent.
func TestDownloadStopsAtCorruptChunk(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir, []string{"XDG_DATA_HOME="})
	defer p.stop(t)
	base := "http://" + p.addr
	token := registerUser(t, base, "corrupt@example.com")

	data := make([]byte, 6<<20)
	rand.Read(data)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/files/upload", bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-File-Name", "victim.bin")
	var up struct {
		ID int64 `json:"id"`
	}
	doJSON(t, req, http.StatusCreated, &up)

	req, _ = http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/files/%d/manifest", base, up.ID), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var man struct {
		Chunks []struct {
			Hash string `json:"hash"`
			Size int64  `json:"size"`
		} `json:"chunks"`
	}
	doJSON(t, req, http.StatusOK, &man)
	if len(man.Chunks) < 3 {
		t.Fatalf("%d chunks, want at least 3", len(man.Chunks))
	}
	// Flip one byte of the second chunk's file (layout of package disk).
	h := man.Chunks[1].Hash
	path := filepath.Join(dir, "data", "chunks", h[:2], h[2:4], h)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	get := func(rng string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/files/%d/download", base, up.ID), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}
	resp, body, err := get("")
	if err == nil {
		t.Fatalf("full download succeeded (%s, %d bytes) past a corrupt chunk", resp.Status, len(body))
	}
	first := man.Chunks[0].Size
	if int64(len(body)) > first || !bytes.Equal(body, data[:len(body)]) {
		t.Fatalf("got %d bytes before the cut; want at most the %d good bytes of chunk 0, all correct", len(body), first)
	}
	resp, body, err = get(fmt.Sprintf("bytes=%d-%d", first+10, first+20))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "DATA_CORRUPT") {
		t.Fatalf("range in the corrupt chunk: %s %s; want 500 DATA_CORRUPT", resp.Status, body)
	}
	// The chunk before it is still served.
	resp, body, err = get(fmt.Sprintf("bytes=0-%d", first-1))
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[:first]) {
		t.Fatalf("range before the corrupt chunk: %v %v", resp.Status, err)
	}
}

func registerUser(t *testing.T, base, email string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": "correct horse battery", "display_name": "T"})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/auth/register", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		AccessToken string `json:"access_token"`
	}
	doJSON(t, req, http.StatusCreated, &out)
	return out.AccessToken
}

func doJSON(t *testing.T, req *http.Request, want int, out any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s %s, want %d", req.Method, req.URL.Path, resp.Status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", req.Method, req.URL.Path, err, b)
		}
	}
}
