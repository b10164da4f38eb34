package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server"
	"github.com/dfms/dfms/server/chunkservice"
)

func newChunkServiceCmd() *cobra.Command {
	cmd := configCommand("chunk-service",
		"Serve this node's chunk store (chunks.url: file:// or s3://) over gRPC, to servers whose chunks.url is grpc://",
		func(cmd *cobra.Command, cfg server.Config) error {
			return runChunkService(cmd.Context(), cfg, newLogger(cmd, cfg))
		},
		(*configOptions).addChunkServiceFlags)
	// It reads the server's configuration file, but these are not its
	// business; they stay accepted, so that one command line fits both.
	for _, f := range []string{"addr", "metadata", "metrics-addr", "trusted-proxies", "chunking-algorithm"} {
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
	st, err := server.OpenChunkStore(ctx, &cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", cs.Listen)
	if err != nil {
		return dfms.E(op, dfms.Unavailable, err)
	}
	if cs.ClientCA == "" && !isLoopback(ln.Addr()) {
		log.Warn("the chunk service requires no client certificate: anyone who reaches it may read, write and delete chunks (set chunk_service.client_ca)",
			"addr", ln.Addr().String())
	}
	log.Info("chunk service", "chunks", dfms.RedactURL(cfg.Chunks.URL), "tls", cs.TLSCert != "", "client_certificates", cs.ClientCA != "")
	svc := chunkservice.New(st, chunkservice.Options{MaxChunkSize: cfg.Chunking.MaxSize, ShutdownTimeout: cfg.ShutdownTimeout, Log: log})
	return svc.Serve(ctx, ln, opts...)
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
