// Package eventstest is the conformance suite of events.Bus: every
// implementation runs it (events.Memory in its package, the Kafka bus
// against a Kafka-protocol broker on loopback).
package eventstest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/events"
)

// Open returns a new, empty bus whose consumers retry as r says; the
// suite closes it.
type Open func(t *testing.T, r events.Retry) events.Bus

// fast retries quickly: the suite waits for outcomes, never for times.
var fast = events.Retry{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

// Run runs the suite.
func Run(t *testing.T, open Open) {
	cases := map[string]func(*testing.T, Open){
		"OrderPerKey":       testOrderPerKey,
		"EveryGroup":        testEveryGroup,
		"MembersShare":      testMembersShare,
		"Retry":             testRetry,
		"DeadLetter":        testDeadLetter,
		"ResumeAfterStop":   testResumeAfterStop,
		"ConsumeAfterClose": testConsumeAfterClose,
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) { cases[n](t, open) })
	}
}

// patience bounds every wait of the suite: a bus that has not delivered
// by then never will.
const patience = 60 * time.Second

func bus(t *testing.T, open Open, r events.Retry) events.Bus {
	b := open(t, r)
	t.Cleanup(func() { b.Close() })
	return b
}

// make returns n events of topic over keys, IDs from first on.
func makeEvents(topic string, first, n, keys int) []dfms.Event {
	out := make([]dfms.Event, n)
	for i := range out {
		id := int64(first + i)
		out[i] = dfms.Event{ID: id, Topic: topic, Key: "k" + strconv.Itoa(i%keys), Type: "test.event",
			At: time.Unix(1700000000+id, 0).UTC(), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, id))}
	}
	return out
}

// recorder records what a consumer handled.
type recorder struct {
	mu   sync.Mutex
	got  []dfms.Event
	seen map[int64]bool
	ch   chan struct{} // signalled after each event
}

func newRecorder() *recorder {
	return &recorder{seen: map[int64]bool{}, ch: make(chan struct{}, 1)}
}

func (r *recorder) handle(_ context.Context, e dfms.Event) error {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.seen[e.ID] = true
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
	return nil
}

// waitFor waits until the recorder has seen every ID of evs.
func (r *recorder) waitFor(t *testing.T, evs []dfms.Event) {
	t.Helper()
	deadline := time.After(patience)
	for {
		r.mu.Lock()
		missing := 0
		for _, e := range evs {
			if !r.seen[e.ID] {
				missing++
			}
		}
		r.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-r.ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d events never delivered", missing, len(evs))
		}
	}
}

// joined waits until the consumers of each recorder have joined their
// groups: a group that joins late may start after events that the bus
// has already dropped (the in-process bus drops what every group it
// knows has handled), so the suite publishes warm-up events (negative
// IDs, which firsts leaves out) until each has handled one.
func joined(t *testing.T, b events.Bus, topic string, rs ...*recorder) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for id := int64(-1); ; id-- {
		publish(t, b, []dfms.Event{{ID: id, Topic: topic, Key: "warm-up", Type: "test.warm-up", At: time.Unix(1, 0).UTC(), Data: json.RawMessage(`{}`)}})
		all := true
		for _, r := range rs {
			r.mu.Lock()
			all = all && len(r.got) > 0
			r.mu.Unlock()
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("consumers never joined their groups")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// firsts is what an idempotent consumer acts on: each ID's first delivery
// (warm-up events left out).
func (r *recorder) firsts() []dfms.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int64]bool{}
	var out []dfms.Event
	for _, e := range r.got {
		if e.ID > 0 && !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// checkSame fails t unless got's events are those of want (by ID) with
// the same fields.
func checkSame(t *testing.T, got, want []dfms.Event) {
	t.Helper()
	byID := map[int64]dfms.Event{}
	for _, e := range want {
		byID[e.ID] = e
	}
	for _, g := range got {
		w, ok := byID[g.ID]
		if !ok {
			t.Fatalf("event %d was never published", g.ID)
		}
		if g.Topic != w.Topic || g.Key != w.Key || g.Type != w.Type || !g.At.Equal(w.At) || string(g.Data) != string(w.Data) {
			t.Fatalf("event %d delivered as %+v, published as %+v", g.ID, g, w)
		}
	}
}

// checkOrder fails t unless each key's events come in ID order.
func checkOrder(t *testing.T, got []dfms.Event) {
	t.Helper()
	last := map[string]int64{}
	for _, e := range got {
		if e.ID < last[e.Key] {
			t.Fatalf("key %s: event %d after %d", e.Key, e.ID, last[e.Key])
		}
		last[e.Key] = e.ID
	}
}

func consume(t *testing.T, ctx context.Context, b events.Bus, topic, group string, h events.Handler) (wait func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, topic, group, h) }()
	return func() {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Consume: %v", err)
			}
		case <-time.After(patience):
			t.Error("Consume did not return after its context ended")
		}
	}
}

func publish(t *testing.T, b events.Bus, evs []dfms.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	testkit.OK(t, b.Publish(ctx, evs))
}

// Events of one key arrive in the order published, whole, in several
// publishes of many keys.
func testOrderPerKey(t *testing.T, open Open) {
	b := bus(t, open, fast)
	const topic = "test.order"
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	wait := consume(t, ctx, b, topic, "g", r.handle)
	evs := makeEvents(topic, 1, 400, 10)
	for part := range slices.Chunk(evs, 100) {
		publish(t, b, part)
	}
	r.waitFor(t, evs)
	cancel()
	wait()
	got := r.firsts()
	checkSame(t, got, evs)
	checkOrder(t, got)
}

// Every group gets every event.
func testEveryGroup(t *testing.T, open Open) {
	b := bus(t, open, fast)
	const topic = "test.groups"
	r1, r2 := newRecorder(), newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	w1 := consume(t, ctx, b, topic, "one", r1.handle)
	w2 := consume(t, ctx, b, topic, "two", r2.handle)
	joined(t, b, topic, r1, r2)
	evs := makeEvents(topic, 1, 50, 5)
	publish(t, b, evs)
	r1.waitFor(t, evs)
	r2.waitFor(t, evs)
	cancel()
	w1()
	w2()
	checkOrder(t, r1.firsts())
	checkOrder(t, r2.firsts())
}

// The members of a group share its events: each is handled (at least
// once) by one of them, and a key's events still in order.
func testMembersShare(t *testing.T, open Open) {
	b := bus(t, open, fast)
	const topic = "test.share"
	all := newRecorder()
	var mu sync.Mutex
	per := map[int]int{}
	member := func(n int) events.Handler {
		return func(ctx context.Context, e dfms.Event) error {
			mu.Lock()
			per[n]++
			mu.Unlock()
			return all.handle(ctx, e)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w1 := consume(t, ctx, b, topic, "g", member(1))
	w2 := consume(t, ctx, b, topic, "g", member(2))
	evs := makeEvents(topic, 1, 300, 30)
	publish(t, b, evs)
	all.waitFor(t, evs)
	cancel()
	w1()
	w2()
	got := all.firsts()
	checkSame(t, got, evs)
	checkOrder(t, got)
	if dups := len(all.got) - len(got); dups > len(evs)/2 {
		t.Fatalf("%d duplicate deliveries for %d events", dups, len(evs))
	}
}

// A handler that fails is retried with the same event, which is then
// handled; nothing is parked.
func testRetry(t *testing.T, open Open) {
	b := bus(t, open, fast)
	const topic = "test.retry"
	r := newRecorder()
	var mu sync.Mutex
	tries := map[int64]int{}
	h := func(ctx context.Context, e dfms.Event) error {
		mu.Lock()
		tries[e.ID]++
		n := tries[e.ID]
		mu.Unlock()
		if e.ID == 3 && n < 3 {
			return fmt.Errorf("try %d fails", n)
		}
		return r.handle(ctx, e)
	}
	dead := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	w := consume(t, ctx, b, topic, "g", h)
	wd := consume(t, ctx, b, dfms.DeadLetterTopic(topic), "dlq-reader", dead.handle)
	evs := makeEvents(topic, 1, 6, 1) // one key: 4..6 wait for 3
	publish(t, b, evs)
	r.waitFor(t, evs)
	got := r.firsts()
	checkOrder(t, got)
	mu.Lock()
	if tries[3] != 3 {
		t.Errorf("event 3 tried %d times, want 3", tries[3])
	}
	mu.Unlock()
	// A marker published to the dead-letter topic comes through alone:
	// nothing was parked before it.
	marker := dfms.Event{ID: 1000, Topic: dfms.DeadLetterTopic(topic), Key: "k0", Type: "test.marker", At: time.Unix(1, 0).UTC(), Data: json.RawMessage(`{}`)}
	publish(t, b, []dfms.Event{marker})
	dead.waitFor(t, []dfms.Event{marker})
	if d := dead.firsts(); len(d) != 1 {
		t.Fatalf("dead-letter topic holds %d events, want only the marker: %+v", len(d), d)
	}
	cancel()
	w()
	wd()
}

// An event that keeps failing is parked in the dead-letter topic after
// its attempts, with why; the events after it, of its key and others,
// keep flowing.
func testDeadLetter(t *testing.T, open Open) {
	b := bus(t, open, fast)
	const topic = "test.dead"
	r := newRecorder()
	var mu sync.Mutex
	var poisonTries int
	h := func(ctx context.Context, e dfms.Event) error {
		if e.ID == 5 {
			mu.Lock()
			poisonTries++
			mu.Unlock()
			return fmt.Errorf("poisoned event %d", e.ID)
		}
		return r.handle(ctx, e)
	}
	dead := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	w := consume(t, ctx, b, topic, "g", h)
	wd := consume(t, ctx, b, dfms.DeadLetterTopic(topic), "dlq-reader", dead.handle)
	evs := makeEvents(topic, 1, 20, 2)
	publish(t, b, evs)
	var rest []dfms.Event
	for _, e := range evs {
		if e.ID != 5 {
			rest = append(rest, e)
		}
	}
	r.waitFor(t, rest)
	dead.waitFor(t, evs[4:5])
	cancel()
	w()
	wd()
	checkOrder(t, r.firsts())
	if r.seen[5] {
		t.Fatal("the poisoned event counts as handled")
	}
	d := dead.firsts()
	if len(d) != 1 {
		t.Fatalf("dead-letter topic holds %d events, want 1", len(d))
	}
	p := d[0]
	want := evs[4]
	if p.ID != want.ID || p.Key != want.Key || p.Type != want.Type || string(p.Data) != string(want.Data) || p.Topic != dfms.DeadLetterTopic(topic) {
		t.Fatalf("parked %+v, want %+v in %s", p, want, dfms.DeadLetterTopic(topic))
	}
	if p.Headers[events.HeaderGroup] != "g" || p.Headers[events.HeaderAttempts] != "3" || p.Headers[events.HeaderError] != "poisoned event 5" {
		t.Fatalf("parked event's headers %v", p.Headers)
	}
	mu.Lock()
	defer mu.Unlock()
	if poisonTries != 3 {
		t.Fatalf("the poisoned event was tried %d times, want 3", poisonTries)
	}
}

// A group's member that stops leaves its group where it was: the next
// member goes on from there, losing nothing.
func testResumeAfterStop(t *testing.T, open Open) {
	b := bus(t, open, fast)
	const topic = "test.resume"
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	// A member that stops after handling 10 events of one key.
	var mu sync.Mutex
	handled := 0
	stopped := make(chan struct{})
	first := func(c context.Context, e dfms.Event) error {
		mu.Lock()
		if handled == 10 {
			mu.Unlock()
			<-c.Done()
			return c.Err() // stopping: not handled
		}
		handled++
		if handled == 10 {
			close(stopped)
		}
		mu.Unlock()
		return r.handle(c, e)
	}
	w := consume(t, ctx, b, topic, "g", first)
	evs := makeEvents(topic, 1, 40, 1)
	publish(t, b, evs)
	select {
	case <-stopped:
	case <-time.After(patience):
		t.Fatal("the first member never handled 10 events")
	}
	cancel()
	w()
	more := makeEvents(topic, 41, 10, 1)
	publish(t, b, more)
	ctx2, cancel2 := context.WithCancel(context.Background())
	w2 := consume(t, ctx2, b, topic, "g", r.handle)
	all := append(evs, more...)
	r.waitFor(t, all)
	cancel2()
	w2()
	got := r.firsts()
	checkSame(t, got, all)
	checkOrder(t, got)
}

// A closed bus refuses to consume, and consumers return when it closes.
func testConsumeAfterClose(t *testing.T, open Open) {
	b := open(t, fast)
	done := make(chan error, 1)
	go func() { done <- b.Consume(context.Background(), "test.close", "g", newRecorder().handle) }()
	time.Sleep(10 * time.Millisecond) // let it start (or not: either way it must return)
	testkit.OK(t, b.Close())
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatal("Consume did not return when the bus closed")
	}
	if err := b.Publish(context.Background(), makeEvents("test.close", 1, 1, 1)); err == nil {
		t.Fatal("Publish on a closed bus succeeded")
	}
}
