package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/internal/ids"
)

// Heal puts back mynet's firewall rules if something removed them: a
// firewalld reload or `iptables -F` otherwise cuts containers off until
// the next restart. It checks each family's ruleset once (cheap enough to
// run every few seconds) and only when rules are missing re-ensures every
// network's and every published port's rules, which are idempotent, so
// exactly the missing ones come back, in their places, without
// duplicates. It reports whether it repaired anything.
func (d *Driver) Heal() (bool, error) {
	// The check runs without d.mu, so engine calls do not wait for two
	// iptables-save runs every few seconds; only a repair takes it.
	var why []string
	for _, fw := range []Firewall{d.fw, d.fw6} {
		if fw == nil {
			continue
		}
		ok, reason, err := fw.Intact()
		if err != nil {
			return false, fmt.Errorf("check firewall rules: %w", err)
		}
		if !ok {
			why = append(why, reason)
		}
	}
	if len(why) == 0 {
		return false, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	start := time.Now()
	var errs []error
	for _, n := range d.networks {
		if err := d.programFirewall(n); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", ids.Short(n.ID), err))
		}
	}
	for _, ep := range d.sortedEndpoints() {
		n, ok := d.networks[ep.NetworkID]
		if !ok || !ep.Published {
			continue
		}
		if err := d.applyPorts(n, ep); err != nil {
			errs = append(errs, fmt.Errorf("ports of endpoint %s: %w", ids.Short(ep.ID), err))
		}
	}
	d.log.WithFields(logrus.Fields{"missing": why, "took": time.Since(start).String()}).Warn("firewall rules were removed from outside mynet; restored them")
	return true, errors.Join(errs...)
}

// HealLoop runs Heal every interval until ctx is done.
func (d *Driver) HealLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := d.Heal(); err != nil {
				d.log.WithError(err).Warn("restoring firewall rules")
			}
			d.RetryRestore()
		}
	}
}

// RetryRestore programs again the networks whose Restore failed (see
// restoreNetwork), and then the published ports, whose rules may have
// failed with them. It returns how many networks are still not restored.
func (d *Driver) RetryRestore() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.unrestored) == 0 {
		return 0
	}
	restored := false
	for _, id := range sortedKeys(d.unrestored) {
		n, ok := d.networks[id]
		if !ok {
			delete(d.unrestored, id)
			continue
		}
		if err := d.restoreNetwork(n); err != nil {
			// Restore logged the first failure; one line per tick would flood.
			d.log.WithFields(n.logFields()).WithError(err).Debug("network still not restored; retrying at the next tick")
			continue
		}
		restored = true
	}
	if restored {
		if err := d.restorePorts(); err != nil {
			d.log.WithError(err).Warn("restoring published ports after a network came back")
		}
	}
	return len(d.unrestored)
}
