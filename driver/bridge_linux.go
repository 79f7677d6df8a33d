package driver

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// bridgeSpec is what a network's bridge must look like.
type bridgeSpec struct {
	Name  string
	Owner string   // network ID, recorded in the link alias
	Inst  Instance // whose alias and group the bridge gets
	MTU   int      // 0 leaves the kernel's value
	// KeepMAC: an existing bridge of ours may still follow its ports'
	// MACs (made before createBridge gave bridges their own); make the
	// kernel keep the one it has.
	KeepMAC bool
	Log     *logrus.Entry // for undo failures
}

// ensureBridge makes the bridge exist and be up with its MTU. It returns
// the link and whether mynet owns it (created it now or before, as its
// alias says) and so may delete it. A bridge of that name without our alias
// is adopted: used, never deleted. A bridge created here is deleted again
// if a later step fails.
func ensureBridge(h netlinker, s bridgeSpec) (_ netlink.Link, owned bool, retErr error) {
	br, err := linkByName(h, s.Name)
	if err != nil {
		return nil, false, err
	}
	created := br == nil
	if created {
		if br, err = createBridge(h, s); err != nil {
			return nil, false, err
		}
		defer func() {
			if retErr != nil {
				warnUndo(s.Log, logrus.Fields{"bridge": s.Name}, "delete the new bridge", h.LinkDel(br))
			}
		}()
	} else if br.Type() != "bridge" {
		return nil, false, fmt.Errorf("interface %s exists and is a %s, not a bridge: choose another %s", s.Name, br.Type(), optBridgeName)
	}
	owned = created || br.Attrs().Alias == s.Inst.alias(s.Owner)
	if _, _, mynets := parseTagged(br.Attrs().Alias); mynets && !owned {
		return nil, false, fmt.Errorf("bridge %s belongs to another mynet instance or network (alias %q): choose another %s", s.Name, br.Attrs().Alias, optBridgeName)
	}
	if owned && !created && s.KeepMAC {
		// Setting the MAC it has makes the kernel keep it without changing
		// the gateway's MAC under the containers that use it now. The
		// kernel flushes the host's neighbour entries on the bridge when
		// a MAC is set, so the caller asks for this once per bridge.
		if err := h.LinkSetHardwareAddr(br, br.Attrs().HardwareAddr); err != nil {
			return nil, false, fmt.Errorf("keep the MAC of bridge %s: %w", s.Name, err)
		}
	}
	if s.MTU > 0 && br.Attrs().MTU != s.MTU {
		if err := h.LinkSetMTU(br, s.MTU); err != nil {
			return nil, false, fmt.Errorf("set MTU %d on bridge %s: %w", s.MTU, s.Name, err)
		}
	}
	if err := h.LinkSetUp(br); err != nil {
		return nil, false, fmt.Errorf("set bridge %s up: %w", s.Name, err)
	}
	return br, owned, nil
}

// createBridge creates the bridge with the link attributes Docker's bridge
// driver gives its own: a MAC of its own and no transmit queue length.
//
// The MAC is the gateway's. A bridge created without one borrows the
// lowest MAC of its ports and changes it as ports come and go (the kernel
// keeps it only once set explicitly, NET_ADDR_SET): when the container
// whose host-side veth lent it leaves, every other container still sends
// to the gateway's old MAC, which no port has any more, and loses the
// gateway until its ARP entry expires and is resolved again (39 s with a
// ping every 1.5 s, kernel 6.18).
//
// A bridge never queues (IFF_NO_QUEUE, qdisc noqueue whatever the
// length), so the kernel's default length of 1000 does nothing but differ
// from Docker's 0.
func createBridge(h netlinker, s bridgeSpec) (netlink.Link, error) {
	mac, err := randomMAC()
	if err != nil {
		return nil, fmt.Errorf("create bridge %s: %w", s.Name, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = s.Name
	attrs.HardwareAddr = mac
	attrs.TxQLen = 0
	attrs.Group = s.Inst.group()
	if s.MTU > 0 {
		attrs.MTU = s.MTU
	}
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return nil, fmt.Errorf("create bridge %s: %w", s.Name, err)
	}
	br, err := h.LinkByName(s.Name)
	if err != nil {
		warnUndo(s.Log, logrus.Fields{"bridge": s.Name}, "delete the new bridge", h.LinkDel(&netlink.Bridge{LinkAttrs: attrs}))
		return nil, fmt.Errorf("look up new bridge %s: %w", s.Name, err)
	}
	// The kernel ignores an alias in the creating message (6.18 still),
	// so it is set right after; for the instant in between, start-up
	// reconciliation knows the bridge by the instance's link group, which
	// the kernel does take at creation.
	if err := h.LinkSetAlias(br, s.Inst.alias(s.Owner)); err != nil {
		warnUndo(s.Log, logrus.Fields{"bridge": s.Name}, "delete the new bridge", h.LinkDel(br))
		return nil, fmt.Errorf("mark bridge %s as mynet's: %w", s.Name, err)
	}
	br.Attrs().Alias = s.Inst.alias(s.Owner)
	return br, nil
}

// ensureAddr adds addr to link unless it is there; it reports whether it
// added it. IPv6 gateways skip duplicate address detection: the address is
// the network's by IPAM, and DAD would keep it "tentative" (unusable as a
// source) until the bridge has a port with carrier.
func ensureAddr(h netlinker, link netlink.Link, addr netip.Prefix) (bool, error) {
	a := nlAddr(addr)
	if addr.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	err := h.AddrAdd(link, a)
	if errors.Is(err, syscall.EEXIST) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("add address %s to %s: %w", addr, link.Attrs().Name, err)
	}
	return true, nil
}

// removeAddr removes an address mynet added; one already gone is fine.
func removeAddr(h netlinker, link netlink.Link, addr netip.Prefix) error {
	err := h.AddrDel(link, nlAddr(addr))
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("remove address %s from %s: %w", addr, link.Attrs().Name, err)
	}
	return nil
}

// removeBridge deletes a bridge mynet owns, or from an adopted bridge
// removes only the addresses mynet added. A missing bridge is not an
// error: deletes are retried after crashes.
func removeBridge(h netlinker, name string, owned bool, added []netip.Prefix) error {
	br, err := linkByName(h, name)
	if err != nil || br == nil {
		return err
	}
	if owned {
		if err := h.LinkDel(br); err != nil {
			return fmt.Errorf("delete bridge %s: %w", name, err)
		}
		return nil
	}
	var errs []error
	for _, a := range added {
		errs = append(errs, removeAddr(h, br, a))
	}
	return errors.Join(errs...)
}

// foundBridge is how an adopted bridge was before mynet set it up.
type foundBridge struct {
	MTU int  `json:"mtu"`
	Up  bool `json:"up"`
}

// inspectBridge reads name's MTU and up state; nil if there is no such
// link.
func inspectBridge(h netlinker, name string) (*foundBridge, error) {
	l, err := linkByName(h, name)
	if err != nil || l == nil {
		return nil, err
	}
	return &foundBridge{MTU: l.Attrs().MTU, Up: l.Attrs().Flags&net.FlagUp != 0}, nil
}

// giveBack returns an adopted bridge to the MTU and up state it had:
// mynet set them for its network, and the bridge's owner expects it as
// it was when the network goes. Best effort: failures are logged, and a
// bridge gone meanwhile needs nothing.
func giveBack(h netlinker, name string, was *foundBridge, log *logrus.Entry) {
	br, err := linkByName(h, name)
	if err != nil || br == nil {
		return
	}
	log = log.WithField("bridge", name)
	if was.MTU > 0 && br.Attrs().MTU != was.MTU {
		if err := h.LinkSetMTU(br, was.MTU); err != nil {
			log.WithError(err).Warn("giving an adopted bridge its MTU back")
		}
	}
	if !was.Up && br.Attrs().Flags&net.FlagUp != 0 {
		if err := h.LinkSetDown(br); err != nil {
			log.WithError(err).Warn("setting an adopted bridge down again")
		}
	}
}

// randomMAC returns a random locally administered unicast MAC.
func randomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, fmt.Errorf("random MAC: %w", err)
	}
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac, nil
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   net.IP(p.Addr().AsSlice()),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}
