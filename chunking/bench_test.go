package chunking

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"sync"
	"testing"
)

var benchData = sync.OnceValue(func() []byte { return testData(40, 64<<20) })

func benchNext(b *testing.B, p Params) {
	data := benchData()
	buf := make([]byte, p.Max)
	r := bytes.NewReader(data)
	c, err := New(r, p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r.Reset(data)
		c.Reset(r)
		for {
			if _, err := c.Next(buf); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkGear measures the gear chunker alone (default parameters).
func BenchmarkGear(b *testing.B) { benchNext(b, DefaultParams()) }

// BenchmarkRabin measures the Rabin chunker alone (default sizes).
func BenchmarkRabin(b *testing.B) {
	p := DefaultParams()
	p.Algorithm = Rabin
	benchNext(b, p)
}

// BenchmarkGearSmall measures gear with 8 KiB chunks, where per-chunk costs
// and the skipped Min prefix matter less.
func BenchmarkGearSmall(b *testing.B) { benchNext(b, Params{Gear, 2 << 10, 8 << 10, 64 << 10}) }

// BenchmarkSHA256 is the reference: hashing alone, one core.
func BenchmarkSHA256(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		for p := data; len(p) > 0; p = p[min(len(p), 1<<20):] {
			sha256.Sum256(p[:min(len(p), 1<<20)])
		}
	}
}

// BenchmarkSplit measures the pipeline: one chunker feeding GOMAXPROCS
// hashers.
func BenchmarkSplit(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		err := Split(context.Background(), bytes.NewReader(data), DefaultParams(), 0, func(HashedChunk) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSmallFile measures a Chunker made for one small file, as the
// mount makes one per file it commits: New, and one chunk of 4 KiB.
func BenchmarkSmallFile(b *testing.B) {
	p := DefaultParams()
	data := make([]byte, 4<<10)
	buf := make([]byte, p.Max)
	b.ReportAllocs()
	for b.Loop() {
		c, err := New(bytes.NewReader(data), p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Next(buf); err != nil {
			b.Fatal(err)
		}
	}
}
