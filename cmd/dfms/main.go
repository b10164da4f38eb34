// Command dfms is the single binary of DFMS: the server, the mount, the
// CLI client and the operational tools are its subcommands. Run
// `dfms help` for the list.
//
// To see where a dfms process spends its time, run it with
// DFMS_CPUPROFILE=FILE: it writes a Go CPU profile of its whole life to
// FILE when its command returns (go tool pprof FILE).
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
