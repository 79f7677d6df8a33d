package driver

import (
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/mynet/mynet/internal/fake"
)

// Pools and gateways that Docker's default IPAM or a hand-made request
// sends straight to the driver: special-purpose ranges and gateways on a
// reserved address are refused; point-to-point subnets keep both
// addresses.
func TestCreateNetworkRefusesSpecialPoolsAndGateways(t *testing.T) {
	tests := []struct {
		name      string
		pool, gw  string
		pool6, g6 string
		wantErr   string // "" accepted
	}{
		{name: "loopback", pool: "127.0.0.0/8", gw: "127.0.0.2/8", wantErr: "overlaps 127.0.0.0/8 (loopback"},
		{name: "loopback part", pool: "127.5.0.0/24", wantErr: "overlaps 127.0.0.0/8"},
		{name: "half the space", pool: "128.0.0.0/1", gw: "128.0.0.1/1", wantErr: "subnet 128.0.0.0/1 overlaps"},
		{name: "this network", pool: "0.0.0.0/8", wantErr: `"this network"`},
		{name: "link-local", pool: "169.254.0.0/16", wantErr: "link-local"},
		{name: "multicast", pool: "239.1.0.0/16", wantErr: "multicast"},
		{name: "broadcast", pool: "255.255.255.252/30", wantErr: "broadcast address 255.255.255.255"},
		{name: "v6 loopback", pool6: "::1/128", wantErr: "overlaps ::1/128"},
		{name: "v6 unspecified", pool6: "::/64", wantErr: "overlaps ::/128"},
		{name: "v6 everything", pool6: "::/0", wantErr: "overlaps ::/128"},
		{name: "v6 link-local", pool6: "fe80::/64", g6: "fe80::1/64", wantErr: "link-local"},
		{name: "v6 multicast", pool6: "ff05::/64", wantErr: "multicast"},
		{name: "v6 mapped", pool6: "::ffff:0:0/96", wantErr: "not an IPv6 CIDR"},
		{name: "gateway network address", pool: "10.50.0.0/24", gw: "10.50.0.0/24", wantErr: "gateway 10.50.0.0 is the network address of subnet 10.50.0.0/24"},
		{name: "gateway broadcast", pool: "10.50.0.0/24", gw: "10.50.0.255/24", wantErr: "gateway 10.50.0.255 is the broadcast address"},
		{name: "gateway broadcast /30", pool: "10.50.0.0/30", gw: "10.50.0.3/30", wantErr: "broadcast address"},
		{name: "gateway anycast", pool6: "fd00:1::/64", g6: "fd00:1::/64", wantErr: "subnet-router anycast address"},
		{name: "gateway ok", pool: "10.50.0.0/24", gw: "10.50.0.254/24"},
		{name: "point-to-point /31", pool: "10.50.0.0/31", gw: "10.50.0.0/31"},
		{name: "point-to-point /31 high", pool: "10.50.0.0/31", gw: "10.50.0.1/31"},
		{name: "single /32", pool: "10.50.0.7/32", gw: "10.50.0.7/32"},
		{name: "v6 /127", pool6: "fd00:1::/127", g6: "fd00:1::/127"},
		{name: "v6 ok", pool6: "fd00:1::/64", g6: "fd00:1::1/64"},
		{name: "no gateway", pool: "10.50.0.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Driver{fw6: newFakeFirewall()}
			req := &network.CreateNetworkRequest{NetworkID: "n1"}
			if tt.pool != "" {
				req.IPv4Data = []*network.IPAMData{{Pool: tt.pool, Gateway: tt.gw}}
			}
			if tt.pool6 != "" {
				req.IPv6Data = []*network.IPAMData{{Pool: tt.pool6, Gateway: tt.g6}}
			}
			_, err := d.newNetwork(req)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// An endpoint sent straight to the driver at the gateway, the network or
// the broadcast address is refused, and leaves no link and no record.
func TestCreateEndpointRefusesReservedAddresses(t *testing.T) {
	k, st := fake.NewKernel(), newMemStore()
	d, err := New(k, newFakeFirewall(), newFakeFirewall(), st, quietLog(), WithPortReserver(k))
	if err != nil {
		t.Fatal(err)
	}
	req := createReq(nil)
	req.IPv6Data = []*network.IPAMData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}}
	if err := d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	before, _ := k.LinkList()
	tests := []struct{ addr, addr6, wantErr string }{
		{"10.50.0.1/24", "fd00:50::2/64", "endpoint address 10.50.0.1 is the gateway"},
		{"10.50.0.0/24", "fd00:50::2/64", "is the network address of subnet 10.50.0.0/24"},
		{"10.50.0.255/24", "fd00:50::2/64", "is the broadcast address"},
		{"10.50.0.2/24", "fd00:50::1/64", "endpoint address fd00:50::1 is the gateway"},
		{"10.50.0.2/24", "fd00:50::/64", "subnet-router anycast address"},
	}
	for _, tt := range tests {
		ep := epReq(tt.addr, "")
		ep.Interface.AddressIPv6 = tt.addr6
		if _, err := d.CreateEndpoint(ep); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("endpoint %s %s: %v, want %q", tt.addr, tt.addr6, err, tt.wantErr)
		}
	}
	if after, _ := k.LinkList(); len(after) != len(before) || st.len(endpointsBucket) != 0 {
		t.Errorf("after refused endpoints: %d links (was %d), %d records", len(after), len(before), st.len(endpointsBucket))
	}
	ep := epReq("10.50.0.2/24", "")
	ep.Interface.AddressIPv6 = "fd00:50::2/64"
	if _, err := d.CreateEndpoint(ep); err != nil {
		t.Errorf("a usable address: %v", err)
	}
}

// host_ipv4 and host_ipv6 are the source of SNAT: only a unicast address
// of the host makes sense.
func TestHostAddrOptions(t *testing.T) {
	for _, tt := range []struct{ key, val, wantErr string }{
		{optHostIPv4, "0.0.0.0", "not a unicast address"},
		{optHostIPv4, "255.255.255.255", "not a unicast address"},
		{optHostIPv4, "224.0.0.1", "not a unicast address"},
		{optHostIPv4, "127.0.0.1", "not a unicast address"},
		{optHostIPv4, "169.254.1.1", "not a unicast address"},
		{optHostIPv4, "240.0.0.1", "special-purpose range"},
		{optHostIPv4, "0.1.2.3", "special-purpose range"},
		{optHostIPv6, "::", "not a unicast address"},
		{optHostIPv6, "::1", "not a unicast address"},
		{optHostIPv6, "ff02::1", "not a unicast address"},
		{optHostIPv6, "fe80::1", "not a unicast address"},
		{optHostIPv6, "::ffff:192.0.2.1", "special-purpose range"},
		{optHostIPv4, "192.0.2.7", ""},
		{optHostIPv4, "10.0.0.1", ""},
		{optHostIPv6, "2001:db8::7", ""},
		{optHostIPv6, "fd00::7", ""},
	} {
		_, err := parseNetworkOptions(map[string]any{keyGeneric: map[string]any{tt.key: tt.val}})
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s=%s: %v", tt.key, tt.val, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s=%s: %v, want %q", tt.key, tt.val, err, tt.wantErr)
		}
	}
}
