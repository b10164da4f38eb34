package chunking

import (
	"context"
	"io"
	"runtime"
	"sync"

	"github.com/dfms/dfms"
)

// HashedChunk is a chunk and its SHA-256.
type HashedChunk struct {
	Offset int64
	Data   []byte
	Hash   dfms.Hash
}

// splitJob carries one chunk through the pipeline. Jobs and their buffers
// are recycled.
type splitJob struct {
	buf  []byte
	ch   Chunk
	sum  dfms.Hash
	done chan struct{} // receives once the hash is ready (capacity 1)
}

// Split reads r to EOF, cutting it into chunks with p and hashing them with
// SHA-256, and calls fn with every chunk in order, one at a time, from the
// calling goroutine.
//
// One goroutine cuts chunks and hands them to workers hashing goroutines
// (workers <= 0 means runtime.GOMAXPROCS(0)), so cutting and hashing overlap.
// A chunk's Data is valid only until fn returns: buffers come from a pool of
// workers+3 buffers of p.Max bytes, so memory is bounded by about
// (workers+3)*p.Max whatever the input size.
//
// If fn or r returns an error, or ctx is done, Split stops every goroutine it
// started, waits for them, and returns that error (ctx.Err() for ctx). A
// Read that blocks delays the return until it returns: close r or make it
// honour ctx. Chunks cut before a read error are still passed to fn first.
// Invalid parameters or a nil fn fail with kind dfms.Invalid.
func Split(ctx context.Context, r io.Reader, p Params, workers int, fn func(HashedChunk) error) error {
	const op dfms.Op = "chunking.Split"
	if fn == nil {
		return dfms.Errorf(op, dfms.Invalid, "nil fn")
	}
	c, err := New(r, p)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	poolSize := workers + 3

	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan *splitJob, poolSize)
	toHash := make(chan *splitJob, poolSize)
	inOrder := make(chan *splitJob, poolSize)
	var (
		wg      sync.WaitGroup
		readErr error       // set by the cutter before it closes inOrder
		atEOF   bool        // likewise: every chunk was cut
		jobs    []*splitJob // every job allocated, by the cutter
	)

	// The cutter.
	wg.Go(func() {
		defer close(toHash)
		defer close(inOrder)
		allocated := 0
		get := func() *splitJob {
			select {
			case j := <-free:
				return j
			default:
			}
			if allocated < poolSize {
				allocated++
				j := &splitJob{buf: getBuf(p.Max), done: make(chan struct{}, 1)}
				jobs = append(jobs, j)
				return j
			}
			select {
			case j := <-free:
				return j
			case <-inner.Done():
				return nil
			}
		}
		for {
			j := get()
			if j == nil {
				return
			}
			ch, err := c.Next(j.buf)
			if err != nil {
				if err == io.EOF {
					atEOF = true
				} else {
					readErr = err
				}
				return
			}
			j.ch = ch
			// Neither send blocks: at most poolSize jobs exist.
			select {
			case inOrder <- j:
			case <-inner.Done():
				return
			}
			select {
			case toHash <- j:
			case <-inner.Done():
				return
			}
		}
	})

	// The hashers.
	for range workers {
		wg.Go(func() {
			for j := range toHash {
				if inner.Err() == nil {
					j.sum = dfms.Sum(j.ch.Data)
				}
				j.done <- struct{}{}
				// Yield: the send may have readied the consumer on this
				// P, and a hasher that keeps finding work would make it
				// wait for the next preemption (10 ms), and the cutter
				// with it for a free buffer: the pipeline would run in
				// bursts.
				runtime.Gosched()
			}
		})
	}

	// The consumer: this goroutine.
	var fnErr error
	completed := true
loop:
	for j := range inOrder {
		select {
		case <-j.done:
		case <-inner.Done():
			completed = false
			break loop
		}
		if inner.Err() != nil {
			completed = false
			break
		}
		if err := fn(HashedChunk{Offset: j.ch.Offset, Data: j.ch.Data, Hash: j.sum}); err != nil {
			fnErr = err
			break
		}
		j.ch = Chunk{}
		free <- j
	}
	cancel()
	wg.Wait()
	// Nothing refers to the buffers any more (fn's Data was valid only
	// during fn): they serve the next Split.
	for _, j := range jobs {
		putBuf(j.buf)
	}
	switch {
	case fnErr != nil:
		return fnErr
	case readErr != nil:
		return readErr
	case completed && atEOF:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	// Unreachable: the cutter stops early only on ctx or a read error.
	return dfms.Errorf(op, dfms.Other, "pipeline stopped early")
}

// bufs recycles chunk buffers between calls of Split, so that cutting a
// small stream does not cost zeroing a Max-sized buffer.
var bufs sync.Pool // of *[]byte

func getBuf(n int) []byte {
	if b, ok := bufs.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

func putBuf(b []byte) {
	bufs.Put(&b)
}
