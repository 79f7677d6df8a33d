//go:build linux

package driver

import (
	"bytes"
	"net"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/nstest"
)

// The bridge keeps the MAC it was created with while ports come and go:
// the gateway's MAC must not follow the lowest port MAC, or containers
// lose the gateway when the port that lent it leaves. Bridge and host veth
// have Docker's transmit queue length, 0.
func TestBridgeAndVethLinkAttributes(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		br, _, err := ensureBridge(h, bridgeSpec{Name: "mntestbr0", Owner: testNetID, MTU: 1500})
		if err != nil {
			t.Fatal(err)
		}
		mac := linkMAC(t, h, "mntestbr0")
		if mac[0]&0x03 != 0x02 {
			t.Errorf("bridge MAC %s: want a locally administered unicast MAC", mac)
		}
		if err := createVeth(h, vethSpec{Host: "mnhtest0", Peer: "mnctest0", Owner: testEpID, Bridge: br, MTU: 1500,
			MAC: net.HardwareAddr{0x02, 0x42, 10, 50, 0, 2}}); err != nil {
			t.Fatal(err)
		}
		// A port whose MAC is below any other: a bridge without a MAC of
		// its own would take it.
		low := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mnlow0", HardwareAddr: net.HardwareAddr{0, 0, 0, 0, 0, 1},
			MasterIndex: br.Attrs().Index}, PeerName: "mnlow1"}
		if err := h.LinkAdd(low); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(low); err != nil {
			t.Fatal(err)
		}
		if got := linkMAC(t, h, "mntestbr0"); !bytes.Equal(got, mac) {
			t.Errorf("bridge MAC changed from %s to %s when a port joined", mac, got)
		}
		if err := h.LinkDel(low); err != nil {
			t.Fatal(err)
		}
		if got := linkMAC(t, h, "mntestbr0"); !bytes.Equal(got, mac) {
			t.Errorf("bridge MAC changed from %s to %s when a port left", mac, got)
		}
		for _, name := range []string{"mntestbr0", "mnhtest0", "mnctest0"} {
			l, err := h.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			if q := l.Attrs().TxQLen; q != 0 {
				t.Errorf("%s: txqueuelen %d, want 0 as Docker's", name, q)
			}
		}
	})
}

func linkMAC(t *testing.T, h *netlink.Handle, name string) net.HardwareAddr {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr
}

// A bridge mynet made before bridges got a MAC of their own follows its
// ports' MACs; ensuring it with KeepMAC (once, at the first start of a
// build that records it) makes the kernel keep the MAC it has now, so the
// gateway's MAC neither changes then nor later.
func TestOwnedBridgeKeepsItsMAC(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		old := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mntestbr0", Alias: ownerAlias("", testNetID)}}
		if err := h.LinkAdd(old); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetAlias(old, ownerAlias("", testNetID)); err != nil {
			t.Fatal(err)
		}
		port := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mnlow0", HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
			MasterIndex: old.Attrs().Index}, PeerName: "mnlow1"}
		if err := h.LinkAdd(port); err != nil {
			t.Fatal(err)
		}
		borrowed := linkMAC(t, h, "mntestbr0")
		if !bytes.Equal(borrowed, port.HardwareAddr) {
			t.Fatalf("bridge MAC %s, want the port's %s (the kernel's borrowing this test relies on)", borrowed, port.HardwareAddr)
		}
		if _, owned, err := ensureBridge(h, bridgeSpec{Name: "mntestbr0", Owner: testNetID, KeepMAC: true}); err != nil || !owned {
			t.Fatalf("ensureBridge: owned %v, %v", owned, err)
		}
		if got := linkMAC(t, h, "mntestbr0"); !bytes.Equal(got, borrowed) {
			t.Errorf("ensureBridge changed the MAC from %s to %s", borrowed, got)
		}
		if err := h.LinkDel(port); err != nil {
			t.Fatal(err)
		}
		if got := linkMAC(t, h, "mntestbr0"); !bytes.Equal(got, borrowed) {
			t.Errorf("bridge MAC changed from %s to %s when the port that lent it left", borrowed, got)
		}
	})
}

// macSetCounter counts the MAC changes the driver asks the kernel for.
type macSetCounter struct {
	*netlink.Handle
	sets int
}

func (c *macSetCounter) LinkSetHardwareAddr(l netlink.Link, mac net.HardwareAddr) error {
	c.sets++
	return c.Handle.LinkSetHardwareAddr(l, mac)
}

// A network recorded by a build that did not keep bridge MACs has its
// bridge's MAC kept at the next start, once: the record says so after,
// and later starts leave the MAC (and the host's neighbour entries, which
// setting it flushes) alone.
func TestRestoreKeepsOldBridgeMACOnce(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d, st, fw := newTestDriver(t, h)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		// The record as an older build wrote it.
		n := d.networks[testNetID]
		n.MACKept = false
		if err := st.Put(networksBucket, n.ID, n); err != nil {
			t.Fatal(err)
		}
		for i, want := range []int{1, 0} {
			c := &macSetCounter{Handle: h}
			d2, err := New(c, fw, nil, st, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			if err := d2.Restore(); err != nil {
				t.Fatal(err)
			}
			if c.sets != want {
				t.Errorf("start %d: %d MAC changes, want %d", i+1, c.sets, want)
			}
		}
	})
}
