package dfms

import (
	"strings"
	"testing"
)

func TestSecretURLs(t *testing.T) {
	const secret = "s3cr3t"
	if _, err := ParseSecretURL("redis://:" + secret + "@127.0.0.1:port/0"); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("ParseSecretURL of a malformed URL: %v; want an error without the secret", err)
	}
	if u, err := ParseSecretURL("s3://key:" + secret + "@host/bucket"); err != nil || u.Host != "host" {
		t.Errorf("ParseSecretURL: %v, %v", u, err)
	}
	for raw, want := range map[string]string{
		"postgres://dfms:" + secret + "@db/dfms":   "postgres://dfms:xxxxx@db/dfms",
		"s3://key:" + secret + "@127.0.0.1:port/b": "(unparsable)",
		"file:///var/lib/dfms":                     "file:///var/lib/dfms",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
