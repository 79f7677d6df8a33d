//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// TestHarnessBridge checks the harness itself with Docker's own bridge
// driver, no mynet involved: two containers on a user bridge network reach
// each other by name and address and reach the ext server through the
// engine's masquerade; the engine's rules live in the engine namespace.
func TestHarnessBridge(t *testing.T) {
	harness.UseEngine(t)
	const net = "e2e-harness-br"
	harness.CreateNetwork(t, net, "-d", "bridge", "--subnet", "10.60.0.0/24")
	harness.RunDetached(t, "e2e-hb-web", "--network", net, harness.Image, "httpd", "-f", "-p", "80", "-h", "/var/www")
	harness.RunDetached(t, "e2e-hb-client", "--network", net, harness.Image, "sleep", "600")

	webIP := harness.ContainerIP(t, "e2e-hb-web", net)
	clientIP := harness.ContainerIP(t, "e2e-hb-client", net)
	subnet := netip.MustParsePrefix("10.60.0.0/24")
	if !subnet.Contains(webIP) || !subnet.Contains(clientIP) || webIP == clientIP {
		t.Fatalf("addresses %v and %v: want two distinct ones in %v", webIP, clientIP, subnet)
	}

	harness.ExecIn(t, "e2e-hb-client", harness.Ping1(webIP.String())...)
	harness.ExecIn(t, "e2e-hb-web", harness.Ping1(clientIP.String())...)
	harness.MustContain(t, "web page by name", harness.ExecIn(t, "e2e-hb-client", harness.HTTPGet("http://e2e-hb-web/")...), harness.WebPage)
	harness.MustContain(t, "ext page via NAT", harness.ExecIn(t, "e2e-hb-client", harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
	harness.MustContain(t, "ext page from a --rm container", harness.RunOnce(t, net, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)

	rules := harness.InEngine(t, "iptables-save", "-t", "nat")
	if !strings.Contains(rules, "10.60.0.0/24") || !strings.Contains(rules, "MASQUERADE") {
		t.Errorf("engine netns nat table has no masquerade for 10.60.0.0/24:\n%s", rules)
	}
}

// TestHarnessEngineRestart checks RestartEngine with Docker's own bridge
// driver: a --restart always container comes back with working networking.
func TestHarnessEngineRestart(t *testing.T) {
	e := harness.UseEngine(t)
	const net = "e2e-harness-rs"
	harness.CreateNetwork(t, net, "-d", "bridge", "--subnet", "10.61.0.0/24")
	harness.RunDetached(t, "e2e-hr-web", "--restart", "always", "--stop-timeout", "1", "--network", net, harness.Image, "httpd", "-f", "-p", "80", "-h", "/var/www")

	e.RestartEngine(t)
	if err := harness.WaitFor(90*time.Second, 200*time.Millisecond, func() error {
		if !harness.ContainerRunning(t, "e2e-hr-web") {
			return harness.ErrNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("e2e-hr-web not running after engine restart: %v", err)
	}
	harness.MustContain(t, "web page after restart", harness.RunOnce(t, net, harness.HTTPGet("http://e2e-hr-web/")...), harness.WebPage)
}
