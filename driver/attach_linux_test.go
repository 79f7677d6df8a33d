//go:build linux

package driver

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	ipamapi "github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/nstest"
	"github.com/mynet/mynet/internal/plumb"
	"github.com/mynet/mynet/ipam"
)

// TestAttachKernel: the plugin side of `mynet attach` with real links,
// and the CLI side (internal/plumb) moving the container end into a
// throwaway namespace that stands in for a --network none container.
// Traffic flows both ways with an engine-style endpoint on the same
// bridge and with the host; when the namespace goes, the kernel deletes
// the pair and the reaper releases the address and the record.
func TestAttachKernel(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, am, pool := newKernelAttachDriver(t, h)

		// An engine endpoint at 10.50.0.3, in its own sandbox.
		if _, err := d.CreateEndpoint(epReq("10.50.0.3/24", "")); err != nil {
			t.Fatal(err)
		}
		join, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID})
		if err != nil {
			t.Fatal(err)
		}
		engineBox := newSandbox(t)
		defer engineBox.Close()
		moveIn(t, h, engineBox, plumb.Spec{Veth: join.InterfaceName.SrcName, Ifname: "eth0",
			Addrs: []netip.Prefix{netip.MustParsePrefix("10.50.0.3/24")}})

		// The attachment, as the CLI does it.
		box := newSandbox(t)
		id, err := plumb.Identity(box)
		if err != nil {
			t.Fatal(err)
		}
		ans, err := d.Attach(&api.AttachRequest{NetworkID: testNetID, Address: "10.50.0.77", PID: 1, Netns: id, Ifname: "eth0"})
		if err != nil {
			box.Close()
			t.Fatal(err)
		}
		spec := plumb.Spec{Veth: ans.Veth, Ifname: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix(ans.Address)},
			Gateways: []netip.Addr{netip.MustParseAddr(ans.Gateway)}}
		moveIn(t, h, box, spec)
		checkInside(t, box, "eth0", "02:42:0a:32:00:4d")

		// Both ways with the engine's endpoint, and from the host.
		dialFrom(t, box, engineBox, "10.50.0.3:7777")
		dialFrom(t, engineBox, box, "10.50.0.77:7777")
		dialFrom(t, netns.None(), box, "10.50.0.77:7778")
		if _, err := am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: pool, Address: "10.50.0.77", Options: map[string]string{"x": "y"}}); !errors.Is(err, ipam.ErrAddressInUse) {
			t.Errorf("the engine asking for the attached address: %v, want in use", err)
		}
		if n := d.ReapAttachments(); n != 0 {
			t.Fatalf("reaped %d live attachments", n)
		}

		// The container goes: its namespace, and with it the pair.
		box.Close()
		waitGone(t, h, "mnh"+ans.EndpointID[:12])
		if n := d.ReapAttachments(); n != 1 {
			t.Fatalf("reaped %d, want 1", n)
		}
		if _, err := am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: pool, Address: "10.50.0.77", Options: map[string]string{"x": "y"}}); err != nil {
			t.Errorf("the address after the reap: %v, want it free", err)
		}
		if got := links(t, h); !slices.Equal(got, []string{"mynet-a1b2c3d4e", "mnh" + testEpID[:12]}) {
			t.Errorf("links after the reap: %v, want the bridge and the engine endpoint's veth", got)
		}
		if _, ok := d.endpoints[testEpID]; !ok {
			t.Error("the engine's endpoint was reaped")
		}
	})
}

// TestAttachPlumbChecks: an interface name or a default route already in
// the namespace is found before anything is created, and a container end
// that is not in the caller's namespace is reported as such.
func TestAttachPlumbChecks(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		box := newSandbox(t)
		defer box.Close()
		in, err := netlink.NewHandleAt(box)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}
		if err := in.LinkAdd(veth); err != nil {
			t.Fatal(err)
		}
		if err := plumb.Check(in, plumb.Spec{Ifname: "eth0"}); !errors.Is(err, plumb.ErrNameTaken) {
			t.Errorf("eth0 taken: %v, want ErrNameTaken", err)
		}
		l, _ := in.LinkByName("eth0")
		_ = in.LinkSetUp(l)
		addr, _ := netlink.ParseAddr("192.0.2.2/24")
		_ = in.AddrAdd(l, addr)
		if err := in.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP("192.0.2.1")}); err != nil {
			t.Fatal(err)
		}
		spec := plumb.Spec{Ifname: "eth1", Gateways: []netip.Addr{netip.MustParseAddr("10.50.0.1")}}
		var re *plumb.RouteError
		if err := plumb.Check(in, spec); !errors.As(err, &re) || re.Via != "192.0.2.1" {
			t.Errorf("default route present: %v, want a RouteError via 192.0.2.1", err)
		}
		spec.Gateways = nil
		if err := plumb.Check(in, spec); err != nil {
			t.Errorf("eth1 without a default route: %v", err)
		}
		spec.Veth = "mncnothere"
		if err := plumb.Into(h, box, spec); !errors.Is(err, plumb.ErrNoVeth) {
			t.Errorf("missing container end: %v, want ErrNoVeth", err)
		}
	})
}

// newKernelAttachDriver is a driver on h with a fake firewall and mynet's
// IPAM holding 10.50.0.0/24 with the gateway leased, and the network.
func newKernelAttachDriver(t *testing.T, h *netlink.Handle) (*Driver, *ipam.IPAM, string) {
	t.Helper()
	d, _, _ := newTestDriver(t, h)
	am, err := ipam.New(newMemStore(), ipam.Config{DefaultPools: []ipam.PoolSpec{}}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	d.UseIPAM(am)
	p, err := am.RequestPool(&ipamapi.RequestPoolRequest{Pool: "10.50.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := am.RequestAddress(&ipamapi.RequestAddressRequest{PoolID: p.PoolID, Address: "10.50.0.1",
		Options: map[string]string{"RequestAddressType": "com.docker.network.gateway"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateNetwork(createReq(nil)); err != nil {
		t.Fatal(err)
	}
	return d, am, p.PoolID
}

// newSandbox creates a namespace with lo up, leaving the calling
// (locked) thread where it was.
func newSandbox(t *testing.T) netns.NsHandle {
	t.Helper()
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(cur); err != nil {
		t.Fatal(err)
	}
	in, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	lo, _ := in.LinkByName("lo")
	if err := in.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return ns
}

func moveIn(t *testing.T, h *netlink.Handle, ns netns.NsHandle, s plumb.Spec) {
	t.Helper()
	in := mustHandleAt(t, ns)
	defer in.Close()
	if err := plumb.Check(in, s); err != nil {
		t.Fatal(err)
	}
	if err := plumb.Into(h, ns, s); err != nil {
		t.Fatal(err)
	}
}

// mustHandleAt opens a netlink handle in ns; close it before closing ns,
// since its socket keeps the namespace alive.
func mustHandleAt(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	in, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// checkInside checks the interface in the namespace: up, with the MAC
// derived from the address and a default route through it.
func checkInside(t *testing.T, ns netns.NsHandle, ifname, mac string) {
	t.Helper()
	in := mustHandleAt(t, ns)
	defer in.Close()
	l, err := in.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Attrs().HardwareAddr.String(); got != mac {
		t.Errorf("%s MAC %s, want %s", ifname, got, mac)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s is down", ifname)
	}
	routes, err := in.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var def bool
	for _, r := range routes {
		if ones, _ := r.Dst.Mask.Size(); ones == 0 && r.Gw.Equal(net.ParseIP("10.50.0.1")) {
			def = true
		}
	}
	if !def {
		t.Errorf("no default route via 10.50.0.1 in %v", routes)
	}
}

// dialFrom connects from namespace from (netns.None(): the test's own) to
// addr, served in namespace to. The listener is closed before returning,
// so it holds no reference to the namespace.
func dialFrom(t *testing.T, from, to netns.NsHandle, addr string) {
	t.Helper()
	var ln net.Listener
	inNS(t, to, func() {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	inNS(t, from, func() {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Errorf("connect to %s: %v", addr, err)
			return
		}
		c.Close()
	})
}

// inNS runs fn with the (locked) thread in ns; netns.None() means stay.
func inNS(t *testing.T, ns netns.NsHandle, fn func()) {
	t.Helper()
	if !ns.IsOpen() {
		fn()
		return
	}
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(cur); err != nil {
			t.Fatalf("back to the test namespace: %v", err)
		}
	}()
	fn()
}

// waitGone waits for the kernel to delete a link: namespaces are torn
// down asynchronously after their last reference goes.
func waitGone(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if l, err := linkByName(h, name); err == nil && l == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s still there 60 s after its namespace was closed", name)
}
