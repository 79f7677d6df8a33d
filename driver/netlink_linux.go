package driver

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// netlinker is the part of *netlink.Handle the driver uses. A handle bound
// to a namespace (netlink.NewHandleAt) lets kernel tests run in a throwaway
// namespace; fakes can fail the way the kernel fails.
type netlinker interface {
	LinkByName(name string) (netlink.Link, error)
	LinkList() ([]netlink.Link, error)
	LinkAdd(link netlink.Link) error
	LinkDel(link netlink.Link) error
	LinkSetUp(link netlink.Link) error
	LinkSetDown(link netlink.Link) error
	LinkSetMTU(link netlink.Link, mtu int) error
	LinkSetMasterByIndex(link netlink.Link, masterIndex int) error
	LinkSetAlias(link netlink.Link, alias string) error
	LinkSetIsolated(link netlink.Link, mode bool) error
	LinkSetHairpin(link netlink.Link, mode bool) error
	LinkSetHardwareAddr(link netlink.Link, hwaddr net.HardwareAddr) error
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	ConntrackDeleteFilters(table netlink.ConntrackTableType, family netlink.InetFamily, filters ...netlink.CustomConntrackFilter) (uint, error)
}

var _ netlinker = (*netlink.Handle)(nil)

// linkByName returns (nil, nil) when the link does not exist, so callers can
// tell "absent" from a real failure without inspecting error types.
func linkByName(h netlinker, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up link %s: %w", name, err)
	}
	return l, nil
}
