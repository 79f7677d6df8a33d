package driver

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrLiveObjects is returned by CheckStart when an instance that records
// nothing meets the live objects of an instance of its name.
var ErrLiveObjects = errors.New("the state file records no networks, but the kernel holds networks of a mynet instance of this name")

// maxListed bounds how many objects CheckStart's error names.
const maxListed = 20

// CheckStart refuses to start an instance that records no network over
// links and rules that an instance of its name made with another state
// file: the state file was lost, emptied or replaced by a new one, and
// starting would hand out addresses that running containers hold and
// leave their networks without an owner. Legacy objects (builds before
// instances) count for the default name, mynet. An instance with records,
// or that meets only its own objects or other names', starts.
func (d *Driver) CheckStart() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inst.Name == "" || len(d.networks) > 0 {
		return nil
	}
	found, err := d.sameNameLinks()
	if err != nil {
		return err
	}
	for _, fw := range []Firewall{d.fw, d.fw6} {
		if fw == nil {
			continue
		}
		owners, err := fw.Owners()
		if err != nil {
			return fmt.Errorf("list firewall rules: %w", err)
		}
		for tag, bridges := range owners {
			if d.sameName(tag) {
				for _, b := range bridges {
					found = append(found, fmt.Sprintf("rules commented %s", firewallLabel(tag, b)))
				}
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	return d.liveObjectsError(found)
}

// sameNameLinks lists the bridges and veths that carry the alias of
// another instance of this name.
func (d *Driver) sameNameLinks() ([]string, error) {
	links, err := d.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var found []string
	for _, l := range links {
		tag, _, mynets := parseTagged(l.Attrs().Alias)
		if mynets && (l.Type() == "bridge" || l.Type() == "veth") && d.sameName(tag) {
			found = append(found, fmt.Sprintf("link %s (alias %s)", l.Attrs().Name, l.Attrs().Alias))
		}
	}
	return found, nil
}

// sameName reports whether tag is another instance's of this one's name.
func (d *Driver) sameName(tag string) bool {
	if tag == d.inst.Tag() {
		return false
	}
	return tagName(tag) == d.inst.Name || tag == "" && d.inst.Name == DefaultInstance
}

func (d *Driver) liveObjectsError(found []string) error {
	sort.Strings(found)
	more := ""
	if len(found) > maxListed {
		more = fmt.Sprintf(" and %d more", len(found)-maxListed)
		found = found[:maxListed]
	}
	return fmt.Errorf("%w (%s): %s%s. Put back the state file that instance used (its state.db), "+
		"or, if Docker no longer has those networks, delete the listed links (ip link delete NAME) and rules "+
		"(iptables-save | grep 'mynet:'), then start mynet again", ErrLiveObjects, d.inst.Name, strings.Join(found, ", "), more)
}

// firewallLabel is the comment of tag's rules for bridge.
func firewallLabel(tag, bridge string) string { return ownerAlias(tag, bridge) }
