package firewall

import (
	"slices"
	"testing"
)

func TestSplitRuleAndTag(t *testing.T) {
	line := `-A MYNET-ACCEPT -i mn0 -m comment --comment "mynet:mn0" -j ACCEPT`
	got := splitRule(line)
	want := []string{"-A", "MYNET-ACCEPT", "-i", "mn0", "-m", "comment", "--comment", "mynet:mn0", "-j", "ACCEPT"}
	if !slices.Equal(got, want) {
		t.Errorf("splitRule = %q", got)
	}
	if o, b, ok := taggedBridge(line); !ok || b != "mn0" || o != "" {
		t.Errorf("taggedBridge = %q, %q, %v", o, b, ok)
	}
	if _, b, ok := taggedBridge(`-A X -m comment --comment mynet:br9 -j DROP`); !ok || b != "br9" {
		t.Errorf("unquoted: %q %v", b, ok)
	}
	if o, b, ok := taggedBridge(`-A X -m comment --comment "mynet:mynet-swarm:1a2b3c4d:br9" -j DROP`); !ok || b != "br9" || o != "mynet-swarm:1a2b3c4d" {
		t.Errorf("instance-tagged: %q %q %v", o, b, ok)
	}
	for _, c := range []string{"someone else", "mynet:", "mynet:a:b", "mynet:a::c"} {
		if _, _, ok := taggedBridge(`-A X -m comment --comment "` + c + `" -j DROP`); ok {
			t.Errorf("comment %q read as mynet's", c)
		}
	}
}
