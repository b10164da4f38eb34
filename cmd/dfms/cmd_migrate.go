package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms/server"
)

func newMigrateCmd() *cobra.Command {
	var o configOptions
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the metadata schema migrations and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.load(os.Getenv)
			if err != nil {
				return err
			}
			m, err := server.OpenMeta(cmd.Context(), cfg.Metadata.URL)
			if err != nil {
				return err
			}
			defer m.Close()
			fmt.Fprintln(cmd.OutOrStdout(), "metadata schema is up to date")
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}
