package driver

import (
	"fmt"
	"net"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
)

// vethSpec describes an endpoint's veth pair.
type vethSpec struct {
	Host, Peer string
	Owner      string   // endpoint ID, recorded in the host end's alias
	Inst       Instance // whose alias and group the host end gets
	Bridge     netlink.Link
	MTU        int
	MAC        net.HardwareAddr // for the container end
	// Isolated sets the bridge port's isolated flag: isolated ports cannot
	// talk to each other, only to the bridge itself (the gateway) and
	// non-isolated ports. This is how ICC off holds for every protocol,
	// with or without br_netfilter.
	Isolated bool
	Log      *logrus.Entry // for undo failures
}

// createVeth creates the pair, gives the container end its MAC, puts the
// host end on the bridge and brings it up. The engine moves the container
// end into the sandbox and configures it. On failure nothing is left: the
// pair is deleted (deleting one end removes both).
//
// Both ends get a transmit queue length of 0, as Docker's bridge driver
// gives them: a veth never queues (IFF_NO_QUEUE, qdisc noqueue), so the
// kernel's default of 1000 would only make the links differ.
func createVeth(h netlinker, s vethSpec) (retErr error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = s.Host
	attrs.MTU = s.MTU
	attrs.TxQLen = 0
	attrs.Group = s.Inst.group()
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: s.Peer, PeerHardwareAddr: s.MAC}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth pair %s/%s: %w", s.Host, s.Peer, err)
	}
	defer func() {
		if retErr != nil {
			warnUndo(s.Log, logrus.Fields{"veth": s.Host, "peer": s.Peer}, "delete the new veth pair", h.LinkDel(veth))
		}
	}()
	host, err := h.LinkByName(s.Host)
	if err != nil {
		return fmt.Errorf("look up new veth %s: %w", s.Host, err)
	}
	// The alias marks the pair as mynet's for start-up reconciliation,
	// which knows the host end by its link group for a crash before this.
	if err := h.LinkSetAlias(host, s.Inst.alias(s.Owner)); err != nil {
		return fmt.Errorf("mark veth %s as mynet's: %w", s.Host, err)
	}
	peer, err := h.LinkByName(s.Peer)
	if err != nil {
		return fmt.Errorf("look up new veth %s: %w", s.Peer, err)
	}
	// The peer's MTU follows the network's so the container sees the same
	// value as the bridge port (the engine never touches MTU).
	if err := h.LinkSetMTU(peer, s.MTU); err != nil {
		return fmt.Errorf("set MTU %d on %s: %w", s.MTU, s.Peer, err)
	}
	if err := h.LinkSetMasterByIndex(host, s.Bridge.Attrs().Index); err != nil {
		return fmt.Errorf("attach %s to bridge %s: %w", s.Host, s.Bridge.Attrs().Name, err)
	}
	if s.Isolated {
		if err := h.LinkSetIsolated(host, true); err != nil {
			return fmt.Errorf("isolate bridge port %s: %w", s.Host, err)
		}
	}
	if err := h.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %s up: %w", s.Host, err)
	}
	return nil
}

// removeVeth deletes the pair through its host end. A missing link is not
// an error: the pair vanishes with the container's namespace, and Docker
// retries deletes after crashes.
func removeVeth(h netlinker, host, peer string) error {
	for _, name := range []string{host, peer} {
		l, err := linkByName(h, name)
		if err != nil {
			return err
		}
		if l == nil {
			continue
		}
		if err := h.LinkDel(l); err != nil {
			return fmt.Errorf("delete veth %s: %w", name, err)
		}
		return nil
	}
	return nil
}
