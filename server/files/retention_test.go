package files_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/files"
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
			st := testkit.NewStack(t, testkit.Options{Files: files.Options{Retention: tc.r}})
			svc, u := st.Files, st.User
			var id = u.Root
			for i := range 5 {
				res, err := svc.Write(ctx, files.WriteRequest{Owner: u.ID, Parent: u.Root, Name: "f", Body: bytes.NewReader(testkit.RandBytes(uint64(i), 1000))})
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
