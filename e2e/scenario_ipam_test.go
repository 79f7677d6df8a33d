//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/mynet/mynet/e2e/harness"
)

// TestStaticIP: --ip puts exactly that address on eth0; a second container
// asking for it is refused as "in use"; an address outside the subnet is
// refused with a message that says what is wrong.
func TestStaticIP(t *testing.T) {
	harness.UsePlugin(t)
	const net = "mynet-e2e-static"
	harness.CreateMynet(t, net, "--subnet", "10.51.0.0/24", "--gateway", "10.51.0.1")

	harness.StartSleeper(t, "e2e-static-1", net, "--ip", "10.51.0.77")
	if got := harness.IfaceAddr(t, "e2e-static-1", "eth0"); got != netip.MustParsePrefix("10.51.0.77/24") {
		t.Fatalf("eth0 of e2e-static-1: %v, want 10.51.0.77/24", got)
	}

	msg := harness.MustFail(t, "second container with --ip 10.51.0.77", harness.StartSleeperErr(t, "e2e-static-2", net, "--ip", "10.51.0.77"))
	if !harness.ContainsAny(msg, "in use") {
		t.Errorf("duplicate --ip: want %q in the error, got: %s", "in use", msg)
	}
	msg = harness.MustFail(t, "--ip outside the subnet", harness.StartSleeperErr(t, "e2e-static-3", net, "--ip", "10.99.0.5"))
	if !harness.ContainsAny(msg, "10.99.0.5", "subnet", "pool", "range") {
		t.Errorf("--ip outside the subnet: want the address or the subnet named in the error, got: %s", msg)
	}

	// The refused requests must not have disturbed the first container.
	if got := harness.IfaceAddr(t, "e2e-static-1", "eth0"); got != netip.MustParsePrefix("10.51.0.77/24") {
		t.Errorf("eth0 of e2e-static-1 after the refused requests: %v", got)
	}
}

// TestIPRange: with --ip-range, containers get addresses from that range
// only.
func TestIPRange(t *testing.T) {
	harness.UsePlugin(t)
	const net = "mynet-e2e-range"
	ipRange := netip.MustParsePrefix("10.52.0.128/25")
	harness.CreateMynet(t, net, "--subnet", "10.52.0.0/24", "--ip-range", ipRange.String())

	seen := map[netip.Addr]string{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("e2e-range-%d", i)
		harness.StartSleeper(t, name, net)
		ip := harness.ContainerIP(t, name, net)
		if !ipRange.Contains(ip) {
			t.Errorf("%s got %v, outside --ip-range %v", name, ip, ipRange)
		}
		if other, dup := seen[ip]; dup {
			t.Errorf("%s and %s both got %v", name, other, ip)
		}
		seen[ip] = name
		if got := harness.IfaceAddr(t, name, "eth0"); got.Addr() != ip || got.Bits() != 24 {
			t.Errorf("%s eth0 has %v, want %v/24", name, got, ip)
		}
	}
}

// TestPoolExhaustion: a /29 holds the gateway and five containers; the
// sixth is refused with an error naming the pool and saying there is no free
// address; once one container is gone, a new one starts (on the freed
// address, the only one left).
func TestPoolExhaustion(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net  = "mynet-e2e-pool"
		pool = "10.53.0.0/29"
	)
	harness.CreateMynet(t, net, "--subnet", pool)

	ips := map[string]netip.Addr{}
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("e2e-pool-%d", i)
		harness.StartSleeper(t, name, net)
		ips[name] = harness.ContainerIP(t, name, net)
	}
	msg := harness.MustFail(t, "sixth container on a /29", harness.StartSleeperErr(t, "e2e-pool-6", net))
	if !strings.Contains(msg, pool) || !harness.ContainsAny(msg, "no free") {
		t.Errorf("pool exhausted: want the pool %s and %q in the error, got: %s", pool, "no free", msg)
	}

	harness.Docker(t, "rm", "-f", "e2e-pool-3")
	harness.StartSleeper(t, "e2e-pool-7", net)
	if got, want := harness.ContainerIP(t, "e2e-pool-7", net), ips["e2e-pool-3"]; got != want {
		t.Errorf("e2e-pool-7 got %v, want the freed %v", got, want)
	}
}

// TestAutoPool: without --subnet, mynet's IPAM picks a subnet; containers
// work on it; a second network gets a subnet that does not overlap.
func TestAutoPool(t *testing.T) {
	harness.UsePlugin(t)
	harness.CreateMynet(t, "mynet-e2e-auto1")
	s1 := harness.NetworkSubnet(t, "mynet-e2e-auto1")
	harness.StartWeb(t, "e2e-auto-web", "mynet-e2e-auto1")
	if ip := harness.ContainerIP(t, "e2e-auto-web", "mynet-e2e-auto1"); !s1.Contains(ip) {
		t.Errorf("e2e-auto-web got %v, outside the network's subnet %v", ip, s1)
	}
	harness.MustContain(t, "web page by name", harness.RunOnce(t, "mynet-e2e-auto1", harness.HTTPGet("http://e2e-auto-web/")...), harness.WebPage)
	harness.MustContain(t, "ext page through NAT", harness.RunOnce(t, "mynet-e2e-auto1", harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)

	harness.CreateMynet(t, "mynet-e2e-auto2")
	s2 := harness.NetworkSubnet(t, "mynet-e2e-auto2")
	if s1.Overlaps(s2) {
		t.Fatalf("automatic subnets overlap: %v and %v", s1, s2)
	}
	harness.StartSleeper(t, "e2e-auto-2", "mynet-e2e-auto2")
	if ip := harness.ContainerIP(t, "e2e-auto-2", "mynet-e2e-auto2"); !s2.Contains(ip) {
		t.Errorf("e2e-auto-2 got %v, outside %v", ip, s2)
	}
	t.Logf("automatic subnets: %v, %v", s1, s2)
}

// TestBadInput: invalid requests are refused at network creation, with no
// network left behind.
func TestBadInput(t *testing.T) {
	harness.UsePlugin(t)

	t.Run("gateway outside subnet", func(t *testing.T) {
		err := harness.CreateMynetErr(t, "mynet-e2e-badgw", "--subnet", "10.57.0.0/24", "--gateway", "10.58.0.1")
		harness.MustFail(t, "gateway 10.58.0.1 on 10.57.0.0/24", err)
		assertNoNetwork(t, "mynet-e2e-badgw")
		if br := harness.BridgeWithAddr(t, "10.58.0.1/24"); br != "" {
			t.Errorf("bridge %s with the refused gateway exists", br)
		}
	})
	t.Run("mtu not a number", func(t *testing.T) {
		err := harness.CreateMynetErr(t, "mynet-e2e-badmtu", "--subnet", "10.57.1.0/24", "-o", "com.docker.network.driver.mtu=abc")
		if msg := harness.MustFail(t, "mtu=abc", err); !harness.ContainsAny(msg, "mtu") {
			t.Errorf("mtu=abc: want the error to mention mtu, got: %s", msg)
		}
		assertNoNetwork(t, "mynet-e2e-badmtu")
	})
	t.Run("overlapping subnet", func(t *testing.T) {
		harness.CreateMynet(t, "mynet-e2e-ovl1", "--subnet", "10.59.0.0/24")
		harness.MustFail(t, "same subnet again", harness.CreateMynetErr(t, "mynet-e2e-ovl2", "--subnet", "10.59.0.0/24"))
		harness.MustFail(t, "overlapping /25", harness.CreateMynetErr(t, "mynet-e2e-ovl3", "--subnet", "10.59.0.128/25"))
		harness.MustFail(t, "enclosing /16", harness.CreateMynetErr(t, "mynet-e2e-ovl4", "--subnet", "10.59.0.0/16"))
		assertNoNetwork(t, "mynet-e2e-ovl2")
		assertNoNetwork(t, "mynet-e2e-ovl3")
		assertNoNetwork(t, "mynet-e2e-ovl4")
	})
}

func assertNoNetwork(t *testing.T, name string) {
	t.Helper()
	for _, n := range strings.Fields(harness.Docker(t, "network", "ls", "--format", "{{.Name}}")) {
		if n == name {
			t.Errorf("network %s exists after a refused create", name)
		}
	}
}

// TestDefaultIPAM: -d mynet with Docker's own IPAM (no --ipam-driver):
// mynet builds the network from the engine's pool and gateway, containers
// talk to each other and to the outside, and removal leaves nothing.
func TestDefaultIPAM(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net  = "mynet-e2e-dipam"
		gwIP = "10.69.0.1/24"
	)
	subnet := netip.MustParsePrefix("10.69.0.0/24")
	harness.CreateNetwork(t, net, "-d", harness.Shared().Plugin(), "--subnet", subnet.String(), "--gateway", "10.69.0.1")
	harness.StartWeb(t, "e2e-dipam-web", net)
	harness.StartSleeper(t, "e2e-dipam-fixed", net, "--ip", "10.69.0.50")
	if got := harness.IfaceAddr(t, "e2e-dipam-fixed", "eth0"); got.String() != "10.69.0.50/24" {
		t.Errorf("static --ip under Docker's IPAM: eth0 has %v", got)
	}
	harness.MustContain(t, "web page by name", harness.ExecIn(t, "e2e-dipam-fixed", harness.HTTPGet("http://e2e-dipam-web/")...), harness.WebPage)
	harness.MustContain(t, "ext page through NAT", harness.ExecIn(t, "e2e-dipam-fixed", harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
	br := harness.BridgeWithAddr(t, gwIP)
	if br == "" {
		t.Fatalf("no bridge with %s", gwIP)
	}
	harness.Docker(t, "rm", "-f", "e2e-dipam-web", "e2e-dipam-fixed")
	harness.Docker(t, "network", "rm", net)
	harness.AssertNetworkGone(t, br, gwIP, subnet)
}
