//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestIsolation: two mynet networks and one Docker bridge network; a
// container reaches a web server on its own network but on no other, in
// either direction.
func TestIsolation(t *testing.T) {
	p := usePlugin(t)
	nets := []struct{ name, driver, subnet string }{
		{"mynet-e2e-iso-a", p, "10.54.0.0/24"},
		{"mynet-e2e-iso-b", p, "10.55.0.0/24"},
		{"e2e-iso-c", "bridge", "10.56.0.0/24"},
	}
	webIP := map[string]string{}
	for _, n := range nets {
		if n.driver == "bridge" {
			createNetwork(t, n.name, "-d", "bridge", "--subnet", n.subnet)
		} else {
			createMynet(t, n.name, "--subnet", n.subnet)
		}
		startWeb(t, n.name+"-web", n.name)
		startSleeper(t, n.name+"-cli", n.name)
		webIP[n.name] = containerIP(t, n.name+"-web", n.name).String()
	}

	t.Run("within", func(t *testing.T) {
		for _, n := range nets {
			mustReach(t, n.name+"-cli", webIP[n.name])
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
					mustNotReach(t, cli, target)
				})
			}
		}
	})
}

// TestParallelRuns: 20 `docker run -d` at once on one network all start,
// with 20 distinct addresses (Docker calls the plugin concurrently).
func TestParallelRuns(t *testing.T) {
	usePlugin(t)
	const (
		net = "mynet-e2e-par"
		n   = 20
	)
	subnet := netip.MustParsePrefix("10.63.0.0/24")
	createMynet(t, net, "--subnet", subnet.String())

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("e2e-par-%02d", i)
		name := names[i]
		t.Cleanup(func() { cleanupCmd(t, "rm", "-f", name) })
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = dockerErr(append([]string{"run", "-d", "--name", name}, containerArgs(net, nil, sleepCmd)...)...)
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
		if !containerRunning(t, name) {
			t.Errorf("%s is not running", name)
			continue
		}
		ip := containerIP(t, name, net)
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
	usePlugin(t)
	const (
		netA = "mynet-e2e-conn-a"
		netB = "mynet-e2e-conn-b"
		c    = "e2e-conn"
	)
	subnetB := netip.MustParsePrefix("10.65.0.0/24")
	createMynet(t, netA, "--subnet", "10.64.0.0/24")
	createMynet(t, netB, "--subnet", subnetB.String())
	startSleeper(t, c, netA)
	startWeb(t, "e2e-conn-web-b", netB)
	eth0 := ifaceAddr(t, c, "eth0")

	docker(t, "network", "connect", netB, c)
	eth1 := ifaceAddr(t, c, "eth1")
	if !subnetB.Contains(eth1.Addr()) {
		t.Fatalf("eth1 has %v, want an address in %v", eth1, subnetB)
	}
	if ip := containerIP(t, c, netB); ip != eth1.Addr() {
		t.Errorf("engine recorded %v on %s, eth1 has %v", ip, netB, eth1)
	}
	mustReach(t, c, containerIP(t, "e2e-conn-web-b", netB).String())

	docker(t, "network", "disconnect", netB, c)
	if hasLink(t, c, "eth1") {
		t.Errorf("eth1 still present after disconnect")
	}
	if got := ifaceAddr(t, c, "eth0"); got != eth0 {
		t.Errorf("eth0 changed from %v to %v by connect/disconnect", eth0, got)
	}
}

// TestContainerNetworkMode: a container started with --network container:X
// shares X's eth0 and address and reaches the other containers on X's
// network.
func TestContainerNetworkMode(t *testing.T) {
	usePlugin(t)
	const (
		net = "mynet-e2e-cmode"
		x   = "e2e-cmode-x"
		web = "e2e-cmode-web"
	)
	createMynet(t, net, "--subnet", "10.66.0.0/24")
	startSleeper(t, x, net)
	startWeb(t, web, net)
	xAddr := ifaceAddr(t, x, "eth0")
	webIP := containerIP(t, web, net).String()

	out := runOnce(t, "container:"+x, sh("ip -4 -o addr show dev eth0 && timeout 3 wget -qO- http://"+webIP+"/ && timeout 3 wget -qO- http://"+web+"/")...)
	mustContain(t, "eth0 seen from the sharing container", out, xAddr.String())
	mustContain(t, "web page from the sharing container", out, webPage)
}

// TestEngineRestart: restart dockerd with mynet left running; a
// --restart always container comes back with working networking (by name,
// and out through NAT), and a new container gets a different address.
func TestEngineRestart(t *testing.T) {
	e := env
	usePlugin(t)
	const (
		net = "mynet-e2e-erestart"
		web = "e2e-erestart-web"
	)
	createMynet(t, net, "--subnet", "10.68.0.0/24")
	startWeb(t, web, net, "--restart", "always")

	e.RestartEngine(t)
	if err := waitFor(90*time.Second, 200*time.Millisecond, func() error {
		if !containerRunning(t, web) {
			return errNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("%s not running after the engine restart: %v", web, err)
	}

	webIP := containerIP(t, web, net)
	if got := ifaceAddr(t, web, "eth0").Addr(); got != webIP {
		t.Errorf("%s: eth0 has %v, engine recorded %v", web, got, webIP)
	}
	mustContain(t, "web page by name after restart", runOnce(t, net, httpGet("http://"+web+"/")...), webPage)
	mustContain(t, "ext page from the restarted container", execIn(t, web, httpGet(extURL)...), extPage)

	startSleeper(t, "e2e-erestart-new", net)
	if ip := containerIP(t, "e2e-erestart-new", net); ip == webIP {
		t.Errorf("new container got %v, already held by %s", ip, web)
	}
	mustReach(t, "e2e-erestart-new", webIP.String())
}
