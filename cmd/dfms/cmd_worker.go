package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms/server"
)

// newWorkerCmd is `dfms worker KIND`: one subcommand per kind of worker
// (server.WorkerKinds), each with the configuration flags.
func newWorkerCmd() *cobra.Command {
	var kinds []string
	for _, k := range server.WorkerKinds() {
		kinds = append(kinds, fmt.Sprintf("  %-12s %s (default --addr %s)", k.Name, k.Short, k.Addr))
	}
	cmd := &cobra.Command{
		Use:   "worker KIND",
		Short: "Run one kind of background work as a process of its own",
		Long: "Run one kind of the background work that dfms server does, as a process of its own, with\n" +
			"/health, /ready and /metrics on --addr. Several workers of one kind share the work.\n\nKinds:\n" +
			strings.Join(kinds, "\n"),
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("dfms worker needs a kind: %s", kindNames())}
			}
			return usageError{fmt.Errorf("unknown worker %q: want one of %s", args[0], kindNames())}
		},
		RunE: func(*cobra.Command, []string) error { return nil }, // Args always fails
	}
	for _, k := range server.WorkerKinds() {
		cmd.AddCommand(configCommand(k.Name, k.Short, func(cmd *cobra.Command, cfg server.Config) error {
			w, err := server.NewWorker(cmd.Context(), k.Name, cfg, newLogger(cmd, cfg))
			if err != nil {
				return err
			}
			return w.Run(cmd.Context())
		}, (*configOptions).addWorkerFlags))
	}
	return cmd
}

func kindNames() string {
	var names []string
	for _, k := range server.WorkerKinds() {
		names = append(names, k.Name)
	}
	return strings.Join(names, ", ")
}
