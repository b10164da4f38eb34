package kafka_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

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
