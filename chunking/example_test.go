package chunking_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/dfms/dfms/chunking"
)

func Example() {
	// 32 KiB of seeded pseudo-random data.
	data := make([]byte, 32<<10)
	rand.NewChaCha8([32]byte{'d', 'f', 'm', 's'}).Read(data)

	p := chunking.Params{Algorithm: chunking.Gear, Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10}
	err := chunking.Split(context.Background(), bytes.NewReader(data), p, 2, func(c chunking.HashedChunk) error {
		fmt.Printf("offset %5d  length %4d  sha256 %s…\n", c.Offset, len(c.Data), c.Hash.String()[:12])
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// offset     0  length 5255  sha256 420048efeb90…
	// offset  5255  length 2819  sha256 747bc3f0dfaa…
	// offset  8074  length 4597  sha256 88f06fa74646…
	// offset 12671  length 5501  sha256 b16961a127f5…
	// offset 18172  length 5516  sha256 0b6088057f13…
	// offset 23688  length 2426  sha256 82b0084e1d9f…
	// offset 26114  length 4450  sha256 72e96e7fa11e…
	// offset 30564  length 1491  sha256 deaed4297ca1…
	// offset 32055  length  713  sha256 fd5e3e3c3e52…
}
