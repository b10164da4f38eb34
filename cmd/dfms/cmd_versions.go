package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// noVersions is the error message of versions and restore for a folder.
const noVersions = "is a folder; folders have no versions"

func newVersionsCmd() *cobra.Command {
	var o clientOptions
	var asJSON bool
	cmd := o.command(&cobra.Command{
		Use:   "versions PATH",
		Short: "List the versions of a remote file, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, p, e, err := o.resolveFile(ctx, args[0], noVersions)
			if err != nil {
				return err
			}
			vs, err := s.c.Versions(ctx, e.ID)
			if err != nil {
				return fail(p, err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), vs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tSIZE\tCREATED\tSHA256\tCURRENT")
			for _, v := range vs {
				cur := ""
				if v.Current {
					cur = "*"
				}
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", v.Version, v.Size, v.CreatedAt.Local().Format("2006-01-02 15:04:05"), v.Checksum, cur)
			}
			return tw.Flush()
		},
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the versions as JSON")
	return cmd
}
