package events

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dfms/dfms"
)

// Outbox is what the relay uses of the metadata store (meta.Outbox).
type Outbox interface {
	PendingEvents(ctx context.Context, limit int) ([]dfms.Event, error)
	DeleteEvents(ctx context.Context, ids []int64) error
	OutboxBacklog(ctx context.Context) (int64, time.Time, error)
}

// Relay publishes the outbox to the bus, oldest event first, and deletes
// from the outbox what the bus has accepted. One relay runs at a time
// among the processes that share a metadata store (Lock); the others
// wait to take over. A relay that dies after publishing and before
// deleting leaves the events in the outbox, and they are published
// again: duplicates, never losses. Two relays at once (one that lost its
// lock without knowing) publish duplicates too, and still each key's
// events first in order: a consumer that drops the IDs it has seen sees
// each key's events in order.
type Relay struct {
	Outbox Outbox
	Bus    Bus
	// Lock, if set, takes the relay's lock across processes (kind
	// Conflict while another holds it).
	Lock func(ctx context.Context) (unlock func(), err error)
	// Batch is how many events one publish carries (default 500).
	Batch int
	// Poll is the wait between looks at an outbox found empty
	// (default 200 ms).
	Poll time.Duration
	Log  *slog.Logger

	published, failures atomic.Int64
	active              atomic.Bool
}

func (r *Relay) batch() int {
	if r.Batch > 0 {
		return r.Batch
	}
	return 500
}

func (r *Relay) poll() time.Duration {
	if r.Poll > 0 {
		return r.Poll
	}
	return 200 * time.Millisecond
}

func (r *Relay) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// Pass publishes one batch of the outbox and deletes it; it returns how
// many events it published.
func (r *Relay) Pass(ctx context.Context) (int, error) {
	evs, err := r.Outbox.PendingEvents(ctx, r.batch())
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	if err := r.Bus.Publish(ctx, evs); err != nil {
		r.failures.Add(1)
		return 0, err
	}
	ids := make([]int64, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	r.published.Add(int64(len(evs)))
	// Should this fail, the events are published again: at least once.
	return len(evs), r.Outbox.DeleteEvents(ctx, ids)
}

// Run relays until ctx ends: it takes the lock (waiting while another
// relay holds it), then publishes as fast as events come, looking again
// every Poll once the outbox is empty, and backing off on failures (the
// broker down: the events wait in the outbox).
func (r *Relay) Run(ctx context.Context) {
	for ctx.Err() == nil {
		unlock := func() {}
		if r.Lock != nil {
			u, err := r.Lock(ctx)
			if err != nil {
				if !dfms.Is(err, dfms.Conflict) && ctx.Err() == nil {
					r.log().Warn("event relay: cannot take its lock", "err", err)
				}
				sleep(ctx, max(r.poll(), time.Second))
				continue
			}
			unlock = u
		}
		r.active.Store(true)
		r.relay(ctx)
		r.active.Store(false)
		unlock()
	}
}

// relay is Run's loop once it holds the lock.
func (r *Relay) relay(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		n, err := r.Pass(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			if failures == 1 || failures%30 == 0 {
				r.log().Warn("event relay: publishing failed; the events wait in the outbox", "err", err, "failures", failures)
			}
			sleep(ctx, Retry{Backoff: 250 * time.Millisecond, MaxBackoff: 5 * time.Second}.wait(failures))
		case n < r.batch():
			if failures > 0 {
				r.log().Info("event relay: publishing again", "after_failures", failures)
			}
			failures = 0
			sleep(ctx, r.poll())
		default:
			failures = 0
		}
	}
}

// Metrics returns the relay's Prometheus metrics.
func (r *Relay) Metrics() []prometheus.Collector {
	backlog := func() (int64, time.Time) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, oldest, err := r.Outbox.OutboxBacklog(ctx)
		if err != nil {
			return -1, time.Time{}
		}
		return n, oldest
	}
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dfms_events_published_total",
			Help: "Events this process's relay published to the event bus (a republished event counts again)."},
			func() float64 { return float64(r.published.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dfms_events_publish_failures_total",
			Help: "Publishes of the relay that the event bus refused (the events stay in the outbox)."},
			func() float64 { return float64(r.failures.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dfms_events_relay_active",
			Help: "1 if this process's relay holds the relay lock and publishes."},
			func() float64 {
				if r.active.Load() {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dfms_events_outbox_backlog",
			Help: "Events in the outbox not yet published (-1 if the metadata store did not answer)."},
			func() float64 { n, _ := backlog(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dfms_events_outbox_lag_seconds",
			Help: "Age of the oldest event not yet published (0 if none)."},
			func() float64 {
				if _, oldest := backlog(); !oldest.IsZero() {
					return time.Since(oldest).Seconds()
				}
				return 0
			}),
	}
}
