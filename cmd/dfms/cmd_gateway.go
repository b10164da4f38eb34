package main

import (
	"github.com/spf13/cobra"

	"github.com/dfms/dfms/server"
)

func newGatewayCmd() *cobra.Command {
	return configCommand("gateway",
		"Run the REST API alone (stateless: run several behind a proxy); the background work is for dfms worker",
		func(cmd *cobra.Command, cfg server.Config) error {
			gw, err := server.NewGateway(cmd.Context(), cfg, newLogger(cmd, cfg))
			if err != nil {
				return err
			}
			return gw.Run(cmd.Context())
		})
}
