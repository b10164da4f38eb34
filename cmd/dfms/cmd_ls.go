package main

import (
	"github.com/spf13/cobra"

	"github.com/dfms/dfms/server/api/client"
)

func newLsCmd() *cobra.Command {
	var o clientOptions
	var long, asJSON bool
	cmd := o.command(&cobra.Command{
		Use:   "ls [PATH]",
		Short: "List a remote folder (or show one file)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/"
			if len(args) == 1 {
				p = args[0]
			}
			ctx := cmd.Context()
			p = cleanRemote(p)
			s, e, err := o.resolve(ctx, p)
			if err != nil {
				return err
			}
			es := []client.Entry{e}
			if e.IsDir() {
				if es, err = s.c.List(ctx, e.ID); err != nil {
					return fail(p, err)
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), es)
			}
			printEntries(cmd.OutOrStdout(), es, long, nil)
			return nil
		},
	})
	addLongFlag(cmd.Flags(), &long)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the entries as JSON")
	return cmd
}
