//go:build linux

package firewall

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestKernelIntact: whatever removes mynet's rules from outside (a chain
// flushed, a whole table flushed, a jump deleted, a chain deleted), Intact
// notices, and ensuring the networks again makes it whole.
func TestKernelIntact(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		ipt := newTestIPTables(t, cmd)
		ensureAll := func() {
			t.Helper()
			for _, n := range kernelNetworks {
				if err := ipt.EnsureNetwork(n); err != nil {
					t.Fatal(err)
				}
			}
		}
		ensureAll()
		for _, tc := range []struct {
			name string
			args [][]string
		}{
			{"nothing removed", nil},
			{"accept chain flushed", [][]string{{"-F", ChainAccept}}},
			{"filter table flushed", [][]string{{"-F"}}},
			{"nat table flushed", [][]string{{"-t", "nat", "-F"}}},
			{"mangle jump deleted", [][]string{{"-t", "mangle", "-D", "FORWARD", "-j", ChainIsolation}}},
			{"one rule deleted", [][]string{{"-t", "nat", "-D", ChainPostrouting, "-s", "10.1.0.0/24", "!", "-o", "mn-a",
				"-m", "comment", "--comment", "mynet:mn-a", "-j", "MASQUERADE"}}},
			{"isolation chains flushed and deleted", [][]string{{"-t", "mangle", "-F"}, {"-t", "mangle", "-X", ChainIsolation2}}},
		} {
			for _, a := range tc.args {
				if out, err := exec.Command(cmd, a...).CombinedOutput(); err != nil {
					t.Fatalf("%s: %s %s: %v: %s", tc.name, cmd, strings.Join(a, " "), err, out)
				}
			}
			ok, why, err := ipt.Intact()
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tc.args == nil) {
				t.Errorf("%s: Intact = %v (%s)", tc.name, ok, why)
			}
			if err := ipt.Init(); err != nil {
				t.Fatal(err)
			}
			ensureAll()
			if ok, why, _ := ipt.Intact(); !ok {
				t.Errorf("%s: not intact after ensuring again: %s", tc.name, why)
			}
		}
		for _, n := range kernelNetworks {
			if err := ipt.RemoveNetwork(n); err != nil {
				t.Fatal(err)
			}
		}
		if ok, why, _ := ipt.Intact(); !ok {
			t.Errorf("after removing every network: %s", why)
		}
	})
}

// TestKernelRemoveStale: rules of bridges mynet no longer records go, the
// others stay untouched.
func TestKernelRemoveStale(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		ipt := newTestIPTables(t, cmd)
		baseline := saveTables(t, cmd)
		if err := ipt.EnsureNetwork(kernelNetworks[0]); err != nil {
			t.Fatal(err)
		}
		withA := saveTables(t, cmd)
		for _, n := range kernelNetworks[1:] {
			if err := ipt.EnsureNetwork(n); err != nil {
				t.Fatal(err)
			}
		}
		stale, err := ipt.RemoveStale(func(b string) bool { return b == kernelNetworks[0].Bridge })
		if err != nil {
			t.Fatal(err)
		}
		if len(stale) != 2 {
			t.Errorf("stale bridges = %v, want mn-b and mn-c", stale)
		}
		if got := saveTables(t, cmd); got != withA {
			t.Errorf("after RemoveStale:\n%s\nwant:\n%s", got, withA)
		}
		if err := ipt.RemoveNetwork(kernelNetworks[0]); err != nil {
			t.Fatal(err)
		}
		if err := ipt.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if got := saveTables(t, cmd); got != baseline {
			t.Errorf("not back to baseline:\n%s", got)
		}
	})
}

// TestKernelIntactDuringChanges: rules ensured or removed while Intact
// reads the ruleset (which it does without holding the applier's lock)
// are not taken for rules removed from outside.
func TestKernelIntactDuringChanges(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		ipt := newTestIPTables(t, cmd)
		first, last := kernelNetworks[0], kernelNetworks[len(kernelNetworks)-1]
		if err := ipt.EnsureNetwork(first); err != nil {
			t.Fatal(err)
		}
		save := ipt.save
		var during func() error
		ipt.save = func() (string, error) {
			out, err := save()
			if err == nil {
				err = during()
			}
			return out, err
		}
		for _, tc := range []struct {
			name   string
			during func() error
		}{
			{"network ensured during the read", func() error { return ipt.EnsureNetwork(last) }},
			{"network removed during the read", func() error { return ipt.RemoveNetwork(last) }},
		} {
			during = tc.during
			if ok, why, err := ipt.Intact(); err != nil || !ok {
				t.Errorf("%s: Intact = %v (%s), %v; want intact", tc.name, ok, why, err)
			}
		}
		ipt.save = save
		if err := ipt.RemoveNetwork(first); err != nil {
			t.Fatal(err)
		}
	})
}
