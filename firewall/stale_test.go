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
	if b, ok := taggedBridge(line); !ok || b != "mn0" {
		t.Errorf("taggedBridge = %q, %v", b, ok)
	}
	if b, ok := taggedBridge(`-A X -m comment --comment mynet:br9 -j DROP`); !ok || b != "br9" {
		t.Errorf("unquoted: %q %v", b, ok)
	}
	if _, ok := taggedBridge(`-A X -m comment --comment "someone else" -j DROP`); ok {
		t.Error("foreign comment read as mynet's")
	}
}
