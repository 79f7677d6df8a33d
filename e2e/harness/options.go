//go:build e2e

package harness

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Helpers of the option and IPv6 scenarios: listeners in the two
// namespaces that log who connected, routes from ext into container
// subnets, an IPv6 link between engine and ext, and probes that report a
// blocked packet as false rather than failing the test.

// Option keys as users type them after -o.
const (
	KeyICC         = "com.docker.network.bridge.enable_icc"
	KeyMasquerade  = "com.docker.network.bridge.enable_ip_masquerade"
	KeyGWModeV4    = "com.docker.network.bridge.gateway_mode_ipv4"
	KeyGWModeV6    = "com.docker.network.bridge.gateway_mode_ipv6"
	KeyHostIPv4    = "com.docker.network.host_ipv4"
	KeyMTU         = "com.docker.network.driver.mtu"
	KeyBridgeName  = "com.docker.network.bridge.name"
	KeyInhibitIPv4 = "com.docker.network.bridge.inhibit_ipv4"
	KeyIfacePrefix = "com.docker.network.container_iface_prefix"
	KeyTrusted     = "com.docker.network.bridge.trusted_host_interfaces"
)

// The IPv6 link between the engine namespace and ext (see WithExtIPv6).
const (
	EngineAddr6 = "fd00:ee::1"
	ExtAddr6    = "fd00:ee::2"
)

// listenerSeq numbers listeners for their directories and logs.
var listenerSeq atomic.Int32

// NSListener is a busybox httpd in the engine or ext namespace. With -vv it
// logs each request as "CLIENT:PORT: url:/", which tells the address a
// packet arrived from: masqueraded or not.
type NSListener struct {
	URL  string
	Page string
	log  string
}

// StartListener serves a page of its own on hostport ("198.18.0.2:8090",
// "[fd00:ee::2]:8090") in namespace ns and waits until it answers there.
// It stops when the test ends.
func StartListener(t *testing.T, ns, hostport string) *NSListener {
	t.Helper()
	n := listenerSeq.Add(1)
	dir := filepath.Join(env.Layout.WorkDir, "listeners", fmt.Sprint(n))
	l := &NSListener{
		URL:  "http://" + hostport + "/",
		Page: fmt.Sprintf("mynet-e2e listener %d on %s", n, hostport),
		log:  filepath.Join(env.Layout.LogDir, fmt.Sprintf("listener-%d.log", n)),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(l.Page+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := StartLogged("listener "+hostport, l.log, nil, syscall.SIGKILL,
		"nsenter", "--net="+env.Layout.NSPath(ns), HostBusybox, "httpd", "-f", "-vv", "-p", hostport, "-h", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(syscall.SIGKILL, time.Second) })
	err = WaitFor(60*time.Second, 50*time.Millisecond, func() error {
		if p.Exited() {
			return fmt.Errorf("httpd exited: %v\n%s", p.Err, TailFile(l.log, 0, 5))
		}
		if _, ok := FetchFromNS(ns, l.URL, l.Page); !ok {
			return ErrNotYet
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listener on %s in %s: %v", hostport, ns, err)
	}
	return l
}

// clients are the addresses the listener was contacted from, in order.
func (l *NSListener) clients(t *testing.T) []netip.Addr {
	t.Helper()
	b, err := os.ReadFile(l.log)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, line := range strings.Split(string(b), "\n") {
		from, rest, ok := strings.Cut(line, ": ")
		if !ok || !strings.HasPrefix(rest, "url:") {
			continue
		}
		if ap, err := netip.ParseAddrPort(from); err == nil {
			out = append(out, ap.Addr().Unmap())
		}
	}
	return out
}

// LastClient is the address of the most recent request.
func (l *NSListener) LastClient(t *testing.T) netip.Addr {
	t.Helper()
	c := l.clients(t)
	if len(c) == 0 {
		t.Fatalf("listener %s logged no request:\n%s", l.URL, TailFile(l.log, 0, 10))
	}
	return c[len(c)-1]
}

// FetchFromNS fetches url from a namespace with a 2 s limit and reports
// whether the answer holds want.
func FetchFromNS(ns, url, want string) (string, bool) {
	out, err := InNS(ns, 10*time.Second, HostBusybox, "timeout", "2", HostBusybox, "wget", "-qO-", url)
	return out, err == nil && strings.Contains(out, want)
}

// PingFromNS sends one ping from a namespace.
func PingFromNS(ns, addr string) bool {
	_, err := InNS(ns, 10*time.Second, HostBusybox, "ping", "-c1", "-W1", addr)
	return err == nil
}

// ReachFromNS is FetchFromNS for a fetch that must pass: it asks again for
// up to reachWait, as MustPass does, since one 2 s try can miss on a loaded
// machine (a must-pass fetch from ext failed once in a full run).
func ReachFromNS(ns, url, want string) (out string, ok bool) {
	_ = WaitFor(reachWait, 500*time.Millisecond, func() error {
		if out, ok = FetchFromNS(ns, url, want); !ok {
			return ErrNotYet
		}
		return nil
	})
	return out, ok
}

// PingsFromNS is PingFromNS for a ping that must pass.
func PingsFromNS(ns, addr string) (ok bool) {
	_ = WaitFor(reachWait, 500*time.Millisecond, func() error {
		if ok = PingFromNS(ns, addr); !ok {
			return ErrNotYet
		}
		return nil
	})
	return ok
}

// check is one probe run inside a container by runChecks: a shell command
// whose exit status says whether the packet got through.
type check struct{ name, cmd string }

// FetchCheck fetches url (3 s limit) and succeeds if the answer holds want.
func FetchCheck(name, url, want string) check {
	return check{name, fmt.Sprintf("timeout 3 wget -qO- %q 2>/dev/null | grep -qF %q", url, want)}
}

// PingCheck sends one ping (1 s limit); IPv6 addresses use ping -6.
func PingCheck(name, addr string) check {
	flag := ""
	if strings.Contains(addr, ":") {
		flag = "-6 "
	}
	return check{name, fmt.Sprintf("ping %s-c1 -W1 %s >/dev/null 2>&1", flag, addr)}
}

// runChecks runs checks concurrently in one exec in container, so that a
// set of packets that must be dropped costs one timeout, not one each, and
// reports which succeeded. The exec itself must work: a container that is
// gone fails the test instead of looking isolated.
func runChecks(t *testing.T, container string, checks ...check) map[string]bool {
	t.Helper()
	var script strings.Builder
	for i, c := range checks {
		fmt.Fprintf(&script, "( %s; echo \"r%d=$?\" ) & ", c.cmd, i)
	}
	script.WriteString("wait")
	status := map[string]string{}
	for _, f := range strings.Fields(ExecIn(t, container, Sh(script.String())...)) {
		if k, v, ok := strings.Cut(f, "="); ok {
			status[k] = v
		}
	}
	got := map[string]bool{}
	for i, c := range checks {
		rc, ok := status[fmt.Sprintf("r%d", i)]
		if !ok {
			t.Fatalf("checks in %s: no result for %q", container, c.cmd)
		}
		got[c.name] = rc == "0"
	}
	return got
}

// FetchFrom fetches url inside container once and reports whether the
// answer holds want: for a fetch that must be blocked.
func FetchFrom(t *testing.T, container, url, want string) bool {
	t.Helper()
	return runChecks(t, container, FetchCheck("fetch", url, want))["fetch"]
}

// CanFetch and CanPing are for a fetch or ping that must pass: they ask
// again for up to reachWait, since one try can miss on a loaded machine.
func CanFetch(t *testing.T, container, url, want string) bool {
	t.Helper()
	return passing(t, container, FetchCheck("fetch", url, want))["fetch"]
}

func CanPing(t *testing.T, container, addr string) bool {
	t.Helper()
	return passing(t, container, PingCheck("ping", addr))["ping"]
}

// passing runs checks concurrently until every one passes, for up to
// reachWait, and returns the last round's results.
func passing(t *testing.T, container string, checks ...check) map[string]bool {
	t.Helper()
	var got map[string]bool
	_ = WaitFor(reachWait, 500*time.Millisecond, func() error {
		got = runChecks(t, container, checks...)
		for _, c := range checks {
			if !got[c.name] {
				return ErrNotYet
			}
		}
		return nil
	})
	return got
}

// MustPass and MustBlock run checks concurrently and require each to
// succeed, or each to fail.
func MustPass(t *testing.T, container string, checks ...check) {
	t.Helper()
	got := passing(t, container, checks...)
	for _, c := range checks {
		if !got[c.name] {
			t.Errorf("%s: %s failed, want it to pass", container, c.name)
		}
	}
}

func MustBlock(t *testing.T, container string, checks ...check) {
	t.Helper()
	got := runChecks(t, container, checks...)
	for _, c := range checks {
		if got[c.name] {
			t.Errorf("%s: %s passed, want it blocked", container, c.name)
		}
	}
}

// URLOf is the web server URL of an address of either family.
func URLOf(addr string) string {
	if strings.Contains(addr, ":") {
		return "http://[" + addr + "]/"
	}
	return "http://" + addr + "/"
}

// ExtRoute routes prefix from the ext namespace into the engine namespace,
// as a router in front of the host would; removed when the test ends.
func ExtRoute(t *testing.T, prefix string) {
	t.Helper()
	via := EngineAddr
	if strings.Contains(prefix, ":") {
		via = EngineAddr6
	}
	InExt(t, "ip", "route", "add", prefix, "via", via)
	t.Cleanup(func() {
		if _, err := InNS(env.Layout.ExtNS, 10*time.Second, "ip", "route", "del", prefix); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// WithExtIPv6 gives the engine–ext link IPv6: fd00:ee::1 in the engine
// namespace, fd00:ee::2 in ext, and a default IPv6 route from the engine
// namespace to ext. Ext gets no route to any container subnet. Undone when
// the test ends.
func WithExtIPv6(t *testing.T) {
	t.Helper()
	InEngine(t, "ip", "-6", "addr", "add", EngineAddr6+"/64", "dev", EngineLink, "nodad")
	InExt(t, "ip", "-6", "addr", "add", ExtAddr6+"/64", "dev", extLink, "nodad")
	InEngine(t, "ip", "-6", "route", "add", "default", "via", ExtAddr6)
	t.Cleanup(func() {
		for _, c := range [][]string{
			{env.Layout.EngineNS, "ip", "-6", "route", "del", "default", "via", ExtAddr6},
			{env.Layout.EngineNS, "ip", "-6", "addr", "del", EngineAddr6 + "/64", "dev", EngineLink},
			{env.Layout.ExtNS, "ip", "-6", "addr", "del", ExtAddr6 + "/64", "dev", extLink},
		} {
			if _, err := InNS(c[0], 10*time.Second, c[1:]...); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}

// EngineNS and ExtNS name the two namespaces, for StartListener, InNS and friends.
func EngineNS() string { return env.Layout.EngineNS }
func ExtNS() string    { return env.Layout.ExtNS }

// linkDetail is what the option scenarios read of one link.
type linkDetail struct {
	Ifname   string `json:"ifname"`
	MTU      int    `json:"mtu"`
	Master   string `json:"master"`
	Linkinfo *struct {
		InfoKind      string `json:"info_kind"`
		InfoSlaveData *struct {
			Isolated bool `json:"isolated"`
		} `json:"info_slave_data"`
	} `json:"linkinfo"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

// addrs lists the link's addresses of family ("inet" or "inet6") with
// global scope, as CIDRs.
func (l linkDetail) Addrs(family string) []string {
	var out []string
	for _, a := range l.AddrInfo {
		if a.Family == family && a.Scope == "global" {
			out = append(out, fmt.Sprintf("%s/%d", a.Local, a.Prefixlen))
		}
	}
	return out
}

// EngineLinkDetail returns a link of the engine namespace; ok is false when
// there is none of that name.
func EngineLinkDetail(t *testing.T, name string) (linkDetail, bool) {
	t.Helper()
	out, err := InEngineErr("ip", "-j", "-d", "addr", "show", "dev", name)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return linkDetail{}, false
		}
		t.Fatal(err)
	}
	var links []linkDetail
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("parsing `ip -j -d addr show dev %s`: %v\n%s", name, err, out)
	}
	return links[0], true
}

// EngineBridgePorts lists the ports of bridge with their details.
func EngineBridgePorts(t *testing.T, bridge string) []linkDetail {
	t.Helper()
	out := InEngine(t, "ip", "-j", "-d", "link", "show", "master", bridge)
	var links []linkDetail
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("parsing `ip -j -d link show master %s`: %v\n%s", bridge, err, out)
	}
	return links
}

// MynetBridge is the bridge mynet names after the network's ID when no
// bridge name is given: "mynet-" and the ID's first 9 characters.
func MynetBridge(t *testing.T, network string) string {
	t.Helper()
	id := Docker(t, "network", "inspect", "-f", "{{.Id}}", network)
	if len(id) < 9 {
		t.Fatalf("network %s: ID %q", network, id)
	}
	return "mynet-" + id[:9]
}

// NetInspect runs `docker network inspect -f FORMAT network`.
func NetInspect(t *testing.T, network, format string) string {
	t.Helper()
	return Docker(t, "network", "inspect", "-f", format, network)
}

// MustHaveOption checks that `docker network inspect` shows key=value in
// the network's options.
func MustHaveOption(t *testing.T, network, key, value string) {
	t.Helper()
	got := NetInspect(t, network, fmt.Sprintf(`{{index .Options %q}}`, key))
	if got != value {
		t.Errorf("network %s: inspect shows %s=%q, want %q (options: %s)", network, key, got, value,
			NetInspect(t, network, "{{json .Options}}"))
	}
}

// ContainerIPv6 returns the IPv6 address the engine recorded for container
// on network.
func ContainerIPv6(t *testing.T, container, network string) netip.Addr {
	t.Helper()
	out := Docker(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").GlobalIPv6Address}}`, container)
	a, err := netip.ParseAddr(out)
	if err != nil || !a.Is6() {
		t.Fatalf("%s on %s: IPv6 address %q: %v", container, network, out, err)
	}
	return a
}

// RoutesIn returns `ip [-6] route` in container.
func RoutesIn(t *testing.T, container string, v6 bool) string {
	t.Helper()
	if v6 {
		return ExecIn(t, container, "ip", "-6", "route", "show")
	}
	return ExecIn(t, container, "ip", "-4", "route", "show")
}

// goneNetwork is what RemoveAndCheck needs to know of a network to find
// its leftovers once it is removed.
type goneNetwork struct {
	bridge  string
	gateway string // IPv4 gateway CIDR on the bridge, "" if none
	subnet  netip.Prefix
	Subnet6 netip.Prefix
}

// DescribeNetwork reads a network's bridge and subnets before removal.
func DescribeNetwork(t *testing.T, network, bridge string) goneNetwork {
	t.Helper()
	g := goneNetwork{bridge: bridge}
	cfg := NetInspect(t, network, "{{range .IPAM.Config}}{{.Subnet}},{{.Gateway}} {{end}}")
	for _, f := range strings.Fields(cfg) {
		sub, gw, _ := strings.Cut(f, ",")
		p, err := netip.ParsePrefix(sub)
		if err != nil {
			t.Fatalf("network %s: subnet %q", network, sub)
		}
		if p.Addr().Is6() {
			g.Subnet6 = p
			continue
		}
		g.subnet = p
		if gw != "" {
			g.gateway = fmt.Sprintf("%s/%d", gw, p.Bits())
		}
	}
	return g
}

// RemoveAndCheck removes containers and then network, and checks that
// nothing of the network is left in the engine namespace: no bridge (unless
// keepBridge: an adopted one), veth, route or rule in iptables or ip6tables
// naming the bridge or a subnet.
func RemoveAndCheck(t *testing.T, network, bridge string, keepBridge bool, containers ...string) {
	t.Helper()
	g := DescribeNetwork(t, network, bridge)
	if len(containers) > 0 {
		Docker(t, append([]string{"rm", "-f"}, containers...)...)
	}
	Docker(t, "network", "rm", network)
	checkBridge := bridge
	if keepBridge {
		checkBridge = ""
		if d, ok := EngineLinkDetail(t, bridge); !ok {
			t.Errorf("adopted bridge %s was deleted with the network", bridge)
		} else if len(d.Addrs("inet")) > 0 || len(d.Addrs("inet6")) > 0 {
			t.Errorf("adopted bridge %s keeps addresses mynet added: %v %v", bridge, d.Addrs("inet"), d.Addrs("inet6"))
		}
	}
	AssertNetworkGone(t, checkBridge, g.gateway, g.subnet)
	if hits := LinesMentioning(InEngine(t, "iptables-save"), bridge, g.subnet); len(hits) > 0 {
		t.Errorf("iptables-save still mentions %s:\n%s", bridge, strings.Join(hits, "\n"))
	}
	if hits := LinesMentioning(InEngine(t, "ip6tables-save"), bridge, g.Subnet6); len(hits) > 0 {
		t.Errorf("ip6tables-save still mentions %s or %s:\n%s", bridge, g.Subnet6, strings.Join(hits, "\n"))
	}
	if g.Subnet6.IsValid() {
		if hits := LinesMentioning(InEngine(t, "ip", "-6", "route", "show", "table", "all"), bridge, g.Subnet6); len(hits) > 0 {
			t.Errorf("IPv6 routes into %s left:\n%s", g.Subnet6, strings.Join(hits, "\n"))
		}
	}
}

// MynetRuleLines are the rules carrying mynet's comment, from
// iptables-save and ip6tables-save, for before/after comparisons.
func MynetRuleLines(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		for _, l := range strings.Split(InEngine(t, cmd), "\n") {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, "mynet:") {
				out = append(out, cmd+": "+l)
			}
		}
	}
	return out
}

// IsCurrentEngine reports whether the run uses Docker 28 (not 20.10).
func IsCurrentEngine() bool { return env.Kind != engineStable }

// MustReachAny is MustReach for an address of either family: one ping and
// the web page at URLOf(addr).
func MustReachAny(t *testing.T, container, addr string) {
	t.Helper()
	MustPass(t, container, PingCheck("ping "+addr, addr), FetchCheck("fetch "+URLOf(addr), URLOf(addr), WebPage))
}

// MustNotReachAny is MustNotReach for an address of either family.
func MustNotReachAny(t *testing.T, container, addr string) {
	t.Helper()
	MustBlock(t, container, PingCheck("ping "+addr, addr), FetchCheck("fetch "+URLOf(addr), URLOf(addr), WebPage))
}
