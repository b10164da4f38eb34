package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
)

func newLogoutCmd() *cobra.Command {
	var o clientOptions
	return o.command(&cobra.Command{
		Use:   "logout",
		Short: "Revoke the stored login on the server and delete the stored credentials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, stored, ok, err := o.dial()
			if err != nil {
				return err
			}
			if !ok || !sameServer(stored.Server, c.BaseURL()) {
				fmt.Fprintf(cmd.OutOrStdout(), "not logged in to %s\n", c.BaseURL())
				return nil
			}
			if s, err := o.open(); err == nil {
				if err := s.c.Logout(cmd.Context()); err != nil {
					// The local copy goes anyway; its tokens expire.
					fmt.Fprintf(cmd.ErrOrStderr(), "dfms: warning: could not revoke the login on %s: %s\n", s.server, describe(err))
				}
			}
			p, _ := credentialsPath()
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged out of %s\n", stored.Server)
			return nil
		},
	})
}
