package files

import (
	"context"
	"log/slog"
	"time"

	"github.com/dfms/dfms"
)

// Retention says which old versions of a file are deleted after a new one
// is committed. A version other than the current one is deleted when it is
// not among the newest KeepLast, the current one included (if KeepLast > 0),
// and older than KeepFor (if KeepFor > 0); with both zero, every version is
// kept.
type Retention struct {
	KeepLast int
	KeepFor  time.Duration
}

// applyRetention prunes a file's history. Failures are logged, not
// returned: the version the caller committed is safe either way.
func (s *Service) applyRetention(ctx context.Context, owner dfms.UserID, id dfms.EntryID) {
	r := s.opts.Retention
	if r.KeepLast <= 0 && r.KeepFor <= 0 {
		return
	}
	vs, err := s.versions.ListVersions(ctx, owner, id)
	if err != nil {
		slog.Warn("retention: list versions", "entry", id, "err", err)
		return
	}
	now := time.Now()
	for i, v := range vs[:max(len(vs)-1, 0)] { // never the current (last) one
		newer := len(vs) - 1 - i // versions after this one
		if r.KeepLast > 0 && newer < r.KeepLast {
			continue
		}
		if r.KeepFor > 0 && now.Sub(v.CreatedAt) < r.KeepFor {
			continue
		}
		if err := s.versions.DeleteVersion(ctx, owner, id, v.Number); err != nil && !dfms.Is(err, dfms.NotExist) {
			slog.Warn("retention: delete version", "entry", id, "version", v.Number, "err", err)
		}
	}
}
