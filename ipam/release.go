package ipam

import (
	"fmt"
	"net/netip"

	"github.com/sirupsen/logrus"
)

// ReleaseLease frees address a of pool poolID if it is leased there, and
// reports whether it was. The driver's orphan reaper uses it for the
// leases of endpoints the engine forgot while mynet was not answering
// (the engine's own ReleaseAddress failed and will not come again);
// unlike ReleaseAddress it says whether anything was freed, for the log.
func (m *IPAM) ReleaseLease(poolID string, a netip.Addr) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[poolID]
	if !ok || !p.leased(a) {
		return false, nil
	}
	if err := m.st.Delete(leasesBucket, leaseKey(p.id, a)); err != nil {
		return false, fmt.Errorf("releasing address %s in pool %s: %w", a, p.prefix, err)
	}
	p.unmark(a)
	m.log.WithFields(logrus.Fields{"pool": p.id, "address": a}).Info("address released: its endpoint was reaped")
	return true, nil
}
