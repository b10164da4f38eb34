package api

import (
	"net/http"
	"testing"
)

// A NUL byte or bytes that are not UTF-8 in a search are bad input (400),
// not an internal error from the full-text index.
func TestSearchBadText(t *testing.T) {
	hs := newHarness(t, Config{})
	for _, target := range []string{
		"/api/v1/search?q=abc%00def",
		"/api/v1/search?q=%00",
		"/api/v1/search?q=abc%FF%FE",
		"/api/v1/search?type=text/%00",
	} {
		rec := hs.do("GET", target, nil)
		checkAnswer(t, target, rec)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s: got %d %s, want 400", target, rec.Code, rec.Body)
		}
	}
}
