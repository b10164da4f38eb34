package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms/server/auth"
)

func newKeygenCmd() *cobra.Command {
	var priv, pub string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Write a new ES256 key pair for signing tokens (PEM files; existing files are never overwritten)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := auth.WriteKeyFiles(priv, pub); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (private, mode 0600) and %s\nuse them with DFMS_JWT_PRIVATE_KEY and DFMS_JWT_PUBLIC_KEY\n", priv, pub)
			return nil
		},
	}
	cmd.Flags().StringVar(&priv, "private", "jwt-private.pem", "private key file to write")
	cmd.Flags().StringVar(&pub, "public", "jwt-public.pem", "public key file to write")
	return cmd
}
