package metatest

import (
	"testing"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// CheckUpgradedSchema12 checks a store that was filled at schema 12 with
// Schema12Rows, as the backends' upgrade tests fill it, and then migrated to the latest:
// user 1 with root 1, directory 2 "docs" (0700, uid 5, gid 6),
// "docs/report.txt" (id 3, 3 bytes, text/plain, version 1 with id 1, an
// attribute user.tag = "hi"), symlink 4 "link" -> "docs", file 5
// "old.txt" in the trash, and entry ids given out up to 100. Every entry
// keeps its fields, versions, attribute, trash place and search hit; what
// the later migrations add starts as the old semantics had it (atime =
// mtime, one name, data size = size); new entries take ids after the old
// ones, of the new kinds too, and a file that was there takes a link.
// Schema12Rows are the statements that fill a store at schema 12 with
// what CheckUpgradedSchema12 checks, on either dialect: bytes(hex) writes
// a byte string literal of the dialect. The caller also moves the entry
// id counter to 100, and brings any index the dialect keeps by hand up
// to date.
func Schema12Rows(bytes func(hex string) string) []string {
	return []string{
		`INSERT INTO users (id, email, email_key, created_at, root_id) VALUES (1, 'a@example.com', 'a@example.com', 1, 1)`,
		`INSERT INTO entries (id, owner_id, parent_id, name, kind, mode, uid, gid, size, mtime_ns, ctime_ns, mime, cur_version, cur_version_id)
			VALUES (1, 1, NULL, '', 1, 493, 0, 0, 0, 10, 10, '', 0, 0),
			       (2, 1, 1, 'docs', 1, 448, 5, 6, 0, 11, 12, '', 0, 0),
			       (3, 1, 2, 'report.txt', 2, 420, 5, 6, 3, 13, 14, 'text/plain', 1, 1)`,
		`INSERT INTO entries (id, owner_id, parent_id, name, kind, mode, size, mtime_ns, ctime_ns, target)
			VALUES (4, 1, 1, 'link', 3, 511, 4, 15, 16, 'docs')`,
		`INSERT INTO entries (id, owner_id, parent_id, name, kind, mode, size, mtime_ns, ctime_ns, deleted_at, trash_root)
			VALUES (5, 1, 1, 'old.txt', 2, 420, 0, 17, 18, 19, 5)`,
		`INSERT INTO versions (id, entry_id, number, size, sha256, manifest, chunk_count, created_at, created_by)
			VALUES (1, 3, 1, 3, ` + bytes("00") + `, ` + bytes("") + `, 0, 13, 1)`,
		`INSERT INTO xattrs (entry_id, name, value, size) VALUES (3, 'user.tag', ` + bytes("6869") + `, 10)`,
	}
}

func CheckUpgradedSchema12(t *testing.T, s meta.Store) {
	t.Helper()
	want := []dfms.Entry{
		{ID: 2, Parent: 1, Name: "docs", Kind: dfms.KindDir, Mode: 0o700, UID: 5, GID: 6, Nlink: 2},
		{ID: 3, Parent: 2, Name: "report.txt", Kind: dfms.KindFile, Mode: 0o644, UID: 5, GID: 6, Size: 3, MIME: "text/plain", Version: 1, VersionID: 1, Nlink: 1},
		{ID: 4, Parent: 1, Name: "link", Kind: dfms.KindSymlink, Mode: 0o777, Size: 4, Target: "docs", Nlink: 1},
		{ID: 5, Parent: 1, Name: "old.txt", Kind: dfms.KindFile, Mode: 0o644, TrashRoot: 5},
	}
	for _, w := range want {
		got, err := s.GetEntry(ctx, 1, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Parent != w.Parent || got.Name != w.Name || got.Kind != w.Kind || got.Mode != w.Mode || got.UID != w.UID ||
			got.GID != w.GID || got.Size != w.Size || got.MIME != w.MIME || got.Target != w.Target || got.Nlink != w.Nlink ||
			got.Version != w.Version || got.VersionID != w.VersionID || got.TrashRoot != w.TrashRoot || got.MTime.IsZero() ||
			!got.ATime.Equal(got.MTime) || got.DataSize != got.Size {
			t.Errorf("entry %d after the upgrade: %+v, want %+v", w.ID, got, w)
		}
	}
	if vs, err := s.ListVersions(ctx, 1, 3); err != nil || len(vs) != 1 || vs[0].ID != 1 || vs[0].Size != 3 {
		t.Errorf("versions of report.txt: %+v, %v", vs, err)
	}
	if v, found, err := s.GetXattr(ctx, 1, 3, "user.tag"); err != nil || !found || string(v) != "hi" {
		t.Errorf("xattr: %q %v %v", v, found, err)
	}
	if tr, n, err := s.ListTrash(ctx, 1, 0, 10); err != nil || n != 1 || tr[0].ID != 5 {
		t.Errorf("trash: %+v %d %v", tr, n, err)
	}
	if hits, _, err := s.Search(ctx, 1, meta.SearchQuery{Text: "report"}); err != nil || len(hits) != 1 || hits[0].ID != 3 {
		t.Errorf("search for report: %+v, %v", hits, err)
	}
	p, err := s.CreateEntry(ctx, dfms.Entry{Owner: 1, Parent: 2, Name: "pipe", Kind: dfms.KindFIFO, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID <= 100 {
		t.Errorf("a new entry got id %d, at or below ids given out before", p.ID)
	}
	if l, err := s.Link(ctx, 1, 3, 1, "report-link"); err != nil || l.Nlink != 2 {
		t.Errorf("a link to an upgraded file: %+v, %v", l, err)
	}
}
