package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/mynet/mynet/driver"
)

// The private route and its client: a port published through the real
// driver (on a fake kernel) comes back from QueryPorts over a unix socket,
// selected by endpoint ID, by network ID prefix, or not at all; an unknown
// prefix is an error naming it.
func TestQueryPorts(t *testing.T) {
	d, _, sock := realStack(t)
	ctx := context.Background()
	if _, err := d.CreateEndpoint(&network.CreateEndpointRequest{NetworkID: "n1abc", EndpointID: "e1abc", Interface: &network.EndpointInterface{Address: "10.50.0.2/24"}}); err != nil {
		t.Fatal(err)
	}
	portmap := map[string]any{"com.docker.network.portmap": []any{
		map[string]any{"Proto": 6.0, "Port": 80.0, "HostPort": 8080.0, "HostPortEnd": 8080.0},
		map[string]any{"Proto": 17.0, "Port": 53.0, "HostIP": "127.0.0.1", "HostPort": 5353.0},
	}}
	if err := d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: "n1abc", EndpointID: "e1abc", Options: portmap}); err != nil {
		t.Fatal(err)
	}

	want := "e1abc n1abc 10.50.0.2 [{tcp 80 80 0.0.0.0 8080} {udp 53 53 127.0.0.1 5353}]"
	for _, q := range []*driver.PortsQuery{{}, {Endpoints: []string{"e1abc"}}, {Prefixes: []string{"n1"}}, {Prefixes: []string{"e1a"}}} {
		ans, err := QueryPorts(ctx, sock, q)
		if err != nil {
			t.Fatalf("QueryPorts(%+v): %v", q, err)
		}
		var got []string
		for _, ep := range ans.Endpoints {
			got = append(got, strings.TrimSpace(strings.Join([]string{ep.EndpointID, ep.NetworkID, ep.Address, fmt.Sprint(ep.Ports)}, " ")))
		}
		if strings.Join(got, "\n") != want {
			t.Errorf("QueryPorts(%+v) = %q, want %q", q, got, want)
		}
	}
	if ans, err := QueryPorts(ctx, sock, &driver.PortsQuery{Endpoints: []string{"other"}}); err != nil || len(ans.Endpoints) != 0 {
		t.Errorf("an endpoint mynet does not know: %v, %v; want no endpoints and no error", ans, err)
	}
	_, err := QueryPorts(ctx, sock, &driver.PortsQuery{Prefixes: []string{"zz"}})
	if err == nil || !strings.Contains(err.Error(), `no mynet endpoint or network ID starts with "zz"`) {
		t.Errorf("unknown prefix: %v", err)
	}
	if _, err := QueryPorts(ctx, filepath.Join(t.TempDir(), "none.sock"), &driver.PortsQuery{}); err == nil || !strings.Contains(err.Error(), "is it running?") {
		t.Errorf("no plugin: %v", err)
	}
}
