package driver

import (
	"context"
	"time"
)

// ReapInterval is how often ReapLoop looks for attachments whose
// namespace is gone and for orphaned engine endpoints.
const ReapInterval = 2 * time.Second

// ReapLoop removes dead attachments now and then every interval, and
// orphaned engine endpoints (orphans.go) every interval, until ctx is
// done.
//
// It polls rather than listening for RTM_DELLINK: a netlink subscription
// can overflow and drop events (ENOBUFS), and misses everything that
// happened while mynet was not running, so a full sweep would be needed
// anyway; the sweep costs one link lookup per attachment, and covers
// both. It runs on its own ticker, not HealLoop's, so that turning
// firewall healing off (--heal-interval 0) does not leak addresses.
func (d *Driver) ReapLoop(ctx context.Context, interval time.Duration) {
	d.ReapAttachments()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.ReapAttachments()
			d.ReapOrphans()
		}
	}
}

// ReapAttachments removes the attachments whose container is gone and
// returns how many it removed.
func (d *Driver) ReapAttachments() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reap(time.Now())
}

// reap removes dead attachments (see deadReason). Failures are logged and
// the record kept, so the next sweep retries. Caller holds d.mu.
func (d *Driver) reap(now time.Time) int {
	reaped := 0
	for _, ep := range d.sortedEndpoints() {
		if ep.Attach == nil {
			continue // the engine's: it removes them itself
		}
		why, err := d.deadReason(ep, now)
		log := d.log.WithFields(ep.logFields()).WithFields(attachFields(ep.Attach))
		if err != nil {
			log.WithError(err).Warn("checking an attachment")
			continue
		}
		if why == "" {
			continue
		}
		if err := d.removeAttachment(ep); err != nil {
			log.WithError(err).WithField("reason", why).Warn("removing a dead attachment; will retry")
			continue
		}
		log.WithField("reason", why).Info("attachment removed: address released, ports and veth gone")
		reaped++
	}
	return reaped
}

// deadReason says why ep's attachment is dead, or "" if it is alive.
//
// The kernel deletes both ends of a veth pair when either end goes, and
// the container end goes with the container's namespace: a missing host
// end therefore means the namespace is gone (container stopped or
// removed, process exited). A container end still in the host namespace
// after abandonAfter means the `mynet attach` that asked for it died
// before moving it (a CLI that fails cleanly detaches at once).
func (d *Driver) deadReason(ep *endpointState, now time.Time) (string, error) {
	host, err := linkByName(d.nl, ep.HostVeth)
	if err != nil {
		return "", err
	}
	if host == nil {
		return "the container's network namespace is gone (container stopped or removed)", nil
	}
	if now.Sub(ep.Attach.Created) < abandonAfter {
		return "", nil
	}
	peer, err := linkByName(d.nl, ep.PeerVeth)
	if err != nil {
		return "", err
	}
	if peer != nil {
		return "the container end never left the host namespace (mynet attach did not finish)", nil
	}
	return "", nil
}
