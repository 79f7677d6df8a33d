//go:build e2e

package e2e

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// `mynet attach`: containers started with --network none get an interface
// on a mynet network from the mynet CLI, run as a user would: as root in
// the engine's host namespace (nsenter --net), with DOCKER_HOST at the
// private engine, finding the plugin's socket from the network's driver.
// Subnets 10.130-10.134, host ports 18950-18959.

// mynetCLI runs `mynet CMD ARGS...` in the engine namespace against the
// private engine and returns its stdout; the error carries its stderr.
func mynetCLI(cmd string, args ...string) (string, error) {
	if err := harness.Shared().EnsurePluginBinary(); err != nil {
		return "", err
	}
	argv := []string{"nsenter", "--net=" + harness.Shared().Layout.NSPath(harness.EngineNS()), harness.Shared().Mynet.Bin, cmd, "--docker", harness.CLIPath()}
	return harness.Run(time.Minute, harness.CLIEnviron(harness.Shared().Layout), append(argv, args...)...)
}

func mustMynet(t *testing.T, cmd string, args ...string) string {
	t.Helper()
	out, err := mynetCLI(cmd, args...)
	if err != nil {
		t.Fatalf("mynet %s %s: %v", cmd, strings.Join(args, " "), err)
	}
	t.Logf("mynet %s %s:\n%s", cmd, strings.Join(args, " "), out)
	return out
}

// mustRefuse runs a mynet command that must fail with want in its message
// and leave the engine namespace as it was: veths, mynet's rules and
// mynet's endpoints.
func mustRefuse(t *testing.T, net, want, cmd string, args ...string) {
	t.Helper()
	before := attachSnapshot(t, net)
	out, err := mynetCLI(cmd, args...)
	if err == nil {
		t.Errorf("mynet %s %s: succeeded (%s), want an error mentioning %q", cmd, strings.Join(args, " "), out, want)
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("mynet %s %s: %v\nwant an error mentioning %q", cmd, strings.Join(args, " "), err, want)
	}
	t.Logf("refused as expected: %v", err)
	if after := attachSnapshot(t, net); after != before {
		t.Errorf("a refused %s left something behind:\n%s\nbefore:\n%s", cmd, after, before)
	}
}

// attachSnapshot is what a refused attach must not change.
func attachSnapshot(t *testing.T, net string) string {
	t.Helper()
	return strings.Join(harness.MynetVeths(t), " ") + "\n" + mynetRules(t) + "\n" + mustMynetQuiet(t, "ls", net)
}

func mustMynetQuiet(t *testing.T, cmd string, args ...string) string {
	t.Helper()
	out, err := mynetCLI(cmd, args...)
	if err != nil {
		t.Fatalf("mynet %s %s: %v", cmd, strings.Join(args, " "), err)
	}
	return out
}

// startNone runs a detached container with --network none.
func startNone(t *testing.T, name string, cmd []string) {
	t.Helper()
	harness.RunDetached(t, name, harness.ContainerArgs("none", nil, cmd)...)
}

// lsLine returns the `mynet ls` line that mentions word, "" if none.
func lsLine(t *testing.T, net, word string) string {
	t.Helper()
	for _, l := range strings.Split(mustMynetQuiet(t, "ls", net), "\n") {
		if strings.Contains(l, word) {
			return l
		}
	}
	return ""
}

// dockerRunIP tries to start a container with a fixed address on net.
func dockerRunIP(net, ip string) error {
	_, err := harness.DockerErr("run", "--rm", "--network", net, "--ip", ip, harness.Image, "true")
	return err
}

func containerPid(t *testing.T, name string) string {
	t.Helper()
	return harness.Docker(t, "inspect", "-f", "{{.State.Pid}}", name)
}

// reapWait bounds how long a dead attachment may take to be reaped: the
// reaper's tick, plus however long the kernel keeps a removed container's
// namespace (and so its veth) alive, which under load can be well over 15 s.
const reapWait = 2 * time.Minute

// waitReaped waits until the plugin logs, after byte mark of its log, that
// it removed the attachment of container name on its own, and returns how
// long that took. It reads the log rather than asking the plugin, since
// every attach, detach and ls also removes dead attachments: this is the
// background reaper's doing. The mark, taken before the container went,
// keeps out earlier reaps of the same name (other iterations under
// -count>1, other subtests).
func waitReaped(t *testing.T, pluginLog func() string, mark int, net, name string) time.Duration {
	t.Helper()
	start := time.Now()
	err := harness.WaitFor(reapWait, 200*time.Millisecond, func() error {
		if reapLogged(logAfter(pluginLog(), mark), name) {
			return nil
		}
		return harness.ErrNotYet
	})
	if err != nil {
		t.Fatalf("no reap of %s logged %v after its container went (mynet veths in the engine: %v):\n%s",
			name, reapWait, harness.MynetVeths(t), mustMynetQuiet(t, "ls", net))
	}
	took := time.Since(start)
	if line := lsLine(t, net, name); line != "" {
		t.Errorf("reaped attachment still listed: %s", line)
	}
	return took
}

// logAfter returns what log holds past byte mark (all of it if the log
// was replaced by a shorter one).
func logAfter(log string, mark int) string {
	if mark > len(log) {
		return log
	}
	return log[mark:]
}

func reapLogged(log, name string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "attachment removed") && strings.Contains(l, "name="+name) {
			return true
		}
	}
	return false
}

// TestAttach: the user story of issue 8 on the legacy plugin.
func TestAttach(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net = "mynet-e2e-att"
		web = "e2e-att-web"
		vm1 = "e2e-att-vm1"
		vm2 = "e2e-att-vm2"
		vm3 = "e2e-att-vm3"
		vm4 = "e2e-att-vm4"
	)
	harness.CreateMynet(t, net, "--subnet", "10.130.0.0/24")
	harness.StartWeb(t, web, net, "--ip", "10.130.0.10")
	harness.StartWeb(t, vm1, "none")
	startNone(t, vm2, harness.SleepCmd)
	startNone(t, vm3, harness.SleepCmd)
	startNone(t, vm4, harness.SleepCmd)

	// With --ip and a published port; the container's view.
	out := mustMynet(t, "attach", net, vm1, "--ip", "10.130.0.77", "-p", "18950:80")
	harness.MustContain(t, "attach output", out, "10.130.0.77/24")
	harness.MustContain(t, "attach output", out, "0.0.0.0:18950->80/tcp")
	if got := harness.IfaceAddr(t, vm1, "eth0"); got.String() != "10.130.0.77/24" {
		t.Errorf("%s eth0 has %s, want 10.130.0.77/24", vm1, got)
	}
	harness.MustContain(t, "vm1 routes", harness.ExecIn(t, vm1, "ip", "route"), "default via 10.130.0.1 dev eth0")
	harness.MustContain(t, "vm1 MAC (derived from the address)", harness.ExecIn(t, vm1, "cat", "/sys/class/net/eth0/address"), "02:42:0a:82:00:4d")

	// Without --ip, by PID.
	pid2 := containerPid(t, vm2)
	mustMynet(t, "attach", net, "--pid", pid2)
	vm2Addr := harness.IfaceAddr(t, vm2, "eth0")
	if !netip.MustParsePrefix("10.130.0.0/24").Contains(vm2Addr.Addr()) || vm2Addr.Addr().String() == "10.130.0.77" {
		t.Fatalf("%s got %s, want a free address of 10.130.0.0/24", vm2, vm2Addr)
	}
	vm2IP := vm2Addr.Addr().String()

	t.Run("traffic", func(t *testing.T) {
		harness.MustReach(t, web, "10.130.0.77")
		harness.MustReach(t, vm1, "10.130.0.10")
		harness.MustReach(t, vm2, "10.130.0.77")
		harness.MustContain(t, "attached container to the outside through NAT", harness.ExecIn(t, vm2, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
		harness.MustContain(t, "attached container to the outside through NAT", harness.ExecIn(t, vm1, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
	})
	t.Run("published port", func(t *testing.T) {
		portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18950/", harness.WebPage)
		portsMustFetch(t, harness.EngineNS(), "http://127.0.0.1:18950/", harness.WebPage)
		harness.MustContain(t, "a neighbour through the host's address", harness.ExecIn(t, web, harness.HTTPGet("http://"+harness.EngineAddr+":18950/")...), harness.WebPage)
	})
	t.Run("address refused to docker", func(t *testing.T) {
		msg := harness.MustFail(t, "docker run --ip of the attached address", dockerRunIP(net, "10.130.0.77"))
		harness.MustContain(t, "docker's refusal", msg, "10.130.0.77 is already in use")
	})
	t.Run("ls", func(t *testing.T) {
		out := mustMynet(t, "ls", net)
		for word, want := range map[string][]string{
			web:           {"docker", "10.130.0.10/24"},
			vm1:           {"attach", "10.130.0.77/24", "eth0", "02:42:0a:82:00:4d", "0.0.0.0:18950->80/tcp"},
			"pid " + pid2: {"attach", vm2IP},
		} {
			line := lsLine(t, net, word)
			for _, w := range want {
				if !strings.Contains(line, w) {
					t.Errorf("ls line of %s %q lacks %q\n%s", word, line, w, out)
				}
			}
		}
		harness.MustContain(t, "inspect", mustMynet(t, "inspect", net), `"Origin": "attach"`)
	})
	t.Run("plugin restart", func(t *testing.T) {
		harness.Shared().RestartPlugin(t)
		if lsLine(t, net, vm1) == "" {
			t.Fatalf("attachment gone after a plugin restart:\n%s", mustMynetQuiet(t, "ls", net))
		}
		harness.MustReach(t, web, "10.130.0.77")
		harness.MustReach(t, vm1, "10.130.0.10")
		portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18950/", harness.WebPage)
		harness.MustFail(t, "docker run --ip of the attached address after a restart", dockerRunIP(net, "10.130.0.77"))
	})
	t.Run("detach", func(t *testing.T) {
		out := mustMynet(t, "detach", net, "--pid", pid2)
		harness.MustContain(t, "detach output", out, vm2IP)
		if harness.HasLink(t, vm2, "eth0") {
			t.Errorf("%s still has eth0 after detach", vm2)
		}
		if lsLine(t, net, "pid "+pid2) != "" {
			t.Errorf("detached namespace still listed")
		}
		if err := dockerRunIP(net, vm2IP); err != nil {
			t.Errorf("the detached address %s is not free for docker: %v", vm2IP, err)
		}
	})
	t.Run("container stopped", func(t *testing.T) {
		mustMynet(t, "attach", net, vm3, "--ip", "10.130.0.78")
		mark := len(harness.Shared().PluginLog())
		harness.Docker(t, "stop", vm3)
		took := waitReaped(t, harness.Shared().PluginLog, mark, net, vm3)
		t.Logf("attachment of the stopped container removed after %v", took.Round(10*time.Millisecond))
		if err := dockerRunIP(net, "10.130.0.78"); err != nil {
			t.Errorf("the reaped address is not free for docker: %v", err)
		}
	})
	t.Run("container removed", func(t *testing.T) {
		mark := len(harness.Shared().PluginLog())
		harness.Docker(t, "rm", "-f", vm1)
		took := waitReaped(t, harness.Shared().PluginLog, mark, net, vm1)
		t.Logf("attachment of the removed container removed after %v", took.Round(10*time.Millisecond))
		if v := harness.MynetVeths(t); len(v) != 1 {
			t.Errorf("veths %v, want only %s's", v, web)
		}
		if r := portsDNATRules(t, "10.130.0.77"); len(r) > 0 {
			t.Errorf("DNAT rules to the reaped address left: %v", r)
		}
		portsMustNotFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18950/")
		if err := dockerRunIP(net, "10.130.0.77"); err != nil {
			t.Errorf("the reaped address is not free for docker: %v", err)
		}
		harness.MustContain(t, "plugin log", harness.Shared().PluginLog(), "the container's network namespace is gone")
	})
	t.Run("removed while mynet is down", func(t *testing.T) {
		mustMynet(t, "attach", net, vm4, "--ip", "10.130.0.79", "-p", "18953:80")
		harness.Shared().StopPlugin(t)
		mark := len(harness.Shared().PluginLog())
		harness.Docker(t, "rm", "-f", vm4)
		harness.Shared().StartPlugin(t)
		took := waitReaped(t, harness.Shared().PluginLog, mark, net, vm4)
		t.Logf("attachment of the container removed while mynet was down removed %v after mynet started", took.Round(10*time.Millisecond))
		if r := portsDNATRules(t, "10.130.0.79"); len(r) > 0 {
			t.Errorf("DNAT rules to the reaped address left: %v", r)
		}
		if err := dockerRunIP(net, "10.130.0.79"); err != nil {
			t.Errorf("the reaped address is not free for docker: %v", err)
		}
	})
}

// TestAttachRefusals: each bad input is a clear error and leaves nothing:
// no veth, no rule, no endpoint, no lease.
func TestAttachRefusals(t *testing.T) {
	p := harness.UsePlugin(t)
	const (
		net    = "mynet-e2e-attref"
		net2   = "mynet-e2e-attref2"
		dflt   = "mynet-e2e-attref-dipam"
		web    = "e2e-attref-web"
		vm     = "e2e-attref-vm"
		host   = "e2e-attref-host"
		shared = "e2e-attref-shared"
		gone   = "e2e-attref-stopped"
	)
	harness.CreateMynet(t, net, "--subnet", "10.131.0.0/24")
	harness.CreateMynet(t, net2, "--subnet", "10.132.0.0/24")
	harness.CreateNetwork(t, dflt, "-d", p, "--subnet", "10.133.0.0/24")
	harness.StartWeb(t, web, net, "--ip", "10.131.0.10")
	startNone(t, vm, harness.SleepCmd)
	harness.RunDetached(t, host, harness.ContainerArgs("host", nil, harness.SleepCmd)...)
	harness.RunDetached(t, shared, harness.ContainerArgs("container:"+vm, nil, harness.SleepCmd)...)
	startNone(t, gone, harness.SleepCmd)
	harness.Docker(t, "stop", gone)

	cases := []struct {
		name, want string
		args       []string
	}{
		{"unknown network", `network "e2e-nope"`, []string{"e2e-nope", vm}},
		{"unknown container", `container "e2e-nope"`, []string{net, "e2e-nope"}},
		{"Docker's null driver", "Docker's null driver", []string{"none", vm}},
		{"Docker's IPAM", "Docker's default IPAM", []string{dflt, vm}},
		{"host mode", "--network host", []string{net, host}},
		{"container mode", "shares the network namespace of container", []string{net, shared}},
		{"stopped", "is not running", []string{net, gone}},
		{"outside the subnet", "outside subnet 10.131.0.0/24", []string{net, vm, "--ip", "10.99.0.5"}},
		{"in use", "10.131.0.10 is already in use", []string{net, vm, "--ip", "10.131.0.10"}},
		{"the gateway", "10.131.0.1 is already in use", []string{net, vm, "--ip", "10.131.0.1"}},
		{"interface name taken", "already has an interface lo", []string{net, vm, "--ifname", "lo"}},
		{"host namespace", "host's network namespace", []string{net, "--pid", strconv.Itoa(harness.Shared().Mynet.Proc.Pid())}},
		{"bad port", `protocol "icmp"`, []string{net, vm, "-p", "80/icmp"}},
		{"connected by docker", "already connected to network " + net + " by Docker", []string{net, web}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { mustRefuse(t, net, c.want, "attach", c.args...) })
	}
	t.Run("host port in use", func(t *testing.T) {
		harness.StartWeb(t, "e2e-attref-pub", net, "-p", "18951:80")
		mustRefuse(t, net, "18951", "attach", net, vm, "-p", "18951:80", "--ip", "10.131.0.60")
		if err := dockerRunIP(net, "10.131.0.60"); err != nil {
			t.Errorf("the address of the refused attach is not free: %v", err)
		}
	})
	t.Run("rollback after the plugin answered", func(t *testing.T) {
		// vm gets a default route on net; on net2 a second one is refused
		// by the container's kernel state, found only once mynet has made
		// the endpoint: the CLI must roll it back.
		mustMynet(t, "attach", net, vm)
		mustRefuse(t, net2, "use --no-default-route", "attach", net2, vm, "--ip", "10.132.0.50", "--ifname", "eth1")
		if err := dockerRunIP(net2, "10.132.0.50"); err != nil {
			t.Errorf("the address of the rolled back attach is not free: %v", err)
		}
		mustMynet(t, "attach", net2, vm, "--ip", "10.132.0.50", "--ifname", "eth1", "--no-default-route")
		if got := harness.IfaceAddr(t, vm, "eth1"); got.String() != "10.132.0.50/24" {
			t.Errorf("eth1 has %s", got)
		}
		harness.MustContain(t, "routes", harness.ExecIn(t, vm, "ip", "route"), "default via 10.131.0.1 dev eth0")
		mustRefuse(t, net2, "already attached", "attach", net2, vm, "--ifname", "eth2", "--no-default-route")
	})
	t.Run("detach of nothing", func(t *testing.T) {
		mustRefuse(t, net, "no attachment of container", "detach", net, web)
	})
}

// TestManagedAttach: the same through the managed plugin, whose socket
// the CLI finds with `docker plugin inspect`.
func TestManagedAttach(t *testing.T) {
	harness.WithManagedDriver(t)
	const (
		net = "mynet-e2e-matt"
		web = "e2e-matt-web"
		vm  = "e2e-matt-vm"
	)
	harness.CreateMynet(t, net, "--subnet", "10.134.0.0/24")
	harness.StartWeb(t, web, net, "--ip", "10.134.0.10")
	harness.StartWeb(t, vm, "none")
	mustMynet(t, "attach", net, vm, "--ip", "10.134.0.77", "-p", "18952:80")
	harness.MustReach(t, web, "10.134.0.77")
	harness.MustReach(t, vm, "10.134.0.10")
	harness.MustContain(t, "ext page through NAT", harness.ExecIn(t, vm, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18952/", harness.WebPage)
	harness.MustFail(t, "docker run --ip of the attached address", dockerRunIP(net, "10.134.0.77"))
	if line := lsLine(t, net, vm); !strings.Contains(line, "attach") {
		t.Errorf("ls: %q", line)
	}
	mustMynet(t, "detach", net, vm)
	if harness.HasLink(t, vm, "eth0") {
		t.Error("eth0 left after detach")
	}
	mustMynet(t, "attach", net, vm, "--ip", "10.134.0.77")
	id := harness.ManagedID(t)
	managedLog := func() string { return harness.ManagedLog(id) }
	mark := len(managedLog())
	harness.Docker(t, "rm", "-f", vm)
	took := waitReaped(t, managedLog, mark, net, vm)
	t.Logf("attachment of the removed container removed after %v", took.Round(10*time.Millisecond))
	if err := dockerRunIP(net, "10.134.0.77"); err != nil {
		t.Errorf("the reaped address is not free for docker: %v", err)
	}
}

// TestAttachDualStack: on a dual-stack network the attachment gets an
// address of each family and both default routes, and talks IPv6 with a
// Docker container.
func TestAttachDualStack(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net = "mynet-e2e-att6"
		web = "e2e-att6-web"
		vm  = "e2e-att6-vm"
	)
	harness.CreateMynet(t, net, "--ipv6", "--subnet", "10.135.0.0/24", "--subnet", "fd00:135::/64")
	harness.StartWeb(t, web, net)
	startNone(t, vm, harness.SleepCmd)
	mustMynet(t, "attach", net, vm, "--ip6", "fd00:135::77")
	harness.MustContain(t, "vm IPv6 address", harness.ExecIn(t, vm, "ip", "-6", "-o", "addr", "show", "dev", "eth0"), "fd00:135::77/64")
	harness.MustContain(t, "vm IPv6 default route", harness.RoutesIn(t, vm, true), "default via fd00:135::1")
	harness.MustContain(t, "vm IPv4 default route", harness.RoutesIn(t, vm, false), "default via 10.135.0.1")
	if web6 := harness.ContainerIPv6(t, web, net); !harness.CanPing(t, vm, web6.String()) {
		t.Errorf("%s cannot ping -6 %s", vm, web6)
	}
	if !harness.CanPing(t, web, "fd00:135::77") {
		t.Errorf("%s cannot ping -6 the attached address", web)
	}
	harness.MustContain(t, "ls", lsLine(t, net, vm), "fd00:135::77/64")
	v4 := harness.IfaceAddr(t, vm, "eth0").Addr().String()
	harness.MustFail(t, "docker run --ip6 of the attached address", runIP6(net, "fd00:135::77"))
	mustMynet(t, "detach", net, vm)
	if err := runIP6(net, "fd00:135::77"); err != nil {
		t.Errorf("the detached IPv6 address is not free: %v", err)
	}
	if err := dockerRunIP(net, v4); err != nil {
		t.Errorf("the detached IPv4 address is not free: %v", err)
	}
}

func runIP6(net, ip string) error {
	_, err := harness.DockerErr("run", "--rm", "--network", net, "--ip6", ip, harness.Image, "true")
	return err
}
