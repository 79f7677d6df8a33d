package driver

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
)

// reconcile brings the kernel and the records back together after a crash
// tore a change apart from its record (mynet writes the kernel first and
// the record second, and deletes in the other order):
//   - links mynet made (its alias says for which network or endpoint) that
//     no record names any more are deleted;
//   - rules tagged for bridges that no record names are deleted;
//   - a recorded endpoint whose veth is gone (its container's namespace
//     died while mynet was down) has its ports unpublished, so the host
//     ports are free again; the record itself stays until Docker deletes
//     the endpoint, which it always does for a container that stopped.
//
// Missing bridges and rules of recorded networks are re-created by
// programNetwork. Every repair is logged. Caller holds d.mu.
func (d *Driver) reconcile() error {
	var errs []error
	links, err := d.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	present := map[string]bool{}
	for _, l := range links {
		present[l.Attrs().Name] = true
		errs = append(errs, d.reconcileLink(l))
	}
	for _, ep := range d.sortedEndpoints() {
		if present[ep.HostVeth] || !ep.Published {
			continue
		}
		d.log.WithFields(ep.logFields()).Warn("reconcile: endpoint's veth is gone (its container stopped while mynet was down); unpublishing its ports")
		errs = append(errs, d.unpublish(ep))
	}
	keep := func(bridge string) bool {
		for _, n := range d.networks {
			if n.Bridge == bridge {
				return true
			}
		}
		return false
	}
	for _, fw := range []Firewall{d.fw, d.fw6} {
		if fw == nil {
			continue
		}
		stale, err := fw.RemoveStale(keep)
		errs = append(errs, err)
		if len(stale) > 0 {
			d.log.WithField("bridges", stale).Warn("reconcile: removed firewall rules of networks mynet no longer has")
		}
	}
	return errors.Join(errs...)
}

// reconcileLink deletes l if mynet made it for a network or endpoint it no
// longer records.
func (d *Driver) reconcileLink(l netlink.Link) error {
	id, ok := strings.CutPrefix(l.Attrs().Alias, ownerAlias(""))
	if !ok {
		return nil
	}
	var known bool
	switch l.Type() {
	case "bridge":
		_, known = d.networks[id]
	case "veth":
		_, known = d.endpoints[id]
	default:
		return nil
	}
	if known {
		return nil
	}
	if err := d.nl.LinkDel(l); err != nil {
		return fmt.Errorf("reconcile: delete %s %s: %w", l.Type(), l.Attrs().Name, err)
	}
	d.log.WithFields(logrus.Fields{"link": l.Attrs().Name, "type": l.Type(), "owner": short(id, 12)}).Warn("reconcile: removed a link mynet made but no longer records")
	return nil
}
