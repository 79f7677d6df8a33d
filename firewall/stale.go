package firewall

import (
	"errors"
	"fmt"
	"strings"
)

// RemoveStale deletes every rule tagged for a bridge that keep does not
// know, and reports those bridges. Such rules outlive a crash between
// removing a network's rules and its record, or a state file put back from
// an older copy; nothing else would ever remove them. Only mynet's own
// chains are searched, so other software's rules are never touched.
func (t *IPTables) RemoveStale(keep func(bridge string) bool) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	stale := map[string]bool{}
	var errs []error
	for _, c := range append(append([]chainRef{}, networkChains...), portChains...) {
		ok, err := t.ipt.ChainExists(c.table, c.chain)
		if err != nil || !ok {
			errs = append(errs, err)
			continue
		}
		lines, err := t.ipt.List(c.table, c.chain)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s/%s: %w", c.table, c.chain, err))
			continue
		}
		for _, line := range lines {
			bridge, ok := taggedBridge(line)
			if !ok || keep(bridge) {
				continue
			}
			stale[bridge] = true
			spec := splitRule(strings.TrimPrefix(line, "-A "+c.chain+" "))
			r := Rule{Table: c.table, Chain: c.chain, Spec: spec}
			errs = append(errs, t.deleteRule(t.log, r))
		}
	}
	out := make([]string, 0, len(stale))
	for b := range stale {
		out = append(out, b)
	}
	return out, errors.Join(errs...)
}

// taggedBridge reads the bridge from a rule's mynet comment.
func taggedBridge(line string) (string, bool) {
	_, after, ok := strings.Cut(line, "--comment ")
	if !ok {
		return "", false
	}
	tok := splitRule(after)
	if len(tok) == 0 || !strings.HasPrefix(tok[0], commentPrefix) {
		return "", false
	}
	return strings.TrimPrefix(tok[0], commentPrefix), true
}

// splitRule splits an `iptables -S` rule into arguments, honouring the
// double quotes iptables puts around comments.
func splitRule(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQuote, have = !inQuote, true
		case c == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
