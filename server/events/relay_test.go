package events_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/events"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/meta/sqlite"
)

// failingBus refuses every publish.
type failingBus struct{ events.Bus }

func (failingBus) Publish(context.Context, []dfms.Event) error { return errors.New("broker down") }

// forgetfulOutbox fails its next DeleteEvents: a relay that died after
// publishing.
type forgetfulOutbox struct {
	events.Outbox
	fail bool
}

func (o *forgetfulOutbox) DeleteEvents(ctx context.Context, ids []int64) error {
	if o.fail {
		o.fail = false
		return errors.New("killed before the mark")
	}
	return o.Outbox.DeleteEvents(ctx, ids)
}

func TestRelay(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
	testkit.OK(t, err)
	defer s.Close()
	u := testkit.Must(s.CreateUser(ctx, meta.User{Email: "relay@example.com", Active: true}))(t)
	for _, name := range []string{"a", "b", "c"} {
		testkit.Must(s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: name, Kind: dfms.KindDir, Mode: 0o755}))(t)
	}
	bus := events.NewMemory(0, events.Retry{})
	defer bus.Close()
	var mu sync.Mutex
	var got []dfms.Event
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	for _, topic := range dfms.Topics {
		go bus.Consume(cctx, topic, "test", func(_ context.Context, e dfms.Event) error {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
			return nil
		})
	}
	backlog := func() int64 {
		n, _, err := s.OutboxBacklog(ctx)
		testkit.OK(t, err)
		return n
	}
	if backlog() != 4 { // the user, three directories
		t.Fatalf("backlog %d, want 4", backlog())
	}
	// The broker down: nothing leaves the outbox.
	down := &events.Relay{Outbox: s, Bus: failingBus{bus}, Batch: 2}
	if _, err := down.Pass(ctx); err == nil || backlog() != 4 {
		t.Fatalf("a failed publish: %v, backlog %d", err, backlog())
	}
	// Killed between publish and mark: published again, at least once.
	fo := &forgetfulOutbox{Outbox: s, fail: true}
	r := &events.Relay{Outbox: fo, Bus: bus, Batch: 2}
	if n, err := r.Pass(ctx); n != 2 || err == nil || backlog() != 4 {
		t.Fatalf("a pass whose mark failed: %d, %v, backlog %d", n, err, backlog())
	}
	for backlog() > 0 {
		testkit.Must(r.Pass(ctx))(t)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events delivered, want 6 (4 and 2 again)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[int64]int{}
	var types []string
	for _, e := range got {
		if seen[e.ID]++; seen[e.ID] == 1 {
			types = append(types, e.Type)
		}
	}
	if len(seen) != 4 || len(got) != 6 {
		t.Fatalf("delivered %d events, %d distinct; want 6 and 4", len(got), len(seen))
	}
	want := map[string]int{dfms.EventUserCreated: 1, dfms.EventEntryCreated: 3}
	for _, ty := range types {
		want[ty]--
	}
	for _, n := range want {
		if n != 0 {
			t.Fatalf("event types %v, want one user.created and three entry.created", types)
		}
	}
}

// Run takes the lock, relays what transactions write, and gives the lock
// up when it stops.
func TestRelayRun(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
	testkit.OK(t, err)
	defer s.Close()
	bus := events.NewMemory(0, events.Retry{})
	defer bus.Close()
	got := make(chan dfms.Event, 10)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go bus.Consume(cctx, dfms.TopicUsers, "test", func(_ context.Context, e dfms.Event) error { got <- e; return nil })
	lock := func(ctx context.Context) (func(), error) {
		_, unlock, err := s.Lock(ctx, "dfms-relay")
		return unlock, err
	}
	r := &events.Relay{Outbox: s, Bus: bus, Lock: lock, Poll: time.Millisecond}
	rctx, stopRelay := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	testkit.Must(s.CreateUser(ctx, meta.User{Email: "run@example.com", Active: true}))(t)
	select {
	case e := <-got:
		if e.Type != dfms.EventUserCreated {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(time.Minute):
		t.Fatal("the relay never published the user's event")
	}
	stopRelay()
	<-done
	if _, unlock, err := s.Lock(ctx, "dfms-relay"); err != nil {
		t.Fatalf("the relay kept its lock after it stopped: %v", err)
	} else {
		unlock()
	}
}
