package driver

import (
	"io"
	"net/netip"
	"sort"
	"sync"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/ports"
)

// The fake firewall's port side: published mappings by their text, bridges
// with port rules, route_localnet per bridge.

func (f *fakeFirewall) EnsurePorts(b firewall.PortBridge, ms []firewall.Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPorts != nil {
		return f.failPorts
	}
	if err := f.failing("EnsurePorts"); err != nil {
		return err
	}
	f.init()
	f.portBridges[b.Bridge] = b
	for _, m := range ms {
		f.mappings[m.String()] = m
	}
	return nil
}

func (f *fakeFirewall) RemovePorts(ms []firewall.Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("RemovePorts"); err != nil {
		return err
	}
	f.init()
	for _, m := range ms {
		delete(f.mappings, m.String())
	}
	return nil
}

func (f *fakeFirewall) RemoveBridgePorts(b firewall.PortBridge) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("RemoveBridgePorts"); err != nil {
		return err
	}
	f.init()
	delete(f.portBridges, b.Bridge)
	return nil
}

func (f *fakeFirewall) SetRouteLocalnet(bridge string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("SetRouteLocalnet"); err != nil {
		return err
	}
	f.init()
	f.localnet[bridge] = on
	return nil
}

func (f *fakeFirewall) init() {
	if f.mappings == nil {
		f.mappings, f.portBridges, f.localnet = map[string]firewall.Mapping{}, map[string]firewall.PortBridge{}, map[string]bool{}
	}
}

// published lists the mappings in force, sorted.
func (f *fakeFirewall) published() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.mappings {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fakeReserver hands out host ports like the kernel's bind: a port held
// on the wildcard address conflicts with the same port on every address
// of its family (IPv6 holds are IPV6_V6ONLY, so the families are apart).
type fakeReserver struct {
	mu    sync.Mutex
	held  map[resKey]bool
	taken map[resKey]bool // held by "another program"
}

type resKey struct {
	proto string
	ip    netip.Addr
	port  uint16
}

func newFakeReserver() *fakeReserver {
	return &fakeReserver{held: map[resKey]bool{}, taken: map[resKey]bool{}}
}

func (r *fakeReserver) conflicts(k resKey) bool {
	for _, set := range []map[resKey]bool{r.held, r.taken} {
		for o := range set {
			if o.proto == k.proto && o.port == k.port && o.ip.Is4() == k.ip.Is4() && (o.ip == k.ip || o.ip.IsUnspecified() || k.ip.IsUnspecified()) {
				return true
			}
		}
	}
	return false
}

func (r *fakeReserver) Reserve(proto string, ip netip.Addr, port uint16) (io.Closer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := resKey{proto, ip, port}
	if r.conflicts(k) {
		return nil, &ports.InUseError{Proto: proto, HostIP: ip, Port: port}
	}
	r.held[k] = true
	return closerFunc(func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.held, k)
		return nil
	}), nil
}

// take marks a port as held by another program.
func (r *fakeReserver) take(proto, ip string, port uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.taken[resKey{proto, netip.MustParseAddr(ip), port}] = true
}

func (r *fakeReserver) heldCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.held)
}

// fixedRange is an ephemeral port range for ports.NewAllocator that does
// not depend on the host's.
func fixedRange(lo, hi uint16) func() (uint16, uint16, error) {
	return func() (uint16, uint16, error) { return lo, hi, nil }
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
