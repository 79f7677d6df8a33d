package driver

// `mynet prune`: removing networks, endpoints and attachments the engine
// forgot. No signal tells a plugin that the engine dropped a network: a
// `docker network rm` or `docker rm -f` while mynet is down fails its
// driver calls, the engine logs them and forgets the objects, and mynet
// keeps them (bridge, rules, host ports, pools and leases) for ever. The
// plugin cannot ask the engine (a plugin calling the engine from a request
// can deadlock it), so the CLI compares mynet's records with what the
// engine lists and names the stale ones here; the driver removes them as
// DeleteEndpoint, DeleteNetwork and ReleasePool would have.
//
// The driver still refuses what it can see is in use, whatever the CLI
// says (it may be talking to another engine): an endpoint whose container
// end is in a live namespace, a network with such an endpoint, and records
// younger than pruneMinAge, which may belong to a network or container the
// engine is creating right now.

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	ipamapi "github.com/docker/go-plugins-helpers/ipam"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ids"
	"github.com/mynet/mynet/ports"
)

// pruneMinAge is how old a record must be to be pruned. The engine lists
// a network only after its CreateNetwork answered, and an endpoint only
// after its Join, which follows CreateEndpoint within the container's
// start: well under this even on a loaded host.
const pruneMinAge = 15 * time.Second

// Prune removes the records req names. Each removal is independent: a
// failure is returned (joined) after the others were tried, and keeps the
// record so that a second prune can finish the job.
func (d *Driver) Prune(req *api.PruneRequest) (*api.PruneAnswer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ans := &api.PruneAnswer{Networks: []api.NetworkInfo{}, Endpoints: []api.EndpointInfo{}}
	now := time.Now()
	var errs []error
	for _, e := range req.Endpoints {
		errs = append(errs, d.pruneEndpoint(e, now, ans))
	}
	for _, n := range req.Networks {
		errs = append(errs, d.pruneNetwork(n, now, ans))
	}
	return ans, errors.Join(errs...)
}

// pruneEndpoint removes one stale endpoint, if it may. Caller holds d.mu.
func (d *Driver) pruneEndpoint(req api.PruneEndpoint, now time.Time, ans *api.PruneAnswer) error {
	ep, ok := d.endpoints[req.ID]
	if !ok {
		return nil // removed meanwhile (the reaper, a detach): nothing to do
	}
	if why, err := d.keepEndpoint(ep, now); err != nil || why != "" {
		keep(ans, ep.ID, "endpoint", why)
		return err
	}
	info := d.endpointInfo(ep)
	if err := d.removeStaleEndpoint(ep, req.ReleaseLease); err != nil {
		return err
	}
	ans.Endpoints = append(ans.Endpoints, info)
	return nil
}

// keepEndpoint says why ep must not be pruned, or "". Caller holds d.mu.
func (d *Driver) keepEndpoint(ep *endpointState, now time.Time) (string, error) {
	if age := ep.age(now); age < pruneMinAge {
		return fmt.Sprintf("created %s ago: it may belong to a container starting now; prune again later", age.Round(time.Second)), nil
	}
	live, err := d.inUse(ep)
	if err != nil || !live {
		return "", err
	}
	return "its container end is in a live network namespace: a running container or process still uses it", nil
}

// inUse reports whether ep's container end has left the host namespace
// while its host end is still there: the pair is in a namespace that
// lives (the kernel deletes both ends with the namespace).
func (d *Driver) inUse(ep *endpointState) (bool, error) {
	host, err := linkByName(d.nl, ep.HostVeth)
	if err != nil || host == nil {
		return false, err
	}
	peer, err := linkByName(d.nl, ep.PeerVeth)
	return err == nil && peer == nil, err
}

// age is how long ago ep was created; records of older builds carry no
// time and count as old.
func (ep *endpointState) age(now time.Time) time.Duration {
	created := ep.Created
	if ep.Attach != nil {
		created = ep.Attach.Created
	}
	if created.IsZero() {
		return pruneMinAge
	}
	return now.Sub(created)
}

// removeStaleEndpoint removes ep as the engine's DeleteEndpoint and
// ReleaseAddress would (an attachment as `mynet detach` would). Caller
// holds d.mu.
func (d *Driver) removeStaleEndpoint(ep *endpointState, releaseLease bool) error {
	if ep.Attach != nil {
		if err := d.removeAttachment(ep); err != nil {
			return err
		}
		d.log.WithFields(ep.logFields()).WithFields(attachFields(ep.Attach)).Info("stale attachment pruned")
		return nil
	}
	if err := d.removeEndpoint(ep); err != nil {
		return err
	}
	if releaseLease {
		d.releaseEngineLease(ep)
	}
	return nil
}

// releaseEngineLease gives an engine endpoint's addresses back to mynet's
// IPAM. A failure is logged: it leaves an address leased, never one
// handed out twice, and the endpoint is already gone. Caller holds d.mu.
func (d *Driver) releaseEngineLease(ep *endpointState) {
	n, ok := d.networks[ep.NetworkID]
	if !ok || d.addrs == nil {
		return
	}
	for _, l := range []struct{ subnet, addr netip.Prefix }{{n.Subnet, ep.Address}, {n.Subnet6, ep.Address6}} {
		pool, ok := d.addrs.PoolOf(l.subnet)
		if !ok || !l.addr.IsValid() {
			continue
		}
		if err := d.addrs.ReleaseAddress(&ipamapi.ReleaseAddressRequest{PoolID: pool, Address: l.addr.Addr().String()}); err != nil {
			d.log.WithFields(ep.logFields()).WithError(err).Warn("releasing the address of a pruned endpoint")
		}
	}
}

// pruneNetwork removes one stale network with its endpoints and, if asked,
// its pools, if it may. Caller holds d.mu.
func (d *Driver) pruneNetwork(req api.PruneNetwork, now time.Time, ans *api.PruneAnswer) error {
	n, ok := d.networks[req.ID]
	if !ok {
		return nil // removed meanwhile: nothing to do
	}
	if why, err := d.keepNetwork(n, now); err != nil || why != "" {
		keep(ans, n.ID, "network", why)
		return err
	}
	info := n.info()
	// Attachments first: removeAttachment releases their leases, which
	// deleteNetwork's removal of endpoints would not.
	for _, ep := range d.sortedEndpoints() {
		if ep.NetworkID != n.ID {
			continue
		}
		epInfo := d.endpointInfo(ep)
		if err := d.removeStaleEndpoint(ep, false); err != nil {
			return fmt.Errorf("prune network %s: %w", ids.Short(n.ID), err)
		}
		ans.Endpoints = append(ans.Endpoints, epInfo)
	}
	if err := d.deleteNetwork(n); err != nil {
		return err
	}
	ans.Networks = append(ans.Networks, info)
	if req.ReleasePools {
		return d.releasePools(n, ans)
	}
	return nil
}

// keepNetwork says why n must not be pruned, or "". Caller holds d.mu.
func (d *Driver) keepNetwork(n *networkState, now time.Time) (string, error) {
	if !n.Created.IsZero() && now.Sub(n.Created) < pruneMinAge {
		return fmt.Sprintf("created %s ago: the engine may be creating it now; prune again later", now.Sub(n.Created).Round(time.Second)), nil
	}
	for _, ep := range d.sortedEndpoints() {
		if ep.NetworkID != n.ID {
			continue
		}
		live, err := d.inUse(ep)
		if err != nil {
			return "", err
		}
		if live {
			return fmt.Sprintf("endpoint %s is in a live network namespace: a running container or process still uses the network", ids.Short(ep.ID)), nil
		}
	}
	return "", nil
}

// releasePools releases the pools of n's subnets, with their leases.
// Caller holds d.mu (IPAM's lock is taken after the driver's, as in
// Attach).
func (d *Driver) releasePools(n *networkState, ans *api.PruneAnswer) error {
	if d.addrs == nil {
		return nil
	}
	var errs []error
	for _, subnet := range []netip.Prefix{n.Subnet, n.Subnet6} {
		pool, ok := d.addrs.PoolOf(subnet)
		if !ok {
			continue // Docker's IPAM, or released already
		}
		if err := d.addrs.ReleasePool(&ipamapi.ReleasePoolRequest{PoolID: pool}); err != nil {
			errs = append(errs, fmt.Errorf("prune network %s: release pool %s: %w", ids.Short(n.ID), subnet, err))
			continue
		}
		d.log.WithFields(n.logFields()).WithField("pool", pool).Info("pool of a pruned network released")
		ans.Pools = append(ans.Pools, subnet.String())
	}
	return errors.Join(errs...)
}

func keep(a *api.PruneAnswer, id, kind, why string) {
	if why != "" {
		a.Kept = append(a.Kept, api.PruneKept{ID: id, Kind: kind, Reason: why})
	}
}

// NetworkWith returns the ID of the network whose subnet (of either
// family) is subnet, for IPAM's errors about a held subnet (see
// ipam.UseNetworks). It takes d.mu: IPAM calls it without its own lock.
func (d *Driver) NetworkWith(subnet netip.Prefix) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range sortedKeys(d.networks) {
		if n := d.networks[id]; n.Subnet == subnet || n.Subnet6 == subnet {
			return id, true
		}
	}
	return "", false
}

// pruneHint is the fix for a conflict with network id that the engine
// may have forgotten; only the engine knows, and the plugin must not ask.
func pruneHint(id string) string {
	return fmt.Sprintf(`; if the engine no longer has that network (docker network ls shows no %s), run "mynet prune"`, ids.Short(id))
}

// namePortHolder adds, to a refused host port that another mynet endpoint
// publishes, which endpoint it is and the fix if the engine forgot it: a
// container removed while mynet was down keeps its ports held. Caller
// holds d.mu.
func (d *Driver) namePortHolder(err error, self string) error {
	var inUse *ports.InUseError
	if !errors.As(err, &inUse) {
		return err
	}
	for _, ep := range d.sortedEndpoints() {
		if ep.ID != self && ep.Published && publishes(ep.Mapped, inUse) {
			return fmt.Errorf(`%w, by mynet endpoint %s; if the engine no longer has its container (removed while mynet was down), run "mynet prune"`, err, ids.Short(ep.ID))
		}
	}
	return err
}

// publishes reports whether ms hold the port of p: same protocol and
// family, the same address or a wildcard on either side.
func publishes(ms []ports.Mapping, p *ports.InUseError) bool {
	for _, m := range ms {
		sameIP := m.HostIP == p.HostIP || m.HostIP.Is4() == p.HostIP.Is4() && (m.HostIP.IsUnspecified() || p.HostIP.IsUnspecified())
		if m.Proto == p.Proto && sameIP && p.Port >= m.HostPort && p.Port <= m.HostPortEnd() {
			return true
		}
	}
	return false
}
