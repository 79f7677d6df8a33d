package driver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mynet/mynet/firewall"
)

var (
	all6 = netip.IPv6Unspecified()
	lo6  = netip.IPv6Loopback()
)

// Which host addresses each binding gets, per endpoint families and
// host_binding_ipv4 (see ports_family.go).
func TestResolveHost(t *testing.T) {
	global6 := netip.MustParseAddr("2001:db8::1")
	req := func(ip netip.Addr) portRequest {
		return portRequest{Proto: "tcp", HostIP: ip, Port: 80, HostPort: 8080}
	}
	tests := []struct {
		name    string
		r       portRequest
		binding netip.Addr
		m4, m6  publishMode
		want    string // "-" for left out
		wantErr string
	}{
		{name: "dual stack default: both families", r: req(netip.Addr{}), m4: modeNAT, m6: modeNAT, want: "0.0.0.0 and ::"},
		{name: "dual stack, binding 0.0.0.0: both", r: req(netip.Addr{}), binding: all4, m4: modeNAT, m6: modeNAT, want: "0.0.0.0 and ::"},
		{name: "ipv4-only default: ipv4 only", r: req(netip.Addr{}), m4: modeNAT, want: "0.0.0.0"},
		{name: "ipv6-only default: ::", r: req(netip.Addr{}), m6: modeNAT, want: "::"},
		{name: "binding :: means ipv6 only", r: req(netip.Addr{}), binding: all6, m4: modeNAT, m6: modeNAT, want: "::"},
		{name: "binding an ipv6 address", r: req(netip.Addr{}), binding: global6, m4: modeNAT, m6: modeNAT, want: "2001:db8::1"},
		{name: "binding an ipv4 address", r: req(netip.Addr{}), binding: netip.MustParseAddr("192.0.2.1"), m4: modeNAT, m6: modeNAT, want: "192.0.2.1"},
		{name: "binding ipv4 on an ipv6-only endpoint: nothing", r: req(netip.Addr{}), binding: netip.MustParseAddr("192.0.2.1"), m6: modeNAT, want: "-"},
		{name: "explicit 0.0.0.0 stays ipv4", r: req(all4), m4: modeNAT, m6: modeNAT, want: "0.0.0.0"},
		{name: "explicit ::", r: req(all6), m4: modeNAT, m6: modeNAT, want: "::"},
		{name: "explicit ::1", r: req(lo6), m4: modeNAT, m6: modeNAT, want: "::1"},
		{name: "explicit :: on an ipv4-only network: forwarded to ipv4", r: req(all6), m4: modeNAT, want: "::"},
		{name: "explicit ::1 on an ipv4-only network", r: req(lo6), m4: modeNAT, want: "::1"},
		{name: "sctp on :: of an ipv4-only network", r: portRequest{Proto: "sctp", HostIP: all6, Port: 80}, m4: modeNAT, wantErr: "no IPv6 address to DNAT to"},
		{name: "sctp on ::1 from host_binding_ipv4", r: portRequest{Proto: "sctp", Port: 80}, binding: lo6, m4: modeNAT, m6: modeNAT, wantErr: "sctp cannot be published on ::1"},
		{name: "explicit ipv4 on an ipv6-only endpoint", r: req(netip.MustParseAddr("127.0.0.1")), m6: modeNAT, wantErr: "no IPv4 address this network publishes to"},
		{name: "routed ipv6, default: ipv4 only", r: req(netip.Addr{}), m4: modeNAT, m6: modeRouted, want: "0.0.0.0"},
		{name: "routed ipv6, explicit ::: the routed port covers it", r: req(all6), m4: modeNAT, m6: modeRouted, want: "-"},
		{name: "both routed: no host port", r: req(netip.Addr{}), m4: modeRouted, m6: modeRouted, want: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr, ok, err := resolveHost(tt.r, tt.binding, tt.m4, tt.m6)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := "-"
			if ok {
				got = hr.hostText()
			}
			if got != tt.want {
				t.Errorf("host addresses %s, want %s", got, tt.want)
			}
		})
	}
}

func dual(reqs ...portRequest) []hostRequest {
	out, err := hostRequests(reqs, netip.Addr{}, modeNAT, modeNAT)
	if err != nil {
		panic(err)
	}
	return out
}

// A default binding of a dual-stack endpoint gets the same host port on
// 0.0.0.0 and ::: a fixed port taken in either family fails naming it and
// holds nothing; an ephemeral or range choice skips ports taken in either.
func TestAllocateDualStack(t *testing.T) {
	a, r := testAllocator()
	ms, holds, err := a.allocate(dual(tcp(80, 8080), tcp(81, 0), tcp(82, 0)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "80/tcp -> 0.0.0.0:8080, 81-82/tcp -> 0.0.0.0:32768-32769, 80/tcp -> [::]:8080, 81-82/tcp -> [::]:32768-32769"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if r.heldCount() != 6 {
		t.Errorf("%d ports held, want 6 (3 per family)", r.heldCount())
	}
	releaseAll(holds)
	if r.heldCount() != 0 {
		t.Fatalf("%d ports held after release", r.heldCount())
	}

	r.take("tcp", "::", 8080)
	_, _, err = a.allocate(dual(tcp(90, 9090), tcp(80, 8080)), nil)
	var inUse *PortInUseError
	if !errors.As(err, &inUse) || inUse.HostIP != all6 || inUse.Port != 8080 {
		t.Fatalf("err = %v, want port 8080 in use on ::", err)
	}
	if err.Error() != "host port 8080/tcp on :: is already in use" {
		t.Errorf("message %q", err)
	}
	if r.heldCount() != 0 {
		t.Errorf("%d ports held after the failure, want none", r.heldCount())
	}

	a, r = testAllocator()
	r.take("udp", "::", 32768)
	r.take("udp", "0.0.0.0", 32769)
	r.take("tcp", "::", 5000)
	ms, _, err = a.allocate(dual(portRequest{Proto: "udp", Port: 53}, portRequest{Proto: "tcp", Port: 22, HostPort: 5000, HostPortEnd: 5002}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "22/tcp -> 0.0.0.0:5001, 22/tcp -> [::]:5001, 53/udp -> 0.0.0.0:32770, 53/udp -> [::]:32770"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

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

func testEp(addr, addr6 string, mapped ...portMapping) *endpointState {
	ep := &endpointState{ID: "e1", Mapped: mapped}
	if addr != "" {
		ep.Address = netip.MustParsePrefix(addr)
	}
	if addr6 != "" {
		ep.Address6 = netip.MustParsePrefix(addr6)
	}
	return ep
}

func pm(proto, hostIP string, hostPort, port, portEnd uint16) portMapping {
	return portMapping{Proto: proto, HostIP: netip.MustParseAddr(hostIP), HostPort: hostPort, Port: port, PortEnd: portEnd}
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

func targetsText(ts map[fwdKey]netip.AddrPort) string {
	var out []string
	for k, v := range ts {
		out = append(out, fmt.Sprintf("%s/%s -> %s", netip.AddrPortFrom(k.ip, k.port), k.proto, v))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// Which mappings go to which applier, and which host ports the forwarder
// serves, and where to.
func TestFirewallMappingsAndForwardTargets(t *testing.T) {
	dualMapped := []portMapping{pm("tcp", "0.0.0.0", 8080, 80, 80), pm("tcp", "::", 8080, 80, 80),
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

// A routed family opens the container ports on its unspecified address.
func TestRoutedPorts(t *testing.T) {
	reqs := []portRequest{tcp(80, 8080), tcp(81, 0), {Proto: "udp", Port: 53}}
	if got, want := mappingsString(routedPorts(reqs, modeNAT, modeRouted)), "80-81/tcp -> [::]:80-81, 53/udp -> [::]:53"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := mappingsString(routedPorts(reqs, modeRouted, modeRouted)), "80-81/tcp -> 0.0.0.0:80-81, 80-81/tcp -> [::]:80-81, 53/udp -> 0.0.0.0:53, 53/udp -> [::]:53"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
