package kafka_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/events"
	"github.com/dfms/dfms/server/events/eventstest"
	"github.com/dfms/dfms/server/events/kafka"
)

// broker starts a Kafka-protocol broker on a free loopback port for the
// test.
func broker(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func TestConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T, r events.Retry) events.Bus {
		b, err := kafka.Open(kafka.Options{Brokers: broker(t), Partitions: 4, Retry: r})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// A broker that comes back empty (its topics gone) gets them again: the
// publish after the failed one succeeds, and a consumer reads it.
func TestBrokerBackEmpty(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	addr := c.ListenAddrs()[0]
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	b, err := kafka.Open(kafka.Options{Brokers: []string{addr}, Partitions: 2, Retry: events.Retry{Backoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := func(id int64) []dfms.Event {
		return []dfms.Event{{ID: id, Topic: "test.back", Key: "k", Type: "t", Data: json.RawMessage(`{}`)}}
	}
	testkit.OK(t, b.Publish(ctx, ev(1)))
	c.Close()
	short, stop := context.WithTimeout(ctx, 2*time.Second)
	defer stop()
	if err := b.Publish(short, ev(2)); err == nil {
		t.Fatal("a publish with the broker down succeeded")
	}
	var c2 *kfake.Cluster
	for range 50 {
		if c2, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for {
		if err := b.Publish(ctx, ev(3)); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("publishing to the broker that came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := make(chan dfms.Event, 1)
	go b.Consume(ctx, "test.back", "g", func(_ context.Context, e dfms.Event) error {
		select {
		case got <- e:
		default:
		}
		return nil
	})
	select {
	case e := <-got:
		if e.ID != 3 {
			t.Fatalf("read event %d, want 3", e.ID)
		}
	case <-ctx.Done():
		t.Fatal("the event published after the broker came back was never read")
	}
}

// A message that is not an event is parked with its bytes (base64 in a
// header), and the messages after it flow.
func TestUndecodableParkedWithItsBytes(t *testing.T) {
	addrs := broker(t)
	b, err := kafka.Open(kafka.Options{Brokers: addrs, Partitions: 1, Retry: events.Retry{Attempts: 2, Backoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good := []dfms.Event{{ID: 7, Topic: "test.raw", Key: "k", Type: "t", Data: json.RawMessage(`{}`)}}
	testkit.OK(t, b.Publish(ctx, good)) // creates the topics
	w := &kafkago.Writer{Addr: kafkago.TCP(addrs...), Topic: "test.raw"}
	defer w.Close()
	raw := []byte("not json \x00\xff")
	testkit.OK(t, w.WriteMessages(ctx, kafkago.Message{Key: []byte("k"), Value: raw}))
	testkit.OK(t, b.Publish(ctx, []dfms.Event{{ID: 8, Topic: "test.raw", Key: "k", Type: "t", Data: json.RawMessage(`{}`)}}))
	handled := make(chan int64, 10)
	go b.Consume(ctx, "test.raw", "g", func(_ context.Context, e dfms.Event) error { handled <- e.ID; return nil })
	dead := make(chan dfms.Event, 1)
	go b.Consume(ctx, dfms.DeadLetterTopic("test.raw"), "d", func(_ context.Context, e dfms.Event) error { dead <- e; return nil })
	var got []int64
	for len(got) < 2 {
		select {
		case id := <-handled:
			got = append(got, id)
		case <-ctx.Done():
			t.Fatalf("handled %v, want 7 and 8", got)
		}
	}
	if got[0] != 7 || got[1] != 8 {
		t.Fatalf("handled %v, want 7 then 8", got)
	}
	select {
	case e := <-dead:
		if e.Headers[kafka.HeaderRaw] != base64.StdEncoding.EncodeToString(raw) || e.Headers[events.HeaderError] == "" {
			t.Fatalf("parked %+v: want the raw bytes and the error in its headers", e)
		}
	case <-ctx.Done():
		t.Fatal("the undecodable message was never parked")
	}
}
