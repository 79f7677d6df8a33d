package firewall

import (
	"slices"
	"testing"
)

// The heal check counts this instance's tagged rules only: another
// instance's rules in the same chain neither stand in for a missing one
// of ours nor count as structural.
func TestCountSavedOwnRulesOnly(t *testing.T) {
	save := `*filter
:MYNET-ACCEPT - [0:0]
-A FORWARD -j MYNET-FORWARD
-A MYNET-ACCEPT -i mn-a -m comment --comment "mynet:mynet:1a2b3c4d:mn-a" -j ACCEPT
-A MYNET-ACCEPT -i mn-b -m comment --comment "mynet:mynet-swarm:9c0d1e2f:mn-b" -j ACCEPT
-A MYNET-ACCEPT -o mn-b -m comment --comment "mynet:mynet-swarm:9c0d1e2f:mn-b" -j ACCEPT
-A MYNET-ACCEPT -o mn-c -m comment --comment "mynet:mn-c" -j ACCEPT
COMMIT
`
	got := countSaved(save, "mynet:mynet:1a2b3c4d:")
	want := map[chainCount]int{
		{TableFilter, ChainAccept, true}:     1,
		{TableFilter, builtinForward, false}: 1,
	}
	if len(got) != len(want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%v: %d, want %d", k, got[k], n)
		}
	}
}

// Rules carry exactly the instance's comment; the legacy applier writes
// the comment of builds before instances.
func TestRulesCarryTheInstance(t *testing.T) {
	n := Network{Owner: "mynet-swarm:9c0d1e2f", Bridge: "mn-a", ICC: true}
	for _, r := range NetworkRules(n) {
		if _, bridge, ok := taggedBridge(r.String()); !ok || bridge != "mn-a" || !slices.Contains(r.Spec, "mynet:mynet-swarm:9c0d1e2f:mn-a") {
			t.Errorf("rule %s: comment not the instance's", r)
		}
	}
	if l := label("", "mn-a"); l != "mynet:mn-a" {
		t.Errorf("legacy label %q", l)
	}
}
