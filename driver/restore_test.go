package driver

import (
	"errors"
	"testing"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/mynet/mynet/internal/fake"
)

// A Restore whose firewall fails (xtables lock timeout, ip6tables gone)
// leaves the network's bridge and its containers' veths alone, keeps the
// rules of the family that worked, and succeeds at a later heal tick once
// the firewall works again.
func TestRestoreWithFailingFirewallKeepsBridge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dual     bool
		failIPv6 bool
	}{
		{name: "IPv4 rules fail"},
		{name: "IPv6 rules fail", dual: true, failIPv6: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, st, fw, fw6 := fake.NewKernel(), newMemStore(), newFakeFirewall(), newFakeFirewall()
			d, err := New(k, fw, fw6, st, quietLog(), WithPortReserver(k))
			if err != nil {
				t.Fatal(err)
			}
			req, ep := createReq(nil), epReq("10.50.0.2/24", "")
			if tc.dual {
				req.IPv6Data = []*network.IPAMData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}}
				ep.Interface.AddressIPv6 = "fd00:50::2/64"
			}
			if err := d.CreateNetwork(req); err != nil {
				t.Fatal(err)
			}
			if _, err := d.CreateEndpoint(ep); err != nil {
				t.Fatal(err)
			}

			failing := fw
			if tc.failIPv6 {
				failing = fw6
			}
			failing.failEnsure = errInjected
			d2, err := New(k, fw, fw6, st, quietLog(), WithPortReserver(k))
			if err != nil {
				t.Fatal(err)
			}
			if err := d2.Restore(); !errors.Is(err, errInjected) {
				t.Fatalf("Restore = %v, want the injected firewall failure", err)
			}
			for _, name := range []string{"mynet-a1b2c3d4e", "mnhe1e2e3e4e5e6"} {
				if l, _ := k.LinkByName(name); l == nil {
					t.Errorf("%s gone after a failed restore", name)
				}
			}
			if _, ok := fw.nets["mynet-a1b2c3d4e"]; tc.failIPv6 && !ok {
				t.Error("the IPv4 rules were removed because the IPv6 ones failed")
			}
			if n := d2.RetryRestore(); n != 1 {
				t.Errorf("RetryRestore with the firewall still failing: %d networks left, want 1", n)
			}
			failing.failEnsure = nil
			if n := d2.RetryRestore(); n != 0 {
				t.Errorf("RetryRestore with the firewall working: %d networks left, want 0", n)
			}
			if _, ok := failing.nets["mynet-a1b2c3d4e"]; !ok {
				t.Error("the rules are not back after the retry")
			}
		})
	}
}

// A CreateNetwork whose IPv6 rules fail still leaves nothing: no bridge,
// no IPv4 rules (programFirewall no longer removes them itself).
func TestCreateNetworkIPv6RulesFailLeavesNothing(t *testing.T) {
	k, fw, fw6 := fake.NewKernel(), newFakeFirewall(), newFakeFirewall()
	d, err := New(k, fw, fw6, newMemStore(), quietLog(), WithPortReserver(k))
	if err != nil {
		t.Fatal(err)
	}
	fw6.failEnsure = errInjected
	req := createReq(nil)
	req.IPv6Data = []*network.IPAMData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}}
	if err := d.CreateNetwork(req); !errors.Is(err, errInjected) {
		t.Fatalf("CreateNetwork = %v, want the injected failure", err)
	}
	if ls, _ := k.LinkList(); len(ls) != 0 {
		t.Errorf("%d links left", len(ls))
	}
	if len(fw.nets) != 0 || len(fw6.nets) != 0 {
		t.Errorf("rules left: v4 %v v6 %v", fw.nets, fw6.nets)
	}
}
