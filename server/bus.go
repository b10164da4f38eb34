package server

import (
	"context"
	"log/slog"

	"github.com/dfms/dfms/server/events"
	"github.com/dfms/dfms/server/events/kafka"
	"github.com/dfms/dfms/server/meta"
)

// OpenBus opens the event bus of cfg: Kafka at events.brokers, or the
// in-process bus.
func OpenBus(cfg *Config, log *slog.Logger) (events.Bus, error) {
	retry := events.Retry{Attempts: cfg.Events.Attempts}
	if len(cfg.Events.Brokers) == 0 {
		return events.NewMemory(0, retry), nil
	}
	return kafka.Open(kafka.Options{Brokers: cfg.Events.Brokers, Partitions: cfg.Events.Partitions,
		Replication: cfg.Events.Replication, Retry: retry, Log: log})
}

// relayLock is the name of the relay's lock in the metadata store.
const relayLock = "dfms-relay"

// NewRelay returns the relay of m's outbox to bus; the processes sharing
// m take turns by a lock in it.
func NewRelay(cfg *Config, m meta.Store, bus events.Bus, log *slog.Logger) *events.Relay {
	return &events.Relay{Outbox: m, Bus: bus, Poll: cfg.Events.Poll, Log: log,
		Lock: func(ctx context.Context) (func(), error) {
			_, unlock, err := m.Lock(ctx, relayLock)
			return unlock, err
		}}
}
