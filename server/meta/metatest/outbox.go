package metatest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/integration/testkit"
	"github.com/dfms/dfms/server/meta"
)

// drainOutbox deletes every pending event and returns the highest ID seen.
func drainOutbox(t *testing.T, s meta.Store) int64 {
	t.Helper()
	var last int64
	for {
		evs := testkit.Must(s.PendingEvents(ctx, 1000))(t)
		if len(evs) == 0 {
			return last
		}
		ids := make([]int64, len(evs))
		for i, e := range evs {
			ids[i] = e.ID
			last = max(last, e.ID)
		}
		ok(t, s.DeleteEvents(ctx, ids))
	}
}

// pending returns every pending event, checking their order and fields.
func pending(t *testing.T, s meta.Store) []dfms.Event {
	t.Helper()
	evs := testkit.Must(s.PendingEvents(ctx, 10000))(t)
	for i, e := range evs {
		if i > 0 && e.ID <= evs[i-1].ID {
			t.Fatalf("events out of ID order: %d after %d", e.ID, evs[i-1].ID)
		}
		if e.At.IsZero() || e.Topic == "" || e.Type == "" || !json.Valid(e.Data) {
			t.Fatalf("event %+v", e)
		}
	}
	return evs
}

// summary is "topic type key" for each event.
func summary(evs []dfms.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%s %s %s", e.Topic, e.Type, e.Key)
	}
	return out
}

func wantEvents(t *testing.T, what string, got []dfms.Event, want ...string) {
	t.Helper()
	if g := summary(got); !slices.Equal(g, want) {
		t.Fatalf("%s: events\n%v\nwant\n%v", what, g, want)
	}
}

// Every transaction that changes the tree, a chunk's existence, a user or
// a node writes its events with it; a failed one writes none.
func testOutbox(t *testing.T, s meta.Store) {
	drainOutbox(t, s)
	u := newUser(t, s)
	uid := strconv.FormatInt(int64(u.ID), 10)
	wantEvents(t, "create user", pending(t, s), "dfms.users user.created "+uid)
	drainOutbox(t, s)

	key := func(id dfms.EntryID) string { return strconv.FormatInt(int64(id), 10) }
	c := chunk("outbox-1", 5)
	m := manifest(t, s, c)
	wantEvents(t, "store a chunk", pending(t, s), "dfms.chunks chunk.created "+c.Hash.String())
	storeChunks(t, s, []dfms.ChunkRef{c}) // stored again: no event
	d := mkdir(t, s, u.ID, u.Root, "d")
	f, v := commit(t, s, u.ID, d.ID, "f", m)
	must2(t)(s.Rename(ctx, u.ID, f.ID, u.Root, "g", false))
	ok(t, s.Trash(ctx, u.ID, f.ID))
	testkit.Must(s.Restore(ctx, u.ID, f.ID))(t)
	evs := pending(t, s)
	wantEvents(t, "tree changes", evs,
		"dfms.chunks chunk.created "+c.Hash.String(),
		"dfms.files entry.created "+key(d.ID),
		"dfms.files entry.created "+key(f.ID),
		"dfms.files version.committed "+key(f.ID),
		"dfms.files entry.renamed "+key(f.ID), // one event for the move, naming both parents
		"dfms.files entry.deleted "+key(f.ID),
		"dfms.files entry.restored "+key(f.ID))
	var fe dfms.FileEvent
	ok(t, json.Unmarshal(evs[3].Data, &fe))
	if fe.Owner != u.ID || fe.Entry != f.ID || fe.Parent != d.ID || fe.Version != v.ID {
		t.Fatalf("version.committed = %+v, want owner %d entry %d parent %d version %d", fe, u.ID, f.ID, d.ID, v.ID)
	}
	var moved dfms.FileEvent
	ok(t, json.Unmarshal(evs[4].Data, &moved))
	if moved.Parent != u.Root || moved.OldParent != d.ID {
		t.Fatalf("entry.renamed = %+v, want parent %d (new), old_parent %d", moved, u.Root, d.ID)
	}
	var ce dfms.ChunkEvent
	ok(t, json.Unmarshal(evs[0].Data, &ce))
	if ce.Hash != c.Hash.String() || ce.Size != 5 {
		t.Fatalf("chunk.created = %+v", ce)
	}
	last := drainOutbox(t, s)

	// A batch commit: the events of the items that failed are not written.
	res := testkit.Must(s.CommitVersions(ctx, []meta.CommitRequest{
		{Owner: u.ID, Entry: f.ID, Manifest: m},
		{Owner: u.ID, Entry: f.ID, Manifest: dfms.Manifest{Chunks: []dfms.ChunkRef{chunk("outbox-ghost", 3)}}},
		{Owner: u.ID, Entry: d.ID, Manifest: m},
	}))(t)
	if res[0].Err != nil || res[1].Err == nil || res[2].Err == nil {
		t.Fatalf("batch results %v %v %v", res[0].Err, res[1].Err, res[2].Err)
	}
	evs = pending(t, s)
	wantEvents(t, "batch commit", evs, "dfms.files version.committed "+key(f.ID))
	if evs[0].ID <= last {
		t.Fatalf("event ID %d reused (after %d)", evs[0].ID, last)
	}
	// A failed transaction writes nothing.
	if _, err := s.CreateEntry(ctx, dfms.Entry{Owner: u.ID, Parent: u.Root, Name: "d", Kind: dfms.KindDir, Mode: 0o755}); !dfms.Is(err, dfms.Exist) {
		t.Fatalf("mkdir over a name: %v", err)
	}
	wantEvents(t, "failed mkdir", pending(t, s), "dfms.files version.committed "+key(f.ID))
	drainOutbox(t, s)

	// Nodes: added, changed; a state set to what it is writes nothing.
	n := dfms.StorageNode{ID: "outbox-node", URL: "file:///tmp/outbox-node", Weight: 100}
	ok(t, s.AddNode(ctx, n))
	ok(t, s.PutNode(ctx, n)) // unchanged
	testkit.Must(s.SetNodeState(ctx, n.ID, dfms.NodeUp, 0, time.Now()))(t)
	testkit.Must(s.SetNodeState(ctx, n.ID, dfms.NodeSuspect, 1, time.Now()))(t)
	testkit.Must(s.SetNodeState(ctx, n.ID, dfms.NodeSuspect, 2, time.Now()))(t)
	testkit.Must(s.SetNodeDraining(ctx, n.ID, true))(t)
	ok(t, s.RemoveNode(ctx, n.ID))
	evs = pending(t, s)
	wantEvents(t, "nodes", evs,
		"dfms.nodes node.added outbox-node",
		"dfms.nodes node.state outbox-node",
		"dfms.nodes node.changed outbox-node",
		"dfms.nodes node.removed outbox-node")
	var ne dfms.NodeEvent
	ok(t, json.Unmarshal(evs[1].Data, &ne))
	if ne.State != dfms.NodeSuspect || ne.Previous != dfms.NodeUp {
		t.Fatalf("node.state = %+v", ne)
	}
	drainOutbox(t, s)

	// Garbage collection announces only chunks that were stored: not a
	// reservation whose write died, nor an orphan's bytes.
	fence, unlock, err := s.Lock(ctx, "outbox-gc")
	ok(t, err)
	defer unlock()
	reserved, stored, orphan := chunk("outbox-reserved", 4), chunk("outbox-stored", 6), chunk("outbox-orphan", 3)
	ok(t, s.ReserveChunks(ctx, []dfms.ChunkRef{reserved}))
	storeChunks(t, s, []dfms.ChunkRef{stored})
	drainOutbox(t, s)
	future := time.Now().Add(time.Hour)
	for _, c := range []dfms.ChunkRef{reserved, stored} {
		if !testkit.Must(s.BeginDelete(ctx, fence, c.Hash, future, future))(t) {
			t.Fatalf("BeginDelete of %s refused", c.Hash)
		}
		ok(t, s.FinishDelete(ctx, fence, c.Hash))
	}
	if !testkit.Must(s.ClaimOrphan(ctx, fence, orphan.Hash, 3))(t) {
		t.Fatal("ClaimOrphan refused")
	}
	ok(t, s.FinishDelete(ctx, fence, orphan.Hash))
	wantEvents(t, "collection", pending(t, s), "dfms.chunks chunk.deleted "+stored.Hash.String())
	drainOutbox(t, s)

	// Events appended on their own, and the backlog.
	if err := s.AppendEvents(ctx, []dfms.Event{{Topic: dfms.TopicRepair, Type: dfms.EventRepairNeeded, Data: json.RawMessage("{")}}); !dfms.Is(err, dfms.Invalid) {
		t.Fatalf("AppendEvents with bad JSON: %v", err)
	}
	if n, _, err := s.OutboxBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("backlog %d, %v; want 0", n, err)
	}
	ok(t, s.AppendEvents(ctx, []dfms.Event{
		{Topic: dfms.TopicRepair, Key: "k1", Type: dfms.EventRepairNeeded, Data: json.RawMessage(`{"hash":"k1"}`)},
		{Topic: dfms.TopicRepair, Key: "k2", Type: dfms.EventRepairNeeded, Data: json.RawMessage(`{"hash":"k2"}`)},
	}))
	evs = pending(t, s)
	wantEvents(t, "appended", evs, "dfms.repair repair.needed k1", "dfms.repair repair.needed k2")
	if n, oldest, err := s.OutboxBacklog(ctx); err != nil || n != 2 || oldest.IsZero() {
		t.Fatalf("backlog %d %v, %v; want 2", n, oldest, err)
	}
	ok(t, s.DeleteEvents(ctx, []int64{evs[0].ID}))
	wantEvents(t, "after a delete", pending(t, s), "dfms.repair repair.needed k2")
	drainOutbox(t, s)
}
