package cli

// `mynet attach`, `mynet detach`, `mynet ls` and `mynet inspect`: a fixed
// address on a mynet network for a container Docker will not connect
// (--network none), or for any process's network namespace.
//
// The command resolves names with the docker CLI, asks the running plugin
// over its socket for the endpoint (address leased from mynet's IPAM, veth
// pair on the bridge, ports published, record kept), then moves the
// container end into the namespace and configures it (internal/plumb). It
// must run as root in the namespace the plugin serves: the engine's host
// namespace. Any failure after the plugin answered is rolled back by
// asking the plugin to detach.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ifname"
)

const attachUsage = `usage: mynet attach [OPTIONS] NETWORK CONTAINER
       mynet attach [OPTIONS] NETWORK --pid PID

Gives a running container (typically one started with --network none, which
Docker will not connect to any network) or a process's network namespace an
interface on the mynet network NETWORK: an address leased from mynet's IPAM
(so Docker never hands it out), the default route via the network's gateway,
published ports. The attachment lasts until "mynet detach" or until the
container stops. Run as root in the engine's host network namespace.

Options:
`

// cliTimeout bounds one command: docker calls, the plugin, netlink.
const cliTimeout = 2 * time.Minute

// commonFlags are the flags of every client subcommand.
type commonFlags struct {
	socket, driver, docker string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.socket, "socket", os.Getenv("MYNET_SOCKET"), "the running mynet's socket (env MYNET_SOCKET); default: found from the network's driver or --driver (/run/docker/plugins/DRIVER.sock, or the managed plugin's), else "+bareSocket+", else the managed plugin mynet:latest's")
	fs.StringVar(&c.driver, "driver", os.Getenv("MYNET_DRIVER"), "the plugin's name, as in docker network create -d, where no network names it (env MYNET_DRIVER)")
	fs.StringVar(&c.docker, "docker", dockerCommand(), "docker CLI used to resolve networks and containers (env MYNET_DOCKER); \"\" runs none: ls and inspect show IDs, and what needs a name resolved is refused")
}

// attachOpts is a parsed `mynet attach` command line.
type attachOpts struct {
	commonFlags
	network, container string
	pid                int
	ip, ip6            string
	ifname             string
	noDefaultRoute     bool
	ports              []api.PortBinding
}

func parseAttach(args []string, stderr io.Writer) (*attachOpts, error) {
	o := &attachOpts{}
	fs := flag.NewFlagSet("mynet attach", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, attachUsage); fs.PrintDefaults() }
	o.register(fs)
	fs.IntVar(&o.pid, "pid", 0, "attach the network namespace of this process instead of a container")
	fs.StringVar(&o.ip, "ip", "", "IPv4 address (default: the next free one of the network)")
	fs.StringVar(&o.ip6, "ip6", "", "IPv6 address, on networks with an IPv6 subnet (default: the next free one)")
	fs.StringVar(&o.ifname, "ifname", "eth0", "interface name inside the container")
	fs.BoolVar(&o.noDefaultRoute, "no-default-route", false, "do not add a default route via the network's gateway")
	var pub publishFlag
	fs.Var(&pub, "p", "publish a port, as docker run -p: [[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTO] (repeatable)")
	fs.Var(&pub, "publish", "same as -p")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if err := o.take(pos); err != nil {
		return nil, err
	}
	for _, spec := range pub {
		bs, err := parsePublish(spec)
		if err != nil {
			return nil, err
		}
		o.ports = append(o.ports, bs...)
	}
	return o, o.validate()
}

// take assigns the positional arguments: NETWORK, then CONTAINER unless
// --pid names the process.
func (o *attachOpts) take(pos []string) error {
	want := 2
	if o.pid != 0 {
		want = 1
	}
	switch {
	case len(pos) == 0:
		return errors.New("name the network")
	case len(pos) != want && o.pid != 0:
		return fmt.Errorf("give either a container or --pid, not both (got %q and --pid %d)", pos[1:], o.pid)
	case len(pos) != want:
		return fmt.Errorf("name the network and one container (or --pid PID), got %q", pos)
	}
	o.network = pos[0]
	if want == 2 {
		o.container = pos[1]
	}
	return nil
}

func (o *attachOpts) validate() error {
	if o.pid < 0 {
		return fmt.Errorf("--pid %d: not a process ID", o.pid)
	}
	if err := checkIfname(o.ifname); err != nil {
		return err
	}
	for _, c := range []struct {
		flag, val string
		v6        bool
	}{{"--ip", o.ip, false}, {"--ip6", o.ip6, true}} {
		if c.val == "" {
			continue
		}
		a, err := netip.ParseAddr(c.val)
		if err != nil || a.Is6() != c.v6 || a.Is4In6() || a.Zone() != "" {
			return fmt.Errorf("%s %s: not an %s address", c.flag, c.val, map[bool]string{false: "IPv4", true: "IPv6"}[c.v6])
		}
	}
	return nil
}

// checkIfname applies the kernel's rules for interface names, as bytes
// (ifname.Check); the plugin checks them again.
func checkIfname(name string) error {
	if err := ifname.Check(name); err != nil {
		return fmt.Errorf("--ifname %q: %w", name, err)
	}
	return nil
}

// parseInterspersed parses flags anywhere among the positional arguments
// (`mynet attach n1 vm1 --ip X`), which the flag package alone does not;
// "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func attachMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseAttach(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "mynet attach:", err)
		return 2
	}
	return runCommand("mynet attach", stderr, func(ctx context.Context) error { return runAttach(ctx, o, stdout) })
}

// runCommand runs a parsed command within cliTimeout and turns its error
// into the exit status 1, printed after the command's name.
func runCommand(name string, stderr io.Writer, fn func(context.Context) error) int {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	return 0
}

const detachUsage = `usage: mynet detach [OPTIONS] NETWORK CONTAINER
       mynet detach [OPTIONS] NETWORK --pid PID

Removes what "mynet attach" made: the interface, the address lease, the
published ports. Run as root.

Options:
`

func detachMain(args []string, stdout, stderr io.Writer) int {
	var c commonFlags
	var pid int
	fs := flag.NewFlagSet("mynet detach", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, detachUsage); fs.PrintDefaults() }
	c.register(fs)
	fs.IntVar(&pid, "pid", 0, "detach the network namespace of this process")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	o := &attachOpts{commonFlags: c, pid: pid}
	if err == nil {
		err = o.take(pos)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mynet detach:", err)
		return 2
	}
	return runCommand("mynet detach", stderr, func(ctx context.Context) error { return runDetach(ctx, o, stdout) })
}

const lsUsage = `usage: mynet ls [OPTIONS] [NETWORK]
       mynet inspect [OPTIONS] [NETWORK]

Lists the endpoints of mynet's networks (or of NETWORK) with their origin:
"docker" for the engine's containers, "attach" for "mynet attach". Records
the engine no longer has are marked stale ("mynet prune" removes them).
inspect prints the same as JSON.

Options:
`

func lsMain(args []string, stdout, stderr io.Writer) int { return listMain("ls", args, stdout, stderr) }

func inspectMain(args []string, stdout, stderr io.Writer) int {
	return listMain("inspect", args, stdout, stderr)
}

func listMain(name string, args []string, stdout, stderr io.Writer) int {
	var c commonFlags
	fs := flag.NewFlagSet("mynet "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, lsUsage); fs.PrintDefaults() }
	c.register(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && len(pos) > 1 {
		err = fmt.Errorf("name at most one network, got %q", pos)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mynet "+name+":", err)
		return 2
	}
	var network string
	if len(pos) == 1 {
		network = pos[0]
	}
	return runCommand("mynet "+name, stderr, func(ctx context.Context) error {
		return runList(ctx, c, network, name == "inspect", stdout)
	})
}
