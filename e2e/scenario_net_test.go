//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// TestIsolation: two mynet networks and one Docker bridge network; a
// container reaches a web server on its own network but on no other, in
// either direction.
func TestIsolation(t *testing.T) {
	p := harness.UsePlugin(t)
	nets := []struct{ name, driver, subnet string }{
		{"mynet-e2e-iso-a", p, "10.54.0.0/24"},
		{"mynet-e2e-iso-b", p, "10.55.0.0/24"},
		{"e2e-iso-c", "bridge", "10.56.0.0/24"},
	}
	webIP := map[string]string{}
	for _, n := range nets {
		if n.driver == "bridge" {
			harness.CreateNetwork(t, n.name, "-d", "bridge", "--subnet", n.subnet)
		} else {
			harness.CreateMynet(t, n.name, "--subnet", n.subnet)
		}
		harness.StartWeb(t, n.name+"-web", n.name)
		harness.StartSleeper(t, n.name+"-cli", n.name)
		webIP[n.name] = harness.ContainerIP(t, n.name+"-web", n.name).String()
	}

	t.Run("within", func(t *testing.T) {
		for _, n := range nets {
			harness.MustReach(t, n.name+"-cli", webIP[n.name])
		}
	})
	t.Run("across", func(t *testing.T) {
		for _, from := range nets {
			for _, to := range nets {
				if from.name == to.name {
					continue
				}
				cli, target := from.name+"-cli", webIP[to.name]
				t.Run(from.name+"->"+to.name, func(t *testing.T) {
					t.Parallel()
					harness.MustNotReach(t, cli, target)
				})
			}
		}
	})
}

// TestParallelRuns: 20 `docker run -d` at once on one network all start,
// with 20 distinct addresses (Docker calls the plugin concurrently).
func TestParallelRuns(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net = "mynet-e2e-par"
		n   = 20
	)
	subnet := netip.MustParsePrefix("10.63.0.0/24")
	harness.CreateMynet(t, net, "--subnet", subnet.String())

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("e2e-par-%02d", i)
		name := names[i]
		t.Cleanup(func() { harness.CleanupCmd(t, "rm", "-f", name) })
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = harness.DockerErr(append([]string{"run", "-d", "--name", name}, harness.ContainerArgs(net, nil, harness.SleepCmd)...)...)
		}()
	}
	wg.Wait()
	t.Logf("%d parallel runs took %v", n, time.Since(start).Round(time.Millisecond))
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", names[i], err)
		}
	}

	owner := map[netip.Addr]string{}
	for _, name := range names {
		if !harness.ContainerRunning(t, name) {
			t.Errorf("%s is not running", name)
			continue
		}
		ip := harness.ContainerIP(t, name, net)
		if !subnet.Contains(ip) {
			t.Errorf("%s got %v, outside %v", name, ip, subnet)
		}
		if other, dup := owner[ip]; dup {
			t.Errorf("%s and %s both got %v", name, other, ip)
		}
		owner[ip] = name
	}
	if len(owner) != n {
		t.Errorf("%d distinct addresses, want %d", len(owner), n)
	}
}

// TestConnectDisconnect: connecting a running container to a second mynet
// network adds eth1 with an address of that network, usable at once;
// disconnecting removes it and leaves eth0 alone.
func TestConnectDisconnect(t *testing.T) {
	harness.UsePlugin(t)
	const (
		netA = "mynet-e2e-conn-a"
		netB = "mynet-e2e-conn-b"
		c    = "e2e-conn"
	)
	subnetB := netip.MustParsePrefix("10.65.0.0/24")
	harness.CreateMynet(t, netA, "--subnet", "10.64.0.0/24")
	harness.CreateMynet(t, netB, "--subnet", subnetB.String())
	harness.StartSleeper(t, c, netA)
	harness.StartWeb(t, "e2e-conn-web-b", netB)
	eth0 := harness.IfaceAddr(t, c, "eth0")

	harness.Docker(t, "network", "connect", netB, c)
	eth1 := harness.IfaceAddr(t, c, "eth1")
	if !subnetB.Contains(eth1.Addr()) {
		t.Fatalf("eth1 has %v, want an address in %v", eth1, subnetB)
	}
	if ip := harness.ContainerIP(t, c, netB); ip != eth1.Addr() {
		t.Errorf("engine recorded %v on %s, eth1 has %v", ip, netB, eth1)
	}
	harness.MustReach(t, c, harness.ContainerIP(t, "e2e-conn-web-b", netB).String())

	harness.Docker(t, "network", "disconnect", netB, c)
	if harness.HasLink(t, c, "eth1") {
		t.Errorf("eth1 still present after disconnect")
	}
	if got := harness.IfaceAddr(t, c, "eth0"); got != eth0 {
		t.Errorf("eth0 changed from %v to %v by connect/disconnect", eth0, got)
	}
}

// TestContainerNetworkMode: a container started with --network container:X
// shares X's eth0 and address and reaches the other containers on X's
// network.
func TestContainerNetworkMode(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net = "mynet-e2e-cmode"
		x   = "e2e-cmode-x"
		web = "e2e-cmode-web"
	)
	harness.CreateMynet(t, net, "--subnet", "10.66.0.0/24")
	harness.StartSleeper(t, x, net)
	harness.StartWeb(t, web, net)
	xAddr := harness.IfaceAddr(t, x, "eth0")
	webIP := harness.ContainerIP(t, web, net).String()

	out := harness.RunOnce(t, "container:"+x, harness.Sh("ip -4 -o addr show dev eth0 && timeout 3 wget -qO- http://"+webIP+"/ && timeout 3 wget -qO- http://"+web+"/")...)
	harness.MustContain(t, "eth0 seen from the sharing container", out, xAddr.String())
	harness.MustContain(t, "web page from the sharing container", out, harness.WebPage)
}

// TestEngineRestart: restart dockerd with mynet left running; a
// --restart always container comes back with working networking (by name,
// and out through NAT), and a new container gets a different address.
func TestEngineRestart(t *testing.T) {
	e := harness.Shared()
	harness.UsePlugin(t)
	const (
		net = "mynet-e2e-erestart"
		web = "e2e-erestart-web"
	)
	harness.CreateMynet(t, net, "--subnet", "10.68.0.0/24")
	harness.StartWeb(t, web, net, "--restart", "always")

	e.RestartEngine(t)
	if err := harness.WaitFor(90*time.Second, 200*time.Millisecond, func() error {
		if !harness.ContainerRunning(t, web) {
			return harness.ErrNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("%s not running after the engine restart: %v", web, err)
	}

	webIP := harness.ContainerIP(t, web, net)
	if got := harness.IfaceAddr(t, web, "eth0").Addr(); got != webIP {
		t.Errorf("%s: eth0 has %v, engine recorded %v", web, got, webIP)
	}
	harness.MustContain(t, "web page by name after restart", harness.RunOnce(t, net, harness.HTTPGet("http://"+web+"/")...), harness.WebPage)
	harness.MustContain(t, "ext page from the restarted container", harness.ExecIn(t, web, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)

	harness.StartSleeper(t, "e2e-erestart-new", net)
	if ip := harness.ContainerIP(t, "e2e-erestart-new", net); ip == webIP {
		t.Errorf("new container got %v, already held by %s", ip, web)
	}
	harness.MustReach(t, "e2e-erestart-new", webIP.String())
}
