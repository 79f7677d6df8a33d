package firewall

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"

	"github.com/coreos/go-iptables/iptables"
	"github.com/sirupsen/logrus"
)

// Backends reported by Backend.
const (
	BackendNFTables = "nf_tables"
	BackendLegacy   = "legacy"
)

// lockWaitSeconds bounds how long each iptables command waits for the
// xtables lock held by another program (dockerd, firewalld, kube-proxy).
// Bounded rather than forever so a stuck lock holder turns into an error
// for Docker instead of a hung plugin request.
const lockWaitSeconds = 10

// maxCopies bounds the loop that deletes every copy of a rule.
const maxCopies = 16

// ipv4ForwardingPath is the sysctl EnableForwarding sets for IPv4.
const ipv4ForwardingPath = "/proc/sys/net/ipv4/ip_forward"

// ErrRulesRemain is returned by Cleanup while any network still has rules.
var ErrRulesRemain = errors.New("network firewall rules remain")

// xtables is the part of go-iptables the applier uses; tests substitute a
// fake that fails the way iptables does.
type xtables interface {
	Exists(table, chain string, rulespec ...string) (bool, error)
	Append(table, chain string, rulespec ...string) error
	Insert(table, chain string, pos int, rulespec ...string) error
	Delete(table, chain string, rulespec ...string) error
	List(table, chain string) ([]string, error)
	ChainExists(table, chain string) (bool, error)
	NewChain(table, chain string) error
	DeleteChain(table, chain string) error
}

// IPTables applies mynet's rules with one iptables binary, for one address
// family: New makes the IPv4 one, NewIPv6 the ip6tables one of the same backend.
// It is safe for concurrent use.
type IPTables struct {
	log            *logrus.Entry
	backend        string
	is4            bool
	forwardingPath string
	procSys        string // where sysctls are written; see ProcSys
	pinned         string // backend named by the Backend option, "" to detect
	// owner is the instance tag written into every rule's comment (see
	// Instance); only rules carrying it are this applier's to check,
	// restore or remove as stale.
	owner string

	// mu serialises every check-then-change sequence on the rule set:
	// iptables has no "add if absent", so two concurrent ensures would
	// otherwise both add the same chain or jump.
	mu  sync.Mutex
	ipt xtables
	// want holds every rule mynet has ensured and not removed since, by
	// its text, so Intact can tell when something removed them. Guarded
	// by mu.
	want map[string]Rule
	// save dumps the ruleset as iptables-save prints it; nil for fakes.
	save func() (string, error)
	// foreignSeen names the rules of other instances (or of no provable
	// owner) already logged, so each is logged once. Guarded by mu.
	foreignSeen map[string]bool
	// baseDone and portsBaseDone say the base chains and jumps were
	// ensured and nothing since suggested they went missing, so ensures
	// skip re-checking them (each check is an iptables run). Intact
	// clears them when rules are missing. Guarded by mu.
	baseDone, portsBaseDone bool
}

// New returns an IPTables for IPv4 that writes to the iptables backend
// (nf_tables or legacy) the host's Docker uses, see selectCommand, and logs
// which one that is.
func New(log *logrus.Entry, opts ...Option) (*IPTables, error) {
	cmd, err := commandFor(log, opts)
	if err != nil {
		return nil, err
	}
	t, err := newIPv4(log, cmd)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(t)
	}
	return t, nil
}

// NewIPv6 is New for IPv6: ip6tables of the same backend as New picks.
func NewIPv6(log *logrus.Entry, opts ...Option) (*IPTables, error) {
	cmd, err := commandFor(log, opts)
	if err != nil {
		return nil, err
	}
	t, err := newFamily(log, strings.Replace(cmd, "iptables", "ip6tables", 1), false)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(t)
	}
	return t, nil
}

// newIPv4 is New with the binary named, so tests can pick iptables-nft or
// iptables-legacy.
func newIPv4(log *logrus.Entry, cmd string) (*IPTables, error) {
	return newFamily(log, cmd, true)
}

func newFamily(log *logrus.Entry, cmd string, is4 bool) (*IPTables, error) {
	proto, forwarding := iptables.ProtocolIPv4, ipv4ForwardingPath
	if !is4 {
		proto, forwarding = iptables.ProtocolIPv6, defaultProcSys+"/"+forwardingKey(false)
	}
	path, err := exec.LookPath(cmd)
	if err != nil {
		return nil, fmt.Errorf("finding %s: %w", cmd, err)
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("running %s --version: %w", path, err)
	}
	ipt, err := iptables.New(iptables.Path(path), iptables.IPFamily(proto),
		iptables.Timeout(lockWaitSeconds))
	if err != nil {
		return nil, fmt.Errorf("setting up %s: %w", path, err)
	}
	t := newIPTables(log, ipt, parseBackend(string(out)), is4, forwarding)
	t.save = func() (string, error) {
		out, err := exec.Command(path + "-save").Output()
		return string(out), err
	}
	t.log.WithFields(logrus.Fields{"backend": t.backend, "path": path}).Info("iptables backend")
	return t, nil
}

func newIPTables(log *logrus.Entry, ipt xtables, backend string, is4 bool, forwardingPath string) *IPTables {
	return &IPTables{log: log, ipt: ipt, backend: backend, is4: is4, forwardingPath: forwardingPath,
		want: map[string]Rule{}, foreignSeen: map[string]bool{}}
}

// parseBackend reads the backend from `iptables --version` output, e.g.
// "iptables v1.8.9 (nf_tables)". Versions before 1.8 print no backend: they
// only have the legacy one.
func parseBackend(version string) string {
	if strings.Contains(version, "("+BackendNFTables+")") {
		return BackendNFTables
	}
	return BackendLegacy
}

// Backend returns the kernel backend the iptables binary drives:
// BackendNFTables or BackendLegacy. Rules added through one are invisible
// to the other's tools, so it must match what the host (dockerd) uses.
func (t *IPTables) Backend() string {
	return t.backend
}

// Init ensures mynet's chains and the jumps into them. It is called at
// plugin start and is idempotent; it never flushes a chain, so the rules of
// existing networks survive a plugin restart.
func (t *IPTables) Init() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.baseDone = false
	return t.ensureBase()
}

// EnsureNetwork adds the rules for n that are missing, after ensuring the
// base chains and jumps. Calling it again adds nothing. If it fails midway,
// it removes the rules it added in this call before returning the error;
// rules that were already there, and the base chains, stay.
func (t *IPTables) EnsureNetwork(n Network) error {
	n.Owner = t.owner
	if err := n.validate(t.is4); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.ensureBase(); err != nil {
		return err
	}
	if err := t.addRules(t.log.WithField("bridge", n.Bridge), NetworkRules(n), t.appendRule); err != nil {
		return fmt.Errorf("firewall rules for bridge %s: %w", n.Bridge, err)
	}
	return nil
}

// addRules adds each missing rule with add, in order; if one fails, it
// removes the rules it added before returning the error, so a failed
// ensure leaves the rules as they were. Caller holds t.mu.
func (t *IPTables) addRules(log *logrus.Entry, rules []Rule, add func(*logrus.Entry, Rule) (bool, error)) error {
	var added []Rule
	for _, r := range rules {
		ok, err := add(log, r)
		if err != nil {
			t.undo(log, added)
			return err
		}
		if ok {
			added = append(added, r)
		}
	}
	return nil
}

// RemoveNetwork removes n's rules, in reverse order of addition. A rule or
// chain that is already gone counts as removed: Docker retries deletes
// after crashes, and an earlier attempt may have got partway. It keeps
// going past failures and returns them all joined.
func (t *IPTables) RemoveNetwork(n Network) error {
	n.Owner = t.owner
	if err := n.validate(t.is4); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	log := t.log.WithField("bridge", n.Bridge)
	rules := NetworkRules(n)
	var errs []error
	for i := len(rules) - 1; i >= 0; i-- {
		if err := t.deleteRule(log, rules[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing firewall rules for bridge %s: %w", n.Bridge, err)
	}
	return nil
}

// Cleanup removes the jumps and mynet's chains, but only when no network
// has rules left; otherwise it changes nothing and returns ErrRulesRemain.
// Used by tests and by an uninstall. Already-removed parts are not errors;
// other failures do not stop it and are returned joined.
func (t *IPTables) Cleanup() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.baseDone, t.portsBaseDone = false, false
	if err := t.requireNoNetworkRules(); err != nil {
		return err
	}
	if err := t.requireNoPortRules(); err != nil {
		return err
	}
	log := t.log
	// The port jumps go first: one of them lives in MYNET-FORWARD.
	errs := t.cleanupPorts()
	base := baseRules()
	for i := len(base) - 1; i >= 0; i-- {
		if err := t.deleteRule(log, base[i].Rule); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range ownedChains {
		if err := t.deleteChain(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ensureBase creates mynet's chains if missing, then puts each base rule
// at its position if it is missing. A present rule is left where it is,
// even if something (a restarted dockerd) has since inserted rules above
// it: moving it would briefly leave the chain without it.
func (t *IPTables) ensureBase() error {
	return t.ensureStructure(&t.baseDone, ownedChains, baseRules())
}

// ensureStructure creates chains and places rules unless *done says it was
// done already, and records success in *done.
func (t *IPTables) ensureStructure(done *bool, chains []chainRef, rules []placedRule) error {
	if *done {
		return nil
	}
	for _, c := range chains {
		if err := t.ensureChain(c); err != nil {
			return err
		}
	}
	for _, r := range rules {
		if err := t.insertRule(r); err != nil {
			return err
		}
	}
	*done = true
	return nil
}

func (t *IPTables) ensureChain(c chainRef) error {
	ok, err := t.ipt.ChainExists(c.table, c.chain)
	if err != nil {
		return fmt.Errorf("checking chain %s in table %s: %w", c.chain, c.table, err)
	}
	if ok {
		return nil
	}
	if err := t.ipt.NewChain(c.table, c.chain); err != nil {
		return fmt.Errorf("creating chain %s in table %s: %w", c.chain, c.table, err)
	}
	t.log.WithFields(logrus.Fields{"table": c.table, "chain": c.chain}).Debug("created chain")
	return nil
}

// insertRule inserts r at its position (appends it for position 0) unless
// it is already in its chain.
func (t *IPTables) insertRule(r placedRule) error {
	ok, err := t.ipt.Exists(r.Table, r.Chain, r.Spec...)
	if err != nil {
		return fmt.Errorf("checking rule %s: %w", r.Rule, err)
	}
	t.want[r.String()] = r.Rule
	if ok {
		return nil
	}
	if r.pos == 0 {
		err = t.ipt.Append(r.Table, r.Chain, r.Spec...)
	} else {
		err = t.ipt.Insert(r.Table, r.Chain, r.pos, r.Spec...)
	}
	if err != nil {
		return fmt.Errorf("inserting rule %s at %d: %w", r.Rule, r.pos, err)
	}
	t.log.WithField("rule", r.Rule.String()).Debug("inserted rule")
	return nil
}

// appendRule appends r unless it is already in its chain, and reports
// whether it added it.
func (t *IPTables) appendRule(log *logrus.Entry, r Rule) (bool, error) {
	ok, err := t.ipt.Exists(r.Table, r.Chain, r.Spec...)
	if err != nil {
		return false, fmt.Errorf("checking rule %s: %w", r, err)
	}
	t.want[r.String()] = r
	if ok {
		return false, nil
	}
	if err := t.ipt.Append(r.Table, r.Chain, r.Spec...); err != nil {
		return false, fmt.Errorf("adding rule %s: %w", r, err)
	}
	log.WithField("rule", r.String()).Debug("added rule")
	return true, nil
}

// deleteRule deletes every copy of r, so a rule duplicated by hand or by an
// older version does not survive. A missing rule or chain is success.
func (t *IPTables) deleteRule(log *logrus.Entry, r Rule) error {
	delete(t.want, r.String())
	for range maxCopies {
		err := t.ipt.Delete(r.Table, r.Chain, r.Spec...)
		if isNotExist(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("deleting rule %s: %w", r, err)
		}
		log.WithField("rule", r.String()).Debug("deleted rule")
	}
	return fmt.Errorf("deleting rule %s: still present after %d deletes", r, maxCopies)
}

// deleteChain deletes the (empty, unreferenced) chain c; a missing chain is
// success.
func (t *IPTables) deleteChain(c chainRef) error {
	err := t.ipt.DeleteChain(c.table, c.chain)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting chain %s in table %s: %w", c.chain, c.table, err)
	}
	t.log.WithFields(logrus.Fields{"table": c.table, "chain": c.chain}).Debug("deleted chain")
	return nil
}

// undo deletes rules added by a failed EnsureNetwork, newest first. Its
// failures are logged, not returned: the caller returns the error that
// caused the undo.
func (t *IPTables) undo(log *logrus.Entry, added []Rule) {
	for i := len(added) - 1; i >= 0; i-- {
		if err := t.deleteRule(log, added[i]); err != nil {
			log.WithError(err).Warn("undoing firewall rule")
		}
	}
}

// requireNoNetworkRules returns ErrRulesRemain if any per-network chain has
// a rule.
func (t *IPTables) requireNoNetworkRules() error {
	return t.requireEmpty(networkChains)
}

// requireEmpty returns ErrRulesRemain if any of chains has a rule. A
// missing chain is empty. ChainExists comes first because iptables-nft does
// not report listing a missing chain as "not found".
func (t *IPTables) requireEmpty(chains []chainRef) error {
	for _, c := range chains {
		ok, err := t.ipt.ChainExists(c.table, c.chain)
		if err != nil {
			return fmt.Errorf("checking chain %s in table %s: %w", c.chain, c.table, err)
		}
		if !ok {
			continue
		}
		lines, err := t.ipt.List(c.table, c.chain)
		if err != nil {
			return fmt.Errorf("listing chain %s in table %s: %w", c.chain, c.table, err)
		}
		if n := countRules(lines); n > 0 {
			return fmt.Errorf("%w: %d in chain %s of table %s", ErrRulesRemain, n, c.chain, c.table)
		}
	}
	return nil
}

// countRules counts the per-network rules (those with mynet's comment) in
// `iptables -S CHAIN` output, which also holds the chain's "-N" (or "-P")
// line and, in MYNET-ISOLATION-2, the shared base rules. Every instance's
// rules count: the chains are shared, and one instance must not remove
// them under another.
func countRules(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") && strings.Contains(l, commentPrefix) {
			n++
		}
	}
	return n
}

// isNotExist reports whether err says a rule or chain does not exist.
// go-iptables decides this from the iptables exit status and message.
func isNotExist(err error) bool {
	var e interface{ IsNotExist() bool }
	return errors.As(err, &e) && e.IsNotExist()
}
