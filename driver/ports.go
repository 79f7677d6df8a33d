package driver

// Published ports (`docker run -p`/`-P`).
//
// The engine sends the container's port bindings with CreateEndpoint, Join
// and ProgramExternalConnectivity (com.docker.network.portmap; one entry per
// port, so a range arrives as one entry per port). mynet records them at
// CreateEndpoint and Join and publishes them in
// ProgramExternalConnectivity, which 20.10 to 28 send after Join to the
// endpoint that is the container's gateway, and which is where Docker's own
// bridge driver publishes: a container on two networks publishes its ports
// once, through its gateway network. Revoke, Leave and DeleteEndpoint
// unpublish; after an engine or plugin restart no Revoke comes, so each of
// them is enough. Restore re-takes the host ports and re-applies the rules
// of every published endpoint.
//
// Publishing is: choose and hold the host ports (a bound, not listening,
// socket per port: the kernel then refuses the port to anyone else, while
// DNAT, which happens before the socket lookup, still sends the traffic to
// the container), record the choice, then one DNAT rule per run of
// consecutive ports in each family's applier, the bridge's port rules,
// route_localnet and hairpin mode, a flush of stale UDP conntrack entries,
// and the in-process forwarder for what IPv6 cannot DNAT (::1, and IPv6
// host addresses of a container without IPv6). Package ports chooses and
// holds the host ports (ports.Allocator), says which addresses each
// binding gets (ports.Resolve) and runs the forwarder (ports.Forward);
// ports_family.go says which family's rules each mapping gets.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/ids"
	"github.com/mynet/mynet/ports"
)

// Keys of the endpoint, join and program options that carry ports.
const (
	keyPortMap      = "com.docker.network.portmap"
	keyExposedPorts = "com.docker.network.endpoint.exposedports"
)

// PortFirewall publishes ports; *firewall.IPTables fits.
type PortFirewall interface {
	EnsurePorts(b firewall.PortBridge, ms []firewall.Mapping) error
	RemovePorts(ms []firewall.Mapping) error
	RemoveBridgePorts(b firewall.PortBridge) error
	SetRouteLocalnet(bridge string, on bool) error
}

// IP protocol numbers the engine uses in port bindings.
var protoNames = map[int]string{6: firewall.ProtoTCP, 17: firewall.ProtoUDP, 132: firewall.ProtoSCTP}

// wireBinding is one entry of com.docker.network.portmap.
type wireBinding struct {
	Proto       int
	IP          string
	Port        int
	HostIP      string
	HostPort    int
	HostPortEnd int
}

// portRequestsFrom reads the port bindings from a request's options; ok is
// false when the options do not carry them at all (as opposed to `[]`).
func portRequestsFrom(opts map[string]any) (_ []ports.Request, ok bool, _ error) {
	raw, ok := opts[keyPortMap]
	if !ok || raw == nil {
		return nil, false, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", keyPortMap, err)
	}
	var wire []wireBinding
	if err := json.Unmarshal(b, &wire); err != nil {
		return nil, false, fmt.Errorf("%s: want a list of port bindings: %w", keyPortMap, err)
	}
	// Duplicates are dropped through a set: a range comes as one binding
	// per port, and a scan per binding made a 65,535-port range take
	// seconds per call.
	reqs := make([]ports.Request, 0, len(wire))
	seen := make(map[ports.Request]bool, len(wire))
	for _, w := range wire {
		r, err := w.request()
		if err != nil {
			return nil, false, err
		}
		if !seen[r] {
			seen[r] = true
			reqs = append(reqs, r)
		}
	}
	return reqs, true, nil
}

// request validates one binding. Each error names the binding as the user
// wrote it, since the user sees nothing but this text.
func (w wireBinding) request() (ports.Request, error) {
	proto, ok := protoNames[w.Proto]
	if !ok {
		return ports.Request{}, fmt.Errorf("port binding for container port %d: IP protocol %d is not tcp (6), udp (17) or sctp (132)", w.Port, w.Proto)
	}
	host := w.HostIP
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	name := fmt.Sprintf("port binding %s:%d-%d:%d/%s", host, w.HostPort, w.HostPortEnd, w.Port, proto)
	valid := func(p int) bool { return p >= 0 && p <= 65535 }
	switch {
	case w.Port < 1 || w.Port > 65535:
		return ports.Request{}, fmt.Errorf("%s: container port must be 1-65535", name)
	case !valid(w.HostPort) || !valid(w.HostPortEnd) || w.HostPortEnd != 0 && w.HostPortEnd < w.HostPort:
		return ports.Request{}, fmt.Errorf("%s: host ports must be 0-65535, first before last", name)
	case w.HostPort == 0 && w.HostPortEnd != 0:
		return ports.Request{}, fmt.Errorf("%s: a host port range needs its first port", name)
	}
	r := ports.Request{Proto: proto, Port: uint16(w.Port), HostPort: uint16(w.HostPort), HostPortEnd: uint16(w.HostPortEnd)}
	if r.HostPortEnd == r.HostPort {
		r.HostPortEnd = 0
	}
	if w.HostIP == "" {
		return r, nil
	}
	ip, err := netip.ParseAddr(w.HostIP)
	switch {
	case err != nil:
		return ports.Request{}, fmt.Errorf("%s: host address %q is not an IP address", name, w.HostIP)
	case ip.Zone() != "":
		return ports.Request{}, fmt.Errorf("%s: host address %s: addresses with a zone cannot be published", name, ip)
	case ip.IsLoopback() && ip.Is6() && proto == firewall.ProtoSCTP:
		// The kernel cannot DNAT ::1; mynet's forwarder, which serves
		// it instead, carries tcp and udp only.
		return ports.Request{}, fmt.Errorf("%s: sctp cannot be published on ::1 (mynet forwards only tcp and udp there); publish on :: or a host address", name)
	}
	r.HostIP = ip.Unmap()
	return r, nil
}

// recordPorts stores the port bindings found in opts on ep; options
// without them leave ep's as they are. Caller holds d.mu.
func (d *Driver) recordPorts(ep *endpointState, opts map[string]any) error {
	reqs, ok, err := portRequestsFrom(opts)
	if err != nil || !ok || slices.Equal(reqs, ep.Ports) {
		return err
	}
	ep.Ports = reqs
	if err := d.st.Put(endpointsBucket, ep.ID, ep); err != nil {
		return fmt.Errorf("record ports of endpoint %s: %w", ids.Short(ep.ID), err)
	}
	return nil
}

// publish holds the host ports of ep's requests and programs them.
// Publishing an already published endpoint again re-applies its rules
// (idempotent). On failure nothing is left: no port held, no rule, and the
// record says unpublished. Caller holds d.mu.
func (d *Driver) publish(n *networkState, ep *endpointState) (retErr error) {
	log := d.log.WithFields(ep.logFields())
	m4, m6 := d.familyModes(n, ep)
	switch {
	case len(ep.Ports) == 0:
		return d.unpublish(ep)
	case m4 == ports.ModeNone && m6 == ports.ModeNone:
		log.Info("network is internal or isolated, or the endpoint has no address it publishes to: ports not published")
		return nil
	case ep.Published && d.holding(ep) && sameRequests(ep):
		return d.applyPorts(n, ep)
	}
	prefs := ports.Preferences(ep.Mapped)
	if err := d.unpublish(ep); err != nil {
		return err
	}
	maps.Copy(prefs, d.takeOver(ep))
	mapped, holds, err := d.choosePorts(n, ep, prefs)
	if err != nil {
		return fmt.Errorf("publish ports of endpoint %s: %w", ids.Short(ep.ID), d.namePortHolder(err, ep.ID))
	}
	defer func() {
		if retErr != nil {
			ports.ReleaseAll(holds)
		}
	}()
	if err := d.setPublished(ep, mapped, true); err != nil {
		return err
	}
	if err := d.applyPorts(n, ep); err != nil {
		return errors.Join(err, d.withdraw(n, ep), d.setPublished(ep, ep.Mapped, false), d.tidyBridge(n))
	}
	d.holds[ep.ID] = d.startForwarders(n, ep, holds)
	log.WithField("ports", mappingsText(mapped)).Info("ports published")
	return nil
}

// sameRequests reports whether ep's published mappings were made for its
// current requests, so a repeated Program only has to re-apply them.
func sameRequests(ep *endpointState) bool {
	return ep.MappedFor != nil && slices.Equal(ep.MappedFor, ep.Ports)
}

// choosePorts picks the host ports for ep's requests: held ones for the
// families that publish by NAT, the container ports themselves for a
// routed family, where nothing on the host is used.
func (d *Driver) choosePorts(n *networkState, ep *endpointState, prefs map[ports.ContainerPort]uint16) ([]ports.Mapping, []io.Closer, error) {
	m4, m6 := d.familyModes(n, ep)
	reqs, err := ports.Resolve(ep.Ports, n.Options.HostBinding, m4, m6)
	if err != nil {
		return nil, nil, err
	}
	mapped, holds, err := d.ports.Allocate(reqs, prefs)
	if err != nil {
		return nil, nil, err
	}
	return append(mapped, ports.RoutedMappings(ep.Ports, m4, m6)...), holds, nil
}

// setPublished records ep's mappings and whether they are in force.
func (d *Driver) setPublished(ep *endpointState, mapped []ports.Mapping, on bool) error {
	was, wasMapped, wasFor := ep.Published, ep.Mapped, ep.MappedFor
	ep.Mapped, ep.Published = mapped, on
	ep.MappedFor = nil
	if on {
		ep.MappedFor = slices.Clone(ep.Ports)
	}
	if err := d.st.Put(endpointsBucket, ep.ID, ep); err != nil {
		if on {
			// The caller undoes the publishing: memory must not say it is
			// in force, or Heal would put the rules of unheld ports back.
			ep.Published, ep.Mapped, ep.MappedFor = was, wasMapped, wasFor
		}
		return fmt.Errorf("record ports of endpoint %s: %w", ids.Short(ep.ID), err)
	}
	return nil
}

// takeOver unpublishes the other endpoints of ep's sandbox: a container
// publishes its ports through one endpoint, its gateway, and a Program for
// a new gateway may come before the Revoke for the old one. It returns
// their host ports, which ep prefers. Failures are logged: the old
// endpoint's Revoke, Leave or DeleteEndpoint will retry.
func (d *Driver) takeOver(ep *endpointState) map[ports.ContainerPort]uint16 {
	prefs := map[ports.ContainerPort]uint16{}
	if ep.SandboxKey == "" {
		return prefs
	}
	for _, o := range d.sortedEndpoints() {
		if o.ID == ep.ID || o.SandboxKey != ep.SandboxKey {
			continue
		}
		maps.Copy(prefs, ports.Preferences(o.Mapped))
		if !o.Published {
			continue
		}
		d.log.WithFields(o.logFields()).WithField("to", ids.Short(ep.ID)).Info("container's ports move to its new gateway endpoint")
		if err := d.unpublish(o); err != nil {
			d.log.WithFields(o.logFields()).WithError(err).Warn("unpublishing ports of the previous gateway endpoint")
		}
	}
	return prefs
}

// unpublish removes ep's port rules and releases its host ports, keeping
// the chosen ports in the record for a later publish. An endpoint with
// nothing published is left alone. If a rule cannot be removed, the ports
// stay held (traffic may still be DNATed to them) and the record says
// published, so a retry can finish. Caller holds d.mu.
func (d *Driver) unpublish(ep *endpointState) error {
	if !ep.Published && !d.holding(ep) {
		return nil
	}
	n, ok := d.networks[ep.NetworkID]
	if !ok {
		ports.ReleaseAll(d.holds[ep.ID])
		delete(d.holds, ep.ID)
		return d.setPublished(ep, ep.Mapped, false)
	}
	if err := d.withdraw(n, ep); err != nil {
		return fmt.Errorf("unpublish ports of endpoint %s: %w", ids.Short(ep.ID), err)
	}
	ports.ReleaseAll(d.holds[ep.ID])
	delete(d.holds, ep.ID)
	if err := d.setPublished(ep, ep.Mapped, false); err != nil {
		return err
	}
	d.log.WithFields(ep.logFields()).Info("ports unpublished")
	return d.tidyBridge(n)
}

// holding reports whether this process holds ep's host ports (an empty
// set in the routed mode, which uses none).
func (d *Driver) holding(ep *endpointState) bool {
	_, ok := d.holds[ep.ID]
	return ok
}

// withdraw removes ep's port rules, of both families, and hairpin mode.
// The forwarders stop with the holds, which the caller releases.
func (d *Driver) withdraw(n *networkState, ep *endpointState) error {
	ms4, ms6 := d.firewallMappings(n, ep)
	var errs []error
	if len(ms4) > 0 {
		errs = append(errs, d.fw.RemovePorts(ms4))
	}
	if len(ms6) > 0 {
		errs = append(errs, d.fw6.RemovePorts(ms6))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if anyNAT(ms4, ms6) {
		d.setHairpin(ep, false)
	}
	return nil
}

// anyNAT reports whether any mapping is DNATed (not routed): only those
// need hairpin mode.
func anyNAT(mss ...[]firewall.Mapping) bool {
	for _, ms := range mss {
		for _, m := range ms {
			if !m.Routed {
				return true
			}
		}
	}
	return false
}

// applyPorts puts ep's published mappings in the kernel, each family's
// through its applier; idempotent. The IPv4 bridge rules (among them the
// guard against what route_localnet allows) go in before route_localnet
// is turned on.
func (d *Driver) applyPorts(n *networkState, ep *endpointState) error {
	m4, m6 := d.familyModes(n, ep)
	ms4, ms6 := d.firewallMappings(n, ep)
	if len(ms4) > 0 {
		b := firewall.PortBridge{Bridge: n.Bridge, Subnet: n.Subnet, Routed: m4 == ports.ModeRouted}
		if err := d.fw.EnsurePorts(b, ms4); err != nil {
			return err
		}
		if !b.Routed {
			if err := d.fw.SetRouteLocalnet(n.Bridge, true); err != nil {
				return err
			}
		}
	}
	if len(ms6) > 0 {
		b := firewall.PortBridge{Bridge: n.Bridge, Subnet: n.Subnet6, Routed: m6 == ports.ModeRouted}
		if err := d.fw6.EnsurePorts(b, ms6); err != nil {
			return err
		}
	}
	if anyNAT(ms4, ms6) {
		d.setHairpin(ep, true)
	}
	d.flushStaleUDP(ms4)
	d.flushStaleUDP(ms6)
	return nil
}

// tidyBridge removes the bridge's port rules, of both families, and turns
// route_localnet off once no endpoint of n has published ports. Caller
// holds d.mu.
func (d *Driver) tidyBridge(n *networkState) error {
	for _, ep := range d.endpoints {
		if ep.NetworkID == n.ID && ep.Published {
			return nil
		}
	}
	// Whatever the mode now, remove what any mode added (Routed false).
	var errs []error
	if n.Subnet.IsValid() {
		errs = append(errs, d.fw.RemoveBridgePorts(firewall.PortBridge{Bridge: n.Bridge, Subnet: n.Subnet}),
			d.fw.SetRouteLocalnet(n.Bridge, false))
	}
	if n.Subnet6.IsValid() && d.fw6 != nil {
		errs = append(errs, d.fw6.RemoveBridgePorts(firewall.PortBridge{Bridge: n.Bridge, Subnet: n.Subnet6}))
	}
	return errors.Join(errs...)
}

// restorePorts holds the host ports and re-applies the rules of every
// published endpoint after a plugin start: the holds died with the old
// process, and the rules may have been flushed. A port taken by another
// program meanwhile is logged and the mapping kept (DNAT still sends that
// port's traffic to the container). Caller holds d.mu.
func (d *Driver) restorePorts() error {
	var errs []error
	for _, ep := range d.sortedEndpoints() {
		n, ok := d.networks[ep.NetworkID]
		if !ok || !ep.Published {
			continue
		}
		log := d.log.WithFields(ep.logFields())
		if !d.holding(ep) { // a second Restore must not try to re-take its own ports
			m4, m6 := d.familyModes(n, ep)
			// The forwarders need no rule: they serve ::1 even if the
			// rules below cannot be restored.
			d.holds[ep.ID] = d.startForwarders(n, ep, d.rehold(log, ep.Mapped, m4, m6))
		}
		if err := d.applyPorts(n, ep); err != nil {
			errs = append(errs, fmt.Errorf("restore ports of endpoint %s: %w", ids.Short(ep.ID), err))
			continue
		}
		log.WithField("ports", mappingsText(ep.Mapped)).Info("ports restored")
	}
	return errors.Join(errs...)
}

// rehold holds every host port of ms that it can, logging the others;
// a routed family's mappings hold none.
func (d *Driver) rehold(log *logrus.Entry, ms []ports.Mapping, m4, m6 ports.Mode) []io.Closer {
	holds := []io.Closer{}
	for _, m := range ms {
		if m.IsRouted(m4, m6) {
			continue
		}
		for p := int(m.HostPort); p <= int(m.HostPortEnd()); p++ {
			h, err := d.ports.Reserve(m.Proto, m.HostIP, uint16(p))
			if err != nil {
				log.WithError(err).WithField("port", p).Warn("host port of a published mapping could not be reserved again; the mapping stays")
				continue
			}
			holds = append(holds, h)
		}
	}
	return holds
}

// startForwarders replaces the holds of ep's forwarded host ports (see
// forwardTargets) by forwarders on the same sockets (ports.Forward).
func (d *Driver) startForwarders(n *networkState, ep *endpointState, holds []io.Closer) []io.Closer {
	return ports.Forward(d.log.WithFields(ep.logFields()), holds, d.forwardTargets(n, ep))
}

func mappingsText(ms []ports.Mapping) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}
