package driver

import (
	"encoding/json"
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
		if o.BridgeName != "" && validIfName(o.BridgeName) != nil {
			t.Fatalf("accepted bridge name %q", o.BridgeName)
		}
		if validIfacePrefix(o.IfacePrefix) != nil {
			t.Fatalf("accepted interface prefix %q", o.IfacePrefix)
		}
		for _, m := range []string{o.GWModeV4, o.GWModeV6} {
			if _, err := parseGatewayMode(m); err != nil {
				t.Fatalf("accepted gateway mode %q", m)
			}
		}
	})
}
