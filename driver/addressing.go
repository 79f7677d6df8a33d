package driver

import (
	"fmt"
	"net/netip"

	"github.com/mynet/mynet/internal/ids"
	"github.com/mynet/mynet/ipam"
)

// Docker's default IPAM, and anyone who can reach the socket, send pools
// and addresses straight to the driver; mynet's IPAM is not in the way to
// check them. These checks run before anything is touched.

// checkSubnets refuses subnets in special-purpose ranges (ipam.CheckSubnet)
// and gateways that are not a usable host address of their subnet.
func checkSubnets(n *networkState) error {
	for _, s := range []struct{ subnet, gw netip.Prefix }{{n.Subnet, n.Gateway}, {n.Subnet6, n.Gateway6}} {
		if !s.subnet.IsValid() {
			continue
		}
		if err := ipam.CheckSubnet(s.subnet); err != nil {
			return err
		}
		if what := reservedAddr(s.subnet, s.gw.Addr()); what != "" {
			return fmt.Errorf("gateway %s is the %s of subnet %s: choose another --gateway", s.gw.Addr(), what, s.subnet)
		}
	}
	return nil
}

// reservedAddr names what a is in subnet if it cannot be a host's address
// there: the IPv4 network and broadcast addresses, the IPv6 subnet-router
// anycast address (RFC 4291 2.6.1). Point-to-point subnets (IPv4 /31,
// RFC 3021; IPv6 /127, RFC 6164) and single addresses have none.
func reservedAddr(subnet netip.Prefix, a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	if subnet.Addr().Is4() && subnet.Bits() <= 30 {
		switch a {
		case subnet.Masked().Addr():
			return "network address"
		case lastAddr(subnet):
			return "broadcast address"
		}
	}
	if subnet.Addr().Is6() && subnet.Bits() <= 126 && a == subnet.Masked().Addr() {
		return "subnet-router anycast address"
	}
	return ""
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// checkEndpointSpecial refuses an endpoint address that is its subnet's
// gateway (the bridge's own address) or a reserved address of the subnet.
func checkEndpointSpecial(n *networkState, ep *endpointState) error {
	for _, c := range []struct{ addr, subnet, gw netip.Prefix }{
		{ep.Address, n.Subnet, n.Gateway}, {ep.Address6, n.Subnet6, n.Gateway6}} {
		if !c.addr.IsValid() || !c.subnet.IsValid() {
			continue
		}
		a := c.addr.Addr()
		if c.gw.IsValid() && a == c.gw.Addr() {
			return fmt.Errorf("endpoint address %s is the gateway of network %s", a, ids.Short(n.ID))
		}
		if what := reservedAddr(c.subnet, a); what != "" {
			return fmt.Errorf("endpoint address %s is the %s of subnet %s", a, what, c.subnet)
		}
	}
	return nil
}

// checkHostAddr refuses a fixed SNAT source (host_ipv4, host_ipv6) that
// cannot be a host's unicast address: unspecified, loopback, link-local,
// multicast, broadcast or in another special range. Packets leaving with
// such a source are dropped or, worse, answered somewhere else.
func checkHostAddr(a netip.Addr) error {
	if !a.IsGlobalUnicast() {
		return fmt.Errorf("%s is not a unicast address (unspecified, loopback, link-local, multicast or broadcast): want one of the host's addresses", a)
	}
	if err := ipam.CheckSubnet(netip.PrefixFrom(a, a.BitLen())); err != nil {
		return fmt.Errorf("%s is in a special-purpose range: want one of the host's addresses", a)
	}
	return nil
}
