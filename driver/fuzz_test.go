package driver

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseNetworkOptions feeds arbitrary option maps (as the engine would
// decode them from JSON) to the parser: it must never panic, and whatever
// it accepts must be within the documented ranges.
func FuzzParseNetworkOptions(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"com.docker.network.generic":{"com.docker.network.driver.mtu":"1400","com.docker.network.bridge.name":"br0"}}`,
		`{"com.docker.network.internal":true,"com.docker.network.enable_ipv6":"true"}`,
		`{"com.docker.network.generic":{"com.docker.network.bridge.gateway_mode_ipv4":"routed","com.docker.network.bridge.trusted_host_interfaces":"eth0:eth1"}}`,
		`{"com.docker.network.generic":{"com.docker.network.host_ipv4":"192.0.2.1","com.docker.network.bridge.enable_icc":"0"}}`,
		`{"com.docker.network.generic":{"mynet.x":1}}`,
		`{"com.docker.network.generic":[1]}`,
		// The kernel cuts a name at a NUL: docker0\u0000 names docker0.
		`{"com.docker.network.generic":{"com.docker.network.bridge.name":"docker0\u0000"}}`,
		`{"com.docker.network.generic":{"com.docker.network.bridge.name":"my\u0000br"}}`,
		`{"com.docker.network.generic":{"com.docker.network.bridge.trusted_host_interfaces":"eth0\u0000:+:!eth1"}}`,
		`{"com.docker.network.generic":{"com.docker.network.container_iface_prefix":"e\u0000"}}`,
		`{"com.docker.network.generic":{"com.docker.network.host_ipv4":"255.255.255.255"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		o, err := parseNetworkOptions(m)
		if err != nil {
			return
		}
		if o.MTU < minMTU || o.MTU > maxMTU {
			t.Fatalf("accepted MTU %d", o.MTU)
		}
		if o.BridgeName != "" && !kernelKeepsName(o.BridgeName) || strings.ContainsAny(o.BridgeName, "+!") {
			t.Fatalf("accepted bridge name %q", o.BridgeName)
		}
		if !kernelKeepsName(o.IfacePrefix) {
			t.Fatalf("accepted interface prefix %q", o.IfacePrefix)
		}
		for _, ifc := range o.Trusted {
			if !kernelKeepsName(ifc) || strings.ContainsAny(ifc, "+!") {
				t.Fatalf("accepted trusted interface %q", ifc)
			}
		}
		for _, a := range []netip.Addr{o.HostIPv4, o.HostIPv6} {
			if a.IsValid() && !a.IsGlobalUnicast() {
				t.Fatalf("accepted SNAT source %s", a)
			}
		}
		for _, m := range []string{o.GWModeV4, o.GWModeV6} {
			if _, err := parseGatewayMode(m); err != nil {
				t.Fatalf("accepted gateway mode %q", m)
			}
		}
	})
}

// kernelKeepsName is the kernel's dev_valid_name, written out apart from
// validIfName, plus what mynet adds: bytes the kernel keeps as given
// (no NUL, which cuts the name) and printable ASCII only.
func kernelKeepsName(s string) bool {
	if len(s) == 0 || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e || c == '/' || c == ':' {
			return false
		}
	}
	return true
}

// FuzzNames: whatever ID the wire brings, the derived names are names the
// kernel keeps as given, the same for the same ID, and the engine's hex
// IDs keep the names they always had.
func FuzzNames(f *testing.F) {
	for _, id := range []string{"", "ab", "3f9a1c2b7d8e4f5a6b7c8d9e0f1a2b3c", "ééééééééé", "docker0\x00", "\x00\x00\x00", "a/b:c d", "ABCDEF0123456"} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		br := bridgeName(id)
		h, p := vethNames(id)
		for _, name := range []string{br, h, p} {
			if !kernelKeepsName(name) {
				t.Fatalf("ID %q: name %q", id, name)
			}
		}
		if br2 := bridgeName(id); br2 != br {
			t.Fatalf("ID %q: names %q then %q", id, br, br2)
		}
		if p := short(id, 9); p != "" && isLowerHex(p) && br != bridgePrefix+p {
			t.Fatalf("hex ID %q named %q", id, br)
		}
	})
}
