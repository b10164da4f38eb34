package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server"
	"github.com/dfms/dfms/server/chunkservice"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/server/ops"
)

func newChunkServiceCmd() *cobra.Command {
	cmd := configCommand("chunk-service",
		"Serve the chunk store (chunks.url: file:// or s3://, or the cluster of storage.nodes) over gRPC, to servers whose chunks.url is grpc://",
		func(cmd *cobra.Command, cfg server.Config) error {
			return runChunkService(cmd.Context(), cfg, newLogger(cmd, cfg))
		},
		(*configOptions).addChunkServiceFlags)
	// It reads the server's configuration file, but these are not its
	// business (the metadata store is, with storage.nodes); they stay accepted, so that one command line fits both.
	for _, f := range []string{"addr", "metrics-addr", "trusted-proxies", "chunking-algorithm"} {
		cmd.Flags().MarkHidden(f)
	}
	return cmd
}

// runChunkService serves the chunk store of cfg on chunk_service.listen
// until ctx ends (SIGINT, SIGTERM), then stops gracefully.
func runChunkService(ctx context.Context, cfg server.Config, log *slog.Logger) error {
	const op dfms.Op = "main.runChunkService"
	cs := cfg.ChunkService
	var opts []grpc.ServerOption
	if cs.TLSCert != "" {
		tc, err := chunkservice.TLSConfig(cs.TLSCert, cs.TLSKey, cs.ClientCA)
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(grpccreds.NewTLS(tc)))
	}
	// A cluster's chunk service records copies and node states in the
	// metadata store, and keeps the cluster whole (health monitor,
	// replication manager; several services share that work by locks).
	var m meta.Store
	if len(cfg.Storage.Nodes) > 0 {
		var err error
		if m, err = server.OpenMeta(ctx, cfg.Metadata.URL); err != nil {
			return err
		}
		defer m.Close()
	}
	chunks, err := server.OpenChunks(ctx, &cfg, m, log)
	if err != nil {
		return err
	}
	defer chunks.Close()
	// Its replication manager repairs the bad copies that reads met in
	// any process, which reach it as events through Kafka.
	if m != nil && len(cfg.Events.Brokers) > 0 {
		bus, err := server.OpenBus(&cfg, log)
		if err != nil {
			return err
		}
		defer bus.Close()
		chunks.Events = bus
	}
	bg, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { chunks.Run(bg); close(done) }()
	defer func() { stop(); <-done }()
	ln, err := net.Listen("tcp", cs.Listen)
	if err != nil {
		return dfms.E(op, dfms.Unavailable, err)
	}
	if cs.ClientCA == "" && !isLoopback(ln.Addr()) {
		log.Warn("the chunk service requires no client certificate: anyone who reaches it may read, write and delete chunks (set chunk_service.client_ca)",
			"addr", ln.Addr().String())
	}
	// /health, /ready and /metrics on an HTTP address of their own.
	oln, err := net.Listen("tcp", cs.OpsAddr)
	if err != nil {
		ln.Close()
		return dfms.E(op, dfms.Unavailable, fmt.Errorf("chunk_service.ops_addr: %w", err))
	}
	ready := map[string]ops.Check{"chunks": chunks.Ready}
	if m != nil {
		ready["metadata"] = m.Ping
	}
	e := &ops.Endpoints{Role: "chunk-service", Version: server.Version, Ready: ready, Registry: ops.NewRegistry(append(chunks.Metrics(), ops.BuildInfo("chunk-service", server.Version))...)}
	octx, stopOps := context.WithCancel(ctx)
	opsDone := make(chan error, 1)
	go func() { opsDone <- ops.Serve(octx, oln, e.Handler(), log) }()
	defer func() { stopOps(); <-opsDone }()
	log.Info("chunk service", "chunks", chunks.String(), "tls", cs.TLSCert != "", "client_certificates", cs.ClientCA != "",
		"ops_addr", oln.Addr().String())
	svc := chunkservice.New(chunks.Store, chunkservice.Options{MaxChunkSize: cfg.Chunking.MaxSize, ShutdownTimeout: cfg.ShutdownTimeout, Log: log})
	return svc.Serve(ctx, ln, opts...)
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
