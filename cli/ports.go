package cli

// `mynet ports`: the published ports of mynet's endpoints, in `docker
// port`'s format. The engine cannot show a remote driver's ports
// (moby/libnetwork#2451), and the running plugin holds the state file's
// lock, so the command asks the plugin over its socket. Endpoints know
// their sandbox, not their container: a container name or ID is turned
// into its endpoint IDs with `docker container inspect` here, in the CLI,
// never by the plugin (which must not call the Docker API).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ids"
)

const portsUsage = `usage: mynet ports [--socket PATH] [--driver NAME] [--docker CMD] [CONTAINER|NETWORK|ID-PREFIX [PORT[/PROTO]]]

Prints the ports mynet publishes, as "docker port" does: "80/tcp -> 0.0.0.0:32768".
CONTAINER and NETWORK are names or IDs that docker knows; ID-PREFIX is the start
of a mynet endpoint or network ID. Without an argument, every endpoint with
published ports is listed under a header line. With PORT, only the host
addresses of that container port are printed.
`

// portsMain runs the subcommand and returns the exit status.
func portsMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mynet ports", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, portsUsage); fs.PrintDefaults() }
	var c commonFlags
	c.register(fs)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2
	}
	if fs.NArg() > 2 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sel, port := fs.Arg(0), fs.Arg(1)
	q, single := resolveSelector(ctx, c.docker, sel)
	ans, err := queryPorts(ctx, c, q)
	if err != nil {
		fmt.Fprintln(stderr, "mynet ports:", err)
		return 1
	}
	if port != "" {
		return printPort(stdout, stderr, ans, port)
	}
	printPorts(stdout, ans, single || len(ans.Endpoints) == 1 && sel != "")
	return 0
}

// queryPorts asks the running mynet, found as every subcommand finds it.
func queryPorts(ctx context.Context, c commonFlags, q *api.PortsQuery) (*api.PortsAnswer, error) {
	sock, err := c.socketFor(ctx, "")
	if err != nil {
		return nil, err
	}
	return NewClient(sock).Ports(ctx, q)
}

// resolveSelector turns the user's argument into a query: a container's
// endpoints or a network's ID through docker, else an ID prefix. single
// says the argument names one container, whose lines need no header.
func resolveSelector(ctx context.Context, dockerCmd, sel string) (*api.PortsQuery, bool) {
	if sel == "" {
		return &api.PortsQuery{}, false
	}
	if dk := (dockerCLI{dockerCmd}); dockerCmd != "" {
		out, err := dk.run(ctx, "container", "inspect", "--format",
			"{{range .NetworkSettings.Networks}}{{.EndpointID}} {{end}}", sel)
		if err == nil {
			return &api.PortsQuery{Endpoints: strings.Fields(string(out))}, true
		}
		out, err = dk.run(ctx, "network", "inspect", "--format", "{{.Id}}", sel)
		if id := strings.TrimSpace(string(out)); err == nil && id != "" {
			return &api.PortsQuery{Prefixes: []string{id}}, false
		}
	}
	return &api.PortsQuery{Prefixes: []string{sel}}, false
}

// portLine is one published port as docker port prints it.
type portLine struct {
	port  uint16
	proto string
	host  string
}

func (l portLine) String() string { return fmt.Sprintf("%d/%s -> %s", l.port, l.proto, l.host) }

// lines expands ep's runs into one line per port, sorted like docker port.
func lines(ep api.EndpointPorts) []portLine {
	var out []portLine
	for _, p := range ep.Ports {
		for i := 0; i <= int(p.PortEnd-p.Port); i++ {
			out = append(out, portLine{p.Port + uint16(i), p.Proto, hostPort(p.HostIP, p.HostPort+uint16(i))})
		}
	}
	slices.SortFunc(out, func(a, b portLine) int {
		if a.port != b.port {
			return int(a.port) - int(b.port)
		}
		if a.proto != b.proto {
			return strings.Compare(a.proto, b.proto)
		}
		return strings.Compare(a.host, b.host)
	})
	return out
}

// hostPort is ip:port as docker port prints it, an IPv6 address in
// brackets ("[::]:8080").
func hostPort(ip string, port uint16) string {
	return net.JoinHostPort(ip, strconv.Itoa(int(port)))
}

// printPorts prints the lines of every endpoint; with several endpoints
// (or none selected), each gets a header naming it.
func printPorts(w io.Writer, ans *api.PortsAnswer, plain bool) {
	for _, ep := range ans.Endpoints {
		if !plain {
			addrs := ep.Address
			if ep.Address6 != "" {
				addrs = strings.TrimPrefix(addrs+", "+ep.Address6, ", ")
			}
			fmt.Fprintf(w, "endpoint %s (network %s, %s):\n", ids.Short(ep.EndpointID), ids.Short(ep.NetworkID), addrs)
		}
		for _, l := range lines(ep) {
			fmt.Fprintln(w, l)
		}
	}
}

// printPort prints the host addresses of one container port, as
// `docker port CONTAINER PORT` does; tcp when no protocol is given.
func printPort(stdout, stderr io.Writer, ans *api.PortsAnswer, spec string) int {
	num, proto, _ := strings.Cut(spec, "/")
	if proto == "" {
		proto = "tcp"
	}
	port, err := strconv.ParseUint(num, 10, 16)
	if err != nil {
		fmt.Fprintf(stderr, "mynet ports: %q is not a port\n", spec)
		return 2
	}
	found := false
	for _, ep := range ans.Endpoints {
		for _, l := range lines(ep) {
			if l.port == uint16(port) && l.proto == proto {
				fmt.Fprintln(stdout, l.host)
				found = true
			}
		}
	}
	if !found {
		fmt.Fprintln(stderr, "mynet ports:", errors.New("no public port '"+strconv.FormatUint(port, 10)+"/"+proto+"' published"))
		return 1
	}
	return 0
}
