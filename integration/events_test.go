package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testenv"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/events"
	"github.com/dfms/dfms/server/events/kafka"
)

// The event flow through real processes: a dfms server on PostgreSQL and
// S3 relays its outbox to a Kafka-protocol broker on loopback (franz-go's
// kfake, in this process, so that the test can stop it and watch its
// requests), and the test consumes with the kafka-go client of
// server/events/kafka, as an idempotent consumer (it drops IDs it has
// seen).

// testBroker is a broker the test can stop and start again on the same
// port and data.
type testBroker struct {
	port int
	dir  string
	c    *kfake.Cluster
}

func startBroker(t *testing.T) *testBroker {
	t.Helper()
	_, p, err := net.SplitHostPort(testkit.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	b := &testBroker{port: port, dir: filepath.Join(t.TempDir(), "kafka")}
	b.start(t)
	t.Cleanup(func() {
		if b.c != nil {
			b.c.Close()
		}
	})
	return b
}

func (b *testBroker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

func (b *testBroker) start(t *testing.T) {
	t.Helper()
	var err error
	for range 50 { // the port may linger a moment after a stop
		if b.c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(b.port), kfake.DataDir(b.dir), kfake.SyncWrites()); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("starting the broker: %v", err)
}

func (b *testBroker) stop() {
	b.c.Close()
	b.c = nil
}

// eventLog is what a consumer group of the test received.
type eventLog struct {
	mu  sync.Mutex
	raw []dfms.Event // every delivery
}

func (l *eventLog) handle(_ context.Context, e dfms.Event) error {
	l.mu.Lock()
	l.raw = append(l.raw, e)
	l.mu.Unlock()
	return nil
}

// byKey is what an idempotent consumer acts on: each event's first
// delivery, by key, in delivery order; and how many deliveries were
// duplicates.
func (l *eventLog) byKey() (map[string][]dfms.Event, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[int64]bool{}
	out := map[string][]dfms.Event{}
	dups := 0
	for _, e := range l.raw {
		if seen[e.ID] {
			dups++
			continue
		}
		seen[e.ID] = true
		out[e.Key] = append(out[e.Key], e)
	}
	return out, dups
}

func types(evs []dfms.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// waitTypes waits until the idempotent view of key has exactly want, in
// order, with increasing IDs.
func (l *eventLog) waitTypes(t *testing.T, key string, want ...string) []dfms.Event {
	t.Helper()
	var got []dfms.Event
	waitFor(t, 90*time.Second, "events of "+key, func() (bool, string) {
		m, _ := l.byKey()
		got = m[key]
		return slices.Equal(types(got), want), fmt.Sprintf("got %v, want %v", types(got), want)
	})
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("key %s: event %d after %d", key, got[i].ID, got[i-1].ID)
		}
	}
	return got
}

func fileKey(f fileJSON) string { return strconv.FormatInt(f.ID, 10) }

func TestEventsThroughKafka(t *testing.T) {
	broker := startBroker(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := baseEnv("DFMS_EVENTS_BROKERS=" + broker.addr())
	args := []string{"--data", data, "--metadata", testenv.Postgres(t), "--chunks", testenv.S3(t)}
	srv := &apiServer{backend: "postgres", data: data}
	start := func() {
		srv.p = startServer(t, dir, env, args...)
		srv.base = "http://" + srv.p.addr
		srv.stopped = false
	}
	start()
	t.Cleanup(func() {
		if !srv.stopped {
			srv.p.Cmd.Process.Kill()
			<-srv.p.Done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", tail(srv.p.Logs.String(), 6000))
		}
	})

	bus, err := kafka.Open(kafka.Options{Brokers: []string{broker.addr()}, Partitions: 8,
		Retry: events.Retry{Attempts: 3, Backoff: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var consumers sync.WaitGroup
	defer func() { cancel(); consumers.Wait() }()
	files, chunks := &eventLog{}, &eventLog{}
	consume := func(topic, group string, h events.Handler) {
		consumers.Go(func() { bus.Consume(ctx, topic, group, h) })
	}
	consume(dfms.TopicFiles, "test-files", files.handle)
	consume(dfms.TopicChunks, "test-chunks", chunks.handle)

	// Upload, delete and restore: the documented events, in order per
	// file, each once.
	c, _ := register(t, srv, "events")
	a := c.upload(t, 0, "a.txt", testkit.RandBytes(1, 100_000))
	b := c.upload(t, 0, "b.txt", testkit.RandBytes(2, 50_000))
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/files/%d", a.ID), nil, nil).want(t, http.StatusOK)
	c.do(t, "POST", fmt.Sprintf("/api/v1/trash/%d/restore", a.ID), nil, nil).want(t, http.StatusOK)
	got := files.waitTypes(t, fileKey(a), dfms.EventEntryCreated, dfms.EventVersionCommitted, dfms.EventEntryDeleted, dfms.EventEntryRestored)
	files.waitTypes(t, fileKey(b), dfms.EventEntryCreated, dfms.EventVersionCommitted)
	var fe dfms.FileEvent
	if err := json.Unmarshal(got[1].Data, &fe); err != nil || int64(fe.Entry) != a.ID || int64(fe.Owner) != c.userID || fe.Version == 0 {
		t.Fatalf("version.committed of a.txt: %s (%v)", got[1].Data, err)
	}
	// Every chunk of both files was announced once.
	want := map[string]bool{}
	for _, h := range chunkHashes(t, testkit.RandBytes(1, 100_000)) {
		want[h.String()] = true
	}
	for _, h := range chunkHashes(t, testkit.RandBytes(2, 50_000)) {
		want[h.String()] = true
	}
	waitFor(t, 90*time.Second, "chunk events", func() (bool, string) {
		m, _ := chunks.byKey()
		for h := range want {
			if evs := m[h]; len(evs) != 1 || evs[0].Type != dfms.EventChunkCreated {
				return false, fmt.Sprintf("chunk %s: %v", h, types(evs))
			}
		}
		return true, ""
	})

	// The broker down: uploads still succeed, and their events wait in
	// the outbox.
	broker.stop()
	var during []fileJSON
	for i := range 5 {
		during = append(during, c.upload(t, 0, fmt.Sprintf("during-%d.txt", i), testkit.RandBytes(uint64(10+i), 20_000)))
	}
	c.do(t, "DELETE", fmt.Sprintf("/api/v1/files/%d", during[0].ID), nil, nil).want(t, http.StatusOK)

	// The broker back, and the server killed (SIGKILL) while its relay
	// publishes them: after the broker has the events, before the relay
	// could mark them published.
	var killed atomic.Bool
	broker.start(t)
	broker.c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if !killed.Swap(true) {
			srv.p.Cmd.Process.Signal(syscall.SIGKILL)
			<-srv.p.Done
			srv.stopped = true
		}
		broker.c.DropControl()
		return nil, nil, false // the broker appends the batch all the same
	})
	waitFor(t, 90*time.Second, "the relay to publish after the broker came back", func() (bool, string) {
		return killed.Load(), "no produce request yet"
	})
	start() // a new server on the same metadata: its relay publishes again
	files.waitTypes(t, fileKey(during[0]), dfms.EventEntryCreated, dfms.EventVersionCommitted, dfms.EventEntryDeleted)
	for _, f := range during[1:] {
		files.waitTypes(t, fileKey(f), dfms.EventEntryCreated, dfms.EventVersionCommitted)
	}
	files.waitTypes(t, fileKey(a), dfms.EventEntryCreated, dfms.EventVersionCommitted, dfms.EventEntryDeleted, dfms.EventEntryRestored)
	// The batch the broker took from the killed server was published
	// again by the new one: duplicates (of whichever events that batch
	// held, file or chunk events), dropped by the idempotent consumer.
	waitFor(t, 90*time.Second, "the killed relay's batch delivered twice", func() (bool, string) {
		_, d1 := files.byKey()
		_, d2 := chunks.byKey()
		return d1+d2 > 0, "no duplicate delivery"
	})

	// A poisoned event: a group whose handler always fails on b.txt's
	// events parks them in the dead-letter topic after 3 tries, and
	// handles everything after them.
	poisoned, dead := &eventLog{}, &eventLog{}
	consume(dfms.TopicFiles, "test-poisoned", func(ctx context.Context, e dfms.Event) error {
		if e.Key == fileKey(b) {
			return fmt.Errorf("cannot handle %s", e.Key)
		}
		return poisoned.handle(ctx, e)
	})
	consume(dfms.DeadLetterTopic(dfms.TopicFiles), "test-dead", dead.handle)
	later := c.upload(t, 0, "later.txt", testkit.RandBytes(99, 10_000))
	poisoned.waitTypes(t, fileKey(later), dfms.EventEntryCreated, dfms.EventVersionCommitted)
	parked := dead.waitTypes(t, fileKey(b), dfms.EventEntryCreated, dfms.EventVersionCommitted)
	for _, e := range parked {
		if e.Headers[events.HeaderGroup] != "test-poisoned" || e.Headers[events.HeaderAttempts] != "3" || e.Headers[events.HeaderError] == "" {
			t.Fatalf("parked event's headers: %v", e.Headers)
		}
	}
	if m, _ := poisoned.byKey(); len(m[fileKey(b)]) != 0 {
		t.Fatal("the poisoned group handled b.txt's events")
	}
	srv.finish(t)
}
