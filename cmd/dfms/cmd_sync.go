package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newSyncCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sync DIR...",
		Short: "Wait until every file written in the mount holding DIR is on the server",
		Long: `Commit every changed file of the DFMS mount holding each DIR, and wait for it:
files closed a moment ago (close returns before their commit, which runs in
the background) and files still open alike. It is fsync(2) of the directory,
which a program can call itself; sync(1) does not reach FUSE mounts.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, dir := range args {
				d, err := os.Open(dir)
				if err != nil {
					return err
				}
				err = d.Sync()
				d.Close()
				if err != nil {
					return fmt.Errorf("sync %s: %w", dir, err)
				}
			}
			return nil
		},
	}
}
