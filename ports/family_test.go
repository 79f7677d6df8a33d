package ports

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var (
	all6 = netip.IPv6Unspecified()
	lo6  = netip.IPv6Loopback()
)

// Which host addresses each binding gets, per endpoint families and
// host_binding_ipv4 (see family.go).
func TestResolveHost(t *testing.T) {
	global6 := netip.MustParseAddr("2001:db8::1")
	req := func(ip netip.Addr) Request {
		return Request{Proto: "tcp", HostIP: ip, Port: 80, HostPort: 8080}
	}
	tests := []struct {
		name    string
		r       Request
		binding netip.Addr
		m4, m6  Mode
		want    string // "-" for left out
		wantErr string
	}{
		{name: "dual stack default: both families", r: req(netip.Addr{}), m4: ModeNAT, m6: ModeNAT, want: "0.0.0.0 and ::"},
		{name: "dual stack, binding 0.0.0.0: both", r: req(netip.Addr{}), binding: all4, m4: ModeNAT, m6: ModeNAT, want: "0.0.0.0 and ::"},
		{name: "ipv4-only default: ipv4 only", r: req(netip.Addr{}), m4: ModeNAT, want: "0.0.0.0"},
		{name: "ipv6-only default: ::", r: req(netip.Addr{}), m6: ModeNAT, want: "::"},
		{name: "binding :: means ipv6 only", r: req(netip.Addr{}), binding: all6, m4: ModeNAT, m6: ModeNAT, want: "::"},
		{name: "binding an ipv6 address", r: req(netip.Addr{}), binding: global6, m4: ModeNAT, m6: ModeNAT, want: "2001:db8::1"},
		{name: "binding an ipv4 address", r: req(netip.Addr{}), binding: netip.MustParseAddr("192.0.2.1"), m4: ModeNAT, m6: ModeNAT, want: "192.0.2.1"},
		{name: "binding ipv4 on an ipv6-only endpoint: nothing", r: req(netip.Addr{}), binding: netip.MustParseAddr("192.0.2.1"), m6: ModeNAT, want: "-"},
		{name: "explicit 0.0.0.0 stays ipv4", r: req(all4), m4: ModeNAT, m6: ModeNAT, want: "0.0.0.0"},
		{name: "explicit ::", r: req(all6), m4: ModeNAT, m6: ModeNAT, want: "::"},
		{name: "explicit ::1", r: req(lo6), m4: ModeNAT, m6: ModeNAT, want: "::1"},
		{name: "explicit :: on an ipv4-only network: forwarded to ipv4", r: req(all6), m4: ModeNAT, want: "::"},
		{name: "explicit ::1 on an ipv4-only network", r: req(lo6), m4: ModeNAT, want: "::1"},
		{name: "sctp on :: of an ipv4-only network", r: Request{Proto: "sctp", HostIP: all6, Port: 80}, m4: ModeNAT, wantErr: "no IPv6 address to DNAT to"},
		{name: "sctp on ::1 from host_binding_ipv4", r: Request{Proto: "sctp", Port: 80}, binding: lo6, m4: ModeNAT, m6: ModeNAT, wantErr: "sctp cannot be published on ::1"},
		{name: "explicit ipv4 on an ipv6-only endpoint", r: req(netip.MustParseAddr("127.0.0.1")), m6: ModeNAT, wantErr: "no IPv4 address this network publishes to"},
		{name: "routed ipv6, default: ipv4 only", r: req(netip.Addr{}), m4: ModeNAT, m6: ModeRouted, want: "0.0.0.0"},
		{name: "routed ipv6, explicit ::: the routed port covers it", r: req(all6), m4: ModeNAT, m6: ModeRouted, want: "-"},
		{name: "both routed: no host port", r: req(netip.Addr{}), m4: ModeRouted, m6: ModeRouted, want: "-"},
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

func dual(reqs ...Request) []HostRequest {
	out, err := Resolve(reqs, netip.Addr{}, ModeNAT, ModeNAT)
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
	ms, holds, err := a.Allocate(dual(tcp(80, 8080), tcp(81, 0), tcp(82, 0)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "80/tcp -> 0.0.0.0:8080, 81-82/tcp -> 0.0.0.0:32768-32769, 80/tcp -> [::]:8080, 81-82/tcp -> [::]:32768-32769"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if r.Held() != 6 {
		t.Errorf("%d ports held, want 6 (3 per family)", r.Held())
	}
	ReleaseAll(holds)
	if r.Held() != 0 {
		t.Fatalf("%d ports held after release", r.Held())
	}

	r.Take("tcp", netip.MustParseAddr("::"), 8080)
	_, _, err = a.Allocate(dual(tcp(90, 9090), tcp(80, 8080)), nil)
	var inUse *InUseError
	if !errors.As(err, &inUse) || inUse.HostIP != all6 || inUse.Port != 8080 {
		t.Fatalf("err = %v, want port 8080 in use on ::", err)
	}
	if err.Error() != "host port 8080/tcp on :: is already in use" {
		t.Errorf("message %q", err)
	}
	if r.Held() != 0 {
		t.Errorf("%d ports held after the failure, want none", r.Held())
	}

	a, r = testAllocator()
	r.Take("udp", netip.MustParseAddr("::"), 32768)
	r.Take("udp", netip.MustParseAddr("0.0.0.0"), 32769)
	r.Take("tcp", netip.MustParseAddr("::"), 5000)
	ms, _, err = a.Allocate(dual(Request{Proto: "udp", Port: 53}, Request{Proto: "tcp", Port: 22, HostPort: 5000, HostPortEnd: 5002}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingsString(ms), "22/tcp -> 0.0.0.0:5001, 22/tcp -> [::]:5001, 53/udp -> 0.0.0.0:32770, 53/udp -> [::]:32770"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// A routed family opens the container ports on its unspecified address.
func TestRoutedPorts(t *testing.T) {
	reqs := []Request{tcp(80, 8080), tcp(81, 0), {Proto: "udp", Port: 53}}
	if got, want := mappingsString(RoutedMappings(reqs, ModeNAT, ModeRouted)), "80-81/tcp -> [::]:80-81, 53/udp -> [::]:53"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := mappingsString(RoutedMappings(reqs, ModeRouted, ModeRouted)), "80-81/tcp -> 0.0.0.0:80-81, 80-81/tcp -> [::]:80-81, 53/udp -> 0.0.0.0:53, 53/udp -> [::]:53"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
