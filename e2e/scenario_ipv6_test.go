//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/mynet/mynet/e2e/harness"
)

// IPv6 networks (issue 5): dual stack with a given or a default ULA
// subnet, NAT66 to the outside, isolation between networks, ICC off and
// --internal over IPv6, and IPv6-only networks on the current engine.

// TestIPv6DualStack: --ipv6 with an IPv4 and an IPv6 subnet. Containers get
// an address of each family, reach each other and the gateway over IPv6,
// the engine namespace reaches them; they reach ext over IPv6 through
// NAT66 although ext has no route back, and ext cannot come in directly.
func TestIPv6DualStack(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net            = "mynet-e2e-v6"
		web, cli, late = "e2e-v6-web", "e2e-v6-cli", "e2e-v6-late"
		subnet6        = "fd00:5e::/64"
		gw6            = "fd00:5e::1"
	)
	harness.CreateMynet(t, net, "--ipv6", "--subnet", "10.95.0.0/24", "--subnet", subnet6)
	if got := harness.NetInspect(t, net, "{{.EnableIPv6}}"); got != "true" {
		t.Errorf("inspect .EnableIPv6 = %s, want true", got)
	}
	harness.MustContain(t, "inspect IPAM config", harness.NetInspect(t, net, "{{json .IPAM.Config}}"), subnet6)
	harness.StartWeb(t, web, net)
	harness.StartSleeper(t, cli, net)
	web6, cli6 := harness.ContainerIPv6(t, web, net), harness.ContainerIPv6(t, cli, net)
	br := harness.MynetBridge(t, net)

	t.Run("addresses", func(t *testing.T) {
		for c, a := range map[string]netip.Addr{web: web6, cli: cli6} {
			if !netip.MustParsePrefix(subnet6).Contains(a) {
				t.Errorf("%s got %v, outside %s", c, a, subnet6)
			}
			harness.MustContain(t, c+" eth0 IPv6", harness.ExecIn(t, c, "ip", "-6", "-o", "addr", "show", "dev", "eth0"), a.String()+"/64")
		}
		harness.MustContain(t, "IPv6 default route", harness.RoutesIn(t, cli, true), "default via "+gw6)
		if d, _ := harness.EngineLinkDetail(t, br); !strings.Contains(strings.Join(d.Addrs("inet6"), " "), gw6+"/64") {
			t.Errorf("bridge %s: IPv6 addresses %v, want %s/64", br, d.Addrs("inet6"), gw6)
		}
	})
	t.Run("between containers and gateway", func(t *testing.T) {
		harness.MustReachAny(t, cli, web6.String())
		if !harness.CanPing(t, web, cli6.String()) {
			t.Errorf("%s cannot ping -6 %s", web, cli6)
		}
		if !harness.CanPing(t, cli, gw6) {
			t.Errorf("%s cannot ping -6 the gateway %s", cli, gw6)
		}
	})
	t.Run("from the engine namespace", func(t *testing.T) {
		if !harness.PingsFromNS(harness.EngineNS(), web6.String()) {
			t.Errorf("engine namespace cannot ping %s", web6)
		}
		if out, ok := harness.ReachFromNS(harness.EngineNS(), harness.URLOf(web6.String()), harness.WebPage); !ok {
			t.Errorf("engine namespace cannot fetch %s: %q", harness.URLOf(web6.String()), out)
		}
	})
	t.Run("NAT66 out", func(t *testing.T) {
		harness.WithExtIPv6(t)
		l := harness.StartListener(t, harness.ExtNS(), "["+harness.ExtAddr6+"]:8092")
		if r := harness.InExt(t, "ip", "-6", "route", "show"); strings.Contains(r, "fd00:5e:") {
			t.Fatalf("ext has a route to %s:\n%s", subnet6, r)
		}
		if !harness.CanFetch(t, cli, l.URL, l.Page) {
			t.Fatalf("%s cannot reach %s over IPv6", cli, l.URL)
		}
		if src := l.LastClient(t); src != netip.MustParseAddr(harness.EngineAddr6) {
			t.Errorf("ext saw %v, want the masqueraded %s", src, harness.EngineAddr6)
		}
		if !harness.CanPing(t, cli, harness.ExtAddr6) {
			t.Errorf("%s cannot ping -6 %s", cli, harness.ExtAddr6)
		}
	})
	t.Run("nothing in from ext", func(t *testing.T) {
		harness.WithExtIPv6(t)
		harness.ExtRoute(t, subnet6)
		if _, ok := harness.FetchFromNS(harness.ExtNS(), harness.URLOf(web6.String()), harness.WebPage); ok {
			t.Errorf("ext fetched %s directly in nat mode", harness.URLOf(web6.String()))
		}
	})
	t.Run("after a plugin crash", func(t *testing.T) {
		// Restore brings back the IPv6 address and rules; a new container
		// gets an IPv6 address and reaches the others.
		harness.Shared().KillPlugin(t)
		harness.Shared().StartPlugin(t)
		harness.StartSleeper(t, late, net)
		if a := harness.ContainerIPv6(t, late, net); a == web6 || a == cli6 {
			t.Errorf("%s got %v, already in use", late, a)
		}
		harness.MustReachAny(t, late, web6.String())
		harness.MustPass(t, late, harness.PingCheck("ping gateway "+gw6, gw6))
	})
	harness.RemoveAndCheck(t, net, br, false, web, cli, late)
}

// TestIPv6DefaultPool: --ipv6 without an IPv6 subnet gets a /64 from
// mynet's default ULA pool, and it works.
func TestIPv6DefaultPool(t *testing.T) {
	harness.UsePlugin(t)
	const net, c = "mynet-e2e-v6pool", "e2e-v6pool"
	pool := netip.MustParsePrefix("fd6d:796e:6574::/48")
	harness.CreateMynet(t, net, "--ipv6", "--subnet", "10.96.0.0/24")
	g := harness.DescribeNetwork(t, net, "")
	if !g.Subnet6.IsValid() || g.Subnet6.Bits() != 64 || !pool.Contains(g.Subnet6.Addr()) {
		t.Fatalf("IPv6 subnet %v, want a /64 of %v (IPAM config %s)", g.Subnet6, pool, harness.NetInspect(t, net, "{{json .IPAM.Config}}"))
	}
	harness.StartSleeper(t, c, net)
	if a := harness.ContainerIPv6(t, c, net); !g.Subnet6.Contains(a) {
		t.Errorf("%s got %v, outside %v", c, a, g.Subnet6)
	}
	if gw := g.Subnet6.Addr().Next(); !harness.CanPing(t, c, gw.String()) {
		t.Errorf("%s cannot ping -6 the gateway %v", c, gw)
	}
	harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, c)
}

// TestIPv6Isolation: containers of two IPv6 networks cannot reach each
// other over IPv6.
func TestIPv6Isolation(t *testing.T) {
	harness.UsePlugin(t)
	const (
		netA, netB = "mynet-e2e-v6iso-a", "mynet-e2e-v6iso-b"
		a, b       = "e2e-v6iso-a", "e2e-v6iso-b"
	)
	harness.CreateMynet(t, netA, "--ipv6", "--subnet", "10.97.0.0/24", "--subnet", "fd00:60::/64")
	harness.CreateMynet(t, netB, "--ipv6", "--subnet", "10.98.0.0/24", "--subnet", "fd00:61::/64")
	harness.StartWeb(t, a, netA)
	harness.StartWeb(t, b, netB)
	harness.MustNotReachAny(t, a, harness.ContainerIPv6(t, b, netB).String())
	harness.MustNotReachAny(t, b, harness.ContainerIPv6(t, a, netA).String())
	// Both containers go first: harness.RemoveAndCheck finds no mynet veth at all.
	harness.Docker(t, "rm", "-f", a, b)
	harness.RemoveAndCheck(t, netA, harness.MynetBridge(t, netA), false)
	harness.RemoveAndCheck(t, netB, harness.MynetBridge(t, netB), false)
}

// TestIPv6ICC: enable_icc=false holds for IPv6 too; the IPv6 gateway stays
// reachable.
func TestIPv6ICC(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net  = "mynet-e2e-v6icc"
		a, b = "e2e-v6icc-a", "e2e-v6icc-b"
		gw6  = "fd00:62::1"
	)
	harness.CreateMynet(t, net, "--ipv6", "--subnet", "10.99.0.0/24", "--subnet", "fd00:62::/64", "-o", harness.KeyICC+"=false")
	harness.StartWeb(t, a, net)
	harness.StartWeb(t, b, net)
	harness.MustNotReachAny(t, a, harness.ContainerIPv6(t, b, net).String())
	harness.MustNotReachAny(t, b, harness.ContainerIPv6(t, a, net).String())
	for _, c := range []string{a, b} {
		if !harness.CanPing(t, c, gw6) {
			t.Errorf("%s cannot ping -6 the gateway %s", c, gw6)
		}
	}
	harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, a, b)
}

// TestIPv6Internal: an --internal IPv6 network: containers talk over IPv6,
// have no IPv6 default route, reach neither ext nor the host's addresses
// even with a default route they set themselves, and ext cannot come in.
func TestIPv6Internal(t *testing.T) {
	harness.UsePlugin(t)
	const (
		net        = "mynet-e2e-v6int"
		web, admin = "e2e-v6int-web", "e2e-v6int-admin"
		subnet6    = "fd00:63::/64"
		gw6        = "fd00:63::1"
	)
	harness.WithExtIPv6(t)
	harness.CreateMynet(t, net, "--internal", "--ipv6", "--subnet", "10.79.0.0/24", "--subnet", subnet6)
	harness.StartWeb(t, web, net)
	harness.StartSleeper(t, admin, net, "--cap-add", "NET_ADMIN")
	extL := harness.StartListener(t, harness.ExtNS(), "["+harness.ExtAddr6+"]:8093")
	hostL := harness.StartListener(t, harness.EngineNS(), "["+harness.EngineAddr6+"]:8093")
	bridgeL := harness.StartListener(t, harness.EngineNS(), "["+gw6+"]:8093")
	web6 := harness.ContainerIPv6(t, web, net)

	harness.MustReachAny(t, admin, web6.String())
	if r := harness.RoutesIn(t, admin, true); strings.Contains(r, "default") {
		t.Errorf("%s has an IPv6 default route on an internal network:\n%s", admin, r)
	}
	harness.ExecIn(t, admin, "ip", "-6", "route", "add", "default", "via", gw6)
	for _, l := range []*harness.NSListener{extL, hostL, bridgeL} {
		if harness.FetchFrom(t, admin, l.URL, l.Page) {
			t.Errorf("%s reached %s from an internal network", admin, l.URL)
		}
	}
	harness.ExtRoute(t, subnet6)
	if _, ok := harness.FetchFromNS(harness.ExtNS(), harness.URLOf(web6.String()), harness.WebPage); ok {
		t.Errorf("ext fetched %s on an internal network", harness.URLOf(web6.String()))
	}
	harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, web, admin)
}

// TestIPv6Only: --ipv4=false --ipv6 (Docker 28 and later): no IPv4 in the
// container, IPv6 between containers and out through NAT66.
func TestIPv6Only(t *testing.T) {
	harness.UsePlugin(t)
	if !harness.IsCurrentEngine() {
		t.Skip("IPv6-only networks (--ipv4=false) need Docker 28; the stable engine is 20.10")
	}
	const (
		net      = "mynet-e2e-v6only"
		web, cli = "e2e-v6only-web", "e2e-v6only-cli"
		subnet6  = "fd00:64::/64"
	)
	harness.WithExtIPv6(t)
	harness.CreateMynet(t, net, "--ipv4=false", "--ipv6", "--subnet", subnet6)
	if got := harness.NetInspect(t, net, "{{.EnableIPv4}}"); got != "false" {
		t.Errorf("inspect .EnableIPv4 = %s, want false", got)
	}
	harness.StartWeb(t, web, net)
	harness.StartSleeper(t, cli, net)
	if out := harness.ExecIn(t, cli, "ip", "-4", "-o", "addr", "show", "dev", "eth0"); strings.TrimSpace(out) != "" {
		t.Errorf("%s has IPv4 on an IPv6-only network:\n%s", cli, out)
	}
	harness.MustReachAny(t, cli, harness.ContainerIPv6(t, web, net).String())
	l := harness.StartListener(t, harness.ExtNS(), "["+harness.ExtAddr6+"]:8094")
	if !harness.CanFetch(t, cli, l.URL, l.Page) {
		t.Errorf("%s cannot reach %s through NAT66", cli, l.URL)
	} else if src := l.LastClient(t); src != netip.MustParseAddr(harness.EngineAddr6) {
		t.Errorf("ext saw %v, want the masqueraded %s", src, harness.EngineAddr6)
	}
	harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, web, cli)
}

// TestIPv6GatewayModes: the IPv6 side of a dual-stack network follows
// gateway_mode_ipv6 and host_ipv6 independently of IPv4. routed: ext sees
// the container's own IPv6 address and cannot reach an unpublished port,
// while IPv4 is still masqueraded. isolated: no IPv6 address on the bridge
// and no IPv6 default route, containers still talk over IPv6. host_ipv6:
// NAT66 to that source address.
func TestIPv6GatewayModes(t *testing.T) {
	harness.UsePlugin(t)
	harness.WithExtIPv6(t)
	l := harness.StartListener(t, harness.ExtNS(), "["+harness.ExtAddr6+"]:8095")

	t.Run("routed", func(t *testing.T) {
		const net, web, subnet6 = "mynet-e2e-v6routed", "e2e-v6routed", "fd00:65::/64"
		harness.CreateMynet(t, net, "--ipv6", "--subnet", "10.78.0.0/24", "--subnet", subnet6, "-o", harness.KeyGWModeV6+"=routed")
		harness.MustHaveOption(t, net, harness.KeyGWModeV6, "routed")
		harness.StartWeb(t, web, net)
		harness.ExtRoute(t, subnet6)
		ip6 := harness.ContainerIPv6(t, web, net)
		if !harness.CanFetch(t, web, l.URL, l.Page) {
			t.Fatalf("%s cannot reach %s in routed mode", web, l.URL)
		}
		if src := l.LastClient(t); src != ip6 {
			t.Errorf("ext saw %v, want the container's own %v", src, ip6)
		}
		if _, ok := harness.FetchFromNS(harness.ExtNS(), harness.URLOf(ip6.String()), harness.WebPage); ok {
			t.Errorf("ext reached unpublished port 80 of %v in routed mode", ip6)
		}
		if !harness.CanFetch(t, web, harness.ExtURL, harness.ExtPage) {
			t.Errorf("%s cannot reach ext over IPv4 (still nat)", web)
		}
		harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, web)
	})
	t.Run("isolated", func(t *testing.T) {
		const net, a, b = "mynet-e2e-v6isolated", "e2e-v6isolated-a", "e2e-v6isolated-b"
		harness.CreateMynet(t, net, "--ipv6", "--subnet", "10.77.0.0/24", "--subnet", "fd00:66::/64", "-o", harness.KeyGWModeV6+"=isolated")
		harness.StartWeb(t, a, net)
		harness.StartSleeper(t, b, net)
		br := harness.MynetBridge(t, net)
		if d, _ := harness.EngineLinkDetail(t, br); len(d.Addrs("inet6")) > 0 {
			t.Errorf("bridge %s has IPv6 addresses %v in isolated mode", br, d.Addrs("inet6"))
		}
		if r := harness.RoutesIn(t, b, true); strings.Contains(r, "default") {
			t.Errorf("%s has an IPv6 default route in isolated mode:\n%s", b, r)
		}
		harness.MustReachAny(t, b, harness.ContainerIPv6(t, a, net).String())
		harness.MustBlock(t, b, harness.FetchCheck("fetch "+l.URL, l.URL, l.Page))
		harness.MustPass(t, b, harness.FetchCheck("fetch ext over IPv4", harness.ExtURL, harness.ExtPage))
		harness.RemoveAndCheck(t, net, br, false, a, b)
	})
	t.Run("host_ipv6", func(t *testing.T) {
		const net, c, hostIP6 = "mynet-e2e-v6hostip", "e2e-v6hostip", "fd00:ef::1"
		harness.InEngine(t, "ip", "-6", "addr", "add", hostIP6+"/128", "dev", "lo", "nodad")
		t.Cleanup(func() { _, _ = harness.InEngineErr("ip", "-6", "addr", "del", hostIP6+"/128", "dev", "lo") })
		harness.ExtRoute(t, hostIP6+"/128")
		harness.CreateMynet(t, net, "--ipv6", "--subnet", "10.76.0.0/24", "--subnet", "fd00:67::/64", "-o", "com.docker.network.host_ipv6="+hostIP6)
		harness.StartSleeper(t, c, net)
		if !harness.CanFetch(t, c, l.URL, l.Page) {
			t.Fatalf("%s cannot reach %s with host_ipv6", c, l.URL)
		}
		if src := l.LastClient(t); src != netip.MustParseAddr(hostIP6) {
			t.Errorf("ext saw %v, want host_ipv6 %s", src, hostIP6)
		}
		harness.RemoveAndCheck(t, net, harness.MynetBridge(t, net), false, c)
	})
}
