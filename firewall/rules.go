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
	ChainAccept      = "MYNET-ACCEPT"
	ChainPostrouting = "MYNET-POSTROUTING"
)

// Built-in chains that get a jump into mynet's chains.
const (
	builtinForward     = "FORWARD"
	builtinPostrouting = "POSTROUTING"
)

// Docker's bridge names: docker0 for the default network, br-<id> for user
// networks. Traffic from a mynet bridge to them is dropped.
const (
	dockerDefaultBridge = "docker0"
	dockerBridgePrefix  = "br-"
)

// commentPrefix starts the comment on every per-network rule, followed by
// the bridge name. It tells operators which network a rule belongs to and
// lets a later reconciler find a network's rules without knowing its
// options.
const commentPrefix = "mynet:"

// maxIfNameLen is IFNAMSIZ (16) less the terminating NUL.
const maxIfNameLen = 15

// ErrInvalidNetwork is returned when a Network cannot be expressed safely as
// rules; nothing is changed in the kernel.
var ErrInvalidNetwork = errors.New("invalid network for firewall rules")

// Network is what the firewall needs to know about one mynet bridge network.
type Network struct {
	// Bridge is the Linux bridge's name. It must not look like one of
	// Docker's bridges (docker0, br-*), whose traffic mynet drops.
	Bridge string
	// Subnet is the network's subnet, the source of masqueraded traffic.
	// Required when Masquerade is set and Internal is not.
	Subnet netip.Prefix
	// Masquerade rewrites the source of traffic leaving the subnet through
	// any other interface. Ignored for internal networks.
	Masquerade bool
	// ICC allows traffic between containers on the same bridge.
	ICC bool
	// Internal forbids all traffic in or out of the bridge except
	// bridge-to-bridge.
	Internal bool
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
	rules = append(rules, acceptRules(n)...)
	if n.Masquerade && !n.Internal {
		rules = append(rules, tagged(TableNAT, ChainPostrouting, n.Bridge, "MASQUERADE",
			"-s", n.Subnet.Masked().String(), "!", "-o", n.Bridge))
	}
	return rules
}

// isolationRules are the drops for n in MYNET-ISOLATION.
func isolationRules(n Network) []Rule {
	b := n.Bridge
	var matches [][]string
	if n.Internal {
		// Nothing leaves or enters the bridge. These two subsume the
		// non-internal drops below, so those are not added as well.
		matches = [][]string{
			{"-i", b, "!", "-o", b},
			{"!", "-i", b, "-o", b},
		}
	} else {
		matches = [][]string{
			// New connections into the bridge from anywhere else: other
			// mynet networks, Docker's bridges, the outside. Replies to
			// connections made from inside still pass, and so does
			// traffic to published ports, which mynet's DNAT rules
			// rewrote (routing straight to a container address is not
			// DNATed and is dropped).
			{"!", "-i", b, "-o", b, "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT"},
			// Into Docker's networks: Docker's own FORWARD rules would
			// accept what MYNET-ACCEPT lets out of the bridge.
			{"-i", b, "-o", dockerDefaultBridge},
			{"-i", b, "-o", dockerBridgePrefix + "+"},
		}
	}
	if !n.ICC {
		// With br_netfilter, frames bridged between two ports of the same
		// bridge traverse FORWARD with in and out both the bridge.
		matches = append(matches, []string{"-i", b, "-o", b})
	}
	rules := make([]Rule, 0, len(matches))
	for _, m := range matches {
		rules = append(rules, tagged(TableMangle, ChainIsolation, b, "DROP", m...))
	}
	return rules
}

// acceptRules are the accepts for n in MYNET-ACCEPT. They are needed
// because dockerd sets the FORWARD policy to DROP, and with br_netfilter
// even bridged frames are subject to it. Anything that must not pass has
// already been dropped in MYNET-ISOLATION.
func acceptRules(n Network) []Rule {
	return []Rule{
		tagged(TableFilter, ChainAccept, n.Bridge, "ACCEPT", "-i", n.Bridge),
		tagged(TableFilter, ChainAccept, n.Bridge, "ACCEPT", "-o", n.Bridge),
	}
}

// tagged builds a per-network rule: match, the network's comment, then the
// jump to target. iptables -C compares the comment too, so a rule is only
// ever found in exactly this form.
func tagged(table, chain, bridge, target string, match ...string) Rule {
	spec := make([]string, 0, len(match)+6)
	spec = append(spec, match...)
	spec = append(spec, "-m", "comment", "--comment", commentPrefix+bridge, "-j", target)
	return Rule{Table: table, Chain: chain, Spec: spec}
}

// placedRule is a rule that belongs at a fixed 1-based position in its
// chain.
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
		// First in the built-in chains. For the drops in mangle this is
		// belt and braces (Docker writes no mangle FORWARD rules); for the
		// accepts it only needs to come before the policy.
		{Rule{TableMangle, builtinForward, []string{"-j", ChainIsolation}}, 1},
		{Rule{TableFilter, builtinForward, []string{"-j", ChainForward}}, 1},
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
	{TableMangle, ChainIsolation},
	{TableFilter, ChainAccept},
	{TableNAT, ChainPostrouting},
}

// networkChains hold per-network rules only.
var networkChains = []chainRef{
	{TableMangle, ChainIsolation},
	{TableFilter, ChainAccept},
	{TableNAT, ChainPostrouting},
}

// validate reports whether n can be turned into rules. is4 says which
// address family the caller's iptables binary handles.
func (n Network) validate(is4 bool) error {
	if err := validBridgeName(n.Bridge); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidNetwork, err)
	}
	if n.Masquerade && !n.Internal && !n.Subnet.IsValid() {
		return fmt.Errorf("%w: bridge %s: masquerade needs a subnet", ErrInvalidNetwork, n.Bridge)
	}
	if n.Subnet.IsValid() && n.Subnet.Addr().Is4() != is4 {
		return fmt.Errorf("%w: bridge %s: subnet %s is of the wrong address family", ErrInvalidNetwork, n.Bridge, n.Subnet)
	}
	return nil
}

// validBridgeName accepts names the kernel accepts as interface names,
// minus those iptables reads specially ('+' is a wildcard, '!' a negation)
// and Docker's bridge names: the drops towards Docker's bridges would match
// a mynet bridge with such a name and cut its own traffic.
func validBridgeName(name string) error {
	switch {
	case name == "" || len(name) > maxIfNameLen:
		return fmt.Errorf("bridge name %q: must be 1 to %d bytes", name, maxIfNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("bridge name %q is not an interface name", name)
	case strings.ContainsAny(name, "/:+! \t\n\r\v\f"):
		return fmt.Errorf("bridge name %q: contains a character not allowed in interface names or iptables matches", name)
	case name == dockerDefaultBridge || strings.HasPrefix(name, dockerBridgePrefix):
		return fmt.Errorf("bridge name %q: looks like a Docker bridge (%s, %s*)", name, dockerDefaultBridge, dockerBridgePrefix)
	}
	return nil
}
