package firewall

import (
	"bufio"
	"fmt"
	"strings"
)

// Intact reports whether every rule mynet has ensured (and not removed
// since) is still in the kernel. Something else may flush or delete them:
// `iptables -F`, a firewalld reload, a chain deleted by hand. It costs one
// iptables-save of this family, so it can run every few seconds.
//
// It compares counts, not texts: iptables-save prints rules in its own
// canonical form, which varies between backends and versions. Per chain,
// the rules carrying mynet's comment must number at least the ones mynet
// ensured there, the untagged ones (jumps, shared drops) likewise; a chain
// that is gone holds none.
func (t *IPTables) Intact() (bool, string, error) {
	before := t.wanted()
	if t.save == nil || len(before) == 0 {
		return true, "", nil
	}
	// The save runs without t.mu: it takes tens of milliseconds, and
	// publishing ports must not wait for it. Only rules wanted both before
	// and after it count, so a rule added or removed meanwhile cannot be
	// mistaken for one removed from outside.
	out, err := t.save()
	if err != nil {
		return false, "", fmt.Errorf("reading the ruleset: %w", err)
	}
	have := countSaved(out, t.ownLabel())
	t.mu.Lock()
	defer t.mu.Unlock()
	need := map[chainCount]int{}
	for s, r := range t.want {
		if before[s] {
			need[keyOf(r)]++
		}
	}
	for k, n := range need {
		if have[k] < n {
			t.baseDone, t.portsBaseDone = false, false
			return false, fmt.Sprintf("%s/%s has %d of mynet's %s rules, want %d", k.table, k.chain, have[k], k.kind(), n), nil
		}
	}
	return true, "", nil
}

// ownLabel is how this instance's comments start; every mynet comment
// for the legacy applier.
func (t *IPTables) ownLabel() string {
	if t.owner == "" {
		return commentPrefix
	}
	return commentPrefix + t.owner + ":"
}

// wanted is the set of rules mynet has ensured, by text.
func (t *IPTables) wanted() map[string]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := make(map[string]bool, len(t.want))
	for s := range t.want {
		set[s] = true
	}
	return set
}

// chainCount keys rule counts: a chain, and whether the rules are mynet's
// per-network ones (tagged) or structural (jumps into mynet's chains and
// shared rules in them).
type chainCount struct {
	table, chain string
	tagged       bool
}

func (k chainCount) kind() string {
	if k.tagged {
		return "network"
	}
	return "structural"
}

// keyOf is where r counts. Structural rules in built-in chains count only
// as jumps into mynet's chains, so other software's rules there never
// stand in for a missing jump.
func keyOf(r Rule) chainCount {
	return chainCount{table: r.Table, chain: r.Chain, tagged: strings.Contains(r.String(), commentPrefix)}
}

// countSaved counts, per chain, the rules of iptables-save output that
// are this instance's: tagged with a comment that starts with own, or
// structural (a jump to a MYNET- chain, or any untagged rule inside a
// MYNET- chain, which all instances share). Other instances' rules count
// for nothing: they must not stand in for this instance's missing ones.
func countSaved(save, own string) map[chainCount]int {
	counts := map[chainCount]int{}
	table := ""
	sc := bufio.NewScanner(strings.NewReader(save))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, "-A "):
			chain, rest, _ := strings.Cut(line[len("-A "):], " ")
			switch {
			case strings.Contains(rest, own):
				counts[chainCount{table, chain, true}]++
			case strings.Contains(rest, commentPrefix):
				// another instance's
			case strings.HasPrefix(chain, "MYNET-") || strings.Contains(rest, "-j MYNET-"):
				counts[chainCount{table, chain, false}]++
			}
		}
	}
	return counts
}
