package chunking

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
)

// chunkyReader returns at most n bytes per Read (n cycles through sizes).
type chunkyReader struct {
	r     io.Reader
	sizes []byte
	i     int
}

func (c *chunkyReader) Read(p []byte) (int, error) {
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.i%len(c.sizes)])*37 + 1
		c.i++
	}
	return c.r.Read(p[:min(len(p), n)])
}

// FuzzChunker checks, for arbitrary data and small parameters, that the
// chunks reassemble to the input, respect the bounds, match the reference
// chunker, do not depend on how the reader splits its reads, and that Split
// yields the same chunks and hashes.
func FuzzChunker(f *testing.F) {
	f.Add([]byte{}, uint16(0), uint16(0), uint16(0), false, []byte{})
	f.Add(testData(30, 5000), uint16(100), uint16(500), uint16(1000), false, []byte{3, 200})
	f.Add(testData(31, 5000), uint16(100), uint16(500), uint16(1000), true, []byte{1})
	f.Add(make([]byte, 3000), uint16(0), uint16(0), uint16(0), true, []byte{0})
	f.Add(bytes.Repeat([]byte("abcdefg"), 900), uint16(7), uint16(60), uint16(90), false, []byte{9, 1, 4})
	f.Add(testData(32, 20000), uint16(300), uint16(2000), uint16(3000), true, []byte{255})
	f.Fuzz(func(t *testing.T, data []byte, a, b, c uint16, rabin bool, sizes []byte) {
		if len(data) > 1<<16 {
			data = data[:1<<16]
		}
		p := Params{Algorithm: Gear}
		if rabin {
			p.Algorithm = Rabin
		}
		p.Min = MinSizeLimit + int(a%2048)
		p.Avg = p.Min + 1 + int(b%4096)
		p.Max = p.Avg + 1 + int(c%8192)
		if err := p.Validate(); err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		chunks := chunkAll(t, data, p, nil)
		checkChunks(t, data, chunks, p)
		got := lens(chunks)
		if want := refChunks(data, p); !slices.Equal(got, want) {
			t.Fatalf("%v: lengths %v, reference %v", p, got, want)
		}
		odd := chunkAll(t, data, p, func(r io.Reader) io.Reader { return &chunkyReader{r: r, sizes: sizes} })
		if !slices.EqualFunc(odd, chunks, bytes.Equal) {
			t.Fatalf("%v: chunks depend on read sizes", p)
		}
		var split []HashedChunk
		err := Split(context.Background(), bytes.NewReader(data), p, 2, func(h HashedChunk) error {
			h.Data = bytes.Clone(h.Data)
			split = append(split, h)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(split) != len(chunks) {
			t.Fatalf("Split gave %d chunks, Next %d", len(split), len(chunks))
		}
		var off int64
		for i, h := range split {
			if h.Offset != off || !bytes.Equal(h.Data, chunks[i]) || hexSum(chunks[i]) != h.Hash.String() {
				t.Fatalf("Split chunk %d differs", i)
			}
			off += int64(len(h.Data))
		}
	})
}
