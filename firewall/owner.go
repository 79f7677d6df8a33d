package firewall

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
)

// Instance makes the applier write tag (a mynet instance's <name>:<uuid8>,
// see driver.Instance) into every rule's comment and treat only rules
// carrying it as its own. Without it, rules carry the legacy comment
// mynet:<bridge> and every legacy rule is the applier's.
func Instance(tag string) Option {
	return func(t *IPTables) { t.owner = tag }
}

// Owners lists the bridges that have rules in mynet's chains, by the tag
// of the instance whose they are ("" for the legacy form), so that an
// instance starting without records can tell whether another of its name
// still has live networks.
func (t *IPTables) Owners() (map[string][]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[string]map[string]bool{}
	err := t.eachTagged(func(_ chainRef, _ string, owner, bridge string) {
		if seen[owner] == nil {
			seen[owner] = map[string]bool{}
		}
		seen[owner][bridge] = true
	})
	out := make(map[string][]string, len(seen))
	for owner, bridges := range seen {
		for b := range bridges {
			out[owner] = append(out[owner], b)
		}
		sort.Strings(out[owner])
	}
	return out, err
}

// eachTagged calls fn with every rule in mynet's chains that carries a
// mynet comment, as `iptables -S` prints it. Caller holds t.mu.
func (t *IPTables) eachTagged(fn func(c chainRef, line, owner, bridge string)) error {
	var errs []error
	for _, c := range append(append([]chainRef{}, networkChains...), portChains...) {
		lines, err := t.listChain(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, line := range lines {
			if owner, bridge, ok := taggedBridge(line); ok {
				fn(c, line, owner, bridge)
			}
		}
	}
	return errors.Join(errs...)
}

// listChain is `iptables -S` of c; nothing for a chain that is missing.
func (t *IPTables) listChain(c chainRef) ([]string, error) {
	ok, err := t.ipt.ChainExists(c.table, c.chain)
	if err != nil || !ok {
		return nil, err
	}
	lines, err := t.ipt.List(c.table, c.chain)
	if err != nil {
		return nil, fmt.Errorf("listing %s/%s: %w", c.table, c.chain, err)
	}
	return lines, nil
}

// retag replaces the legacy-commented rule line, at 1-based position pos
// of chain c, by the same rule with this applier's comment, inserted in
// its place before the old one goes, so the chain is never without it.
// It reports how many rules the chain lost: 1 when the tagged copy was
// there already. Caller holds t.mu.
func (t *IPTables) retag(c chainRef, line string, pos int) (int, error) {
	old := Rule{Table: c.table, Chain: c.chain, Spec: splitRule(strings.TrimPrefix(line, "-A "+c.chain+" "))}
	spec := append([]string{}, old.Spec...)
	for i := 0; i+1 < len(spec); i++ {
		if spec[i] == "--comment" {
			_, bridge, _ := ParseLabel(spec[i+1])
			spec[i+1] = label(t.owner, bridge)
		}
	}
	have, err := t.ipt.Exists(c.table, c.chain, spec...)
	if err != nil {
		return 0, fmt.Errorf("checking rule %s: %w", old, err)
	}
	lost := 1
	if !have {
		if err := t.ipt.Insert(c.table, c.chain, pos, spec...); err != nil {
			return 0, fmt.Errorf("re-tagging rule %s: %w", old, err)
		}
		lost = 0
	}
	if err := t.ipt.Delete(c.table, c.chain, old.Spec...); err != nil && !isNotExist(err) {
		return lost, fmt.Errorf("re-tagging rule %s: delete the old form: %w", old, err)
	}
	return lost, nil
}

// noteForeign logs, once per rule, a mynet rule this applier leaves alone.
// Caller holds t.mu.
func (t *IPTables) noteForeign(line, owner string) {
	if t.foreignSeen[line] {
		return
	}
	t.foreignSeen[line] = true
	log := t.log.WithFields(logrus.Fields{"rule": line})
	if owner == "" {
		log.Warn("a rule of an older mynet build for a bridge no record names: it cannot be proven this instance's and is left in place")
		return
	}
	log.Info("a rule of another mynet instance: left alone")
}
