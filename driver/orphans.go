package driver

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/internal/ids"
	"github.com/mynet/mynet/internal/nldump"
)

// DefaultOrphanGrace is how long an engine endpoint may look unused
// before mynet takes it for an orphan and removes it. The engine moves the
// container end into the sandbox milliseconds after Join, and moves it
// back only to call DeleteEndpoint right after; 30 s covers both gaps
// (CreateEndpoint→Join, Leave→DeleteEndpoint) on a loaded host. One that
// stays unused is the leftover of an engine call that never reached mynet
// or whose answer died with it: a container removed while mynet was
// stopped (the engine logs the failed Leave and DeleteEndpoint and forgets
// the endpoint), a CreateEndpoint or Join the engine counted as failed, a
// DeleteEndpoint that never arrived.
const DefaultOrphanGrace = 30 * time.Second

// LeaseBook is the part of mynet's IPAM the orphan reaper uses to give a
// reaped endpoint's addresses back; *ipam.IPAM fits. Without one (mynet
// runs without its IPAM) the leases are left to their IPAM.
type LeaseBook interface {
	// PoolOf returns the ID of mynet's pool for subnet, if mynet's IPAM
	// holds one (it does not when the network uses Docker's IPAM).
	PoolOf(subnet netip.Prefix) (string, bool)
	// ReleaseLease frees a in pool if it is leased there, and reports
	// whether it was.
	ReleaseLease(pool string, a netip.Addr) (bool, error)
}

// orphanWatch is the orphan reaper's memory, under d.mu. It is in memory
// only: after a restart every grace starts again, which only delays a
// reap.
type orphanWatch struct {
	grace time.Duration // 0: DefaultOrphanGrace
	// since is when each engine endpoint was first seen unused in its
	// current run of unused sightings.
	since map[string]time.Time
	// joined is when each endpoint was last joined by this process.
	joined map[string]time.Time
	leases LeaseBook
}

// SetOrphanGrace sets how long an engine endpoint must look unused before
// it is reaped (tests shorten it; 0 restores DefaultOrphanGrace).
func (d *Driver) SetOrphanGrace(g time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.orphans.grace = g
}

// UseLeases lets the orphan reaper release the leases of the endpoints it
// removes.
func (d *Driver) UseLeases(l LeaseBook) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.orphans.leases = l
}

// noteJoin records a Join: an endpoint joined after it was first seen
// unused is in use again, and its grace starts over. Caller holds d.mu.
func (w *orphanWatch) noteJoin(id string, now time.Time) {
	if w.joined == nil {
		w.joined = map[string]time.Time{}
	}
	w.joined[id] = now
}

func (w *orphanWatch) graceOrDefault() time.Duration {
	if w.grace > 0 {
		return w.grace
	}
	return DefaultOrphanGrace
}

// unusedReason says why an engine endpoint looks unused in the host
// namespace's links, or "" when it looks in use.
//
// The container end of a joined endpoint lives in the container's
// namespace, where the host cannot see it by name; only the host end is
// here. A container end in the host namespace was never moved into a
// container, or was moved back (Leave). The kernel deletes both ends of a
// pair when either goes, and the container end goes with its namespace,
// so a missing host end means the pair is gone. Anything else (host end
// here, container end elsewhere) counts as in use: a wrong guess there
// only keeps an endpoint, never removes a live one.
func unusedReason(ep *endpointState, inHost map[string]bool) string {
	switch {
	case inHost[ep.PeerVeth]:
		return "container end in the host namespace (never joined, or left)"
	case !inHost[ep.HostVeth]:
		return "veth pair gone (its container's namespace went)"
	}
	return ""
}

// judgeOrphan is the reaper's decision for one endpoint, pure so that it
// can be tested without a kernel. unused says this round found the
// endpoint unused; since is when its current run of unused sightings
// began (zero if none), joined its last Join (zero if none since mynet
// started). It returns the new start of the run and whether to reap now.
//
// An endpoint is reaped only after it has looked unused in every round
// for grace and got no Join in that time. A round that sees it in use
// ends the run; a Join during the run starts it again.
func judgeOrphan(unused bool, since, joined, now time.Time, grace time.Duration) (time.Time, bool) {
	switch {
	case !unused:
		return time.Time{}, false
	case since.IsZero() || joined.After(since):
		return now, false
	}
	return since, now.Sub(since) >= grace
}

// reapOrphans removes the engine endpoints that have looked unused for
// longer than the grace (see judgeOrphan) as DeleteEndpoint would, and
// gives their addresses back to mynet's IPAM, which the engine will never
// do for an endpoint it forgot. Attachments are never touched (the
// attachment reaper has them). inHost names the host namespace's links,
// listed before the caller took d.mu. Caller holds d.mu.
func (d *Driver) reapOrphans(now time.Time, inHost map[string]bool) int {
	w := &d.orphans
	if w.since == nil {
		w.since = map[string]time.Time{}
	}
	grace := w.graceOrDefault()
	reaped := 0
	for _, ep := range d.sortedEndpoints() {
		if !engineEndpoint(ep) {
			continue
		}
		why := unusedReason(ep, inHost)
		since, due := judgeOrphan(why != "", w.since[ep.ID], w.joined[ep.ID], now, grace)
		if since.IsZero() {
			delete(w.since, ep.ID)
		} else {
			w.since[ep.ID] = since
		}
		if !due {
			continue
		}
		log := d.log.WithFields(ep.logFields()).WithFields(logrus.Fields{"reason": why, "unused_for": now.Sub(since).Round(time.Second).String()})
		// A pair that is still there must carry our mark: one of that
		// name another instance or a user made is not ep's to remove. A
		// pair that is gone leaves nothing of anyone's to delete.
		if inHost[ep.HostVeth] && !d.ownsVeth(ep) {
			continue
		}
		if err := d.reapEndpoint(ep, log); err != nil {
			log.WithError(err).Warn("removing an orphaned endpoint; will retry")
			continue
		}
		reaped++
	}
	d.forgetGone()
	return reaped
}

// forgetGone drops the reaper's memory of endpoints that no longer exist.
// Caller holds d.mu.
func (d *Driver) forgetGone() {
	for _, m := range []map[string]time.Time{d.orphans.since, d.orphans.joined} {
		for id := range m {
			if _, ok := d.endpoints[id]; !ok {
				delete(m, id)
			}
		}
	}
}

// reapEndpoint removes an orphaned engine endpoint: its ports (rules and
// socket holds), its veth pair, its leases in mynet's IPAM, then its
// record, and logs what it freed. A failure keeps the record, so the next
// round retries; every step is idempotent. Caller holds d.mu.
func (d *Driver) reapEndpoint(ep *endpointState, log *logrus.Entry) error {
	var ports []string
	if ep.Published {
		ports = mappingsText(ep.Mapped)
	}
	if err := d.unpublish(ep); err != nil {
		return err
	}
	if err := removeVeth(d.nl, ep.HostVeth, ep.PeerVeth); err != nil {
		return err
	}
	released, err := d.releaseOrphanLeases(ep)
	if err != nil {
		return err
	}
	if err := d.st.Delete(endpointsBucket, ep.ID); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", ids.Short(ep.ID), err)
	}
	delete(d.endpoints, ep.ID)
	delete(d.orphans.since, ep.ID)
	log.WithFields(logrus.Fields{"ports": ports, "leases": released, "veths": []string{ep.HostVeth, ep.PeerVeth}}).
		Warn("removed an endpoint no container uses (its container went while mynet was not answering the engine): veth, ports and leases freed")
	return nil
}

// releaseOrphanLeases gives ep's addresses back to mynet's IPAM and
// returns those it released. It releases only a lease of exactly ep's
// address in mynet's pool of the network's own subnet (none when the
// network uses Docker's IPAM), never the gateway, and never an address
// another endpoint record holds: an engine whose release reached mynet
// may have handed the address to a new container already. Caller holds
// d.mu.
func (d *Driver) releaseOrphanLeases(ep *endpointState) ([]netip.Addr, error) {
	n, ok := d.networks[ep.NetworkID]
	if !ok || d.orphans.leases == nil {
		return nil, nil
	}
	var released []netip.Addr
	var errs []error
	for _, f := range []struct{ addr, subnet, gateway netip.Prefix }{
		{ep.Address, n.Subnet, n.Gateway}, {ep.Address6, n.Subnet6, n.Gateway6},
	} {
		a := f.addr.Addr()
		if !f.addr.IsValid() || !f.subnet.IsValid() || f.gateway.IsValid() && a == f.gateway.Addr() || d.addressHeldByOther(ep, a) {
			continue
		}
		pool, ok := d.orphans.leases.PoolOf(f.subnet)
		if !ok {
			continue
		}
		freed, err := d.orphans.leases.ReleaseLease(pool, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("release address %s of endpoint %s: %w", a, ids.Short(ep.ID), err))
			continue
		}
		if freed {
			released = append(released, a)
		}
	}
	return released, errors.Join(errs...)
}

// addressHeldByOther reports whether an endpoint of ep's network other
// than ep has address a. Caller holds d.mu.
func (d *Driver) addressHeldByOther(ep *endpointState, a netip.Addr) bool {
	for _, o := range d.endpoints {
		if o != ep && o.NetworkID == ep.NetworkID && (o.Address.Addr() == a || o.Address6.Addr() == a) {
			return true
		}
	}
	return false
}

// ownsVeth reports whether ep's host veth carries this instance's alias
// for ep (or the legacy one, which Restore re-tags for recorded
// endpoints): a pair of that name another instance or a user made is not
// ep's to remove. A foreign one is logged once. Caller holds d.mu.
func (d *Driver) ownsVeth(ep *endpointState) bool {
	l, err := linkByName(d.nl, ep.HostVeth)
	if err != nil || l == nil {
		return false // judged again next round
	}
	if a := l.Attrs().Alias; a == d.inst.alias(ep.ID) || a == ownerAlias("", ep.ID) {
		return true
	}
	d.noteForeign(l)
	return false
}

// ReapOrphans runs reapOrphans now.
func (d *Driver) ReapOrphans() {
	// The dump runs without d.mu: with hundreds of links it takes
	// milliseconds, and engine calls should not wait for it. A link that
	// moves or appears meanwhile is judged again on the next round, well
	// inside the grace.
	inHost, err := d.hostLinks()
	if err != nil {
		d.log.WithError(err).Debug("looking for orphaned endpoints: links not listed, trying next round")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := d.reapOrphans(time.Now(), inHost); n > 0 {
		d.log.WithFields(logrus.Fields{"count": n}).Info("orphaned endpoints removed")
	}
}

// hostLinks names the links of the host namespace. A dump interrupted by
// link changes (the engine creates and moves veths all the time while
// containers start) may miss links, which would make a pair look gone; it
// is retried a few times, else the round is skipped.
func (d *Driver) hostLinks() (map[string]bool, error) {
	links, err := nldump.Retry(d.nl.LinkList)
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(links))
	for _, l := range links {
		names[l.Attrs().Name] = true
	}
	return names, nil
}

// engineEndpoint reports whether the engine made ep (and so joins it);
// attachments (attach.go) are `mynet attach`'s.
func engineEndpoint(ep *endpointState) bool { return ep.Attach == nil }
