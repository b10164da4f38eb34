package metatest

import (
	"fmt"
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// testSearchBadText: search text and MIME filters that no entry can hold
// (a NUL byte, bytes that are not UTF-8) fail with kind Invalid on every
// backend, instead of reaching the database (an FTS syntax error on
// SQLite, an encoding error on PostgreSQL).
func testSearchBadText(t *testing.T, s meta.Store) {
	u := newUser(t, s)
	must(s.CreateEntry(ctx, meta.Entry{Owner: u.ID, Parent: u.Root, Name: "abcdef", Kind: meta.KindFile, Mode: 0o644}))(t)
	for _, q := range []meta.SearchQuery{
		{Text: "abc\x00def"},
		{Text: "\x00"},
		{Text: "abc \xff\xfe"},
		{MIME: "text/\x00"},
		{MIME: "image/\xff"},
	} {
		_, _, err := s.Search(ctx, u.ID, q)
		wantKind(t, fmt.Sprintf("Search %+q", q.Text+q.MIME), err, dfms.Invalid)
	}
	if es, _, err := s.Search(ctx, u.ID, meta.SearchQuery{Text: "abc"}); err != nil || len(es) != 1 {
		t.Fatalf("Search abc after the bad queries: got %d entries, %v; want 1", len(es), err)
	}
}
