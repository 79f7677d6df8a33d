// Command mynet is a Docker network plugin: it serves the NetworkDriver and
// IpamDriver APIs on one unix socket and gives Docker bridge networks with
// mynet's own address management.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/cli"
	"github.com/mynet/mynet/driver"
	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nldump"
	"github.com/mynet/mynet/ipam"
	"github.com/mynet/mynet/plugin"
	"github.com/mynet/mynet/ports"
	"github.com/mynet/mynet/store"
)

type config struct {
	socket, stateDir, logLevel, defaultPools, procSys, iptables string
	instance                                                    string
	healInterval                                                time.Duration
	// reapGrace: how long an engine endpoint must look unused before it
	// is reaped; env MYNET_REAP_GRACE only, for tests (not a user knob).
	reapGrace time.Duration
}

// parseConfig reads flags, each defaulting to its environment variable (the
// managed plugin is configured through `docker plugin set VAR=...`).
func parseConfig(args []string) (config, error) {
	var c config
	heal, err := time.ParseDuration(envOr("MYNET_HEAL_INTERVAL", defaultHeal.String()))
	if err != nil {
		return c, fmt.Errorf("MYNET_HEAL_INTERVAL: %w", err)
	}
	if c.reapGrace, err = time.ParseDuration(envOr("MYNET_REAP_GRACE", driver.DefaultOrphanGrace.String())); err != nil {
		return c, fmt.Errorf("MYNET_REAP_GRACE: %w", err)
	}
	fs := daemonFlags(&c, heal)
	fs.Usage = func() { cli.Usage(os.Stdout) }
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q: %q is not a command (mynet help lists them) and the daemon takes only flags", fs.Args(), fs.Arg(0))
	}
	if c.instance == "" {
		c.instance = driver.InstanceFromSocket(c.socket)
	}
	if err := driver.CheckInstanceName(c.instance); err != nil {
		return c, fmt.Errorf("--instance (or the socket's file name): %w", err)
	}
	return c, nil
}

// defaultHeal is --heal-interval's default when MYNET_HEAL_INTERVAL is unset.
const defaultHeal = 2 * time.Second

// daemonUsage prints the daemon's flags, for `mynet help`.
func daemonUsage(w io.Writer) {
	var c config
	fs := daemonFlags(&c, defaultHeal)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// daemonFlags are the daemon's flags. heal is --heal-interval's default,
// which parseConfig reads from the environment (failing on a bad one).
func daemonFlags(c *config, heal time.Duration) *flag.FlagSet {
	fs := flag.NewFlagSet("mynet", flag.ContinueOnError)
	fs.StringVar(&c.socket, "socket", envOr("MYNET_SOCKET", "/run/docker/plugins/mynet.sock"), "unix socket to serve the plugin API on (env MYNET_SOCKET)")
	fs.StringVar(&c.stateDir, "state-dir", envOr("MYNET_STATE_DIR", "/var/lib/mynet"), "directory for mynet's state file (env MYNET_STATE_DIR)")
	fs.StringVar(&c.instance, "instance", os.Getenv("MYNET_INSTANCE"), "this instance's name, written with the state file's UUID into every link and rule it makes, so that instances side by side never touch each other's; 1-32 of a-z, 0-9, '-' (default: the socket's file name without .sock; env MYNET_INSTANCE)")
	fs.StringVar(&c.logLevel, "log-level", envOr("LOG_LEVEL", "info"), "log level: debug, info, warn, error (env LOG_LEVEL)")
	fs.StringVar(&c.defaultPools, "default-pools", os.Getenv("MYNET_DEFAULT_POOLS"), "pools for networks created without --subnet, as base/size[,...], e.g. 10.200.0.0/16/24 (env MYNET_DEFAULT_POOLS)")
	fs.StringVar(&c.iptables, "iptables", envOr("MYNET_IPTABLES", "auto"), "iptables backend: auto (the one holding Docker's chains), nft or legacy (env MYNET_IPTABLES)")
	fs.StringVar(&c.procSys, "proc-sys", envOr("MYNET_PROC_SYS", "/proc/sys"), "where to write sysctls such as net/ipv4/ip_forward; the managed plugin uses the host's, mounted writable (env MYNET_PROC_SYS)")
	fs.DurationVar(&c.healInterval, "heal-interval", heal, "how often to check that mynet's firewall rules are still in place and restore them; 0 turns it off (env MYNET_HEAL_INTERVAL)")
	return fs
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	cli.DaemonUsage = daemonUsage
	if len(os.Args) > 1 {
		if run, ok := cli.Lookup(os.Args[1]); ok {
			os.Exit(run(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	cfg, err := parseConfig(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mynet:", err)
		os.Exit(2)
	}
	log := logrus.New()
	// Microsecond timestamps: a container start is a few plugin calls
	// within tens of ms, and telling engine time from plugin time needs
	// them ordered.
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "2006-01-02T15:04:05.000000Z07:00"})
	if err := run(cfg, log); err != nil {
		log.WithError(err).Error("mynet stopped")
		os.Exit(1)
	}
}

func run(cfg config, logger *logrus.Logger) error {
	lvl, err := logrus.ParseLevel(cfg.logLevel)
	if err != nil {
		return fmt.Errorf("log level %q: want debug, info, warn or error", cfg.logLevel)
	}
	logger.SetLevel(lvl)
	log := logrus.NewEntry(logger)

	pools := ipam.DefaultPools
	if cfg.defaultPools != "" {
		if pools, err = ipam.ParseDefaultPools(cfg.defaultPools); err != nil {
			return fmt.Errorf("default pools: %w", err)
		}
	}
	// The socket first: a second mynet refused on a live socket stops
	// before it opens a state or touches the kernel.
	l, err := plugin.Listen(cfg.socket)
	if err != nil {
		return err
	}
	defer l.Close()
	st, err := store.Open(cfg.stateDir)
	if err != nil {
		return err
	}
	defer st.Close()
	inst := driver.Instance{Name: cfg.instance, UUID: st.UUID()}

	nl, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer nl.Close()
	fw, err := firewall.New(log.WithField("component", "firewall"), firewall.ProcSys(cfg.procSys), firewall.Backend(cfg.iptables), firewall.Instance(inst.Tag()))
	if err != nil {
		return err
	}
	am, err := ipam.New(st, ipam.Config{DefaultPools: pools, HostPrefixes: hostPrefixes(nl)}, log.WithField("component", "ipam"))
	if err != nil {
		return err
	}
	// IPv6 is optional: without ip6tables, IPv6 networks are refused with a
	// clear error and IPv4 works as usual.
	var fw6 driver.Firewall
	if t, err := firewall.NewIPv6(log.WithField("component", "firewall6"), firewall.ProcSys(cfg.procSys), firewall.Backend(cfg.iptables), firewall.Instance(inst.Tag())); err != nil {
		log.WithError(err).Warn("no IPv6 firewall; IPv6 networks will be refused")
	} else {
		fw6 = t
	}
	d, err := driver.New(nl, fw, fw6, st, log.WithField("component", "driver"), driver.WithInstance(inst), driver.WithPortReserver(ports.SocketReserver{}))
	if err != nil {
		return err
	}
	if err := d.CheckStart(); err != nil {
		return fmt.Errorf("%s: %w", st.Path(), err)
	}
	d.UseIPAM(am)     // `mynet attach` leases through mynet's IPAM
	am.UseNetworks(d) // errors about a held subnet name its network
	// The orphan reaper gives the addresses of the endpoints it removes back.
	d.UseLeases(am)
	d.SetOrphanGrace(cfg.reapGrace)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		if err := d.Restore(); err != nil {
			log.WithError(err).Warn("some networks could not be restored")
		}
	}()
	go func() {
		<-ready
		d.ReapLoop(ctx, driver.ReapInterval) // attachments whose container is gone
	}()
	if cfg.healInterval > 0 {
		go func() {
			<-ready
			d.HealLoop(ctx, cfg.healInterval)
		}()
	}
	log.WithFields(logrus.Fields{"socket": cfg.socket, "state": st.Path(), "iptables": fw.Backend(), "instance": inst.Tag()}).Info("mynet serving")
	h := plugin.WaitReady(plugin.NewHandler(d, am, log.WithField("component", "plugin")), ready)
	if err := plugin.ServeListener(ctx, l, h); err != nil {
		return err
	}
	log.Info("mynet stopped; kernel state left in place for running containers")
	return nil
}

// hostPrefixes lists the destinations of the host's routes, so automatic
// pools avoid subnets already reachable some other way.
func hostPrefixes(nl *netlink.Handle) func(v6 bool) ([]netip.Prefix, error) {
	return func(v6 bool) ([]netip.Prefix, error) {
		family := netlink.FAMILY_V4
		if v6 {
			family = netlink.FAMILY_V6
		}
		routes, err := nldump.Retry(func() ([]netlink.Route, error) {
			return nl.RouteListFiltered(family, &netlink.Route{Table: syscall.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return nil, fmt.Errorf("list host routes: %w", err)
		}
		var out []netip.Prefix
		for _, r := range routes {
			if r.Dst == nil {
				continue // default route: covers everything, avoids nothing
			}
			ones, _ := r.Dst.Mask.Size()
			if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
				p := netip.PrefixFrom(a.Unmap(), ones).Masked()
				if ones > 0 {
					out = append(out, p)
				}
			}
		}
		return out, nil
	}
}
