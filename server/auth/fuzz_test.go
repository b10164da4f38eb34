package auth

import (
	"strings"
	"testing"

	"github.com/dfms/dfms"
)

// FuzzVerify checks that no string crashes Verify and none verifies. The
// keys are new on every run, so no stored corpus entry carries a valid
// signature; the one genuine token of this run is skipped.
func FuzzVerify(f *testing.F) {
	s, _ := newService(f)
	_, tok := register(f, s, "fuzz@example.com")
	parts := strings.Split(tok.AccessToken, ".")
	flip := []byte(parts[2])
	flip[5] ^= 1
	for _, seed := range []string{
		"", ".", "..", "...", "a.b.c", "garbage",
		tok.RefreshToken,
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1] + "." + string(flip),
		"eyJhbGciOiJub25lIn0." + parts[1] + ".",
		"eyJhbGciOiJIUzI1NiJ9." + parts[1] + "." + parts[2],
		parts[0] + ".e30." + parts[2],
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if raw == tok.AccessToken {
			return
		}
		c, err := s.Verify(raw)
		if err == nil {
			t.Fatalf("Verify(%q) accepted it: %+v", raw, c)
		}
		if !dfms.Is(err, dfms.Unauthenticated) {
			t.Fatalf("Verify(%q): got %v, want kind Unauthenticated", raw, err)
		}
	})
}
