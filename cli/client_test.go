package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ipamapi "github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/driver"
	"github.com/mynet/mynet/internal/fake"
	"github.com/mynet/mynet/ipam"
	"github.com/mynet/mynet/plugin"
)

// The client's tests run against the real plugin handler, driver (on a
// fake kernel) and IPAM: test-only imports; the CLI itself links none of
// them.

// realStack serves mynet's real driver (on a fake kernel) and IPAM, over
// one store, on a unix socket, with network n1abc on 10.50.0.0/24. The
// socket accepts connections when it returns; the server stops with the
// test.
func realStack(t *testing.T) (*driver.Driver, *ipam.IPAM, string) {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	entry := logrus.NewEntry(log)
	st := fake.NewStore()
	k := fake.NewKernel()
	d, err := driver.New(k, fake.Firewall{}, nil, st, entry, driver.WithPortReserver(k))
	if err != nil {
		t.Fatal(err)
	}
	am, err := ipam.New(st, ipam.Config{}, entry)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateNetwork(&network.CreateNetworkRequest{NetworkID: "n1abc", IPv4Data: []*network.IPAMData{{Pool: "10.50.0.0/24", Gateway: "10.50.0.1/24"}}}); err != nil {
		t.Fatal(err)
	}
	return d, am, serveTest(t, plugin.NewHandler(d, am, entry))
}

// serveTest serves h on a new unix socket until the test ends and returns
// the socket's path once it accepts connections.
func serveTest(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "mynet.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- plugin.Serve(ctx, sock, h) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("unix", sock)
		if err == nil {
			_ = c.Close()
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatalf("serving on %s: %v", sock, err)
		}
	}
}

// The attach routes and their client over a unix socket, with the real
// driver (fake kernel) and IPAM: attach, list, refuse, detach; a socket
// that is not mynet's is ErrNotMynet.
func TestClientAttach(t *testing.T) {
	d, am, sock := realStack(t)
	d.UseIPAM(am)
	pool, err := am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "10.50.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cl := NewClient(sock)

	req := &api.AttachRequest{NetworkID: "n1abc", Address: "10.50.0.77", Name: "vm1", PID: 42, Netns: "net:[1]", Ifname: "eth0",
		Ports: []api.PortBinding{{Proto: 6, Port: 80, HostPort: 8080}}}
	ans, err := cl.Attach(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Address != "10.50.0.77/24" || ans.Gateway != "10.50.0.1" || len(ans.Ports) != 1 {
		t.Errorf("attach answered %+v", ans)
	}
	if _, err := am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: pool.PoolID, Address: "10.50.0.77", Options: map[string]string{"x": "y"}}); !errors.Is(err, ipam.ErrAddressInUse) {
		t.Errorf("the attached address from the engine's side: %v, want in use", err)
	}
	ls, err := cl.Endpoints(ctx, &api.EndpointsQuery{Network: "n1"})
	if err != nil || len(ls.Endpoints) != 1 || ls.Endpoints[0].Origin != "attach" || ls.Endpoints[0].Attach.Name != "vm1" || len(ls.Networks) != 1 {
		t.Errorf("endpoints: %+v, %v", ls, err)
	}
	if _, err := cl.Attach(ctx, req); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("the same namespace again: %v", err)
	}
	det, err := cl.Detach(ctx, &api.DetachRequest{NetworkID: "n1abc", Netns: "net:[1]"})
	if err != nil || len(det.Endpoints) != 1 || det.Endpoints[0].ID != ans.EndpointID {
		t.Errorf("detach: %+v, %v", det, err)
	}
	if _, err := cl.Detach(ctx, &api.DetachRequest{NetworkID: "n1abc", Netns: "net:[1]"}); err == nil || !strings.Contains(err.Error(), "no attachment of namespace net:[1]") {
		t.Errorf("detach again: %v", err)
	}

	// Something else on a socket: no such route.
	other := serveTest(t, http.NotFoundHandler())
	if _, err := NewClient(other).Endpoints(ctx, &api.EndpointsQuery{}); !errors.Is(err, ErrNotMynet) {
		t.Errorf("a socket that is not mynet's: %v, want ErrNotMynet", err)
	}
}

// The attach route checks what the CLI checks: anyone who reaches the
// socket can send it anything. Each hostile request is refused with a
// message naming the field, and leaves no endpoint and no lease.
func TestAttachRouteRefusesHostileRequests(t *testing.T) {
	d, am, sock := realStack(t)
	d.UseIPAM(am)
	pool, err := am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "10.50.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cl := NewClient(sock)
	good := api.AttachRequest{NetworkID: "n1abc", Address: "10.50.0.77", Container: "c0ffee", Name: "vm1", PID: 42,
		Netns: "net:[1]", Ifname: "eth0"}
	tests := []struct {
		name    string
		edit    func(r *api.AttachRequest)
		wantErr string
	}{
		{"negative PID", func(r *api.AttachRequest) { r.PID = -5 }, "PID -5 is not a process ID"},
		{"PID 0", func(r *api.AttachRequest) { r.PID = 0 }, "PID 0 is not a process ID"},
		{"ifname with a slash", func(r *api.AttachRequest) { r.Ifname = "a/b" }, `interface name "a/b"`},
		{"ifname with a NUL", func(r *api.AttachRequest) { r.Ifname = "eth0\x00" }, `interface name "eth0\x00"`},
		{"ifname of 17 bytes", func(r *api.AttachRequest) { r.Ifname = "seventeen-chars-x" }, "1 to 15 bytes"},
		{"ifname with a newline", func(r *api.AttachRequest) { r.Ifname = "eth\n0" }, "printable ASCII only"},
		{"ifname empty", func(r *api.AttachRequest) { r.Ifname = "" }, "1 to 15 bytes"},
		{"name with a newline", func(r *api.AttachRequest) { r.Name = "vm1\nlevel=error msg=forged" }, "container name"},
		{"name with a NUL", func(r *api.AttachRequest) { r.Name = "vm\x001" }, "container name"},
		{"name with a slash", func(r *api.AttachRequest) { r.Name = "a/b" }, "container name"},
		{"container not hex", func(r *api.AttachRequest) { r.Container = "../../etc" }, "container ID"},
		{"netns not an identity", func(r *api.AttachRequest) { r.Netns = "net:[1]\n" }, "namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := good
			tt.edit(&req)
			if _, err := cl.Attach(ctx, &req); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("attach = %v, want an error containing %q", err, tt.wantErr)
			}
			ls, err := cl.Endpoints(ctx, &api.EndpointsQuery{})
			if err != nil || len(ls.Endpoints) != 0 {
				t.Fatalf("endpoints after a refused attach: %+v, %v", ls, err)
			}
		})
	}
	// Nothing leased: the engine can still have the address.
	if _, err := am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: pool.PoolID, Address: "10.50.0.77"}); err != nil {
		t.Errorf("the address after refused attaches: %v", err)
	}
}

// The private route and its client: a port published through the real
// driver (on a fake kernel) comes back from Client.Ports over a unix socket,
// selected by endpoint ID, by network ID prefix, or not at all; an unknown
// prefix is an error naming it.
func TestClientPorts(t *testing.T) {
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
	for _, q := range []*api.PortsQuery{{}, {Endpoints: []string{"e1abc"}}, {Prefixes: []string{"n1"}}, {Prefixes: []string{"e1a"}}} {
		ans, err := NewClient(sock).Ports(ctx, q)
		if err != nil {
			t.Fatalf("Ports(%+v): %v", q, err)
		}
		var got []string
		for _, ep := range ans.Endpoints {
			got = append(got, strings.TrimSpace(strings.Join([]string{ep.EndpointID, ep.NetworkID, ep.Address, fmt.Sprint(ep.Ports)}, " ")))
		}
		if strings.Join(got, "\n") != want {
			t.Errorf("Ports(%+v) = %q, want %q", q, got, want)
		}
	}
	if ans, err := NewClient(sock).Ports(ctx, &api.PortsQuery{Endpoints: []string{"other"}}); err != nil || len(ans.Endpoints) != 0 {
		t.Errorf("an endpoint mynet does not know: %v, %v; want no endpoints and no error", ans, err)
	}
	_, err := NewClient(sock).Ports(ctx, &api.PortsQuery{Prefixes: []string{"zz"}})
	if err == nil || !strings.Contains(err.Error(), `no mynet endpoint or network ID starts with "zz"`) {
		t.Errorf("unknown prefix: %v", err)
	}
	if _, err := NewClient(filepath.Join(t.TempDir(), "none.sock")).Ports(ctx, &api.PortsQuery{}); err == nil || !strings.Contains(err.Error(), "is it running?") {
		t.Errorf("no plugin: %v", err)
	}
}
