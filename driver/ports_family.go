package driver

// Published ports per address family.
//
// Each family of an endpoint publishes in one of three ways, from the
// network's gateway mode for that family and whether the endpoint has an
// address of it: not at all, by NAT (host ports held, DNAT rules in that
// family's applier) or routed (the container ports opened to direct
// routing, no host port).
//
// Host addresses of NAT bindings, as Docker's bridge driver with the
// userland proxy off does, plus what its proxy adds for IPv6:
//   - no host address: 0.0.0.0 and ::, the same host port in both, when
//     both families publish by NAT; else the one family that does (an
//     IPv4-only network stays IPv4-only). host_binding_ipv4 replaces this
//     with its address (0.0.0.0 keeps the default, :: means IPv6 only).
//   - an IPv4 address: IPv4 only.
//   - an IPv6 address: DNAT with ip6tables to the container's IPv6 address.
//     Without one (an IPv4-only endpoint) there is nothing to DNAT to; the
//     in-process forwarder (forward_linux.go) carries the traffic to the
//     container's IPv4 address instead, as Docker's proxy does.
//   - ::1, and ::1 reaching a :: binding: never DNATed (IPv6 has no
//     route_localnet), always served by the forwarder.

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/mynet/mynet/firewall"
)

// publishMode is how one address family of an endpoint publishes ports.
type publishMode int

const (
	modeNone   publishMode = iota // internal or isolated, or no address of the family
	modeNAT                       // host ports held and DNATed or forwarded
	modeRouted                    // container ports opened to direct routing
)

// familyModes says how ep publishes over IPv4 and over IPv6.
func (d *Driver) familyModes(n *networkState, ep *endpointState) (m4, m6 publishMode) {
	m4 = modeOf(n.Options.Internal, n.Options.GWModeV4, n.Subnet.IsValid() && ep.Address.IsValid())
	m6 = modeOf(n.Options.Internal, n.Options.GWModeV6, d.fw6 != nil && n.Subnet6.IsValid() && ep.Address6.IsValid())
	return m4, m6
}

func modeOf(internal bool, gatewayMode string, addressed bool) publishMode {
	switch {
	case internal || !addressed || gatewayMode == firewall.ModeIsolated:
		return modeNone
	case gatewayMode == firewall.ModeRouted:
		return modeRouted
	}
	return modeNAT
}

// hostRequests resolves the host addresses of the NAT bindings among
// reqs (see the file comment); bindings that only a routed family
// publishes take no host port and are left out.
func hostRequests(reqs []portRequest, binding netip.Addr, m4, m6 publishMode) ([]hostRequest, error) {
	out := make([]hostRequest, 0, len(reqs))
	for _, r := range reqs {
		hr, ok, err := resolveHost(r, binding, m4, m6)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, hr)
		}
	}
	return out, nil
}

func resolveHost(r portRequest, binding netip.Addr, m4, m6 publishMode) (hostRequest, bool, error) {
	fromBinding := false
	if !r.HostIP.IsValid() && binding.IsValid() && binding != netip.IPv4Unspecified() {
		r.HostIP, fromBinding = binding, true
	}
	if !r.HostIP.IsValid() {
		switch {
		case m4 == modeNAT && m6 == modeNAT:
			r.HostIP = netip.IPv4Unspecified()
			return hostRequest{portRequest: r, dual: true}, true, nil
		case m4 == modeNAT:
			r.HostIP = netip.IPv4Unspecified()
		case m6 == modeNAT:
			r.HostIP = netip.IPv6Unspecified()
		default:
			return hostRequest{}, false, nil // routed: the container port itself
		}
		return hostRequest{portRequest: r}, true, nil
	}
	ip := r.HostIP
	switch {
	case ip.Is6() && ip.IsLoopback() && r.Proto == firewall.ProtoSCTP:
		return hostRequest{}, false, fmt.Errorf("port binding [::1]:%d/sctp: sctp cannot be published on ::1 (mynet forwards only tcp and udp there)", r.Port)
	case ip.Is4() && m4 == modeNAT, ip.Is6() && m6 == modeNAT:
		return hostRequest{portRequest: r}, true, nil
	case ip.Is4() && m4 == modeRouted, ip.Is6() && m6 == modeRouted:
		return hostRequest{}, false, nil
	case ip.Is6() && m4 == modeNAT && r.Proto == firewall.ProtoSCTP:
		return hostRequest{}, false, fmt.Errorf("port binding [%s]:%d/sctp: the container has no IPv6 address to DNAT to, and mynet forwards only tcp and udp to its IPv4 address", ip, r.Port)
	case ip.Is6() && m4 == modeNAT:
		return hostRequest{portRequest: r}, true, nil // forwarded to the IPv4 address
	case fromBinding:
		return hostRequest{}, false, nil // the network's default address is of a family this endpoint lacks
	}
	return hostRequest{}, false, fmt.Errorf("port binding on host address %s: the container has no %s address this network publishes to", ip, familyOf(ip))
}

func familyOf(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// routedPorts are the container ports of reqs that a routed family opens
// (host port = container port on the family's unspecified address; no
// host port is held).
func routedPorts(reqs []portRequest, m4, m6 publishMode) []portMapping {
	var ps []onePort
	for _, r := range reqs {
		if m4 == modeRouted {
			ps = append(ps, onePort{r.Proto, netip.IPv4Unspecified(), r.Port, r.Port})
		}
		if m6 == modeRouted {
			ps = append(ps, onePort{r.Proto, netip.IPv6Unspecified(), r.Port, r.Port})
		}
	}
	slices.SortFunc(ps, func(x, y onePort) int {
		return cmpAll(x.hostIP.Compare(y.hostIP), int(x.port)-int(y.port), cmpString(x.proto, y.proto))
	})
	return mergeRuns(slices.Compact(ps))
}

func cmpString(x, y string) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// isRouted reports whether m is a routed family's opened container port
// rather than a held host port.
func isRouted(m portMapping, m4, m6 publishMode) bool {
	return m.HostIP.Is4() && m4 == modeRouted || m.HostIP.Is6() && m6 == modeRouted
}

// firewallMappings are ep's published mappings as rules, per family. An
// IPv6 host address goes to the IPv6 applier only if the container has an
// IPv6 address to DNAT to, and never ::1; the forwarder serves the rest.
func (d *Driver) firewallMappings(n *networkState, ep *endpointState) (v4, v6 []firewall.Mapping) {
	m4, m6 := d.familyModes(n, ep)
	for _, m := range ep.Mapped {
		fm := firewall.Mapping{Bridge: n.Bridge, Proto: m.Proto, HostIP: m.HostIP, HostPort: m.HostPort,
			Port: m.Port, PortEnd: m.PortEnd}
		switch {
		case m.HostIP.Is4() && m4 != modeNone:
			fm.Container, fm.Routed = ep.Address.Addr(), m4 == modeRouted
			v4 = append(v4, fm)
		case m.HostIP.Is6() && m6 != modeNone && !m.HostIP.IsLoopback():
			fm.Container, fm.Routed = ep.Address6.Addr(), m6 == modeRouted
			v6 = append(v6, fm)
		}
	}
	return v4, v6
}

// fwdKey names one held host port.
type fwdKey struct {
	proto string
	ip    netip.Addr
	port  uint16
}

// forwardTargets maps each host port of ep that the forwarder serves to
// the container address and port it goes to: ::1 always, :: for its ::1
// clients, and any IPv6 host address of an endpoint whose IPv6 is not
// published by NAT (the 6-to-4 case). The target is the container's IPv6
// address when that family publishes by NAT, else its IPv4 address. SCTP
// is never forwarded (refused where it would need to be).
func (d *Driver) forwardTargets(n *networkState, ep *endpointState) map[fwdKey]netip.AddrPort {
	m4, m6 := d.familyModes(n, ep)
	out := map[fwdKey]netip.AddrPort{}
	for _, m := range ep.Mapped {
		if !m.HostIP.Is6() || m.Proto == firewall.ProtoSCTP || isRouted(m, m4, m6) {
			continue
		}
		var target netip.Addr
		switch {
		case m6 == modeNAT && (m.HostIP.IsLoopback() || m.HostIP.IsUnspecified()):
			target = ep.Address6.Addr()
		case m6 != modeNAT && m4 == modeNAT:
			target = ep.Address.Addr()
		default:
			continue // DNATed by ip6tables, ::1 cannot reach it
		}
		for i := 0; i <= int(m.PortEnd-m.Port); i++ {
			out[fwdKey{m.Proto, m.HostIP, m.HostPort + uint16(i)}] = netip.AddrPortFrom(target, m.Port+uint16(i))
		}
	}
	return out
}
