package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newMvCmd() *cobra.Command {
	var o clientOptions
	return o.command(&cobra.Command{
		Use:   "mv SRC DST",
		Short: "Rename or move a remote file or folder (into DST if it is a folder)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, src, e, err := o.resolveNotRoot(ctx, args[0], "moved")
			if err != nil {
				return err
			}
			parent, name, to, err := destination(ctx, s.c, args[1], e.Name)
			if err != nil {
				return err
			}
			if _, err := s.c.Move(ctx, e.ID, parent, name); err != nil {
				return fail(src+" -> "+to, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "moved %s -> %s\n", src, to)
			return nil
		},
	})
}
