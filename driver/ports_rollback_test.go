package driver

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/mynet/mynet/internal/fake"
	"github.com/mynet/mynet/ports"
)

// Failure paths of Program, on the fake kernel: they were kernel tests,
// but nothing in them is the kernel's.

// A host port in use fails Program with a message naming it, and leaves
// nothing: no rule, no held port, the record unpublished.
func TestPortsInUse(t *testing.T) {
	h := fake.NewKernel()
	st, fw := newMemStore(), newFakeFirewall()
	d, r := newPortsDriver(t, h, st, fw)
	if err := d.CreateNetwork(createReq(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
		t.Fatal(err)
	}
	r.Take("udp", netip.MustParseAddr("127.0.0.1"), 9001)
	err := d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: webPorts()})
	var inUse *ports.InUseError
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), "host port 9001/udp on 127.0.0.1 is already in use") {
		t.Fatalf("Program = %v, want host port 9001/udp on 127.0.0.1 is already in use", err)
	}
	if got := fw.published(); len(got) != 0 || r.Held() != 0 || d.endpoints[testEpID].Published || fw.localnet[testBridge] {
		t.Fatalf("after the failure: published %v, %d held, record published %v", got, r.Held(), d.endpoints[testEpID].Published)
	}

	// A firewall failure after the ports are held undoes them too.
	r.Untake("udp", netip.MustParseAddr("127.0.0.1"), 9001)
	fw.failPorts = errInjected
	if err := d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: webPorts()}); !errors.Is(err, errInjected) {
		t.Fatalf("Program = %v, want the injected error", err)
	}
	if r.Held() != 0 || d.endpoints[testEpID].Published {
		t.Fatalf("after a firewall failure: %d held, record published %v", r.Held(), d.endpoints[testEpID].Published)
	}
}

// On a dual-stack network a default binding is published in both
// families with one host port (the IPv4 rule through fw, the IPv6 one
// through fw6), [::1] is held but never given to ip6tables (the forwarder
// serves it), a port taken on :: fails Program and leaves nothing, and
// Revoke removes both families' rules and bridge rules.
func TestPortsDualStack(t *testing.T) {
	h := fake.NewKernel()
	st, fw, fw6 := newMemStore(), newFakeFirewall(), newFakeFirewall()
	d, err := New(h, fw, fw6, st, quietLog(), WithPortReserver(h))
	if err != nil {
		t.Fatal(err)
	}
	r := ports.NewMemReserver()
	d.ports = ports.NewAllocator(r, fixedRange(32768, 32799))
	req := createReq(nil)
	req.IPv6Data = []*network.IPAMData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}}
	if err := d.CreateNetwork(req); err != nil {
		t.Fatal(err)
	}
	portOpts := portmap(binding(6, 80, "", 8080, 8080), binding(6, 81, "", 0, 0), binding(6, 80, "::1", 8081, 8081))
	ereq := epReq("10.50.0.2/24", "")
	ereq.Interface.AddressIPv6 = "fd00:50::2/64"
	ereq.Options = portOpts
	if _, err := d.CreateEndpoint(ereq); err != nil {
		t.Fatal(err)
	}
	program := &network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: portOpts}
	r.Take("tcp", netip.MustParseAddr("::"), 32768) // the ephemeral port must be free in both families
	if err := d.ProgramExternalConnectivity(program); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(fw.published(), "|"), "32769/tcp on 0.0.0.0 -> 10.50.0.2:81|8080/tcp on 0.0.0.0 -> 10.50.0.2:80"; got != want {
		t.Errorf("IPv4 rules:\n%s\nwant:\n%s", got, want)
	}
	if got, want := strings.Join(fw6.published(), "|"), "32769/tcp on :: -> fd00:50::2:81|8080/tcp on :: -> fd00:50::2:80"; got != want {
		t.Errorf("IPv6 rules:\n%s\nwant:\n%s", got, want)
	}
	if r.Held() != 5 {
		t.Errorf("%d host ports held, want 5 (8080 and 32769 twice, [::1]:8081)", r.Held())
	}
	if _, ok := fw6.portBridges[testBridge]; !ok {
		t.Error("no IPv6 bridge port rules")
	}
	if err := d.RevokeExternalConnectivity(&network.RevokeExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
		t.Fatal(err)
	}
	_, bridge4 := fw.portBridges[testBridge]
	_, bridge6 := fw6.portBridges[testBridge]
	if len(fw.published())+len(fw6.published()) != 0 || r.Held() != 0 || bridge4 || bridge6 {
		t.Fatalf("after Revoke: %v %v, %d held, bridge rules %v %v; want nothing", fw.published(), fw6.published(), r.Held(), bridge4, bridge6)
	}

	r.Take("tcp", netip.MustParseAddr("::"), 8080)
	err = d.ProgramExternalConnectivity(program)
	var inUse *ports.InUseError
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), "host port 8080/tcp on :: is already in use") {
		t.Fatalf("Program with [::]:8080 taken = %v, want in use on ::", err)
	}
	if len(fw.published())+len(fw6.published()) != 0 || r.Held() != 0 || d.endpoints[testEpID].Published {
		t.Errorf("after the failed Program: %v %v, %d held, published %v; want nothing", fw.published(), fw6.published(), r.Held(), d.endpoints[testEpID].Published)
	}
}
