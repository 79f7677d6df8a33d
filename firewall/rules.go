// Package firewall generates and applies mynet's iptables rules for bridge
// networks.
//
// Generation is pure: NetworkRules turns a Network into the exact rules it
// needs, so the rule set is table-tested without root. Application is
// separate: IPTables adds and removes those rules through go-iptables.
//
// mynet owns its chains and nothing else. It never adds rules to Docker's
// chains (DOCKER*) and never flushes a chain it did not create; the only
// rules it places in built-in chains are the two jumps into its own chains:
//
//	mangle FORWARD     -> MYNET-ISOLATION                  (per-network drops)
//	filter FORWARD     -> MYNET-FORWARD -> MYNET-ACCEPT    (per-network accepts)
//	nat    POSTROUTING -> MYNET-POSTROUTING                (per-network masquerade)
//
// The drops live in the mangle table because its FORWARD hook runs before
// the filter table's whatever the rule order there: Docker 20.10 inserts
// each new network's `-i br-X ! -o br-X -j ACCEPT` at the top of filter
// FORWARD, above mynet's jump, and would otherwise let Docker's networks
// into mynet's. Every drop is thus evaluated ahead of every accept, so the
// order in which networks are added does not matter either.
package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mynet/mynet/internal/ifname"
)

// Tables mynet writes to.
const (
	TableFilter = "filter"
	TableNAT    = "nat"
	TableMangle = "mangle"
)

// Chains mynet owns. iptables allows chain names of up to 28 characters.
const (
	ChainForward     = "MYNET-FORWARD"
	ChainIsolation   = "MYNET-ISOLATION"
	ChainIsolation2  = "MYNET-ISOLATION-2"
	ChainInput       = "MYNET-INPUT"
	ChainAccept      = "MYNET-ACCEPT"
	ChainPostrouting = "MYNET-POSTROUTING"
)

// Built-in chains that get a jump into mynet's chains.
const (
	builtinForward     = "FORWARD"
	builtinInput       = "INPUT"
	builtinPostrouting = "POSTROUTING"
)

// Docker's bridge names: docker0 for the default network, br-<id> for user
// networks. Traffic from a mynet bridge to them is dropped.
const (
	dockerDefaultBridge = "docker0"
	dockerBridgePrefix  = "br-"
)

// commentPrefix starts the comment on every per-network rule, followed by
// the instance's tag and the bridge name, mynet:<name>:<uuid8>:<bridge>
// (mynet:<bridge> for the legacy, untagged form). It tells operators which
// instance and network a rule belongs to and lets a later reconciler find
// an instance's rules without knowing the network's options.
const commentPrefix = "mynet:"

// ErrInvalidNetwork is returned when a Network cannot be expressed safely as
// rules; nothing is changed in the kernel.
var ErrInvalidNetwork = errors.New("invalid network for firewall rules")

// Gateway modes, under Docker's names (com.docker.network.bridge.gateway_mode_ipv4/6).
const (
	// ModeNAT masquerades outbound traffic and drops new inbound traffic
	// that was not DNATed to a published port.
	ModeNAT = "nat"
	// ModeNATUnprotected masquerades but lets direct routed traffic from
	// outside reach any container port.
	ModeNATUnprotected = "nat-unprotected"
	// ModeRouted does no NAT; only published ports are open to direct
	// routing.
	ModeRouted = "routed"
	// ModeIsolated is internal-only and leaves the bridge without an
	// address.
	ModeIsolated = "isolated"
)

// Network is what the firewall needs to know about one mynet bridge
// network, for one address family.
type Network struct {
	// Owner is the tag of the mynet instance the rules belong to (see
	// Instance); the applier sets it. "" writes the legacy form.
	Owner string
	// Bridge is the Linux bridge's name. It must not look like one of
	// Docker's bridges (docker0, br-*), whose traffic mynet drops.
	Bridge string
	// Subnet is the network's subnet of this family, the source of
	// masqueraded traffic. Required when the network is masqueraded.
	Subnet netip.Prefix
	// Masquerade rewrites the source of traffic leaving the subnet through
	// any other interface (in ModeNAT and ModeNATUnprotected).
	Masquerade bool
	// SNATSource, when valid, replaces masquerading with SNAT to this
	// fixed host address (com.docker.network.host_ipv4).
	SNATSource netip.Addr
	// ICC allows traffic between containers on the same bridge.
	ICC bool
	// Internal forbids all traffic in or out of the bridge except
	// bridge-to-bridge, including to the host's own addresses.
	Internal bool
	// Mode is the gateway mode; "" means ModeNAT.
	Mode string
	// TrustedIfaces may reach containers by direct routing whatever the
	// mode (com.docker.network.bridge.trusted_host_interfaces).
	TrustedIfaces []string
}

// internal reports whether nothing may enter or leave the bridge.
func (n Network) internal() bool { return n.Internal || n.Mode == ModeIsolated }

// natted reports whether traffic leaving the subnet gets a host source.
func (n Network) natted() bool {
	return n.Masquerade && !n.internal() && n.Mode != ModeRouted
}

// Rule is one iptables rule: Spec is everything after "-A Chain".
type Rule struct {
	Table string
	Chain string
	Spec  []string
}

// String renders r as iptables arguments, e.g. for logs and errors:
// "-t filter -A MYNET-ACCEPT -i br0 ... -j ACCEPT".
func (r Rule) String() string {
	return fmt.Sprintf("-t %s -A %s %s", r.Table, r.Chain, strings.Join(r.Spec, " "))
}

// NetworkRules returns the rules network n needs, in the order they must be
// added: drops before accepts, so that a partly applied network never lets
// through traffic it should drop. Removal goes in reverse order for the
// same reason. n is assumed to be valid (see IPTables.EnsureNetwork).
func NetworkRules(n Network) []Rule {
	var rules []Rule
	rules = append(rules, isolationRules(n)...)
	if n.internal() {
		// The host's own addresses are outside the network too.
		rules = append(rules, tagged(TableFilter, ChainInput, n.label(), "DROP", "-i", n.Bridge))
	}
	rules = append(rules, acceptRules(n)...)
	if n.natted() {
		target := []string{"MASQUERADE"}
		if n.SNATSource.IsValid() {
			target = []string{"SNAT", "--to-source", n.SNATSource.String()}
		}
		rules = append(rules, tagged(TableNAT, ChainPostrouting, n.label(), target[0],
			"-s", n.Subnet.Masked().String(), "!", "-o", n.Bridge))
		rules[len(rules)-1].Spec = append(rules[len(rules)-1].Spec, target[1:]...)
	}
	return rules
}

// notReply matches packets that start something new: not part of, or
// related to, a connection that was let through, and not sent to a
// published port (DNATed by mynet's port rules, whose own accepts decide).
var notReply = []string{"-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT"}

// isolationRules are the drops for n: MYNET-ISOLATION is evaluated for
// every forwarded packet, MYNET-ISOLATION-2 only for packets leaving a
// mynet bridge for another interface (Docker's two-stage isolation), so
// that every pair of mynet networks is isolated in both directions with a
// constant number of rules per network, whatever each network's mode.
func isolationRules(n Network) []Rule {
	b := n.Bridge
	var rules []Rule
	iso := func(target string, match ...string) {
		rules = append(rules, tagged(TableMangle, ChainIsolation, n.label(), target, match...))
	}
	if !n.internal() {
		for _, ifc := range n.TrustedIfaces {
			iso("RETURN", "-i", ifc, "-o", b)
		}
	}
	// Stage 1: leaving b for another interface goes through stage 2.
	iso(ChainIsolation2, "-i", b, "!", "-o", b)
	switch {
	case n.internal():
		iso("DROP", "-i", b, "!", "-o", b)
		iso("DROP", "!", "-i", b, "-o", b)
	case n.Mode == ModeNATUnprotected:
		// Direct routing from outside is allowed; Docker's networks are
		// kept out as Docker keeps them out of each other.
		iso("DROP", append([]string{"-i", dockerDefaultBridge, "-o", b}, notReply...)...)
		iso("DROP", append([]string{"-i", dockerBridgePrefix + "+", "-o", b}, notReply...)...)
	default: // nat, routed
		iso("DROP", append([]string{"!", "-i", b, "-o", b}, notReply...)...)
	}
	if !n.ICC {
		// With br_netfilter, frames bridged between two ports of the same
		// bridge traverse FORWARD with in and out both the bridge. The
		// driver also isolates the bridge ports, which covers the case
		// without br_netfilter. Traffic to a published port of another
		// container (DNATed on the host) still passes.
		iso("DROP", append([]string{"-i", b, "-o", b}, "-m", "conntrack", "!", "--ctstate", "DNAT")...)
	}
	// Stage 2: nothing new from another mynet network enters b.
	rules = append(rules, tagged(TableMangle, ChainIsolation2, n.label(), "DROP", append([]string{"-o", b}, notReply...)...))
	return rules
}

// acceptRules are the accepts for n in MYNET-ACCEPT. They are needed
// because dockerd sets the FORWARD policy to DROP, and with br_netfilter
// even bridged frames are subject to it. Anything that must not pass has
// already been dropped in MYNET-ISOLATION.
func acceptRules(n Network) []Rule {
	return []Rule{
		tagged(TableFilter, ChainAccept, n.label(), "ACCEPT", "-i", n.Bridge),
		tagged(TableFilter, ChainAccept, n.label(), "ACCEPT", "-o", n.Bridge),
	}
}

// tagged builds a per-network rule: match, the comment, then the jump to
// target. iptables -C compares the comment too, so a rule is only ever
// found in exactly this form, of exactly this instance.
func tagged(table, chain, comment, target string, match ...string) Rule {
	spec := make([]string, 0, len(match)+6)
	spec = append(spec, match...)
	spec = append(spec, "-m", "comment", "--comment", comment, "-j", target)
	return Rule{Table: table, Chain: chain, Spec: spec}
}

// label is the comment of owner's rules for bridge.
func label(owner, bridge string) string {
	if owner == "" {
		return commentPrefix + bridge
	}
	return commentPrefix + owner + ":" + bridge
}

// ParseLabel splits a mark mynet writes, mynet:<name>:<uuid8>:<object> or
// the legacy mynet:<object>, into the owner tag ("" for the legacy form)
// and the object. It reads rule comments (the object is a bridge) and, in
// the driver, link aliases (a Docker ID): one format for both, so that an
// instance tells its own objects from others' the same way everywhere. ok
// is false for anything mynet did not write.
func ParseLabel(mark string) (owner, object string, ok bool) {
	rest, ok := strings.CutPrefix(mark, commentPrefix)
	if !ok || rest == "" {
		return "", "", false
	}
	parts := strings.Split(rest, ":")
	switch {
	case len(parts) == 1:
		return "", parts[0], true
	case len(parts) == 3 && parts[0] != "" && parts[1] != "" && parts[2] != "":
		return parts[0] + ":" + parts[1], parts[2], true
	}
	return "", "", false
}

func (n Network) label() string { return label(n.Owner, n.Bridge) }

// placedRule is a rule that belongs at a fixed 1-based position in its
// chain, or at its end for position 0.
type placedRule struct {
	Rule
	pos int
}

// baseRules are the rules shared by all networks, in the order they are
// ensured: MYNET-FORWARD's fixed content first, then the jumps into it from
// the built-in chains, so traffic is never sent into a half-built chain.
// They carry no comment: the MYNET- chain names already say whose they are.
func baseRules() []placedRule {
	return []placedRule{
		{Rule{TableFilter, ChainForward, []string{"-j", ChainAccept}}, 1},
		// Stage 2 of the isolation, entered only from mynet bridges: into
		// Docker's networks nothing new goes (Docker's own FORWARD rules
		// would accept it).
		{Rule{TableMangle, ChainIsolation2, append(append([]string{"-o", dockerDefaultBridge}, notReply...), "-j", "DROP")}, 0},
		{Rule{TableMangle, ChainIsolation2, append(append([]string{"-o", dockerBridgePrefix + "+"}, notReply...), "-j", "DROP")}, 0},
		// First in the built-in chains. For the drops in mangle this is
		// belt and braces (Docker writes no mangle FORWARD rules); for the
		// accepts it only needs to come before the policy.
		{Rule{TableMangle, builtinForward, []string{"-j", ChainIsolation}}, 1},
		{Rule{TableFilter, builtinForward, []string{"-j", ChainForward}}, 1},
		{Rule{TableFilter, builtinInput, []string{"-j", ChainInput}}, 1},
		{Rule{TableNAT, builtinPostrouting, []string{"-j", ChainPostrouting}}, 1},
	}
}

// chainRef names a chain in a table.
type chainRef struct {
	table, chain string
}

// ownedChains are mynet's chains, in an order in which they can be deleted
// once the jumps from the built-in chains are gone: MYNET-FORWARD refers to
// the next two.
var ownedChains = []chainRef{
	{TableFilter, ChainForward},
	{TableFilter, ChainInput},
	{TableMangle, ChainIsolation},
	{TableMangle, ChainIsolation2},
	{TableFilter, ChainAccept},
	{TableNAT, ChainPostrouting},
}

// networkChains hold per-network rules only.
var networkChains = []chainRef{
	{TableMangle, ChainIsolation},
	{TableMangle, ChainIsolation2},
	{TableFilter, ChainInput},
	{TableFilter, ChainAccept},
	{TableNAT, ChainPostrouting},
}

// validate reports whether n can be turned into rules. is4 says which
// address family the caller's iptables binary handles.
func (n Network) validate(is4 bool) error {
	if err := validBridgeName(n.Bridge); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidNetwork, err)
	}
	for _, ifc := range n.TrustedIfaces {
		if err := CheckMatchName(ifc); err != nil {
			return fmt.Errorf("%w: bridge %s: trusted interface %q: %w", ErrInvalidNetwork, n.Bridge, ifc, err)
		}
	}
	if n.Masquerade && !n.Internal && !n.Subnet.IsValid() {
		return fmt.Errorf("%w: bridge %s: masquerade needs a subnet", ErrInvalidNetwork, n.Bridge)
	}
	if n.Subnet.IsValid() && n.Subnet.Addr().Is4() != is4 {
		return fmt.Errorf("%w: bridge %s: subnet %s is of the wrong address family", ErrInvalidNetwork, n.Bridge, n.Subnet)
	}
	return nil
}

// CheckNetwork reports whether n can be turned into rules by the iptables
// of one family (is4), so that callers can refuse a network before
// touching the kernel.
func CheckNetwork(n Network, is4 bool) error { return n.validate(is4) }

// CheckBridgeName reports whether name can be a mynet bridge (see
// validBridgeName), so that callers can refuse a user's bridge name before
// touching the kernel: an existing bridge of a refused name, docker0 above
// all, would otherwise be adopted and given an address first.
func CheckBridgeName(name string) error { return validBridgeName(name) }

// validBridgeName accepts the names CheckMatchName accepts, minus
// Docker's bridge names: the drops towards Docker's bridges would match a
// mynet bridge with such a name and cut its own traffic.
func validBridgeName(name string) error {
	if err := CheckMatchName(name); err != nil {
		return fmt.Errorf("bridge name %q: %w", name, err)
	}
	if name == dockerDefaultBridge || strings.HasPrefix(name, dockerBridgePrefix) {
		return fmt.Errorf("bridge name %q: looks like a Docker bridge (%s, %s*)", name, dockerDefaultBridge, dockerBridgePrefix)
	}
	return nil
}

// CheckMatchName reports whether name can be given to iptables' -i and
// -o matches as exactly that interface: a valid interface name without
// '+' (iptables' wildcard: "+" alone matches every interface) or '!' (a
// negation).
func CheckMatchName(name string) error {
	if err := ifname.Check(name); err != nil {
		return err
	}
	if strings.ContainsAny(name, "+!") {
		return errors.New("an interface name given to iptables cannot contain '+' (a wildcard) or '!' (a negation)")
	}
	return nil
}
