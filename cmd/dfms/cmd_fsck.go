package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server"
	"github.com/dfms/dfms/server/meta"
	"github.com/dfms/dfms/workers/fsck"
)

// fsckDamage is the error of a check that found damage (exit code 1).
type fsckDamage struct{ d fsck.Damage }

func (e fsckDamage) Error() string {
	return fmt.Sprintf("fsck found %d damaged things, %d repaired, %d not", e.d.Total(), e.d.Repaired, e.d.Unrepaired)
}

// passTitles describe the passes of a check on its progress bar.
var passTitles = map[string]string{
	"copies":     "checking chunk copies",
	"manifests":  "checking manifests",
	"references": "counting references",
	"files":      "checking files",
}

func newFsckCmd() *cobra.Command {
	var repair, asJSON, forceProgress bool
	cmd := configCommand("fsck",
		"Check that the metadata store and the chunk stores agree (manifests, copies, reference counts, files); --repair fixes what it can. Exit code 1 on damage",
		func(cmd *cobra.Command, cfg server.Config) error {
			ctx := cmd.Context()
			m, err := server.OpenMeta(ctx, cfg.Metadata.URL)
			if err != nil {
				return err
			}
			defer m.Close()
			checker, isChecker := m.(fsck.Meta)
			if !isChecker {
				return dfms.Errorf("main.fsck", dfms.Invalid, "this metadata store cannot be checked")
			}
			// A single store is opened without the metadata store; a
			// cluster's nodes are registered in it, as the server does.
			var nodes meta.Store
			if len(cfg.Storage.Nodes) > 0 {
				nodes = m
			}
			chunks, err := server.OpenChunks(ctx, &cfg, nodes, newLogger(cmd, cfg))
			if err != nil {
				return err
			}
			defer chunks.Close()
			c := fsck.Checker{Meta: checker, Store: chunks.Store, Repair: repair}
			if cl, isCluster := chunks.Store.(fsck.Nodes); isCluster {
				c.Nodes = cl
			}
			bar := &progress{}
			var pass string
			c.Progress = func(p string, done, total int64) {
				if p != pass {
					bar.done(nil)
					pass, bar = p, newProgress(forceProgress, cmd.ErrOrStderr(), total, passTitles[p])
				}
				bar.set(done)
			}
			rep, err := c.Run(ctx)
			bar.done(err)
			if rep != nil {
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					if jerr := enc.Encode(rep); jerr != nil && err == nil {
						err = jerr
					}
				} else if werr := rep.WriteText(cmd.OutOrStdout()); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return fmt.Errorf("fsck could not finish: %w", err)
			}
			if !rep.Clean {
				return fsckDamage{rep.Damage}
			}
			return nil
		})
	fs := cmd.Flags()
	fs.BoolVar(&repair, "repair", false, "repair what can be repaired: bad chunk copies (from a good copy) and reference counts")
	fs.BoolVar(&asJSON, "json", false, "print the report as one JSON document")
	addProgressFlag(fs, &forceProgress)
	// It reads the server's configuration, but serves nothing.
	for _, f := range []string{"addr", "metrics-addr", "trusted-proxies"} {
		if fs.Lookup(f) != nil {
			fs.MarkHidden(f)
		}
	}
	return cmd
}
