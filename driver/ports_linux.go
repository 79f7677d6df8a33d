package driver

import (
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nldump"
)

// setHairpin turns hairpin mode on the endpoint's bridge port on or off.
// With br_netfilter (which Docker turns on), a container reaching its own
// published port through a host address is DNATed while bridged and sent
// back out of the port it came in on, which the bridge only does in
// hairpin mode. A veth that is gone needs nothing; other failures are
// logged, not returned: the mapping works from everywhere else.
func (d *Driver) setHairpin(ep *endpointState, on bool) {
	link, err := linkByName(d.nl, ep.HostVeth)
	if err == nil && link != nil {
		err = d.nl.LinkSetHairpin(link, on)
	}
	if err != nil {
		d.log.WithFields(ep.logFields()).WithError(err).Warn("setting hairpin mode on the bridge port")
	}
}

// flushStaleUDP deletes UDP conntrack entries for the host ports of ms
// (all of one family) that do not go to the container: a client that kept
// sending to the port before it was published has an entry that sends its
// datagrams to the host, and would keep it as long as it keeps sending.
// Failures are logged: new flows work regardless.
func (d *Driver) flushStaleUDP(ms []firewall.Mapping) {
	var filters []netlink.CustomConntrackFilter
	family := netlink.InetFamily(unix.AF_INET)
	for _, m := range ms {
		if m.Proto == firewall.ProtoUDP && !m.Routed {
			filters = append(filters, staleUDP{m})
		}
		if m.Container.Is6() {
			family = unix.AF_INET6
		}
	}
	if len(filters) == 0 {
		return
	}
	n, err := nldump.Retry(func() (uint, error) {
		return d.nl.ConntrackDeleteFilters(netlink.ConntrackTable, family, filters...)
	})
	if err != nil {
		d.log.WithError(err).Warn("flushing stale UDP conntrack entries")
		return
	}
	if n > 0 {
		d.log.WithField("entries", n).Debug("flushed stale UDP conntrack entries")
	}
}

// staleUDP matches UDP flows to a mapping's host ports that are not
// translated to its container.
type staleUDP struct{ m firewall.Mapping }

func (f staleUDP) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	orig := flow.Forward
	if orig.Protocol != unix.IPPROTO_UDP || orig.DstPort < f.m.HostPort || orig.DstPort > f.m.HostPortEnd() {
		return false
	}
	if !f.m.HostIP.IsUnspecified() && !orig.DstIP.Equal(net.IP(f.m.HostIP.AsSlice())) {
		return false
	}
	return !flow.Reverse.SrcIP.Equal(net.IP(f.m.Container.AsSlice()))
}
