package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// slowOutbox is a metadata store whose AppendEvents waits for release
// (a writer held by another transaction) and fails while failing is set.
type slowOutbox struct {
	meta.Store
	release chan struct{}
	mu      sync.Mutex
	failing bool
	got     []dfms.Event
	calls   chan struct{}
}

func (o *slowOutbox) AppendEvents(ctx context.Context, evs []dfms.Event) error {
	select {
	case <-o.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls <- struct{}{}
	if o.failing {
		return errors.New("metadata store down")
	}
	o.got = append(o.got, evs...)
	return nil
}

// A read that meets a bad copy never waits for the metadata store: the
// report is announced in the background, in batches, once per copy and
// minute once written, and again after a failed write.
func TestBadCopyDoesNotBlockReads(t *testing.T) {
	o := &slowOutbox{release: make(chan struct{}), calls: make(chan struct{}, 10), failing: true}
	cl := &cluster{meta: o, log: slog.Default(), reports: make(chan badReport, reportQueue), reported: map[dfms.Replica]time.Time{}}
	h := dfms.Sum([]byte("bad"))
	done := make(chan struct{})
	go func() {
		cl.badCopy(h, "n1", dfms.E("test", dfms.Corrupt, errors.New("bad bytes")))
		cl.badCopy(h, "n1", dfms.E("test", dfms.Corrupt, errors.New("bad bytes"))) // the same, queued again: one event
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("badCopy waited for the metadata store")
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { cl.announce(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	close(o.release)
	<-o.calls // the first write fails: nothing is remembered as announced
	o.mu.Lock()
	o.failing = false
	o.mu.Unlock()
	cl.badCopy(h, "n1", dfms.E("test", dfms.Corrupt, errors.New("bad bytes")))
	deadline := time.After(time.Minute)
	for {
		o.mu.Lock()
		n := len(o.got)
		o.mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-o.calls:
		case <-deadline:
			t.Fatal("the bad copy was never announced after the store came back")
		}
	}
	o.mu.Lock()
	e := o.got[0]
	o.mu.Unlock()
	var re dfms.RepairEvent
	if err := json.Unmarshal(e.Data, &re); err != nil || e.Type != dfms.EventRepairNeeded || e.Topic != dfms.TopicRepair ||
		re.Hash != h.String() || re.Node != "n1" || re.Reason != "corrupt" {
		t.Fatalf("announced %+v (%s, %v)", e, e.Data, err)
	}
	// Announced (remembered once the write returned): the same copy met
	// again within the minute is not.
	for {
		cl.reportedMu.Lock()
		_, done := cl.reported[dfms.Replica{Hash: h, Node: "n1"}]
		cl.reportedMu.Unlock()
		if done {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the announced copy was never remembered")
		case <-time.After(time.Millisecond):
		}
	}
	cl.badCopy(h, "n1", dfms.E("test", dfms.Corrupt, errors.New("bad bytes")))
	if len(cl.reports) != 0 {
		t.Fatal("a copy announced a moment ago was queued again")
	}
}
