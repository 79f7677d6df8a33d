//go:build e2e

package e2e

import (
	"net/netip"
	"testing"
)

// TestUserStory is the basic user story: create a network, run a web
// server on it, reach it by name and reach the outside world through NAT,
// then remove everything and find nothing of it left in the kernel.
func TestUserStory(t *testing.T) {
	usePlugin(t)
	const (
		net  = "mynet-e2e-story"
		web  = "e2e-story-web"
		gwIP = "10.50.0.1/24"
	)
	subnet := netip.MustParsePrefix("10.50.0.0/24")
	createMynet(t, net, "--subnet", subnet.String(), "--gateway", "10.50.0.1")
	startWeb(t, web, net)
	if ip := containerIP(t, web, net); !subnet.Contains(ip) || ip == netip.MustParseAddr("10.50.0.1") {
		t.Fatalf("%s got %v, want a host address of %v other than the gateway", web, ip, subnet)
	}

	mustContain(t, "web page by name (embedded DNS)", runOnce(t, net, httpGet("http://"+web+"/")...), webPage)
	// The ext namespace has no route back to 10.50.0.0/24: an answer proves
	// the engine namespace masqueraded the container's address.
	mustContain(t, "ext page through NAT", runOnce(t, net, httpGet(extURL)...), extPage)

	br := bridgeWithAddr(t, gwIP)
	if br == "" {
		t.Fatalf("no bridge with %s in the engine namespace:\n%s", gwIP, inEngine(t, "ip", "-br", "addr"))
	}
	if ports := portsOf(t, br); len(ports) == 0 || ports[0].kind() != "veth" {
		t.Fatalf("bridge %s: want a veth attached, have %+v", br, ports)
	}

	docker(t, "rm", "-f", web)
	docker(t, "network", "rm", net)
	assertNetworkGone(t, br, gwIP, subnet)
}

// TestPluginKilled kills mynet with SIGKILL between two `docker run`s on one
// network and restarts it: state must come back from disk (Docker replays
// nothing), so the second container gets a different address and reaches
// the first, and removing everything still cleans up fully.
func TestPluginKilled(t *testing.T) {
	e := env
	usePlugin(t)
	const (
		net    = "mynet-e2e-crash"
		first  = "e2e-crash-1"
		second = "e2e-crash-2"
		gwIP   = "10.67.0.1/24"
	)
	subnet := netip.MustParsePrefix("10.67.0.0/24")
	createMynet(t, net, "--subnet", subnet.String(), "--gateway", "10.67.0.1")
	startWeb(t, first, net)
	ip1 := containerIP(t, first, net)
	br := bridgeWithAddr(t, gwIP)

	e.KillPlugin(t)
	e.StartPlugin(t)

	startSleeper(t, second, net)
	ip2 := containerIP(t, second, net)
	if ip2 == ip1 || !subnet.Contains(ip2) {
		t.Fatalf("after the plugin restart %s got %v (first container has %v), want another address in %v", second, ip2, ip1, subnet)
	}
	mustReach(t, second, ip1.String())
	mustContain(t, "first container by name", execIn(t, second, httpGet("http://"+first+"/")...), webPage)

	docker(t, "rm", "-f", first, second)
	docker(t, "network", "rm", net)
	assertNetworkGone(t, br, gwIP, subnet)
}
