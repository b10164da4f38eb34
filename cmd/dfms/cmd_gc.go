package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dfms/dfms/server"
	"github.com/dfms/dfms/workers/gc"
)

// gcOptions are the flags of `dfms gc`.
type gcOptions struct {
	dryRun, json bool
}

func newGCCmd() *cobra.Command {
	var o gcOptions
	cmd := configCommand("gc",
		"Collect garbage once, now (unreferenced chunks, orphans, expired uploads, temporary files); --dry-run only reports it",
		func(cmd *cobra.Command, cfg server.Config) error {
			c, err := server.OpenCollector(cmd.Context(), cfg, newLogger(cmd, cfg))
			if err != nil {
				return err
			}
			defer c.Close()
			var st gc.Stats
			if o.dryRun {
				st, err = c.DryRun(cmd.Context())
			} else {
				st, err = c.Run(cmd.Context())
			}
			if err != nil {
				return err
			}
			return printGC(cmd.OutOrStdout(), st, o)
		},
		func(_ *configOptions, fs *pflag.FlagSet) {
			fs.BoolVar(&o.dryRun, "dry-run", false, "report what a collection would delete, and delete nothing")
			fs.BoolVar(&o.json, "json", false, "print the result as JSON")
		})
	// A collection has no HTTP address of its own.
	for _, f := range []string{"addr", "metrics-addr", "trusted-proxies", "chunking-algorithm"} {
		cmd.Flags().MarkHidden(f)
	}
	return cmd
}

// printGC prints what a collection deleted (or would delete).
func printGC(w io.Writer, st gc.Stats, o gcOptions) error {
	if o.json {
		return json.NewEncoder(w).Encode(struct {
			DryRun bool `json:"dry_run"`
			gc.Stats
		}{o.dryRun, st})
	}
	verb := "deleted"
	if o.dryRun {
		verb = "would delete"
	}
	_, err := fmt.Fprintf(w, "%s:\n  %d unreferenced chunks (%s)\n  %d orphaned chunks (%s)\n  %d expired uploads\n  %d temporary files\n",
		verb, st.Chunks, humanSize(st.Bytes), st.Orphans, humanSize(st.OrphanBytes), st.ExpiredUploads, st.TempFiles)
	return err
}
