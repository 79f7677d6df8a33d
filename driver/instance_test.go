package driver

import (
	"errors"
	"testing"
)

func TestInstanceNames(t *testing.T) {
	for _, name := range []string{"mynet", "mynet-swarm", "a", "x9", "abcdefghijklmnopqrstuvwxyz012345"} {
		if err := CheckInstanceName(name); err != nil {
			t.Errorf("CheckInstanceName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "-x", "My", "a:b", "a b", "a_b", "mynet\x00", "abcdefghijklmnopqrstuvwxyz0123456"} {
		if err := CheckInstanceName(name); !errors.Is(err, ErrInstanceName) {
			t.Errorf("CheckInstanceName(%q) = %v, want ErrInstanceName", name, err)
		}
	}
	for sock, want := range map[string]string{
		"/run/docker/plugins/mynet.sock":       "mynet",
		"/run/docker/plugins/mynet-swarm.sock": "mynet-swarm",
		"relative.sock":                        "relative",
	} {
		if got := InstanceFromSocket(sock); got != want {
			t.Errorf("InstanceFromSocket(%q) = %q, want %q", sock, got, want)
		}
	}
}

// The alias and comment forms, pinned: a later build must read what an
// earlier one wrote.
func TestInstanceTagAndAlias(t *testing.T) {
	i := Instance{Name: "mynet-swarm", UUID: "1a2b3c4d-5e6f-4000-8000-000000000001"}
	if got := i.alias("abc"); got != "mynet:mynet-swarm:1a2b3c4d:abc" {
		t.Errorf("alias = %q", got)
	}
	if got := (Instance{}).alias("abc"); got != "mynet:abc" {
		t.Errorf("legacy alias = %q", got)
	}
	if g := i.group(); g != 0x1a2b3c4d {
		t.Errorf("group = %#x", g)
	}
	if g := (Instance{}).group(); g != 0 {
		t.Errorf("zero instance's group = %#x, want 0 (no mark)", g)
	}
	for s, want := range map[string][3]string{
		"mynet:mynet-swarm:1a2b3c4d:abc": {"mynet-swarm:1a2b3c4d", "abc", "ok"},
		"mynet:abc":                      {"", "abc", "ok"},
		"mynet:":                         {"", "", ""},
		"mynet:a:b":                      {"", "", ""},
		"mynet:a::c":                     {"", "", ""},
		"other:abc":                      {"", "", ""},
		"":                               {"", "", ""},
	} {
		tag, obj, ok := parseTagged(s)
		if tag != want[0] || obj != want[1] || ok != (want[2] == "ok") {
			t.Errorf("parseTagged(%q) = %q, %q, %v", s, tag, obj, ok)
		}
	}
	// The longest alias fits the kernel's IFALIASZ (256 with the NUL).
	long := Instance{Name: "abcdefghijklmnopqrstuvwxyz012345", UUID: i.UUID}
	if n := len(long.alias(string(make([]byte, 64)))); n > 255 {
		t.Errorf("longest alias is %d bytes", n)
	}
}
