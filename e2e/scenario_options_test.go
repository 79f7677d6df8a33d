//go:build e2e

package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mynet/mynet/e2e/harness"
)

// Network options at parity with Docker's bridge driver (issue 5), each
// shown with real traffic: a packet that must pass does, one that must not
// does not. The ext namespace (198.18.0.2) plays the outside world; a test
// that needs it to route back into a container subnet adds that route
// itself (harness.ExtRoute), as a router in front of the host would have.

// TestOptionsICC: with enable_icc=false two containers of the network
// cannot reach each other by address or by name, but each reaches the
// gateway (ping, and a listener on the gateway address) and the outside
// through NAT.
func TestOptionsICC(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net     = "mynet-e2e-icc"
		a, b, c = "e2e-icc-a", "e2e-icc-b", "e2e-icc-c"
		gw      = "10.80.0.1"
	)
	harness.CreateMynet(t, net, "--subnet", "10.80.0.0/24", "--gateway", gw, "-o", harness.KeyICC+"=false")
	harness.MustHaveOption(t, net, harness.KeyICC, "false")
	harness.StartWeb(t, a, net)
	harness.StartWeb(t, b, net)
	gwListener := harness.StartListener(t, harness.EngineNS(), gw+":8081")
	ipA, ipB := harness.ContainerIP(t, a, net).String(), harness.ContainerIP(t, b, net).String()
	br := harness.MynetBridge(t, net)

	t.Run("not between containers", func(t *testing.T) {
		// The name resolves (embedded DNS works), the connection does not.
		harness.MustContain(t, "name of b resolved in a", harness.ExecIn(t, a, "nslookup", b), ipB)
		for _, p := range [][3]string{{a, b, ipB}, {b, a, ipA}} {
			from, to, ip := p[0], p[1], p[2]
			harness.MustBlock(t, from, harness.PingCheck("ping "+ip, ip), harness.FetchCheck("fetch "+harness.URLOf(ip), harness.URLOf(ip), harness.WebPage),
				harness.FetchCheck("fetch by name "+to, "http://"+to+"/", harness.WebPage))
		}
		// Control: both servers serve, seen from the engine namespace.
		for _, ip := range []string{ipA, ipB} {
			if out, ok := harness.ReachFromNS(harness.EngineNS(), harness.URLOf(ip), harness.WebPage); !ok {
				t.Errorf("engine namespace cannot fetch %s: %q", harness.URLOf(ip), out)
			}
		}
	})
	t.Run("gateway and outside", func(t *testing.T) {
		for _, ctr := range []string{a, b} {
			harness.MustPass(t, ctr, harness.PingCheck("ping gateway "+gw, gw), harness.FetchCheck("fetch "+gwListener.URL, gwListener.URL, gwListener.Page),
				harness.FetchCheck("fetch ext through NAT", harness.ExtURL, harness.ExtPage))
		}
	})
	t.Run("bridge ports isolated", func(t *testing.T) {
		ports := harness.EngineBridgePorts(t, br)
		if len(ports) != 2 {
			t.Fatalf("bridge %s has %d ports, want 2", br, len(ports))
		}
		for _, p := range ports {
			if p.Linkinfo == nil || p.Linkinfo.InfoSlaveData == nil || !p.Linkinfo.InfoSlaveData.Isolated {
				t.Errorf("port %s of %s is not isolated", p.Ifname, br)
			}
		}
	})
	t.Run("after a plugin crash", func(t *testing.T) {
		// The options come back from mynet's state: a container started
		// after the restart is isolated too.
		harness.Shared().KillPlugin(t)
		harness.Shared().StartPlugin(t)
		harness.StartSleeper(t, c, net)
		harness.MustBlock(t, c, harness.PingCheck("ping "+ipA, ipA), harness.FetchCheck("fetch "+harness.URLOf(ipA), harness.URLOf(ipA), harness.WebPage))
		harness.MustPass(t, c, harness.PingCheck("ping gateway "+gw, gw), harness.FetchCheck("fetch ext through NAT", harness.ExtURL, harness.ExtPage))
	})
	harness.RemoveAndCheck(t, net, br, false, a, b, c)
}

// TestOptionsInternal: an --internal network's containers talk to each
// other, have no default route, and reach neither the outside nor the
// host's own addresses (198.18.0.1, the bridge address), not even with a
// default route they set themselves; nothing from outside gets in, even
// with a route to the subnet.
func TestOptionsInternal(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net       = "mynet-e2e-internal"
		web, cli  = "e2e-int-web", "e2e-int-cli"
		admin     = "e2e-int-admin" // may set its own routes
		subnet    = "10.81.0.0/24"
		gw        = "10.81.0.1"
		hostPort  = "8082"
		bridgeURL = "http://" + gw + ":" + hostPort + "/"
	)
	harness.CreateMynet(t, net, "--internal", "--subnet", subnet, "--gateway", gw)
	if got := harness.NetInspect(t, net, "{{.Internal}}"); got != "true" {
		t.Errorf("inspect .Internal = %s, want true", got)
	}
	harness.StartWeb(t, web, net)
	harness.StartSleeper(t, cli, net)
	harness.StartSleeper(t, admin, net, "--cap-add", "NET_ADMIN")
	hostL := harness.StartListener(t, harness.EngineNS(), harness.EngineAddr+":"+hostPort)
	bridgeL := harness.StartListener(t, harness.EngineNS(), gw+":"+hostPort)
	webIP := harness.ContainerIP(t, web, net).String()
	br := harness.MynetBridge(t, net)

	t.Run("within", func(t *testing.T) {
		harness.MustPass(t, cli, harness.PingCheck("ping "+webIP, webIP), harness.FetchCheck("fetch "+webIP, harness.URLOf(webIP), harness.WebPage),
			harness.FetchCheck("fetch by name", "http://"+web+"/", harness.WebPage))
	})
	t.Run("no default route", func(t *testing.T) {
		if r := harness.RoutesIn(t, cli, false); strings.Contains(r, "default") {
			t.Errorf("%s has a default route on an internal network:\n%s", cli, r)
		}
	})
	checkOut := func(t *testing.T, c string) {
		t.Helper()
		harness.MustBlock(t, c, harness.FetchCheck("fetch ext", harness.ExtURL, harness.ExtPage), harness.PingCheck("ping ext", harness.ExtAddr),
			harness.FetchCheck("fetch host listener "+hostL.URL, hostL.URL, hostL.Page),
			harness.FetchCheck("fetch bridge-address listener "+bridgeURL, bridgeURL, bridgeL.Page),
			harness.PingCheck("ping gateway", gw))
	}
	t.Run("nothing out", func(t *testing.T) { checkOut(t, cli) })
	t.Run("nothing out with a self-made default route", func(t *testing.T) {
		harness.ExecIn(t, admin, "ip", "route", "add", "default", "via", gw)
		checkOut(t, admin)
	})
	t.Run("nothing in", func(t *testing.T) {
		harness.ExtRoute(t, subnet)
		if _, ok := harness.FetchFromNS(harness.ExtNS(), harness.URLOf(webIP), harness.WebPage); ok {
			t.Errorf("ext fetched %s's page through its route to %s", web, subnet)
		}
		if harness.PingFromNS(harness.ExtNS(), webIP) {
			t.Errorf("ext pinged %s", webIP)
		}
	})
	harness.RemoveAndCheck(t, net, br, false, web, cli, admin)
}

// TestOptionsGatewayModes: gateway_mode_ipv4 with ext routing the subnet
// back to the engine namespace. nat: outbound is masqueraded, direct
// access from outside is dropped. nat-unprotected: direct access works.
// routed: no masquerade (ext sees the container's address), direct access
// to an unpublished port is dropped. isolated: no address on the bridge,
// containers talk to each other, no default route, nothing out.
func TestOptionsGatewayModes(t *testing.T) {
	harness.UsePlugin(t)
	logL := harness.StartListener(t, harness.ExtNS(), harness.ExtAddr+":8090")

	// outbound fetches logL from c and returns the source ext saw.
	outbound := func(t *testing.T, c string) netip.Addr {
		t.Helper()
		if !harness.CanFetch(t, c, logL.URL, logL.Page) {
			t.Fatalf("%s cannot reach the ext listener %s", c, logL.URL)
		}
		return logL.LastClient(t)
	}
	modeNet := func(t *testing.T, mode, subnet string) (net, web, br string, webIP netip.Addr) {
		t.Helper()
		net, web = "mynet-e2e-gw-"+mode, "e2e-gw-"+mode
		harness.CreateMynet(t, net, "--subnet", subnet, "-o", harness.KeyGWModeV4+"="+mode)
		harness.MustHaveOption(t, net, harness.KeyGWModeV4, mode)
		harness.StartWeb(t, web, net)
		return net, web, harness.MynetBridge(t, net), harness.ContainerIP(t, web, net)
	}

	t.Run("nat", func(t *testing.T) {
		const subnet = "10.82.0.0/24"
		net, web, br, ip := modeNet(t, "nat", subnet)
		harness.ExtRoute(t, subnet)
		if _, ok := harness.FetchFromNS(harness.ExtNS(), harness.URLOf(ip.String()), harness.WebPage); ok {
			t.Errorf("nat: ext reached %s directly", ip)
		}
		if src := outbound(t, web); src != netip.MustParseAddr(harness.EngineAddr) {
			t.Errorf("nat: ext saw %v, want the masqueraded %s", src, harness.EngineAddr)
		}
		harness.RemoveAndCheck(t, net, br, false, web)
	})
	t.Run("nat-unprotected", func(t *testing.T) {
		const subnet = "10.83.0.0/24"
		net, web, br, ip := modeNet(t, "nat-unprotected", subnet)
		harness.ExtRoute(t, subnet)
		if out, ok := harness.ReachFromNS(harness.ExtNS(), harness.URLOf(ip.String()), harness.WebPage); !ok {
			t.Errorf("nat-unprotected: ext cannot reach %s directly: %q", ip, out)
		}
		if src := outbound(t, web); src != netip.MustParseAddr(harness.EngineAddr) {
			t.Errorf("nat-unprotected: ext saw %v, want the masqueraded %s", src, harness.EngineAddr)
		}
		harness.RemoveAndCheck(t, net, br, false, web)
	})
	t.Run("routed", func(t *testing.T) {
		const subnet = "10.84.0.0/24"
		net, web, br, ip := modeNet(t, "routed", subnet)
		harness.ExtRoute(t, subnet)
		if _, ok := harness.FetchFromNS(harness.ExtNS(), harness.URLOf(ip.String()), harness.WebPage); ok {
			t.Errorf("routed: ext reached unpublished port 80 of %s", ip)
		}
		if src := outbound(t, web); src != ip {
			t.Errorf("routed: ext saw %v, want the container's own %v", src, ip)
		}
		if rules := harness.InEngine(t, "iptables-save", "-t", "nat"); len(harness.LinesMentioning(rules, br, netip.MustParsePrefix(subnet))) > 0 {
			t.Errorf("routed: nat table has rules for %s:\n%s", br, strings.Join(harness.LinesMentioning(rules, br, netip.MustParsePrefix(subnet)), "\n"))
		}
		harness.RemoveAndCheck(t, net, br, false, web)
	})
	t.Run("isolated", func(t *testing.T) {
		const subnet = "10.85.0.0/24"
		net, web, br, ip := modeNet(t, "isolated", subnet)
		const cli = "e2e-gw-isolated-cli"
		harness.StartSleeper(t, cli, net)
		d, ok := harness.EngineLinkDetail(t, br)
		if !ok {
			t.Fatalf("isolated: no bridge %s", br)
		}
		if a := d.Addrs("inet"); len(a) > 0 {
			t.Errorf("isolated: bridge %s has IPv4 addresses %v, want none", br, a)
		}
		harness.MustReach(t, cli, ip.String())
		if r := harness.RoutesIn(t, cli, false); strings.Contains(r, "default") {
			t.Errorf("isolated: %s has a default route:\n%s", cli, r)
		}
		if harness.FetchFrom(t, cli, harness.ExtURL, harness.ExtPage) {
			t.Errorf("isolated: %s reached the ext server", cli)
		}
		harness.RemoveAndCheck(t, net, br, false, web, cli)
	})
}

// TestOptionsSNAT: host_ipv4 makes outbound traffic leave with that source
// address instead of the outgoing interface's; enable_ip_masquerade=false
// leaves the container's own address, so ext can only answer once it has a
// route back.
func TestOptionsSNAT(t *testing.T) {
	harness.UsePlugin(t)
	logL := harness.StartListener(t, harness.ExtNS(), harness.ExtAddr+":8091")

	t.Run("host_ipv4", func(t *testing.T) {
		const (
			net, c = "mynet-e2e-hostip", "e2e-hostip"
			hostIP = "198.18.1.1"
		)
		harness.InEngine(t, "ip", "addr", "add", hostIP+"/32", "dev", "lo")
		t.Cleanup(func() { _, _ = harness.InEngineErr("ip", "addr", "del", hostIP+"/32", "dev", "lo") })
		harness.ExtRoute(t, hostIP+"/32")
		harness.CreateMynet(t, net, "--subnet", "10.86.0.0/24", "-o", harness.KeyHostIPv4+"="+hostIP)
		harness.MustHaveOption(t, net, harness.KeyHostIPv4, hostIP)
		harness.StartSleeper(t, c, net)
		if !harness.CanFetch(t, c, logL.URL, logL.Page) {
			t.Fatalf("%s cannot reach the ext listener with host_ipv4=%s", c, hostIP)
		}
		if src := logL.LastClient(t); src != netip.MustParseAddr(hostIP) {
			t.Errorf("ext saw %v, want host_ipv4 %s", src, hostIP)
		}
		harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, c)
	})
	t.Run("no masquerade", func(t *testing.T) {
		const (
			net, c = "mynet-e2e-nomasq", "e2e-nomasq"
			subnet = "10.87.0.0/24"
		)
		harness.CreateMynet(t, net, "--subnet", subnet, "-o", harness.KeyMasquerade+"=false")
		harness.MustHaveOption(t, net, harness.KeyMasquerade, "false")
		harness.StartSleeper(t, c, net)
		if harness.FetchFrom(t, c, logL.URL, logL.Page) {
			t.Errorf("%s reached ext without masquerade and without a route back", c)
		}
		harness.ExtRoute(t, subnet)
		if !harness.CanFetch(t, c, logL.URL, logL.Page) {
			t.Fatalf("%s cannot reach ext although ext routes %s back", c, subnet)
		}
		if src, want := logL.LastClient(t), harness.ContainerIP(t, c, net); src != want {
			t.Errorf("ext saw %v, want the container's own %v", src, want)
		}
		harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, c)
	})
}

// TestOptionsBridge: MTU, bridge name (new and adopted), inhibit_ipv4,
// the container interface prefix and trusted host interfaces.
func TestOptionsBridge(t *testing.T) {
	harness.UsePlugin(t)

	t.Run("mtu", func(t *testing.T) {
		const net, c = "mynet-e2e-mtu", "e2e-mtu"
		harness.CreateMynet(t, net, "--subnet", "10.88.0.0/24", "-o", harness.KeyMTU+"=1400")
		harness.MustHaveOption(t, net, harness.KeyMTU, "1400")
		harness.StartSleeper(t, c, net)
		br := harness.MynetBridge(t, net)
		if out := harness.ExecIn(t, c, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, " mtu 1400 ") {
			t.Errorf("container eth0: want mtu 1400:\n%s", out)
		}
		if d, _ := harness.EngineLinkDetail(t, br); d.MTU != 1400 {
			t.Errorf("bridge %s: mtu %d, want 1400", br, d.MTU)
		}
		for _, p := range harness.EngineBridgePorts(t, br) {
			if p.MTU != 1400 {
				t.Errorf("bridge port %s: mtu %d, want 1400", p.Ifname, p.MTU)
			}
		}
		if !harness.CanFetch(t, c, harness.ExtURL, harness.ExtPage) {
			t.Errorf("%s cannot reach ext with mtu 1400", c)
		}
		harness.RemoveAndCheck(t, net, br, false, c)
	})
	t.Run("bridge name", func(t *testing.T) {
		const net, c, br = "mynet-e2e-brname", "e2e-brname", "e2ebr0"
		harness.CreateMynet(t, net, "--subnet", "10.89.0.0/24", "--gateway", "10.89.0.1", "-o", harness.KeyBridgeName+"="+br)
		harness.MustHaveOption(t, net, harness.KeyBridgeName, br)
		harness.StartSleeper(t, c, net)
		d, ok := harness.EngineLinkDetail(t, br)
		if !ok || !slices.Contains(d.Addrs("inet"), "10.89.0.1/24") {
			t.Fatalf("bridge %s with 10.89.0.1/24: exists=%v, addresses %v", br, ok, d.Addrs("inet"))
		}
		if len(harness.EngineBridgePorts(t, br)) != 1 {
			t.Errorf("bridge %s: want the container's veth on it", br)
		}
		harness.RemoveAndCheck(t, net, br, false, c)
	})
	t.Run("adopted bridge", func(t *testing.T) {
		const net, c, br = "mynet-e2e-adopt", "e2e-adopt", "e2ebr1"
		harness.InEngine(t, "ip", "link", "add", br, "type", "bridge")
		t.Cleanup(func() { _, _ = harness.InEngineErr("ip", "link", "del", br) })
		harness.CreateMynet(t, net, "--subnet", "10.90.0.0/24", "--gateway", "10.90.0.1", "-o", harness.KeyBridgeName+"="+br)
		harness.StartSleeper(t, c, net)
		if d, _ := harness.EngineLinkDetail(t, br); !slices.Contains(d.Addrs("inet"), "10.90.0.1/24") {
			t.Errorf("adopted bridge %s: addresses %v, want 10.90.0.1/24", br, d.Addrs("inet"))
		}
		if !harness.CanFetch(t, c, harness.ExtURL, harness.ExtPage) {
			t.Errorf("%s on the adopted bridge cannot reach ext", c)
		}
		harness.RemoveAndCheck(t, net, br, true, c)
		harness.InEngine(t, "ip", "link", "del", br)
	})
	t.Run("inhibit_ipv4", func(t *testing.T) {
		const net, a, b = "mynet-e2e-inhibit", "e2e-inhibit-a", "e2e-inhibit-b"
		harness.CreateMynet(t, net, "--subnet", "10.91.0.0/24", "-o", harness.KeyInhibitIPv4+"=true")
		harness.MustHaveOption(t, net, harness.KeyInhibitIPv4, "true")
		harness.StartWeb(t, a, net)
		harness.StartSleeper(t, b, net)
		br := harness.MynetBridge(t, net)
		d, ok := harness.EngineLinkDetail(t, br)
		if !ok {
			t.Fatalf("no bridge %s", br)
		}
		if addrs := d.Addrs("inet"); len(addrs) > 0 {
			t.Errorf("bridge %s has IPv4 addresses %v with inhibit_ipv4", br, addrs)
		}
		harness.MustReach(t, b, harness.ContainerIP(t, a, net).String())
		harness.RemoveAndCheck(t, net, br, false, a, b)
	})
	t.Run("container_iface_prefix", func(t *testing.T) {
		const net, c = "mynet-e2e-prefix", "e2e-prefix"
		harness.CreateMynet(t, net, "--subnet", "10.92.0.0/24", "-o", harness.KeyIfacePrefix+"=net")
		harness.MustHaveOption(t, net, harness.KeyIfacePrefix, "net")
		harness.StartSleeper(t, c, net)
		links := harness.ExecIn(t, c, "ip", "-o", "link", "show")
		switch {
		case harness.HasLink(t, c, "net0"):
			t.Logf("engine %s named the interface net0", harness.Shared().Kind)
		case harness.HasLink(t, c, "eth0"):
			t.Errorf("engine %s ignored the driver's DstPrefix \"net\": the interface is eth0\n%s", harness.Shared().Kind, links)
		default:
			t.Errorf("neither net0 nor eth0 in the container:\n%s", links)
		}
		harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, c)
	})
	t.Run("trusted_host_interfaces", func(t *testing.T) {
		const net, web, subnet = "mynet-e2e-trusted", "e2e-trusted", "10.93.0.0/24"
		harness.CreateMynet(t, net, "--subnet", subnet, "-o", harness.KeyTrusted+"="+harness.EngineLink)
		harness.MustHaveOption(t, net, harness.KeyTrusted, harness.EngineLink)
		harness.StartWeb(t, web, net)
		harness.ExtRoute(t, subnet)
		ip := harness.ContainerIP(t, web, net).String()
		if out, ok := harness.ReachFromNS(harness.ExtNS(), harness.URLOf(ip), harness.WebPage); !ok {
			t.Errorf("ext cannot reach %s directly through trusted %s: %q", ip, harness.EngineLink, out)
		}
		harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, web)
	})
}

// TestOptionsInvalid: an unknown key in Docker's bridge namespace is
// refused with the list of accepted keys, a bad value of each option with
// a message naming it; nothing is left behind, and the subnet is free
// again.
func TestOptionsInvalid(t *testing.T) {
	harness.UsePlugin(t)
	const net, subnet = "mynet-e2e-badopt", "10.94.0.0/24"
	linksBefore, rulesBefore := harness.InEngine(t, "ip", "-br", "addr"), harness.MynetRuleLines(t)

	msg := daemonError(harness.MustFail(t, "unknown key", harness.CreateMynetErr(t, net, "--subnet", subnet, "-o", "com.docker.network.bridge.bogus=1")))
	for _, want := range []string{"com.docker.network.bridge.bogus", harness.KeyMTU, harness.KeyICC, harness.KeyGWModeV4, harness.KeyIfacePrefix} {
		if !strings.Contains(msg, want) {
			t.Errorf("unknown key: want %q in the error", want)
		}
	}
	bad := []struct {
		key, val, want string
		args           []string
	}{
		{key: harness.KeyMTU, val: "abc", want: "want an MTU between"},
		{key: harness.KeyMTU, val: "10", want: "want an MTU between"},
		{key: harness.KeyMTU, val: "1200", want: "IPv6 needs an MTU of at least 1280", args: []string{"--ipv6", "--subnet", "fd00:5d::/64"}},
		{key: harness.KeyICC, val: "maybe", want: "want true or false"},
		{key: harness.KeyMasquerade, val: "nope", want: "want true or false"},
		{key: harness.KeyInhibitIPv4, val: "x", want: "want true or false"},
		{key: harness.KeyGWModeV4, val: "bogus", want: "want one of nat, nat-unprotected, routed, isolated"},
		{key: harness.KeyGWModeV6, val: "bogus", want: "want one of nat, nat-unprotected, routed, isolated"},
		{key: harness.KeyHostIPv4, val: "fd00::1", want: "want an IPv4 address"},
		{key: harness.KeyHostIPv4, val: "host", want: "want an IPv4 address"},
		{key: "com.docker.network.host_ipv6", val: "10.0.0.1", want: "want an IPv6 address"},
		{key: "com.docker.network.bridge.host_binding_ipv4", val: "localhost", want: "want an IPv4 or IPv6 address"},
		{key: harness.KeyBridgeName, val: "much-too-long-bridge", want: "1 to 15 bytes"},
		{key: harness.KeyBridgeName, val: "br-mine", want: "Docker"},
		{key: harness.KeyBridgeName, val: "docker0", want: "Docker"},
		{key: harness.KeyIfacePrefix, val: "a/b", want: "interface name"},
		{key: harness.KeyIfacePrefix, val: "fourteen-chars", want: "want 1 to 13 characters"},
		{key: harness.KeyTrusted, val: "eth0:a/b", want: `interface "a/b"`},
		{key: harness.KeyTrusted, val: "+", want: `interface "+"`},
		{key: harness.KeyTrusted, val: "!eth0", want: `interface "!eth0"`},
		{key: harness.KeyHostIPv4, val: "0.0.0.0", want: "not a unicast address"},
		{key: harness.KeyHostIPv4, val: "255.255.255.255", want: "not a unicast address"},
	}
	for _, c := range bad {
		t.Run(c.key+"="+c.val, func(t *testing.T) {
			args := append([]string{"--subnet", subnet, "-o", c.key + "=" + c.val}, c.args...)
			msg := daemonError(harness.MustFail(t, c.key+"="+c.val, harness.CreateMynetErr(t, net, args...)))
			if !strings.Contains(msg, c.key) || !strings.Contains(msg, c.want) {
				t.Errorf("want the option %s and %q in the error, got: %s", c.key, c.want, msg)
			}
		})
	}

	if out, _ := harness.DockerErr("network", "ls", "-q", "--filter", "name="+net); out != "" {
		t.Errorf("refused network %s exists: %s", net, out)
	}
	if after := harness.InEngine(t, "ip", "-br", "addr"); after != linksBefore {
		t.Errorf("links or addresses changed by refused creates:\nbefore\n%s\nafter\n%s", linksBefore, after)
	}
	if after := harness.MynetRuleLines(t); !slices.Equal(after, rulesBefore) {
		t.Errorf("mynet rules changed by refused creates:\nbefore %v\nafter  %v", rulesBefore, after)
	}
	// The refused creates gave their pool back: the subnet can be used.
	harness.CreateMynet(t, net, "--subnet", subnet)
	harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false)
}

// daemonError is the part of a docker CLI error the engine sent, without
// the command line (which names the option too).
func daemonError(msg string) string {
	if _, after, ok := strings.Cut(msg, "Error response from daemon:"); ok {
		return after
	}
	return msg
}
