package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms/server"
)

func newServerCmd() *cobra.Command {
	var o configOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the DFMS server (embedded SQLite + local disk unless configured otherwise)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.load(os.Getenv)
			if err != nil {
				return err
			}
			log := newLogger(cmd, cfg)
			srv, err := server.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
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
