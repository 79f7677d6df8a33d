//go:build linux

package driver

import (
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"

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
