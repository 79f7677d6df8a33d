package cli

// `mynet prune`: removes, through the running plugin, mynet's networks,
// endpoints and attachments that the engine no longer has (see stale.go),
// as the engine's DeleteNetwork, DeleteEndpoint, ReleasePool and
// ReleaseAddress would have: bridge, rules, host ports, pools, leases.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ids"
)

const pruneUsage = `usage: mynet prune [OPTIONS]

Removes mynet's networks, endpoints and attachments that the engine no
longer has: networks removed (docker network rm) or containers removed
(docker rm -f) while mynet was not running, a Docker reinstalled under
mynet's state. Each goes as the engine would have removed it: bridge,
firewall rules, published ports, address pools and leases. It lists them
and asks first; -f skips the question. Nothing the engine still lists is
removed, nor anything a running container or process still uses.

Options:
`

// pruneOpts is a parsed `mynet prune` command line.
type pruneOpts struct {
	commonFlags
	force bool
}

// stdin and stdinIsTerminal are where the question is answered; tests
// replace them.
var (
	stdin           io.Reader = os.Stdin
	stdinIsTerminal           = func() bool {
		fi, err := os.Stdin.Stat()
		return err == nil && fi.Mode()&os.ModeCharDevice != 0
	}
)

func pruneMain(args []string, stdout, stderr io.Writer) int {
	o := &pruneOpts{}
	fs := flag.NewFlagSet("mynet prune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, pruneUsage); fs.PrintDefaults() }
	o.register(fs)
	fs.BoolVar(&o.force, "f", false, "do not ask before removing")
	fs.BoolVar(&o.force, "force", false, "same as -f")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("takes no arguments, got %q", pos)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mynet prune:", err)
		return 2
	}
	return runCommand("mynet prune", stderr, func(ctx context.Context) error { return runPrune(ctx, o, stdout) })
}

// errNoTerminal: nobody to ask, and no -f.
var errNoTerminal = errors.New(`not removing anything: no terminal to ask on (run "mynet prune -f" to remove without asking)`)

// runPrune reads mynet's records, then the engine's view (in that order:
// see findStale), shows what is stale and removes it once confirmed.
func runPrune(ctx context.Context, o *pruneOpts, w io.Writer) error {
	sock, err := o.socketFor(ctx, "")
	if err != nil {
		return err
	}
	client := NewClient(sock)
	ans, err := client.Endpoints(ctx, &api.EndpointsQuery{})
	if err != nil {
		return err
	}
	v, err := readEngine(ctx, dockerCLI{o.docker}, namesContainers(ans))
	if err != nil {
		return fmt.Errorf("%w; nothing removed", err)
	}
	s := findStale(ans, v)
	if s.empty() {
		fmt.Fprintln(w, "nothing to prune: the engine has every network, endpoint and attachment mynet has")
		return nil
	}
	printStale(w, ans, s, len(s.networks) == len(ans.Networks))
	if !o.force {
		if err := confirm(w); err != nil {
			return err
		}
	}
	done, err := client.Prune(ctx, &s.req)
	if err != nil {
		return err
	}
	printPruned(w, done)
	return nil
}

// confirm asks on the terminal; anything but yes is an error.
func confirm(w io.Writer) error {
	if !stdinIsTerminal() {
		return errNoTerminal
	}
	fmt.Fprint(w, "Remove them? [y/N] ")
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not removing anything")
}

// printStale lists the stale records. all says every network of mynet's
// is stale, which is also what a docker CLI pointed at another engine
// would show.
func printStale(w io.Writer, ans *api.EndpointsAnswer, s *staleSet, all bool) {
	fmt.Fprintln(w, "mynet has these, which the engine no longer has:")
	for _, n := range ans.Networks {
		if why, ok := s.networks[n.ID]; ok {
			fmt.Fprintf(w, "  network %s (bridge %s%s): %s\n", ids.Short(n.ID), n.Bridge, subnetsText(n), why)
		}
	}
	for _, ep := range ans.Endpoints {
		if why, ok := s.endpoints[ep.ID]; ok {
			fmt.Fprintf(w, "  %s: %s\n", endpointText(ep), why)
		}
	}
	if all && len(ans.Networks) > 1 {
		fmt.Fprintln(w, "Note: the engine has none of mynet's networks; check that the docker CLI (DOCKER_HOST, --context) talks to the engine this mynet serves.")
	}
}

func printPruned(w io.Writer, done *api.PruneAnswer) {
	for _, n := range done.Networks {
		fmt.Fprintf(w, "removed network %s (bridge %s%s)\n", ids.Short(n.ID), n.Bridge, subnetsText(n))
	}
	for _, ep := range done.Endpoints {
		fmt.Fprintf(w, "removed %s\n", endpointText(ep))
	}
	for _, p := range done.Pools {
		fmt.Fprintf(w, "released pool %s\n", p)
	}
	for _, k := range done.Kept {
		fmt.Fprintf(w, "kept %s %s: %s\n", k.Kind, ids.Short(k.ID), k.Reason)
	}
}

func subnetsText(n api.NetworkInfo) string {
	var s string
	for _, sub := range []string{n.Subnet, n.Subnet6} {
		if sub != "" {
			s += ", " + sub
		}
	}
	return s
}

// endpointText names an endpoint with its network, addresses and ports.
func endpointText(ep api.EndpointInfo) string {
	kind := "endpoint"
	if ep.Attach != nil {
		kind = "attachment"
	}
	l := listedEndpoint{EndpointInfo: ep}
	s := fmt.Sprintf("%s %s of network %s, %s", kind, ids.Short(ep.ID), ids.Short(ep.NetworkID), l.addresses())
	if p := l.ports(); p != "-" {
		s += ", ports " + p
	}
	if ep.Attach != nil {
		s += ", " + l.container()
	}
	return s
}
