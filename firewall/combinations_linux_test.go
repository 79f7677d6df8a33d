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

// TestKernelAllCombinations applies every ICC x masquerade x internal x
// gateway mode combination (plus SNAT and trusted interfaces), for IPv4
// and IPv6, on both backends, and checks that removing them returns
// iptables-save and ip6tables-save exactly to the baseline.
func TestKernelAllCombinations(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		for _, v6 := range []bool{false, true} {
			bin := cmd
			if v6 {
				bin = strings.Replace(cmd, "iptables", "ip6tables", 1)
			}
			if _, err := exec.LookPath(bin); err != nil {
				t.Skipf("%s not installed", bin)
			}
			ipt, err := newFamily(testLog(), bin, !v6)
			if err != nil {
				t.Fatal(err)
			}
			baseline := saveTables(t, bin)
			nets := combinationNetworks(v6)
			for _, n := range nets {
				if err := ipt.EnsureNetwork(n); err != nil {
					t.Fatalf("%s: EnsureNetwork(%+v): %v", bin, n, err)
				}
			}
			applied := saveTables(t, bin)
			for _, n := range nets {
				if !strings.Contains(applied, "mynet:"+n.Bridge+" ") {
					t.Errorf("%s: no rule for %s (%+v)", bin, n.Bridge, n)
				}
			}
			for _, n := range nets {
				if err := ipt.RemoveNetwork(n); err != nil {
					t.Fatalf("%s: RemoveNetwork(%s): %v", bin, n.Bridge, err)
				}
			}
			if err := ipt.Cleanup(); err != nil {
				t.Fatalf("%s: Cleanup: %v", bin, err)
			}
			if got := saveTables(t, bin); got != baseline {
				t.Errorf("%s: not back to baseline:\n%s\nwant:\n%s", bin, got, baseline)
			}
		}
	})
}

// combinationNetworks gives each combination its own bridge and subnet.
func combinationNetworks(v6 bool) []Network {
	var out []Network
	for i, n := range allCombinations() {
		n.Bridge = fmt.Sprintf("mnc%d", i)
		n.Subnet = netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/24", 100+i))
		if v6 {
			n.Subnet = netip.MustParsePrefix(fmt.Sprintf("fd00:%x::/64", 100+i))
		}
		out = append(out, n)
	}
	snat := Network{Bridge: "mnsnat", ICC: true, Masquerade: true, TrustedIfaces: []string{"eth9"},
		Subnet: netip.MustParsePrefix("10.99.0.0/24"), SNATSource: netip.MustParseAddr("192.0.2.9")}
	if v6 {
		snat.Subnet, snat.SNATSource = netip.MustParsePrefix("fd00:99::/64"), netip.MustParseAddr("2001:db8::9")
	}
	return append(out, snat)
}
