//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// Endpoints of containers removed while mynet was stopped are reaped by
// mynet itself after a grace period, with their veth, ports and leases;
// a container that keeps running through the stop is never touched.
// Subnet 10.142.0.0/24, host ports 18975-18979.

// reapGrace is the grace the tests give mynet (MYNET_REAP_GRACE): short,
// to keep the tests quick, and still far above a container start's
// CreateEndpoint→Join gap.
const reapGrace = 5 * time.Second

// withPluginEnv restarts mynet with kv added to its environment, and
// restarts it without them when the test ends, before the test's earlier
// cleanups remove its containers and networks.
func withPluginEnv(t *testing.T, kv ...string) {
	t.Helper()
	harness.Shared().Mynet.Environ = kv
	harness.Shared().RestartPlugin(t)
	t.Cleanup(func() {
		harness.Shared().Mynet.Environ = nil
		if harness.Shared().Mynet.Running() {
			if err := harness.Shared().Mynet.Proc.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
				t.Errorf("stopping mynet: %v", err)
			}
		}
		if err := harness.Shared().Mynet.Start(); err != nil {
			t.Errorf("restarting mynet without %v: %v", kv, err)
		}
	})
}

// endpointOf returns the engine's endpoint ID of container on network.
func endpointOf(t *testing.T, container, network string) string {
	t.Helper()
	return strings.TrimSpace(harness.Docker(t, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).EndpointID}}", network), container))
}

// endpointLeft says what is left in the engine namespace and in mynet's
// records of the endpoint epID with address addr, "" if nothing.
func endpointLeft(t *testing.T, network, epID, addr string) string {
	t.Helper()
	var left []string
	for _, v := range harness.MynetVeths(t) {
		if strings.HasSuffix(v, epID[:12]) {
			left = append(left, "veth "+v)
		}
	}
	if r := portsDNATRules(t, addr); len(r) > 0 {
		left = append(left, "DNAT rules "+strings.Join(r, "; "))
	}
	if l := lsLine(t, network, addr+"/"); l != "" {
		left = append(left, "mynet ls: "+l)
	}
	return strings.Join(left, ", ")
}

// TestReapWhileDown: containers with --ip and -p removed (docker rm -f)
// while mynet is stopped; after the restart and the grace their --ip and
// host ports work again for new containers, with no veth or rule left. A
// container running through the stop keeps its address, port and traffic,
// and is not reaped after the grace.
func TestReapWhileDown(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net  = "mynet-e2e-reap"
		keep = "e2e-reap-keep"
		gone = "e2e-reap-gone"
		bare = "e2e-reap-bare" // --ip, no port
		next = "e2e-reap-next"
	)
	withPluginEnv(t, "MYNET_REAP_GRACE="+reapGrace.String())
	harness.CreateMynet(t, net, "--subnet", "10.142.0.0/24")
	harness.StartWeb(t, keep, net, "--ip", "10.142.0.10", "-p", "18975:80")
	harness.StartWeb(t, gone, net, "--ip", "10.142.0.20", "-p", "18976:80")
	harness.StartSleeper(t, bare, net, "--ip", "10.142.0.21")
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18976/", harness.WebPage)
	removed := map[string]string{endpointOf(t, gone, net): "10.142.0.20", endpointOf(t, bare, net): "10.142.0.21"}
	keepEP := endpointOf(t, keep, net)

	harness.Shared().StopPlugin(t)
	start := time.Now()
	// The engine's Leave and DeleteEndpoint fail against a stopped plugin
	// (after about a minute of retries); it logs them and removes the
	// containers anyway. The CLI removes the two concurrently.
	harness.Docker(t, "rm", "-f", gone, bare)
	t.Logf("docker rm -f of 2 containers with mynet stopped took %v", time.Since(start).Round(time.Millisecond))
	t.Logf("the engine's endpoints of %s after the removals: %s", net,
		harness.Docker(t, "network", "inspect", "-f", "{{range $id, $c := .Containers}}{{$c.Name}}={{$id}} {{end}}", net))
	harness.Shared().StartPlugin(t)
	restarted := time.Now()

	for epID, addr := range removed {
		err := harness.WaitFor(60*time.Second, 250*time.Millisecond, func() error {
			if left := endpointLeft(t, net, epID, addr); left != "" {
				return fmt.Errorf("endpoint %.12s (%s): %s", epID, addr, left)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("not reaped: %v\n%s", err, mustMynetQuiet(t, "ls", net))
		}
	}
	t.Logf("both endpoints reaped %v after mynet started (grace %v)", time.Since(restarted).Round(100*time.Millisecond), reapGrace)
	log := harness.Shared().PluginLog()
	for epID, addr := range removed {
		if !reapLineFor(log, epID, addr) {
			t.Errorf("no log line says what was freed for endpoint %.12s (%s)", epID, addr)
		}
	}

	// The address and the port are free again (the containers are
	// started here, not in a subtest, so that they outlive it).
	harness.StartWeb(t, next, net, "--ip", "10.142.0.20", "-p", "18976:80")
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18976/", harness.WebPage)
	if err := harness.StartSleeperErr(t, "e2e-reap-bare2", net, "--ip", "10.142.0.21"); err != nil {
		t.Errorf("--ip 10.142.0.21 of the reaped endpoint: %v", err)
	}
	harness.MustReach(t, next, "10.142.0.10")

	t.Run("running container kept", func(t *testing.T) {
		// Two more graces and a few reaper rounds: still there.
		deadline := time.Now().Add(2*reapGrace + 5*time.Second)
		for time.Now().Before(deadline) {
			if lsLine(t, net, "10.142.0.10/") == "" {
				t.Fatalf("the running container's endpoint was reaped:\n%s", mustMynetQuiet(t, "ls", net))
			}
			time.Sleep(time.Second)
		}
		if got := harness.IfaceAddr(t, keep, "eth0"); got.String() != "10.142.0.10/24" {
			t.Errorf("%s eth0 has %s, want 10.142.0.10/24", keep, got)
		}
		if !hasVeth(t, "mnh"+keepEP[:12]) {
			t.Errorf("the running container's veth mnh%s is gone", keepEP[:12])
		}
		portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18975/", harness.WebPage)
		harness.MustReach(t, keep, "10.142.0.20")
		harness.MustContain(t, "the running container to the outside through NAT", harness.ExecIn(t, keep, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
		msg := harness.MustFail(t, "docker run --ip of the running container's address", dockerRunIP(net, "10.142.0.10"))
		harness.MustContain(t, "docker's refusal", msg, "10.142.0.10 is already in use")
	})
}

// reapLineFor reports whether log has the reaper's line for endpoint epID
// naming its address and the freed lease.
func reapLineFor(log, epID, addr string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "removed an endpoint no container uses") && strings.Contains(l, "endpoint="+epID[:12]) &&
			strings.Contains(l, "leases=\"["+addr+"]\"") {
			return true
		}
	}
	return false
}

func hasVeth(t *testing.T, name string) bool {
	t.Helper()
	for _, v := range harness.MynetVeths(t) {
		if v == name {
			return true
		}
	}
	return false
}

// TestRestoreKeepsBridge: mynet restarted on a host whose ip6tables has
// gone cannot restore a dual-stack network's rules; the restore fails and
// leaves the bridge and its running containers alone (it used to delete
// the bridge). With ip6tables back, the next start restores the network.
// Subnets 10.143.0.0/24, fd00:143::/64.
func TestRestoreKeepsBridge(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net    = "mynet-e2e-restore"
		web    = "e2e-restore-web"
		client = "e2e-restore-client"
	)
	harness.CreateMynet(t, net, "--ipv6", "--subnet", "10.143.0.0/24", "--subnet", "fd00:143::/64")
	harness.StartWeb(t, web, net, "--ip", "10.143.0.10")
	harness.StartSleeper(t, client, net)
	harness.MustReach(t, client, "10.143.0.10")
	bridge := harness.BridgeWithAddr(t, "10.143.0.1/24")
	if bridge == "" {
		t.Fatal("no bridge carries 10.143.0.1/24")
	}

	withPluginEnv(t, "PATH="+pathWithoutIP6tables(t))
	// The plugin answers Activate at once, everything else (mynet ls
	// too) only once Restore is done.
	mustMynetQuiet(t, "ls", net)
	harness.MustContain(t, "mynet log", harness.Shared().PluginLog(), "no IPv6 firewall")
	if got := harness.BridgeWithAddr(t, "10.143.0.1/24"); got != bridge {
		t.Fatalf("after a restore without ip6tables the bridge carrying 10.143.0.1/24 is %q, want %s", got, bridge)
	}
	if ports := harness.PortsOf(t, bridge); len(ports) != 2 {
		t.Errorf("bridge %s has %d ports, want the 2 containers' veths", bridge, len(ports))
	}
	harness.MustReach(t, client, "10.143.0.10")
	harness.MustContain(t, "the container to the outside through NAT", harness.ExecIn(t, client, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)

	harness.Shared().StopPlugin(t)
	harness.Shared().Mynet.Environ = nil
	harness.Shared().StartPlugin(t)
	mustMynetQuiet(t, "ls", net)
	if got := harness.BridgeWithAddr(t, "10.143.0.1/24"); got != bridge {
		t.Fatalf("after a restore with ip6tables back the bridge is %q, want %s", got, bridge)
	}
	harness.MustContain(t, "ip6tables rules of the restored network", harness.InEngine(t, "ip6tables-save"), bridge)
	harness.MustReach(t, client, "10.143.0.10")
}

// pathWithoutIP6tables returns a PATH on which mynet finds iptables but
// no ip6tables, as on a host without the IPv6 tools.
func pathWithoutIP6tables(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"iptables", "iptables-save", "iptables-restore", "iptables-nft", "iptables-nft-save",
		"iptables-nft-restore", "iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		// The multi-call binary dispatches on the name it was run by.
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir + ":/usr/bin:/bin"
}
