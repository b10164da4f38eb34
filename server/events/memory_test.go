package events_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/events"
	"github.com/dfms/dfms/server/events/eventstest"
)

func TestMemoryConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T, r events.Retry) events.Bus { return events.NewMemory(0, r) })
}

// A full partition holds its publisher back while a running group has not
// handled its oldest event, and drops the oldest when no group waits.
func TestMemoryCapacity(t *testing.T) {
	ev := func(topic string, id int64) []dfms.Event {
		return []dfms.Event{{ID: id, Topic: topic, Key: "k", Type: "x", Data: json.RawMessage(`{}`)}}
	}
	m := events.NewMemory(2, events.Retry{})
	defer m.Close()
	ctx := context.Background()
	// No group: the newest two are held for the first group; nothing
	// blocks.
	for i := range int64(5) {
		if err := m.Publish(ctx, ev("a", i)); err != nil {
			t.Fatal(err)
		}
	}
	if m.Dropped() != 3 {
		t.Fatalf("dropped %d events, want 3", m.Dropped())
	}
	// A member stuck on its first event: the partition fills, and the
	// next publish waits until its context ends.
	release, stuck := make(chan struct{}), make(chan struct{}, 1)
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Consume(cctx, "b", "g", func(ctx context.Context, e dfms.Event) error {
			select {
			case stuck <- struct{}{}:
			default:
			}
			<-release
			return nil
		})
	}()
	if err := m.Publish(ctx, ev("b", 0)); err != nil {
		t.Fatal(err)
	}
	<-stuck
	if err := m.Publish(ctx, ev("b", 1)); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := m.Publish(short, ev("b", 2)); err == nil {
		t.Fatal("a publish into a full partition that a running group waits on did not wait")
	}
	close(release)
	if err := m.Publish(ctx, ev("b", 3)); err != nil {
		t.Fatal(err)
	}
	stop()
	<-done
	// The group has no running member now: a full partition drops its
	// oldest events instead of waiting.
	before := m.Dropped()
	for i := range int64(4) {
		if err := m.Publish(ctx, ev("b", 20+i)); err != nil {
			t.Fatal(err)
		}
	}
	if m.Dropped() == before {
		t.Fatal("no event dropped for a group without a running member")
	}
}
