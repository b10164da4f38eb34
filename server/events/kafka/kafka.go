// Package kafka is the event bus of DFMS on Apache Kafka (or any broker
// that speaks its protocol), through segmentio/kafka-go.
//
// An event is one Kafka message: its key is the event's key, so that the
// events of a key land in one partition and keep their order; its value
// is the event as JSON (dfms.Event: id, topic, key, type, at, data,
// headers); its headers repeat the ID and type (dfms-event-id,
// dfms-event-type) and carry the event's own headers, so that a router
// need not parse the value. Topics are created on first use with
// Options.Partitions partitions and Options.Replication copies, their
// dead-letter topics likewise.
//
// Publish waits until every in-sync replica has the messages
// (RequiredAcks all). A consumer is a kafka-go reader in a consumer
// group; it commits an event's offset only after the handler succeeded
// or the event was parked, so an event whose consumer dies before that
// is delivered again (at least once).
package kafka

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/events"
)

// Options configure a Bus.
type Options struct {
	// Brokers are the bootstrap brokers' host:port addresses.
	Brokers []string
	// Partitions is the partition count of the topics the bus creates
	// (default 8). Replication is their replication factor (default 1).
	Partitions  int
	Replication int
	// Retry is how consumers retry a failing event before parking it.
	Retry events.Retry
	Log   *slog.Logger
}

// Headers of every message, besides the event's own.
const (
	HeaderID   = "dfms-event-id"
	HeaderType = "dfms-event-type"
	// HeaderRaw carries, base64, the value of a message that was not an
	// event, as it is parked in the dead-letter topic.
	HeaderRaw = "dfms-raw-value"
)

// Bus is the Kafka event bus.
type Bus struct {
	opts   Options
	writer *kafkago.Writer
	client *kafkago.Client
	log    *slog.Logger

	mu      sync.Mutex
	created map[string]bool // topics known to exist
	closed  chan struct{}
	once    sync.Once
}

// maxBatch bounds the events of one Publish that the writer sends as one
// batch per partition: a batch is written whole or not at all, so a
// failed publish retried whole never puts a key's later event before an
// earlier one.
const maxBatch = 10000

// Open returns a bus on the brokers of o. It does not contact them: a
// broker that is down fails Publish and delays consumers, which retry.
func Open(o Options) (*Bus, error) {
	if len(o.Brokers) == 0 {
		return nil, dfms.Errorf("events/kafka.Open", dfms.Invalid, "no Kafka brokers given")
	}
	if o.Partitions <= 0 {
		o.Partitions = 8
	}
	if o.Replication <= 0 {
		o.Replication = 1
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	addr := kafkago.TCP(o.Brokers...)
	return &Bus{
		opts: o,
		log:  log,
		writer: &kafkago.Writer{
			Addr:         addr,
			Balancer:     &kafkago.Hash{},
			RequiredAcks: kafkago.RequireAll,
			BatchSize:    maxBatch,
			BatchBytes:   64 << 20,
			BatchTimeout: time.Millisecond,
			MaxAttempts:  3,
			WriteTimeout: 10 * time.Second,
			ReadTimeout:  10 * time.Second,
		},
		client:  &kafkago.Client{Addr: addr, Timeout: 10 * time.Second},
		created: map[string]bool{},
		closed:  make(chan struct{}),
	}, nil
}

// ensure creates the topics (and their dead-letter topics) that do not
// exist yet.
func (b *Bus) ensure(ctx context.Context, topics ...string) error {
	const op dfms.Op = "events/kafka.ensure"
	b.mu.Lock()
	var want []kafkago.TopicConfig
	for _, t := range topics {
		names := []string{t}
		if !isDead(t) {
			names = append(names, dfms.DeadLetterTopic(t))
		}
		for _, name := range names {
			if !b.created[name] {
				want = append(want, kafkago.TopicConfig{Topic: name, NumPartitions: b.opts.Partitions, ReplicationFactor: b.opts.Replication})
			}
		}
	}
	b.mu.Unlock()
	if len(want) == 0 {
		return nil
	}
	res, err := b.client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: want})
	if err != nil {
		return dfms.E(op, dfms.Unavailable, fmt.Errorf("creating topics: %w", err))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, tc := range want {
		if err := res.Errors[tc.Topic]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
			return dfms.E(op, dfms.Unavailable, fmt.Errorf("creating topic %s: %w", tc.Topic, err))
		}
		b.created[tc.Topic] = true
	}
	return nil
}

// isDead reports whether topic is a dead-letter topic (which has none of
// its own).
func isDead(topic string) bool {
	const suffix = ".dlq"
	return len(topic) > len(suffix) && topic[len(topic)-len(suffix):] == suffix
}

// Publish implements events.Bus.
func (b *Bus) Publish(ctx context.Context, evs []dfms.Event) error {
	const op dfms.Op = "events/kafka.Publish"
	select {
	case <-b.closed:
		return dfms.Errorf(op, dfms.Unavailable, "the event bus is closed")
	default:
	}
	var topics []string
	seen := map[string]bool{}
	for _, e := range evs {
		if !seen[e.Topic] {
			seen[e.Topic] = true
			topics = append(topics, e.Topic)
		}
	}
	if err := b.ensure(ctx, topics...); err != nil {
		return err
	}
	for part := range slices.Chunk(evs, maxBatch) {
		msgs := make([]kafkago.Message, len(part))
		for i, e := range part {
			m, err := message(e)
			if err != nil {
				return dfms.E(op, dfms.Invalid, err)
			}
			msgs[i] = m
		}
		if err := b.writer.WriteMessages(ctx, msgs...); err != nil {
			// The broker may have lost topics it had (a new cluster
			// on the same address): ask for them again next time.
			b.mu.Lock()
			clear(b.created)
			b.mu.Unlock()
			return dfms.E(op, dfms.Unavailable, err)
		}
	}
	return nil
}

// message is the Kafka message of an event.
func message(e dfms.Event) (kafkago.Message, error) {
	v, err := json.Marshal(e)
	if err != nil {
		return kafkago.Message{}, err
	}
	hs := []kafkago.Header{{Key: HeaderID, Value: []byte(strconv.FormatInt(e.ID, 10))}, {Key: HeaderType, Value: []byte(e.Type)}}
	for k, v := range e.Headers {
		hs = append(hs, kafkago.Header{Key: k, Value: []byte(v)})
	}
	return kafkago.Message{Topic: e.Topic, Key: []byte(e.Key), Value: v, Headers: hs}, nil
}

// event decodes a message; a message that is not an event becomes one
// that says so, which its handler fails and which is parked.
func event(m kafkago.Message) (dfms.Event, error) {
	var e dfms.Event
	if err := json.Unmarshal(m.Value, &e); err != nil {
		// Parked with its bytes, to be inspected or replayed.
		return dfms.Event{Topic: m.Topic, Key: string(m.Key), Type: "undecodable", Data: json.RawMessage("null"),
				Headers: map[string]string{HeaderRaw: base64.StdEncoding.EncodeToString(m.Value)}},
			fmt.Errorf("message at %s/%d/%d is not an event: %w", m.Topic, m.Partition, m.Offset, err)
	}
	e.Topic = m.Topic
	return e, nil
}

// Consume implements events.Bus.
func (b *Bus) Consume(ctx context.Context, topic, group string, h events.Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-b.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	log := b.log.With("topic", topic, "group", group)
	// The topic must exist before the group's reader asks for it.
	if !persist(ctx, log, "waiting for the broker", func() error { return b.ensure(ctx, topic) }) {
		return b.stopped()
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           b.opts.Brokers,
		GroupID:           group,
		Topic:             topic,
		StartOffset:       kafkago.FirstOffset,
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           250 * time.Millisecond,
		CommitInterval:    0, // commit each offset as it is handled
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  250 * time.Millisecond,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    time.Second,
		ErrorLogger: kafkago.LoggerFunc(func(f string, args ...any) {
			log.Debug("event bus reader: " + fmt.Sprintf(f, args...))
		}),
	})
	defer r.Close()
	for {
		var m kafkago.Message
		if !persist(ctx, log, "fetch failed", func() (err error) { m, err = r.FetchMessage(ctx); return err }) {
			return b.stopped()
		}
		e, derr := event(m)
		hh := h
		if derr != nil {
			hh = func(context.Context, dfms.Event) error { return derr }
		}
		// Handled or parked, then committed; until then, an event whose
		// consumer stops is delivered again.
		if !persist(ctx, log, "cannot park a failed event", func() error { return b.opts.Retry.Handle(ctx, group, e, hh, b.park) }) ||
			!persist(ctx, log, "commit failed", func() error { return r.CommitMessages(ctx, m) }) {
			return b.stopped()
		}
	}
}

// persist runs fn until it succeeds (true) or ctx ends (false), logging
// each failure and pausing a second after it.
func persist(ctx context.Context, log *slog.Logger, what string, fn func() error) bool {
	for {
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("event bus: "+what+"; trying again", "err", err)
		if events.Sleep(ctx, time.Second) != nil {
			return false
		}
	}
}

// stopped is what Consume returns once its context ended: nil, unless
// that was because the bus closed.
func (b *Bus) stopped() error {
	select {
	case <-b.closed:
		return dfms.Errorf("events/kafka.Consume", dfms.Unavailable, "the event bus is closed")
	default:
		return nil
	}
}

// park publishes a failed event to its dead-letter topic.
func (b *Bus) park(ctx context.Context, e dfms.Event) error { return b.Publish(ctx, []dfms.Event{e}) }

// Close implements events.Bus.
func (b *Bus) Close() error {
	var err error
	b.once.Do(func() {
		close(b.closed)
		err = b.writer.Close()
	})
	return err
}
