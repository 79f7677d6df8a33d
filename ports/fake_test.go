package ports

import (
	"io"
	"net/netip"
	"sync"
)

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
		return nil, &InUseError{Proto: proto, HostIP: ip, Port: port}
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

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
