package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms/server/api/client"
)

func newGetCmd() *cobra.Command {
	var o clientOptions
	var force bool
	cmd := o.command(&cobra.Command{
		Use:   "get REMOTE [LOCAL]",
		Short: "Download a file (LOCAL - is standard output); an interrupted download resumes",
		Long: `Download the current version of REMOTE to LOCAL (default: its name in the current
directory; into LOCAL if it is a directory). The bytes go to a partial file beside LOCAL,
which a later run resumes with a Range request; the SHA-256 is verified before LOCAL is
replaced.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, p, e, err := o.resolveFile(ctx, args[0], "is a folder")
			if err != nil {
				return err
			}
			local := e.Name
			if len(args) == 2 {
				local = args[1]
			}
			stderr := cmd.ErrOrStderr()
			if local == "-" {
				bar := newProgress(force, stderr, e.Size, e.Name)
				_, err := s.c.DownloadTo(ctx, e.ID, cmd.OutOrStdout(), bar.set)
				bar.done(err)
				return fail(p, err)
			}
			if fi, err := os.Stat(local); err == nil && fi.IsDir() {
				local = filepath.Join(local, e.Name)
			}
			bar := newProgress(force, stderr, e.Size, e.Name)
			got, err := s.c.DownloadFile(ctx, e.ID, local, func(done, _ int64) { bar.set(done) })
			bar.done(err)
			if err != nil {
				if len(e.Checksum) >= 16 && fileExists(local+"."+e.Checksum[:16]+client.PartialSuffix) {
					err = resumable(err)
				}
				return fail(p, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "got %s -> %s (%d bytes, version %d, sha256 verified)\n", p, local, got.Size, got.Version)
			return nil
		},
	})
	addProgressFlag(cmd.Flags(), &force)
	return cmd
}
