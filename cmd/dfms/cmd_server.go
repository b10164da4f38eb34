package main

import (
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms/server"
)

func newServerCmd() *cobra.Command {
	return configCommand("server", "Run the DFMS server (embedded SQLite + local disk unless configured otherwise)",
		func(cmd *cobra.Command, cfg server.Config) error {
			srv, err := server.New(cmd.Context(), cfg, newLogger(cmd, cfg))
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		})
}

func newLogger(cmd *cobra.Command, cfg server.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.Log.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), opts))
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), opts))
}
