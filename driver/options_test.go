package driver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
)

func TestParseNetworkOptions(t *testing.T) {
	generic := func(kv ...string) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return map[string]any{keyGeneric: m}
	}
	tests := []struct {
		name    string
		raw     map[string]any
		want    netOptions
		wantErr string
	}{
		{name: "defaults", raw: map[string]any{}, want: netOptions{MTU: 1500, Masquerade: true, ICC: true}},
		{name: "engine bools", raw: map[string]any{keyInternal: true, keyIPv6: false, keyGeneric: map[string]any{}},
			want: netOptions{MTU: 1500, Masquerade: true, ICC: true, Internal: true}},
		{name: "host binding v6", raw: generic(optHostBinding, "::"), want: netOptions{MTU: 1500, ICC: true, Masquerade: true, HostBinding: netip.IPv6Unspecified()}},
		{name: "all options", raw: generic(optBridgeName, "mybr-test", optMTU, "1450", optMasquerade, "false", optICC, "0", optHostBinding, "127.0.0.1"),
			want: netOptions{BridgeName: "mybr-test", MTU: 1450, ICC: false, Masquerade: false, HostBinding: netip.MustParseAddr("127.0.0.1")}},
		{name: "generic docker label ignored", raw: generic("com.docker.network.foo", "true"),
			want: netOptions{MTU: 1500, Masquerade: true, ICC: true, Ignored: []string{"com.docker.network.foo"}}},
		{name: "engine's own keys are not reported", raw: generic("com.docker.network.enable_ipv4", "true"),
			want: netOptions{MTU: 1500, Masquerade: true, ICC: true}},
		{name: "mtu not a number", raw: generic(optMTU, "abc"), wantErr: `option com.docker.network.driver.mtu="abc": want an MTU between 68 and 65535`},
		{name: "mtu too small", raw: generic(optMTU, "67"), wantErr: "want an MTU between 68 and 65535"},
		{name: "mtu too big", raw: generic(optMTU, "65536"), wantErr: "want an MTU between 68 and 65535"},
		{name: "bad bool", raw: generic(optICC, "maybe"), wantErr: `enable_icc="maybe": want true or false`},
		{name: "bridge name too long", raw: generic(optBridgeName, "abcdefghijklmnop"), wantErr: "1 to 15 bytes"},
		{name: "bridge name with slash", raw: generic(optBridgeName, "a/b"), wantErr: "without '/'"},
		// The kernel cuts a name at a NUL: this one would name docker0.
		{name: "bridge name docker0 with a NUL", raw: generic(optBridgeName, "docker0\x00"), wantErr: `printable ASCII only`},
		{name: "bridge name with a NUL inside", raw: generic(optBridgeName, "my\x00br"), wantErr: `printable ASCII only`},
		{name: "bridge name with a newline", raw: generic(optBridgeName, "mybr\n"), wantErr: `printable ASCII only`},
		{name: "bridge name non-ASCII", raw: generic(optBridgeName, "brü"), wantErr: `printable ASCII only`},
		{name: "bridge name with a tab", raw: generic(optBridgeName, "my\tbr"), wantErr: `printable ASCII only`},
		{name: "bridge name with DEL", raw: generic(optBridgeName, "mybr\x7f"), wantErr: `printable ASCII only`},
		{name: "bridge name dot dot", raw: generic(optBridgeName, ".."), wantErr: `cannot be . or ..`},
		{name: "bridge name of Docker's networks", raw: generic(optBridgeName, "br-1234"), wantErr: `option com.docker.network.bridge.name="br-1234": bridge name "br-1234": looks like a Docker bridge`},
		{name: "bridge name docker0", raw: generic(optBridgeName, "docker0"), wantErr: `option com.docker.network.bridge.name="docker0": bridge name "docker0": looks like a Docker bridge`},
		{name: "bridge name with iptables wildcard", raw: generic(optBridgeName, "mybr+"), wantErr: "cannot contain '+'"},
		{name: "host binding with a zone", raw: generic(optHostBinding, "fe80::1%eth0"), wantErr: "want an IPv4 or IPv6 address"},
		{name: "host binding not an address", raw: generic(optHostBinding, "localhost"), wantErr: "want an IPv4 or IPv6 address"},
		{name: "unknown bridge key", raw: generic("com.docker.network.bridge.enable_icx", "true"), wantErr: `unknown option "com.docker.network.bridge.enable_icx": mynet accepts com.docker.network.bridge.name,`},
		{name: "unknown mynet key", raw: generic("mynet.foo", "1"), wantErr: `unknown option "mynet.foo"`},
		{name: "internal not bool", raw: map[string]any{keyInternal: 3.0}, wantErr: "want a boolean"},
		{name: "gateway mode", raw: generic(optGWModeV4, "bogus"), wantErr: `gateway_mode_ipv4="bogus": want one of nat, nat-unprotected, routed, isolated`},
		{name: "host_ipv4 v6", raw: generic(optHostIPv4, "::1"), wantErr: "want an IPv4 address"},
		{name: "host_ipv6 v4", raw: generic(optHostIPv6, "10.0.0.1"), wantErr: "want an IPv6 address"},
		{name: "trusted bad name", raw: generic(optTrusted, "eth0:a/b"), wantErr: `interface "a/b"`},
		// iptables reads "+" as every interface and "eth+" as a prefix:
		// isolation would be off for the whole host.
		{name: "trusted wildcard alone", raw: generic(optTrusted, "+"), wantErr: `interface "+": an interface name given to iptables cannot contain '+'`},
		{name: "trusted wildcard prefix", raw: generic(optTrusted, "eth0:eth+"), wantErr: `interface "eth+"`},
		{name: "trusted negation", raw: generic(optTrusted, "!eth0"), wantErr: `interface "!eth0"`},
		{name: "trusted NUL", raw: generic(optTrusted, "eth0\x00"), wantErr: `printable ASCII only`},
		{name: "iface prefix too long", raw: generic(optIfacePrefix, "abcdefghijklmn"), wantErr: "want 1 to 13 characters"},
		{name: "inhibit not bool", raw: generic(optInhibitV4, "x"), wantErr: "want true or false"},
		{name: "generic not a map", raw: map[string]any{keyGeneric: "x"}, wantErr: "want an object of options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetworkOptions(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.BridgeName != tt.want.BridgeName || got.MTU != tt.want.MTU || got.Masquerade != tt.want.Masquerade ||
				got.ICC != tt.want.ICC || got.Internal != tt.want.Internal || got.HostBinding != tt.want.HostBinding ||
				strings.Join(got.Ignored, ",") != strings.Join(tt.want.Ignored, ",") {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseNewOptions(t *testing.T) {
	o, err := parseNetworkOptions(map[string]any{keyIPv4: false, keyGeneric: map[string]any{
		optGWModeV4: "routed", optGWModeV6: "nat-unprotected", optTrusted: "eth1:vpn0", optHostIPv4: "192.0.2.7",
		optHostIPv6: "2001:db8::7", optIfacePrefix: "net", optInhibitV4: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.IPv4 || o.GWModeV4 != "routed" || o.GWModeV6 != "nat-unprotected" || strings.Join(o.Trusted, ",") != "eth1,vpn0" ||
		o.HostIPv4.String() != "192.0.2.7" || o.HostIPv6.String() != "2001:db8::7" || o.IfacePrefix != "net" || !o.InhibitIPv4 {
		t.Errorf("parsed %+v", o)
	}
	d, _ := parseNetworkOptions(nil)
	if !d.IPv4 || d.GWModeV4 != "nat" || d.GWModeV6 != "nat" || d.IfacePrefix != "eth" {
		t.Errorf("defaults %+v", d)
	}
}

func TestParseIPAMData(t *testing.T) {
	tests := []struct {
		pool, gw        string
		wantGW, wantErr string
	}{
		{pool: "10.50.0.0/24", gw: "10.50.0.1/24", wantGW: "10.50.0.1/24"},
		{pool: "10.50.0.0/24", gw: "10.50.0.254", wantGW: "10.50.0.254/24"},
		{pool: "10.50.0.0/24", gw: "", wantGW: "invalid Prefix"},
		{pool: "10.50.0.0/24", gw: "10.58.0.1/24", wantErr: "gateway 10.58.0.1 is outside subnet 10.50.0.0/24"},
		{pool: "10.50.0.0/24", gw: "nope", wantErr: `gateway "nope" is not an IPv4 address`},
		{pool: "fd00::/64", wantErr: "is not an IPv4 CIDR"},
		{pool: "garbage", wantErr: "is not an IPv4 CIDR"},
	}
	for _, tt := range tests {
		_, gw, err := parseIPAMData(&network.IPAMData{Pool: tt.pool, Gateway: tt.gw}, false)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s %s: error = %v, want %q", tt.pool, tt.gw, err, tt.wantErr)
			}
			continue
		}
		if err != nil || gw.String() != tt.wantGW {
			t.Errorf("%s %s: got %v, %v; want %s", tt.pool, tt.gw, gw, err, tt.wantGW)
		}
	}
}

func TestNames(t *testing.T) {
	id := "3f9a1c2b7d8e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a"
	if got := bridgeName(id); got != "mynet-3f9a1c2b7" {
		t.Errorf("bridgeName = %q", got)
	}
	h, p := vethNames(id)
	if h != "mnh3f9a1c2b7d8e" || p != "mnc3f9a1c2b7d8e" {
		t.Errorf("vethNames = %q, %q", h, p)
	}
	if len(h) > maxIfName || len(bridgeName(id)) > maxIfName {
		t.Error("names exceed IFNAMSIZ")
	}
	// Short IDs from the wire must not panic.
	if got := bridgeName("ab"); got != "mynet-ab" {
		t.Errorf("bridgeName(short) = %q", got)
	}
}

// IDs that are not lowercase hex are named from their hash: never cut
// mid-rune, never holding a byte an interface name cannot, and still one
// name per ID.
func TestNamesFromOtherIDs(t *testing.T) {
	for _, id := range []string{strings.Repeat("é", 20), "ab\x00cdefghijk", "net/1", "A1B2C3D4E5F6", "a b", "", "日本語のネットワーク"} {
		br := bridgeName(id)
		h, p := vethNames(id)
		for _, name := range []string{br, h, p} {
			if err := validIfName(name); err != nil {
				t.Errorf("ID %q: name %q: %v", id, name, err)
			}
		}
		if br != bridgeName(id) || len(br) != maxIfName || len(h) != maxIfName {
			t.Errorf("ID %q: names %q %q %q, want deterministic and %d bytes", id, br, h, p, maxIfName)
		}
	}
	if bridgeName("é1") == bridgeName("é2") {
		t.Error("two IDs, one bridge name")
	}
}

func TestMACFromIPv4(t *testing.T) {
	if got := macFromIPv4(netip.MustParseAddr("10.50.0.7")).String(); got != "02:42:0a:32:00:07" {
		t.Errorf("mac = %s", got)
	}
}
