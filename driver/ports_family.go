package driver

// Published ports per address family: how each family of an endpoint
// publishes (familyModes), which mappings go to which family's applier
// (firewallMappings) and which host ports the forwarder serves
// (forwardTargets). Which host addresses a binding gets is ports.Resolve.

import (
	"net/netip"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/ports"
)

// familyModes says how ep publishes over IPv4 and over IPv6.
func (d *Driver) familyModes(n *networkState, ep *endpointState) (m4, m6 ports.Mode) {
	m4 = modeOf(n.Options.Internal, n.Options.GWModeV4, n.Subnet.IsValid() && ep.Address.IsValid())
	m6 = modeOf(n.Options.Internal, n.Options.GWModeV6, d.fw6 != nil && n.Subnet6.IsValid() && ep.Address6.IsValid())
	return m4, m6
}

func modeOf(internal bool, gatewayMode string, addressed bool) ports.Mode {
	switch {
	case internal || !addressed || gatewayMode == firewall.ModeIsolated:
		return ports.ModeNone
	case gatewayMode == firewall.ModeRouted:
		return ports.ModeRouted
	}
	return ports.ModeNAT
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
		case m.HostIP.Is4() && m4 != ports.ModeNone:
			fm.Container, fm.Routed = ep.Address.Addr(), m4 == ports.ModeRouted
			v4 = append(v4, fm)
		case m.HostIP.Is6() && m6 != ports.ModeNone && !m.HostIP.IsLoopback():
			fm.Container, fm.Routed = ep.Address6.Addr(), m6 == ports.ModeRouted
			v6 = append(v6, fm)
		}
	}
	return v4, v6
}

// forwardTargets maps each host port of ep that the forwarder serves to
// the container address and port it goes to: ::1 always, :: for its ::1
// clients, and any IPv6 host address of an endpoint whose IPv6 is not
// published by NAT (the 6-to-4 case). The target is the container's IPv6
// address when that family publishes by NAT, else its IPv4 address. SCTP
// is never forwarded (refused where it would need to be).
func (d *Driver) forwardTargets(n *networkState, ep *endpointState) map[ports.HostPort]netip.AddrPort {
	m4, m6 := d.familyModes(n, ep)
	out := map[ports.HostPort]netip.AddrPort{}
	for _, m := range ep.Mapped {
		if !m.HostIP.Is6() || m.Proto == firewall.ProtoSCTP || m.IsRouted(m4, m6) {
			continue
		}
		var target netip.Addr
		switch {
		case m6 == ports.ModeNAT && (m.HostIP.IsLoopback() || m.HostIP.IsUnspecified()):
			target = ep.Address6.Addr()
		case m6 != ports.ModeNAT && m4 == ports.ModeNAT:
			target = ep.Address.Addr()
		default:
			continue // DNATed by ip6tables, ::1 cannot reach it
		}
		for i := 0; i <= int(m.PortEnd-m.Port); i++ {
			out[ports.HostPort{Proto: m.Proto, IP: m.HostIP, Port: m.HostPort + uint16(i)}] = netip.AddrPortFrom(target, m.Port+uint16(i))
		}
	}
	return out
}
