package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms/migrations"
	"github.com/dfms/dfms/server"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			latest, _ := migrations.Latest("sqlite")
			fmt.Fprintf(cmd.OutOrStdout(), "dfms %s (metadata schema %d)\n", server.Version, latest)
			return nil
		},
	}
}
