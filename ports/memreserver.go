package ports

import (
	"io"
	"net/netip"
	"sync"
)

// MemReserver holds host ports in memory with the kernel's bind rules, for
// tests and benchmarks that must not touch the host: a port held on the
// wildcard address conflicts with the same port on every address of its
// family, and the families are apart (mynet's IPv6 holds are
// IPV6_V6ONLY). Safe for concurrent use.
type MemReserver struct {
	mu    sync.Mutex
	held  map[HostPort]bool
	taken map[HostPort]bool // held by "another program"
}

// NewMemReserver returns a MemReserver holding nothing.
func NewMemReserver() *MemReserver {
	return &MemReserver{held: map[HostPort]bool{}, taken: map[HostPort]bool{}}
}

// Reserve holds port as SocketReserver would, failing with *InUseError
// where a bind would fail.
func (r *MemReserver) Reserve(proto string, ip netip.Addr, port uint16) (io.Closer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := HostPort{proto, ip, port}
	if r.conflicts(k) {
		return nil, &InUseError{Proto: proto, HostIP: ip, Port: port}
	}
	r.held[k] = true
	return closeFunc(func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.held, k)
		return nil
	}), nil
}

func (r *MemReserver) conflicts(k HostPort) bool {
	for _, set := range []map[HostPort]bool{r.held, r.taken} {
		for o := range set {
			if o.Proto == k.Proto && o.Port == k.Port && o.IP.Is4() == k.IP.Is4() && (o.IP == k.IP || o.IP.IsUnspecified() || k.IP.IsUnspecified()) {
				return true
			}
		}
	}
	return false
}

// Take marks a port as held by another program, for good.
func (r *MemReserver) Take(proto string, ip netip.Addr, port uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.taken[HostPort{proto, ip, port}] = true
}

// Untake gives back a port Take marked.
func (r *MemReserver) Untake(proto string, ip netip.Addr, port uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.taken, HostPort{proto, ip, port})
}

// Held is the number of ports held through Reserve and not yet released.
func (r *MemReserver) Held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.held)
}

type closeFunc func() error

func (f closeFunc) Close() error { return f() }
