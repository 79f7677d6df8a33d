//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestStaticIP: --ip puts exactly that address on eth0; a second container
// asking for it is refused as "in use"; an address outside the subnet is
// refused with a message that says what is wrong.
func TestStaticIP(t *testing.T) {
	usePlugin(t)
	const net = "mynet-e2e-static"
	createMynet(t, net, "--subnet", "10.51.0.0/24", "--gateway", "10.51.0.1")

	startSleeper(t, "e2e-static-1", net, "--ip", "10.51.0.77")
	if got := ifaceAddr(t, "e2e-static-1", "eth0"); got != netip.MustParsePrefix("10.51.0.77/24") {
		t.Fatalf("eth0 of e2e-static-1: %v, want 10.51.0.77/24", got)
	}

	msg := mustFail(t, "second container with --ip 10.51.0.77", startSleeperErr(t, "e2e-static-2", net, "--ip", "10.51.0.77"))
	if !containsAny(msg, "in use") {
		t.Errorf("duplicate --ip: want %q in the error, got: %s", "in use", msg)
	}
	msg = mustFail(t, "--ip outside the subnet", startSleeperErr(t, "e2e-static-3", net, "--ip", "10.99.0.5"))
	if !containsAny(msg, "10.99.0.5", "subnet", "pool", "range") {
		t.Errorf("--ip outside the subnet: want the address or the subnet named in the error, got: %s", msg)
	}

	// The refused requests must not have disturbed the first container.
	if got := ifaceAddr(t, "e2e-static-1", "eth0"); got != netip.MustParsePrefix("10.51.0.77/24") {
		t.Errorf("eth0 of e2e-static-1 after the refused requests: %v", got)
	}
}

// TestIPRange: with --ip-range, containers get addresses from that range
// only.
func TestIPRange(t *testing.T) {
	usePlugin(t)
	const net = "mynet-e2e-range"
	ipRange := netip.MustParsePrefix("10.52.0.128/25")
	createMynet(t, net, "--subnet", "10.52.0.0/24", "--ip-range", ipRange.String())

	seen := map[netip.Addr]string{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("e2e-range-%d", i)
		startSleeper(t, name, net)
		ip := containerIP(t, name, net)
		if !ipRange.Contains(ip) {
			t.Errorf("%s got %v, outside --ip-range %v", name, ip, ipRange)
		}
		if other, dup := seen[ip]; dup {
			t.Errorf("%s and %s both got %v", name, other, ip)
		}
		seen[ip] = name
		if got := ifaceAddr(t, name, "eth0"); got.Addr() != ip || got.Bits() != 24 {
			t.Errorf("%s eth0 has %v, want %v/24", name, got, ip)
		}
	}
}

// TestPoolExhaustion: a /29 holds the gateway and five containers; the
// sixth is refused with an error naming the pool and saying there is no free
// address; once one container is gone, a new one starts (on the freed
// address, the only one left).
func TestPoolExhaustion(t *testing.T) {
	usePlugin(t)
	const (
		net  = "mynet-e2e-pool"
		pool = "10.53.0.0/29"
	)
	createMynet(t, net, "--subnet", pool)

	ips := map[string]netip.Addr{}
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("e2e-pool-%d", i)
		startSleeper(t, name, net)
		ips[name] = containerIP(t, name, net)
	}
	msg := mustFail(t, "sixth container on a /29", startSleeperErr(t, "e2e-pool-6", net))
	if !strings.Contains(msg, pool) || !containsAny(msg, "no free") {
		t.Errorf("pool exhausted: want the pool %s and %q in the error, got: %s", pool, "no free", msg)
	}

	docker(t, "rm", "-f", "e2e-pool-3")
	startSleeper(t, "e2e-pool-7", net)
	if got, want := containerIP(t, "e2e-pool-7", net), ips["e2e-pool-3"]; got != want {
		t.Errorf("e2e-pool-7 got %v, want the freed %v", got, want)
	}
}

// TestAutoPool: without --subnet, mynet's IPAM picks a subnet; containers
// work on it; a second network gets a subnet that does not overlap.
func TestAutoPool(t *testing.T) {
	usePlugin(t)
	createMynet(t, "mynet-e2e-auto1")
	s1 := networkSubnet(t, "mynet-e2e-auto1")
	startWeb(t, "e2e-auto-web", "mynet-e2e-auto1")
	if ip := containerIP(t, "e2e-auto-web", "mynet-e2e-auto1"); !s1.Contains(ip) {
		t.Errorf("e2e-auto-web got %v, outside the network's subnet %v", ip, s1)
	}
	mustContain(t, "web page by name", runOnce(t, "mynet-e2e-auto1", httpGet("http://e2e-auto-web/")...), webPage)
	mustContain(t, "ext page through NAT", runOnce(t, "mynet-e2e-auto1", httpGet(extURL)...), extPage)

	createMynet(t, "mynet-e2e-auto2")
	s2 := networkSubnet(t, "mynet-e2e-auto2")
	if s1.Overlaps(s2) {
		t.Fatalf("automatic subnets overlap: %v and %v", s1, s2)
	}
	startSleeper(t, "e2e-auto-2", "mynet-e2e-auto2")
	if ip := containerIP(t, "e2e-auto-2", "mynet-e2e-auto2"); !s2.Contains(ip) {
		t.Errorf("e2e-auto-2 got %v, outside %v", ip, s2)
	}
	t.Logf("automatic subnets: %v, %v", s1, s2)
}

// TestBadInput: invalid requests are refused at network creation, with no
// network left behind.
func TestBadInput(t *testing.T) {
	usePlugin(t)

	t.Run("gateway outside subnet", func(t *testing.T) {
		err := createMynetErr(t, "mynet-e2e-badgw", "--subnet", "10.57.0.0/24", "--gateway", "10.58.0.1")
		mustFail(t, "gateway 10.58.0.1 on 10.57.0.0/24", err)
		assertNoNetwork(t, "mynet-e2e-badgw")
		if br := bridgeWithAddr(t, "10.58.0.1/24"); br != "" {
			t.Errorf("bridge %s with the refused gateway exists", br)
		}
	})
	t.Run("mtu not a number", func(t *testing.T) {
		err := createMynetErr(t, "mynet-e2e-badmtu", "--subnet", "10.57.1.0/24", "-o", "com.docker.network.driver.mtu=abc")
		if msg := mustFail(t, "mtu=abc", err); !containsAny(msg, "mtu") {
			t.Errorf("mtu=abc: want the error to mention mtu, got: %s", msg)
		}
		assertNoNetwork(t, "mynet-e2e-badmtu")
	})
	t.Run("overlapping subnet", func(t *testing.T) {
		createMynet(t, "mynet-e2e-ovl1", "--subnet", "10.59.0.0/24")
		mustFail(t, "same subnet again", createMynetErr(t, "mynet-e2e-ovl2", "--subnet", "10.59.0.0/24"))
		mustFail(t, "overlapping /25", createMynetErr(t, "mynet-e2e-ovl3", "--subnet", "10.59.0.128/25"))
		mustFail(t, "enclosing /16", createMynetErr(t, "mynet-e2e-ovl4", "--subnet", "10.59.0.0/16"))
		assertNoNetwork(t, "mynet-e2e-ovl2")
		assertNoNetwork(t, "mynet-e2e-ovl3")
		assertNoNetwork(t, "mynet-e2e-ovl4")
	})
}

func assertNoNetwork(t *testing.T, name string) {
	t.Helper()
	for _, n := range strings.Fields(docker(t, "network", "ls", "--format", "{{.Name}}")) {
		if n == name {
			t.Errorf("network %s exists after a refused create", name)
		}
	}
}

// TestDefaultIPAM: -d mynet with Docker's own IPAM (no --ipam-driver):
// mynet builds the network from the engine's pool and gateway, containers
// talk to each other and to the outside, and removal leaves nothing.
func TestDefaultIPAM(t *testing.T) {
	usePlugin(t)
	const (
		net  = "mynet-e2e-dipam"
		gwIP = "10.69.0.1/24"
	)
	subnet := netip.MustParsePrefix("10.69.0.0/24")
	createNetwork(t, net, "-d", env.Plugin(), "--subnet", subnet.String(), "--gateway", "10.69.0.1")
	startWeb(t, "e2e-dipam-web", net)
	startSleeper(t, "e2e-dipam-fixed", net, "--ip", "10.69.0.50")
	if got := ifaceAddr(t, "e2e-dipam-fixed", "eth0"); got.String() != "10.69.0.50/24" {
		t.Errorf("static --ip under Docker's IPAM: eth0 has %v", got)
	}
	mustContain(t, "web page by name", execIn(t, "e2e-dipam-fixed", httpGet("http://e2e-dipam-web/")...), webPage)
	mustContain(t, "ext page through NAT", execIn(t, "e2e-dipam-fixed", httpGet(extURL)...), extPage)
	br := bridgeWithAddr(t, gwIP)
	if br == "" {
		t.Fatalf("no bridge with %s", gwIP)
	}
	docker(t, "rm", "-f", "e2e-dipam-web", "e2e-dipam-fixed")
	docker(t, "network", "rm", net)
	assertNetworkGone(t, br, gwIP, subnet)
}
