//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestHarnessBridge checks the harness itself with Docker's own bridge
// driver, no mynet involved: two containers on a user bridge network reach
// each other by name and address and reach the ext server through the
// engine's masquerade; the engine's rules live in the engine namespace.
func TestHarnessBridge(t *testing.T) {
	useEngine(t)
	const net = "e2e-harness-br"
	createNetwork(t, net, "-d", "bridge", "--subnet", "10.60.0.0/24")
	runDetached(t, "e2e-hb-web", "--network", net, image, "httpd", "-f", "-p", "80", "-h", "/var/www")
	runDetached(t, "e2e-hb-client", "--network", net, image, "sleep", "600")

	webIP := containerIP(t, "e2e-hb-web", net)
	clientIP := containerIP(t, "e2e-hb-client", net)
	subnet := netip.MustParsePrefix("10.60.0.0/24")
	if !subnet.Contains(webIP) || !subnet.Contains(clientIP) || webIP == clientIP {
		t.Fatalf("addresses %v and %v: want two distinct ones in %v", webIP, clientIP, subnet)
	}

	execIn(t, "e2e-hb-client", ping1(webIP.String())...)
	execIn(t, "e2e-hb-web", ping1(clientIP.String())...)
	mustContain(t, "web page by name", execIn(t, "e2e-hb-client", httpGet("http://e2e-hb-web/")...), webPage)
	mustContain(t, "ext page via NAT", execIn(t, "e2e-hb-client", httpGet(extURL)...), extPage)
	mustContain(t, "ext page from a --rm container", runOnce(t, net, httpGet(extURL)...), extPage)

	rules := inEngine(t, "iptables-save", "-t", "nat")
	if !strings.Contains(rules, "10.60.0.0/24") || !strings.Contains(rules, "MASQUERADE") {
		t.Errorf("engine netns nat table has no masquerade for 10.60.0.0/24:\n%s", rules)
	}
}

// TestHarnessEngineRestart checks RestartEngine with Docker's own bridge
// driver: a --restart always container comes back with working networking.
func TestHarnessEngineRestart(t *testing.T) {
	e := useEngine(t)
	const net = "e2e-harness-rs"
	createNetwork(t, net, "-d", "bridge", "--subnet", "10.61.0.0/24")
	runDetached(t, "e2e-hr-web", "--restart", "always", "--stop-timeout", "1", "--network", net, image, "httpd", "-f", "-p", "80", "-h", "/var/www")

	e.RestartEngine(t)
	if err := waitFor(90*time.Second, 200*time.Millisecond, func() error {
		if !containerRunning(t, "e2e-hr-web") {
			return errNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("e2e-hr-web not running after engine restart: %v", err)
	}
	mustContain(t, "web page after restart", runOnce(t, net, httpGet("http://e2e-hr-web/")...), webPage)
}
