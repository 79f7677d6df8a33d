package driver

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/internal/nldump"
)

// orphanGrace is how long the container end of an engine endpoint may sit
// in the host namespace before mynet takes the endpoint for an orphan. The
// engine moves it into the container milliseconds after Join, and moves it
// back only to call DeleteEndpoint right after. One that stays is the
// leftover of a call whose answer died with a killed mynet: a
// CreateEndpoint or Join the engine counted as failed (it released the
// address and will never delete the endpoint), or a DeleteEndpoint that
// never arrived.
const orphanGrace = 30 * time.Second

// reapOrphans removes engine endpoints whose container end has been in the
// host namespace for longer than orphanGrace: veth pair, ports, record.
// The first sighting is kept in memory only (d.orphanSeen), so after a
// restart the grace starts again, which only delays the cleanup.
// Attachments are never touched. inHost names the host namespace's links,
// listed before the caller took d.mu. Caller holds d.mu.
func (d *Driver) reapOrphans(now time.Time, inHost map[string]bool) int {
	if d.orphanSeen == nil {
		d.orphanSeen = map[string]time.Time{}
	}
	reaped := 0
	seen := map[string]bool{}
	for _, ep := range d.sortedEndpoints() {
		if !engineEndpoint(ep) || !inHost[ep.PeerVeth] {
			continue
		}
		seen[ep.ID] = true
		first, ok := d.orphanSeen[ep.ID]
		if !ok {
			d.orphanSeen[ep.ID] = now
			continue
		}
		if now.Sub(first) < orphanGrace {
			continue
		}
		log := d.log.WithFields(ep.logFields()).WithField("unused_for", now.Sub(first).Round(time.Second).String())
		if !d.ownsVeth(ep) {
			continue
		}
		if err := d.unpublish(ep); err != nil {
			log.WithError(err).Warn("removing an orphaned endpoint; will retry")
			continue
		}
		if err := d.removeEndpoint(ep); err != nil {
			log.WithError(err).Warn("removing an orphaned endpoint; will retry")
			continue
		}
		log.Warn("removed an endpoint no container uses (an engine call's answer was lost when mynet was killed)")
		reaped++
	}
	for id := range d.orphanSeen {
		if !seen[id] {
			delete(d.orphanSeen, id)
		}
	}
	return reaped
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
	// moves meanwhile is judged again on the next round, well inside the
	// grace.
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
// containers start) may miss links, which would restart their grace; it
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
