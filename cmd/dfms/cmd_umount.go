package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func newUmountCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "umount DIR",
		Short: "Unmount a DFMS mount (lazily if it is busy)",
		Long: `Unmount a DFMS mount: at once if nothing in it is in use, otherwise lazily
(it goes away when the last file in it is closed).

With --force the mount's FUSE connection is aborted first, for a mount whose
daemon died or hangs: requests in flight fail with ENOTCONN instead of
waiting for it. Data not yet committed is not lost: the next mount of the
same cache directory commits it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if force {
				if err := abortFuse(args[0]); err != nil {
					return err
				}
			}
			return runUmount(args[0], cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "abort the FUSE connection first (a dead or hung daemon)")
	return cmd
}

// abortFuse aborts the FUSE connection of the mount on dir, found by its
// device number in /proc/self/mountinfo (stat would hang on a dead one).
func abortFuse(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// id parent major:minor root mountpoint options ... - fstype source
		if len(f) < 10 || f[4] != dir {
			continue
		}
		i := slices.Index(f, "-")
		if i < 0 || i+1 >= len(f) || !strings.HasPrefix(f[i+1], "fuse") {
			return fmt.Errorf("%s is not a FUSE mount", dir)
		}
		_, minor, ok := strings.Cut(f[2], ":")
		if !ok {
			return fmt.Errorf("mountinfo: bad device %q", f[2])
		}
		abort := filepath.Join("/sys/fs/fuse/connections", minor, "abort")
		if err := os.WriteFile(abort, []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("aborting the FUSE connection of %s: %w", dir, err)
		}
		return nil
	}
	return fmt.Errorf("%s: not a mount point", dir)
}

// runUmount unmounts dir: with umount(2), lazily (MNT_DETACH) if it is
// busy, and through fusermount when not permitted (a user's mount).
func runUmount(dir string, out io.Writer) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	err = syscall.Unmount(dir, 0)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EBUSY):
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		fmt.Fprintf(out, "%s was busy: detached; it goes away when the last file in it is closed\n", dir)
		return nil
	case errors.Is(err, syscall.EPERM):
		for _, name := range []string{"fusermount3", "fusermount"} {
			if bin, lerr := exec.LookPath(name); lerr == nil {
				if b, ferr := exec.Command(bin, "-u", "-z", dir).CombinedOutput(); ferr != nil {
					return fmt.Errorf("%s -u %s: %v: %s", name, dir, ferr, strings.TrimSpace(string(b)))
				}
				return nil
			}
		}
	case errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("unmount %s: not a mount point", dir)
	}
	return fmt.Errorf("unmount %s: %w", dir, err)
}
