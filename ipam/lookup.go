package ipam

import "net/netip"

// PoolOf returns the ID of the pool whose subnet is subnet, if mynet holds
// one. It is how `mynet attach` finds where to lease an address for a
// network: the driver knows a network's subnet, not its PoolID. Held pools
// never overlap (checkOverlap), so at most one matches. A network created
// with Docker's own IPAM has no pool here.
func (m *IPAM) PoolOf(subnet netip.Prefix) (string, bool) {
	if !subnet.IsValid() {
		return "", false
	}
	subnet = subnet.Masked()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, p := range m.pools {
		if p.prefix == subnet {
			return id, true
		}
	}
	return "", false
}
