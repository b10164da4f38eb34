// Command dfms is the single binary of DFMS: the server, the mount, the
// CLI client and the operational tools are its subcommands. Run
// `dfms help` for the list.
//
// To see where a dfms process spends its time, run it with
// DFMS_CPUPROFILE=FILE: it writes a Go CPU profile of its whole life to
// FILE when its command returns (go tool pprof FILE). DFMS_TRACE=FILE
// writes a Go execution trace the same way, which shows where it waits
// (go tool trace -pprof=sync FILE > sync.pprof, likewise net and
// syscall).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/api/client"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ error }

// run executes one command line and returns the process exit code: 0 on
// success, 2 for bad usage or configuration, 1 for any other failure.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("DFMS_CPUPROFILE"); path != "" {
		// For profiling a whole process (dfms up under a benchmark): the
		// profile is written when the command returns.
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	if path := os.Getenv("DFMS_TRACE"); path != "" {
		if f, err := os.Create(path); err == nil && trace.Start(f) == nil {
			defer f.Close()
			defer trace.Stop()
		}
	}
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "dfms:", err)
	// Usage and configuration errors exit 2; a server's answer (even a 400
	// about a name) and every other failure exit 1.
	var ue usageError
	var se *client.Error
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &se):
		return 1
	case dfms.Is(err, dfms.Invalid):
		return 2
	}
	return 1
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "dfms",
		Short:         "DFMS: a distributed file store with a FUSE mount, versions and a REST API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServerCmd(), newGatewayCmd(), newWorkerCmd(), newGCCmd(), newChunkServiceCmd(), newMigrateCmd(), newFsckCmd(),
		newVersionCmd(), newHealthcheckCmd(), newKeygenCmd())
	root.AddCommand(newClientCmds()...)
	root.AddCommand(newMountCmds()...)
	root.AddCommand(newAdminCmd())
	return root
}

// newMountCmds are the commands of the mount: up, mount, umount and sync.
func newMountCmds() []*cobra.Command {
	return []*cobra.Command{newUpCmd(), newMountCmd(), newUmountCmd(), newSyncCmd()}
}
