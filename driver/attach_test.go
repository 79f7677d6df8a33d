package driver

import (
	"errors"
	"strings"
	"testing"
	"time"

	ipamapi "github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/fake"
	"github.com/mynet/mynet/ipam"
)

// attachRig is a driver over a fake kernel with mynet's real IPAM holding
// the test network's pool. The IPAM has a store of its own, so that a
// failure injected into the driver's store hits the driver's writes.
type attachRig struct {
	d    *Driver
	am   *ipam.IPAM
	k    *fake.Kernel
	st   *memStore
	fw   *fakeFirewall
	pool string
}

func newAttachRig(t *testing.T) *attachRig {
	t.Helper()
	r := &attachRig{k: fake.NewKernel(), st: newMemStore(), fw: newFakeFirewall()}
	var err error
	if r.d, err = New(r.k, r.fw, nil, r.st, quietLog(), WithPortReserver(r.k)); err != nil {
		t.Fatal(err)
	}
	if r.am, err = ipam.New(newMemStore(), ipam.Config{DefaultPools: []ipam.PoolSpec{}}, quietLog()); err != nil {
		t.Fatal(err)
	}
	r.d.UseIPAM(r.am)
	p, err := r.am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "10.50.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	r.pool = p.PoolID
	if _, err := r.am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: r.pool,
		Options: map[string]string{"RequestAddressType": "com.docker.network.gateway"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.d.CreateNetwork(createReq(nil)); err != nil {
		t.Fatal(err)
	}
	return r
}

func attachReq(netns, addr string, ports ...api.PortBinding) *api.AttachRequest {
	return &api.AttachRequest{NetworkID: testNetID, Address: addr, Container: "c0ffee" + netns, Name: "vm-" + netns,
		PID: 4242, Netns: "net:[" + netns + "]", Ifname: "eth0", Ports: ports}
}

// leased reports whether addr is leased, leaving the IPAM as it was.
func (r *attachRig) leased(t *testing.T, addr string) bool {
	t.Helper()
	_, err := r.am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: r.pool, Address: addr, Options: map[string]string{"x": "y"}})
	if errors.Is(err, ipam.ErrAddressInUse) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = r.am.ReleaseAddress(&ipamapi.ReleaseAddressRequest{PoolID: r.pool, Address: addr})
	return false
}

// assertClean checks that no attachment is left anywhere: links, records,
// memory, rules, host ports, the lease of addr.
func (r *attachRig) assertClean(t *testing.T, addr string) {
	t.Helper()
	ls, _ := r.k.LinkList()
	for _, l := range ls {
		if strings.HasPrefix(l.Attrs().Name, hostVethPrefix) || strings.HasPrefix(l.Attrs().Name, peerVethPrefix) {
			t.Errorf("veth %s left", l.Attrs().Name)
		}
	}
	if n := r.st.len(endpointsBucket); n != 0 {
		t.Errorf("%d endpoint records left", n)
	}
	if len(r.d.endpoints) != 0 {
		t.Errorf("%d endpoints left in memory", len(r.d.endpoints))
	}
	if got := r.fw.published(); len(got) != 0 {
		t.Errorf("port rules left: %v", got)
	}
	if addr != "" && r.leased(t, addr) {
		t.Errorf("address %s still leased", addr)
	}
}

func TestAttachDetach(t *testing.T) {
	r := newAttachRig(t)
	ans, err := r.d.Attach(attachReq("1", "10.50.0.77", api.PortBinding{Proto: 6, Port: 80, HostPort: 8080}))
	if err != nil {
		t.Fatal(err)
	}
	want := api.AttachAnswer{EndpointID: ans.EndpointID, NetworkID: testNetID, Bridge: "mynet-a1b2c3d4e", Veth: ans.Veth,
		Address: "10.50.0.77/24", Gateway: "10.50.0.1", MAC: "02:42:0a:32:00:4d", MTU: 1500, Ports: ans.Ports}
	if ans.Veth != "mnc"+ans.EndpointID[:12] || len(ans.EndpointID) != 64 {
		t.Errorf("endpoint %q, veth %q: want a 64-hex ID and the veth named after it", ans.EndpointID, ans.Veth)
	}
	if got := *ans; got.Address != want.Address || got.Gateway != want.Gateway || got.MAC != want.MAC || got.MTU != want.MTU || got.Bridge != want.Bridge {
		t.Errorf("answer %+v, want %+v", got, want)
	}
	if len(ans.Ports) != 1 || ans.Ports[0].HostPort != 8080 || ans.Ports[0].Port != 80 {
		t.Errorf("ports %+v, want 8080->80", ans.Ports)
	}
	if !r.leased(t, "10.50.0.77") {
		t.Error("the attached address is not leased: the engine could hand it out")
	}
	if got := r.fw.published(); len(got) != 1 {
		t.Errorf("port rules %v, want one", got)
	}

	// The next one gets the next free address; the same namespace again is refused.
	ans2, err := r.d.Attach(attachReq("2", ""))
	if err != nil {
		t.Fatal(err)
	}
	if ans2.Address != "10.50.0.2/24" {
		t.Errorf("automatic address %s, want 10.50.0.2/24", ans2.Address)
	}
	if _, err := r.d.Attach(attachReq("2", "")); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("second attach of one namespace: %v, want already attached", err)
	}

	got, err := r.d.Endpoints(&api.EndpointsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Endpoints) != 2 || got.Endpoints[0].Origin != api.OriginAttach || got.Endpoints[0].Attach == nil {
		t.Fatalf("endpoints %+v, want the two attachments", got.Endpoints)
	}

	if _, err := r.d.Detach(&api.DetachRequest{NetworkID: testNetID, Container: "c0ffee1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.Detach(&api.DetachRequest{NetworkID: testNetID, Netns: "net:[2]"}); err != nil {
		t.Fatal(err)
	}
	r.assertClean(t, "10.50.0.77")
	if _, err := r.d.Detach(&api.DetachRequest{NetworkID: testNetID, Netns: "net:[2]"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("detach again: %v, want ErrNotFound", err)
	}
}

// Each bad request fails with a message naming the problem and leaves
// nothing behind.
func TestAttachRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		req  func(*attachRig) *api.AttachRequest
		want string
	}{
		{"unknown network", func(*attachRig) *api.AttachRequest {
			q := attachReq("1", "")
			q.NetworkID = "ffff"
			return q
		}, "not found"},
		{"outside the subnet", func(*attachRig) *api.AttachRequest { return attachReq("1", "10.60.0.5") }, "outside subnet 10.50.0.0/24"},
		{"the gateway", func(*attachRig) *api.AttachRequest { return attachReq("1", "10.50.0.1") }, "already in use"},
		{"in use", func(r *attachRig) *api.AttachRequest {
			_, _ = r.am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: r.pool, Address: "10.50.0.9", Options: map[string]string{"x": "y"}})
			return attachReq("1", "10.50.0.9")
		}, "10.50.0.9 is already in use"},
		{"broadcast", func(*attachRig) *api.AttachRequest { return attachReq("1", "10.50.0.255") }, "broadcast"},
		{"not IPv4", func(*attachRig) *api.AttachRequest { return attachReq("1", "fd00::5") }, "not an IPv4 address"},
		{"IPv6 on an IPv4 network", func(*attachRig) *api.AttachRequest {
			q := attachReq("1", "")
			q.Address6 = "fd00::5"
			return q
		}, "no IPv6 subnet"},
		{"bad port", func(*attachRig) *api.AttachRequest { return attachReq("1", "", api.PortBinding{Proto: 6, Port: 0}) }, "container port must be 1-65535"},
		{"bad protocol", func(*attachRig) *api.AttachRequest { return attachReq("1", "", api.PortBinding{Proto: 1, Port: 80}) }, "IP protocol 1"},
		{"no namespace", func(*attachRig) *api.AttachRequest {
			q := attachReq("1", "")
			q.Netns = ""
			return q
		}, "Netns is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newAttachRig(t)
			_, err := r.d.Attach(c.req(r))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
			r.assertClean(t, "10.50.0.2")
		})
	}
}

// A network whose addresses come from Docker's IPAM has no mynet pool:
// attaching would lease nothing the engine respects, so it is refused.
func TestAttachRefusesDockerIPAM(t *testing.T) {
	r := newAttachRig(t)
	req := createReq(nil)
	req.NetworkID = testNetID2
	req.IPv4Data = []*network.IPAMData{{Pool: "10.70.0.0/24", Gateway: "10.70.0.1/24"}}
	if err := r.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	q := attachReq("1", "")
	q.NetworkID = testNetID2
	_, err := r.d.Attach(q)
	if err == nil || !strings.Contains(err.Error(), "does not use mynet's IPAM") {
		t.Fatalf("err = %v, want a refusal naming the IPAM", err)
	}
	r.assertClean(t, "")
}

// A failure after the veth exists (the record cannot be written; the
// ports cannot be published) undoes everything.
func TestAttachRollsBack(t *testing.T) {
	t.Run("record", func(t *testing.T) {
		r := newAttachRig(t)
		r.st.failPut = errInjected
		_, err := r.d.Attach(attachReq("1", "10.50.0.77"))
		r.st.failPut = nil
		if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "record attachment") {
			t.Fatalf("err = %v, want the injected failure", err)
		}
		r.assertClean(t, "10.50.0.77")
	})
	t.Run("ports", func(t *testing.T) {
		r := newAttachRig(t)
		r.fw.failPorts = errInjected
		_, err := r.d.Attach(attachReq("1", "10.50.0.77", api.PortBinding{Proto: 6, Port: 80, HostPort: 8080}))
		r.fw.failPorts = nil
		if !errors.Is(err, errInjected) {
			t.Fatalf("err = %v, want the injected failure", err)
		}
		r.assertClean(t, "10.50.0.77")
	})
}

// The kernel deleting the pair (the container's namespace went) makes the
// reaper release everything; the engine's endpoints are never reaped.
func TestReapAttachments(t *testing.T) {
	r := newAttachRig(t)
	if _, err := r.d.CreateEndpoint(epReq("10.50.0.3/24", "")); err != nil {
		t.Fatal(err)
	}
	ans, err := r.d.Attach(attachReq("1", "10.50.0.77", api.PortBinding{Proto: 6, Port: 80, HostPort: 8080}))
	if err != nil {
		t.Fatal(err)
	}
	if n := r.d.ReapAttachments(); n != 0 {
		t.Fatalf("reaped %d live attachments", n)
	}
	// The namespace goes: the kernel deletes both ends, the engine's
	// endpoint loses its veth too (its container stopped, say).
	for _, name := range []string{"mnh" + ans.EndpointID[:12], "mnh" + testEpID[:12]} {
		l, err := r.k.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.k.LinkDel(l)
	}
	if n := r.d.ReapAttachments(); n != 1 {
		t.Fatalf("reaped %d, want the one attachment", n)
	}
	if _, ok := r.d.endpoints[testEpID]; !ok {
		t.Error("the engine's endpoint was reaped; only the engine removes those")
	}
	delete(r.d.endpoints, testEpID)
	_ = r.st.Delete(endpointsBucket, testEpID)
	r.assertClean(t, "10.50.0.77")
}

// An attachment whose container end never left the host namespace (the
// CLI died before moving it) is reaped once it is old enough.
func TestReapAbandoned(t *testing.T) {
	r := newAttachRig(t)
	if _, err := r.d.Attach(attachReq("1", "10.50.0.77")); err != nil {
		t.Fatal(err)
	}
	r.d.mu.Lock()
	soon := r.d.reap(time.Now().Add(abandonAfter / 2))
	later := r.d.reap(time.Now().Add(2 * abandonAfter))
	r.d.mu.Unlock()
	if soon != 0 || later != 1 {
		t.Fatalf("reaped %d before the grace period and %d after; want 0 and 1", soon, later)
	}
	r.assertClean(t, "10.50.0.77")
}

// A restarted plugin loads attachments from the store and keeps them.
func TestAttachSurvivesRestart(t *testing.T) {
	r := newAttachRig(t)
	ans, err := r.d.Attach(attachReq("1", "10.50.0.77"))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := New(r.k, r.fw, nil, r.st, quietLog(), WithPortReserver(r.k))
	if err != nil {
		t.Fatal(err)
	}
	d2.UseIPAM(r.am)
	got, err := d2.Endpoints(&api.EndpointsQuery{Network: testNetID[:6]})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Endpoints) != 1 || got.Endpoints[0].ID != ans.EndpointID || got.Endpoints[0].Attach.Name != "vm-1" {
		t.Fatalf("after restart: %+v", got.Endpoints)
	}
	if _, err := d2.Endpoints(&api.EndpointsQuery{Network: "zzz"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown network prefix: %v, want ErrNotFound", err)
	}
	if _, err := d2.Detach(&api.DetachRequest{NetworkID: testNetID, EndpointID: ans.EndpointID}); err != nil {
		t.Fatal(err)
	}
	r.d = d2
	r.assertClean(t, "10.50.0.77")
}

// Deleting the network (the engine does not know attachments) removes
// them with it.
func TestDeleteNetworkRemovesAttachments(t *testing.T) {
	r := newAttachRig(t)
	if _, err := r.d.Attach(attachReq("1", "10.50.0.77")); err != nil {
		t.Fatal(err)
	}
	if err := r.d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
		t.Fatal(err)
	}
	r.assertClean(t, "")
}

// A dual-stack network gives the attachment an address of each family,
// the IPv6 one the next free unless given; the MAC still comes from the
// IPv4 address.
func TestAttachDualStack(t *testing.T) {
	r := newAttachRig(t)
	r.d.fw6 = newFakeFirewall()
	p6, err := r.am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "fd00:50::/64", V6: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: p6.PoolID, Address: "fd00:50::1"}); err != nil {
		t.Fatal(err)
	}
	req := createReq(nil)
	req.NetworkID = testNetID2
	req.IPv4Data = []*network.IPAMData{{Pool: "10.51.0.0/24", Gateway: "10.51.0.1/24"}}
	req.IPv6Data = []*network.IPAMData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}}
	p4, err := r.am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "10.51.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	// The engine leases the gateway first; an endpoint there is refused.
	if _, err := r.am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: p4.PoolID, Address: "10.51.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := r.d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	q := attachReq("1", "10.51.0.9")
	q.NetworkID = testNetID2
	ans, err := r.d.Attach(q)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Address != "10.51.0.9/24" || ans.Address6 != "fd00:50::2/64" || ans.Gateway6 != "fd00:50::1" || ans.MAC != "02:42:0a:33:00:09" {
		t.Errorf("dual-stack answer %+v", ans)
	}
	q = attachReq("2", "")
	q.NetworkID, q.Address6 = testNetID2, "fd00:50::77"
	if ans, err = r.d.Attach(q); err != nil || ans.Address6 != "fd00:50::77/64" {
		t.Errorf("--ip6: %+v, %v", ans, err)
	}
	q = attachReq("3", "")
	q.NetworkID, q.Address6 = testNetID2, "fd00:99::77"
	if _, err := r.d.Attach(q); err == nil || !strings.Contains(err.Error(), "outside subnet fd00:50::/64") {
		t.Errorf("IPv6 address outside the subnet: %v", err)
	}
	for _, ns := range []string{"net:[1]", "net:[2]"} {
		if _, err := r.d.Detach(&api.DetachRequest{NetworkID: testNetID2, Netns: ns}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: p6.PoolID, Address: "fd00:50::77", Options: map[string]string{"x": "y"}}); err != nil {
		t.Errorf("the IPv6 address after detach: %v, want it free", err)
	}
}

// The engine-endpoint orphan reaper (orphans.go) never takes an
// attachment, whose container end sits in the host namespace between the
// plugin's answer and the CLI's move: that is the attach reaper's call.
func TestOrphanReaperLeavesAttachments(t *testing.T) {
	r := newAttachRig(t)
	if _, err := r.d.Attach(attachReq("1", "10.50.0.77")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	inHost, err := r.d.hostLinks()
	if err != nil {
		t.Fatal(err)
	}
	r.d.mu.Lock()
	for _, at := range []time.Time{now, now.Add(DefaultOrphanGrace + time.Second)} {
		if n := r.d.reapOrphans(at, inHost); n != 0 {
			t.Errorf("orphan reaper took %d endpoints; want none", n)
		}
	}
	r.d.mu.Unlock()
	if len(r.d.endpoints) != 1 {
		t.Fatalf("%d endpoints left, want the attachment", len(r.d.endpoints))
	}
}
