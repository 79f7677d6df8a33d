//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/mynet/mynet/e2e/harness"
)

// TestRefusedSubnets: pools no container network can live on are refused
// by mynet whichever IPAM chose them (Docker's default IPAM sends them
// straight to the driver), as is the engine host's own subnet on ext0
// (198.18.0.0/30) unless mynet.allow_host_subnet=true says it is meant;
// a refused create leaves no network and no bridge.
func TestRefusedSubnets(t *testing.T) {
	harness.UsePlugin(t)
	const net = "mynet-e2e-refused"
	tests := []struct {
		name   string
		args   []string
		mynet  bool // mynet's IPAM, else Docker's default
		want   string
		bridge string // a gateway CIDR that must not be on any bridge
	}{
		{"loopback, mynet IPAM", []string{"--subnet", "127.0.0.0/8"}, true, "loopback", "127.0.0.1/8"},
		{"loopback, default IPAM", []string{"--subnet", "127.0.0.0/8"}, false, "loopback", "127.0.0.1/8"},
		// Docker's own IPAM refuses 128.0.0.0/1 itself (it overlaps
		// docker0), and a gateway at the broadcast address ("already in
		// use"): the driver's checks of those are unit-tested.
		{"half the space, mynet IPAM", []string{"--subnet", "128.0.0.0/1", "--gateway", "128.0.0.1"}, true, "overlaps 169.254.0.0/16", "128.0.0.1/1"},
		{"reserved, default IPAM", []string{"--subnet", "240.0.0.0/8"}, false, "reserved", "240.0.0.1/8"},
		{"link-local, default IPAM", []string{"--subnet", "169.254.0.0/16"}, false, "link-local", "169.254.0.1/16"},
		{"IPv6 link-local, mynet IPAM", []string{"--ipv6", "--subnet", "10.57.3.0/24", "--subnet", "fe80::/64"}, true, "link-local", "10.57.3.1/24"},
		{"host subnet, default IPAM", []string{"--subnet", "198.18.0.0/24", "--gateway", "198.18.0.200"}, false, "which the host is connected to on ext0", "198.18.0.200/24"},
		{"host subnet, mynet IPAM", []string{"--subnet", "198.18.0.0/24", "--gateway", "198.18.0.200"}, true, "which the host is connected to on ext0", "198.18.0.200/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.mynet {
				err = harness.CreateMynetErr(t, net, tt.args...)
			} else {
				_, err = harness.DockerErr(append(append([]string{"network", "create", "-d", harness.Shared().Plugin()}, tt.args...), net)...)
				t.Cleanup(func() { harness.CleanupCmd(t, "network", "rm", net) })
			}
			if msg := harness.MustFail(t, tt.name, err); !strings.Contains(msg, tt.want) {
				t.Errorf("want %q in the error, got: %s", tt.want, msg)
			}
			assertNoNetwork(t, net)
			if br := harness.BridgeWithAddr(t, tt.bridge); br != "" {
				t.Errorf("bridge %s with %s after a refused create", br, tt.bridge)
			}
		})
	}
	t.Run("host subnet allowed", func(t *testing.T) {
		harness.CreateNetwork(t, net, "-d", harness.Shared().Plugin(), "--subnet", "198.18.0.0/24", "--gateway", "198.18.0.200",
			"-o", "mynet.allow_host_subnet=true")
		br := harness.BridgeWithAddr(t, "198.18.0.200/24")
		if br == "" {
			t.Fatal("no bridge with 198.18.0.200/24")
		}
		harness.Docker(t, "network", "rm", net)
		// The upper half only: ext0's own 198.18.0.0/30 routes stay.
		harness.AssertNetworkGone(t, br, "198.18.0.200/24", netip.MustParsePrefix("198.18.0.128/25"))
	})
}
