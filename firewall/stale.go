package firewall

import (
	"errors"
	"strings"

	"github.com/sirupsen/logrus"
)

// RemoveStale deletes every rule this applier's instance tagged for a
// bridge that keep does not know, and reports those bridges. Such rules
// outlive a crash between removing a network's rules and its record, or a
// state file put back from an older copy; nothing else would ever remove
// them. Only mynet's own chains are searched, so other software's rules
// are never touched.
//
// Rules with the legacy comment (builds before instances) for a bridge
// keep knows are this instance's: they get its comment in place. Every
// other rule, another instance's or a legacy one for a bridge keep does
// not know (which cannot be proven this instance's), is left alone and
// logged once.
func (t *IPTables) RemoveStale(keep func(bridge string) bool) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	stale := map[string]bool{}
	var errs []error
	for _, c := range append(append([]chainRef{}, networkChains...), portChains...) {
		lines, err := t.listChain(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		doomed, err := t.sortChain(c, lines, keep, stale)
		errs = append(errs, err)
		for _, r := range doomed {
			errs = append(errs, t.deleteRule(t.log, r))
		}
	}
	out := make([]string, 0, len(stale))
	for b := range stale {
		out = append(out, b)
	}
	return out, errors.Join(errs...)
}

// sortChain walks chain c's rules (lines, as `iptables -S` lists them):
// it re-tags the legacy rules of bridges keep knows, logs foreign ones,
// and returns this instance's rules of bridges keep does not know, adding
// those bridges to stale. After a
// failed re-tag the positions are uncertain, so the chain's remaining
// legacy rules wait for the next start. Caller holds t.mu.
func (t *IPTables) sortChain(c chainRef, lines []string, keep func(string) bool, stale map[string]bool) ([]Rule, error) {
	var doomed []Rule
	var failed error
	pos := 0
	for _, line := range lines {
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		pos++
		owner, bridge, ok := taggedBridge(line)
		switch {
		case !ok:
		case owner == t.owner && !keep(bridge):
			stale[bridge] = true
			doomed = append(doomed, Rule{Table: c.table, Chain: c.chain, Spec: splitRule(strings.TrimPrefix(line, "-A "+c.chain+" "))})
		case owner == t.owner:
		case owner == "" && keep(bridge) && failed == nil:
			lost, err := t.retag(c, line, pos)
			pos -= lost
			failed = err
			if err == nil {
				t.log.WithFields(logrus.Fields{"bridge": bridge, "rule": line}).Debug("re-tagged a rule of an older build as this instance's")
			}
		case owner == "" && keep(bridge):
		default:
			t.noteForeign(line, owner)
		}
	}
	return doomed, failed
}

// taggedBridge reads the owner ("" for the legacy form) and the bridge
// from a rule's mynet comment.
func taggedBridge(line string) (owner, bridge string, ok bool) {
	_, after, ok := strings.Cut(line, "--comment ")
	if !ok {
		return "", "", false
	}
	tok := splitRule(after)
	if len(tok) == 0 {
		return "", "", false
	}
	return ParseLabel(tok[0])
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
