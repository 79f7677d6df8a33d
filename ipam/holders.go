package ipam

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/mynet/mynet/internal/ids"
)

// NetworkFinder names the mynet network whose subnet is subnet;
// *driver.Driver fits. The IPAM knows pools, not networks: this is how an
// error about a held subnet names the network holding it.
type NetworkFinder interface {
	NetworkWith(subnet netip.Prefix) (id string, ok bool)
}

// UseNetworks lets errors about held subnets name the network holding
// them. Call it before serving.
func (m *IPAM) UseNetworks(f NetworkFinder) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.networks = f
}

// overlapError is ErrPoolOverlap with the subnet asked for and the held
// one, so that the message can name the network holding it.
type overlapError struct {
	asked, held netip.Prefix
	// holder names who holds held: "another mynet network" unless known.
	holder string
}

func (e *overlapError) Error() string {
	if e.asked == e.held {
		return fmt.Sprintf("subnet %s is already used by %s", e.asked, e.holder)
	}
	return fmt.Sprintf("subnet %s overlaps subnet %s of %s", e.asked, e.held, e.holder)
}

func (e *overlapError) Unwrap() error { return ErrPoolOverlap }

// nameHolder words err after the network holding its subnet, with the fix
// for a network the engine forgot: a `docker network rm` while mynet was
// down leaves mynet's pool held for ever. Only the engine knows whether it
// still has the network, and the plugin must not ask it from a request,
// so the message says what to do in that case. Called without m.mu held:
// f takes the driver's lock, which is taken before m.mu elsewhere.
func nameHolder(err error, f NetworkFinder) error {
	var oe *overlapError
	if f == nil || !errors.As(err, &oe) {
		return err
	}
	id, ok := f.NetworkWith(oe.held)
	if !ok {
		return err
	}
	named := *oe
	named.holder = "mynet network " + ids.Short(id)
	return fmt.Errorf(`%w; if the engine no longer has that network (docker network ls shows no %s), run "mynet prune"`, &named, ids.Short(id))
}
