//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"
)

// IPv6 networks (issue 5): dual stack with a given or a default ULA
// subnet, NAT66 to the outside, isolation between networks, ICC off and
// --internal over IPv6, and IPv6-only networks on the current engine.

// TestIPv6DualStack: --ipv6 with an IPv4 and an IPv6 subnet. Containers get
// an address of each family, reach each other and the gateway over IPv6,
// the engine namespace reaches them; they reach ext over IPv6 through
// NAT66 although ext has no route back, and ext cannot come in directly.
func TestIPv6DualStack(t *testing.T) {
	usePlugin(t)
	const (
		net            = "mynet-e2e-v6"
		web, cli, late = "e2e-v6-web", "e2e-v6-cli", "e2e-v6-late"
		subnet6        = "fd00:5e::/64"
		gw6            = "fd00:5e::1"
	)
	createMynet(t, net, "--ipv6", "--subnet", "10.95.0.0/24", "--subnet", subnet6)
	if got := netInspect(t, net, "{{.EnableIPv6}}"); got != "true" {
		t.Errorf("inspect .EnableIPv6 = %s, want true", got)
	}
	mustContain(t, "inspect IPAM config", netInspect(t, net, "{{json .IPAM.Config}}"), subnet6)
	startWeb(t, web, net)
	startSleeper(t, cli, net)
	web6, cli6 := containerIPv6(t, web, net), containerIPv6(t, cli, net)
	br := mynetBridge(t, net)

	t.Run("addresses", func(t *testing.T) {
		for c, a := range map[string]netip.Addr{web: web6, cli: cli6} {
			if !netip.MustParsePrefix(subnet6).Contains(a) {
				t.Errorf("%s got %v, outside %s", c, a, subnet6)
			}
			mustContain(t, c+" eth0 IPv6", execIn(t, c, "ip", "-6", "-o", "addr", "show", "dev", "eth0"), a.String()+"/64")
		}
		mustContain(t, "IPv6 default route", routesIn(t, cli, true), "default via "+gw6)
		if d, _ := engineLinkDetail(t, br); !strings.Contains(strings.Join(d.addrs("inet6"), " "), gw6+"/64") {
			t.Errorf("bridge %s: IPv6 addresses %v, want %s/64", br, d.addrs("inet6"), gw6)
		}
	})
	t.Run("between containers and gateway", func(t *testing.T) {
		mustReachAny(t, cli, web6.String())
		if !canPing(t, web, cli6.String()) {
			t.Errorf("%s cannot ping -6 %s", web, cli6)
		}
		if !canPing(t, cli, gw6) {
			t.Errorf("%s cannot ping -6 the gateway %s", cli, gw6)
		}
	})
	t.Run("from the engine namespace", func(t *testing.T) {
		if !pingsFromNS(engineNS(), web6.String()) {
			t.Errorf("engine namespace cannot ping %s", web6)
		}
		if out, ok := reachFromNS(engineNS(), urlOf(web6.String()), webPage); !ok {
			t.Errorf("engine namespace cannot fetch %s: %q", urlOf(web6.String()), out)
		}
	})
	t.Run("NAT66 out", func(t *testing.T) {
		withExtIPv6(t)
		l := startListener(t, extNS(), "["+extAddr6+"]:8092")
		if r := inExt(t, "ip", "-6", "route", "show"); strings.Contains(r, "fd00:5e:") {
			t.Fatalf("ext has a route to %s:\n%s", subnet6, r)
		}
		if !canFetch(t, cli, l.url, l.page) {
			t.Fatalf("%s cannot reach %s over IPv6", cli, l.url)
		}
		if src := l.lastClient(t); src != netip.MustParseAddr(engineAddr6) {
			t.Errorf("ext saw %v, want the masqueraded %s", src, engineAddr6)
		}
		if !canPing(t, cli, extAddr6) {
			t.Errorf("%s cannot ping -6 %s", cli, extAddr6)
		}
	})
	t.Run("nothing in from ext", func(t *testing.T) {
		withExtIPv6(t)
		extRoute(t, subnet6)
		if _, ok := fetchFromNS(extNS(), urlOf(web6.String()), webPage); ok {
			t.Errorf("ext fetched %s directly in nat mode", urlOf(web6.String()))
		}
	})
	t.Run("after a plugin crash", func(t *testing.T) {
		// Restore brings back the IPv6 address and rules; a new container
		// gets an IPv6 address and reaches the others.
		env.KillPlugin(t)
		env.StartPlugin(t)
		startSleeper(t, late, net)
		if a := containerIPv6(t, late, net); a == web6 || a == cli6 {
			t.Errorf("%s got %v, already in use", late, a)
		}
		mustReachAny(t, late, web6.String())
		mustPass(t, late, pingCheck("ping gateway "+gw6, gw6))
	})
	removeAndCheck(t, net, br, false, web, cli, late)
}

// TestIPv6DefaultPool: --ipv6 without an IPv6 subnet gets a /64 from
// mynet's default ULA pool, and it works.
func TestIPv6DefaultPool(t *testing.T) {
	usePlugin(t)
	const net, c = "mynet-e2e-v6pool", "e2e-v6pool"
	pool := netip.MustParsePrefix("fd6d:796e:6574::/48")
	createMynet(t, net, "--ipv6", "--subnet", "10.96.0.0/24")
	g := describeNetwork(t, net, "")
	if !g.subnet6.IsValid() || g.subnet6.Bits() != 64 || !pool.Contains(g.subnet6.Addr()) {
		t.Fatalf("IPv6 subnet %v, want a /64 of %v (IPAM config %s)", g.subnet6, pool, netInspect(t, net, "{{json .IPAM.Config}}"))
	}
	startSleeper(t, c, net)
	if a := containerIPv6(t, c, net); !g.subnet6.Contains(a) {
		t.Errorf("%s got %v, outside %v", c, a, g.subnet6)
	}
	if gw := g.subnet6.Addr().Next(); !canPing(t, c, gw.String()) {
		t.Errorf("%s cannot ping -6 the gateway %v", c, gw)
	}
	removeAndCheck(t, net, mynetBridge(t, net), false, c)
}

// TestIPv6Isolation: containers of two IPv6 networks cannot reach each
// other over IPv6.
func TestIPv6Isolation(t *testing.T) {
	usePlugin(t)
	const (
		netA, netB = "mynet-e2e-v6iso-a", "mynet-e2e-v6iso-b"
		a, b       = "e2e-v6iso-a", "e2e-v6iso-b"
	)
	createMynet(t, netA, "--ipv6", "--subnet", "10.97.0.0/24", "--subnet", "fd00:60::/64")
	createMynet(t, netB, "--ipv6", "--subnet", "10.98.0.0/24", "--subnet", "fd00:61::/64")
	startWeb(t, a, netA)
	startWeb(t, b, netB)
	mustNotReachAny(t, a, containerIPv6(t, b, netB).String())
	mustNotReachAny(t, b, containerIPv6(t, a, netA).String())
	// Both containers go first: removeAndCheck finds no mynet veth at all.
	docker(t, "rm", "-f", a, b)
	removeAndCheck(t, netA, mynetBridge(t, netA), false)
	removeAndCheck(t, netB, mynetBridge(t, netB), false)
}

// TestIPv6ICC: enable_icc=false holds for IPv6 too; the IPv6 gateway stays
// reachable.
func TestIPv6ICC(t *testing.T) {
	usePlugin(t)
	const (
		net  = "mynet-e2e-v6icc"
		a, b = "e2e-v6icc-a", "e2e-v6icc-b"
		gw6  = "fd00:62::1"
	)
	createMynet(t, net, "--ipv6", "--subnet", "10.99.0.0/24", "--subnet", "fd00:62::/64", "-o", keyICC+"=false")
	startWeb(t, a, net)
	startWeb(t, b, net)
	mustNotReachAny(t, a, containerIPv6(t, b, net).String())
	mustNotReachAny(t, b, containerIPv6(t, a, net).String())
	for _, c := range []string{a, b} {
		if !canPing(t, c, gw6) {
			t.Errorf("%s cannot ping -6 the gateway %s", c, gw6)
		}
	}
	removeAndCheck(t, net, mynetBridge(t, net), false, a, b)
}

// TestIPv6Internal: an --internal IPv6 network: containers talk over IPv6,
// have no IPv6 default route, reach neither ext nor the host's addresses
// even with a default route they set themselves, and ext cannot come in.
func TestIPv6Internal(t *testing.T) {
	usePlugin(t)
	const (
		net        = "mynet-e2e-v6int"
		web, admin = "e2e-v6int-web", "e2e-v6int-admin"
		subnet6    = "fd00:63::/64"
		gw6        = "fd00:63::1"
	)
	withExtIPv6(t)
	createMynet(t, net, "--internal", "--ipv6", "--subnet", "10.79.0.0/24", "--subnet", subnet6)
	startWeb(t, web, net)
	startSleeper(t, admin, net, "--cap-add", "NET_ADMIN")
	extL := startListener(t, extNS(), "["+extAddr6+"]:8093")
	hostL := startListener(t, engineNS(), "["+engineAddr6+"]:8093")
	bridgeL := startListener(t, engineNS(), "["+gw6+"]:8093")
	web6 := containerIPv6(t, web, net)

	mustReachAny(t, admin, web6.String())
	if r := routesIn(t, admin, true); strings.Contains(r, "default") {
		t.Errorf("%s has an IPv6 default route on an internal network:\n%s", admin, r)
	}
	execIn(t, admin, "ip", "-6", "route", "add", "default", "via", gw6)
	for _, l := range []*nsListener{extL, hostL, bridgeL} {
		if fetchFrom(t, admin, l.url, l.page) {
			t.Errorf("%s reached %s from an internal network", admin, l.url)
		}
	}
	extRoute(t, subnet6)
	if _, ok := fetchFromNS(extNS(), urlOf(web6.String()), webPage); ok {
		t.Errorf("ext fetched %s on an internal network", urlOf(web6.String()))
	}
	removeAndCheck(t, net, mynetBridge(t, net), false, web, admin)
}

// TestIPv6Only: --ipv4=false --ipv6 (Docker 28 and later): no IPv4 in the
// container, IPv6 between containers and out through NAT66.
func TestIPv6Only(t *testing.T) {
	usePlugin(t)
	if !isCurrentEngine() {
		t.Skip("IPv6-only networks (--ipv4=false) need Docker 28; the stable engine is 20.10")
	}
	const (
		net      = "mynet-e2e-v6only"
		web, cli = "e2e-v6only-web", "e2e-v6only-cli"
		subnet6  = "fd00:64::/64"
	)
	withExtIPv6(t)
	createMynet(t, net, "--ipv4=false", "--ipv6", "--subnet", subnet6)
	if got := netInspect(t, net, "{{.EnableIPv4}}"); got != "false" {
		t.Errorf("inspect .EnableIPv4 = %s, want false", got)
	}
	startWeb(t, web, net)
	startSleeper(t, cli, net)
	if out := execIn(t, cli, "ip", "-4", "-o", "addr", "show", "dev", "eth0"); strings.TrimSpace(out) != "" {
		t.Errorf("%s has IPv4 on an IPv6-only network:\n%s", cli, out)
	}
	mustReachAny(t, cli, containerIPv6(t, web, net).String())
	l := startListener(t, extNS(), "["+extAddr6+"]:8094")
	if !canFetch(t, cli, l.url, l.page) {
		t.Errorf("%s cannot reach %s through NAT66", cli, l.url)
	} else if src := l.lastClient(t); src != netip.MustParseAddr(engineAddr6) {
		t.Errorf("ext saw %v, want the masqueraded %s", src, engineAddr6)
	}
	removeAndCheck(t, net, mynetBridge(t, net), false, web, cli)
}

// TestIPv6GatewayModes: the IPv6 side of a dual-stack network follows
// gateway_mode_ipv6 and host_ipv6 independently of IPv4. routed: ext sees
// the container's own IPv6 address and cannot reach an unpublished port,
// while IPv4 is still masqueraded. isolated: no IPv6 address on the bridge
// and no IPv6 default route, containers still talk over IPv6. host_ipv6:
// NAT66 to that source address.
func TestIPv6GatewayModes(t *testing.T) {
	usePlugin(t)
	withExtIPv6(t)
	l := startListener(t, extNS(), "["+extAddr6+"]:8095")

	t.Run("routed", func(t *testing.T) {
		const net, web, subnet6 = "mynet-e2e-v6routed", "e2e-v6routed", "fd00:65::/64"
		createMynet(t, net, "--ipv6", "--subnet", "10.78.0.0/24", "--subnet", subnet6, "-o", keyGWModeV6+"=routed")
		mustHaveOption(t, net, keyGWModeV6, "routed")
		startWeb(t, web, net)
		extRoute(t, subnet6)
		ip6 := containerIPv6(t, web, net)
		if !canFetch(t, web, l.url, l.page) {
			t.Fatalf("%s cannot reach %s in routed mode", web, l.url)
		}
		if src := l.lastClient(t); src != ip6 {
			t.Errorf("ext saw %v, want the container's own %v", src, ip6)
		}
		if _, ok := fetchFromNS(extNS(), urlOf(ip6.String()), webPage); ok {
			t.Errorf("ext reached unpublished port 80 of %v in routed mode", ip6)
		}
		if !canFetch(t, web, extURL, extPage) {
			t.Errorf("%s cannot reach ext over IPv4 (still nat)", web)
		}
		removeAndCheck(t, net, mynetBridge(t, net), false, web)
	})
	t.Run("isolated", func(t *testing.T) {
		const net, a, b = "mynet-e2e-v6isolated", "e2e-v6isolated-a", "e2e-v6isolated-b"
		createMynet(t, net, "--ipv6", "--subnet", "10.77.0.0/24", "--subnet", "fd00:66::/64", "-o", keyGWModeV6+"=isolated")
		startWeb(t, a, net)
		startSleeper(t, b, net)
		br := mynetBridge(t, net)
		if d, _ := engineLinkDetail(t, br); len(d.addrs("inet6")) > 0 {
			t.Errorf("bridge %s has IPv6 addresses %v in isolated mode", br, d.addrs("inet6"))
		}
		if r := routesIn(t, b, true); strings.Contains(r, "default") {
			t.Errorf("%s has an IPv6 default route in isolated mode:\n%s", b, r)
		}
		mustReachAny(t, b, containerIPv6(t, a, net).String())
		mustBlock(t, b, fetchCheck("fetch "+l.url, l.url, l.page))
		mustPass(t, b, fetchCheck("fetch ext over IPv4", extURL, extPage))
		removeAndCheck(t, net, br, false, a, b)
	})
	t.Run("host_ipv6", func(t *testing.T) {
		const net, c, hostIP6 = "mynet-e2e-v6hostip", "e2e-v6hostip", "fd00:ef::1"
		inEngine(t, "ip", "-6", "addr", "add", hostIP6+"/128", "dev", "lo", "nodad")
		t.Cleanup(func() { _, _ = inEngineErr("ip", "-6", "addr", "del", hostIP6+"/128", "dev", "lo") })
		extRoute(t, hostIP6+"/128")
		createMynet(t, net, "--ipv6", "--subnet", "10.76.0.0/24", "--subnet", "fd00:67::/64", "-o", "com.docker.network.host_ipv6="+hostIP6)
		startSleeper(t, c, net)
		if !canFetch(t, c, l.url, l.page) {
			t.Fatalf("%s cannot reach %s with host_ipv6", c, l.url)
		}
		if src := l.lastClient(t); src != netip.MustParseAddr(hostIP6) {
			t.Errorf("ext saw %v, want host_ipv6 %s", src, hostIP6)
		}
		removeAndCheck(t, net, mynetBridge(t, net), false, c)
	})
}
