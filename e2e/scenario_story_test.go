//go:build e2e

package e2e

import (
	"net/netip"
	"testing"

	"github.com/mynet/mynet/e2e/harness"
)

// TestUserStory is the basic user story: create a network, run a web
// server on it, reach it by name and reach the outside world through NAT,
// then remove everything and find nothing of it left in the kernel.
func TestUserStory(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net  = "mynet-e2e-story"
		web  = "e2e-story-web"
		gwIP = "10.50.0.1/24"
	)
	subnet := netip.MustParsePrefix("10.50.0.0/24")
	harness.CreateMynet(t, net, "--subnet", subnet.String(), "--gateway", "10.50.0.1")
	harness.StartWeb(t, web, net)
	if ip := harness.ContainerIP(t, web, net); !subnet.Contains(ip) || ip == netip.MustParseAddr("10.50.0.1") {
		t.Fatalf("%s got %v, want a host address of %v other than the gateway", web, ip, subnet)
	}

	harness.MustContain(t, "web page by name (embedded DNS)", harness.RunOnce(t, net, harness.HTTPGet("http://"+web+"/")...), harness.WebPage)
	// The ext namespace has no route back to 10.50.0.0/24: an answer proves
	// the engine namespace masqueraded the container's address.
	harness.MustContain(t, "ext page through NAT", harness.RunOnce(t, net, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)

	br := harness.BridgeWithAddr(t, gwIP)
	if br == "" {
		t.Fatalf("no bridge with %s in the engine namespace:\n%s", gwIP, harness.InEngine(t, "ip", "-br", "addr"))
	}
	if ports := harness.PortsOf(t, br); len(ports) == 0 || ports[0].Kind() != "veth" {
		t.Fatalf("bridge %s: want a veth attached, have %+v", br, ports)
	}

	harness.Docker(t, "rm", "-f", web)
	harness.Docker(t, "network", "rm", net)
	harness.AssertNetworkGone(t, br, gwIP, subnet)
}

// TestPluginKilled kills mynet with SIGKILL between two `docker run`s on one
// network and restarts it: state must come back from disk (Docker replays
// nothing), so the second container gets a different address and reaches
// the first, and removing everything still cleans up fully.
func TestPluginKilled(t *testing.T) {
	e := harness.Shared()
	harness.UsePlugin(t)
	const (
		net    = "mynet-e2e-crash"
		first  = "e2e-crash-1"
		second = "e2e-crash-2"
		gwIP   = "10.67.0.1/24"
	)
	subnet := netip.MustParsePrefix("10.67.0.0/24")
	harness.CreateMynet(t, net, "--subnet", subnet.String(), "--gateway", "10.67.0.1")
	harness.StartWeb(t, first, net)
	ip1 := harness.ContainerIP(t, first, net)
	br := harness.BridgeWithAddr(t, gwIP)

	e.KillPlugin(t)
	e.StartPlugin(t)

	harness.StartSleeper(t, second, net)
	ip2 := harness.ContainerIP(t, second, net)
	if ip2 == ip1 || !subnet.Contains(ip2) {
		t.Fatalf("after the plugin restart %s got %v (first container has %v), want another address in %v", second, ip2, ip1, subnet)
	}
	harness.MustReach(t, second, ip1.String())
	harness.MustContain(t, "first container by name", harness.ExecIn(t, second, harness.HTTPGet("http://"+first+"/")...), harness.WebPage)

	harness.Docker(t, "rm", "-f", first, second)
	harness.Docker(t, "network", "rm", net)
	harness.AssertNetworkGone(t, br, gwIP, subnet)
}
