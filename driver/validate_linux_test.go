//go:build linux

package driver

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/nstest"
)

// linkState is what a refused create must leave as it was.
type linkState struct {
	mtu   int
	flags net.Flags
	alias string
	addrs []string
}

func stateOf(t *testing.T, h *netlink.Handle, name string) linkState {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	s := linkState{mtu: l.Attrs().MTU, flags: l.Attrs().Flags, alias: l.Attrs().Alias}
	for _, a := range as {
		s.addrs = append(s.addrs, a.IPNet.String())
	}
	slices.Sort(s.addrs)
	return s
}

func addLink(t *testing.T, h *netlink.Handle, l netlink.Link, up bool, addrs ...string) {
	t.Helper()
	if err := h.LinkAdd(l); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
	}
	if up {
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

// addHostLink makes eth9, a host interface with addresses (a veth pair
// with its peer up, so that it has carrier: dummy links need a module
// not every kernel loads).
func addHostLink(t *testing.T, h *netlink.Handle, addrs ...string) {
	t.Helper()
	addLink(t, h, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth9"}, PeerName: "eth9p"}, true, addrs...)
	p, err := h.LinkByName("eth9p")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(p); err != nil {
		t.Fatal(err)
	}
}

// A create refused for its name, its pool or the host's own subnet is
// refused before any kernel change: the link it names (docker0 behind a
// NUL, an adopted bridge) keeps its MTU, flags, alias and addresses, and
// no bridge is made.
func TestRefusedCreateChangesNoLink(t *testing.T) {
	tests := []struct {
		name    string
		opts    map[string]any
		pool    string
		pool6   string
		wantErr string
	}{
		{name: "docker0 behind a NUL", opts: map[string]any{optBridgeName: "docker0\x00", optMTU: "9000"}, wantErr: "printable ASCII only"},
		{name: "adopted bridge on the host's subnet", opts: map[string]any{optBridgeName: "victim0", optMTU: "9000"},
			pool: "10.60.0.0/24", wantErr: "subnet 10.60.0.0/24 overlaps 10.60.0.0/24, which the host is connected to on eth9"},
		{name: "adopted bridge, pool around the host's subnet", opts: map[string]any{optBridgeName: "victim0", optMTU: "9000"},
			pool: "10.60.0.0/16", wantErr: "overlaps 10.60.0.0/24, which the host is connected to on eth9"},
		{name: "adopted bridge on loopback", opts: map[string]any{optBridgeName: "victim0", optMTU: "9000"},
			pool: "127.0.0.0/8", wantErr: "overlaps 127.0.0.0/8 (loopback"},
		{name: "own bridge on the host's IPv6 subnet", pool: "10.61.0.0/24", pool6: "fd00:60::/64",
			wantErr: "subnet fd00:60::/64 overlaps fd00:60::/64, which the host is connected to on eth9"},
		{name: "trusted wildcard", opts: map[string]any{optBridgeName: "victim0", optMTU: "9000", optTrusted: "+"}, wantErr: `interface "+"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nstest.Run(t, func(h *netlink.Handle) {
				addLink(t, h, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "docker0", MTU: 1500}}, false, "172.17.0.1/16")
				addLink(t, h, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "victim0", MTU: 1500}}, false)
				addHostLink(t, h, "10.60.0.5/24", "fd00:60::5/64")
				before := map[string]linkState{}
				for _, n := range []string{"docker0", "victim0", "eth9"} {
					before[n] = stateOf(t, h, n)
				}
				d, err := New(h, newFakeFirewall(), newFakeFirewall(), newMemStore(), quietLog())
				if err != nil {
					t.Fatal(err)
				}
				req := createReq(tt.opts)
				if tt.pool != "" {
					req.IPv4Data = []*network.IPAMData{{Pool: tt.pool}}
				}
				if tt.pool6 != "" {
					req.IPv6Data = []*network.IPAMData{{Pool: tt.pool6}}
				}
				if err := d.CreateNetwork(req); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("create = %v, want an error containing %q", err, tt.wantErr)
				}
				for n, want := range before {
					if got := stateOf(t, h, n); !slices.Equal(got.addrs, want.addrs) || got.mtu != want.mtu || got.flags != want.flags || got.alias != want.alias {
						t.Errorf("%s after a refused create: %+v, was %+v", n, got, want)
					}
				}
				if got := links(t, h); strings.Join(got, " ") != "docker0 victim0 eth9p eth9" {
					t.Errorf("links after a refused create: %q", got)
				}
			})
		})
	}
}

// mynet.allow_host_subnet=true lets a user overlap the host's subnet on
// purpose; the network's own bridge carrying the subnet is no overlap.
func TestAllowHostSubnet(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		addHostLink(t, h, "10.50.0.5/24")
		d, _, _ := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(map[string]any{optAllowHostSubnet: "true"})); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
		// A bridge of the user's that already carries the gateway.
		addLink(t, h, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "userbr0"}}, true, "10.70.0.1/24")
		req := createReq(map[string]any{optBridgeName: "userbr0"})
		req.IPv4Data = []*network.IPAMData{{Pool: "10.70.0.0/24", Gateway: "10.70.0.1/24"}}
		if err := d.CreateNetwork(req); err != nil {
			t.Fatalf("adopting a bridge that carries the subnet: %v", err)
		}
	})
}
