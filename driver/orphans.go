package driver

import (
	"time"

	"github.com/sirupsen/logrus"
)

// unjoinedGrace is how long an engine endpoint may stay created but not
// joined before mynet takes it for an orphan. The engine joins an endpoint
// milliseconds after creating it; one that stays unjoined is one whose
// CreateEndpoint answer the engine never got (mynet was killed between
// recording it and answering), so the engine counts it as failed, releases
// its address and will never delete it.
const unjoinedGrace = 30 * time.Second

// reapUnjoined removes engine endpoints seen unjoined for longer than
// unjoinedGrace: their veth pair, ports and record. The first sighting is
// kept in memory only (d.unjoined), so after a restart the grace starts
// again, which only delays the cleanup. Attachments are never touched.
// Caller holds d.mu.
func (d *Driver) reapUnjoined(now time.Time) int {
	if d.unjoined == nil {
		d.unjoined = map[string]time.Time{}
	}
	reaped := 0
	seen := map[string]bool{}
	for _, ep := range d.sortedEndpoints() {
		if ep.SandboxKey != "" || !engineEndpoint(ep) {
			continue
		}
		seen[ep.ID] = true
		first, ok := d.unjoined[ep.ID]
		if !ok {
			d.unjoined[ep.ID] = now
			continue
		}
		if now.Sub(first) < unjoinedGrace {
			continue
		}
		log := d.log.WithFields(ep.logFields()).WithField("unjoined_for", now.Sub(first).Round(time.Second).String())
		if err := d.unpublish(ep); err != nil {
			log.WithError(err).Warn("removing an orphaned endpoint; will retry")
			continue
		}
		if err := d.removeEndpoint(ep); err != nil {
			log.WithError(err).Warn("removing an orphaned endpoint; will retry")
			continue
		}
		log.Warn("removed an endpoint the engine never joined (its CreateEndpoint answer was lost in a crash)")
		reaped++
	}
	for id := range d.unjoined {
		if !seen[id] {
			delete(d.unjoined, id)
		}
	}
	return reaped
}

// ReapOrphans runs reapUnjoined now.
func (d *Driver) ReapOrphans() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.reapUnjoined(time.Now())
	if n > 0 {
		d.log.WithFields(logrus.Fields{"count": n}).Info("orphaned endpoints removed")
	}
	return n
}

// engineEndpoint reports whether the engine made ep (and so joins it).
// Every endpoint is the engine's until `mynet attach` lands.
func engineEndpoint(*endpointState) bool { return true }
