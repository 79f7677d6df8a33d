package plugin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	ipamapi "github.com/docker/go-plugins-helpers/ipam"

	"github.com/mynet/mynet/driver"
	"github.com/mynet/mynet/ipam"
)

// The attach routes and their client over a unix socket, with the real
// driver (fake kernel) and IPAM: attach, list, refuse, detach; a socket
// that is not mynet's is ErrNotMynet.
func TestAttachRoutes(t *testing.T) {
	d, am, sock := realStack(t)
	d.UseIPAM(am)
	pool, err := am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "10.50.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cl := NewClient(sock)

	req := &driver.AttachRequest{NetworkID: "n1abc", Address: "10.50.0.77", Name: "vm1", PID: 42, Netns: "net:[1]", Ifname: "eth0",
		Ports: []driver.PortBinding{{Proto: 6, Port: 80, HostPort: 8080}}}
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
	ls, err := cl.Endpoints(ctx, &driver.EndpointsQuery{Network: "n1"})
	if err != nil || len(ls.Endpoints) != 1 || ls.Endpoints[0].Origin != "attach" || ls.Endpoints[0].Attach.Name != "vm1" || len(ls.Networks) != 1 {
		t.Errorf("endpoints: %+v, %v", ls, err)
	}
	if _, err := cl.Attach(ctx, req); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("the same namespace again: %v", err)
	}
	det, err := cl.Detach(ctx, &driver.DetachRequest{NetworkID: "n1abc", Netns: "net:[1]"})
	if err != nil || len(det.Endpoints) != 1 || det.Endpoints[0].ID != ans.EndpointID {
		t.Errorf("detach: %+v, %v", det, err)
	}
	if _, err := cl.Detach(ctx, &driver.DetachRequest{NetworkID: "n1abc", Netns: "net:[1]"}); err == nil || !strings.Contains(err.Error(), "no attachment of namespace net:[1]") {
		t.Errorf("detach again: %v", err)
	}

	// Something else on a socket: no such route.
	other := serveTest(t, http.NotFoundHandler())
	if _, err := NewClient(other).Endpoints(ctx, &driver.EndpointsQuery{}); !errors.Is(err, ErrNotMynet) {
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
	good := driver.AttachRequest{NetworkID: "n1abc", Address: "10.50.0.77", Container: "c0ffee", Name: "vm1", PID: 42,
		Netns: "net:[1]", Ifname: "eth0"}
	tests := []struct {
		name    string
		edit    func(r *driver.AttachRequest)
		wantErr string
	}{
		{"negative PID", func(r *driver.AttachRequest) { r.PID = -5 }, "PID -5 is not a process ID"},
		{"PID 0", func(r *driver.AttachRequest) { r.PID = 0 }, "PID 0 is not a process ID"},
		{"ifname with a slash", func(r *driver.AttachRequest) { r.Ifname = "a/b" }, `interface name "a/b"`},
		{"ifname with a NUL", func(r *driver.AttachRequest) { r.Ifname = "eth0\x00" }, `interface name "eth0\x00"`},
		{"ifname of 17 bytes", func(r *driver.AttachRequest) { r.Ifname = "seventeen-chars-x" }, "1 to 15 bytes"},
		{"ifname with a newline", func(r *driver.AttachRequest) { r.Ifname = "eth\n0" }, "printable ASCII only"},
		{"ifname empty", func(r *driver.AttachRequest) { r.Ifname = "" }, "1 to 15 bytes"},
		{"name with a newline", func(r *driver.AttachRequest) { r.Name = "vm1\nlevel=error msg=forged" }, "container name"},
		{"name with a NUL", func(r *driver.AttachRequest) { r.Name = "vm\x001" }, "container name"},
		{"name with a slash", func(r *driver.AttachRequest) { r.Name = "a/b" }, "container name"},
		{"container not hex", func(r *driver.AttachRequest) { r.Container = "../../etc" }, "container ID"},
		{"netns not an identity", func(r *driver.AttachRequest) { r.Netns = "net:[1]\n" }, "namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := good
			tt.edit(&req)
			if _, err := cl.Attach(ctx, &req); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("attach = %v, want an error containing %q", err, tt.wantErr)
			}
			ls, err := cl.Endpoints(ctx, &driver.EndpointsQuery{})
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
