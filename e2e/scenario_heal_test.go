//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// TestFirewallHeals removes mynet's rules from outside, as `iptables -F` or
// a firewalld reload would, and expects mynet to notice and restore exactly
// its rules within a few seconds: traffic flows again and the ruleset is
// the same as before, without duplicates.
func TestFirewallHeals(t *testing.T) {
	harness.UsePlugin(t)
	const net = "mynet-e2e-heal"
	harness.CreateMynet(t, net, "--subnet", "10.71.0.0/24")
	harness.StartSleeper(t, "e2e-heal", net)
	harness.MustContain(t, "ext page through NAT", harness.ExecIn(t, "e2e-heal", harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
	before := mynetRules(t)

	for _, tc := range []struct {
		name string
		cmds [][]string
	}{
		{"chains flushed", [][]string{
			{"iptables", "-F", "MYNET-ACCEPT"},
			{"iptables", "-t", "nat", "-F", "MYNET-POSTROUTING"},
			{"iptables", "-t", "mangle", "-F", "MYNET-ISOLATION"},
		}},
		{"jumps deleted", [][]string{
			{"iptables", "-D", "FORWARD", "-j", "MYNET-FORWARD"},
			{"iptables", "-t", "nat", "-D", "POSTROUTING", "-j", "MYNET-POSTROUTING"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range tc.cmds {
				harness.InEngine(t, c...)
			}
			start := time.Now()
			deadline := start.Add(60 * time.Second)
			for {
				if mynetRules(t) == before {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("rules not restored after 60 s:\n%s\nwant:\n%s", mynetRules(t), before)
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("%s: rules restored after %v", tc.name, time.Since(start).Round(10*time.Millisecond))
			harness.MustContain(t, "ext page through NAT after repair", harness.ExecIn(t, "e2e-heal", harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
		})
	}
}

// mynetRules is the sorted set of mynet's rules in the engine namespace
// (its chains' contents and the jumps into them), one per line, so a
// duplicate shows up as a difference.
func mynetRules(t *testing.T) string {
	t.Helper()
	var keep []string
	table := ""
	for _, line := range strings.Split(harness.InEngine(t, "iptables-save"), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line
		case strings.HasPrefix(line, "-A ") && strings.Contains(line, "MYNET"), strings.Contains(line, "mynet:"):
			keep = append(keep, table+" "+line)
		}
	}
	slices.Sort(keep)
	return strings.Join(keep, "\n")
}
