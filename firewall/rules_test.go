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
	tests := []struct {
		name string
		n    Network
		want string
	}{
		{
			name: "default",
			n:    Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: true},
			want: `-t mangle -A MYNET-ISOLATION ! -i mn0 -o mn0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o docker0 -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o br-+ -m comment --comment mynet:mn0 -j DROP
-t filter -A MYNET-ACCEPT -i mn0 -m comment --comment mynet:mn0 -j ACCEPT
-t filter -A MYNET-ACCEPT -o mn0 -m comment --comment mynet:mn0 -j ACCEPT
-t nat -A MYNET-POSTROUTING -s 10.1.0.0/24 ! -o mn0 -m comment --comment mynet:mn0 -j MASQUERADE
`,
		},
		{
			name: "icc off",
			n:    Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: false},
			want: `-t mangle -A MYNET-ISOLATION ! -i mn0 -o mn0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o docker0 -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o br-+ -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o mn0 -m comment --comment mynet:mn0 -j DROP
-t filter -A MYNET-ACCEPT -i mn0 -m comment --comment mynet:mn0 -j ACCEPT
-t filter -A MYNET-ACCEPT -o mn0 -m comment --comment mynet:mn0 -j ACCEPT
-t nat -A MYNET-POSTROUTING -s 10.1.0.0/24 ! -o mn0 -m comment --comment mynet:mn0 -j MASQUERADE
`,
		},
		{
			name: "internal ignores masquerade",
			n:    Network{Bridge: "mn0", Subnet: subnet, Masquerade: true, ICC: true, Internal: true},
			want: `-t mangle -A MYNET-ISOLATION -i mn0 ! -o mn0 -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION ! -i mn0 -o mn0 -m comment --comment mynet:mn0 -j DROP
-t filter -A MYNET-ACCEPT -i mn0 -m comment --comment mynet:mn0 -j ACCEPT
-t filter -A MYNET-ACCEPT -o mn0 -m comment --comment mynet:mn0 -j ACCEPT
`,
		},
		{
			name: "internal icc off",
			n:    Network{Bridge: "mn0", Subnet: subnet, Internal: true},
			want: `-t mangle -A MYNET-ISOLATION -i mn0 ! -o mn0 -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION ! -i mn0 -o mn0 -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o mn0 -m comment --comment mynet:mn0 -j DROP
-t filter -A MYNET-ACCEPT -i mn0 -m comment --comment mynet:mn0 -j ACCEPT
-t filter -A MYNET-ACCEPT -o mn0 -m comment --comment mynet:mn0 -j ACCEPT
`,
		},
		{
			name: "masquerade off",
			n:    Network{Bridge: "mn0", Subnet: subnet, ICC: true},
			want: `-t mangle -A MYNET-ISOLATION ! -i mn0 -o mn0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o docker0 -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o br-+ -m comment --comment mynet:mn0 -j DROP
-t filter -A MYNET-ACCEPT -i mn0 -m comment --comment mynet:mn0 -j ACCEPT
-t filter -A MYNET-ACCEPT -o mn0 -m comment --comment mynet:mn0 -j ACCEPT
`,
		},
		{
			name: "subnet with host bits is masked",
			n:    Network{Bridge: "mn0", Subnet: netip.MustParsePrefix("10.1.0.1/24"), Masquerade: true, ICC: true},
			want: `-t mangle -A MYNET-ISOLATION ! -i mn0 -o mn0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o docker0 -m comment --comment mynet:mn0 -j DROP
-t mangle -A MYNET-ISOLATION -i mn0 -o br-+ -m comment --comment mynet:mn0 -j DROP
-t filter -A MYNET-ACCEPT -i mn0 -m comment --comment mynet:mn0 -j ACCEPT
-t filter -A MYNET-ACCEPT -o mn0 -m comment --comment mynet:mn0 -j ACCEPT
-t nat -A MYNET-POSTROUTING -s 10.1.0.0/24 ! -o mn0 -m comment --comment mynet:mn0 -j MASQUERADE
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rulesText(NetworkRules(tt.n)); got != tt.want {
				t.Errorf("NetworkRules:\ngot:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// Every drop must come before every accept: EnsureNetwork adds rules in
// this order, so a half-applied network never accepts what it should drop.
func TestNetworkRulesDropsFirst(t *testing.T) {
	for _, n := range []Network{
		{Bridge: "mn0", Subnet: netip.MustParsePrefix("10.1.0.0/24"), Masquerade: true, ICC: true},
		{Bridge: "mn0", Internal: true},
	} {
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
		"-t mangle -A FORWARD -j MYNET-ISOLATION @1",
		"-t filter -A FORWARD -j MYNET-FORWARD @1",
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
