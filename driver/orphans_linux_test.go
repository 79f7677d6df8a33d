//go:build linux

package driver

import (
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/mynet/mynet/internal/nstest"
)

// TestReapOrphansKernel: with real veths, a container end moved into
// another namespace is invisible by name while the host end stays, and
// the endpoint is kept however long; when that namespace goes, the kernel
// deletes the pair and the endpoint is reaped after the grace.
func TestReapOrphansKernel(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, st, _ := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID, SandboxKey: "/x"}); err != nil {
			t.Fatal(err)
		}
		sandbox := newNamespace(t)
		peer, err := h.LinkByName("mnce1e2e3e4e5e6")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetNsFd(peer, int(sandbox)); err != nil {
			t.Fatal(err)
		}
		round := func(at time.Time) int {
			inHost, err := d.hostLinks()
			if err != nil {
				t.Fatal(err)
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.reapOrphans(at, inHost)
		}
		now := time.Now()
		for i := range 3 {
			if n := round(now.Add(time.Duration(i) * DefaultOrphanGrace)); n != 0 {
				t.Fatal("the endpoint of a live sandbox was reaped")
			}
		}
		// The sandbox goes; the kernel deletes the pair (asynchronously).
		_ = sandbox.Close()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := h.LinkByName("mnhe1e2e3e4e5e6"); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the host end outlived its peer's namespace by 30 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		gone := now.Add(10 * DefaultOrphanGrace)
		if n := round(gone); n != 0 {
			t.Fatal("reaped at the first sighting")
		}
		if n := round(gone.Add(DefaultOrphanGrace)); n != 1 {
			t.Fatalf("reaped %d a grace after the pair went, want 1", n)
		}
		if st.len(endpointsBucket) != 0 || len(d.endpoints) != 0 {
			t.Errorf("records left: %d stored, %d in memory", st.len(endpointsBucket), len(d.endpoints))
		}
		_ = d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID})
	})
}

// newNamespace makes a network namespace for the test to move links into,
// leaving the calling thread where it was. The caller closes it.
func newNamespace(t *testing.T) netns.NsHandle {
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
		t.Fatalf("back to the test namespace: %v", err)
	}
	return ns
}
