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
