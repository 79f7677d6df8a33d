package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// rulesText renders rules one per line as iptables arguments.
func rulesText(rules []Rule) string {
	var b strings.Builder
	for _, r := range rules {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestNetworkRules(t *testing.T) {
	subnet := netip.MustParsePrefix("10.1.0.0/24")
	const (
		stage1    = "-t mangle -A MYNET-ISOLATION -i mn0 ! -o mn0 -m comment --comment mynet:mn0 -j MYNET-ISOLATION-2\n"
		inbound   = "-t mangle -A MYNET-ISOLATION ! -i mn0 -o mn0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn0 -j DROP\n"
		icc       = "-t mangle -A MYNET-ISOLATION -i mn0 -o mn0 -m conntrack ! --ctstate DNAT -m comment --comment mynet:mn0 -j DROP\n"
		stage2    = "-t mangle -A MYNET-ISOLATION-2 -o mn0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn0 -j DROP\n"
		accepts   = "-t filter -A MYNET-ACCEPT -i mn0 -m comment --comment mynet:mn0 -j ACCEPT\n-t filter -A MYNET-ACCEPT -o mn0 -m comment --comment mynet:mn0 -j ACCEPT\n"
		masq      = "-t nat -A MYNET-POSTROUTING -s 10.1.0.0/24 ! -o mn0 -m comment --comment mynet:mn0 -j MASQUERADE\n"
		internal  = "-t mangle -A MYNET-ISOLATION -i mn0 ! -o mn0 -m comment --comment mynet:mn0 -j DROP\n-t mangle -A MYNET-ISOLATION ! -i mn0 -o mn0 -m comment --comment mynet:mn0 -j DROP\n"
		hostInput = "-t filter -A MYNET-INPUT -i mn0 -m comment --comment mynet:mn0 -j DROP\n"
	)
	tests := []struct {
		name string
		n    Network
		want string
	}{
		{"default", Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: true},
			stage1 + inbound + stage2 + accepts + masq},
		{"icc off", Network{Bridge: "mn0", Subnet: subnet, Masquerade: true},
			stage1 + inbound + icc + stage2 + accepts + masq},
		{"internal ignores masquerade", Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: true, Internal: true},
			stage1 + internal + stage2 + hostInput + accepts},
		{"internal icc off", Network{Bridge: "mn0", Subnet: subnet, Internal: true},
			stage1 + internal + icc + stage2 + hostInput + accepts},
		{"isolated mode is internal", Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: true, Mode: ModeIsolated},
			stage1 + internal + stage2 + hostInput + accepts},
		{"masquerade off", Network{Bridge: "mn0", Subnet: subnet, ICC: true},
			stage1 + inbound + stage2 + accepts},
		{"routed: no NAT", Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: true, Mode: ModeRouted},
			stage1 + inbound + stage2 + accepts},
		{"nat-unprotected: only Docker's networks kept out", Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: true, Mode: ModeNATUnprotected},
			stage1 +
				"-t mangle -A MYNET-ISOLATION -i docker0 -o mn0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn0 -j DROP\n" +
				"-t mangle -A MYNET-ISOLATION -i br-+ -o mn0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn0 -j DROP\n" +
				stage2 + accepts + masq},
		{"SNAT to a fixed host address", Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: true, SNATSource: netip.MustParseAddr("192.0.2.7")},
			stage1 + inbound + stage2 + accepts +
				"-t nat -A MYNET-POSTROUTING -s 10.1.0.0/24 ! -o mn0 -m comment --comment mynet:mn0 -j SNAT --to-source 192.0.2.7\n"},
		{"trusted interfaces come first", Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: true, TrustedIfaces: []string{"eth1", "vpn0"}},
			"-t mangle -A MYNET-ISOLATION -i eth1 -o mn0 -m comment --comment mynet:mn0 -j RETURN\n" +
				"-t mangle -A MYNET-ISOLATION -i vpn0 -o mn0 -m comment --comment mynet:mn0 -j RETURN\n" +
				stage1 + inbound + stage2 + accepts + masq},
		{"subnet with host bits is masked", Network{Bridge: "mn0", Subnet: netip.MustParsePrefix("10.1.0.1/24"), Masquerade: true, ICC: true},
			stage1 + inbound + stage2 + accepts + masq},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rulesText(NetworkRules(tt.n)); got != tt.want {
				t.Errorf("NetworkRules:\ngot:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// allCombinations is every ICC x masquerade x internal x gateway mode.
func allCombinations() []Network {
	var out []Network
	for _, mode := range []string{"", ModeNAT, ModeNATUnprotected, ModeRouted, ModeIsolated} {
		for _, icc := range []bool{true, false} {
			for _, masq := range []bool{true, false} {
				for _, internal := range []bool{true, false} {
					out = append(out, Network{Bridge: "mn0", Subnet: netip.MustParsePrefix("10.1.0.0/24"),
						ICC: icc, Masquerade: masq, Internal: internal, Mode: mode})
				}
			}
		}
	}
	return out
}

// Invariants of every combination: each rule is tagged and unique; no NAT
// for internal, isolated or routed networks; the host is closed to
// internal ones; ICC off always drops bridge-to-bridge traffic.
func TestNetworkRulesCombinations(t *testing.T) {
	for _, n := range allCombinations() {
		text := rulesText(NetworkRules(n))
		name := fmt.Sprintf("mode=%q icc=%v masq=%v internal=%v", n.Mode, n.ICC, n.Masquerade, n.Internal)
		seen := map[string]bool{}
		for _, r := range NetworkRules(n) {
			if seen[r.String()] {
				t.Errorf("%s: duplicate rule %s", name, r)
			}
			seen[r.String()] = true
			if !strings.Contains(r.String(), "--comment mynet:mn0") {
				t.Errorf("%s: untagged rule %s", name, r)
			}
		}
		isInternal := n.Internal || n.Mode == ModeIsolated
		wantNAT := n.Masquerade && !isInternal && n.Mode != ModeRouted
		if got := strings.Contains(text, "MYNET-POSTROUTING"); got != wantNAT {
			t.Errorf("%s: NAT rule present = %v, want %v", name, got, wantNAT)
		}
		if got := strings.Contains(text, "MYNET-INPUT"); got != isInternal {
			t.Errorf("%s: host INPUT drop present = %v, want %v", name, got, isInternal)
		}
		if got := strings.Contains(text, " -i mn0 -o mn0 -m conntrack ! --ctstate DNAT "); got != !n.ICC {
			t.Errorf("%s: ICC drop present = %v, want %v", name, got, !n.ICC)
		}
		if !strings.Contains(text, "MYNET-ISOLATION-2 -o mn0") {
			t.Errorf("%s: no stage-2 isolation", name)
		}
	}
}

// Every drop must come before every accept: EnsureNetwork adds rules in
// this order, so a half-applied network never accepts what it should drop.
func TestNetworkRulesDropsFirst(t *testing.T) {
	for _, n := range allCombinations() {
		seenAccept := false
		for _, r := range NetworkRules(n) {
			target := r.Spec[len(r.Spec)-1]
			seenAccept = seenAccept || target == "ACCEPT"
			if target == "DROP" && seenAccept {
				t.Errorf("%+v: drop %s after an accept", n, r)
			}
		}
	}
}

func TestBaseRules(t *testing.T) {
	var got []string
	for _, r := range baseRules() {
		got = append(got, fmt.Sprintf("%s @%d", r, r.pos))
	}
	want := []string{
		"-t filter -A MYNET-FORWARD -j MYNET-ACCEPT @1",
		"-t mangle -A MYNET-ISOLATION-2 -o docker0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP @0",
		"-t mangle -A MYNET-ISOLATION-2 -o br-+ -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP @0",
		"-t mangle -A FORWARD -j MYNET-ISOLATION @1",
		"-t filter -A FORWARD -j MYNET-FORWARD @1",
		"-t filter -A INPUT -j MYNET-INPUT @1",
		"-t nat -A POSTROUTING -j MYNET-POSTROUTING @1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("baseRules:\ngot  %q\nwant %q", got, want)
	}
}

func TestChainNames(t *testing.T) {
	for _, c := range ownedChains {
		if len(c.chain) > 28 {
			t.Errorf("chain %s longer than iptables' 28 characters", c.chain)
		}
		if !strings.HasPrefix(c.chain, "MYNET-") {
			t.Errorf("chain %s lacks the MYNET- prefix", c.chain)
		}
	}
}

func TestNetworkValidate(t *testing.T) {
	v4 := netip.MustParsePrefix("10.1.0.0/24")
	v6 := netip.MustParsePrefix("fd00::/64")
	tests := []struct {
		name string
		n    Network
		ok   bool
	}{
		{"ok", Network{Bridge: "mynet-0123456", Subnet: v4, Masquerade: true}, true},
		{"no subnet without masquerade", Network{Bridge: "mn0"}, true},
		{"internal needs no subnet", Network{Bridge: "mn0", Masquerade: true, Internal: true}, true},
		{"empty name", Network{Subnet: v4}, false},
		{"name too long", Network{Bridge: "mynet-0123456789", Subnet: v4}, false},
		{"wildcard", Network{Bridge: "mn+", Subnet: v4}, false},
		{"negation", Network{Bridge: "!mn0", Subnet: v4}, false},
		{"space", Network{Bridge: "mn 0", Subnet: v4}, false},
		{"slash", Network{Bridge: "mn/0", Subnet: v4}, false},
		{"dot", Network{Bridge: ".", Subnet: v4}, false},
		{"docker0", Network{Bridge: "docker0", Subnet: v4}, false},
		{"docker user bridge", Network{Bridge: "br-0123456789ab", Subnet: v4}, false},
		{"docker0 and a NUL", Network{Bridge: "docker0\x00", Subnet: v4}, false},
		{"NUL inside", Network{Bridge: "mn\x000", Subnet: v4}, false},
		{"newline", Network{Bridge: "mn0\n", Subnet: v4}, false},
		{"non-ASCII", Network{Bridge: "mnü", Subnet: v4}, false},
		{"trusted", Network{Bridge: "mn0", Subnet: v4, TrustedIfaces: []string{"eth1", "vpn0"}}, true},
		{"trusted wildcard", Network{Bridge: "mn0", Subnet: v4, TrustedIfaces: []string{"+"}}, false},
		{"trusted prefix wildcard", Network{Bridge: "mn0", Subnet: v4, TrustedIfaces: []string{"eth+"}}, false},
		{"trusted negation", Network{Bridge: "mn0", Subnet: v4, TrustedIfaces: []string{"!eth0"}}, false},
		{"trusted NUL", Network{Bridge: "mn0", Subnet: v4, TrustedIfaces: []string{"eth0\x00"}}, false},
		{"trusted empty", Network{Bridge: "mn0", Subnet: v4, TrustedIfaces: []string{""}}, false},
		{"masquerade without subnet", Network{Bridge: "mn0", Masquerade: true}, false},
		{"ipv6 subnet", Network{Bridge: "mn0", Subnet: v6, Masquerade: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.n.validate(true)
			if tt.ok && err != nil {
				t.Fatalf("validate: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidNetwork) {
				t.Fatalf("validate = %v, want ErrInvalidNetwork", err)
			}
		})
	}
}

// CheckMatchName refuses what iptables reads as a wildcard, though the
// kernel takes it as an interface name.
func TestCheckMatchName(t *testing.T) {
	if err := CheckMatchName("a+b"); err == nil {
		t.Error(`CheckMatchName("a+b") = nil, want an error`)
	}
}
