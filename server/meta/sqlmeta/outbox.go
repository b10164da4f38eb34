package sqlmeta

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/meta"
)

// event adds an event to the transaction's outbox rows, which it writes
// when it ends (flushJournal), so that the event exists if and only if
// the change it describes does.
func (t *tx) event(topic, key, typ string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	t.events = append(t.events, dfms.Event{Topic: topic, Key: key, Type: typ, Data: b})
	return nil
}

// fileEvent is the outbox event of a change of the journal.
func (t *tx) fileEvent(c meta.Change) error {
	return t.event(dfms.TopicFiles, strconv.FormatInt(int64(c.Entry), 10), dfms.ChangeEvent(c.Op, c.Version),
		dfms.FileEvent{Owner: c.Owner, Entry: c.Entry, Parent: c.Parent, Version: abs(c.Version), Origin: c.Origin})
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// movedFrom records the old parent of entry's move in the move's event,
// the transaction's latest entry.renamed of entry.
func (t *tx) movedFrom(entry, parent dfms.EntryID) error {
	key := strconv.FormatInt(int64(entry), 10)
	i := len(t.events) - 1
	for i >= 0 && (t.events[i].Key != key || t.events[i].Type != dfms.EventEntryRenamed) {
		i--
	}
	if i < 0 {
		return fmt.Errorf("no entry.renamed event of entry %d to complete", entry)
	}
	last := &t.events[i]
	var fe dfms.FileEvent
	if err := json.Unmarshal(last.Data, &fe); err != nil {
		return err
	}
	fe.OldParent = parent
	b, err := json.Marshal(fe)
	last.Data = b
	return err
}

// chunkEvent adds a TopicChunks event.
func (t *tx) chunkEvent(typ string, h dfms.Hash, size int64) error {
	return t.event(dfms.TopicChunks, h.String(), typ, dfms.ChunkEvent{Hash: h.String(), Size: size})
}

// nodeEvent adds a TopicNodes event.
func (t *tx) nodeEvent(typ string, e dfms.NodeEvent) error {
	return t.event(dfms.TopicNodes, e.ID, typ, e)
}

// undoMark is how many change rows and events a transaction had gathered
// at a savepoint: rolling back to it drops those gathered since.
type undoMark struct{ changes, events int }

func (t *tx) mark() undoMark { return undoMark{len(t.changes), len(t.events)} }

func (t *tx) undo(m undoMark) {
	t.changes = t.changes[:m.changes]
	t.events = t.events[:m.events]
}

// flushEvents writes the transaction's events (flushJournal).
func (t *tx) flushEvents(ctx context.Context) error {
	const cols = 5
	for part := range slices.Chunk(t.events, batch/cols) {
		args := make([]any, 0, cols*len(part))
		for _, e := range part {
			args = append(args, e.Topic, e.Key, e.Type, []byte(e.Data), ns(t.now))
		}
		if _, err := t.exec(ctx, `INSERT INTO outbox (topic, key, type, payload, at) VALUES (?, ?, ?, ?, ?)`+
			strings.Repeat(", (?, ?, ?, ?, ?)", len(part)-1), args...); err != nil {
			return err
		}
	}
	t.events = nil
	return nil
}

// PendingEvents implements meta.Outbox.
func (s *Store) PendingEvents(ctx context.Context, limit int) ([]dfms.Event, error) {
	var out []dfms.Event
	err := s.readOne(ctx, "meta.PendingEvents", func(t *tx) error {
		rows, err := t.query(ctx, `SELECT seq, topic, key, type, payload, at FROM outbox ORDER BY seq LIMIT ?`, limit)
		out, err = scanAll(rows, err, func(r row) (dfms.Event, error) {
			var e dfms.Event
			var payload []byte
			var at int64
			err := r.Scan(&e.ID, &e.Topic, &e.Key, &e.Type, &payload, &at)
			e.Data, e.At = payload, fromNS(at)
			return e, err
		})
		return err
	})
	return out, err
}

// DeleteEvents implements meta.Outbox.
func (s *Store) DeleteEvents(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return s.write(ctx, "meta.DeleteEvents", func(t *tx) error {
		for part := range slices.Chunk(ids, batch) {
			args := make([]any, len(part))
			for i, id := range part {
				args[i] = id
			}
			if _, err := t.exec(ctx, `DELETE FROM outbox WHERE seq IN (?`+strings.Repeat(", ?", len(part)-1)+`)`, args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// AppendEvents implements meta.Outbox.
func (s *Store) AppendEvents(ctx context.Context, evs []dfms.Event) error {
	const op dfms.Op = "meta.AppendEvents"
	for _, e := range evs {
		if e.Topic == "" || e.Type == "" || !json.Valid(e.Data) {
			return dfms.Errorf(op, dfms.Invalid, "an event needs a topic, a type and JSON data")
		}
	}
	return s.write(ctx, op, func(t *tx) error {
		for _, e := range evs {
			t.events = append(t.events, dfms.Event{Topic: e.Topic, Key: e.Key, Type: e.Type, Data: e.Data})
		}
		return nil
	})
}

// OutboxBacklog implements meta.Outbox.
func (s *Store) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	var n, oldest int64
	err := s.readOne(ctx, "meta.OutboxBacklog", func(t *tx) error {
		return t.queryRow(ctx, `SELECT COUNT(*), COALESCE(MIN(at), 0) FROM outbox`).Scan(&n, &oldest)
	})
	if n == 0 {
		return 0, time.Time{}, err
	}
	return n, fromNS(oldest), err
}
