package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRmCmd() *cobra.Command {
	var o clientOptions
	return o.command(&cobra.Command{
		Use:   "rm PATH",
		Short: "Move a remote file or folder (with its contents) to the trash",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, p, e, err := o.resolveNotRoot(ctx, args[0], "removed")
			if err != nil {
				return err
			}
			if err := s.c.Delete(ctx, e.ID); err != nil {
				return fail(p, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "moved %s to the trash\n", p)
			return nil
		},
	})
}
