// Command dfms is the single binary of DFMS: the server, the mount, the
// CLI client and the operational tools are its subcommands. Run
// `dfms help` for the list.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
