//go:build linux

package driver

import (
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nstest"
)

// A network and an endpoint whose IDs are not hex (here two-byte runes,
// which a cut at 9 bytes would split) get names the kernel and the JSON
// record spell alike, so that after a restart (New + Restore) both are
// deleted and nothing is left.
func TestNonHexIDsDeletedAfterRestart(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		netID, epID := strings.Repeat("é", 20), strings.Repeat("ü", 20)
		d, st, fw := newTestDriver(t, h)
		req := createReq(nil)
		req.NetworkID = netID
		if err := d.CreateNetwork(req); err != nil {
			t.Fatal(err)
		}
		ep := epReq("10.50.0.2/24", "")
		ep.NetworkID, ep.EndpointID = netID, epID
		if _, err := d.CreateEndpoint(ep); err != nil {
			t.Fatal(err)
		}
		before := links(t, h)
		for _, name := range before {
			if err := validIfName(name); err != nil {
				t.Errorf("link %q: %v", name, err)
			}
		}
		d2, err := New(h, fw, nil, st, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := d2.Restore(); err != nil {
			t.Fatal(err)
		}
		if got := links(t, h); strings.Join(got, " ") != strings.Join(before, " ") {
			t.Errorf("links after restore = %q, want %q", got, before)
		}
		if err := d2.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: netID, EndpointID: epID}); err != nil {
			t.Fatal(err)
		}
		if err := d2.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: netID}); err != nil {
			t.Fatal(err)
		}
		if got := links(t, h); len(got) != 0 {
			t.Errorf("links left after delete: %q", got)
		}
	})
}

// A record of an older build that trusted "+" (every interface) is
// restored without it, rather than failing its rules and losing its
// bridge.
func TestRestoreDropsWildcardTrusted(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, st, fw := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(map[string]any{optTrusted: "eth1"})); err != nil {
			t.Fatal(err)
		}
		n := *d.networks[testNetID]
		n.Options.Trusted = []string{"+", "eth1", "!eth0"}
		if err := st.Put(networksBucket, n.ID, &n); err != nil {
			t.Fatal(err)
		}
		d2, err := New(h, &checkingFirewall{fw}, nil, st, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := d2.Restore(); err != nil {
			t.Fatal(err)
		}
		if got := d2.networks[testNetID].Options.Trusted; strings.Join(got, ",") != "eth1" {
			t.Errorf("trusted after restore: %q, want eth1", got)
		}
		if _, err := h.LinkByName("mynet-a1b2c3d4e"); err != nil {
			t.Errorf("bridge after restore: %v", err)
		}
	})
}

// checkingFirewall validates networks as the real firewall does.
type checkingFirewall struct{ *fakeFirewall }

func (f *checkingFirewall) EnsureNetwork(n firewall.Network) error {
	if err := firewall.CheckNetwork(n, true); err != nil {
		return err
	}
	return f.fakeFirewall.EnsureNetwork(n)
}

// A record whose bridge name the firewall now refuses (an older build
// took non-ASCII names) fails its restore with that reason and keeps its
// bridge: nothing is half programmed and undone.
func TestRestoreKeepsBridgeOfRefusedRecord(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, st, fw := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		br, err := h.LinkByName("mynet-a1b2c3d4e")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetName(br, "brü"); err != nil {
			t.Fatal(err)
		}
		n := *d.networks[testNetID]
		n.Bridge = "brü"
		if err := st.Put(networksBucket, n.ID, &n); err != nil {
			t.Fatal(err)
		}
		d2, err := New(h, &checkingFirewall{fw}, nil, st, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := d2.Restore(); err == nil || !strings.Contains(err.Error(), "printable ASCII only") {
			t.Errorf("restore = %v, want the name refused", err)
		}
		if _, err := h.LinkByName("brü"); err != nil {
			t.Errorf("bridge after a refused restore: %v", err)
		}
	})
}
