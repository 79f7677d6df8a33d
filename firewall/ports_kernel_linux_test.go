//go:build linux

package firewall

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/nstest"
)

// kernelMappings cover the DNAT forms: a kept port, a shifted single port
// on a host address, a kept range and a shifted range, over tcp, udp and
// sctp.
var kernelMappings = []Mapping{
	{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.IPv4Unspecified(), HostPort: 80, Container: netip.MustParseAddr("10.1.0.2"), Port: 80, PortEnd: 80},
	{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, Container: netip.MustParseAddr("10.1.0.2"), Port: 80, PortEnd: 80},
	{Bridge: "mn-a", Proto: ProtoUDP, HostIP: netip.IPv4Unspecified(), HostPort: 20000, Container: netip.MustParseAddr("10.1.0.3"), Port: 20000, PortEnd: 20999},
	{Bridge: "mn-a", Proto: ProtoSCTP, HostIP: netip.MustParseAddr("198.18.0.1"), HostPort: 9000, Container: netip.MustParseAddr("10.1.0.3"), Port: 8000, PortEnd: 8099},
}

var kernelPortBridge = PortBridge{Bridge: "mn-a", Subnet: netip.MustParsePrefix("10.1.0.0/24")}

// withPortsSaved is dockerLikeSaved plus network mn-a plus kernelMappings,
// as both iptables backends save them.
const withPortsSaved = `filter DOCKER-FORWARD -
  -i docker0 -j ACCEPT
filter DOCKER-USER -
filter FORWARD DROP
  -j MYNET-FORWARD
  -j DOCKER-USER
  -j DOCKER-FORWARD
filter INPUT ACCEPT
  -j MYNET-INPUT
filter MYNET-ACCEPT -
  -i mn-a -m comment --comment mynet:mn-a -j ACCEPT
  -o mn-a -m comment --comment mynet:mn-a -j ACCEPT
filter MYNET-FORWARD -
  -j MYNET-ACCEPT
filter MYNET-INPUT -
  -d 127.0.0.0/8 -i mn-a -m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment mynet:mn-a -j DROP
filter OUTPUT ACCEPT
nat DOCKER -
nat INPUT ACCEPT
nat MYNET-DNAT -
  -p tcp -m tcp --dport 80 -m comment --comment mynet:mn-a -j DNAT --to-destination 10.1.0.2
  -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m comment --comment mynet:mn-a -j DNAT --to-destination 10.1.0.2:80
  -p udp -m udp --dport 20000:20999 -m comment --comment mynet:mn-a -j DNAT --to-destination 10.1.0.3
  -d 198.18.0.1/32 -p sctp -m sctp --dport 9000:9099 -m comment --comment mynet:mn-a -j DNAT --to-destination 10.1.0.3:8000-8099/9000
nat MYNET-POSTROUTING -
  -s 10.1.0.0/24 ! -o mn-a -m comment --comment mynet:mn-a -j MASQUERADE
  -s 127.0.0.0/8 -o mn-a -m comment --comment mynet:mn-a -j MASQUERADE
  -s 10.1.0.0/24 -o mn-a -m conntrack --ctstate DNAT -m comment --comment mynet:mn-a -j MASQUERADE
nat OUTPUT ACCEPT
  -m addrtype --dst-type LOCAL -j MYNET-DNAT
nat POSTROUTING ACCEPT
  -j MYNET-POSTROUTING
  -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
nat PREROUTING ACCEPT
  ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MYNET-DNAT
  -m addrtype --dst-type LOCAL -j DOCKER
mangle FORWARD ACCEPT
  -j MYNET-ISOLATION
mangle MYNET-ISOLATION -
  -i mn-a ! -o mn-a -m comment --comment mynet:mn-a -j MYNET-ISOLATION-2
  ! -i mn-a -o mn-a -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn-a -j DROP
mangle MYNET-ISOLATION-2 -
  -o docker0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -o br-+ -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -o mn-a -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn-a -j DROP
`

// Publishing ports in a namespace gives exactly withPortsSaved, twice is
// the same as once, and unpublishing, removing the network and Cleanup
// give back the baseline.
func TestKernelPortsEnsureRemove(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		ipt := newTestIPTables(t, cmd)
		baseline := saveTables(t, cmd)
		n := kernelNetworks[0]
		if err := ipt.EnsureNetwork(n); err != nil {
			t.Fatalf("EnsureNetwork: %v", err)
		}
		for i := range 2 {
			if err := ipt.EnsurePorts(kernelPortBridge, kernelMappings); err != nil {
				t.Fatalf("EnsurePorts #%d: %v", i+1, err)
			}
			if got := saveTables(t, cmd); got != withPortsSaved {
				t.Fatalf("after EnsurePorts #%d:\n%s\nwant:\n%s", i+1, got, withPortsSaved)
			}
		}
		for i := range 2 {
			if err := ipt.RemovePorts(kernelMappings); err != nil {
				t.Fatalf("RemovePorts #%d: %v", i+1, err)
			}
			if err := ipt.RemoveBridgePorts(kernelPortBridge); err != nil {
				t.Fatalf("RemoveBridgePorts #%d: %v", i+1, err)
			}
		}
		if err := ipt.RemoveNetwork(n); err != nil {
			t.Fatalf("RemoveNetwork: %v", err)
		}
		if err := ipt.Cleanup(); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if got := saveTables(t, cmd); got != baseline {
			t.Fatalf("after unpublishing and Cleanup:\n%s\nwant the baseline:\n%s", got, baseline)
		}
	})
}

// SetRouteLocalnet writes the bridge's sysctl in the caller's namespace,
// both ways, and a missing bridge is not an error.
func TestKernelSetRouteLocalnet(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mn-rl"}}); err != nil {
			t.Fatal(err)
		}
		ipt := newIPTables(testLog(), newFakeTables(), BackendNFTables, true, "/nonexistent")
		read := func() string {
			b, err := os.ReadFile("/proc/sys/net/ipv4/conf/mn-rl/route_localnet")
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(b))
		}
		for _, on := range []bool{true, true, false} {
			if err := ipt.SetRouteLocalnet("mn-rl", on); err != nil {
				t.Fatalf("SetRouteLocalnet(%v): %v", on, err)
			}
			if want := map[bool]string{true: "1", false: "0"}[on]; read() != want {
				t.Errorf("after SetRouteLocalnet(%v): route_localnet = %s", on, read())
			}
		}
		if err := ipt.SetRouteLocalnet("mn-gone", true); err != nil {
			t.Errorf("SetRouteLocalnet on a missing bridge: %v", err)
		}
	})
}
