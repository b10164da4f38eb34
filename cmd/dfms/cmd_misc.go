package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms/migrations"
	"github.com/dfms/dfms/server"
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

// newHealthcheckCmd probes a server's /ready endpoint: for container health
// checks in images that have no shell or curl.
func newHealthcheckCmd() *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the server at --url answers ready, 1 otherwise",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return usageError{err}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return fmt.Errorf("%s: %s %s", url, resp.Status, body)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080/ready", "readiness URL to probe")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for an answer")
	return cmd
}
