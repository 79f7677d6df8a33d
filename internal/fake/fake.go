// Package fake holds stand-ins for the kernel side of the driver, for
// benchmarks and fuzz tests that must run without root.
package fake

import (
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/firewall"
)

// Kernel stands in for netlink: links live in a map, every other change
// succeeds. Benchmarks use it to measure the plugin's own cost (HTTP,
// JSON, IPAM, state writes, locking) and fuzz tests to drive the driver
// without root.
type Kernel struct {
	mu    sync.Mutex
	links map[string]netlink.Link
	next  int
}

// NewKernel returns an empty fake kernel.
func NewKernel() *Kernel { return &Kernel{links: map[string]netlink.Link{}} }

func (k *Kernel) LinkByName(name string) (netlink.Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.links[name]; ok {
		return l, nil
	}
	return nil, netlink.LinkNotFoundError{}
}

// LinkList lists the links.
func (k *Kernel) LinkList() ([]netlink.Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]netlink.Link, 0, len(k.links))
	for _, l := range k.links {
		out = append(out, l)
	}
	return out, nil
}

func (k *Kernel) LinkAdd(l netlink.Link) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.next++
	l.Attrs().Index = k.next
	k.links[l.Attrs().Name] = l
	if v, ok := l.(*netlink.Veth); ok {
		peer := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v.PeerName, Index: k.next + 1000000}}
		k.links[v.PeerName] = peer
	}
	return nil
}

func (k *Kernel) LinkDel(l netlink.Link) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.links, l.Attrs().Name)
	if v, ok := l.(*netlink.Veth); ok {
		delete(k.links, v.PeerName)
	}
	return nil
}

func (k *Kernel) LinkSetUp(netlink.Link) error                 { return nil }
func (k *Kernel) LinkSetDown(netlink.Link) error               { return nil }
func (k *Kernel) LinkSetMTU(netlink.Link, int) error           { return nil }
func (k *Kernel) LinkSetMasterByIndex(netlink.Link, int) error { return nil }
func (k *Kernel) LinkSetIsolated(netlink.Link, bool) error     { return nil }
func (k *Kernel) LinkSetHairpin(netlink.Link, bool) error      { return nil }
func (k *Kernel) LinkSetHardwareAddr(l netlink.Link, mac net.HardwareAddr) error {
	l.Attrs().HardwareAddr = mac
	return nil
}
func (k *Kernel) AddrAdd(netlink.Link, *netlink.Addr) error          { return nil }
func (k *Kernel) AddrDel(netlink.Link, *netlink.Addr) error          { return nil }
func (k *Kernel) AddrList(netlink.Link, int) ([]netlink.Addr, error) { return nil, nil }
func (k *Kernel) LinkSetAlias(l netlink.Link, alias string) error {
	l.Attrs().Alias = alias
	return nil
}

func (k *Kernel) ConntrackDeleteFilters(netlink.ConntrackTableType, netlink.InetFamily, ...netlink.CustomConntrackFilter) (uint, error) {
	return 0, nil
}

// ReservePort grants every host port without touching the host.
func (k *Kernel) ReservePort(string, netip.Addr, uint16) (io.Closer, error) { return nopCloser{}, nil }

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// Firewall accepts every rule change.
type Firewall struct{}

func (Firewall) EnsureNetwork(firewall.Network) error { return nil }
func (Firewall) RemoveNetwork(firewall.Network) error { return nil }
func (Firewall) EnableForwarding() error              { return nil }

// RemoveStale finds nothing stale.
func (Firewall) RemoveStale(func(string) bool) ([]string, error) { return nil, nil }

// Owners finds no rules.
func (Firewall) Owners() (map[string][]string, error) { return nil, nil }

// Intact always reports the rules in place.
func (Firewall) Intact() (bool, string, error) { return true, "", nil }

func (Firewall) EnsurePorts(firewall.PortBridge, []firewall.Mapping) error { return nil }
func (Firewall) RemovePorts([]firewall.Mapping) error                      { return nil }
func (Firewall) RemoveBridgePorts(firewall.PortBridge) error               { return nil }
func (Firewall) SetRouteLocalnet(string, bool) error                       { return nil }

// Store is an in-memory store of JSON records.
type Store struct {
	mu   sync.Mutex
	data map[string]map[string][]byte
}

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{data: map[string]map[string][]byte{}} }

// Put stores v as JSON.
func (s *Store) Put(bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data[bucket] == nil {
		s.data[bucket] = map[string][]byte{}
	}
	s.data[bucket][key] = raw
	return nil
}

// Delete removes a key; a missing one is fine.
func (s *Store) Delete(bucket, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data[bucket], key)
	return nil
}

// ForEach calls fn for every record of bucket in key order.
func (s *Store) ForEach(bucket string, fn func(string, []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(s.data[bucket])) {
		if err := fn(k, s.data[bucket][k]); err != nil {
			return err
		}
	}
	return nil
}
