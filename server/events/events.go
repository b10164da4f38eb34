// Package events is the event bus of DFMS and the relay that feeds it.
//
// Every metadata transaction that changes an entry, a version, a chunk's
// existence, a user or a storage node writes its events (dfms.Event) into
// the outbox of the metadata store, in the same transaction: an event
// exists if and only if its change does. The Relay publishes the outbox to
// a Bus in ID order and deletes what the bus has accepted. A relay that
// dies between the two publishes the same events again when it (or
// another) resumes, so delivery is at least once, never less; consumers
// that must act once remember the IDs they have handled.
//
// A Bus has two implementations, run through one conformance suite
// (eventstest): Memory, in the process, for the embedded default; and
// Kafka (package events/kafka, through segmentio/kafka-go). Both keep the
// events of one key of one topic in order, deliver each event to every
// consumer group once (at least), share a group's events among its
// members, and retry a failing event with backoff: after Retry.Attempts
// tries it is parked in the topic's dead-letter topic
// (dfms.DeadLetterTopic) with the failure in its headers, and the events
// after it flow again. An event is never skipped: if it cannot even be
// parked, it is retried until it can.
package events

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/dfms/dfms"
)

// Handler handles one event of a consumer group. Returning an error
// retries the event (Retry); a handler must therefore be idempotent.
type Handler func(ctx context.Context, e dfms.Event) error

// Bus is an event bus.
type Bus interface {
	// Publish hands evs to the bus: once it returns nil the bus has them
	// all (for Kafka: acknowledged by every in-sync replica), events of
	// one topic and key in the order given. On an error some may have
	// been accepted: publishing them again is the caller's remedy.
	Publish(ctx context.Context, evs []dfms.Event) error
	// Consume runs one member of the consumer group on topic until ctx
	// ends (it then returns nil) or the bus closes. Each event is handed
	// to h, at least once, and to one member of the group at a time;
	// those of one key in order. A new group starts at the oldest event
	// the bus still holds.
	Consume(ctx context.Context, topic, group string, h Handler) error
	// Close stops the bus; consumers return.
	Close() error
}

// Retry says how a consumer retries a failing event before parking it in
// the dead-letter topic.
type Retry struct {
	// Attempts is how many times an event is tried (default 5).
	Attempts int
	// Backoff is the wait after the first failure (default 100 ms); it
	// doubles after each, up to MaxBackoff (default 10 s).
	Backoff, MaxBackoff time.Duration
}

func (r Retry) attempts() int {
	if r.Attempts > 0 {
		return r.Attempts
	}
	return 5
}

// wait returns the wait after the n-th failure (n ≥ 1).
func (r Retry) wait(n int) time.Duration {
	d, top := r.Backoff, r.MaxBackoff
	if d <= 0 {
		d = 100 * time.Millisecond
	}
	if top <= 0 {
		top = 10 * time.Second
	}
	for range n - 1 {
		if d >= top/2 {
			return top
		}
		d *= 2
	}
	return min(d, top)
}

// Headers of an event parked in a dead-letter topic.
const (
	HeaderGroup    = "dfms-dead-group"    // the consumer group that failed it
	HeaderError    = "dfms-dead-error"    // its last error
	HeaderAttempts = "dfms-dead-attempts" // how many times it was tried
)

// Handle runs h on e as a consumer of group does: up to r's attempts with
// backoff, then parks e (park publishes it to the dead-letter topic). It
// returns nil once e is handled or parked, so that the consumer moves on;
// an error only when ctx ended or parking failed, and then e must be
// handed out again.
func (r Retry) Handle(ctx context.Context, group string, e dfms.Event, h Handler, park func(context.Context, dfms.Event) error) error {
	for n := 1; ; n++ {
		err := h(ctx, e)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n >= r.attempts() {
			dead := e
			dead.Topic = dfms.DeadLetterTopic(e.Topic)
			dead.Headers = map[string]string{HeaderGroup: group, HeaderError: err.Error(), HeaderAttempts: strconv.Itoa(n)}
			for k, v := range e.Headers {
				if _, ok := dead.Headers[k]; !ok {
					dead.Headers[k] = v
				}
			}
			if perr := park(ctx, dead); perr != nil {
				return errors.Join(dfms.E("events.Handle", dfms.Unavailable, perr), err)
			}
			return nil
		}
		if err := sleep(ctx, r.wait(n)); err != nil {
			return err
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Sleep is sleep for the implementations of Bus.
func Sleep(ctx context.Context, d time.Duration) error { return sleep(ctx, d) }
