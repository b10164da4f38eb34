package main

// dfms admin: operations for administrators, through the REST API with
// the stored login (which must be an administrator's). Today: the storage
// nodes of a cluster (dfms admin node …); the node table they change is
// the one every server follows.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dfms/dfms"
	"github.com/dfms/dfms/server/api/client"
)

func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administer a server (an administrator's login): storage nodes",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAdminNodeCmd())
	return cmd
}

func newAdminNodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List, add, change, drain, undrain and remove the storage nodes of a cluster",
		Long: `The storage nodes of a cluster (a server run with storage.nodes). A node added here
is used by every server within 10 s. To take a node out: drain it (nothing new is placed
on it), wait until its chunk copies have moved to other nodes (list shows CHUNKS 0), then
remove it. Nodes of a server's storage.nodes are changed and removed in its configuration.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newNodeListCmd(), newNodeAddCmd(), newNodeSetCmd(),
		newNodeDrainCmd(true), newNodeDrainCmd(false), newNodeRemoveCmd())
	return cmd
}

func newNodeListCmd() *cobra.Command {
	var o clientOptions
	var asJSON bool
	cmd := o.command(&cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the storage nodes: state, weight, zone, what each holds, health probes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := o.open()
			if err != nil {
				return err
			}
			ns, err := s.c.Nodes(cmd.Context())
			if err != nil {
				return fail("", err)
			}
			return printNodes(cmd.OutOrStdout(), ns, asJSON)
		},
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the nodes as JSON")
	return cmd
}

func newNodeAddCmd() *cobra.Command {
	var o clientOptions
	var weight int
	var zone string
	var drain, asJSON bool
	cmd := o.command(&cobra.Command{
		Use:   "add ID URL",
		Short: "Add a storage node whose chunk store is URL: file:///PATH or s3://KEY:SECRET@HOST:PORT/BUCKET (- reads it from standard input)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			url, err := urlArg(args[1], cmd.InOrStdin())
			if err != nil {
				return err
			}
			n := client.NewNode{ID: args[0], Endpoint: url, Zone: zone}
			if cmd.Flags().Changed("weight") {
				n.Weight = &weight
			}
			if drain {
				n.State = string(dfms.NodeDraining)
			}
			s, err := o.open()
			if err != nil {
				return err
			}
			node, err := s.c.AddNode(cmd.Context(), n)
			if err != nil {
				return fail("", err)
			}
			return printNodes(cmd.OutOrStdout(), []client.Node{node}, asJSON)
		},
	})
	cmd.Flags().IntVar(&weight, "weight", dfms.DefaultNodeWeight, "share of chunks relative to the other nodes' (0 places nothing on it)")
	cmd.Flags().StringVar(&zone, "zone", "", "failure domain: copies of a chunk go to distinct zones when there are enough")
	cmd.Flags().BoolVar(&drain, "drain", false, "add it draining: nothing is placed on it until dfms admin node undrain")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the node as JSON")
	return cmd
}

func newNodeSetCmd() *cobra.Command {
	var o clientOptions
	var url, zone string
	var weight int
	var asJSON bool
	cmd := o.command(&cobra.Command{
		Use:   "set ID [--url URL] [--weight N] [--zone ZONE]",
		Short: "Change a storage node's chunk store URL (the same chunks, moved or with new credentials), weight or zone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch client.NodeChange
			if cmd.Flags().Changed("url") {
				u, err := urlArg(url, cmd.InOrStdin())
				if err != nil {
					return err
				}
				ch.Endpoint = &u
			}
			if cmd.Flags().Changed("weight") {
				ch.Weight = &weight
			}
			if cmd.Flags().Changed("zone") {
				ch.Zone = &zone
			}
			if ch == (client.NodeChange{}) {
				return usageError{errors.New("set: nothing to change: give --url, --weight or --zone")}
			}
			s, err := o.open()
			if err != nil {
				return err
			}
			node, err := s.c.UpdateNode(cmd.Context(), args[0], ch)
			if err != nil {
				return fail("", err)
			}
			return printNodes(cmd.OutOrStdout(), []client.Node{node}, asJSON)
		},
	})
	cmd.Flags().StringVar(&url, "url", "", "the node's chunk store URL (- reads it from standard input)")
	cmd.Flags().IntVar(&weight, "weight", 0, "share of chunks relative to the other nodes' (0 places nothing on it)")
	cmd.Flags().StringVar(&zone, "zone", "", "failure domain")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the node as JSON")
	return cmd
}

// newNodeDrainCmd is drain, or undrain.
func newNodeDrainCmd(drain bool) *cobra.Command {
	var o clientOptions
	var asJSON bool
	use, short := "drain ID", "Drain a storage node: nothing new is placed on it; its copies are still read"
	if !drain {
		use, short = "undrain ID", "End a storage node's drain: it is up again (suspect if its last health probe failed)"
	}
	cmd := o.command(&cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.open()
			if err != nil {
				return err
			}
			set := s.c.UndrainNode
			if drain {
				set = s.c.DrainNode
			}
			node, err := set(cmd.Context(), args[0])
			if err != nil {
				return fail("", err)
			}
			return printNodes(cmd.OutOrStdout(), []client.Node{node}, asJSON)
		},
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the node as JSON")
	return cmd
}

func newNodeRemoveCmd() *cobra.Command {
	var o clientOptions
	cmd := o.command(&cobra.Command{
		Use:     "remove ID",
		Aliases: []string{"rm"},
		Short:   "Remove a storage node that is draining and holds no chunk copies",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.open()
			if err != nil {
				return err
			}
			if err := s.c.RemoveNode(cmd.Context(), args[0]); err != nil {
				return fail("", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed storage node %s\n", args[0])
			return nil
		},
	})
	return cmd
}

// urlArg is a chunk store URL given as an argument, or, for "-", read from
// the first line of stdin (which keeps a secret key out of the shell's
// history and the process list).
func urlArg(arg string, stdin io.Reader) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if line = strings.TrimSpace(line); line == "" {
		return "", usageError{errors.New("no URL on standard input")}
	}
	return line, nil
}

// printNodes prints nodes as a table, or as JSON.
func printNodes(w io.Writer, ns []client.Node, asJSON bool) error {
	if asJSON {
		if ns == nil {
			ns = []client.Node{}
		}
		return printJSON(w, ns)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tWEIGHT\tZONE\tCHUNKS\tUSED\tFAILURES\tLAST PROBE\tURL")
	for _, n := range ns {
		probe := "-"
		if n.LastProbe != nil {
			probe = n.LastProbe.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", n.ID, n.State, n.Weight, orDash(n.Zone), n.Chunks,
			humanSize(n.UsedBytes), strconv.Itoa(n.Failures), probe, n.Endpoint)
	}
	return tw.Flush()
}
