//go:build linux

package firewall

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// ip6tablesFor is the ip6tables binary of iptables binary cmd's backend.
func ip6tablesFor(t *testing.T, cmd string) string {
	t.Helper()
	bin := strings.Replace(cmd, "iptables", "ip6tables", 1)
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("%s not installed", bin)
	}
	return bin
}

var (
	kernelContainer6  = netip.MustParseAddr("fd00:1::2")
	kernelPortBridge6 = PortBridge{Bridge: "mn-a", Subnet: netip.MustParsePrefix("fd00:1::/64")}
	kernelMappings6   = []Mapping{
		{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, Container: kernelContainer6, Port: 80, PortEnd: 80},
		{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.MustParseAddr("fd00:99::1"), HostPort: 9000, Container: kernelContainer6, Port: 8000, PortEnd: 8009},
		{Bridge: "mn-a", Proto: ProtoUDP, HostIP: netip.IPv6Unspecified(), HostPort: 5353, Container: kernelContainer6, Port: 53, PortEnd: 53},
		{Bridge: "mn-a", Proto: ProtoSCTP, HostIP: netip.IPv6Unspecified(), HostPort: 7000, Container: kernelContainer6, Port: 7000, PortEnd: 7099},
	}
)

// The IPv6 port rules as ip6tables-save prints them, on both backends.
const ports6Saved = `nat MYNET-DNAT -
  -p tcp -m tcp --dport 8080 -m comment --comment mynet:mn-a -j DNAT --to-destination [fd00:1::2]:80
  -d fd00:99::1/128 -p tcp -m tcp --dport 9000:9009 -m comment --comment mynet:mn-a -j DNAT --to-destination [fd00:1::2]:8000-8009/9000
  -p udp -m udp --dport 5353 -m comment --comment mynet:mn-a -j DNAT --to-destination [fd00:1::2]:53
  -p sctp -m sctp --dport 7000:7099 -m comment --comment mynet:mn-a -j DNAT --to-destination fd00:1::2
nat MYNET-POSTROUTING -
  -s fd00:1::/64 ! -o mn-a -m comment --comment mynet:mn-a -j MASQUERADE
  -s fd00:1::/64 -o mn-a -m conntrack --ctstate DNAT -m comment --comment mynet:mn-a -j MASQUERADE
nat OUTPUT ACCEPT
  ! -d ::1/128 -m addrtype --dst-type LOCAL -j MYNET-DNAT
nat POSTROUTING ACCEPT
  -j MYNET-POSTROUTING
nat PREROUTING ACCEPT
  -m addrtype --dst-type LOCAL -j MYNET-DNAT
`

// Publishing IPv6 ports in a namespace adds exactly the expected nat
// rules with ip6tables of each backend, twice is the same as once, and
// unpublishing, removing the network and Cleanup give back the baseline.
func TestKernelPortsEnsureRemoveIPv6(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		bin := ip6tablesFor(t, cmd)
		ipt, err := newFamily(testLog(), bin, false)
		if err != nil {
			t.Fatal(err)
		}
		baseline := saveTables(t, bin)
		n := Network{Bridge: "mn-a", Subnet: kernelPortBridge6.Subnet, Masquerade: true, ICC: true}
		if err := ipt.EnsureNetwork(n); err != nil {
			t.Fatalf("EnsureNetwork: %v", err)
		}
		for i := range 2 {
			if err := ipt.EnsurePorts(kernelPortBridge6, kernelMappings6); err != nil {
				t.Fatalf("EnsurePorts #%d: %v", i+1, err)
			}
			got := saveTables(t, bin)
			nat := got[strings.Index(got, "nat MYNET-DNAT"):]
			nat = nat[:strings.Index(nat, "mangle ")]
			if nat != ports6Saved {
				t.Fatalf("after EnsurePorts #%d, nat table:\n%s\nwant:\n%s", i+1, nat, ports6Saved)
			}
			if strings.Contains(got, "127.0.0.0/8") {
				t.Fatalf("IPv4 loopback rules in ip6tables:\n%s", got)
			}
		}
		if ok, why, err := ipt.Intact(); !ok || err != nil {
			t.Fatalf("Intact after EnsurePorts = %v %q %v", ok, why, err)
		}
		for i := range 2 {
			if err := ipt.RemovePorts(kernelMappings6); err != nil {
				t.Fatalf("RemovePorts #%d: %v", i+1, err)
			}
			if err := ipt.RemoveBridgePorts(kernelPortBridge6); err != nil {
				t.Fatalf("RemoveBridgePorts #%d: %v", i+1, err)
			}
		}
		if err := ipt.RemoveNetwork(n); err != nil {
			t.Fatalf("RemoveNetwork: %v", err)
		}
		if err := ipt.Cleanup(); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if got := saveTables(t, bin); got != baseline {
			t.Fatalf("after unpublishing and Cleanup:\n%s\nwant the baseline:\n%s", got, baseline)
		}
	})
}

// The heal check sees a flushed IPv6 MYNET-DNAT, and RemoveStale removes
// the IPv6 port rules of a bridge mynet no longer knows.
func TestKernelPortsHealStaleIPv6(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		bin := ip6tablesFor(t, cmd)
		ipt, err := newFamily(testLog(), bin, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := ipt.EnsurePorts(kernelPortBridge6, kernelMappings6[:1]); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-t", "nat", "-F", ChainDNAT).CombinedOutput(); err != nil {
			t.Fatalf("flush: %v: %s", err, out)
		}
		if ok, _, err := ipt.Intact(); ok || err != nil {
			t.Fatalf("Intact after a flush of MYNET-DNAT = %v, %v; want false", ok, err)
		}
		if err := ipt.EnsurePorts(kernelPortBridge6, kernelMappings6[:1]); err != nil {
			t.Fatal(err)
		}
		stale, err := ipt.RemoveStale(func(string) bool { return false })
		if err != nil || len(stale) != 1 || stale[0] != "mn-a" {
			t.Fatalf("RemoveStale = %v, %v; want [mn-a]", stale, err)
		}
		if got := saveTables(t, bin); strings.Contains(got, "mynet:mn-a") {
			t.Fatalf("rules of mn-a left after RemoveStale:\n%s", got)
		}
	})
}

// TestKernelPortsTrafficIPv6 publishes container ports over IPv6 and
// connects through real namespaces: from the outside on all addresses and
// on one host address (client address kept), over a shifted range and
// UDP, from the host itself (OUTPUT), from a neighbour and from the
// container itself through the gateway (hairpin masquerade). ::1 is left
// alone (the driver's forwarder serves it), the container's own address
// stays closed from outside, and unpublishing closes the ports.
func TestKernelPortsTrafficIPv6(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, h *netlink.Handle) {
		bin := ip6tablesFor(t, cmd)
		l := newLab(t, h)
		host := l.host
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mn-a"}}
		if err := h.LinkAdd(br); err != nil {
			t.Fatal(err)
		}
		l.addrUp(h, br, "fd00:1::1/64")
		c1 := l.child("va1", br, "", "fd00:1::2/64", "fd00:1::1")
		c2 := l.child("va2", br, "", "fd00:1::3/64", "fd00:1::1")
		ext := l.child("vext", nil, "fd00:99::1/64", "fd00:99::2/64", "fd00:99::1")

		ipt, err := newFamily(testLog(), bin, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := ipt.EnableForwarding(); err != nil {
			t.Fatalf("EnableForwarding: %v", err)
		}
		if out, err := exec.Command(bin, "-P", "FORWARD", "DROP").CombinedOutput(); err != nil {
			t.Fatalf("policy DROP: %v: %s", err, out)
		}
		if err := ipt.EnsureNetwork(Network{Bridge: "mn-a", Subnet: kernelPortBridge6.Subnet, Masquerade: true, ICC: true}); err != nil {
			t.Fatal(err)
		}
		va1, err := h.LinkByName("va1")
		if err == nil {
			err = h.LinkSetHairpin(va1, true)
		}
		if err != nil {
			t.Fatalf("hairpin on va1: %v", err)
		}
		ms := kernelMappings6[:3]
		if err := ipt.EnsurePorts(kernelPortBridge6, ms); err != nil {
			t.Fatalf("EnsurePorts: %v", err)
		}
		hits := l.listenPorts(c1, "fd00:1::2", append([]uint16{80, 81}, portRange(8000, 8009)...))
		l.udpEcho(c1, "[fd00:1::2]:53")

		l.reaches("outside -> [host]:8080", ext, "[fd00:99::1]:8080", hits, 80, "fd00:99::2")
		for i := range uint16(10) {
			l.reaches(fmt.Sprintf("outside -> [host]:%d (shifted range)", 9000+i), ext, fmt.Sprintf("[fd00:99::1]:%d", 9000+i), hits, 8000+i, "fd00:99::2")
		}
		l.reaches("host -> own address:8080", host, "[fd00:99::1]:8080", hits, 80, "fd00:99::1")
		l.reaches("neighbour -> gateway:8080", c2, "[fd00:1::1]:8080", hits, 80, "fd00:1::1")
		l.reaches("container -> itself via gateway:8080 (hairpin)", c1, "[fd00:1::1]:8080", hits, 80, "fd00:1::1")
		if got := l.udpAsk(ext, "[fd00:99::1]:5353", "ping"); got != "echo:ping" {
			t.Errorf("udp outside -> [host]:5353: answer %q, want %q", got, "echo:ping")
		}
		l.misses("host -> [::1]:8080 (not DNATed: the forwarder's job)", host, "[::1]:8080", hits)
		l.misses("outside -> [host]:8081 (not published)", ext, "[fd00:99::1]:8081", hits)
		l.misses("outside -> container:80 (routed, not DNATed)", ext, "[fd00:1::2]:80", hits)

		if err := ipt.RemovePorts(ms); err != nil {
			t.Fatal(err)
		}
		l.misses("outside -> [host]:8080 after RemovePorts", ext, "[fd00:99::1]:8080", hits)
	})
}
