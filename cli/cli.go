// Package cli is mynet's client: the subcommands (attach, detach, ls,
// inspect, prune, ports, help, version) that talk to a running mynet over
// its socket and to the engine through the docker CLI.
package cli

import (
	"fmt"
	"io"
	"sort"
)

// command is one subcommand: it parses args and returns the exit status.
type command struct {
	run  func(args []string, stdout, stderr io.Writer) int
	help string
}

// commands is the one table of client subcommands; main dispatches to it.
var commands map[string]command

func init() {
	commands = map[string]command{
		"attach":  {attachMain, "give a container or a namespace an interface on a mynet network"},
		"detach":  {detachMain, "remove attachments made by mynet attach"},
		"ls":      {lsMain, "list mynet's endpoints"},
		"inspect": {inspectMain, "show mynet's networks and endpoints as JSON"},
		"prune":   {pruneMain, "remove the networks and endpoints the engine no longer has"},
		"ports":   {portsMain, "show published ports, as docker port does"},
		"help":    {helpMain, "show this help"},
		"version": {versionMain, "print mynet's version and commit"},
	}
}

// Lookup returns the subcommand called name, or false if there is none
// (then the arguments are the daemon's).
func Lookup(name string) (func(args []string, stdout, stderr io.Writer) int, bool) {
	c, ok := commands[name]
	return c.run, ok
}

// DaemonUsage prints the daemon's flags; main sets it (the flags are
// main's), and help shows them after the subcommands.
var DaemonUsage func(w io.Writer)

// Usage prints mynet's help: the subcommands, then the daemon's flags.
func Usage(w io.Writer) {
	fmt.Fprint(w, "usage: mynet [FLAGS]            serve the plugin API (the daemon)\n       mynet COMMAND [ARGS]     a client command; mynet COMMAND --help for its own\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].help)
	}
	if DaemonUsage != nil {
		fmt.Fprint(w, "\nDaemon flags:\n")
		DaemonUsage(w)
	}
}

func helpMain(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] != "--help" && args[0] != "-h" && args[0] != "-help" {
		if c, ok := commands[args[0]]; ok && args[0] != "help" {
			return c.run([]string{"--help"}, stdout, stdout)
		}
		fmt.Fprintf(stderr, "mynet help: no command %q\n", args[0])
		Usage(stderr)
		return 2
	}
	Usage(stdout)
	return 0
}
