package driver

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/ids"
	"github.com/mynet/mynet/internal/nldump"
)

// reconcile brings the kernel and the records back together after a crash
// tore a change apart from its record (mynet writes the kernel first and
// the record second, and deletes in the other order):
//   - links this instance made (its alias says for which network or
//     endpoint) that no record names any more are deleted; links of other
//     instances, and of none, are left alone (see reconcileLink);
//   - rules this instance tagged for bridges that no record names are
//     deleted, others left alone (see firewall's RemoveStale);
//   - a recorded endpoint whose veth is gone (its container's namespace
//     died while mynet was down) has its ports unpublished, so the host
//     ports are free again; the record itself goes with DeleteEndpoint
//     or, if the engine forgot the endpoint, with the orphan reaper
//     (orphans.go) after its grace.
//
// Missing bridges and rules of recorded networks are re-created by
// programNetwork. Every repair is logged. Caller holds d.mu.
func (d *Driver) reconcile() error {
	var errs []error
	links, err := nldump.Retry(d.nl.LinkList)
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

// reconcileLink deletes l if this instance made it for a network or
// endpoint it no longer records, as the alias says, or, for a crash before
// the alias was set, as the instance's link group says. A link with the legacy alias (mynet:<id>, builds before instances)
// that a record names is this instance's and gets its alias. Every other
// link is left alone: a user's link named like mynet's, another instance's,
// or a legacy one no record names, which cannot be proven ours (logged
// once).
func (d *Driver) reconcileLink(l netlink.Link) error {
	kind := l.Type()
	if kind != "bridge" && kind != "veth" {
		return nil
	}
	tag, id, mynets := parseTagged(l.Attrs().Alias)
	switch {
	case !mynets && d.unaliasedOwn(l):
		if d.recordsLink(l.Attrs().Name) {
			return nil
		}
		return d.deleteLink(l, "")
	case !mynets:
		return nil
	case tag == d.inst.Tag():
		if d.recordsID(kind, id) {
			return nil
		}
		return d.deleteLink(l, id)
	case tag == "" && d.recordsID(kind, id):
		return d.retag(l, id)
	}
	d.noteForeign(l)
	return nil
}

// unaliasedOwn reports whether l, which has no mynet alias, is one this
// instance created and crashed before naming: its link group is the
// instance's (32 random bits of its UUID; mynet never puts a link it did
// not create into a group).
func (d *Driver) unaliasedOwn(l netlink.Link) bool {
	g := d.inst.group()
	return g != 0 && l.Attrs().Group == g && l.Attrs().Alias == ""
}

// recordsID reports whether a record of kind's owner (a network for a
// bridge, an endpoint for a veth) has the ID id.
func (d *Driver) recordsID(kind, id string) bool {
	if kind == "bridge" {
		_, ok := d.networks[id]
		return ok
	}
	_, ok := d.endpoints[id]
	return ok
}

func (d *Driver) deleteLink(l netlink.Link, id string) error {
	err := d.nl.LinkDel(l)
	if errors.Is(err, syscall.ENODEV) {
		return nil // the other end of a pair deleted a moment ago
	}
	if err != nil {
		return fmt.Errorf("reconcile: delete %s %s: %w", l.Type(), l.Attrs().Name, err)
	}
	d.log.WithFields(logrus.Fields{"link": l.Attrs().Name, "type": l.Type(), "owner": ids.Short(id)}).Warn("reconcile: removed a link mynet made but no longer records")
	return nil
}

// retag gives a legacy-aliased link that a record names this instance's
// alias, so that from now on it is told apart from other instances'.
func (d *Driver) retag(l netlink.Link, id string) error {
	alias := d.inst.alias(id)
	if err := d.nl.LinkSetAlias(l, alias); err != nil {
		return fmt.Errorf("reconcile: mark %s %s as this instance's: %w", l.Type(), l.Attrs().Name, err)
	}
	d.log.WithFields(logrus.Fields{"link": l.Attrs().Name, "alias": alias}).Info("reconcile: a link of an older mynet build that the records name now carries this instance's alias")
	l.Attrs().Alias = alias
	return nil
}

// noteForeign logs, once per link, a link this instance leaves alone.
// Caller holds d.mu.
func (d *Driver) noteForeign(l netlink.Link) {
	key := "link " + l.Attrs().Name + " " + l.Attrs().Alias
	if d.foreignSeen[key] {
		return
	}
	d.foreignSeen[key] = true
	log := d.log.WithFields(logrus.Fields{"link": l.Attrs().Name, "alias": l.Attrs().Alias})
	tag, _, mynets := parseTagged(l.Attrs().Alias)
	switch {
	case !mynets:
		log.Warn("a link named like mynet's but without this instance's alias: left alone")
	case tag == "":
		log.Warn("a link of an older mynet build that no record names: it cannot be proven this instance's and is left in place")
	default:
		log.Info("a link of another mynet instance: left alone")
	}
}

// recordsLink reports whether a recorded network or endpoint derives the
// link name name.
func (d *Driver) recordsLink(name string) bool {
	for _, n := range d.networks {
		if n.Bridge == name {
			return true
		}
	}
	for _, ep := range d.endpoints {
		if ep.HostVeth == name || ep.PeerVeth == name {
			return true
		}
	}
	return false
}
