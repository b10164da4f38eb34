package main

import (
	"fmt"
	"path"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/api/client"
)

func newMkdirCmd() *cobra.Command {
	var o clientOptions
	var parents bool
	cmd := o.command(&cobra.Command{
		Use:   "mkdir PATH",
		Short: "Create a remote folder",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := cleanRemote(args[0])
			if p == "/" {
				if parents {
					return nil
				}
				return fail(p, dfms.Errorf("", dfms.Exist, "already exists"))
			}
			ctx := cmd.Context()
			if !parents {
				s, parent, err := o.resolve(ctx, path.Dir(p))
				if err != nil {
					return err
				}
				if _, err := s.c.Mkdir(ctx, parent.ID, path.Base(p)); err != nil {
					return fail(p, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", p)
				return nil
			}
			s, err := o.open()
			if err != nil {
				return err
			}
			dir, walked := client.Root, ""
			for _, name := range client.SplitPath(p) {
				walked += "/" + name
				e, err := s.c.Lookup(ctx, dir, name)
				if dfms.Is(err, dfms.NotExist) {
					if e, err = s.c.Mkdir(ctx, dir, name); err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", walked)
					}
				}
				if err == nil && !e.IsDir() {
					err = dfms.Errorf("", dfms.NotDir, "not a folder")
				}
				if err != nil {
					return fail(walked, err)
				}
				dir = e.ID
			}
			return nil
		},
	})
	cmd.Flags().BoolVarP(&parents, "parents", "p", false, "create missing parent folders; no error if the folder exists")
	return cmd
}
