package driver

import (
	"time"

	"github.com/sirupsen/logrus"
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
// Attachments are never touched. Caller holds d.mu.
func (d *Driver) reapOrphans(now time.Time) (int, error) {
	links, err := d.nl.LinkList()
	if err != nil {
		return 0, err
	}
	inHost := make(map[string]bool, len(links))
	for _, l := range links {
		inHost[l.Attrs().Name] = true
	}
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
	return reaped, nil
}

// ReapOrphans runs reapOrphans now.
func (d *Driver) ReapOrphans() {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.reapOrphans(time.Now())
	if err != nil {
		d.log.WithError(err).Warn("looking for orphaned endpoints")
	}
	if n > 0 {
		d.log.WithFields(logrus.Fields{"count": n}).Info("orphaned endpoints removed")
	}
}

// engineEndpoint reports whether the engine made ep (and so joins it);
// attachments (attach.go) are `mynet attach`'s.
func engineEndpoint(ep *endpointState) bool { return ep.Attach == nil }
