package fake

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/firewall"
)

var errInjected = errors.New("injected")

func veth(name, peer string) *netlink.Veth {
	return &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}
}

// FailOn fails exactly the n-th call of its operation, once, and does
// nothing for it; several count at the same time.
func TestFailOn(t *testing.T) {
	k := NewKernel()
	k.FailOn("LinkAdd", 2, errInjected)
	k.FailOn("LinkAdd", 3, syscall.ENOBUFS)
	var got []error
	for _, n := range []string{"a", "b", "c", "d"} {
		got = append(got, k.LinkAdd(veth("h"+n, "p"+n)))
	}
	if want := []error{nil, errInjected, syscall.ENOBUFS, nil}; !slices.Equal(got, want) {
		t.Fatalf("LinkAdd answered %v, want %v", got, want)
	}
	ls, _ := k.LinkList()
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	if strings.Join(names, " ") != "ha pa hd pd" {
		t.Errorf("links %v: a failed call must change nothing", names)
	}
}

// The hook sees every call with its link's name, can call the kernel
// itself, and is removed with nil.
func TestSetHook(t *testing.T) {
	k := NewKernel()
	var seen []string
	k.SetHook(func(op, link string) error {
		seen = append(seen, op+" "+link)
		if op == "LinkSetUp" {
			l, _ := k.LinkByName(link)
			_ = k.LinkDel(l) // the link vanishes under the caller
		}
		return nil
	})
	_ = k.LinkAdd(veth("h0", "p0"))
	l, _ := k.LinkByName("h0")
	if err := k.LinkSetUp(l); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("LinkSetUp of a link deleted meanwhile = %v, want ENODEV", err)
	}
	k.SetHook(nil)
	_, _ = k.LinkList()
	want := []string{"LinkAdd h0", "LinkByName h0", "LinkSetUp h0", "LinkByName h0", "LinkDel h0"}
	if !slices.Equal(seen, want) {
		t.Errorf("hook saw %q, want %q", seen, want)
	}
}

// A link not found prints like netlink's instead of panicking.
func TestLinkNotFound(t *testing.T) {
	_, err := NewKernel().LinkByName("x")
	var nf netlink.LinkNotFoundError
	if !errors.As(err, &nf) || err.Error() != "Link not found" {
		t.Errorf("LinkByName of a missing link = %v", err)
	}
}

// A container end moved out leaves the lists and its bridge, goes with
// its pair, and can come back.
func TestMoveOut(t *testing.T) {
	k := NewKernel()
	_ = k.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}})
	br, _ := k.LinkByName("br0")
	_ = k.LinkAdd(veth("h0", "c0"))
	_ = k.LinkAdd(veth("h1", "c1"))
	c0, _ := k.LinkByName("c0")
	_ = k.LinkSetMasterByIndex(c0, br.Attrs().Index)
	if err := k.MoveOut("c0"); err != nil {
		t.Fatal(err)
	}
	_ = k.MoveOut("c1")
	if _, err := k.LinkByName("c0"); err == nil {
		t.Fatal("a moved link is still here")
	}
	if err := k.MoveBack("c0"); err != nil {
		t.Fatal(err)
	}
	if c0, _ = k.LinkByName("c0"); c0 == nil || c0.Attrs().MasterIndex != 0 {
		t.Errorf("moved back: %v, want it, off the bridge", c0)
	}
	h1, _ := k.LinkByName("h1")
	_ = k.LinkDel(h1)
	if err := k.MoveBack("c1"); err == nil {
		t.Error("the moved end outlived its pair")
	}
}

// The fake firewall fails the calls Fail names, and only those.
func TestFirewallFail(t *testing.T) {
	fw := Firewall{Fail: func(op string) error {
		if op == "EnsureNetwork" {
			return errInjected
		}
		return nil
	}}
	if err := fw.EnsureNetwork(firewall.Network{}); !errors.Is(err, errInjected) {
		t.Errorf("EnsureNetwork = %v", err)
	}
	if err := fw.RemoveNetwork(firewall.Network{}); err != nil {
		t.Errorf("RemoveNetwork = %v", err)
	}
	if err := (Firewall{}).EnsureNetwork(firewall.Network{}); err != nil {
		t.Errorf("the zero Firewall failed: %v", err)
	}
}
