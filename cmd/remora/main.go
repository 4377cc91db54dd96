// Command remora is a sidecar proxy data plane driven by Istio YAML files.
// See the README and DESIGN for its commands; each subcommand lives in its own
// file here, and this file only dispatches.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand: it parses its own arguments and returns the
// process exit code.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"run":      {"run the proxy", cmdRun},
	"iptables": {"install (or --cleanup) the traffic interception rules", cmdIptables},
	"validate": {"check a config directory and print every problem", cmdValidate},
	"explain":  {"show how one request would be routed", cmdExplain},
	"wait":     {"block until the local proxy is ready", cmdWait},
	"demo":     {"run the embedded demo on loopback", cmdDemo},
	"version":  {"print version information", cmdVersion},
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "remora: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: remora COMMAND [flags]")
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
}
