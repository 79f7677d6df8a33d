package driver

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeLister is the part of *netlink.Handle that lists routes. It is
// asked for by type assertion, not in netlinker, so that fake kernels
// without routes need not grow a method: they have no host subnets.
type routeLister interface {
	RouteList(link netlink.Link, family int) ([]netlink.Route, error)
}

// checkHostSubnets refuses a subnet that overlaps a subnet the host is
// connected to on an interface other than the network's bridge (a route
// the kernel made for an address, proto kernel): the host would have two
// routes for one subnet, and its own neighbours on that link would be
// answered from the bridge, or not at all. mynet.allow_host_subnet=true
// lets a user who means it (a subnet bridged onward by hand) go ahead.
// Caller holds d.mu.
func (d *Driver) checkHostSubnets(n *networkState) error {
	rl, ok := d.nl.(routeLister)
	if !ok || n.Options.AllowHostSubnet {
		return nil
	}
	for _, c := range []struct {
		subnet netip.Prefix
		family int
	}{{n.Subnet, netlink.FAMILY_V4}, {n.Subnet6, netlink.FAMILY_V6}} {
		if !c.subnet.IsValid() {
			continue
		}
		if err := d.checkHostSubnet(rl, n, c.subnet, c.family); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) checkHostSubnet(rl routeLister, n *networkState, subnet netip.Prefix, family int) error {
	routes, err := connectedRoutes(rl, family)
	if err != nil {
		return err
	}
	for _, r := range routes {
		dst, ok := routeDst(r)
		if !ok || !dst.Overlaps(subnet) {
			continue
		}
		name, err := d.linkName(r.LinkIndex)
		if err != nil {
			return err
		}
		if name == n.Bridge {
			continue
		}
		return fmt.Errorf("subnet %s overlaps %s, which the host is connected to on %s: choose another subnet, or set -o %s=true if the overlap is meant", subnet, dst, name, optAllowHostSubnet)
	}
	return nil
}

// connectedRoutes lists the main table's routes the kernel made for the
// host's addresses, retrying a dump interrupted by a concurrent change.
func connectedRoutes(rl routeLister, family int) ([]netlink.Route, error) {
	var routes []netlink.Route
	var err error
	for range 5 {
		if routes, err = rl.RouteList(nil, family); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	out := routes[:0]
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_KERNEL && r.Dst != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

func routeDst(r netlink.Route) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

// linkName names the link of a route, for the message and to tell the
// network's own bridge apart.
func (d *Driver) linkName(index int) (string, error) {
	links, err := d.nl.LinkList()
	if err != nil {
		return "", fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attrs().Index == index {
			return l.Attrs().Name, nil
		}
	}
	return fmt.Sprintf("interface %d", index), nil
}
