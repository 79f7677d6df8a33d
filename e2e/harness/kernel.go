//go:build e2e

package harness

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// Kernel state in the engine namespace, read with ip(8) and iptables-save
// through nsenter: the view the private engine's "host" has.

type ipLink struct {
	Ifname   string `json:"ifname"`
	Master   string `json:"master"`
	Linkinfo *struct {
		InfoKind string `json:"info_kind"`
	} `json:"linkinfo"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

func (l ipLink) Kind() string {
	if l.Linkinfo == nil {
		return ""
	}
	return l.Linkinfo.InfoKind
}

func (l ipLink) hasAddr(cidr string) bool {
	for _, a := range l.AddrInfo {
		if fmt.Sprintf("%s/%d", a.Local, a.Prefixlen) == cidr {
			return true
		}
	}
	return false
}

// engineLinks lists the engine namespace's links with details and addresses.
func engineLinks(t *testing.T) []ipLink {
	t.Helper()
	out := InEngine(t, "ip", "-j", "-d", "addr", "show")
	var links []ipLink
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("parsing `ip -j -d addr show`: %v\n%s", err, out)
	}
	return links
}

// BridgeWithAddr returns the bridge in the engine namespace that carries
// cidr (e.g. "10.50.0.1/24"), or "" if there is none.
func BridgeWithAddr(t *testing.T, cidr string) string {
	t.Helper()
	for _, l := range engineLinks(t) {
		if l.Kind() == "bridge" && l.hasAddr(cidr) {
			return l.Ifname
		}
	}
	return ""
}

// PortsOf lists the links enslaved to bridge.
func PortsOf(t *testing.T, bridge string) []ipLink {
	t.Helper()
	var ports []ipLink
	for _, l := range engineLinks(t) {
		if l.Master == bridge {
			ports = append(ports, l)
		}
	}
	return ports
}

// MynetVeths lists links named like mynet's veth ends (mnh*: host side,
// mnc*: container side before it moves into the container).
func MynetVeths(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, l := range engineLinks(t) {
		if strings.HasPrefix(l.Ifname, "mnh") || strings.HasPrefix(l.Ifname, "mnc") {
			names = append(names, l.Ifname)
		}
	}
	return names
}

// LinesMentioning returns the lines of text that name ifname as a whole
// token, or contain an address or prefix inside subnet.
func LinesMentioning(text, ifname string, subnet netip.Prefix) []string {
	var hits []string
	for _, line := range strings.Split(text, "\n") {
		for _, tok := range strings.Fields(line) {
			if (ifname != "" && strings.Trim(tok, `":`) == ifname) || tokenInSubnet(tok, subnet) {
				hits = append(hits, line)
				break
			}
		}
	}
	return hits
}

func tokenInSubnet(tok string, subnet netip.Prefix) bool {
	if p, err := netip.ParsePrefix(tok); err == nil {
		return subnet.Overlaps(p)
	}
	if a, err := netip.ParseAddr(tok); err == nil {
		return subnet.Contains(a)
	}
	return false
}

// AssertNetworkGone checks that nothing of a removed mynet network is left
// in the engine namespace: no bridge carrying the gateway, no mnh*/mnc*
// veth, no iptables rule or chain naming the bridge or the subnet, and no
// route into the subnet.
func AssertNetworkGone(t *testing.T, bridge string, gatewayCIDR string, subnet netip.Prefix) {
	t.Helper()
	if br := BridgeWithAddr(t, gatewayCIDR); br != "" {
		t.Errorf("bridge %s with %s still exists", br, gatewayCIDR)
	}
	for _, l := range engineLinks(t) {
		if bridge != "" && l.Ifname == bridge {
			t.Errorf("bridge %s still exists", bridge)
		}
	}
	if v := MynetVeths(t); len(v) > 0 {
		t.Errorf("mynet veths left in the engine namespace: %v", v)
	}
	if hits := LinesMentioning(InEngine(t, "iptables-save"), bridge, subnet); len(hits) > 0 {
		t.Errorf("iptables-save still mentions %s or %s:\n%s", bridge, subnet, strings.Join(hits, "\n"))
	}
	if hits := LinesMentioning(InEngine(t, "ip", "-4", "route", "show", "table", "all"), bridge, subnet); len(hits) > 0 {
		t.Errorf("routes into %s left:\n%s", subnet, strings.Join(hits, "\n"))
	}
}

// CountEngineRules counts the rules (-A lines) keep accepts in every table
// of the engine namespace, in both iptables backends (Docker and mynet
// write to the same one, but which one depends on the machine).
func CountEngineRules(keep func(rule string) bool) int {
	n := 0
	for _, save := range []string{"iptables-nft-save", "iptables-legacy-save"} {
		out, err := InEngineErr(save)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "-A ") && keep(l) {
				n++
			}
		}
	}
	return n
}
