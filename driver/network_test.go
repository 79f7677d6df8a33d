package driver

import (
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
)

func TestNewNetworkRejectsBadRequests(t *testing.T) {
	d := &Driver{}
	v4 := []*network.IPAMData{{Pool: "10.50.0.0/24", Gateway: "10.50.0.1/24"}}
	tests := []struct {
		name    string
		req     network.CreateNetworkRequest
		wantErr string
	}{
		{"no id", network.CreateNetworkRequest{IPv4Data: v4}, "NetworkID is empty"},
		{"no subnet", network.CreateNetworkRequest{NetworkID: "n1"}, "no subnet: mynet needs an IPv4 subnet"},
		{"two v4", network.CreateNetworkRequest{NetworkID: "n1", IPv4Data: append(v4, v4[0])}, "one IPv4 subnet per network, got 2"},
		{"v6 pool in v4 data", network.CreateNetworkRequest{NetworkID: "n1", IPv4Data: []*network.IPAMData{{Pool: "fd00::/64"}}}, "is not an IPv4 CIDR"},
		{"ipv6 without ip6tables", network.CreateNetworkRequest{NetworkID: "n1", IPv4Data: v4, IPv6Data: []*network.IPAMData{{Pool: "fd00::/64", Gateway: "fd00::1/64"}}}, "needs ip6tables"},
		{"ipv6 with a small MTU", network.CreateNetworkRequest{NetworkID: "n1", IPv6Data: []*network.IPAMData{{Pool: "fd00::/64"}},
			Options: map[string]any{keyGeneric: map[string]any{optMTU: "1200"}}}, "IPv6 needs an MTU of at least 1280"},
		{"gateway outside", network.CreateNetworkRequest{NetworkID: "n1", IPv4Data: []*network.IPAMData{{Pool: "10.57.0.0/24", Gateway: "10.58.0.1/24"}}}, "outside subnet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.newNetwork(&tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
