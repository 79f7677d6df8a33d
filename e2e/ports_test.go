//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// Published ports (`docker run -p`) on mynet networks, seen from where a
// user would try them: the engine's host (127.0.0.1 and its address
// 198.18.0.1), the outside (the ext namespace, through 198.18.0.1), the
// container itself (hairpin), a neighbour, another network. `mynet ports`
// reads the running plugin. Host ports used here are 18000-19999 and
// 15353-15399, away from the engine namespace's ephemeral range.

// portsFetch fetches url from a namespace of this run with the host's busybox.
func portsFetch(ns, url string) (string, error) {
	return harness.InNS(ns, 10*time.Second, harness.HostBusybox, "timeout", "3", harness.HostBusybox, "wget", "-qO-", url)
}

// portsMustFetch fetches url from ns until it answers with want, for up to
// a minute: a container just started may not listen yet (its kernel then
// refuses the DNATed connection), and a loaded machine is slow to start it.
func portsMustFetch(t *testing.T, ns, url, want string) {
	t.Helper()
	var out string
	err := harness.WaitFor(60*time.Second, 200*time.Millisecond, func() error {
		var err error
		if out, err = portsFetch(ns, url); err != nil {
			return err
		}
		if !strings.Contains(out, want) {
			return fmt.Errorf("answered %q, want %q", out, want)
		}
		return nil
	})
	if err != nil {
		t.Errorf("from %s: fetching %s: %v", ns, url, err)
	}
}

func portsMustNotFetch(t *testing.T, ns, url string) {
	t.Helper()
	if out, err := portsFetch(ns, url); err == nil {
		t.Errorf("from %s: %s answered %q, want no answer", ns, url, out)
	}
}

// mynetPorts runs `mynet ports ARGS` against the run's plugin, resolving
// names with the private engine's CLI.
func mynetPorts(t *testing.T, args ...string) string {
	t.Helper()
	if err := harness.Shared().EnsurePluginBinary(); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{harness.Shared().Mynet.Bin, "ports", "--socket", harness.Shared().Layout.PluginSock, "--docker", harness.CLIPath()}, args...)
	out, err := harness.Run(30*time.Second, harness.CLIEnviron(harness.Shared().Layout), argv...)
	if err != nil {
		t.Fatalf("mynet ports %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// portsDNATRules returns the lines of the engine namespace's nat table that
// DNAT to addr.
func portsDNATRules(t *testing.T, addr string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(harness.InEngine(t, "iptables-save", "-t", "nat"), "\n") {
		if strings.Contains(l, "MYNET-DNAT") && strings.Contains(l, "--to-destination "+addr) {
			out = append(out, l)
		}
	}
	return out
}

func portsEphemeralRange(t *testing.T) (lo, hi int) {
	t.Helper()
	f := strings.Fields(harness.InEngine(t, "cat", "/proc/sys/net/ipv4/ip_local_port_range"))
	lo, _ = strconv.Atoi(f[0])
	hi, _ = strconv.Atoi(f[1])
	return lo, hi
}

// TestPortsPublish: one web container publishing 18080 on all addresses,
// 18081 on 127.0.0.1 and an ephemeral port, reached from everywhere a user
// would; unpublished ports and the container's own address stay closed
// from outside; removing the container frees the port and its rules.
func TestPortsPublish(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net   = "mynet-e2e-pub"
		other = "mynet-e2e-pub-other"
		web   = "e2e-pub-web"
		nb    = "e2e-pub-neighbour"
		far   = "e2e-pub-other"
	)
	harness.CreateMynet(t, net, "--subnet", "10.110.0.0/24")
	harness.CreateMynet(t, other, "--subnet", "10.111.0.0/24")
	harness.StartWeb(t, web, net, "-p", "18080:80", "-p", "127.0.0.1:18081:80", "-p", "80")
	harness.StartSleeper(t, nb, net)
	harness.StartSleeper(t, far, other)
	webIP := harness.ContainerIP(t, web, net).String()
	engine, ext := harness.EngineNS(), harness.ExtNS()

	t.Run("host", func(t *testing.T) {
		portsMustFetch(t, engine, "http://127.0.0.1:18080/", harness.WebPage)
		portsMustFetch(t, engine, "http://127.0.0.1:18081/", harness.WebPage)
		portsMustFetch(t, engine, "http://"+harness.EngineAddr+":18080/", harness.WebPage)
		portsMustNotFetch(t, engine, "http://"+harness.EngineAddr+":18081/")
	})
	t.Run("outside", func(t *testing.T) {
		portsMustFetch(t, ext, "http://"+harness.EngineAddr+":18080/", harness.WebPage)
		portsMustNotFetch(t, ext, "http://"+harness.EngineAddr+":18081/")
		portsMustNotFetch(t, ext, "http://"+harness.EngineAddr+":18082/")
	})
	t.Run("hairpin", func(t *testing.T) {
		harness.MustContain(t, "the container through the host's address", harness.ExecIn(t, web, harness.HTTPGet("http://"+harness.EngineAddr+":18080/")...), harness.WebPage)
	})
	t.Run("neighbour", func(t *testing.T) {
		harness.MustContain(t, "a neighbour through the host's address", harness.ExecIn(t, nb, harness.HTTPGet("http://"+harness.EngineAddr+":18080/")...), harness.WebPage)
		harness.MustContain(t, "a neighbour through the gateway", harness.ExecIn(t, nb, harness.HTTPGet("http://10.110.0.1:18080/")...), harness.WebPage)
	})
	t.Run("other network", func(t *testing.T) {
		harness.MustContain(t, "another mynet network", harness.ExecIn(t, far, harness.HTTPGet("http://"+harness.EngineAddr+":18080/")...), harness.WebPage)
	})
	t.Run("ephemeral", func(t *testing.T) {
		out := mynetPorts(t, web)
		t.Logf("mynet ports %s:\n%s", web, out)
		harness.MustContain(t, "mynet ports", out, "80/tcp -> 0.0.0.0:18080")
		harness.MustContain(t, "mynet ports", out, "80/tcp -> 127.0.0.1:18081")
		lo, hi := portsEphemeralRange(t)
		var eph int
		for _, l := range strings.Split(out, "\n") {
			if p, ok := strings.CutPrefix(l, "80/tcp -> 0.0.0.0:"); ok && p != "18080" {
				eph, _ = strconv.Atoi(p)
			}
		}
		if eph < lo || eph > hi {
			t.Fatalf("ephemeral host port %d, want one in the engine's ip_local_port_range %d-%d", eph, lo, hi)
		}
		portsMustFetch(t, ext, fmt.Sprintf("http://%s:%d/", harness.EngineAddr, eph), harness.WebPage)
		if got := mynetPorts(t, web, "80"); strings.Count(got, "\n") != 2 || !strings.Contains(got, fmt.Sprintf("0.0.0.0:%d", eph)) {
			t.Errorf("mynet ports %s 80 = %q, want its three host addresses", web, got)
		}
		harness.MustContain(t, "mynet ports NETWORK", mynetPorts(t, net), "80/tcp -> 127.0.0.1:18081")
	})
	t.Run("unpublished", func(t *testing.T) {
		// Give the outside a route to the container, as a router on the
		// host's link could have: the container's ports, published or
		// not, must still be closed to direct traffic.
		harness.InExt(t, "ip", "route", "add", "10.110.0.0/24", "via", harness.EngineAddr)
		t.Cleanup(func() { _, _ = harness.InNS(ext, 10*time.Second, "ip", "route", "del", "10.110.0.0/24") })
		portsMustNotFetch(t, ext, "http://"+webIP+":80/")
		portsMustFetch(t, ext, "http://"+harness.EngineAddr+":18080/", harness.WebPage)
	})
	t.Run("rules", func(t *testing.T) {
		if r := portsDNATRules(t, webIP); len(r) != 3 {
			t.Errorf("DNAT rules to %s: %q, want 3 (one per host port)", webIP, r)
		}
	})

	harness.Docker(t, "rm", "-f", web)
	if r := portsDNATRules(t, webIP); len(r) != 0 {
		t.Errorf("DNAT rules left after the container went: %q", r)
	}
	for _, l := range strings.Split(harness.InEngine(t, "iptables-save"), "\n") {
		if strings.Contains(l, webIP+"/32") || strings.Contains(l, "--to-destination "+webIP) {
			t.Errorf("rule still naming %s: %s", webIP, l)
		}
	}
	harness.StartWeb(t, "e2e-pub-again", net, "-p", "18080:80")
	portsMustFetch(t, ext, "http://"+harness.EngineAddr+":18080/", harness.WebPage)
}

// TestPortsRange: a 100-port range shifted from host 19000-19099 to
// container 8000-8099 is one rule, and every host port answers from the
// matching container port.
func TestPortsRange(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net = "mynet-e2e-prange"
		c   = "e2e-prange"
	)
	harness.CreateMynet(t, net, "--subnet", "10.112.0.0/24")
	script := `for p in $(seq 8000 8099); do mkdir -p /tmp/$p && echo port-$p > /tmp/$p/index.html && httpd -p $p -h /tmp/$p; done; exec sleep 3600`
	harness.RunDetached(t, c, harness.ContainerArgs(net, []string{"-p", "19000-19099:8000-8099"}, harness.Sh(script))...)
	ip := harness.ContainerIP(t, c, net).String()
	if err := harness.WaitFor(60*time.Second, 200*time.Millisecond, func() error {
		_, err := portsFetch(harness.EngineNS(), "http://"+harness.EngineAddr+":19099/")
		return err
	}); err != nil {
		t.Fatalf("the range's last port never answered: %v", err)
	}
	start := time.Now()
	for i := range 100 {
		portsMustFetch(t, harness.ExtNS(), fmt.Sprintf("http://%s:%d/", harness.EngineAddr, 19000+i), fmt.Sprintf("port-%d", 8000+i))
	}
	t.Logf("100 fetches from outside in %v", time.Since(start).Round(time.Millisecond))
	if r := portsDNATRules(t, ip); len(r) != 1 || !strings.Contains(r[0], "--dport 19000:19099") {
		t.Errorf("DNAT rules to %s: %q, want one for the whole range", ip, r)
	}
	if got := strings.Count(mynetPorts(t, c), "\n") + 1; got != 100 {
		t.Errorf("mynet ports lists %d lines, want 100", got)
	}
}

var (
	portsUDPEchoOnce sync.Once
	portsUDPEchoPath string
	portsUDPEchoErr  error
)

// portsUDPEcho builds testdata/udpecho (static) once: the busybox image has no
// UDP server.
func portsUDPEcho(t *testing.T) string {
	t.Helper()
	portsUDPEchoOnce.Do(func() {
		portsUDPEchoPath = filepath.Join(harness.Shared().Layout.WorkDir, "bin", "udpecho")
		cmd := exec.Command("go", "build", "-o", portsUDPEchoPath, "./testdata/udpecho")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			portsUDPEchoErr = fmt.Errorf("building udpecho: %w: %s", err, out)
		}
	})
	if portsUDPEchoErr != nil {
		t.Fatal(portsUDPEchoErr)
	}
	return portsUDPEchoPath
}

// TestPortsUDP: a UDP port answers from outside, also for a client that
// was already sending to it before it was published (its stale conntrack
// entry is flushed).
func TestPortsUDP(t *testing.T) {
	harness.UsePlugin(t)
	const net = "mynet-e2e-pudp"
	bin := portsUDPEcho(t)
	harness.CreateMynet(t, net, "--subnet", "10.113.0.0/24")

	// The early client: nothing listens yet, its datagram goes unanswered
	// but leaves a conntrack entry in the engine namespace.
	if out, err := harness.InNS(harness.ExtNS(), 10*time.Second, bin, "ask", "-from", "40053", harness.EngineAddr+":15354", "early"); err == nil {
		t.Fatalf("something answered on 15354 before the container: %q", out)
	}
	for _, c := range []struct{ name, port string }{{"e2e-pudp-1", "15353"}, {"e2e-pudp-2", "15354"}} {
		harness.RunDetached(t, c.name, harness.ContainerArgs(net, []string{"-v", bin + ":/udpecho:ro", "-p", c.port + ":53/udp"}, []string{"/udpecho", "serve", "0.0.0.0:53"})...)
	}
	// The containers' servers may not listen yet: ask until they answer.
	if out := udpAsk(t, harness.ExtNS(), harness.EngineAddr+":15353", "ping"); out != "echo:ping" {
		t.Errorf("udp from outside: %q; want echo:ping", out)
	}
	var out string
	err := harness.WaitFor(60*time.Second, 300*time.Millisecond, func() error {
		var err error
		out, err = harness.InNS(harness.ExtNS(), 10*time.Second, bin, "ask", "-from", "40053", harness.EngineAddr+":15354", "late")
		return err
	})
	if err != nil || out != "echo:late" {
		t.Errorf("udp from the client that sent before the port was published: %q, %v; want echo:late", out, err)
	}
	harness.MustContain(t, "mynet ports", mynetPorts(t, "e2e-pudp-1"), "53/udp -> 0.0.0.0:15353")
}

// TestPortsInUse: a host port held by a host program or by another
// container makes `docker run` fail with a message naming the port; the
// container does not start and no rule is left.
func TestPortsInUse(t *testing.T) {
	harness.UsePlugin(t)
	const net = "mynet-e2e-pinuse"
	harness.CreateMynet(t, net, "--subnet", "10.114.0.0/24")
	hostSrv, err := harness.StartLogged("host httpd", filepath.Join(harness.Shared().Layout.LogDir, "inuse-httpd.log"), nil, syscall.SIGKILL,
		"nsenter", "--net="+harness.Shared().Layout.NSPath(harness.EngineNS()), harness.HostBusybox, "httpd", "-f", "-p", "18200", "-h", harness.Shared().Layout.WWWDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hostSrv.Stop(syscall.SIGKILL, time.Second) })
	if err := harness.WaitFor(60*time.Second, 100*time.Millisecond, func() error {
		_, err := portsFetch(harness.EngineNS(), "http://127.0.0.1:18200/")
		return err
	}); err != nil {
		t.Fatalf("host httpd on 18200: %v", err)
	}
	before := harness.InEngine(t, "iptables-save")

	msg := harness.MustFail(t, "docker run -p 18200:80 with a host program on 18200", harness.StartSleeperErr(t, "e2e-pinuse-1", net, "-p", "18200:80"))
	harness.MustContain(t, "error", msg, "host port 18200/tcp on 0.0.0.0 is already in use")
	if harness.ContainerRunning(t, "e2e-pinuse-1") {
		t.Error("the container runs despite the error")
	}
	if after := harness.InEngine(t, "iptables-save"); portsCountDNAT(after) != portsCountDNAT(before) || strings.Contains(after, "18200") {
		t.Errorf("rules changed by the failed start:\n%s", after)
	}
	portsMustFetch(t, harness.EngineNS(), "http://127.0.0.1:18200/", harness.ExtPage)

	harness.StartWeb(t, "e2e-pinuse-2", net, "-p", "18201:80")
	msg = harness.MustFail(t, "a second container on 18201", harness.StartSleeperErr(t, "e2e-pinuse-3", net, "-p", "18201:80"))
	harness.MustContain(t, "error", msg, "host port 18201/tcp on 0.0.0.0 is already in use")
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18201/", harness.WebPage)
	harness.Docker(t, "rm", "-f", "e2e-pinuse-2")
	harness.Docker(t, "start", "e2e-pinuse-3")
	harness.MustContain(t, "the second container once the first is gone", mynetPorts(t, "e2e-pinuse-3"), "-> 0.0.0.0:18201")
}

func portsCountDNAT(save string) int { return strings.Count(save, "-j DNAT") }

// TestPortsHostBinding: the network's host_binding_ipv4 is where a port
// without a host address is published.
func TestPortsHostBinding(t *testing.T) {
	harness.UsePlugin(t)
	const net = "mynet-e2e-pbind"
	harness.CreateMynet(t, net, "--subnet", "10.115.0.0/24", "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1")
	harness.StartWeb(t, "e2e-pbind", net, "-p", "18300:80")
	portsMustFetch(t, harness.EngineNS(), "http://127.0.0.1:18300/", harness.WebPage)
	portsMustNotFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18300/")
	harness.MustContain(t, "mynet ports", mynetPorts(t, "e2e-pbind"), "80/tcp -> 127.0.0.1:18300")
}

// TestPortsPluginRestart: published ports keep working, and stay
// reserved, after mynet is stopped and started again, and after it is
// killed; the ephemeral port stays the same.
func TestPortsPluginRestart(t *testing.T) {
	e := harness.Shared()
	harness.UsePlugin(t)
	const (
		net = "mynet-e2e-prestart"
		web = "e2e-prestart"
	)
	harness.CreateMynet(t, net, "--subnet", "10.116.0.0/24")
	harness.StartWeb(t, web, net, "-p", "18400:80", "-p", "80")
	ports := mynetPorts(t, web)
	for _, restart := range []struct {
		name string
		do   func()
	}{
		{"SIGTERM", func() { e.RestartPlugin(t) }},
		{"SIGKILL", func() { e.KillPlugin(t); e.StartPlugin(t) }},
	} {
		restart.do()
		portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18400/", harness.WebPage)
		if got := mynetPorts(t, web); got != ports {
			t.Errorf("after %s: mynet ports\n%s\nwant\n%s", restart.name, got, ports)
		}
		msg := harness.MustFail(t, "a container on the published port after "+restart.name,
			harness.StartSleeperErr(t, "e2e-prestart-"+strings.ToLower(restart.name), net, "-p", "18400:80"))
		harness.MustContain(t, "error", msg, "host port 18400/tcp on 0.0.0.0 is already in use")
	}
}

// TestPortsGatewayMoves: connecting the container to a network whose name
// sorts first moves its default gateway there, and its published port
// with it; disconnecting moves both back.
func TestPortsGatewayMoves(t *testing.T) {
	harness.UsePlugin(t)
	const (
		first  = "mynet-e2e-pgw-a"
		second = "mynet-e2e-pgw-b"
		web    = "e2e-pgw"
	)
	harness.CreateMynet(t, second, "--subnet", "10.117.0.0/24")
	harness.CreateMynet(t, first, "--subnet", "10.118.0.0/24")
	harness.StartWeb(t, web, second, "-p", "18500:80")
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18500/", harness.WebPage)
	ipSecond := harness.ContainerIP(t, web, second).String()

	harness.Docker(t, "network", "connect", first, web)
	ipFirst := harness.ContainerIP(t, web, first).String()
	if r := portsDNATRules(t, ipFirst); len(r) != 1 {
		t.Errorf("after connect: DNAT to %s (the new gateway network) %q, want 1", ipFirst, r)
	}
	if r := portsDNATRules(t, ipSecond); len(r) != 0 {
		t.Errorf("after connect: DNAT to %s (the old gateway network) %q, want none", ipSecond, r)
	}
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18500/", harness.WebPage)

	harness.Docker(t, "network", "disconnect", first, web)
	if r := portsDNATRules(t, ipSecond); len(r) != 1 {
		t.Errorf("after disconnect: DNAT to %s %q, want 1", ipSecond, r)
	}
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18500/", harness.WebPage)
}

// TestPortsHugeRange: a 20,000-port range, which the engine sends as one
// binding per port in CreateEndpoint, Join and Program (megabytes each).
// The container starts, ports across the range answer from outside, the
// range is one DNAT rule (the rule count does not grow with the ports, nor
// with time), and removing the container leaves no rule. Host ports from
// 20000: inside the engine namespace, which holds nothing else there.
//
// mynet holds one descriptor per published port, so the range is cut to
// what the plugin's open-file limit leaves room for (a runner with a hard
// limit of 20,000 and no CAP_SYS_RESOURCE cannot hold 20,000 ports).
func TestPortsHugeRange(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net = "mynet-e2e-phuge"
		c   = "e2e-phuge"
	)
	// The range ends just below the engine namespace's ephemeral ports:
	// earlier tests' clients there leave connections in TIME_WAIT on
	// ephemeral local ports for a minute, and one of those inside the
	// range makes its hold fail ("already in use"), as it would for
	// Docker's own bridge.
	lo, _ := portsEphemeralRange(t)
	last := lo - 1
	first := last - min(20000, portsFileLimit(t)-200) + 1
	harness.CreateMynet(t, net, "--subnet", "10.127.0.0/24")
	waitNoTimeWait(t, first, last)
	before := portsCountUnhooked(t)
	answering := []int{first, (first + last) / 2, last}
	script := "for p in"
	for _, p := range answering {
		script += fmt.Sprintf(" %d", p)
	}
	script += `; do mkdir -p /tmp/$p && echo port-$p > /tmp/$p/index.html && httpd -p $p -h /tmp/$p; done; exec sleep 3600`
	start := time.Now()
	harness.RunDetached(t, c, harness.ContainerArgs(net, []string{"-p", fmt.Sprintf("%d-%d:%d-%d", first, last, first, last)}, harness.Sh(script))...)
	t.Logf("docker run publishing %d ports took %v", last-first+1, time.Since(start).Round(time.Millisecond))
	for _, call := range []string{"CreateEndpoint", "Join", "ProgramExternalConnectivity"} {
		n := portsRequestBytes(t, "/NetworkDriver."+call)
		t.Logf("%s: %d bytes, %.1f a port", call, n, float64(n)/float64(last-first+1))
	}
	ip := harness.ContainerIP(t, c, net).String()
	for _, p := range answering {
		portsMustFetch(t, harness.ExtNS(), fmt.Sprintf("http://%s:%d/", harness.EngineAddr, p), fmt.Sprintf("port-%d", p))
	}
	want := fmt.Sprintf("--dport %d:%d", first, last)
	if r := portsDNATRules(t, ip); len(r) != 1 || !strings.Contains(r[0], want) {
		t.Errorf("DNAT rules to %s: %q, want one for the whole range", ip, r)
	}
	published := portsCountUnhooked(t)
	t.Logf("iptables rules: %d before, %d with the range published", before, published)
	if published-before > 20 {
		t.Errorf("publishing the range added %d rules, want a handful", published-before)
	}
	// The heal loop and the engine's own calls later must not add any.
	portsMustFetch(t, harness.ExtNS(), fmt.Sprintf("http://%s:%d/", harness.EngineAddr, first), fmt.Sprintf("port-%d", first))
	if again := portsCountUnhooked(t); again != published {
		t.Errorf("rule count went from %d to %d with nothing changed", published, again)
	}

	start = time.Now()
	harness.Docker(t, "rm", "-f", c)
	t.Logf("docker rm took %v", time.Since(start).Round(time.Millisecond))
	if r := portsDNATRules(t, ip); len(r) != 0 {
		t.Errorf("DNAT rules left after the container went: %q", r)
	}
	if after := portsCountUnhooked(t); after != before {
		t.Errorf("iptables rules: %d before the container, %d after it went", before, after)
	}
}

// portsCountUnhooked counts the engine namespace's rules, in both
// backends, but the two jumps into MYNET-DNAT: the first publish hooks
// them and they stay, as Docker's own DOCKER chain's do.
func portsCountUnhooked(t *testing.T) int {
	t.Helper()
	return harness.CountEngineRules(func(rule string) bool { return !strings.HasSuffix(rule, "-j MYNET-DNAT") })
}

// waitNoTimeWait waits until no TCP connection in the engine namespace in
// TIME_WAIT has a local port in first..last. Earlier tests' host servers
// there (TestPortsInUse's httpd on 18200 closes first) leave such
// connections for a minute, and a hold's bind, made without SO_REUSEADDR so
// that it excludes every other socket, fails against them as "in use".
func waitNoTimeWait(t *testing.T, first, last int) {
	t.Helper()
	err := harness.WaitFor(90*time.Second, time.Second, func() error {
		out, err := harness.InEngineErr("ss", "-Htan", "state", "time-wait")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) < 3 {
				continue
			}
			i := strings.LastIndexByte(f[2], ':')
			if p, err := strconv.Atoi(f[2][i+1:]); err == nil && p >= first && p <= last {
				return fmt.Errorf("local port %d in TIME_WAIT: %s", p, l)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("engine namespace never free of TIME_WAIT in %d-%d: %v", first, last, err)
	}
}

// portsFileLimit is the running plugin's open-file limit.
func portsFileLimit(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", harness.Shared().Mynet.Proc.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && strings.HasPrefix(l, "Max open files") {
			if n, err := strconv.Atoi(f[3]); err == nil {
				return n
			}
		}
	}
	t.Fatalf("no open-file limit in /proc/%d/limits", harness.Shared().Mynet.Proc.Pid())
	return 0
}

// portsRequestBytes is the size of the largest request to call in the
// plugin's log (its debug log gives each request's size).
func portsRequestBytes(t *testing.T, call string) int {
	t.Helper()
	b, err := os.ReadFile(harness.Shared().Layout.PluginLog())
	if err != nil {
		t.Fatal(err)
	}
	largest := 0
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, " call="+call+" ") {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "bytes="); ok {
				if n, err := strconv.Atoi(v); err == nil && n > largest {
					largest = n
				}
			}
		}
	}
	return largest
}
