//go:build linux

package driver

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nstest"
	"github.com/mynet/mynet/ports"
)

const (
	testNetID2 = "b1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	testEpID2  = "f1e2e3e4e5e6e7e8e9eaebecedeeeff0e1e2e3e4e5e6e7e8e9eaebecedeeeff0"
	testBridge = "mynet-a1b2c3d4e"
)

// newPortsDriver is newTestDriver with host ports from a fake reserver
// and ephemeral ports from 32768-32799.
func newPortsDriver(t *testing.T, h netlinker, st *memStore, fw *fakeFirewall) (*Driver, *ports.MemReserver) {
	t.Helper()
	r := ports.NewMemReserver()
	d, err := New(h, fw, nil, st, quietLog(), WithPortReserver(r))
	if err != nil {
		t.Fatal(err)
	}
	d.ports = ports.NewAllocator(r, fixedRange(32768, 32799))
	return d, r
}

// webPorts is `-p 8080:80 -p 80 -p 127.0.0.1:9000-9002:7000-7002/udp`.
func webPorts() map[string]any {
	return portmap(binding(6, 80, "", 8080, 8080), binding(6, 80, "", 0, 0),
		binding(17, 7000, "127.0.0.1", 9000, 9000), binding(17, 7001, "127.0.0.1", 9001, 9001), binding(17, 7002, "127.0.0.1", 9002, 9002))
}

func hairpin(t *testing.T, h *netlink.Handle, name string) bool {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	pi, err := h.LinkGetProtinfo(l)
	if err != nil {
		t.Fatal(err)
	}
	return pi.Hairpin
}

// The endpoint's ports are recorded at CreateEndpoint and Join, published
// by Program (idempotently), unpublished by Revoke, Leave and
// DeleteEndpoint, and an ephemeral port stays the endpoint's.
func TestPortsLifecycle(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		st, fw := newMemStore(), newFakeFirewall()
		d, r := newPortsDriver(t, h, st, fw)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		req := epReq("10.50.0.2/24", "")
		req.Options = webPorts()
		if _, err := d.CreateEndpoint(req); err != nil {
			t.Fatal(err)
		}
		ep := d.endpoints[testEpID]
		if len(ep.Ports) != 5 || ep.Published {
			t.Fatalf("after CreateEndpoint: %d requests, published %v; want 5 recorded, none published", len(ep.Ports), ep.Published)
		}
		if _, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID, SandboxKey: "/run/netns/x", Options: webPorts()}); err != nil {
			t.Fatal(err)
		}
		if got := fw.published(); len(got) != 0 {
			t.Fatalf("Join published %v; ports wait for ProgramExternalConnectivity", got)
		}
		program := &network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: webPorts()}
		for i := range 2 {
			if err := d.ProgramExternalConnectivity(program); err != nil {
				t.Fatalf("Program #%d: %v", i+1, err)
			}
			got := strings.Join(fw.published(), "|")
			want := "32768/tcp on 0.0.0.0 -> 10.50.0.2:80|8080/tcp on 0.0.0.0 -> 10.50.0.2:80|9000-9002/udp on 127.0.0.1 -> 10.50.0.2:7000-7002"
			if got != want {
				t.Fatalf("Program #%d published:\n%s\nwant:\n%s", i+1, got, want)
			}
			if r.Held() != 5 {
				t.Errorf("Program #%d: %d host ports held, want 5", i+1, r.Held())
			}
		}
		if !fw.localnet[testBridge] || !hairpin(t, h, ep.HostVeth) {
			t.Errorf("route_localnet %v, hairpin %v: want both on", fw.localnet[testBridge], hairpin(t, h, ep.HostVeth))
		}
		if _, ok := fw.portBridges[testBridge]; !ok {
			t.Errorf("bridge port rules missing")
		}

		if err := d.RevokeExternalConnectivity(&network.RevokeExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
			t.Fatal(err)
		}
		if got := fw.published(); len(got) != 0 || r.Held() != 0 || fw.localnet[testBridge] || hairpin(t, h, ep.HostVeth) {
			t.Fatalf("after Revoke: published %v, %d held, route_localnet %v: want nothing", got, r.Held(), fw.localnet[testBridge])
		}
		if _, ok := fw.portBridges[testBridge]; ok {
			t.Errorf("bridge port rules left after the last mapping went")
		}
		// Published again (the gateway came back): the same ephemeral port,
		// though the allocator's cursor has moved past it.
		if err := d.ProgramExternalConnectivity(program); err != nil {
			t.Fatal(err)
		}
		if got := fw.published(); !slices.Contains(got, "32768/tcp on 0.0.0.0 -> 10.50.0.2:80") {
			t.Errorf("published again: %v, want the ephemeral port 32768 kept", got)
		}
		for i := range 2 {
			if err := d.Leave(&network.LeaveRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
				t.Fatalf("Leave #%d: %v", i+1, err)
			}
		}
		if got := fw.published(); len(got) != 0 || r.Held() != 0 {
			t.Fatalf("after Leave (no Revoke): published %v, %d held", got, r.Held())
		}
		if err := d.ProgramExternalConnectivity(program); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
			t.Fatal(err)
		}
		if got := fw.published(); len(got) != 0 || r.Held() != 0 {
			t.Fatalf("after DeleteEndpoint: published %v, %d held", got, r.Held())
		}
	})
}

// A Program for a container's new gateway endpoint takes the ports over
// from its previous one, keeping the ephemeral port, even before the
// Revoke for the old one arrives; also when the plugin restarted between
// the two (the old endpoint's sandbox is known from its record).
func TestPortsMoveWithTheGateway(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			nstest.Run(t, func(h *netlink.Handle) { testPortsMoveWithTheGateway(t, h, restart) })
		})
	}
}

func testPortsMoveWithTheGateway(t *testing.T, h *netlink.Handle, restart bool) {
	st, fw := newMemStore(), newFakeFirewall()
	d, r := newPortsDriver(t, h, st, fw)
	req2 := createReq(nil)
	req2.NetworkID = testNetID2
	req2.IPv4Data[0].Pool, req2.IPv4Data[0].Gateway = "10.51.0.0/24", "10.51.0.1/24"
	for _, req := range []*network.CreateNetworkRequest{createReq(nil), req2} {
		if err := d.CreateNetwork(req); err != nil {
			t.Fatal(err)
		}
	}
	e1 := epReq("10.50.0.2/24", "")
	e2 := epReq("10.51.0.2/24", "")
	e2.NetworkID, e2.EndpointID = testNetID2, testEpID2
	for i, req := range []*network.CreateEndpointRequest{e1, e2} {
		if i == 1 && restart {
			fw = newFakeFirewall()
			d, r = newPortsDriver(t, h, st, fw)
			if err := d.Restore(); err != nil {
				t.Fatalf("Restore: %v", err)
			}
		}
		// As the engine sends them: the bindings come with CreateEndpoint
		// already, so Join changes nothing but the sandbox.
		req.Options = webPorts()
		if _, err := d.CreateEndpoint(req); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Join(&network.JoinRequest{NetworkID: req.NetworkID, EndpointID: req.EndpointID, SandboxKey: "/run/netns/one", Options: webPorts()}); err != nil {
			t.Fatal(err)
		}
		if err := d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: req.NetworkID, EndpointID: req.EndpointID, Options: webPorts()}); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(fw.published(), "|")
	want := "32768/tcp on 0.0.0.0 -> 10.51.0.2:80|8080/tcp on 0.0.0.0 -> 10.51.0.2:80|9000-9002/udp on 127.0.0.1 -> 10.51.0.2:7000-7002"
	if got != want || r.Held() != 5 || d.endpoints[testEpID].Published {
		t.Fatalf("after the second Program: %s (%d held, first still published %v)\nwant: %s", got, r.Held(), d.endpoints[testEpID].Published, want)
	}
	if err := d.RevokeExternalConnectivity(&network.RevokeExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
		t.Fatal(err)
	}
	if got2 := strings.Join(fw.published(), "|"); got2 != want {
		t.Errorf("the late Revoke of the old gateway changed the new one's mappings: %s", got2)
	}
}

// A restarted plugin holds its published ports again and re-applies their
// rules; a port another program took meanwhile is logged, the mapping kept.
func TestPortsRestore(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		st, fw := newMemStore(), newFakeFirewall()
		d, _ := newPortsDriver(t, h, st, fw)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
			t.Fatal(err)
		}
		if err := d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: webPorts()}); err != nil {
			t.Fatal(err)
		}
		before := fw.published()

		fw2 := newFakeFirewall()
		d2, r2 := newPortsDriver(t, h, st, fw2)
		r2.Take("tcp", netip.MustParseAddr("0.0.0.0"), 8080)
		if err := d2.Restore(); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if got := fw2.published(); !slices.Equal(got, before) {
			t.Errorf("restored mappings %v, want %v", got, before)
		}
		if r2.Held() != 4 || !fw2.localnet[testBridge] {
			t.Errorf("restored: %d held (want 4: 8080 was taken), route_localnet %v", r2.Held(), fw2.localnet[testBridge])
		}
		if err := d2.Restore(); err != nil || r2.Held() != 4 {
			t.Errorf("a second Restore: %v, %d held; want no error and the same 4", err, r2.Held())
		}
		if err := d2.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
			t.Fatal(err)
		}
		if r2.Held() != 0 || len(fw2.published()) != 0 {
			t.Errorf("after DeleteEndpoint: %d held, published %v", r2.Held(), fw2.published())
		}
	})
}

// Internal and isolated networks have no way in: nothing is published,
// and that is not an error. The routed mode publishes the container ports
// as they are, without holding host ports.
func TestPortsByGatewayMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts map[string]any
		want string
	}{
		{"isolated", map[string]any{optGWModeV4: "isolated"}, ""},
		{"routed", map[string]any{optGWModeV4: "routed"}, "7000-7002/udp on 0.0.0.0 -> 10.50.0.2:7000-7002|80/tcp on 0.0.0.0 -> 10.50.0.2:80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nstest.Run(t, func(h *netlink.Handle) {
				st, fw := newMemStore(), newFakeFirewall()
				d, r := newPortsDriver(t, h, st, fw)
				if err := d.CreateNetwork(createReq(tc.opts)); err != nil {
					t.Fatal(err)
				}
				if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
					t.Fatal(err)
				}
				if err := d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: webPorts()}); err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(fw.published(), "|"); got != tc.want || r.Held() != 0 {
					t.Errorf("published %q with %d held, want %q and none", got, r.Held(), tc.want)
				}
			})
		})
	}
}

// flushStaleUDP deletes IPv6 conntrack entries to a mapping's host port
// that do not go to the container (a client that sent before the port
// was published would otherwise keep reaching the host), and only those.
func TestFlushStaleUDPIPv6(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		send := func(addr string) {
			c, err := net.Dial("udp6", addr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write([]byte("x"))
			_ = c.Close()
		}
		count := func(port uint16) int {
			flows, err := h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET6)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, f := range flows {
				if f.Forward.Protocol == unix.IPPROTO_UDP && f.Forward.DstPort == port {
					n++
				}
			}
			return n
		}
		// A conntrack match makes the kernel track this namespace.
		if out, err := exec.Command("ip6tables", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW").CombinedOutput(); err != nil {
			t.Skipf("ip6tables: %v: %s", err, out)
		}
		send("[::1]:15370")
		send("[::1]:15371")
		if count(15370) != 1 || count(15371) != 1 {
			t.Skipf("no conntrack entries for loopback UDP here (%d, %d)", count(15370), count(15371))
		}
		d := &Driver{nl: h, log: quietLog()}
		d.flushStaleUDP([]firewall.Mapping{{Bridge: "mn-a", Proto: firewall.ProtoUDP, HostIP: netip.IPv6Unspecified(), HostPort: 15370,
			Container: netip.MustParseAddr("fd00:1::2"), Port: 53, PortEnd: 53}})
		if n := count(15370); n != 0 {
			t.Errorf("%d entries to the published port left, want none", n)
		}
		if n := count(15371); n != 1 {
			t.Errorf("%d entries to another port, want it kept", n)
		}
	})
}
