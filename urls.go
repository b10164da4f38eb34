package dfms

import (
	"errors"
	"net/url"
)

// ParseSecretURL parses a backend URL (a chunk store, a database, a rate
// limiter) that may carry a password or a key. It is url.Parse, but its
// error is only the reason: url.Parse's repeats the whole URL, secret
// included.
func ParseSecretURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	return u, nil
}

// RedactURL returns raw with its password hidden (url.URL.Redacted), or
// "(unparsable)" if it is not a URL, for messages and logs.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}
