package remote

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// The reader reads the parts' concatenation whatever the buffer sizes,
// and again after a seek.
func TestSlicesReader(t *testing.T) {
	parts := [][]byte{[]byte("hash"), {}, []byte("0123456789"), []byte("x"), bytes.Repeat([]byte("y"), 1000)}
	want := bytes.Join(parts, nil)
	r := newSlicesReader(parts)
	if r.size != int64(len(want)) {
		t.Fatalf("size %d, want %d", r.size, len(want))
	}
	if err := iotest.TestReader(r, want); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 7, 4096} {
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, n)
		for {
			k, err := r.Read(buf)
			got = append(got, buf[:k]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("reads of %d: got %d bytes, want %d", n, len(got), len(want))
		}
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("a seek before the start succeeded")
	}
}
