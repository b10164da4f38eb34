package vfs_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/dfms/dfms/chunking"
	"github.com/dfms/dfms/fusefs/vfs"
	"github.com/dfms/dfms/integration/testkit"
)

func TestPrecutStress(t *testing.T) {
	p := chunking.Params{Algorithm: chunking.Gear, Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
	b, svc := newLocalParams(t, p)
	fsys, _ := newFS(t, b)
	for seed := uint64(1); seed <= 3; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		a, h, err := fsys.Create(ctx, fsys.Root(), "s"+string(rune('0'+seed)), os.O_RDWR|os.O_CREATE, 0o644, vfs.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		var model []byte
		piece := testkit.RandBytes(seed, 512<<10)
		for step := 0; step < 200; step++ {
			switch r := rng.IntN(40); {
			case r < 30: // append sequentially
				q := piece[:64<<10+rng.IntN(len(piece)-64<<10)]
				q[0] = byte(step)
				writeAt(t, h, q, int64(len(model)))
				model = append(model, q...)
			case r < 34 && len(model) > 0: // poke the prefix
				off := rng.IntN(len(model))
				x := []byte{byte(rng.Uint32())}
				h.Write(ctx, x, int64(off))
				model[off] = x[0]
			case r < 36: // truncate
				size := rng.IntN(len(model) + 1)
				if err := truncate(fsys, a.Ino, h, int64(size)); err != nil {
					t.Fatal(err)
				}
				model = model[:size]
			case r < 38:
				time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond) // let the worker run
			default:
				if err := h.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if got := storedContent(t, svc, b, a.Ino); !bytes.Equal(got, model) {
					t.Fatalf("seed %d step %d: stored %d bytes differ from the %d written", seed, step, len(got), len(model))
				}
			}
		}
		release(t, h)
		if got := storedContent(t, svc, b, a.Ino); !bytes.Equal(got, model) {
			t.Fatalf("seed %d: stored content differs", seed)
		}
		t.Logf("seed %d: %d bytes, stats %+v", seed, len(model), fsys.Stats())
	}
}
