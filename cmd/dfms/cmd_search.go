package main

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/api/client"
)

func newSearchCmd() *cobra.Command {
	var o clientOptions
	var typ string
	var limit int
	var long, asJSON bool
	cmd := o.command(&cobra.Command{
		Use:   "search QUERY",
		Short: "Find remote files and folders by name",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usageError{errors.New("--limit must not be negative")}
			}
			s, err := o.open()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			es, total, err := s.c.Search(ctx, args[0], client.SearchOptions{Type: typ, Limit: limit})
			if err != nil {
				return fail("search", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), es)
			}
			paths := make([]string, len(es))
			dirs := map[dfms.EntryID]string{}
			for i, e := range es {
				dir, err := folderPath(ctx, s.c, e.ParentID, dirs)
				if err != nil {
					return fail("search", err)
				}
				paths[i] = path.Join(dir, e.Name)
			}
			printEntries(cmd.OutOrStdout(), es, long, paths)
			if total > len(es) {
				fmt.Fprintf(cmd.ErrOrStderr(), "dfms: showing %d of %d matches (see --limit)\n", len(es), total)
			}
			return nil
		},
	})
	cmd.Flags().StringVar(&typ, "type", "", "file, folder, symlink, or a MIME type or prefix such as image/")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many results (0: all)")
	addLongFlag(cmd.Flags(), &long)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

// folderPath returns the path of a folder by walking up its parents,
// remembering what it learns in known.
func folderPath(ctx context.Context, c *client.Client, id dfms.EntryID, known map[dfms.EntryID]string) (string, error) {
	if p, ok := known[id]; ok {
		return p, nil
	}
	e, err := c.Stat(ctx, id)
	if err != nil {
		return "", err
	}
	p := "/"
	if e.ParentID != 0 {
		dir, err := folderPath(ctx, c, e.ParentID, known)
		if err != nil {
			return "", err
		}
		p = path.Join(dir, e.Name)
	}
	known[id] = p
	return p, nil
}
