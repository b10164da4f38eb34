package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/placement/store"
	"github.com/dfms/dfms/server/events"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/ops"
	"github.com/dfms/dfms/workers/gc"
)

// WorkerKind is one kind of `dfms worker`: a piece of the background work
// of `dfms server` run as a process of its own. Several workers of one
// kind may run at once: they share the work through the metadata store's
// locks (the GC sweep's is fenced: see package workers/gc).
type WorkerKind struct {
	Name  string // the command's argument: gc, replication, health
	Short string // one line for the help
	// Addr is the default of worker.addr for this kind.
	Addr string
	// open opens what the kind needs in w (w.meta is open) and sets its
	// job, readiness checks and metrics.
	open func(ctx context.Context, w *Worker) error
}

// workerKinds is every kind of worker. A new kind is one entry here (and
// its own default address).
var workerKinds = []WorkerKind{
	{Name: "gc", Addr: "127.0.0.1:9093",
		Short: "collect garbage every gc.interval: unreferenced chunks, orphans, expired uploads, stale temporary files",
		open:  openGCWorker},
	{Name: "replication", Addr: "127.0.0.1:9094",
		Short: "keep every chunk at storage.replicas copies on its owners, and scrub copies (storage.nodes)",
		open:  openReplicationWorker},
	{Name: "health", Addr: "127.0.0.1:9095",
		Short: "probe the storage nodes and mark them up or down (storage.nodes)",
		open:  openHealthWorker},
	{Name: "relay", Addr: "127.0.0.1:9096",
		Short: "publish the outbox's events to the event bus (events.brokers)",
		open:  openRelayWorker},
}

// WorkerKinds lists the kinds of worker.
func WorkerKinds() []WorkerKind { return append([]WorkerKind(nil), workerKinds...) }

// Worker is a running `dfms worker`: one kind of background job, with
// /health, /ready and /metrics on worker.addr.
type Worker struct {
	kind   WorkerKind
	cfg    Config
	log    *slog.Logger // with the worker's kind
	base   *slog.Logger // without: the cluster's parts add their own
	meta   meta.Store
	chunks *Chunks         // kept by this process; nil if none or a chunk service's
	remote dfms.ChunkStore // a chunk service's client, or nil
	bus    events.Bus      // the replication worker's, with events.brokers; or nil
	job    func(context.Context)
	ready  map[string]ops.Check
	more   []prometheus.Collector
}

// NewWorker opens the backends that a worker of the named kind needs and
// builds it. An unknown kind, or a configuration that the kind cannot
// work with, fails with kind Invalid. Close releases the backends if Run
// is not called.
func NewWorker(ctx context.Context, kind string, cfg Config, log *slog.Logger) (_ *Worker, err error) {
	const op dfms.Op = "server.NewWorker"
	var k *WorkerKind
	for i := range workerKinds {
		if workerKinds[i].Name == kind {
			k = &workerKinds[i]
		}
	}
	if k == nil {
		var names []string
		for _, k := range workerKinds {
			names = append(names, k.Name)
		}
		return nil, dfms.E(op, dfms.Invalid, fmt.Errorf("unknown worker %q: want one of %v", kind, names))
	}
	cfg.Defaults()
	if cfg.Worker.Addr == "" {
		cfg.Worker.Addr = k.Addr
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Worker{kind: *k, cfg: cfg, log: log.With("worker", k.Name), base: log, ready: map[string]ops.Check{}}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	m, err := OpenMeta(ctx, cfg.Metadata.URL)
	if err != nil {
		return nil, backendError("metadata", cfg.Metadata.URL, err)
	}
	w.meta = m
	w.ready["metadata"] = m.Ping
	if err := k.open(ctx, w); err != nil {
		return nil, err
	}
	return w, nil
}

// needNodes fails unless the configuration has storage nodes.
func (w *Worker) needNodes() error {
	if len(w.cfg.Storage.Nodes) == 0 {
		return dfms.E("server.NewWorker", dfms.Invalid,
			fmt.Errorf("dfms worker %s works on a cluster: configure storage.nodes", w.kind.Name))
	}
	return nil
}

// openLocal opens the chunk store this process keeps itself (OpenChunks).
func (w *Worker) openLocal(ctx context.Context) error {
	c, err := OpenChunks(ctx, &w.cfg, w.meta, w.base)
	if err != nil {
		return err
	}
	w.chunks = c
	w.ready["chunks"] = c.Ready
	return nil
}

func openGCWorker(ctx context.Context, w *Worker) error {
	if w.cfg.GC.Interval <= 0 {
		return dfms.E("server.NewWorker", dfms.Invalid, errors.New("dfms worker gc needs a positive gc.interval"))
	}
	chunks, err := w.openAnyChunks(ctx)
	if err != nil {
		return err
	}
	c := &gc.Collector{Meta: w.meta, Chunks: chunks, Grace: w.cfg.GC.Grace, Lease: w.cfg.GC.Lease, Log: w.log}
	w.more = c.Metrics()
	w.job = func(ctx context.Context) {
		var wg sync.WaitGroup
		if w.chunks != nil {
			wg.Go(func() { w.chunks.Follow(ctx) })
		}
		wg.Go(func() { collectEvery(ctx, c, w.cfg.GC.Interval, w.log) })
		wg.Wait()
	}
	return nil
}

// openAnyChunks opens the chunk store of the configuration: a chunk
// service's client for a grpc:// chunks.url, otherwise the store this
// process keeps itself (openLocal).
func (w *Worker) openAnyChunks(ctx context.Context) (dfms.ChunkStore, error) {
	if !isChunkServiceURL(w.cfg.Chunks.URL) {
		if err := w.openLocal(ctx); err != nil {
			return nil, err
		}
		return w.chunks.Store, nil
	}
	st, err := store.Open(ctx, w.cfg.Chunks.URL)
	if err != nil {
		return nil, backendError("chunk service", w.cfg.Chunks.URL, err)
	}
	w.remote = st
	w.ready["chunks"] = func(ctx context.Context) error {
		if _, err := st.Stat(ctx, dfms.Hash{}); err != nil && !dfms.Is(err, dfms.NotExist) {
			return err
		}
		return nil
	}
	return st, nil
}

// Collector is a garbage collector on the backends of a configuration,
// for one collection now (`dfms gc`). Close releases the backends.
type Collector struct {
	*gc.Collector
	w *Worker
}

// OpenCollector opens the metadata and chunk stores of cfg and returns
// a collector over them.
func OpenCollector(ctx context.Context, cfg Config, log *slog.Logger) (_ *Collector, err error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Worker{kind: WorkerKind{Name: "gc"}, cfg: cfg, log: log, base: log, ready: map[string]ops.Check{}}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if w.meta, err = OpenMeta(ctx, cfg.Metadata.URL); err != nil {
		w.meta = nil
		return nil, backendError("metadata", cfg.Metadata.URL, err)
	}
	chunks, err := w.openAnyChunks(ctx)
	if err != nil {
		return nil, err
	}
	return &Collector{Collector: &gc.Collector{Meta: w.meta, Chunks: chunks, Grace: cfg.GC.Grace, Lease: cfg.GC.Lease, Log: log}, w: w}, nil
}

// Close releases the backends.
func (c *Collector) Close() error { return c.w.Close() }

func openReplicationWorker(ctx context.Context, w *Worker) error {
	if err := w.needNodes(); err != nil {
		return err
	}
	if err := w.openLocal(ctx); err != nil {
		return err
	}
	// Bad copies that reads met in any process reach it as repair
	// events through Kafka (an in-process bus crosses no process: then
	// the passes and the scrubber find them).
	if len(w.cfg.Events.Brokers) > 0 {
		bus, err := OpenBus(&w.cfg, w.base)
		if err != nil {
			return err
		}
		w.bus = bus
		w.chunks.Events = bus
	}
	w.more = w.chunks.RepairMetrics()
	w.job = func(ctx context.Context) { w.chunks.Follow(ctx, w.chunks.RunRepair) }
	return nil
}

func openHealthWorker(ctx context.Context, w *Worker) error {
	if err := w.needNodes(); err != nil {
		return err
	}
	if err := w.openLocal(ctx); err != nil {
		return err
	}
	// The monitor probes the nodes: a node that does not answer is its
	// finding, not a reason for it to be unready.
	delete(w.ready, "chunks")
	w.more = w.chunks.HealthMetrics()
	w.job = func(ctx context.Context) { w.chunks.Follow(ctx, w.chunks.RunHealth) }
	return nil
}

func openRelayWorker(ctx context.Context, w *Worker) error {
	// An in-process bus would take the events to no one: a relay of its
	// own is for Kafka.
	if len(w.cfg.Events.Brokers) == 0 {
		return dfms.E("server.NewWorker", dfms.Invalid,
			errors.New("dfms worker relay publishes to Kafka: configure events.brokers"))
	}
	bus, err := OpenBus(&w.cfg, w.base)
	if err != nil {
		return err
	}
	w.bus = bus
	r := NewRelay(&w.cfg, w.meta, bus, w.log)
	w.more = r.Metrics()
	w.job = r.Run
	return nil
}

// Run listens on worker.addr and runs the worker until ctx ends, then
// stops its job and closes the backends.
func (w *Worker) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", w.cfg.Worker.Addr)
	if err != nil {
		w.Close()
		return dfms.E("server.Worker.Run", dfms.Unavailable, fmt.Errorf("worker.addr: %w", err))
	}
	return w.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (w *Worker) Serve(ctx context.Context, ln net.Listener) error {
	defer w.Close()
	role := "worker " + w.kind.Name
	e := &ops.Endpoints{Role: role, Version: Version, Ready: w.ready,
		Registry: ops.NewRegistry(append(w.more, ops.BuildInfo(role, Version))...)}
	w.log.Info("dfms worker running", "kind", w.kind.Name, "addr", ln.Addr().String(), "version", Version,
		"metadata", dfms.RedactURL(w.cfg.Metadata.URL))
	jctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.job(jctx) }()
	err := ops.Serve(ctx, ln, e.Handler(), w.log)
	stop()
	<-done
	if err != nil {
		return dfms.E("server.Worker.Serve", dfms.Other, err)
	}
	w.log.Info("stopped")
	return nil
}

// Close releases the backends.
func (w *Worker) Close() error {
	var errs []error
	for _, c := range []interface{ Close() error }{w.bus, w.remote, w.meta} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	if w.chunks != nil {
		errs = append(errs, w.chunks.Close())
	}
	return errors.Join(errs...)
}
