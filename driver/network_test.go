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
		{"no v4", network.CreateNetworkRequest{NetworkID: "n1"}, "exactly one IPv4 subnet, got 0"},
		{"two v4", network.CreateNetworkRequest{NetworkID: "n1", IPv4Data: append(v4, v4[0])}, "exactly one IPv4 subnet, got 2"},
		{"ipv6", network.CreateNetworkRequest{NetworkID: "n1", IPv4Data: v4, Options: map[string]any{keyIPv6: true}}, "IPv6 is not supported"},
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
