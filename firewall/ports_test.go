package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

var (
	testContainer  = netip.MustParseAddr("10.1.0.2")
	testContainer6 = netip.MustParseAddr("fd00:1::2")
	allHost        = netip.IPv4Unspecified()
	allHost6       = netip.IPv6Unspecified()
	testBridge     = PortBridge{Bridge: "mn0", Subnet: netip.MustParsePrefix("10.1.0.0/24")}
	testBridge6    = PortBridge{Bridge: "mn0", Subnet: netip.MustParsePrefix("fd00:1::/64")}
)

func mapping(proto string, hostIP netip.Addr, hostPort, port, portEnd uint16) Mapping {
	return Mapping{Bridge: "mn0", Proto: proto, HostIP: hostIP, HostPort: hostPort,
		Container: testContainer, Port: port, PortEnd: portEnd}
}

// One rule per mapping whatever the size of its range; the DNAT keeps the
// port when host and container ports are equal and uses the offset form
// for a shifted range. IPv6 mappings are the same rules with /128
// addresses and, where a port follows, the container address in brackets.
func TestPortRules(t *testing.T) {
	tests := []struct {
		name string
		m    Mapping
		want string
	}{
		{
			name: "one port, same number",
			m:    mapping(ProtoTCP, allHost, 80, 80, 80),
			want: "-t nat -A MYNET-DNAT -p tcp -m tcp --dport 80 -m comment --comment mynet:mn0 -j DNAT --to-destination 10.1.0.2\n",
		},
		{
			name: "one port, other number, host address",
			m:    mapping(ProtoTCP, netip.MustParseAddr("127.0.0.1"), 8080, 80, 80),
			want: "-t nat -A MYNET-DNAT -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m comment --comment mynet:mn0 -j DNAT --to-destination 10.1.0.2:80\n",
		},
		{
			name: "range kept",
			m:    mapping(ProtoUDP, allHost, 20000, 20000, 20999),
			want: "-t nat -A MYNET-DNAT -p udp -m udp --dport 20000:20999 -m comment --comment mynet:mn0 -j DNAT --to-destination 10.1.0.2\n",
		},
		{
			name: "range shifted",
			m:    mapping(ProtoSCTP, netip.MustParseAddr("198.18.0.1"), 9000, 8000, 8099),
			want: "-t nat -A MYNET-DNAT -d 198.18.0.1/32 -p sctp -m sctp --dport 9000:9099 -m comment --comment mynet:mn0 -j DNAT --to-destination 10.1.0.2:8000-8099/9000\n",
		},
		{
			name: "routed mode opens the container ports",
			m:    routed(mapping(ProtoTCP, allHost, 8000, 8000, 8099)),
			want: "-t mangle -A MYNET-ISOLATION -d 10.1.0.2/32 -o mn0 -p tcp -m tcp --dport 8000:8099 -m comment --comment mynet:mn0 -j RETURN\n",
		},
		{
			name: "IPv6: all addresses, same port",
			m:    mapping6(ProtoTCP, allHost6, 80, 80, 80),
			want: "-t nat -A MYNET-DNAT -p tcp -m tcp --dport 80 -m comment --comment mynet:mn0 -j DNAT --to-destination fd00:1::2\n",
		},
		{
			name: "IPv6: host address, other port",
			m:    mapping6(ProtoUDP, netip.MustParseAddr("2001:db8::1"), 8080, 80, 80),
			want: "-t nat -A MYNET-DNAT -d 2001:db8::1/128 -p udp -m udp --dport 8080 -m comment --comment mynet:mn0 -j DNAT --to-destination [fd00:1::2]:80\n",
		},
		{
			name: "IPv6: range shifted",
			m:    mapping6(ProtoSCTP, allHost6, 9000, 8000, 8099),
			want: "-t nat -A MYNET-DNAT -p sctp -m sctp --dport 9000:9099 -m comment --comment mynet:mn0 -j DNAT --to-destination [fd00:1::2]:8000-8099/9000\n",
		},
		{
			name: "IPv6: routed mode opens the container ports",
			m:    routed(mapping6(ProtoTCP, allHost6, 80, 80, 80)),
			want: "-t mangle -A MYNET-ISOLATION -d fd00:1::2/128 -o mn0 -p tcp -m tcp --dport 80 -m comment --comment mynet:mn0 -j RETURN\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.validate(tt.m.Container.Is4()); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if got := rulesText(PortRules(tt.m)); got != tt.want {
				t.Errorf("PortRules(%s):\n%s\nwant:\n%s", tt.m, got, tt.want)
			}
		})
	}
}

func routed(m Mapping) Mapping { m.Routed = true; return m }

func mapping6(proto string, hostIP netip.Addr, hostPort, port, portEnd uint16) Mapping {
	m := mapping(proto, hostIP, hostPort, port, portEnd)
	m.Container = testContainer6
	return m
}

// An IPv6 bridge needs only the hairpin masquerade: no route_localnet,
// so neither the loopback guard nor the loopback masquerade.
func TestBridgePortRulesIPv6(t *testing.T) {
	want := "-t nat -A MYNET-POSTROUTING -s fd00:1::/64 -o mn0 -m conntrack --ctstate DNAT -m comment --comment mynet:mn0 -j MASQUERADE\n"
	if got := rulesText(BridgePortRules(testBridge6)); got != want {
		t.Errorf("BridgePortRules:\n%s\nwant:\n%s", got, want)
	}
}

func TestBridgePortRules(t *testing.T) {
	want := `-t filter -A MYNET-INPUT -i mn0 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment mynet:mn0 -j DROP
-t nat -A MYNET-POSTROUTING -s 127.0.0.0/8 -o mn0 -m comment --comment mynet:mn0 -j MASQUERADE
-t nat -A MYNET-POSTROUTING -s 10.1.0.0/24 -o mn0 -m conntrack --ctstate DNAT -m comment --comment mynet:mn0 -j MASQUERADE
`
	if got := rulesText(BridgePortRules(testBridge)); got != want {
		t.Errorf("BridgePortRules:\n%s\nwant:\n%s", got, want)
	}
	b := testBridge
	b.Routed = true
	if got := BridgePortRules(b); len(got) != 0 {
		t.Errorf("BridgePortRules in routed mode = %v, want none", got)
	}
}

func TestPortBaseRules(t *testing.T) {
	for is4, want := range map[bool][]string{
		true: {
			"-t nat -A PREROUTING ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MYNET-DNAT @1",
			"-t nat -A OUTPUT -m addrtype --dst-type LOCAL -j MYNET-DNAT @1",
		},
		false: {
			"-t nat -A PREROUTING -m addrtype --dst-type LOCAL -j MYNET-DNAT @1",
			"-t nat -A OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j MYNET-DNAT @1",
		},
	} {
		var got []string
		for _, r := range portBaseRules(is4) {
			got = append(got, fmt.Sprintf("%s @%d", r, r.pos))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("portBaseRules(%v):\n%s\nwant:\n%s", is4, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	for _, c := range portChains {
		if len(c.chain) > 28 || !strings.HasPrefix(c.chain, "MYNET-") {
			t.Errorf("chain %s: want the MYNET- prefix and at most 28 characters", c.chain)
		}
	}
}

func TestMappingValidate(t *testing.T) {
	ok := mapping(ProtoTCP, allHost, 8080, 80, 80)
	with := func(f func(*Mapping)) Mapping { m := ok; f(&m); return m }
	tests := []struct {
		name string
		m    Mapping
		ok   bool
	}{
		{"ok", ok, true},
		{"top of the port space", with(func(m *Mapping) { m.HostPort, m.Port, m.PortEnd = 65535, 1, 1 }), true},
		{"bad proto", with(func(m *Mapping) { m.Proto = "icmp" }), false},
		{"no host address", with(func(m *Mapping) { m.HostIP = netip.Addr{} }), false},
		{"no container", with(func(m *Mapping) { m.Container = netip.Addr{} }), false},
		{"unspecified container", with(func(m *Mapping) { m.Container = allHost }), false},
		{"ipv6 host on the ipv4 applier", with(func(m *Mapping) { m.HostIP = netip.MustParseAddr("::") }), false},
		{"ipv6 container on the ipv4 applier", with(func(m *Mapping) { m.Container = netip.MustParseAddr("fd00::2") }), false},
		{"mapped ipv4", with(func(m *Mapping) { m.Container = netip.MustParseAddr("::ffff:10.1.0.2") }), false},
		{"port zero", with(func(m *Mapping) { m.Port = 0 }), false},
		{"host port zero", with(func(m *Mapping) { m.HostPort = 0 }), false},
		{"range backwards", with(func(m *Mapping) { m.Port, m.PortEnd = 90, 80 }), false},
		{"host range past 65535", with(func(m *Mapping) { m.HostPort, m.Port, m.PortEnd = 65535, 80, 81 }), false},
		{"docker bridge", with(func(m *Mapping) { m.Bridge = "docker0" }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.validate(true)
			checkValidate(t, err, tt.ok)
		})
	}
}

func TestMappingValidateIPv6(t *testing.T) {
	ok := mapping6(ProtoTCP, allHost6, 8080, 80, 80)
	with := func(f func(*Mapping)) Mapping { m := ok; f(&m); return m }
	tests := []struct {
		name string
		m    Mapping
		ok   bool
	}{
		{"ok", ok, true},
		{"host address", with(func(m *Mapping) { m.HostIP = netip.MustParseAddr("2001:db8::1") }), true},
		{"::1 cannot be DNATed", with(func(m *Mapping) { m.HostIP = netip.MustParseAddr("::1") }), false},
		{"ipv4 host", with(func(m *Mapping) { m.HostIP = allHost }), false},
		{"ipv4 container", with(func(m *Mapping) { m.Container = testContainer }), false},
		{"zone", with(func(m *Mapping) { m.HostIP = netip.MustParseAddr("fe80::1%eth0") }), false},
		{"unspecified container", with(func(m *Mapping) { m.Container = allHost6 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, tt.m.validate(false), tt.ok)
		})
	}
}

func checkValidate(t *testing.T, err error, ok bool) {
	t.Helper()
	if ok && err != nil {
		t.Fatalf("validate: %v", err)
	}
	if !ok && !errors.Is(err, ErrInvalidMapping) {
		t.Fatalf("validate = %v, want ErrInvalidMapping", err)
	}
}

var testMappings = []Mapping{
	mapping(ProtoTCP, allHost, 8080, 80, 80),
	mapping(ProtoUDP, netip.MustParseAddr("127.0.0.1"), 9000, 7000, 7099),
}

// EnsurePorts creates MYNET-DNAT with its jumps first in place, adds each
// rule once however often it is called, and RemovePorts plus
// RemoveBridgePorts plus Cleanup bring back the state before Init.
func TestEnsureRemovePorts(t *testing.T) {
	ipt, f := newFakeIPTables()
	f.chains["nat/PREROUTING"] = []string{"-m addrtype --dst-type LOCAL -j DOCKER"}
	f.chains["nat/DOCKER"] = nil
	pristine := f.dump()
	if err := ipt.Init(); err != nil {
		t.Fatal(err)
	}
	initialised := f.dump()
	for i := range 2 {
		if err := ipt.EnsurePorts(testBridge, testMappings); err != nil {
			t.Fatalf("EnsurePorts #%d: %v", i+1, err)
		}
	}
	got := f.dump()
	for _, want := range []string{
		"filter/MYNET-INPUT\n  -i mn0 -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment mynet:mn0 -j DROP\n",
		`nat/MYNET-DNAT
  -p tcp -m tcp --dport 8080 -m comment --comment mynet:mn0 -j DNAT --to-destination 10.1.0.2:80
  -d 127.0.0.1/32 -p udp -m udp --dport 9000:9099 -m comment --comment mynet:mn0 -j DNAT --to-destination 10.1.0.2:7000-7099/9000
nat/MYNET-POSTROUTING
  -s 127.0.0.0/8 -o mn0 -m comment --comment mynet:mn0 -j MASQUERADE
  -s 10.1.0.0/24 -o mn0 -m conntrack --ctstate DNAT -m comment --comment mynet:mn0 -j MASQUERADE
nat/OUTPUT
  -m addrtype --dst-type LOCAL -j MYNET-DNAT
`,
		"nat/PREROUTING\n  ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j MYNET-DNAT\n  -m addrtype --dst-type LOCAL -j DOCKER\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("after EnsurePorts, want\n%s\nin:\n%s", want, got)
		}
	}
	if err := ipt.Cleanup(); !errors.Is(err, ErrRulesRemain) {
		t.Fatalf("Cleanup with published ports = %v, want ErrRulesRemain", err)
	}
	for i := range 2 {
		if err := ipt.RemovePorts(testMappings); err != nil {
			t.Fatalf("RemovePorts #%d: %v", i+1, err)
		}
		if err := ipt.RemoveBridgePorts(testBridge); err != nil {
			t.Fatalf("RemoveBridgePorts #%d: %v", i+1, err)
		}
	}
	withChains := f.dump()
	if !strings.Contains(withChains, "nat/MYNET-DNAT\n") {
		t.Errorf("MYNET-DNAT went with the last rule; it should stay until Cleanup:\n%s", withChains)
	}
	if err := ipt.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := f.dump(); got != pristine {
		t.Errorf("after removal and Cleanup:\n%s\nwant:\n%s", got, pristine)
	}
	_ = initialised
}

// In the routed mode the RETURN goes ahead of the bridge's isolation drop.
func TestEnsurePortsRouted(t *testing.T) {
	ipt, f := newFakeIPTables()
	n := testNetwork("mn0", "10.1.0.0/24")
	n.Mode = ModeRouted
	if err := ipt.EnsureNetwork(n); err != nil {
		t.Fatal(err)
	}
	b := testBridge
	b.Routed = true
	if err := ipt.EnsurePorts(b, []Mapping{routed(mapping(ProtoTCP, allHost, 80, 80, 80))}); err != nil {
		t.Fatal(err)
	}
	iso := f.chains["mangle/MYNET-ISOLATION"]
	if len(iso) == 0 || !strings.HasSuffix(iso[0], "-j RETURN") || !strings.Contains(iso[0], "--dport 80") {
		t.Errorf("MYNET-ISOLATION = %q, want the published port's RETURN first", iso)
	}
	if _, ok := f.chains["nat/MYNET-DNAT"]; !ok {
		t.Errorf("MYNET-DNAT missing: the chains are created with any published port")
	}
}

// A failure at the last rule makes EnsurePorts delete the rules it added in
// this call, and only those: a mapping published before stays.
func TestEnsurePortsUndoesOnFailure(t *testing.T) {
	ipt, f, _ := initialised(t)
	if err := ipt.EnsurePorts(testBridge, testMappings[:1]); err != nil {
		t.Fatal(err)
	}
	before := f.dump()
	injected := errors.New("injected")
	f.fail = func(op, _, chain string, spec []string) error {
		if op == "Append" && chain == ChainDNAT && strings.Contains(strings.Join(spec, " "), "9000:9099") {
			return injected
		}
		return nil
	}
	if err := ipt.EnsurePorts(testBridge, testMappings); !errors.Is(err, injected) {
		t.Fatalf("EnsurePorts = %v, want the injected error", err)
	}
	if got := f.dump(); got != before {
		t.Errorf("after the failed EnsurePorts:\n%s\nwant:\n%s", got, before)
	}
}

func TestEnsurePortsRejectsInvalid(t *testing.T) {
	ipt, f := newFakeIPTables()
	bad := mapping(ProtoTCP, allHost, 0, 80, 80)
	if err := ipt.EnsurePorts(testBridge, []Mapping{bad}); !errors.Is(err, ErrInvalidMapping) {
		t.Fatalf("EnsurePorts = %v, want ErrInvalidMapping", err)
	}
	if err := ipt.EnsurePorts(PortBridge{Bridge: "mn0"}, nil); !errors.Is(err, ErrInvalidMapping) {
		t.Fatalf("EnsurePorts without subnet = %v, want ErrInvalidMapping", err)
	}
	if f.changes != 0 {
		t.Errorf("%d changes after invalid input, want none", f.changes)
	}
}

// The IPv6 applier publishes into its own MYNET-DNAT, with the OUTPUT
// jump leaving ::1 alone and only the hairpin masquerade for the bridge,
// and Cleanup gives back what was there before.
func TestEnsureRemovePortsIPv6(t *testing.T) {
	f := newFakeTables()
	ipt := newIPTables(testLog(), f, BackendNFTables, false, "/nonexistent")
	pristine := f.dump()
	ms := []Mapping{mapping6(ProtoTCP, allHost6, 8080, 80, 80), mapping6(ProtoUDP, netip.MustParseAddr("2001:db8::1"), 9000, 7000, 7099)}
	for i := range 2 {
		if err := ipt.EnsurePorts(testBridge6, ms); err != nil {
			t.Fatalf("EnsurePorts #%d: %v", i+1, err)
		}
	}
	got := f.dump()
	for _, want := range []string{
		`nat/MYNET-DNAT
  -p tcp -m tcp --dport 8080 -m comment --comment mynet:mn0 -j DNAT --to-destination [fd00:1::2]:80
  -d 2001:db8::1/128 -p udp -m udp --dport 9000:9099 -m comment --comment mynet:mn0 -j DNAT --to-destination [fd00:1::2]:7000-7099/9000
nat/MYNET-POSTROUTING
  -s fd00:1::/64 -o mn0 -m conntrack --ctstate DNAT -m comment --comment mynet:mn0 -j MASQUERADE
nat/OUTPUT
  ! -d ::1/128 -m addrtype --dst-type LOCAL -j MYNET-DNAT
`,
		"nat/PREROUTING\n  -m addrtype --dst-type LOCAL -j MYNET-DNAT\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("after EnsurePorts, want\n%s\nin:\n%s", want, got)
		}
	}
	if strings.Contains(got, "127.0.0.0/8") {
		t.Errorf("IPv4 loopback rules in the IPv6 applier:\n%s", got)
	}
	if err := ipt.EnsurePorts(testBridge, nil); !errors.Is(err, ErrInvalidMapping) {
		t.Errorf("EnsurePorts with an IPv4 subnet on the IPv6 applier = %v, want ErrInvalidMapping", err)
	}
	if err := ipt.RemovePorts(ms); err != nil {
		t.Fatal(err)
	}
	if err := ipt.RemoveBridgePorts(testBridge6); err != nil {
		t.Fatal(err)
	}
	if err := ipt.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if got := f.dump(); got != pristine {
		t.Errorf("after removal and Cleanup:\n%s\nwant:\n%s", got, pristine)
	}
}
