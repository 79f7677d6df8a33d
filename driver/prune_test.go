package driver

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	ipamapi "github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/fake"
	"github.com/mynet/mynet/ipam"
	"github.com/mynet/mynet/ports"
)

// publishedEndpoint gives the rig an endpoint as the engine makes one: the
// address leased in mynet's IPAM, then CreateEndpoint with a published
// port, Join and ProgramExternalConnectivity.
func (r *attachRig) publishedEndpoint(t *testing.T, addr string, hostPort int) {
	t.Helper()
	if _, err := r.am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: r.pool, Address: addr, Options: map[string]string{"x": "y"}}); err != nil {
		t.Fatal(err)
	}
	req := epReq(addr+"/24", "")
	req.Options = portmap(binding(6, 80, "", hostPort, hostPort))
	if _, err := r.d.CreateEndpoint(req); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID, SandboxKey: "/var/run/docker/netns/x"}); err != nil {
		t.Fatal(err)
	}
	if err := r.d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: req.Options}); err != nil {
		t.Fatal(err)
	}
}

// age makes every record older than pruneMinAge.
func (r *attachRig) age() {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	old := time.Now().Add(-2 * pruneMinAge)
	for _, n := range r.d.networks {
		n.Created = old
	}
	for _, ep := range r.d.endpoints {
		ep.Created = old
		if ep.Attach != nil {
			ep.Attach.Created = old
		}
	}
}

// A network the engine forgot goes with everything it had: endpoints,
// attachments, host ports, rules, bridge, pool; its subnet is free again.
func TestPruneNetwork(t *testing.T) {
	r := newAttachRig(t)
	r.publishedEndpoint(t, "10.50.0.9", 8080)
	if _, err := r.d.Attach(attachReq("1", "10.50.0.77", api.PortBinding{Proto: 6, Port: 80, HostPort: 8081})); err != nil {
		t.Fatal(err)
	}
	r.age()
	ans, err := r.d.Prune(&api.PruneRequest{Networks: []api.PruneNetwork{{ID: testNetID, ReleasePools: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Networks) != 1 || len(ans.Endpoints) != 2 || len(ans.Pools) != 1 || len(ans.Kept) != 0 {
		t.Errorf("answer %+v, want the network, its two endpoints and its pool", ans)
	}
	r.assertClean(t, "")
	if _, err := r.k.LinkByName("mynet-a1b2c3d4e"); err == nil {
		t.Error("bridge left")
	}
	if len(r.fw.nets) != 0 || r.st.len(networksBucket) != 0 {
		t.Errorf("rules of %d bridges and %d network records left", len(r.fw.nets), r.st.len(networksBucket))
	}
	if _, err := r.am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "10.50.0.0/24"}); err != nil {
		t.Errorf("the pruned network's subnet is not free: %v", err)
	}
	if again, err := r.d.Prune(&api.PruneRequest{Networks: []api.PruneNetwork{{ID: testNetID, ReleasePools: true}}}); err != nil || len(again.Networks) != 0 {
		t.Errorf("second prune: %+v, %v; want nothing done, no error", again, err)
	}
}

// Without ReleasePools (a network of Docker's IPAM: a pool of that subnet
// is another network's), the pool stays.
func TestPruneNetworkKeepsOthersPool(t *testing.T) {
	r := newAttachRig(t)
	r.age()
	if _, err := r.d.Prune(&api.PruneRequest{Networks: []api.PruneNetwork{{ID: testNetID}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.am.PoolOf(netip.MustParsePrefix("10.50.0.0/24")); !ok {
		t.Error("the pool was released without ReleasePools")
	}
}

// A stale endpoint of a network that stays releases its address and host
// port; the network stays.
func TestPruneEndpoint(t *testing.T) {
	r := newAttachRig(t)
	r.publishedEndpoint(t, "10.50.0.9", 8080)
	r.age()
	ans, err := r.d.Prune(&api.PruneRequest{Endpoints: []api.PruneEndpoint{{ID: testEpID, ReleaseLease: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Endpoints) != 1 || len(ans.Networks) != 0 {
		t.Errorf("answer %+v, want the endpoint only", ans)
	}
	r.assertClean(t, "10.50.0.9")
	if _, ok := r.d.networks[testNetID]; !ok {
		t.Error("the network went with its endpoint")
	}
}

// Prune leaves alone what it can see is in use or may be new, whatever
// the CLI says: an endpoint whose container end is in a live namespace
// (and its network), and records younger than pruneMinAge.
func TestPruneKeepsLiveAndYoung(t *testing.T) {
	r := newAttachRig(t)
	r.publishedEndpoint(t, "10.50.0.9", 8080)
	req := &api.PruneRequest{Networks: []api.PruneNetwork{{ID: testNetID, ReleasePools: true}},
		Endpoints: []api.PruneEndpoint{{ID: testEpID, ReleaseLease: true}}}
	ans, err := r.d.Prune(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Kept) != 2 || !strings.Contains(ans.Kept[0].Reason, "created") {
		t.Errorf("young records: kept %+v, want both, as young", ans.Kept)
	}
	r.age()
	moveOut(t, r.k, r.d.endpoints[testEpID].PeerVeth)
	if ans, err = r.d.Prune(req); err != nil {
		t.Fatal(err)
	}
	if len(ans.Kept) != 2 || !strings.Contains(ans.Kept[1].Reason, "live network namespace") {
		t.Errorf("live endpoint: kept %+v, want the endpoint and its network, as live", ans.Kept)
	}
	if len(r.d.endpoints) != 1 || len(r.d.networks) != 1 || !r.leased(t, "10.50.0.9") {
		t.Error("a live endpoint or its network or lease was pruned")
	}
}

// The IPAM's refusal of a held subnet names the network holding it and
// the fix, when the engine forgot it.
func TestHeldSubnetNamesNetwork(t *testing.T) {
	r := newAttachRig(t)
	r.am.UseNetworks(r.d)
	_, err := r.am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "10.50.0.0/24"})
	want := `subnet 10.50.0.0/24 is already used by mynet network a1b2c3d4e5f6; if the engine no longer has that network (docker network ls shows no a1b2c3d4e5f6), run "mynet prune"`
	if err == nil || err.Error() != want || !errors.Is(err, ipam.ErrPoolOverlap) {
		t.Errorf("RequestPool of a held subnet: %v\nwant %s (ErrPoolOverlap)", err, want)
	}
	_, err = r.am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "10.50.0.0/16"})
	if !errors.Is(err, ipam.ErrPoolOverlap) || !strings.Contains(err.Error(), "overlaps subnet 10.50.0.0/24 of mynet network a1b2c3d4e5f6") || !strings.Contains(err.Error(), "mynet prune") {
		t.Errorf("RequestPool of an overlapping subnet: %v", err)
	}
	err = r.d.CreateNetwork(&network.CreateNetworkRequest{NetworkID: "ff" + testNetID[2:],
		IPv4Data: []*network.IPAMData{{Pool: "10.50.0.0/24", Gateway: "10.50.0.1/24"}}})
	if err == nil || !strings.Contains(err.Error(), `of mynet network a1b2c3d4e5f6 (bridge mynet-a1b2c3d4e); if the engine no longer has that network`) {
		t.Errorf("CreateNetwork over a held subnet (Docker's IPAM): %v", err)
	}
}

// A host port refused because a (maybe forgotten) mynet endpoint holds it
// names the endpoint and the fix.
func TestHeldPortNamesEndpoint(t *testing.T) {
	r := newAttachRig(t)
	r.d.ports = ports.NewAllocator(ports.NewMemReserver(), ports.LocalPortRange)
	r.publishedEndpoint(t, "10.50.0.9", 8080)
	_, err := r.d.Attach(attachReq("1", "10.50.0.77", api.PortBinding{Proto: 6, Port: 80, HostPort: 8080}))
	var inUse *ports.InUseError
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), `8080/tcp on 0.0.0.0 is already in use, by mynet endpoint e1e2e3e4e5e6; if the engine no longer has its container (removed while mynet was down), run "mynet prune"`) {
		t.Errorf("attach on a held port: %v", err)
	}
}

// moveOut takes a container end out of the host namespace, as the engine
// does when the container starts.
func moveOut(t *testing.T, k *fake.Kernel, name string) {
	t.Helper()
	if err := k.MoveOut(name); err != nil {
		t.Fatal(err)
	}
}
