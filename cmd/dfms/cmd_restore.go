package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newRestoreCmd() *cobra.Command {
	var o clientOptions
	var version int64
	cmd := o.command(&cobra.Command{
		Use:   "restore PATH --version N",
		Short: "Make a copy of version N the current version of a remote file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 1 {
				return usageError{errors.New("--version N (a version number from dfms versions) is required")}
			}
			ctx := cmd.Context()
			s, p, e, err := o.resolveFile(ctx, args[0], noVersions)
			if err != nil {
				return err
			}
			got, _, err := s.c.RestoreVersion(ctx, e.ID, version)
			if err != nil {
				return fail(fmt.Sprintf("%s version %d", p, version), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s version %d as version %d\n", p, version, got.Version)
			return nil
		},
	})
	cmd.Flags().Int64Var(&version, "version", 0, "the version to restore")
	return cmd
}
