//go:build e2e

package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// Network options at parity with Docker's bridge driver (issue 5), each
// shown with real traffic: a packet that must pass does, one that must not
// does not. The ext namespace (198.18.0.2) plays the outside world; a test
// that needs it to route back into a container subnet adds that route
// itself (extRoute), as a router in front of the host would have.

// TestOptionsICC: with enable_icc=false two containers of the network
// cannot reach each other by address or by name, but each reaches the
// gateway (ping, and a listener on the gateway address) and the outside
// through NAT.
func TestOptionsICC(t *testing.T) {
	usePlugin(t)
	const (
		net     = "mynet-e2e-icc"
		a, b, c = "e2e-icc-a", "e2e-icc-b", "e2e-icc-c"
		gw      = "10.80.0.1"
	)
	createMynet(t, net, "--subnet", "10.80.0.0/24", "--gateway", gw, "-o", keyICC+"=false")
	mustHaveOption(t, net, keyICC, "false")
	startWeb(t, a, net)
	startWeb(t, b, net)
	gwListener := startListener(t, engineNS(), gw+":8081")
	ipA, ipB := containerIP(t, a, net).String(), containerIP(t, b, net).String()
	br := mynetBridge(t, net)

	t.Run("not between containers", func(t *testing.T) {
		// The name resolves (embedded DNS works), the connection does not.
		mustContain(t, "name of b resolved in a", execIn(t, a, "nslookup", b), ipB)
		for _, p := range [][3]string{{a, b, ipB}, {b, a, ipA}} {
			from, to, ip := p[0], p[1], p[2]
			mustBlock(t, from, pingCheck("ping "+ip, ip), fetchCheck("fetch "+urlOf(ip), urlOf(ip), webPage),
				fetchCheck("fetch by name "+to, "http://"+to+"/", webPage))
		}
		// Control: both servers serve, seen from the engine namespace.
		for _, ip := range []string{ipA, ipB} {
			if out, ok := reachFromNS(engineNS(), urlOf(ip), webPage); !ok {
				t.Errorf("engine namespace cannot fetch %s: %q", urlOf(ip), out)
			}
		}
	})
	t.Run("gateway and outside", func(t *testing.T) {
		for _, ctr := range []string{a, b} {
			mustPass(t, ctr, pingCheck("ping gateway "+gw, gw), fetchCheck("fetch "+gwListener.url, gwListener.url, gwListener.page),
				fetchCheck("fetch ext through NAT", extURL, extPage))
		}
	})
	t.Run("bridge ports isolated", func(t *testing.T) {
		ports := engineBridgePorts(t, br)
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
		env.KillPlugin(t)
		env.StartPlugin(t)
		startSleeper(t, c, net)
		mustBlock(t, c, pingCheck("ping "+ipA, ipA), fetchCheck("fetch "+urlOf(ipA), urlOf(ipA), webPage))
		mustPass(t, c, pingCheck("ping gateway "+gw, gw), fetchCheck("fetch ext through NAT", extURL, extPage))
	})
	removeAndCheck(t, net, br, false, a, b, c)
}

// TestOptionsInternal: an --internal network's containers talk to each
// other, have no default route, and reach neither the outside nor the
// host's own addresses (198.18.0.1, the bridge address), not even with a
// default route they set themselves; nothing from outside gets in, even
// with a route to the subnet.
func TestOptionsInternal(t *testing.T) {
	usePlugin(t)
	const (
		net       = "mynet-e2e-internal"
		web, cli  = "e2e-int-web", "e2e-int-cli"
		admin     = "e2e-int-admin" // may set its own routes
		subnet    = "10.81.0.0/24"
		gw        = "10.81.0.1"
		hostPort  = "8082"
		bridgeURL = "http://" + gw + ":" + hostPort + "/"
	)
	createMynet(t, net, "--internal", "--subnet", subnet, "--gateway", gw)
	if got := netInspect(t, net, "{{.Internal}}"); got != "true" {
		t.Errorf("inspect .Internal = %s, want true", got)
	}
	startWeb(t, web, net)
	startSleeper(t, cli, net)
	startSleeper(t, admin, net, "--cap-add", "NET_ADMIN")
	hostL := startListener(t, engineNS(), engineAddr+":"+hostPort)
	bridgeL := startListener(t, engineNS(), gw+":"+hostPort)
	webIP := containerIP(t, web, net).String()
	br := mynetBridge(t, net)

	t.Run("within", func(t *testing.T) {
		mustPass(t, cli, pingCheck("ping "+webIP, webIP), fetchCheck("fetch "+webIP, urlOf(webIP), webPage),
			fetchCheck("fetch by name", "http://"+web+"/", webPage))
	})
	t.Run("no default route", func(t *testing.T) {
		if r := routesIn(t, cli, false); strings.Contains(r, "default") {
			t.Errorf("%s has a default route on an internal network:\n%s", cli, r)
		}
	})
	checkOut := func(t *testing.T, c string) {
		t.Helper()
		mustBlock(t, c, fetchCheck("fetch ext", extURL, extPage), pingCheck("ping ext", extAddr),
			fetchCheck("fetch host listener "+hostL.url, hostL.url, hostL.page),
			fetchCheck("fetch bridge-address listener "+bridgeURL, bridgeURL, bridgeL.page),
			pingCheck("ping gateway", gw))
	}
	t.Run("nothing out", func(t *testing.T) { checkOut(t, cli) })
	t.Run("nothing out with a self-made default route", func(t *testing.T) {
		execIn(t, admin, "ip", "route", "add", "default", "via", gw)
		checkOut(t, admin)
	})
	t.Run("nothing in", func(t *testing.T) {
		extRoute(t, subnet)
		if _, ok := fetchFromNS(extNS(), urlOf(webIP), webPage); ok {
			t.Errorf("ext fetched %s's page through its route to %s", web, subnet)
		}
		if pingFromNS(extNS(), webIP) {
			t.Errorf("ext pinged %s", webIP)
		}
	})
	removeAndCheck(t, net, br, false, web, cli, admin)
}

// TestOptionsGatewayModes: gateway_mode_ipv4 with ext routing the subnet
// back to the engine namespace. nat: outbound is masqueraded, direct
// access from outside is dropped. nat-unprotected: direct access works.
// routed: no masquerade (ext sees the container's address), direct access
// to an unpublished port is dropped. isolated: no address on the bridge,
// containers talk to each other, no default route, nothing out.
func TestOptionsGatewayModes(t *testing.T) {
	usePlugin(t)
	logL := startListener(t, extNS(), extAddr+":8090")

	// outbound fetches logL from c and returns the source ext saw.
	outbound := func(t *testing.T, c string) netip.Addr {
		t.Helper()
		if !canFetch(t, c, logL.url, logL.page) {
			t.Fatalf("%s cannot reach the ext listener %s", c, logL.url)
		}
		return logL.lastClient(t)
	}
	modeNet := func(t *testing.T, mode, subnet string) (net, web, br string, webIP netip.Addr) {
		t.Helper()
		net, web = "mynet-e2e-gw-"+mode, "e2e-gw-"+mode
		createMynet(t, net, "--subnet", subnet, "-o", keyGWModeV4+"="+mode)
		mustHaveOption(t, net, keyGWModeV4, mode)
		startWeb(t, web, net)
		return net, web, mynetBridge(t, net), containerIP(t, web, net)
	}

	t.Run("nat", func(t *testing.T) {
		const subnet = "10.82.0.0/24"
		net, web, br, ip := modeNet(t, "nat", subnet)
		extRoute(t, subnet)
		if _, ok := fetchFromNS(extNS(), urlOf(ip.String()), webPage); ok {
			t.Errorf("nat: ext reached %s directly", ip)
		}
		if src := outbound(t, web); src != netip.MustParseAddr(engineAddr) {
			t.Errorf("nat: ext saw %v, want the masqueraded %s", src, engineAddr)
		}
		removeAndCheck(t, net, br, false, web)
	})
	t.Run("nat-unprotected", func(t *testing.T) {
		const subnet = "10.83.0.0/24"
		net, web, br, ip := modeNet(t, "nat-unprotected", subnet)
		extRoute(t, subnet)
		if out, ok := reachFromNS(extNS(), urlOf(ip.String()), webPage); !ok {
			t.Errorf("nat-unprotected: ext cannot reach %s directly: %q", ip, out)
		}
		if src := outbound(t, web); src != netip.MustParseAddr(engineAddr) {
			t.Errorf("nat-unprotected: ext saw %v, want the masqueraded %s", src, engineAddr)
		}
		removeAndCheck(t, net, br, false, web)
	})
	t.Run("routed", func(t *testing.T) {
		const subnet = "10.84.0.0/24"
		net, web, br, ip := modeNet(t, "routed", subnet)
		extRoute(t, subnet)
		if _, ok := fetchFromNS(extNS(), urlOf(ip.String()), webPage); ok {
			t.Errorf("routed: ext reached unpublished port 80 of %s", ip)
		}
		if src := outbound(t, web); src != ip {
			t.Errorf("routed: ext saw %v, want the container's own %v", src, ip)
		}
		if rules := inEngine(t, "iptables-save", "-t", "nat"); len(linesMentioning(rules, br, netip.MustParsePrefix(subnet))) > 0 {
			t.Errorf("routed: nat table has rules for %s:\n%s", br, strings.Join(linesMentioning(rules, br, netip.MustParsePrefix(subnet)), "\n"))
		}
		removeAndCheck(t, net, br, false, web)
	})
	t.Run("isolated", func(t *testing.T) {
		const subnet = "10.85.0.0/24"
		net, web, br, ip := modeNet(t, "isolated", subnet)
		const cli = "e2e-gw-isolated-cli"
		startSleeper(t, cli, net)
		d, ok := engineLinkDetail(t, br)
		if !ok {
			t.Fatalf("isolated: no bridge %s", br)
		}
		if a := d.addrs("inet"); len(a) > 0 {
			t.Errorf("isolated: bridge %s has IPv4 addresses %v, want none", br, a)
		}
		mustReach(t, cli, ip.String())
		if r := routesIn(t, cli, false); strings.Contains(r, "default") {
			t.Errorf("isolated: %s has a default route:\n%s", cli, r)
		}
		if fetchFrom(t, cli, extURL, extPage) {
			t.Errorf("isolated: %s reached the ext server", cli)
		}
		removeAndCheck(t, net, br, false, web, cli)
	})
}

// TestOptionsSNAT: host_ipv4 makes outbound traffic leave with that source
// address instead of the outgoing interface's; enable_ip_masquerade=false
// leaves the container's own address, so ext can only answer once it has a
// route back.
func TestOptionsSNAT(t *testing.T) {
	usePlugin(t)
	logL := startListener(t, extNS(), extAddr+":8091")

	t.Run("host_ipv4", func(t *testing.T) {
		const (
			net, c = "mynet-e2e-hostip", "e2e-hostip"
			hostIP = "198.18.1.1"
		)
		inEngine(t, "ip", "addr", "add", hostIP+"/32", "dev", "lo")
		t.Cleanup(func() { _, _ = inEngineErr("ip", "addr", "del", hostIP+"/32", "dev", "lo") })
		extRoute(t, hostIP+"/32")
		createMynet(t, net, "--subnet", "10.86.0.0/24", "-o", keyHostIPv4+"="+hostIP)
		mustHaveOption(t, net, keyHostIPv4, hostIP)
		startSleeper(t, c, net)
		if !canFetch(t, c, logL.url, logL.page) {
			t.Fatalf("%s cannot reach the ext listener with host_ipv4=%s", c, hostIP)
		}
		if src := logL.lastClient(t); src != netip.MustParseAddr(hostIP) {
			t.Errorf("ext saw %v, want host_ipv4 %s", src, hostIP)
		}
		removeAndCheck(t, net, mynetBridge(t, net), false, c)
	})
	t.Run("no masquerade", func(t *testing.T) {
		const (
			net, c = "mynet-e2e-nomasq", "e2e-nomasq"
			subnet = "10.87.0.0/24"
		)
		createMynet(t, net, "--subnet", subnet, "-o", keyMasquerade+"=false")
		mustHaveOption(t, net, keyMasquerade, "false")
		startSleeper(t, c, net)
		if fetchFrom(t, c, logL.url, logL.page) {
			t.Errorf("%s reached ext without masquerade and without a route back", c)
		}
		extRoute(t, subnet)
		if !canFetch(t, c, logL.url, logL.page) {
			t.Fatalf("%s cannot reach ext although ext routes %s back", c, subnet)
		}
		if src, want := logL.lastClient(t), containerIP(t, c, net); src != want {
			t.Errorf("ext saw %v, want the container's own %v", src, want)
		}
		removeAndCheck(t, net, mynetBridge(t, net), false, c)
	})
}

// TestOptionsBridge: MTU, bridge name (new and adopted), inhibit_ipv4,
// the container interface prefix and trusted host interfaces.
func TestOptionsBridge(t *testing.T) {
	usePlugin(t)

	t.Run("mtu", func(t *testing.T) {
		const net, c = "mynet-e2e-mtu", "e2e-mtu"
		createMynet(t, net, "--subnet", "10.88.0.0/24", "-o", keyMTU+"=1400")
		mustHaveOption(t, net, keyMTU, "1400")
		startSleeper(t, c, net)
		br := mynetBridge(t, net)
		if out := execIn(t, c, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, " mtu 1400 ") {
			t.Errorf("container eth0: want mtu 1400:\n%s", out)
		}
		if d, _ := engineLinkDetail(t, br); d.MTU != 1400 {
			t.Errorf("bridge %s: mtu %d, want 1400", br, d.MTU)
		}
		for _, p := range engineBridgePorts(t, br) {
			if p.MTU != 1400 {
				t.Errorf("bridge port %s: mtu %d, want 1400", p.Ifname, p.MTU)
			}
		}
		if !canFetch(t, c, extURL, extPage) {
			t.Errorf("%s cannot reach ext with mtu 1400", c)
		}
		removeAndCheck(t, net, br, false, c)
	})
	t.Run("bridge name", func(t *testing.T) {
		const net, c, br = "mynet-e2e-brname", "e2e-brname", "e2ebr0"
		createMynet(t, net, "--subnet", "10.89.0.0/24", "--gateway", "10.89.0.1", "-o", keyBridgeName+"="+br)
		mustHaveOption(t, net, keyBridgeName, br)
		startSleeper(t, c, net)
		d, ok := engineLinkDetail(t, br)
		if !ok || !slices.Contains(d.addrs("inet"), "10.89.0.1/24") {
			t.Fatalf("bridge %s with 10.89.0.1/24: exists=%v, addresses %v", br, ok, d.addrs("inet"))
		}
		if len(engineBridgePorts(t, br)) != 1 {
			t.Errorf("bridge %s: want the container's veth on it", br)
		}
		removeAndCheck(t, net, br, false, c)
	})
	t.Run("adopted bridge", func(t *testing.T) {
		const net, c, br = "mynet-e2e-adopt", "e2e-adopt", "e2ebr1"
		inEngine(t, "ip", "link", "add", br, "type", "bridge")
		t.Cleanup(func() { _, _ = inEngineErr("ip", "link", "del", br) })
		createMynet(t, net, "--subnet", "10.90.0.0/24", "--gateway", "10.90.0.1", "-o", keyBridgeName+"="+br)
		startSleeper(t, c, net)
		if d, _ := engineLinkDetail(t, br); !slices.Contains(d.addrs("inet"), "10.90.0.1/24") {
			t.Errorf("adopted bridge %s: addresses %v, want 10.90.0.1/24", br, d.addrs("inet"))
		}
		if !canFetch(t, c, extURL, extPage) {
			t.Errorf("%s on the adopted bridge cannot reach ext", c)
		}
		removeAndCheck(t, net, br, true, c)
		inEngine(t, "ip", "link", "del", br)
	})
	t.Run("inhibit_ipv4", func(t *testing.T) {
		const net, a, b = "mynet-e2e-inhibit", "e2e-inhibit-a", "e2e-inhibit-b"
		createMynet(t, net, "--subnet", "10.91.0.0/24", "-o", keyInhibitIPv4+"=true")
		mustHaveOption(t, net, keyInhibitIPv4, "true")
		startWeb(t, a, net)
		startSleeper(t, b, net)
		br := mynetBridge(t, net)
		d, ok := engineLinkDetail(t, br)
		if !ok {
			t.Fatalf("no bridge %s", br)
		}
		if addrs := d.addrs("inet"); len(addrs) > 0 {
			t.Errorf("bridge %s has IPv4 addresses %v with inhibit_ipv4", br, addrs)
		}
		mustReach(t, b, containerIP(t, a, net).String())
		removeAndCheck(t, net, br, false, a, b)
	})
	t.Run("container_iface_prefix", func(t *testing.T) {
		const net, c = "mynet-e2e-prefix", "e2e-prefix"
		createMynet(t, net, "--subnet", "10.92.0.0/24", "-o", keyIfacePrefix+"=net")
		mustHaveOption(t, net, keyIfacePrefix, "net")
		startSleeper(t, c, net)
		links := execIn(t, c, "ip", "-o", "link", "show")
		switch {
		case hasLink(t, c, "net0"):
			t.Logf("engine %s named the interface net0", env.kind)
		case hasLink(t, c, "eth0"):
			t.Errorf("engine %s ignored the driver's DstPrefix \"net\": the interface is eth0\n%s", env.kind, links)
		default:
			t.Errorf("neither net0 nor eth0 in the container:\n%s", links)
		}
		removeAndCheck(t, net, mynetBridge(t, net), false, c)
	})
	t.Run("trusted_host_interfaces", func(t *testing.T) {
		const net, web, subnet = "mynet-e2e-trusted", "e2e-trusted", "10.93.0.0/24"
		createMynet(t, net, "--subnet", subnet, "-o", keyTrusted+"="+engineLink)
		mustHaveOption(t, net, keyTrusted, engineLink)
		startWeb(t, web, net)
		extRoute(t, subnet)
		ip := containerIP(t, web, net).String()
		if out, ok := reachFromNS(extNS(), urlOf(ip), webPage); !ok {
			t.Errorf("ext cannot reach %s directly through trusted %s: %q", ip, engineLink, out)
		}
		removeAndCheck(t, net, mynetBridge(t, net), false, web)
	})
}

// TestOptionsInvalid: an unknown key in Docker's bridge namespace is
// refused with the list of accepted keys, a bad value of each option with
// a message naming it; nothing is left behind, and the subnet is free
// again.
func TestOptionsInvalid(t *testing.T) {
	usePlugin(t)
	const net, subnet = "mynet-e2e-badopt", "10.94.0.0/24"
	linksBefore, rulesBefore := inEngine(t, "ip", "-br", "addr"), mynetRuleLines(t)

	msg := daemonError(mustFail(t, "unknown key", createMynetErr(t, net, "--subnet", subnet, "-o", "com.docker.network.bridge.bogus=1")))
	for _, want := range []string{"com.docker.network.bridge.bogus", keyMTU, keyICC, keyGWModeV4, keyIfacePrefix} {
		if !strings.Contains(msg, want) {
			t.Errorf("unknown key: want %q in the error", want)
		}
	}
	bad := []struct {
		key, val, want string
		args           []string
	}{
		{key: keyMTU, val: "abc", want: "want an MTU between"},
		{key: keyMTU, val: "10", want: "want an MTU between"},
		{key: keyMTU, val: "1200", want: "IPv6 needs an MTU of at least 1280", args: []string{"--ipv6", "--subnet", "fd00:5d::/64"}},
		{key: keyICC, val: "maybe", want: "want true or false"},
		{key: keyMasquerade, val: "nope", want: "want true or false"},
		{key: keyInhibitIPv4, val: "x", want: "want true or false"},
		{key: keyGWModeV4, val: "bogus", want: "want one of nat, nat-unprotected, routed, isolated"},
		{key: keyGWModeV6, val: "bogus", want: "want one of nat, nat-unprotected, routed, isolated"},
		{key: keyHostIPv4, val: "fd00::1", want: "want an IPv4 address"},
		{key: keyHostIPv4, val: "host", want: "want an IPv4 address"},
		{key: "com.docker.network.host_ipv6", val: "10.0.0.1", want: "want an IPv6 address"},
		{key: "com.docker.network.bridge.host_binding_ipv4", val: "localhost", want: "want an IPv4 or IPv6 address"},
		{key: keyBridgeName, val: "much-too-long-bridge", want: "1 to 15 bytes"},
		{key: keyBridgeName, val: "br-mine", want: "Docker"},
		{key: keyBridgeName, val: "docker0", want: "Docker"},
		{key: keyIfacePrefix, val: "a/b", want: "interface name"},
		{key: keyIfacePrefix, val: "fourteen-chars", want: "want 1 to 13 characters"},
		{key: keyTrusted, val: "eth0:a/b", want: `interface "a/b"`},
		{key: keyTrusted, val: "+", want: `interface "+"`},
		{key: keyTrusted, val: "!eth0", want: `interface "!eth0"`},
		{key: keyHostIPv4, val: "0.0.0.0", want: "not a unicast address"},
		{key: keyHostIPv4, val: "255.255.255.255", want: "not a unicast address"},
	}
	for _, c := range bad {
		t.Run(c.key+"="+c.val, func(t *testing.T) {
			args := append([]string{"--subnet", subnet, "-o", c.key + "=" + c.val}, c.args...)
			msg := daemonError(mustFail(t, c.key+"="+c.val, createMynetErr(t, net, args...)))
			if !strings.Contains(msg, c.key) || !strings.Contains(msg, c.want) {
				t.Errorf("want the option %s and %q in the error, got: %s", c.key, c.want, msg)
			}
		})
	}

	if out, _ := dockerErr("network", "ls", "-q", "--filter", "name="+net); out != "" {
		t.Errorf("refused network %s exists: %s", net, out)
	}
	if after := inEngine(t, "ip", "-br", "addr"); after != linksBefore {
		t.Errorf("links or addresses changed by refused creates:\nbefore\n%s\nafter\n%s", linksBefore, after)
	}
	if after := mynetRuleLines(t); !slices.Equal(after, rulesBefore) {
		t.Errorf("mynet rules changed by refused creates:\nbefore %v\nafter  %v", rulesBefore, after)
	}
	// The refused creates gave their pool back: the subnet can be used.
	createMynet(t, net, "--subnet", subnet)
	removeAndCheck(t, net, mynetBridge(t, net), false)
}

// daemonError is the part of a docker CLI error the engine sent, without
// the command line (which names the option too).
func daemonError(msg string) string {
	if _, after, ok := strings.Cut(msg, "Error response from daemon:"); ok {
		return after
	}
	return msg
}
