package driver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/ports"
)

// fakeDriver is a Driver for the pure per-family decisions: an IPv6
// applier present or not.
func fakeDriver(with6 bool) *Driver {
	d := &Driver{fw: newFakeFirewall()}
	if with6 {
		d.fw6 = newFakeFirewall()
	}
	return d
}

func testNet(subnet, subnet6, mode6 string) *networkState {
	n := &networkState{ID: "n1", Bridge: "mynet-test"}
	if subnet != "" {
		n.Subnet = netip.MustParsePrefix(subnet)
	}
	if subnet6 != "" {
		n.Subnet6 = netip.MustParsePrefix(subnet6)
	}
	n.Options.GWModeV6 = mode6
	return n
}

func testEp(addr, addr6 string, mapped ...ports.Mapping) *endpointState {
	ep := &endpointState{ID: "e1", Mapped: mapped}
	if addr != "" {
		ep.Address = netip.MustParsePrefix(addr)
	}
	if addr6 != "" {
		ep.Address6 = netip.MustParsePrefix(addr6)
	}
	return ep
}

func pm(proto, hostIP string, hostPort, port, portEnd uint16) ports.Mapping {
	return ports.Mapping{Proto: proto, HostIP: netip.MustParseAddr(hostIP), HostPort: hostPort, Port: port, PortEnd: portEnd}
}

func fwText(ms []firewall.Mapping) string {
	var out []string
	for _, m := range ms {
		s := m.String()
		if m.Routed {
			s += " routed"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func targetsText(ts map[ports.HostPort]netip.AddrPort) string {
	var out []string
	for k, v := range ts {
		out = append(out, fmt.Sprintf("%s/%s -> %s", netip.AddrPortFrom(k.IP, k.Port), k.Proto, v))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// Which mappings go to which applier, and which host ports the forwarder
// serves, and where to.
func TestFirewallMappingsAndForwardTargets(t *testing.T) {
	dualMapped := []ports.Mapping{pm("tcp", "0.0.0.0", 8080, 80, 80), pm("tcp", "::", 8080, 80, 80),
		pm("udp", "::1", 8081, 53, 53), pm("tcp", "2001:db8::1", 8082, 80, 80), pm("sctp", "::", 9000, 90, 90)}
	tests := []struct {
		name       string
		d          *Driver
		n          *networkState
		ep         *endpointState
		v4, v6     string
		forwarders string
	}{
		{
			name: "dual stack",
			d:    fakeDriver(true), n: testNet("10.1.0.0/24", "fd00:1::/64", ""),
			ep: testEp("10.1.0.2/24", "fd00:1::2/64", dualMapped...),
			v4: "8080/tcp on 0.0.0.0 -> 10.1.0.2:80",
			v6: "8080/tcp on :: -> fd00:1::2:80; 8082/tcp on 2001:db8::1 -> fd00:1::2:80; 9000/sctp on :: -> fd00:1::2:90",
			// :: for its ::1 clients, ::1 itself; not the DNATed global address, not sctp.
			forwarders: "[::1]:8081/udp -> [fd00:1::2]:53; [::]:8080/tcp -> [fd00:1::2]:80",
		},
		{
			name: "ipv4-only network: every ipv6 host port forwarded to ipv4",
			d:    fakeDriver(true), n: testNet("10.1.0.0/24", "", ""),
			ep:         testEp("10.1.0.2/24", "", pm("tcp", "::", 8083, 80, 81), pm("udp", "::1", 8081, 53, 53)),
			forwarders: "[::1]:8081/udp -> 10.1.0.2:53; [::]:8083/tcp -> 10.1.0.2:80; [::]:8084/tcp -> 10.1.0.2:81",
		},
		{
			name: "no ip6tables: ipv6 host ports forwarded to ipv4",
			d:    fakeDriver(false), n: testNet("10.1.0.0/24", "fd00:1::/64", ""),
			ep:         testEp("10.1.0.2/24", "fd00:1::2/64", pm("tcp", "::", 8083, 80, 80)),
			forwarders: "[::]:8083/tcp -> 10.1.0.2:80",
		},
		{
			name: "ipv6 only",
			d:    fakeDriver(true), n: testNet("", "fd00:1::/64", ""),
			ep:         testEp("", "fd00:1::2/64", pm("tcp", "::", 8080, 80, 80)),
			v6:         "8080/tcp on :: -> fd00:1::2:80",
			forwarders: "[::]:8080/tcp -> [fd00:1::2]:80",
		},
		{
			name: "routed ipv6",
			d:    fakeDriver(true), n: testNet("10.1.0.0/24", "fd00:1::/64", firewall.ModeRouted),
			ep: testEp("10.1.0.2/24", "fd00:1::2/64", pm("tcp", "0.0.0.0", 8080, 80, 80), pm("tcp", "::", 80, 80, 80)),
			v4: "8080/tcp on 0.0.0.0 -> 10.1.0.2:80",
			v6: "80/tcp on :: -> fd00:1::2:80 routed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v4, v6 := tt.d.firewallMappings(tt.n, tt.ep)
			if got := fwText(v4); got != tt.v4 {
				t.Errorf("IPv4 rules: %s\nwant %s", got, tt.v4)
			}
			if got := fwText(v6); got != tt.v6 {
				t.Errorf("IPv6 rules: %s\nwant %s", got, tt.v6)
			}
			if got := targetsText(tt.d.forwardTargets(tt.n, tt.ep)); got != tt.forwarders {
				t.Errorf("forwarders: %s\nwant %s", got, tt.forwarders)
			}
		})
	}
}
