//go:build linux

package driver

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/nstest"
)

const (
	testNetID = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	testEpID  = "e1e2e3e4e5e6e7e8e9eaebecedeeeff0e1e2e3e4e5e6e7e8e9eaebecedeeeff0"
)

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func newTestDriver(t *testing.T, h *netlink.Handle) (*Driver, *memStore, *fakeFirewall) {
	t.Helper()
	st, fw := newMemStore(), newFakeFirewall()
	d, err := New(h, fw, nil, st, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return d, st, fw
}

func createReq(opts map[string]any) *network.CreateNetworkRequest {
	return &network.CreateNetworkRequest{
		NetworkID: testNetID,
		Options:   map[string]any{keyGeneric: opts},
		IPv4Data:  []*network.IPAMData{{Pool: "10.50.0.0/24", Gateway: "10.50.0.1/24"}},
	}
}

func epReq(addr, mac string) *network.CreateEndpointRequest {
	return &network.CreateEndpointRequest{NetworkID: testNetID, EndpointID: testEpID,
		Interface: &network.EndpointInterface{Address: addr, MacAddress: mac}}
}

// links returns the names of all links but lo, sorted by index.
func links(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	ls, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		if l.Attrs().Name != "lo" {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}

func TestNetworkAndEndpointLifecycle(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, st, fw := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(map[string]any{optMTU: "1400"})); err != nil {
			t.Fatal(err)
		}
		br, err := h.LinkByName("mynet-a1b2c3d4e")
		if err != nil {
			t.Fatalf("bridge not created: %v", err)
		}
		if br.Attrs().MTU != 1400 || br.Attrs().Flags&net.FlagUp == 0 || br.Attrs().Alias != ownerAlias("", testNetID) {
			t.Errorf("bridge attrs: mtu %d flags %v alias %q", br.Attrs().MTU, br.Attrs().Flags, br.Attrs().Alias)
		}
		addrs, _ := h.AddrList(br, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.50.0.1/24" {
			t.Errorf("bridge addresses = %v, want 10.50.0.1/24", addrs)
		}
		if _, ok := fw.nets["mynet-a1b2c3d4e"]; !ok {
			t.Error("firewall rules not ensured")
		}

		resp, err := d.CreateEndpoint(epReq("10.50.0.2/24", ""))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Interface == nil || resp.Interface.MacAddress != "02:42:0a:32:00:02" || resp.Interface.Address != "" {
			t.Errorf("CreateEndpoint answered %+v, want only the derived MAC", resp.Interface)
		}
		host, err := h.LinkByName("mnhe1e2e3e4e5e6")
		if err != nil {
			t.Fatalf("host veth: %v", err)
		}
		if host.Attrs().MasterIndex != br.Attrs().Index || host.Attrs().MTU != 1400 {
			t.Errorf("host veth master %d mtu %d", host.Attrs().MasterIndex, host.Attrs().MTU)
		}
		peer, err := h.LinkByName("mnce1e2e3e4e5e6")
		if err != nil {
			t.Fatalf("peer veth: %v", err)
		}
		if peer.Attrs().HardwareAddr.String() != "02:42:0a:32:00:02" {
			t.Errorf("peer MAC = %s", peer.Attrs().HardwareAddr)
		}

		join, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID, SandboxKey: "/var/run/docker/netns/x"})
		if err != nil {
			t.Fatal(err)
		}
		if join.InterfaceName.SrcName != "mnce1e2e3e4e5e6" || join.InterfaceName.DstPrefix != "eth" || join.Gateway != "10.50.0.1" {
			t.Errorf("Join answered %+v", join)
		}

		// A restarted driver sees the same state.
		d2, err := New(h, fw, nil, st, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if len(d2.networks) != 1 || len(d2.endpoints) != 1 {
			t.Fatalf("reloaded %d networks, %d endpoints", len(d2.networks), len(d2.endpoints))
		}

		for i := 0; i < 2; i++ { // twice: deletes are idempotent
			if err := d2.Leave(&network.LeaveRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
				t.Fatal(err)
			}
			if err := d2.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
				t.Fatal(err)
			}
			if err := d2.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
				t.Fatal(err)
			}
		}
		if l := links(t, h); len(l) != 0 {
			t.Errorf("links left behind: %v", l)
		}
		if st.len(networksBucket)+st.len(endpointsBucket) != 0 || len(fw.nets) != 0 {
			t.Error("records or rules left behind")
		}
	})
}

func TestUserMACIsNotEchoed(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, _, _ := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		resp, err := d.CreateEndpoint(epReq("10.50.0.9/24", "02:00:00:00:00:09"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Interface != nil {
			t.Errorf("echoed %+v; the engine rolls back endpoints whose fields the driver re-sets", resp.Interface)
		}
		peer, _ := h.LinkByName("mnce1e2e3e4e5e6")
		if peer == nil || peer.Attrs().HardwareAddr.String() != "02:00:00:00:00:09" {
			t.Errorf("peer MAC not the user's")
		}
	})
}

func TestAdoptedBridgeIsNeverDeleted(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "userbr0"
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			t.Fatal(err)
		}
		d, _, _ := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(map[string]any{optBridgeName: "userbr0"})); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
		br, err := h.LinkByName("userbr0")
		if err != nil {
			t.Fatal("adopted bridge was deleted")
		}
		if addrs, _ := h.AddrList(br, netlink.FAMILY_V4); len(addrs) != 0 {
			t.Errorf("gateway address left on adopted bridge: %v", addrs)
		}

		// A non-bridge of that name is refused.
		other := netlink.NewLinkAttrs()
		other.Name = "notabridge"
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: other, PeerName: "notabridge1"}); err != nil {
			t.Fatal(err)
		}
		err = d.CreateNetwork(createReq(map[string]any{optBridgeName: "notabridge"}))
		if err == nil || !strings.Contains(err.Error(), "not a bridge") {
			t.Errorf("non-bridge name: %v", err)
		}
	})
}

func TestRestoreRecreatesBridge(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, st, fw := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		br, _ := h.LinkByName("mynet-a1b2c3d4e")
		if err := h.LinkDel(br); err != nil {
			t.Fatal(err)
		}
		delete(fw.nets, "mynet-a1b2c3d4e")
		d2, err := New(h, fw, nil, st, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := d2.Restore(); err != nil {
			t.Fatal(err)
		}
		br, err = h.LinkByName("mynet-a1b2c3d4e")
		if err != nil {
			t.Fatal("bridge not restored")
		}
		if addrs, _ := h.AddrList(br, netlink.FAMILY_V4); len(addrs) != 1 {
			t.Errorf("restored bridge addresses: %v", addrs)
		}
		if _, ok := fw.nets["mynet-a1b2c3d4e"]; !ok {
			t.Error("rules not restored")
		}
		if err := d2.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
		if l := links(t, h); len(l) != 0 {
			t.Errorf("links left: %v", l)
		}
	})
}

func TestDualStackICCOff(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		st, fw, fw6 := newMemStore(), newFakeFirewall(), newFakeFirewall()
		d, err := New(h, fw, fw6, st, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		req := createReq(map[string]any{optICC: "false", optIfacePrefix: "net"})
		req.IPv6Data = []*network.IPAMData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}}
		if err := d.CreateNetwork(req); err != nil {
			t.Fatal(err)
		}
		br, _ := h.LinkByName("mynet-a1b2c3d4e")
		v6, _ := h.AddrList(br, netlink.FAMILY_V6)
		found := false
		for _, a := range v6 {
			found = found || a.IPNet.String() == "fd00:50::1/64"
		}
		if !found {
			t.Errorf("bridge IPv6 addresses = %v, want fd00:50::1/64", v6)
		}
		if fw6.nets["mynet-a1b2c3d4e"].Subnet.String() != "fd00:50::/64" || fw.nets["mynet-a1b2c3d4e"].Subnet.String() != "10.50.0.0/24" {
			t.Errorf("per-family rules: v4 %+v v6 %+v", fw.nets, fw6.nets)
		}
		ep := epReq("10.50.0.2/24", "")
		ep.Interface.AddressIPv6 = "fd00:50::2/64"
		if _, err := d.CreateEndpoint(ep); err != nil {
			t.Fatal(err)
		}
		host, _ := h.LinkByName("mnhe1e2e3e4e5e6")
		pi, err := h.LinkGetProtinfo(host)
		if err != nil || !pi.Isolated {
			t.Errorf("ICC off: bridge port isolated = %v (%v)", pi.Isolated, err)
		}
		join, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID})
		if err != nil {
			t.Fatal(err)
		}
		if join.Gateway != "10.50.0.1" || join.GatewayIPv6 != "fd00:50::1" || join.InterfaceName.DstPrefix != "net" || join.DisableGatewayService {
			t.Errorf("Join = %+v", join)
		}
		bad := epReq("10.50.0.3/24", "")
		bad.EndpointID = "other"
		bad.Interface.AddressIPv6 = "fd00:99::3/64"
		if _, err := d.CreateEndpoint(bad); err == nil || !strings.Contains(err.Error(), "outside subnet fd00:50::/64") {
			t.Errorf("v6 address outside subnet: %v", err)
		}
		if err := d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
		if l := links(t, h); len(l) != 0 || len(fw6.nets) != 0 {
			t.Errorf("left: links %v, v6 rules %v", l, fw6.nets)
		}
	})
}

func TestIsolatedModeAndInternal(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		for _, opts := range []map[string]any{{optGWModeV4: "isolated"}} {
			d, _, _ := newTestDriver(t, h)
			if err := d.CreateNetwork(createReq(opts)); err != nil {
				t.Fatal(err)
			}
			br, _ := h.LinkByName("mynet-a1b2c3d4e")
			if a, _ := h.AddrList(br, netlink.FAMILY_V4); len(a) != 0 {
				t.Errorf("%v: bridge has addresses %v, want none", opts, a)
			}
			if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
				t.Fatal(err)
			}
			join, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID})
			if err != nil || join.Gateway != "" || !join.DisableGatewayService {
				t.Errorf("%v: Join = %+v, %v; want no gateway", opts, join, err)
			}
			if err := d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
				t.Fatal(err)
			}
		}
		d, _, _ := newTestDriver(t, h)
		req := createReq(nil)
		req.Options[keyInternal] = true
		if err := d.CreateNetwork(req); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
			t.Fatal(err)
		}
		join, _ := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID})
		if join.Gateway != "" || !join.DisableGatewayService {
			t.Errorf("internal: Join = %+v, want no gateway", join)
		}
		_ = d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID})
	})
}

func TestHealRestoresRulesOnlyWhenMissing(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, _, fw := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		if repaired, err := d.Heal(); repaired || err != nil {
			t.Fatalf("Heal with rules in place = %v, %v", repaired, err)
		}
		fw.mu.Lock()
		fw.broken = true
		delete(fw.nets, "mynet-a1b2c3d4e")
		fw.mu.Unlock()
		if repaired, err := d.Heal(); !repaired || err != nil {
			t.Fatalf("Heal with rules gone = %v, %v", repaired, err)
		}
		if _, ok := fw.nets["mynet-a1b2c3d4e"]; !ok {
			t.Error("rules not ensured again")
		}
		_ = d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID})
	})
}

// TestRestoreReconciles: a crash between a kernel change and its record
// leaves links mynet made but does not record; Restore removes them and
// leaves everything else (recorded links, links of other software) alone.
func TestRestoreReconciles(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, st, fw := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
			t.Fatal(err)
		}
		// The endpoint's record is lost, as if mynet died before writing it.
		_ = st.Delete(endpointsBucket, testEpID)
		// A bridge of a network mynet never recorded, and one of another program.
		orphan := netlink.NewLinkAttrs()
		orphan.Name = "mynet-orphan"
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: orphan}); err != nil {
			t.Fatal(err)
		}
		l, _ := h.LinkByName("mynet-orphan")
		_ = h.LinkSetAlias(l, ownerAlias("", "ffffffffffff"))
		other := netlink.NewLinkAttrs()
		other.Name = "otherbr0"
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: other}); err != nil {
			t.Fatal(err)
		}

		d2, err := New(h, fw, nil, st, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := d2.Restore(); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(links(t, h), " ")
		if got != "mynet-a1b2c3d4e otherbr0" {
			t.Errorf("links after reconcile = %q, want the recorded bridge and the foreign one", got)
		}
		_ = d2.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID})
	})
}

// TestReapOrphans: an endpoint whose container end stays in the host
// namespace (an engine call's answer was lost) is removed after the grace
// period; one whose container end is gone from it (here: renamed, as if
// moved into a sandbox) is not.
func TestReapOrphans(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, st, _ := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
			t.Fatal(err)
		}
		joined := epReq("10.50.0.3/24", "")
		joined.EndpointID = "joined0123456789"
		if _, err := d.CreateEndpoint(joined); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: joined.EndpointID, SandboxKey: "/x"}); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		// The joined one's container end moves into its sandbox.
		_, peerName := vethNames(joined.EndpointID)
		peer, _ := h.LinkByName(peerName)
		if err := h.LinkSetName(peer, "eth-in-sandbox"); err != nil {
			t.Fatal(err)
		}
		inHost, err := d.hostLinks()
		if err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		first := d.reapOrphans(now, inHost)
		later := d.reapOrphans(now.Add(DefaultOrphanGrace+time.Second), inHost)
		d.mu.Unlock()
		if first != 0 || later != 1 {
			t.Fatalf("reaped %d then %d, want 0 then 1", first, later)
		}
		if st.len(endpointsBucket) != 1 {
			t.Errorf("%d endpoint records left, want the joined one", st.len(endpointsBucket))
		}
		if _, err := h.LinkByName("mnhe1e2e3e4e5e6"); err == nil {
			t.Error("orphan's veth left")
		}
		_ = d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID})
	})
}
