//go:build e2e

package e2e

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
	keyICC         = "com.docker.network.bridge.enable_icc"
	keyMasquerade  = "com.docker.network.bridge.enable_ip_masquerade"
	keyGWModeV4    = "com.docker.network.bridge.gateway_mode_ipv4"
	keyGWModeV6    = "com.docker.network.bridge.gateway_mode_ipv6"
	keyHostIPv4    = "com.docker.network.host_ipv4"
	keyMTU         = "com.docker.network.driver.mtu"
	keyBridgeName  = "com.docker.network.bridge.name"
	keyInhibitIPv4 = "com.docker.network.bridge.inhibit_ipv4"
	keyIfacePrefix = "com.docker.network.container_iface_prefix"
	keyTrusted     = "com.docker.network.bridge.trusted_host_interfaces"
)

// The IPv6 link between the engine namespace and ext (see withExtIPv6).
const (
	engineAddr6 = "fd00:ee::1"
	extAddr6    = "fd00:ee::2"
)

// listenerSeq numbers listeners for their directories and logs.
var listenerSeq atomic.Int32

// nsListener is a busybox httpd in the engine or ext namespace. With -vv it
// logs each request as "CLIENT:PORT: url:/", which tells the address a
// packet arrived from: masqueraded or not.
type nsListener struct {
	url  string
	page string
	log  string
}

// startListener serves a page of its own on hostport ("198.18.0.2:8090",
// "[fd00:ee::2]:8090") in namespace ns and waits until it answers there.
// It stops when the test ends.
func startListener(t *testing.T, ns, hostport string) *nsListener {
	t.Helper()
	n := listenerSeq.Add(1)
	dir := filepath.Join(env.lay.workDir, "listeners", fmt.Sprint(n))
	l := &nsListener{
		url:  "http://" + hostport + "/",
		page: fmt.Sprintf("mynet-e2e listener %d on %s", n, hostport),
		log:  filepath.Join(env.lay.logDir, fmt.Sprintf("listener-%d.log", n)),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(l.page+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := startLogged("listener "+hostport, l.log, nil, syscall.SIGKILL,
		"nsenter", "--net="+env.lay.nsPath(ns), hostBusybox, "httpd", "-f", "-vv", "-p", hostport, "-h", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(syscall.SIGKILL, time.Second) })
	err = waitFor(60*time.Second, 50*time.Millisecond, func() error {
		if p.exited() {
			return fmt.Errorf("httpd exited: %v\n%s", p.err, tailFile(l.log, 0, 5))
		}
		if _, ok := fetchFromNS(ns, l.url, l.page); !ok {
			return errNotYet
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listener on %s in %s: %v", hostport, ns, err)
	}
	return l
}

// clients are the addresses the listener was contacted from, in order.
func (l *nsListener) clients(t *testing.T) []netip.Addr {
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

// lastClient is the address of the most recent request.
func (l *nsListener) lastClient(t *testing.T) netip.Addr {
	t.Helper()
	c := l.clients(t)
	if len(c) == 0 {
		t.Fatalf("listener %s logged no request:\n%s", l.url, tailFile(l.log, 0, 10))
	}
	return c[len(c)-1]
}

// fetchFromNS fetches url from a namespace with a 2 s limit and reports
// whether the answer holds want.
func fetchFromNS(ns, url, want string) (string, bool) {
	out, err := inNS(ns, 10*time.Second, hostBusybox, "timeout", "2", hostBusybox, "wget", "-qO-", url)
	return out, err == nil && strings.Contains(out, want)
}

// pingFromNS sends one ping from a namespace.
func pingFromNS(ns, addr string) bool {
	_, err := inNS(ns, 10*time.Second, hostBusybox, "ping", "-c1", "-W1", addr)
	return err == nil
}

// reachFromNS is fetchFromNS for a fetch that must pass: it asks again for
// up to reachWait, as mustPass does, since one 2 s try can miss on a loaded
// machine (a must-pass fetch from ext failed once in a full run).
func reachFromNS(ns, url, want string) (out string, ok bool) {
	_ = waitFor(reachWait, 500*time.Millisecond, func() error {
		if out, ok = fetchFromNS(ns, url, want); !ok {
			return errNotYet
		}
		return nil
	})
	return out, ok
}

// pingsFromNS is pingFromNS for a ping that must pass.
func pingsFromNS(ns, addr string) (ok bool) {
	_ = waitFor(reachWait, 500*time.Millisecond, func() error {
		if ok = pingFromNS(ns, addr); !ok {
			return errNotYet
		}
		return nil
	})
	return ok
}

// check is one probe run inside a container by runChecks: a shell command
// whose exit status says whether the packet got through.
type check struct{ name, cmd string }

// fetchCheck fetches url (3 s limit) and succeeds if the answer holds want.
func fetchCheck(name, url, want string) check {
	return check{name, fmt.Sprintf("timeout 3 wget -qO- %q 2>/dev/null | grep -qF %q", url, want)}
}

// pingCheck sends one ping (1 s limit); IPv6 addresses use ping -6.
func pingCheck(name, addr string) check {
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
	for _, f := range strings.Fields(execIn(t, container, sh(script.String())...)) {
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

// fetchFrom fetches url inside container once and reports whether the
// answer holds want: for a fetch that must be blocked.
func fetchFrom(t *testing.T, container, url, want string) bool {
	t.Helper()
	return runChecks(t, container, fetchCheck("fetch", url, want))["fetch"]
}

// canFetch and canPing are for a fetch or ping that must pass: they ask
// again for up to reachWait, since one try can miss on a loaded machine.
func canFetch(t *testing.T, container, url, want string) bool {
	t.Helper()
	return passing(t, container, fetchCheck("fetch", url, want))["fetch"]
}

func canPing(t *testing.T, container, addr string) bool {
	t.Helper()
	return passing(t, container, pingCheck("ping", addr))["ping"]
}

// passing runs checks concurrently until every one passes, for up to
// reachWait, and returns the last round's results.
func passing(t *testing.T, container string, checks ...check) map[string]bool {
	t.Helper()
	var got map[string]bool
	_ = waitFor(reachWait, 500*time.Millisecond, func() error {
		got = runChecks(t, container, checks...)
		for _, c := range checks {
			if !got[c.name] {
				return errNotYet
			}
		}
		return nil
	})
	return got
}

// mustPass and mustBlock run checks concurrently and require each to
// succeed, or each to fail.
func mustPass(t *testing.T, container string, checks ...check) {
	t.Helper()
	got := passing(t, container, checks...)
	for _, c := range checks {
		if !got[c.name] {
			t.Errorf("%s: %s failed, want it to pass", container, c.name)
		}
	}
}

func mustBlock(t *testing.T, container string, checks ...check) {
	t.Helper()
	got := runChecks(t, container, checks...)
	for _, c := range checks {
		if got[c.name] {
			t.Errorf("%s: %s passed, want it blocked", container, c.name)
		}
	}
}

// urlOf is the web server URL of an address of either family.
func urlOf(addr string) string {
	if strings.Contains(addr, ":") {
		return "http://[" + addr + "]/"
	}
	return "http://" + addr + "/"
}

// extRoute routes prefix from the ext namespace into the engine namespace,
// as a router in front of the host would; removed when the test ends.
func extRoute(t *testing.T, prefix string) {
	t.Helper()
	via := engineAddr
	if strings.Contains(prefix, ":") {
		via = engineAddr6
	}
	inExt(t, "ip", "route", "add", prefix, "via", via)
	t.Cleanup(func() {
		if _, err := inNS(env.lay.extNS, 10*time.Second, "ip", "route", "del", prefix); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// withExtIPv6 gives the engine–ext link IPv6: fd00:ee::1 in the engine
// namespace, fd00:ee::2 in ext, and a default IPv6 route from the engine
// namespace to ext. Ext gets no route to any container subnet. Undone when
// the test ends.
func withExtIPv6(t *testing.T) {
	t.Helper()
	inEngine(t, "ip", "-6", "addr", "add", engineAddr6+"/64", "dev", engineLink, "nodad")
	inExt(t, "ip", "-6", "addr", "add", extAddr6+"/64", "dev", extLink, "nodad")
	inEngine(t, "ip", "-6", "route", "add", "default", "via", extAddr6)
	t.Cleanup(func() {
		for _, c := range [][]string{
			{env.lay.engineNS, "ip", "-6", "route", "del", "default", "via", extAddr6},
			{env.lay.engineNS, "ip", "-6", "addr", "del", engineAddr6 + "/64", "dev", engineLink},
			{env.lay.extNS, "ip", "-6", "addr", "del", extAddr6 + "/64", "dev", extLink},
		} {
			if _, err := inNS(c[0], 10*time.Second, c[1:]...); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}

// engineNS and extNS name the two namespaces for startListener and friends.
func engineNS() string { return env.lay.engineNS }
func extNS() string    { return env.lay.extNS }

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
func (l linkDetail) addrs(family string) []string {
	var out []string
	for _, a := range l.AddrInfo {
		if a.Family == family && a.Scope == "global" {
			out = append(out, fmt.Sprintf("%s/%d", a.Local, a.Prefixlen))
		}
	}
	return out
}

// engineLinkDetail returns a link of the engine namespace; ok is false when
// there is none of that name.
func engineLinkDetail(t *testing.T, name string) (linkDetail, bool) {
	t.Helper()
	out, err := inEngineErr("ip", "-j", "-d", "addr", "show", "dev", name)
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

// engineBridgePorts lists the ports of bridge with their details.
func engineBridgePorts(t *testing.T, bridge string) []linkDetail {
	t.Helper()
	out := inEngine(t, "ip", "-j", "-d", "link", "show", "master", bridge)
	var links []linkDetail
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("parsing `ip -j -d link show master %s`: %v\n%s", bridge, err, out)
	}
	return links
}

// mynetBridge is the bridge mynet names after the network's ID when no
// bridge name is given: "mynet-" and the ID's first 9 characters.
func mynetBridge(t *testing.T, network string) string {
	t.Helper()
	id := docker(t, "network", "inspect", "-f", "{{.Id}}", network)
	if len(id) < 9 {
		t.Fatalf("network %s: ID %q", network, id)
	}
	return "mynet-" + id[:9]
}

// netInspect runs `docker network inspect -f FORMAT network`.
func netInspect(t *testing.T, network, format string) string {
	t.Helper()
	return docker(t, "network", "inspect", "-f", format, network)
}

// mustHaveOption checks that `docker network inspect` shows key=value in
// the network's options.
func mustHaveOption(t *testing.T, network, key, value string) {
	t.Helper()
	got := netInspect(t, network, fmt.Sprintf(`{{index .Options %q}}`, key))
	if got != value {
		t.Errorf("network %s: inspect shows %s=%q, want %q (options: %s)", network, key, got, value,
			netInspect(t, network, "{{json .Options}}"))
	}
}

// containerIPv6 returns the IPv6 address the engine recorded for container
// on network.
func containerIPv6(t *testing.T, container, network string) netip.Addr {
	t.Helper()
	out := docker(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").GlobalIPv6Address}}`, container)
	a, err := netip.ParseAddr(out)
	if err != nil || !a.Is6() {
		t.Fatalf("%s on %s: IPv6 address %q: %v", container, network, out, err)
	}
	return a
}

// routesIn returns `ip [-6] route` in container.
func routesIn(t *testing.T, container string, v6 bool) string {
	t.Helper()
	if v6 {
		return execIn(t, container, "ip", "-6", "route", "show")
	}
	return execIn(t, container, "ip", "-4", "route", "show")
}

// goneNetwork is what removeAndCheck needs to know of a network to find
// its leftovers once it is removed.
type goneNetwork struct {
	bridge  string
	gateway string // IPv4 gateway CIDR on the bridge, "" if none
	subnet  netip.Prefix
	subnet6 netip.Prefix
}

// describeNetwork reads a network's bridge and subnets before removal.
func describeNetwork(t *testing.T, network, bridge string) goneNetwork {
	t.Helper()
	g := goneNetwork{bridge: bridge}
	cfg := netInspect(t, network, "{{range .IPAM.Config}}{{.Subnet}},{{.Gateway}} {{end}}")
	for _, f := range strings.Fields(cfg) {
		sub, gw, _ := strings.Cut(f, ",")
		p, err := netip.ParsePrefix(sub)
		if err != nil {
			t.Fatalf("network %s: subnet %q", network, sub)
		}
		if p.Addr().Is6() {
			g.subnet6 = p
			continue
		}
		g.subnet = p
		if gw != "" {
			g.gateway = fmt.Sprintf("%s/%d", gw, p.Bits())
		}
	}
	return g
}

// removeAndCheck removes containers and then network, and checks that
// nothing of the network is left in the engine namespace: no bridge (unless
// keepBridge: an adopted one), veth, route or rule in iptables or ip6tables
// naming the bridge or a subnet.
func removeAndCheck(t *testing.T, network, bridge string, keepBridge bool, containers ...string) {
	t.Helper()
	g := describeNetwork(t, network, bridge)
	if len(containers) > 0 {
		docker(t, append([]string{"rm", "-f"}, containers...)...)
	}
	docker(t, "network", "rm", network)
	checkBridge := bridge
	if keepBridge {
		checkBridge = ""
		if d, ok := engineLinkDetail(t, bridge); !ok {
			t.Errorf("adopted bridge %s was deleted with the network", bridge)
		} else if len(d.addrs("inet")) > 0 || len(d.addrs("inet6")) > 0 {
			t.Errorf("adopted bridge %s keeps addresses mynet added: %v %v", bridge, d.addrs("inet"), d.addrs("inet6"))
		}
	}
	assertNetworkGone(t, checkBridge, g.gateway, g.subnet)
	if hits := linesMentioning(inEngine(t, "iptables-save"), bridge, g.subnet); len(hits) > 0 {
		t.Errorf("iptables-save still mentions %s:\n%s", bridge, strings.Join(hits, "\n"))
	}
	if hits := linesMentioning(inEngine(t, "ip6tables-save"), bridge, g.subnet6); len(hits) > 0 {
		t.Errorf("ip6tables-save still mentions %s or %s:\n%s", bridge, g.subnet6, strings.Join(hits, "\n"))
	}
	if g.subnet6.IsValid() {
		if hits := linesMentioning(inEngine(t, "ip", "-6", "route", "show", "table", "all"), bridge, g.subnet6); len(hits) > 0 {
			t.Errorf("IPv6 routes into %s left:\n%s", g.subnet6, strings.Join(hits, "\n"))
		}
	}
}

// mynetRuleLines are the rules carrying mynet's comment, from
// iptables-save and ip6tables-save, for before/after comparisons.
func mynetRuleLines(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		for _, l := range strings.Split(inEngine(t, cmd), "\n") {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, "mynet:") {
				out = append(out, cmd+": "+l)
			}
		}
	}
	return out
}

// isCurrentEngine reports whether the run uses Docker 28 (not 20.10).
func isCurrentEngine() bool { return env.kind != engineStable }

// mustReachAny is mustReach for an address of either family: one ping and
// the web page at urlOf(addr).
func mustReachAny(t *testing.T, container, addr string) {
	t.Helper()
	mustPass(t, container, pingCheck("ping "+addr, addr), fetchCheck("fetch "+urlOf(addr), urlOf(addr), webPage))
}

// mustNotReachAny is mustNotReach for an address of either family.
func mustNotReachAny(t *testing.T, container, addr string) {
	t.Helper()
	mustBlock(t, container, pingCheck("ping "+addr, addr), fetchCheck("fetch "+urlOf(addr), urlOf(addr), webPage))
}
