package firewall

// Published ports.
//
// A published port range is one DNAT rule whatever its size: it matches
// the whole host port range, and the kernel keeps the port or shifts it by
// a constant offset (see dnatTarget). The forward path needs no rule of its
// own: the isolation drops let DNATed connections through (notReply) and
// MYNET-ACCEPT accepts everything into the bridge. A bridge with published
// ports has more rules: masquerade of same-bridge DNATed traffic and, for
// IPv4 only, masquerade of loopback-sourced traffic and a guard against
// the side effect of route_localnet.
//
//	nat    PREROUTING -> MYNET-DNAT   (local destinations; IPv4: but loopback)
//	nat    OUTPUT     -> MYNET-DNAT   (local destinations; IPv6: but ::1)
//
// Each family has its own applier (iptables, ip6tables) and so its own
// MYNET-DNAT. IPv6 has no route_localnet: a packet from ::1 DNATed out of
// the bridge would be dropped as a martian, so the OUTPUT jump leaves ::1
// alone and the driver serves [::1] with an in-process forwarder.
//
// In the routed gateway mode nothing is translated: a published container
// port is opened to direct routing instead, with a RETURN ahead of the
// bridge's drops in MYNET-ISOLATION.
//
// MYNET-DNAT and its jumps are created with the first published port, not
// by Init, so a host that never publishes a port keeps the rule set it had.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"

	"github.com/sirupsen/logrus"
)

// ChainDNAT holds the DNAT rules of published ports.
const ChainDNAT = "MYNET-DNAT"

// Built-in chains that jump into MYNET-DNAT.
const (
	builtinPrerouting = "PREROUTING"
	builtinOutput     = "OUTPUT"
)

// loopbackNet is 127.0.0.0/8, which route_localnet lets onto a bridge;
// loopback6 is ::1, which nothing lets out of lo.
const (
	loopbackNet = "127.0.0.0/8"
	loopback6   = "::1/128"
)

// Protocols a port can be published for, by iptables name.
const (
	ProtoTCP  = "tcp"
	ProtoUDP  = "udp"
	ProtoSCTP = "sctp"
)

// ErrInvalidMapping is returned when a Mapping cannot be expressed safely as
// rules; nothing is changed in the kernel.
var ErrInvalidMapping = errors.New("invalid port mapping for firewall rules")

// Mapping is one published range of consecutive ports of one container:
// host ports HostPort..HostPort+(PortEnd-Port) go to container ports
// Port..PortEnd, in order. HostIP and Container are of one family, the
// applier's.
type Mapping struct {
	// Owner is the instance's tag, set by the applier (see Network.Owner).
	Owner string
	// Bridge is the network's bridge, which the container is behind.
	Bridge string
	// Proto is ProtoTCP, ProtoUDP or ProtoSCTP.
	Proto string
	// HostIP is the host address the ports are published on; the
	// unspecified address (0.0.0.0, ::) means all of the host's addresses
	// of its family. ::1 cannot be DNATed (see the file comment).
	HostIP netip.Addr
	// HostPort is the first host port.
	HostPort uint16
	// Container is the container's address on Bridge.
	Container netip.Addr
	// Port and PortEnd are the first and last container ports.
	Port, PortEnd uint16
	// Routed: the network is in the routed gateway mode. The container
	// ports are opened to direct routing and nothing is DNATed; HostIP
	// and HostPort are ignored.
	Routed bool
}

// HostPortEnd is the last host port of m.
func (m Mapping) HostPortEnd() uint16 { return m.HostPort + (m.PortEnd - m.Port) }

// String names m for logs and errors: "8080-8089/tcp on 0.0.0.0 -> 10.50.0.2:80-89".
func (m Mapping) String() string {
	return fmt.Sprintf("%s/%s on %s -> %s:%s", portSpan(m.HostPort, m.HostPortEnd(), "-"), m.Proto, m.HostIP, m.Container, portSpan(m.Port, m.PortEnd, "-"))
}

// PortBridge is what the per-bridge port rules need to know.
type PortBridge struct {
	// Owner is the instance's tag, set by the applier (see Network.Owner).
	Owner  string
	Bridge string
	// Subnet is the network's subnet of the applier's family: its
	// containers reaching a published port through a host address are
	// masqueraded.
	Subnet netip.Prefix
	// Routed: the network is in the routed gateway mode, where nothing is
	// DNATed and the bridge needs no rules of its own.
	Routed bool
}

// PortRules returns the rule that publishes m: one DNAT rule, or in the
// routed mode one RETURN ahead of the isolation drops. m is assumed valid
// (see IPTables.EnsurePorts).
func PortRules(m Mapping) []Rule {
	proto := []string{"-p", m.Proto, "-m", m.Proto}
	if m.Routed {
		match := append([]string{"-d", hostPrefix(m.Container), "-o", m.Bridge}, proto...)
		match = append(match, "--dport", portSpan(m.Port, m.PortEnd, ":"))
		return []Rule{tagged(TableMangle, ChainIsolation, label(m.Owner, m.Bridge), "RETURN", match...)}
	}
	var match []string
	if !m.HostIP.IsUnspecified() {
		match = append(match, "-d", hostPrefix(m.HostIP))
	}
	match = append(match, proto...)
	match = append(match, "--dport", portSpan(m.HostPort, m.HostPortEnd(), ":"))
	rule := tagged(TableNAT, ChainDNAT, label(m.Owner, m.Bridge), "DNAT", match...)
	rule.Spec = append(rule.Spec, "--to-destination", dnatTarget(m))
	return []Rule{rule}
}

// hostPrefix is a as a single-address prefix, the form iptables prints.
func hostPrefix(a netip.Addr) string {
	return netip.PrefixFrom(a, a.BitLen()).String()
}

// dnatTarget is the DNAT destination for m. Equal host and container ports
// need no port: DNAT keeps it. A shifted range uses the kernel's offset
// form IP:FIRST-LAST/BASE (xt_nat revision 2, Linux 4.19+), which maps
// host port BASE+i to container port FIRST+i in one rule. An IPv6 address
// followed by a port goes in brackets, as ip6tables wants it.
func dnatTarget(m Mapping) string {
	ip := m.Container.String()
	if m.HostPort == m.Port {
		return ip
	}
	if m.Container.Is6() {
		ip = "[" + ip + "]"
	}
	if m.Port == m.PortEnd {
		return ip + ":" + strconv.Itoa(int(m.Port))
	}
	return fmt.Sprintf("%s:%d-%d/%d", ip, m.Port, m.PortEnd, m.HostPort)
}

// portSpan renders a port or, when last > first, a range joined by sep
// (":" for iptables matches, "-" for people).
func portSpan(first, last uint16, sep string) string {
	if last == first {
		return strconv.Itoa(int(first))
	}
	return strconv.Itoa(int(first)) + sep + strconv.Itoa(int(last))
}

// BridgePortRules returns the rules a bridge needs while any of its
// containers has a published port (none in the routed mode):
//   - IPv4 only: a drop of new traffic from the bridge to 127.0.0.0/8:
//     route_localnet would otherwise let a container reach the host's
//     loopback-only services with forged packets;
//   - IPv4 only: masquerade of loopback-sourced traffic: the host reaching
//     127.0.0.1:HOSTPORT is DNATed out of the bridge (route_localnet lets
//     it), and the container must answer to an address it can reach;
//   - masquerade of DNATed traffic from the bridge's own subnet (hairpin,
//     and neighbours using a host address): without it the answer would go
//     straight back over the bridge, from an address the client did not
//     talk to.
//
// IPv6 has no route_localnet and ::1 is never DNATed, so it needs neither
// the guard nor the loopback masquerade.
func BridgePortRules(b PortBridge) []Rule {
	if b.Routed {
		return nil
	}
	hairpin := tagged(TableNAT, ChainPostrouting, label(b.Owner, b.Bridge), "MASQUERADE",
		"-s", b.Subnet.Masked().String(), "-o", b.Bridge, "-m", "conntrack", "--ctstate", "DNAT")
	if !b.Subnet.Addr().Is4() {
		return []Rule{hairpin}
	}
	return []Rule{
		tagged(TableFilter, ChainInput, label(b.Owner, b.Bridge), "DROP",
			"-i", b.Bridge, "-d", loopbackNet, "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED"),
		tagged(TableNAT, ChainPostrouting, label(b.Owner, b.Bridge), "MASQUERADE", "-s", loopbackNet, "-o", b.Bridge),
		hairpin,
	}
}

// portBaseRules are the jumps into MYNET-DNAT, each first in its built-in
// chain. For IPv4 the PREROUTING jump leaves out loopback destinations:
// only the host itself may use 127.0.0.1. For IPv6 the OUTPUT jump leaves
// out ::1, which cannot leave lo once DNATed (there is no route_localnet
// for IPv6); the driver's forwarder answers on it instead.
func portBaseRules(is4 bool) []placedRule {
	dnatMatch := []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", ChainDNAT}
	if !is4 {
		return []placedRule{
			{Rule{TableNAT, builtinPrerouting, dnatMatch}, 1},
			{Rule{TableNAT, builtinOutput, append([]string{"!", "-d", loopback6}, dnatMatch...)}, 1},
		}
	}
	return []placedRule{
		{Rule{TableNAT, builtinPrerouting, append([]string{"!", "-d", loopbackNet}, dnatMatch...)}, 1},
		{Rule{TableNAT, builtinOutput, dnatMatch}, 1},
	}
}

// portChains are the chains for published ports.
var portChains = []chainRef{{TableNAT, ChainDNAT}}

// validate reports whether m can be turned into rules.
func (m Mapping) validate(is4 bool) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidMapping, m, fmt.Sprintf(format, args...))
	}
	if err := validBridgeName(m.Bridge); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMapping, err)
	}
	switch {
	case m.Proto != ProtoTCP && m.Proto != ProtoUDP && m.Proto != ProtoSCTP:
		return fail("protocol must be tcp, udp or sctp")
	case !m.HostIP.IsValid() || !m.Container.IsValid() || m.Container.IsUnspecified():
		return fail("host and container addresses are required")
	case m.HostIP.Is4() != is4 || m.Container.Is4() != is4:
		return fail("host and container addresses must be %s", familyName(is4))
	case m.HostIP.Zone() != "" || m.Container.Zone() != "":
		return fail("addresses with a zone cannot be published")
	case !is4 && m.HostIP.IsLoopback() && !m.Routed:
		return fail("::1 cannot be DNATed (IPv6 has no route_localnet)")
	case m.Port == 0 || m.HostPort == 0 || m.PortEnd < m.Port:
		return fail("ports must be 1-65535, first before last")
	case int(m.HostPort)+int(m.PortEnd-m.Port) > 65535:
		return fail("host port range runs past 65535")
	}
	return nil
}

func (b PortBridge) validate(is4 bool) error {
	if err := validBridgeName(b.Bridge); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMapping, err)
	}
	if !b.Subnet.IsValid() || b.Subnet.Addr().Is4() != is4 {
		return fmt.Errorf("%w: bridge %s: an %s subnet is required", ErrInvalidMapping, b.Bridge, familyName(is4))
	}
	return nil
}

func familyName(is4 bool) string {
	if is4 {
		return "IPv4"
	}
	return "IPv6"
}

// EnsurePorts adds the rules of bridge b and of every mapping in ms that
// are missing, after the port chains and their jumps. Calling it again
// adds nothing. If it fails midway, it removes the rules it added in this
// call; rules that were there before, and the chains, stay.
func (t *IPTables) EnsurePorts(b PortBridge, ms []Mapping) error {
	b.Owner, ms = t.owner, t.owned(ms)
	if err := b.validate(t.is4); err != nil {
		return err
	}
	for _, m := range ms {
		if err := m.validate(t.is4); err != nil {
			return err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.ensurePortsBase(); err != nil {
		return err
	}
	rules := BridgePortRules(b)
	for _, m := range ms {
		rules = append(rules, PortRules(m)...)
	}
	if err := t.addRules(t.log.WithField("bridge", b.Bridge), rules, t.addPortRule); err != nil {
		return fmt.Errorf("publishing ports on bridge %s: %w", b.Bridge, err)
	}
	return nil
}

// addPortRule adds r unless it is in its chain already, and reports
// whether it added it. The routed mode's RETURNs go first in
// MYNET-ISOLATION, ahead of the bridge's drops; everything else is
// appended.
func (t *IPTables) addPortRule(log *logrus.Entry, r Rule) (bool, error) {
	if r.Table != TableMangle || r.Chain != ChainIsolation {
		return t.appendRule(log, r)
	}
	ok, err := t.ipt.Exists(r.Table, r.Chain, r.Spec...)
	if err != nil {
		return false, fmt.Errorf("checking rule %s: %w", r, err)
	}
	t.want[r.String()] = r
	if ok {
		return false, nil
	}
	if err := t.ipt.Insert(r.Table, r.Chain, 1, r.Spec...); err != nil {
		return false, fmt.Errorf("inserting rule %s: %w", r, err)
	}
	log.WithField("rule", r.String()).Debug("inserted rule")
	return true, nil
}

// RemovePorts removes the rules of the mappings in ms, each mapping's in
// reverse order of addition. Already-gone rules and chains count as
// removed; it keeps going past failures and returns them joined.
func (t *IPTables) RemovePorts(ms []Mapping) error {
	ms = t.owned(ms)
	for _, m := range ms {
		if err := m.validate(t.is4); err != nil {
			return err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, m := range ms {
		errs = append(errs, t.deleteRules(t.log.WithField("bridge", m.Bridge), PortRules(m)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("unpublishing ports: %w", err)
	}
	return nil
}

// RemoveBridgePorts removes bridge b's port rules; the caller does so once
// no container of the bridge has a published port left. Idempotent.
func (t *IPTables) RemoveBridgePorts(b PortBridge) error {
	b.Owner = t.owner
	if err := b.validate(t.is4); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.deleteRules(t.log.WithField("bridge", b.Bridge), BridgePortRules(b)); err != nil {
		return fmt.Errorf("removing port rules of bridge %s: %w", b.Bridge, err)
	}
	return nil
}

// owned is a copy of ms with the applier's owner tag.
func (t *IPTables) owned(ms []Mapping) []Mapping {
	out := make([]Mapping, len(ms))
	for i, m := range ms {
		m.Owner = t.owner
		out[i] = m
	}
	return out
}

// deleteRules deletes rules newest first, past failures.
func (t *IPTables) deleteRules(log *logrus.Entry, rules []Rule) error {
	var errs []error
	for i := len(rules) - 1; i >= 0; i-- {
		errs = append(errs, t.deleteRule(log, rules[i]))
	}
	return errors.Join(errs...)
}

// ensurePortsBase creates MYNET-DNAT and its jumps if missing, after
// mynet's base: the bridge rules go into its MYNET-INPUT and
// MYNET-POSTROUTING.
func (t *IPTables) ensurePortsBase() error {
	if err := t.ensureBase(); err != nil {
		return err
	}
	return t.ensureStructure(&t.portsBaseDone, portChains, portBaseRules(t.is4))
}

// cleanupPorts removes the port jumps and chains, for Cleanup, which has
// already checked that no rules remain in them. Missing parts are fine.
func (t *IPTables) cleanupPorts() []error {
	var errs []error
	base := portBaseRules(t.is4)
	for i := len(base) - 1; i >= 0; i-- {
		errs = append(errs, t.deleteRule(t.log, base[i].Rule))
	}
	for _, c := range portChains {
		errs = append(errs, t.deleteChain(c))
	}
	return errs
}

// requireNoPortRules returns ErrRulesRemain if a port chain holds a rule.
func (t *IPTables) requireNoPortRules() error {
	return t.requireEmpty(portChains)
}

// SetRouteLocalnet turns route_localnet on or off for bridge: on, the
// kernel routes 127.0.0.0/8-sourced packets out of the bridge, which the
// host's own connections to 127.0.0.1:HOSTPORT need once DNATed to a
// container (the loopback masquerade then gives them a real source). A
// bridge that is gone needs nothing: not an error.
func (t *IPTables) SetRouteLocalnet(bridge string, on bool) error {
	if err := validBridgeName(bridge); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMapping, err)
	}
	path := t.sysctlPath("net/ipv4/conf/" + bridge + "/route_localnet")
	val := "0\n"
	if on {
		val = "1\n"
	}
	if cur, err := os.ReadFile(path); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err == nil && string(cur) == val {
		return nil
	}
	if err := os.WriteFile(path, []byte(val), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("setting route_localnet on %s: %w", bridge, err)
	}
	return nil
}
