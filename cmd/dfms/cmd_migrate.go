package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms/server"
)

func newMigrateCmd() *cobra.Command {
	return configCommand("migrate", "Apply the metadata schema migrations and exit",
		func(cmd *cobra.Command, cfg server.Config) error {
			m, err := server.OpenMeta(cmd.Context(), cfg.Metadata.URL)
			if err != nil {
				return err
			}
			defer m.Close()
			fmt.Fprintln(cmd.OutOrStdout(), "metadata schema is up to date")
			return nil
		})
}
