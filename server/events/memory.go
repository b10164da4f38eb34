package events

import (
	"context"
	"hash/fnv"
	"sync"
	"sync/atomic"

	"github.com/dfms/dfms"
)

// memPartitions is how many partitions each topic of a Memory bus has:
// a group handles one event of each partition at a time.
const memPartitions = 8

// Memory is the in-process Bus of the embedded default. It holds events
// in memory, at most Capacity per partition of a topic, for the consumer
// groups that have not handled them; a publisher waits while a partition
// is full of events that a group with a running member has not handled
// yet (backpressure to the outbox, which keeps them on disk). Events no
// running group waits for are dropped, oldest first, once the partition
// is full: a group that starts later begins with what is still held.
// Nothing survives the process: the delivery guarantee across crashes is
// Kafka's.
type Memory struct {
	retry    Retry
	capacity int

	mu     sync.Mutex
	cond   *sync.Cond
	topics map[string]*memTopic
	closed bool

	dropped atomic.Int64
}

type memTopic struct {
	parts  [memPartitions]memPart
	groups map[string]*memGroup
}

// memPart is one partition: its events from offset base on.
type memPart struct {
	base int64
	log  []dfms.Event
}

func (p *memPart) end() int64 { return p.base + int64(len(p.log)) }

// memGroup is a consumer group of a topic.
type memGroup struct {
	members int
	parts   [memPartitions]struct {
		next int64 // the offset of the next event to handle
		busy bool  // a member is handling next
	}
}

// NewMemory returns an in-process bus holding at most capacity events
// per partition of a topic (default 1024), whose consumers retry as r
// says.
func NewMemory(capacity int, r Retry) *Memory {
	if capacity <= 0 {
		capacity = 1024
	}
	m := &Memory{retry: r, capacity: capacity, topics: map[string]*memTopic{}}
	m.cond = sync.NewCond(&m.mu)
	return m
}

// Dropped returns how many events were dropped because no running group
// waited for them.
func (m *Memory) Dropped() int64 { return m.dropped.Load() }

func (m *Memory) topic(name string) *memTopic {
	t := m.topics[name]
	if t == nil {
		t = &memTopic{groups: map[string]*memGroup{}}
		m.topics[name] = t
	}
	return t
}

func partition(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % memPartitions)
}

var errClosed = dfms.Errorf("events", dfms.Unavailable, "the event bus is closed")

// Publish implements Bus.
func (m *Memory) Publish(ctx context.Context, evs []dfms.Event) error {
	stop := context.AfterFunc(ctx, m.wake)
	defer stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		t := m.topic(e.Topic)
		i := partition(e.Key)
		p := &t.parts[i]
		for {
			if m.closed {
				return errClosed
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			m.trim(t, i)
			if len(p.log) < m.capacity {
				break
			}
			if !t.waitedFor(i, p.base) {
				p.log[0] = dfms.Event{}
				p.log = p.log[1:]
				p.base++
				m.dropped.Add(1)
				continue
			}
			m.cond.Wait()
		}
		p.log = append(p.log, e)
	}
	m.cond.Broadcast()
	return nil
}

// waitedFor reports whether a group with a running member has yet to
// handle the event at offset off of partition i.
func (t *memTopic) waitedFor(i int, off int64) bool {
	for _, g := range t.groups {
		if g.members > 0 && g.parts[i].next <= off {
			return true
		}
	}
	return false
}

// trim drops the events of partition i that every group has handled
// (none if the topic has no group yet: its first group starts with them).
func (m *Memory) trim(t *memTopic, i int) {
	p := &t.parts[i]
	if len(t.groups) == 0 {
		return
	}
	low := p.end()
	for _, g := range t.groups {
		low = min(low, max(g.parts[i].next, p.base))
	}
	if n := int(low - p.base); n > 0 {
		clear(p.log[:n])
		p.log = p.log[n:]
		p.base = low
	}
}

func (m *Memory) wake() {
	m.mu.Lock()
	m.cond.Broadcast()
	m.mu.Unlock()
}

// Consume implements Bus.
func (m *Memory) Consume(ctx context.Context, topic, group string, h Handler) error {
	stop := context.AfterFunc(ctx, m.wake)
	defer stop()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errClosed
	}
	t := m.topic(topic)
	g := t.groups[group]
	if g == nil {
		g = &memGroup{}
		for i := range g.parts {
			g.parts[i].next = t.parts[i].base
		}
		t.groups[group] = g
	}
	g.members++
	defer func() {
		m.mu.Lock()
		g.members--
		m.cond.Broadcast() // publishers may no longer wait for this group
		m.mu.Unlock()
	}()
	start := 0 // where the search for work begins, rotating for fairness
	for {
		// Under m.mu: find a partition with an event for the group that
		// no other member is handling.
		i, e := -1, dfms.Event{}
		for i < 0 {
			if m.closed {
				m.mu.Unlock()
				return errClosed
			}
			if ctx.Err() != nil {
				m.mu.Unlock()
				return nil
			}
			for k := range memPartitions {
				j := (start + k) % memPartitions
				gp, p := &g.parts[j], &t.parts[j]
				gp.next = max(gp.next, p.base) // skip what was dropped
				if !gp.busy && gp.next < p.end() {
					i, e = j, p.log[gp.next-p.base]
					gp.busy = true
					break
				}
			}
			if i < 0 {
				m.cond.Wait()
			}
		}
		start = i + 1
		m.mu.Unlock()
		err := m.retry.Handle(ctx, group, e, h, m.park)
		m.mu.Lock()
		g.parts[i].busy = false
		if err == nil {
			g.parts[i].next++
			m.trim(t, i)
		}
		m.cond.Broadcast()
		if err != nil && ctx.Err() == nil {
			// Not even parked (the bus is full or closed): the event
			// stays the group's next; try again after a pause.
			m.mu.Unlock()
			if Sleep(ctx, m.retry.wait(1)) != nil {
				return nil
			}
			m.mu.Lock()
		}
	}
}

// park publishes a dead event to its dead-letter topic.
func (m *Memory) park(ctx context.Context, e dfms.Event) error {
	return m.Publish(ctx, []dfms.Event{e})
}

// Close implements Bus.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.cond.Broadcast()
	m.mu.Unlock()
	return nil
}
