package driver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
)

// bridgeSpec is what a network's bridge must look like.
type bridgeSpec struct {
	Name    string
	Owner   string       // network ID, recorded in the link alias
	MTU     int          // 0 leaves the kernel's value
	Gateway netip.Prefix // address on the bridge; invalid for none
}

// ensureBridge makes the bridge exist, up, with its MTU and gateway address.
// It returns whether mynet created it (and so may delete it) and whether it
// added the gateway address. A link of that name that is a bridge without
// our alias is adopted: used, never deleted. Whatever this call created is
// undone if a later step fails.
func ensureBridge(h netlinker, s bridgeSpec) (owned, addedAddr bool, retErr error) {
	br, err := linkByName(h, s.Name)
	if err != nil {
		return false, false, err
	}
	created := false
	if br == nil {
		if br, err = createBridge(h, s); err != nil {
			return false, false, err
		}
		created = true
		defer func() {
			if retErr != nil {
				_ = h.LinkDel(br) // undo: the bridge is ours and unused
			}
		}()
	} else if br.Type() != "bridge" {
		return false, false, fmt.Errorf("interface %s exists and is a %s, not a bridge: choose another %s", s.Name, br.Type(), optBridgeName)
	}
	owned = created || br.Attrs().Alias == ownerAlias(s.Owner)

	if s.MTU > 0 && br.Attrs().MTU != s.MTU {
		if err := h.LinkSetMTU(br, s.MTU); err != nil {
			return false, false, fmt.Errorf("set MTU %d on bridge %s: %w", s.MTU, s.Name, err)
		}
	}
	if s.Gateway.IsValid() {
		if addedAddr, err = ensureAddr(h, br, s.Gateway); err != nil {
			return false, false, fmt.Errorf("bridge %s: %w", s.Name, err)
		}
	}
	if err := h.LinkSetUp(br); err != nil {
		if addedAddr {
			_ = h.AddrDel(br, nlAddr(s.Gateway))
		}
		return false, false, fmt.Errorf("set bridge %s up: %w", s.Name, err)
	}
	return owned, addedAddr, nil
}

func createBridge(h netlinker, s bridgeSpec) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = s.Name
	if s.MTU > 0 {
		attrs.MTU = s.MTU
	}
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return nil, fmt.Errorf("create bridge %s: %w", s.Name, err)
	}
	br, err := h.LinkByName(s.Name)
	if err != nil {
		return nil, fmt.Errorf("look up new bridge %s: %w", s.Name, err)
	}
	if err := h.LinkSetAlias(br, ownerAlias(s.Owner)); err != nil {
		_ = h.LinkDel(br)
		return nil, fmt.Errorf("mark bridge %s as mynet's: %w", s.Name, err)
	}
	return br, nil
}

// ensureAddr adds addr to link unless it is there; it reports whether it
// added it.
func ensureAddr(h netlinker, link netlink.Link, addr netip.Prefix) (bool, error) {
	err := h.AddrAdd(link, nlAddr(addr))
	if errors.Is(err, syscall.EEXIST) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("add address %s: %w", addr, err)
	}
	return true, nil
}

// removeBridge deletes a bridge mynet created, or for an adopted bridge
// removes only the gateway address mynet added. A missing bridge is not an
// error: deletes are retried after crashes.
func removeBridge(h netlinker, name string, owned bool, gw netip.Prefix, addedAddr bool) error {
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
	if addedAddr && gw.IsValid() {
		if err := h.AddrDel(br, nlAddr(gw)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return fmt.Errorf("remove address %s from adopted bridge %s: %w", gw, name, err)
		}
	}
	return nil
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   net.IP(p.Addr().AsSlice()),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}
