package ipam

import (
	"fmt"
	"net/netip"
	"strings"
)

// A lease is an address taken in memory whose record is being written. It
// is taken under mu and written without it, so that concurrent calls share
// the Store's fsync; until the write returns, the key stays in
// IPAM.writing and the address is refused release.
type lease struct {
	pool *pool
	addr netip.Addr
	rec  leaseRecord
	// cursor is the pool's cursor before an automatic allocation (rec.Seq
	// set) moved it, restored if the write fails and nothing moved it since.
	cursor int
}

// take leases an address in memory: exactly want when valid, the pool's
// gateway, or the next free one. Called with mu held.
func (m *IPAM) take(poolID string, want netip.Addr, gateway bool, opts map[string]string) (lease, error) {
	p, ok := m.pools[poolID]
	if !ok {
		return lease{}, errorf(ErrUnknownPool, "pool %q is not held by mynet (was it released?): recreate the network", poolID)
	}
	switch {
	case want.IsValid():
		return m.reserve(p, want, leaseKind(gateway, opts))
	case gateway:
		return m.reserveGateway(p)
	}
	return m.allocate(p)
}

// taken notes that a, just marked in p, is being written. Called with mu
// held.
func (m *IPAM) taken(p *pool, a netip.Addr, rec leaseRecord) lease {
	m.writing[leaseKey(p.id, a)] = struct{}{}
	return lease{pool: p, addr: a, rec: rec}
}

// record writes l to the Store, without mu, and gives the address back if
// the write fails. A lease is on disk before RequestAddress answers, as
// when the write was done under mu.
func (m *IPAM) record(l lease) error {
	key := leaseKey(l.pool.id, l.addr)
	err := m.st.Put(leasesBucket, key, l.rec)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.writing, key)
	if err != nil {
		m.untake(l)
		return fmt.Errorf("recording address %s in pool %s: %w", l.addr, l.pool.prefix, err)
	}
	m.debugAddr(l.pool.id, l.addr, l.rec.Kind, "address leased")
	return nil
}

// untake undoes take after a failed write. Nobody can have released the
// address meanwhile (writing refuses it), so it is still l's. The cursor
// goes back only if no allocation moved it since: a failed attempt does
// not use up the address it tried. Called with mu held.
func (m *IPAM) untake(l lease) {
	l.pool.unmark(l.addr)
	if l.rec.Seq == 0 {
		return
	}
	if off, ok := l.pool.offset(l.addr); ok && l.pool.cursor == off {
		l.pool.cursor = l.cursor
	}
}

// poolWriting reports whether a lease of the pool is being written. Called
// with mu held; writing holds at most one key per caller in flight.
func (m *IPAM) poolWriting(poolID string) bool {
	for k := range m.writing {
		if strings.HasPrefix(k, poolID+"|") {
			return true
		}
	}
	return false
}
