package fake

import (
	"errors"
	"io"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
)

// maxIfName is the kernel's limit on interface names (IFNAMSIZ - 1).
const maxIfName = 15

// Kernel stands in for netlink in one network namespace: links, their
// addresses and their bridge-port flags live in memory, and a call fails
// where the kernel's fails, with the kernel's error (pinned against a real
// namespace by kernel_linux_test.go): a name taken or an address added
// twice is EEXIST, a link that is gone ENODEV (LinkNotFoundError from
// LinkByName), an address that is not there EADDRNOTAVAIL. Deleting one
// end of a veth pair deletes both, deleting a bridge releases its ports.
// Links are handed out as copies, so a caller sees a change only by asking
// again, as with the kernel. Tests make any call fail with FailOn or
// SetHook.
type Kernel struct {
	mu     sync.Mutex // guards every field below
	links  map[int]netlink.Link
	byName map[string]int
	peers  map[int]int // the other end of each veth, both ways
	addrs  map[int][]netlink.Addr
	ports  map[int]*netlink.Protinfo // bridge ports' flags
	away   map[int]netlink.Link      // moved to another namespace (MoveOut)
	next   int
	fails  []*failure
	hook   func(op, link string) error
}

// failure is a FailOn still to come.
type failure struct {
	op   string
	left int
	err  error
}

// NewKernel returns an empty fake kernel.
func NewKernel() *Kernel {
	return &Kernel{links: map[int]netlink.Link{}, byName: map[string]int{}, peers: map[int]int{},
		addrs: map[int][]netlink.Addr{}, ports: map[int]*netlink.Protinfo{}, away: map[int]netlink.Link{}}
}

// FailOn makes the n-th call of op from now on (1: the next one) return
// err instead of doing anything. op is the method's name, e.g.
// "LinkSetMasterByIndex".
func (k *Kernel) FailOn(op string, n int, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fails = append(k.fails, &failure{op: op, left: n, err: err})
}

// SetHook has fn asked before every call with the method's name and the
// name of the link it is about ("" for none); a non-nil answer is returned
// instead of doing the call. fn runs without the kernel's lock, so it may
// call the kernel itself (to change it under the caller's feet). nil
// removes the hook.
func (k *Kernel) SetHook(fn func(op, link string) error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.hook = fn
}

// call runs the failures tests asked for before op does anything.
func (k *Kernel) call(op, link string) error {
	k.mu.Lock()
	hook := k.hook
	err := k.countDown(op)
	k.mu.Unlock()
	if err != nil || hook == nil {
		return err
	}
	return hook(op, link)
}

// countDown counts a call of op against every FailOn for it and returns
// the error of the first that is due. Caller holds k.mu.
func (k *Kernel) countDown(op string) error {
	var err error
	for _, f := range k.fails {
		if f.op == op {
			if f.left--; f.left == 0 && err == nil {
				err = f.err
			}
		}
	}
	k.fails = slices.DeleteFunc(k.fails, func(f *failure) bool { return f.left <= 0 })
	return err
}

// find is the kernel's copy of l: by index, as netlink names links, or by
// name for one never looked up (netlink's ensureIndex), whose index it
// fills in as netlink does. A name nothing has leaves netlink with index
// 0, which some requests answer with EINVAL (noIndex), others ENODEV.
// Caller holds k.mu.
func (k *Kernel) find(l netlink.Link, noIndex error) (netlink.Link, error) {
	a := l.Attrs()
	if a.Index == 0 {
		i, ok := k.byName[a.Name]
		if !ok {
			return nil, noIndex
		}
		a.Index = i
	}
	cur, ok := k.links[a.Index]
	if !ok {
		return nil, syscall.ENODEV
	}
	return cur, nil
}

// change applies fn to the kernel's copy of l.
func (k *Kernel) change(op string, l netlink.Link, noIndex error, fn func(cur netlink.Link) error) error {
	if err := k.call(op, l.Attrs().Name); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	cur, err := k.find(l, noIndex)
	if err != nil {
		return err
	}
	return fn(cur)
}

// LinkByName returns a copy of the link, or LinkNotFoundError.
func (k *Kernel) LinkByName(name string) (netlink.Link, error) {
	if err := k.call("LinkByName", name); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	i, ok := k.byName[name]
	if !ok {
		return nil, linkNotFound()
	}
	return clone(k.links[i]), nil
}

// LinkList lists copies of the links in index order, as the kernel dumps
// them.
func (k *Kernel) LinkList() ([]netlink.Link, error) {
	if err := k.call("LinkList", ""); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]netlink.Link, 0, len(k.links))
	for _, i := range slices.Sorted(maps.Keys(k.links)) {
		out = append(out, clone(k.links[i]))
	}
	return out, nil
}

// LinkAdd creates the link, and a veth's peer with it, and sets l's index
// as netlink does. As in the kernel, an alias in the request is ignored
// and a MasterIndex is set after the link exists (netlink does it in a
// second request, so a failure there leaves the link).
func (k *Kernel) LinkAdd(l netlink.Link) error {
	if err := k.call("LinkAdd", l.Attrs().Name); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	v, isVeth := l.(*netlink.Veth)
	names := []string{l.Attrs().Name}
	if isVeth {
		names = append(names, v.PeerName)
	}
	if err := k.checkNames(names); err != nil {
		return err
	}
	l.Attrs().Index = k.insert(l)
	if isVeth {
		p := k.insert(&netlink.Veth{LinkAttrs: peerAttrs(v)})
		k.peers[l.Attrs().Index], k.peers[p] = p, l.Attrs().Index
	}
	if m := l.Attrs().MasterIndex; m != 0 {
		return k.setMaster(k.links[l.Attrs().Index], m)
	}
	return nil
}

// checkNames refuses names the kernel refuses. Caller holds k.mu.
func (k *Kernel) checkNames(names []string) error {
	for i, n := range names {
		switch _, taken := k.byName[n]; {
		case n == "":
			return syscall.EINVAL
		case len(n) > maxIfName:
			return syscall.ERANGE
		case taken || slices.Contains(names[:i], n):
			return syscall.EEXIST
		}
	}
	return nil
}

// insert stores a copy of l with the kernel's defaults under a new index.
// Caller holds k.mu.
func (k *Kernel) insert(l netlink.Link) int {
	c := clone(l)
	a := c.Attrs()
	k.next++
	a.Index, a.MasterIndex, a.Alias = k.next, 0, ""
	a.Flags &= net.FlagUp
	if a.MTU <= 0 {
		a.MTU = 1500
	}
	if a.TxQLen < 0 {
		a.TxQLen = 1000
	}
	if a.HardwareAddr == nil {
		a.HardwareAddr = net.HardwareAddr{0x02, 0, 0, 0, byte(k.next >> 8), byte(k.next)}
	}
	if v, ok := c.(*netlink.Veth); ok {
		v.PeerName, v.PeerHardwareAddr = "", nil // a dump does not say
	}
	k.links[k.next], k.byName[a.Name] = c, k.next
	return k.next
}

// peerAttrs is what netlink asks of a veth's peer: its name and MAC, and
// the MTU and queue length of the pair.
func peerAttrs(v *netlink.Veth) netlink.LinkAttrs {
	a := netlink.NewLinkAttrs()
	a.Name, a.HardwareAddr, a.MTU, a.TxQLen = v.PeerName, v.PeerHardwareAddr, v.MTU, v.TxQLen
	return a
}

// LinkDel deletes the link, both ends of a veth pair, and releases a
// bridge's ports.
func (k *Kernel) LinkDel(l netlink.Link) error {
	if err := k.call("LinkDel", l.Attrs().Name); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	cur, err := k.find(l, syscall.EINVAL)
	if err != nil {
		return err
	}
	i := cur.Attrs().Index
	if p, ok := k.peers[i]; ok {
		k.remove(p)
	}
	k.remove(i)
	return nil
}

// remove forgets link i, here or moved out, and what hangs on it. Caller
// holds k.mu.
func (k *Kernel) remove(i int) {
	if l, ok := k.links[i]; ok {
		delete(k.byName, l.Attrs().Name)
	}
	delete(k.links, i)
	delete(k.away, i)
	delete(k.peers, i)
	k.detach(i)
}

// detach drops link i's addresses and bridge port, and its ports if it is
// a bridge. Caller holds k.mu.
func (k *Kernel) detach(i int) {
	delete(k.addrs, i)
	delete(k.ports, i)
	for _, l := range k.links {
		if l.Attrs().MasterIndex == i {
			l.Attrs().MasterIndex = 0
			delete(k.ports, l.Attrs().Index)
		}
	}
}

// MoveOut moves the link to another namespace, as the engine moves a
// container's end of a veth into its sandbox: it leaves this namespace's
// lists with its addresses and its bridge, and deleting the other end of
// its pair still deletes it.
func (k *Kernel) MoveOut(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	i, ok := k.byName[name]
	if !ok {
		return linkNotFound()
	}
	l := k.links[i]
	k.detach(i)
	l.Attrs().MasterIndex, l.Attrs().Flags = 0, l.Attrs().Flags&^net.FlagUp
	delete(k.links, i)
	delete(k.byName, name)
	k.away[i] = l
	return nil
}

// MoveBack moves a link MoveOut moved back into this namespace, as the
// engine does with a container's end when the container stops; a name
// taken meanwhile is EEXIST.
func (k *Kernel) MoveBack(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, l := range k.away {
		if l.Attrs().Name != name {
			continue
		}
		if _, taken := k.byName[name]; taken {
			return syscall.EEXIST
		}
		delete(k.away, i)
		k.links[i], k.byName[name] = l, i
		return nil
	}
	return linkNotFound()
}

func (k *Kernel) LinkSetUp(l netlink.Link) error {
	return k.change("LinkSetUp", l, syscall.ENODEV, func(cur netlink.Link) error {
		cur.Attrs().Flags |= net.FlagUp
		return nil
	})
}

func (k *Kernel) LinkSetDown(l netlink.Link) error {
	return k.change("LinkSetDown", l, syscall.ENODEV, func(cur netlink.Link) error {
		cur.Attrs().Flags &^= net.FlagUp
		return nil
	})
}

func (k *Kernel) LinkSetMTU(l netlink.Link, mtu int) error {
	return k.change("LinkSetMTU", l, syscall.ENODEV, func(cur netlink.Link) error {
		if mtu < 68 || mtu > 65535 {
			return syscall.EINVAL
		}
		cur.Attrs().MTU = mtu
		return nil
	})
}

func (k *Kernel) LinkSetAlias(l netlink.Link, alias string) error {
	return k.change("LinkSetAlias", l, syscall.EINVAL, func(cur netlink.Link) error {
		cur.Attrs().Alias = alias
		return nil
	})
}

func (k *Kernel) LinkSetHardwareAddr(l netlink.Link, mac net.HardwareAddr) error {
	return k.change("LinkSetHardwareAddr", l, syscall.ENODEV, func(cur netlink.Link) error {
		cur.Attrs().HardwareAddr = slices.Clone(mac)
		return nil
	})
}

// LinkSetMasterByIndex makes l a port of the bridge with index master, or
// no bridge's with 0.
func (k *Kernel) LinkSetMasterByIndex(l netlink.Link, master int) error {
	return k.change("LinkSetMasterByIndex", l, syscall.EINVAL, func(cur netlink.Link) error {
		return k.setMaster(cur, master)
	})
}

// setMaster: a master that does not exist is EINVAL, one that is not a
// bridge (or the link itself) EOPNOTSUPP. Caller holds k.mu.
func (k *Kernel) setMaster(cur netlink.Link, master int) error {
	i := cur.Attrs().Index
	if master == 0 {
		cur.Attrs().MasterIndex = 0
		delete(k.ports, i)
		return nil
	}
	m, ok := k.links[master]
	switch {
	case !ok:
		return syscall.EINVAL
	case m.Type() != "bridge" || master == i:
		return syscall.EOPNOTSUPP
	}
	if cur.Attrs().MasterIndex != master {
		cur.Attrs().MasterIndex = master
		k.ports[i] = &netlink.Protinfo{Learning: true, Flood: true}
	}
	return nil
}

func (k *Kernel) LinkSetIsolated(l netlink.Link, on bool) error {
	return k.setPort("LinkSetIsolated", l, func(p *netlink.Protinfo) { p.Isolated = on })
}

func (k *Kernel) LinkSetHairpin(l netlink.Link, on bool) error {
	return k.setPort("LinkSetHairpin", l, func(p *netlink.Protinfo) { p.Hairpin = on })
}

// setPort changes a bridge port's flags; a link that is no bridge's port
// has none (EOPNOTSUPP).
func (k *Kernel) setPort(op string, l netlink.Link, fn func(*netlink.Protinfo)) error {
	return k.change(op, l, syscall.ENODEV, func(cur netlink.Link) error {
		p, ok := k.ports[cur.Attrs().Index]
		if !ok {
			return syscall.EOPNOTSUPP
		}
		fn(p)
		return nil
	})
}

// LinkGetProtinfo returns a bridge port's flags, as netlink.Handle does,
// for tests.
func (k *Kernel) LinkGetProtinfo(l netlink.Link) (netlink.Protinfo, error) {
	var out netlink.Protinfo
	err := k.change("LinkGetProtinfo", l, syscall.ENODEV, func(cur netlink.Link) error {
		if p, ok := k.ports[cur.Attrs().Index]; ok {
			out = *p
		}
		return nil
	})
	return out, err
}

// AddrAdd adds the address. The kernel tells IPv4 addresses apart by
// address and prefix length, IPv6 ones by address alone.
func (k *Kernel) AddrAdd(l netlink.Link, addr *netlink.Addr) error {
	return k.change("AddrAdd", l, syscall.ENODEV, func(cur netlink.Link) error {
		i := cur.Attrs().Index
		for _, a := range k.addrs[i] {
			if a.IP.Equal(addr.IP) && (a.IP.To4() == nil || sameLen(a, *addr)) {
				return syscall.EEXIST
			}
		}
		c := copyAddr(*addr)
		c.LinkIndex = i
		if c.IP.To4() != nil && c.Label == "" {
			c.Label = cur.Attrs().Name
		}
		k.addrs[i] = append(k.addrs[i], c)
		return nil
	})
}

// AddrDel removes the address with that prefix length.
func (k *Kernel) AddrDel(l netlink.Link, addr *netlink.Addr) error {
	return k.change("AddrDel", l, syscall.ENODEV, func(cur netlink.Link) error {
		i := cur.Attrs().Index
		n := len(k.addrs[i])
		k.addrs[i] = slices.DeleteFunc(k.addrs[i], func(a netlink.Addr) bool { return a.IP.Equal(addr.IP) && sameLen(a, *addr) })
		if len(k.addrs[i]) == n {
			return syscall.EADDRNOTAVAIL
		}
		return nil
	})
}

// AddrList lists the addresses of family (netlink.FAMILY_ALL for both) on
// l, or on every link for a nil l. Like netlink, which filters a dump of
// all addresses, it lists none for a link that is gone, without error.
func (k *Kernel) AddrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	name := ""
	if l != nil {
		name = l.Attrs().Name
	}
	if err := k.call("AddrList", name); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	idx := 0
	if l != nil {
		if idx = l.Attrs().Index; idx == 0 {
			idx = k.byName[name]
		}
	}
	var out []netlink.Addr
	for _, i := range slices.Sorted(maps.Keys(k.addrs)) {
		if l != nil && i != idx {
			continue
		}
		for _, a := range k.addrs[i] {
			if family == netlink.FAMILY_ALL || (a.IP.To4() != nil) == (family == netlink.FAMILY_V4) {
				out = append(out, copyAddr(a))
			}
		}
	}
	return out, nil
}

// ConntrackDeleteFilters finds no flows to delete.
func (k *Kernel) ConntrackDeleteFilters(netlink.ConntrackTableType, netlink.InetFamily, ...netlink.CustomConntrackFilter) (uint, error) {
	return 0, k.call("ConntrackDeleteFilters", "")
}

// Reserve grants every host port without touching the host.
func (k *Kernel) Reserve(string, netip.Addr, uint16) (io.Closer, error) {
	if err := k.call("Reserve", ""); err != nil {
		return nil, err
	}
	return nopCloser{}, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func sameLen(a, b netlink.Addr) bool {
	x, _ := a.Mask.Size()
	y, _ := b.Mask.Size()
	return x == y
}

func copyAddr(a netlink.Addr) netlink.Addr {
	a.IPNet = &net.IPNet{IP: slices.Clone(a.IP), Mask: slices.Clone(a.Mask)}
	return a
}

// clone copies the link's struct (every netlink link type is a pointer to
// one), so that callers cannot change the kernel's copy.
func clone(l netlink.Link) netlink.Link {
	v := reflect.New(reflect.TypeOf(l).Elem())
	v.Elem().Set(reflect.ValueOf(l).Elem())
	return v.Interface().(netlink.Link)
}

// linkNotFound is the LinkNotFoundError netlink's LinkByName returns. Its
// message sits in an unexported field, which only reflection can fill
// outside netlink; the zero value would panic when printed.
func linkNotFound() error {
	var e netlink.LinkNotFoundError
	f := reflect.ValueOf(&e).Elem().Field(0)
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(errors.New("Link not found")))
	return e
}
