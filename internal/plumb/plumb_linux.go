//go:build linux

// Package plumb puts the container end of a veth pair into another
// network namespace and configures it there: what the engine does for its
// endpoints after Join, done by `mynet attach` for a namespace the engine
// does not manage. It works through netlink handles bound to the two
// namespaces; the calling thread never changes namespace.
package plumb

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mynet/mynet/internal/nldump"
)

var (
	// ErrNameTaken: the namespace already has an interface of that name.
	ErrNameTaken = errors.New("interface name taken")
	// ErrDefaultRoute: the namespace already has a default route of a
	// family a gateway was given for.
	ErrDefaultRoute = errors.New("default route exists")
	// ErrNoVeth: the container end is not in the caller's namespace,
	// which is then not the namespace the plugin works in.
	ErrNoVeth = errors.New("veth not in this namespace")
)

// Spec is the interface to set up in the target namespace.
type Spec struct {
	// Veth is the container end's name in the caller's namespace.
	Veth string
	// Ifname is its name in the target namespace, e.g. eth0.
	Ifname string
	// Addrs are set on it; IPv6 ones without duplicate address detection,
	// like the engine's (the address is mynet's lease, DAD would only
	// delay it).
	Addrs []netip.Prefix
	// Gateways get a default route each; none for --no-default-route.
	Gateways []netip.Addr
}

// Check reports, before anything is created, what would make Into fail in
// the target namespace: s.Ifname taken (ErrNameTaken), or a default route
// already there for a family s has a gateway of (ErrDefaultRoute).
func Check(target *netlink.Handle, s Spec) error {
	if _, err := target.LinkByName(s.Ifname); err == nil {
		return fmt.Errorf("interface %s: %w", s.Ifname, ErrNameTaken)
	} else if !isNotFound(err) {
		return fmt.Errorf("look up %s: %w", s.Ifname, err)
	}
	for _, gw := range s.Gateways {
		if err := checkNoDefaultRoute(target, gw.Is6()); err != nil {
			return err
		}
	}
	return nil
}

// RouteError is a default route in the way of the one to add; it matches
// ErrDefaultRoute.
type RouteError struct{ Via string }

func (e *RouteError) Error() string {
	if e.Via == "" {
		return "a default route exists already"
	}
	return "a default route via " + e.Via + " exists already"
}

func (e *RouteError) Unwrap() error { return ErrDefaultRoute }

// Into moves s.Veth into ns and configures it: name, addresses, up,
// default routes. It does not undo anything on failure: deleting the
// pair's host end (which the caller asks the plugin to do) removes the
// container end wherever it is.
func Into(host *netlink.Handle, ns netns.NsHandle, s Spec) error {
	link, err := host.LinkByName(s.Veth)
	if isNotFound(err) {
		return fmt.Errorf("container end %s: %w (run mynet in the namespace the plugin serves, the engine's host namespace)", s.Veth, ErrNoVeth)
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", s.Veth, err)
	}
	if err := host.LinkSetNsFd(link, int(ns)); err != nil {
		return fmt.Errorf("move %s into the namespace: %w", s.Veth, err)
	}
	target, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in the namespace: %w", err)
	}
	defer target.Close()
	return configure(target, s, ns)
}

// configure names the moved link, addresses it, brings it up and adds the
// default routes, in the target namespace ns.
func configure(target *netlink.Handle, s Spec, ns netns.NsHandle) error {
	link, err := target.LinkByName(s.Veth)
	if err != nil {
		return fmt.Errorf("find %s in the namespace: %w", s.Veth, err)
	}
	if err := target.LinkSetName(link, s.Ifname); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("rename %s to %s: %w", s.Veth, s.Ifname, ErrNameTaken)
		}
		return fmt.Errorf("rename %s to %s: %w", s.Veth, s.Ifname, err)
	}
	if hasIPv6(s.Addrs) {
		if err := enableIPv6(ns, s.Ifname); err != nil {
			return err
		}
	}
	for _, a := range s.Addrs {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := target.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add %s to %s: %w", a, s.Ifname, err)
		}
	}
	if err := target.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", s.Ifname, err)
	}
	for _, gw := range s.Gateways {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice(), Dst: defaultDst(gw.Is6())}
		if err := target.RouteAdd(r); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return &RouteError{}
			}
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return nil
}

func hasIPv6(ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Addr().Is6() {
			return true
		}
	}
	return false
}

// enableIPv6 turns IPv6 on for ifname in ns. The engine turns it off
// (net.ipv6.conf.default.disable_ipv6=1) in containers without an IPv6
// network, so a new interface starts with it off and refuses IPv6
// addresses (EACCES). It is a sysctl, not settable over netlink; the
// kernel resolves /proc/sys/net for the namespace of the thread that
// opens the file, so a locked thread enters ns to write it.
func enableIPv6(ns netns.NsHandle, ifname string) error {
	path := "/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6"
	err := inNamespace(ns, func() error { return os.WriteFile(path, []byte("0"), 0o644) })
	if err != nil {
		return fmt.Errorf("turn IPv6 on for %s: %w", ifname, err)
	}
	return nil
}

// inNamespace runs fn on a locked OS thread inside ns. If the thread
// cannot return to its namespace it stays locked, and the runtime ends it
// with its goroutine instead of reusing it.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("this thread's namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter the namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave the namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// checkNoDefaultRoute returns a *RouteError if the namespace has a
// default route of the family.
func checkNoDefaultRoute(h *netlink.Handle, v6 bool) error {
	family := netlink.FAMILY_V4
	if v6 {
		family = netlink.FAMILY_V6
	}
	routes, err := routeList(h, family)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		e := &RouteError{}
		if r.Gw != nil {
			e.Via = r.Gw.String()
		}
		return e
	}
	return nil
}

// routeList lists the main table's routes of family, retrying a dump the
// kernel interrupted (routes changed meanwhile).
func routeList(h *netlink.Handle, family int) ([]netlink.Route, error) {
	routes, err := nldump.Retry(func() ([]netlink.Route, error) { return h.RouteList(nil, family) })
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return routes, nil
}

func defaultDst(v6 bool) *net.IPNet {
	if v6 {
		return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// Identity names a network namespace as /proc/PID/ns/net reads
// ("net:[4026532281]"): the same namespace always has the same identity,
// whichever process or path it is opened through.
func Identity(ns netns.NsHandle) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(ns), &st); err != nil {
		return "", fmt.Errorf("stat namespace: %w", err)
	}
	return fmt.Sprintf("net:[%d]", st.Ino), nil
}
