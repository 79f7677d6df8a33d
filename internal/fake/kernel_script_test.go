package fake

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"
)

// kernel is what the script below calls: *netlink.Handle and *Kernel.
type kernel interface {
	LinkByName(name string) (netlink.Link, error)
	LinkAdd(link netlink.Link) error
	LinkDel(link netlink.Link) error
	LinkSetUp(link netlink.Link) error
	LinkSetMTU(link netlink.Link, mtu int) error
	LinkSetAlias(link netlink.Link, alias string) error
	LinkSetMasterByIndex(link netlink.Link, masterIndex int) error
	LinkSetIsolated(link netlink.Link, mode bool) error
	LinkSetHairpin(link netlink.Link, mode bool) error
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	LinkGetProtinfo(link netlink.Link) (netlink.Protinfo, error)
}

// script makes the calls the driver makes, and the mistakes it must
// survive, and tells what each answered. Run on the fake and on a real
// namespace, the answers must be the same.
func script(k kernel) []string {
	var out []string
	say := func(step string, err error) { out = append(out, step+": "+outcome(err)) }
	look := func(name string) netlink.Link {
		l, err := k.LinkByName(name)
		say("look up "+name, err)
		if l == nil {
			return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name}}
		}
		return l
	}
	addr := func(s string) *netlink.Addr { a, _ := netlink.ParseAddr(s); return a }

	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mnbr0", Alias: "ignored"}}
	say("add bridge", k.LinkAdd(br))
	say("add bridge again", k.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mnbr0"}}))
	say("add name too long", k.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mnbr0123456789ab"}}))
	say("add veth over the bridge's name", k.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mnbr0"}, PeerName: "mnp0"}))
	say("add veth whose peer has the bridge's name", k.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mnh0"}, PeerName: "mnbr0"}))
	look("mnh0") // nothing left of the refused pair
	b := look("mnbr0")
	out = append(out, "alias from the request: "+b.Attrs().Alias)
	say("alias", k.LinkSetAlias(b, "mynet"))
	out = append(out, "alias of the copy looked up before: "+b.Attrs().Alias)
	out = append(out, "alias looked up again: "+look("mnbr0").Attrs().Alias)

	say("add v4", k.AddrAdd(b, addr("10.9.0.1/24")))
	say("add v4 again", k.AddrAdd(b, addr("10.9.0.1/24")))
	say("add v4 with another length", k.AddrAdd(b, addr("10.9.0.1/16")))
	say("remove v4 with the other length", k.AddrDel(b, addr("10.9.0.1/16")))
	say("remove a v4 that is not there", k.AddrDel(b, addr("10.9.0.2/24")))
	say("add v6", k.AddrAdd(b, addr("fd00::1/64")))
	say("add v6 with another length", k.AddrAdd(b, addr("fd00::1/56")))
	say("remove v6 with another length", k.AddrDel(b, addr("fd00::1/56")))
	out = append(out, "addresses: "+addrs(k, b, netlink.FAMILY_V4)+" "+addrs(k, b, netlink.FAMILY_V6))

	say("add veth", k.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mnh0", MTU: 1400}, PeerName: "mnc0",
		PeerHardwareAddr: net.HardwareAddr{0x02, 0x42, 0, 0, 0, 2}}))
	h, c := look("mnh0"), look("mnc0")
	out = append(out, fmt.Sprintf("peer: %s mtu %d mac %s", c.Type(), c.Attrs().MTU, c.Attrs().HardwareAddr))
	say("isolate before it is a port", k.LinkSetIsolated(h, true))
	say("hairpin before it is a port", k.LinkSetHairpin(h, true))
	say("master that does not exist", k.LinkSetMasterByIndex(h, 9999))
	say("master that is not a bridge", k.LinkSetMasterByIndex(h, c.Attrs().Index))
	say("master", k.LinkSetMasterByIndex(h, b.Attrs().Index))
	say("isolate", k.LinkSetIsolated(h, true))
	pi, err := k.LinkGetProtinfo(h)
	say("port flags", err)
	out = append(out, fmt.Sprintf("isolated %v hairpin %v", pi.Isolated, pi.Hairpin))
	say("up", k.LinkSetUp(h))
	out = append(out, fmt.Sprintf("up %v master is the bridge %v", look("mnh0").Attrs().Flags&net.FlagUp != 0,
		look("mnh0").Attrs().MasterIndex == b.Attrs().Index))

	say("delete the container end", k.LinkDel(c))
	look("mnh0") // gone with its peer
	say("delete the host end after", k.LinkDel(h))
	say("up after", k.LinkSetUp(h))
	say("MTU after", k.LinkSetMTU(h, 1400))
	say("alias after", k.LinkSetAlias(h, "x"))
	say("master after", k.LinkSetMasterByIndex(h, b.Attrs().Index))
	say("hairpin after", k.LinkSetHairpin(h, true))
	say("add address after", k.AddrAdd(h, addr("10.9.0.3/24")))
	say("remove address after", k.AddrDel(h, addr("10.9.0.3/24")))
	_, err = k.AddrList(h, netlink.FAMILY_ALL)
	say("list addresses after", err)

	missing := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "mnnone"}}
	say("delete by a name nothing has", k.LinkDel(missing))
	say("up by a name nothing has", k.LinkSetUp(missing))
	say("alias by a name nothing has", k.LinkSetAlias(missing, "x"))
	say("add address by a name nothing has", k.AddrAdd(missing, addr("10.9.0.4/24")))

	say("add a port by MasterIndex", k.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mnh1", MasterIndex: b.Attrs().Index}, PeerName: "mnc1"}))
	out = append(out, fmt.Sprintf("port of the bridge %v", look("mnh1").Attrs().MasterIndex == b.Attrs().Index))
	say("delete the bridge", k.LinkDel(b))
	out = append(out, fmt.Sprintf("released: master %d", look("mnh1").Attrs().MasterIndex))
	say("delete by name only", k.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mnh1"}}))
	look("mnc1")
	return out
}

// outcome names an error by what callers test it for.
func outcome(err error) string {
	var nf netlink.LinkNotFoundError
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &nf):
		return "LinkNotFoundError: " + err.Error()
	case errors.As(err, &errno):
		return fmt.Sprintf("errno %d (%v)", int(errno), errno)
	}
	return fmt.Sprintf("%T %v", err, err)
}

func addrs(k kernel, l netlink.Link, family int) string {
	as, err := k.AddrList(l, family)
	if err != nil {
		return outcome(err)
	}
	s := ""
	for _, a := range as {
		s += a.IPNet.String() + " "
	}
	return fmt.Sprintf("[%s]", s)
}
