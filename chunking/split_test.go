package chunking

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/dfms/dfms"
)

// splitAll runs Split and returns copies of the chunks it delivered.
func splitAll(t testing.TB, data []byte, p Params, workers int) ([]HashedChunk, error) {
	var out []HashedChunk
	err := Split(context.Background(), bytes.NewReader(data), p, workers, func(c HashedChunk) error {
		c.Data = bytes.Clone(c.Data)
		out = append(out, c)
		return nil
	})
	return out, err
}

// checkGoroutines fails t if the goroutine count does not settle back to
// base: Split must leave nothing running.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSplitMatchesNext(t *testing.T) {
	n := 24 << 20
	if raceEnabled {
		n = 4 << 20
	}
	data := testData(20, n)
	for _, p := range []Params{{Gear, 16 << 10, 64 << 10, 256 << 10}, {Rabin, 16 << 10, 64 << 10, 256 << 10}, DefaultParams()} {
		want := chunkAll(t, data, p, nil)
		for _, workers := range []int{0, 1, 2, 5} {
			base := runtime.NumGoroutine()
			got, err := splitAll(t, data, p, workers)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%v workers=%d: %d chunks, want %d", p, workers, len(got), len(want))
			}
			var off int64
			for i, c := range got {
				if c.Offset != off || !bytes.Equal(c.Data, want[i]) || c.Hash != dfms.Sum(want[i]) {
					t.Fatalf("%v workers=%d: chunk %d differs (offset %d, want %d)", p, workers, i, c.Offset, off)
				}
				off += int64(len(c.Data))
			}
			checkGoroutines(t, base)
		}
	}
}

func TestSplitEmpty(t *testing.T) {
	got, err := splitAll(t, nil, DefaultParams(), 2)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty input: %d chunks, %v", len(got), err)
	}
}

// TestSplitBoundedBuffers checks that Split recycles at most workers+3
// buffers, whatever the input size.
func TestSplitBoundedBuffers(t *testing.T) {
	p := Params{Gear, 1 << 10, 4 << 10, 16 << 10}
	data := testData(21, 4<<20)
	for _, workers := range []int{1, 3} {
		bufs := map[*byte]bool{}
		n := 0
		err := Split(context.Background(), bytes.NewReader(data), p, workers, func(c HashedChunk) error {
			bufs[&c.Data[:1][0]] = true
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(bufs) > workers+3 {
			t.Errorf("workers=%d: %d distinct buffers for %d chunks, want <= %d", workers, len(bufs), n, workers+3)
		}
	}
}

// endless is an io.Reader of pseudo-random bytes that never ends.
type endless struct{ s uint64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		if i%8 == 0 {
			e.s = e.s*6364136223846793005 + 1442695040888963407
		}
		p[i] = byte(e.s >> (56 - 8*(i%8)))
	}
	return len(p), nil
}

func TestSplitCancel(t *testing.T) {
	p := Params{Gear, 4 << 10, 16 << 10, 64 << 10}
	for _, fromFn := range []bool{true, false} {
		base := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		done := make(chan error, 1)
		go func() {
			done <- Split(ctx, &endless{s: 1}, p, 2, func(c HashedChunk) error {
				calls++
				if calls == 10 {
					if fromFn {
						cancel()
					} else {
						go cancel()
						time.Sleep(10 * time.Millisecond)
					}
				}
				return nil
			})
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("fromFn=%v: Split = %v, want context.Canceled", fromFn, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Split did not return after cancel")
		}
		if calls > 11 {
			t.Errorf("fromFn=%v: fn called %d times after cancel at 10", fromFn, calls)
		}
		cancel()
		checkGoroutines(t, base)
	}
	// A context that is already done.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Split(ctx, &endless{}, p, 2, func(HashedChunk) error { t.Error("fn called"); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("done context: %v", err)
	}
	// A deadline.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = Split(ctx, &endless{}, p, 2, func(HashedChunk) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
}

func TestSplitFnError(t *testing.T) {
	base := runtime.NumGoroutine()
	stop := errors.New("stop")
	calls := 0
	err := Split(context.Background(), &endless{}, Params{Rabin, 4 << 10, 16 << 10, 64 << 10}, 3, func(c HashedChunk) error {
		calls++
		if calls == 5 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Errorf("Split = %v, want stop", err)
	}
	if calls != 5 {
		t.Errorf("fn called %d times, want 5", calls)
	}
	checkGoroutines(t, base)
}

func TestSplitReadError(t *testing.T) {
	base := runtime.NumGoroutine()
	p := Params{Gear, 4 << 10, 16 << 10, 64 << 10}
	data := testData(22, 1<<20)
	boom := errors.New("boom")
	var got int64
	err := Split(context.Background(), &errReader{bytes.NewReader(data), 600 << 10, boom}, p, 2, func(c HashedChunk) error {
		if c.Offset != got {
			t.Errorf("offset %d, want %d", c.Offset, got)
		}
		if !bytes.Equal(c.Data, data[c.Offset:c.Offset+int64(len(c.Data))]) {
			t.Error("wrong data")
		}
		got += int64(len(c.Data))
		return nil
	})
	if err != boom {
		t.Errorf("Split = %v, want boom", err)
	}
	if got > 600<<10 || got < 400<<10 {
		t.Errorf("%d bytes delivered before an error at %d", got, 600<<10)
	}
	checkGoroutines(t, base)
}

func TestSplitInvalid(t *testing.T) {
	err := Split(context.Background(), bytes.NewReader(nil), Params{Gear, 10, 20, 30}, 1, func(HashedChunk) error { return nil })
	if !dfms.Is(err, dfms.Invalid) {
		t.Errorf("bad params: %v", err)
	}
	err = Split(context.Background(), bytes.NewReader(nil), DefaultParams(), 1, nil)
	if !dfms.Is(err, dfms.Invalid) {
		t.Errorf("nil fn: %v", err)
	}
}
