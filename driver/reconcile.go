package driver

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

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
//     ports are free again; the record itself goes with DeleteEndpoint
//     or, if the engine forgot the endpoint, with the orphan reaper
//     (orphans.go) after its grace.
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
// longer records: its alias says so, or, for a crash before the alias was
// set, its name is one mynet derives from an ID (mnh/mnc + 12 hex for
// veths, mynet- + 9 hex for bridges) that no record has.
func (d *Driver) reconcileLink(l netlink.Link) error {
	id, aliased := strings.CutPrefix(l.Attrs().Alias, ownerAlias(""))
	var known bool
	switch {
	case aliased && l.Type() == "bridge":
		_, known = d.networks[id]
	case aliased && l.Type() == "veth":
		_, known = d.endpoints[id]
	case l.Attrs().Alias == "" && l.Type() == "veth" && derivedName(l.Attrs().Name, hostVethPrefix, peerVethPrefix):
		id, known = l.Attrs().Name[len(hostVethPrefix):], d.recordsLink(l.Attrs().Name)
	case l.Attrs().Alias == "" && l.Type() == "bridge" && derivedName(l.Attrs().Name, bridgePrefix):
		id, known = l.Attrs().Name[len(bridgePrefix):], d.recordsLink(l.Attrs().Name)
	default:
		return nil
	}
	if known {
		return nil
	}
	err := d.nl.LinkDel(l)
	if errors.Is(err, syscall.ENODEV) {
		return nil // the other end of a pair deleted a moment ago
	}
	if err != nil {
		return fmt.Errorf("reconcile: delete %s %s: %w", l.Type(), l.Attrs().Name, err)
	}
	d.log.WithFields(logrus.Fields{"link": l.Attrs().Name, "type": l.Type(), "owner": short(id, 12)}).Warn("reconcile: removed a link mynet made but no longer records")
	return nil
}

// derivedName reports whether name is one of prefixes followed by
// lower-case hex up to the interface name limit, as mynet derives names
// from Docker's IDs.
func derivedName(name string, prefixes ...string) bool {
	for _, p := range prefixes {
		rest, ok := strings.CutPrefix(name, p)
		if !ok || len(name) != maxIfName {
			continue
		}
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return false
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
