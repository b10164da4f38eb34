package files_test

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dfms/dfms/placement/store"
	"github.com/dfms/dfms/server/files"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/sqlite"
)

func TestRetention(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    files.Retention
		want []int64 // versions left after writing 5
	}{
		{"keep all", files.Retention{}, []int64{1, 2, 3, 4, 5}},
		{"keep last 2", files.Retention{KeepLast: 2}, []int64{4, 5}}, // the current one counts
		{"keep for a day", files.Retention{KeepFor: 24 * time.Hour}, []int64{1, 2, 3, 4, 5}},
		{"keep for a nanosecond", files.Retention{KeepFor: time.Nanosecond}, []int64{5}},
		{"last 1 or a day", files.Retention{KeepLast: 1, KeepFor: 24 * time.Hour}, []int64{1, 2, 3, 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			c, err := store.Open(ctx, filepath.Join(t.TempDir(), "chunks"))
			if err != nil {
				t.Fatal(err)
			}
			svc, err := files.New(m, c, files.Options{Retention: tc.r})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := m.CreateUser(ctx, meta.User{Email: "r@example.com", Active: true})
			var id = u.Root
			for i := range 5 {
				res, err := svc.Write(ctx, files.WriteRequest{Owner: u.ID, Parent: u.Root, Name: "f", Body: bytes.NewReader(randomBytes(uint64(i), 1000))})
				if err != nil {
					t.Fatal(err)
				}
				id = res.Entry.ID
			}
			vs, err := svc.Versions(ctx, u.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, v := range vs {
				got = append(got, v.Number)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("versions left = %v, want %v", got, tc.want)
			}
		})
	}
}
