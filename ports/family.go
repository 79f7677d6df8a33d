package ports

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
//     in-process forwarder (Forward) carries the traffic to the
//     container's IPv4 address instead, as Docker's proxy does.
//   - ::1, and ::1 reaching a :: binding: never DNATed (IPv6 has no
//     route_localnet), always served by the forwarder.

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/mynet/mynet/firewall"
)

// Mode is how one address family of an endpoint publishes ports.
type Mode int

const (
	ModeNone   Mode = iota // internal or isolated, or no address of the family
	ModeNAT                // host ports held and DNATed or forwarded
	ModeRouted             // container ports opened to direct routing
)

// Resolve resolves the host addresses of the NAT bindings among reqs
// (see the comment at the top of this file), m4 and m6 being how the
// endpoint's families publish and binding the network's
// host_binding_ipv4; bindings that only a routed family publishes take no
// host port and are left out.
func Resolve(reqs []Request, binding netip.Addr, m4, m6 Mode) ([]HostRequest, error) {
	out := make([]HostRequest, 0, len(reqs))
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

func resolveHost(r Request, binding netip.Addr, m4, m6 Mode) (HostRequest, bool, error) {
	fromBinding := false
	if !r.HostIP.IsValid() && binding.IsValid() && binding != netip.IPv4Unspecified() {
		r.HostIP, fromBinding = binding, true
	}
	if !r.HostIP.IsValid() {
		switch {
		case m4 == ModeNAT && m6 == ModeNAT:
			r.HostIP = netip.IPv4Unspecified()
			return HostRequest{Request: r, Dual: true}, true, nil
		case m4 == ModeNAT:
			r.HostIP = netip.IPv4Unspecified()
		case m6 == ModeNAT:
			r.HostIP = netip.IPv6Unspecified()
		default:
			return HostRequest{}, false, nil // routed: the container port itself
		}
		return HostRequest{Request: r}, true, nil
	}
	ip := r.HostIP
	switch {
	case ip.Is6() && ip.IsLoopback() && r.Proto == firewall.ProtoSCTP:
		return HostRequest{}, false, fmt.Errorf("port binding [::1]:%d/sctp: sctp cannot be published on ::1 (mynet forwards only tcp and udp there)", r.Port)
	case ip.Is4() && m4 == ModeNAT, ip.Is6() && m6 == ModeNAT:
		return HostRequest{Request: r}, true, nil
	case ip.Is4() && m4 == ModeRouted, ip.Is6() && m6 == ModeRouted:
		return HostRequest{}, false, nil
	case ip.Is6() && m4 == ModeNAT && r.Proto == firewall.ProtoSCTP:
		return HostRequest{}, false, fmt.Errorf("port binding [%s]:%d/sctp: the container has no IPv6 address to DNAT to, and mynet forwards only tcp and udp to its IPv4 address", ip, r.Port)
	case ip.Is6() && m4 == ModeNAT:
		return HostRequest{Request: r}, true, nil // forwarded to the IPv4 address
	case fromBinding:
		return HostRequest{}, false, nil // the network's default address is of a family this endpoint lacks
	}
	return HostRequest{}, false, fmt.Errorf("port binding on host address %s: the container has no %s address this network publishes to", ip, familyOf(ip))
}

func familyOf(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// RoutedMappings are the container ports of reqs that a routed family opens
// (host port = container port on the family's unspecified address; no
// host port is held).
func RoutedMappings(reqs []Request, m4, m6 Mode) []Mapping {
	var ps []onePort
	for _, r := range reqs {
		if m4 == ModeRouted {
			ps = append(ps, onePort{r.Proto, netip.IPv4Unspecified(), r.Port, r.Port})
		}
		if m6 == ModeRouted {
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

// IsRouted reports whether m is a routed family's opened container port
// rather than a held host port.
func (m Mapping) IsRouted(m4, m6 Mode) bool {
	return m.HostIP.Is4() && m4 == ModeRouted || m.HostIP.Is6() && m6 == ModeRouted
}
