package firewall

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
)

func testLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func newFakeIPTables() (*IPTables, *fakeTables) {
	f := newFakeTables()
	return newIPTables(testLog(), f, BackendNFTables, true, "/nonexistent"), f
}

func testNetwork(bridge, subnet string) Network {
	return Network{Bridge: bridge, Subnet: netip.MustParsePrefix(subnet), Masquerade: true, ICC: true}
}

// initialised returns an applier after Init, and the fake's dump then.
func initialised(t *testing.T) (*IPTables, *fakeTables, string) {
	t.Helper()
	ipt, f := newFakeIPTables()
	if err := ipt.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return ipt, f, f.dump()
}

func TestInit(t *testing.T) {
	_, _, got := initialised(t)
	want := `filter/FORWARD
  -j MYNET-FORWARD
filter/INPUT
  -j MYNET-INPUT
filter/MYNET-ACCEPT
filter/MYNET-FORWARD
  -j MYNET-ACCEPT
filter/MYNET-INPUT
filter/OUTPUT
mangle/FORWARD
  -j MYNET-ISOLATION
mangle/INPUT
mangle/MYNET-ISOLATION
mangle/MYNET-ISOLATION-2
  -o docker0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -o br-+ -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
mangle/OUTPUT
mangle/POSTROUTING
mangle/PREROUTING
nat/INPUT
nat/MYNET-POSTROUTING
nat/OUTPUT
nat/POSTROUTING
  -j MYNET-POSTROUTING
nat/PREROUTING
`
	if got != want {
		t.Errorf("after Init:\n%s\nwant:\n%s", got, want)
	}
}

// Init puts a missing jump first, ahead of Docker's, but leaves a present
// one where it is.
func TestInitRepairsMissingJumps(t *testing.T) {
	ipt, f, _ := initialised(t)
	f.chains["filter/FORWARD"] = []string{"-j DOCKER-USER", "-j DOCKER-FORWARD"}
	f.chains["filter/MYNET-FORWARD"] = nil
	f.chains["nat/POSTROUTING"] = []string{"-j DOCKER-POSTROUTING", "-j MYNET-POSTROUTING"}
	if err := ipt.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	check := func(key string, want ...string) {
		t.Helper()
		if got := f.chains[key]; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	check("filter/FORWARD", "-j MYNET-FORWARD", "-j DOCKER-USER", "-j DOCKER-FORWARD")
	check("filter/MYNET-FORWARD", "-j MYNET-ACCEPT")
	check("nat/POSTROUTING", "-j DOCKER-POSTROUTING", "-j MYNET-POSTROUTING")
}

func TestEnsureNetworkIdempotent(t *testing.T) {
	ipt, f := newFakeIPTables()
	n := testNetwork("mn0", "10.1.0.0/24")
	if err := ipt.EnsureNetwork(n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	first := f.dump()
	for _, r := range NetworkRules(n) {
		if c := strings.Count(first, "  "+strings.Join(r.Spec, " ")+"\n"); c != 1 {
			t.Errorf("rule %s present %d times, want once", r, c)
		}
	}
	f.changes = 0
	if err := ipt.EnsureNetwork(n); err != nil {
		t.Fatalf("second EnsureNetwork: %v", err)
	}
	if f.changes != 0 {
		t.Errorf("second EnsureNetwork made %d changes, want 0", f.changes)
	}
	if got := f.dump(); got != first {
		t.Errorf("second EnsureNetwork changed the rules:\n%s\nwant:\n%s", got, first)
	}
}

func TestEnsureNetworkUndoesOnFailure(t *testing.T) {
	ipt, f, base := initialised(t)
	injected := errors.New("injected")
	appends := 0
	f.fail = func(op, _, _ string, _ []string) error {
		if op != "Append" {
			return nil
		}
		if appends++; appends == 3 {
			return injected
		}
		return nil
	}
	err := ipt.EnsureNetwork(testNetwork("mn0", "10.1.0.0/24"))
	if !errors.Is(err, injected) {
		t.Fatalf("EnsureNetwork = %v, want the injected error", err)
	}
	if appends != 3 {
		t.Fatalf("%d appends, want the ensure to stop at the 3rd", appends)
	}
	if got := f.dump(); got != base {
		t.Errorf("rules left after a failed EnsureNetwork:\n%s\nwant:\n%s", got, base)
	}
}

// A failed ensure removes only what it added: rules that were already there
// (from an earlier, successful ensure) stay.
func TestEnsureNetworkUndoKeepsExistingRules(t *testing.T) {
	ipt, f := newFakeIPTables()
	n := testNetwork("mn0", "10.1.0.0/24")
	if err := ipt.EnsureNetwork(n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	// Lose the last two rules (-o mn0 -j ACCEPT, MASQUERADE), then fail
	// re-adding the last one.
	rules := NetworkRules(n)
	for _, r := range rules[len(rules)-2:] {
		if err := f.Delete(r.Table, r.Chain, r.Spec...); err != nil {
			t.Fatal(err)
		}
	}
	partial := f.dump()
	injected := errors.New("injected")
	f.fail = func(op, _, chain string, _ []string) error {
		if op == "Append" && chain == ChainPostrouting {
			return injected
		}
		return nil
	}
	if err := ipt.EnsureNetwork(n); !errors.Is(err, injected) {
		t.Fatalf("EnsureNetwork = %v, want the injected error", err)
	}
	if got := f.dump(); got != partial {
		t.Errorf("after the failed ensure:\n%s\nwant the rules from before it:\n%s", got, partial)
	}
}

func TestEnsureNetworkRejectsInvalid(t *testing.T) {
	ipt, f := newFakeIPTables()
	calls := 0
	f.fail = func(string, string, string, []string) error { calls++; return nil }
	for _, n := range []Network{
		{Bridge: "br-0123456789ab", Subnet: netip.MustParsePrefix("10.1.0.0/24")},
		{Bridge: "mn0", Subnet: netip.MustParsePrefix("fd00::/64"), Masquerade: true},
	} {
		if err := ipt.EnsureNetwork(n); !errors.Is(err, ErrInvalidNetwork) {
			t.Errorf("EnsureNetwork(%+v) = %v, want ErrInvalidNetwork", n, err)
		}
		if err := ipt.RemoveNetwork(n); !errors.Is(err, ErrInvalidNetwork) {
			t.Errorf("RemoveNetwork(%+v) = %v, want ErrInvalidNetwork", n, err)
		}
	}
	if calls != 0 {
		t.Errorf("%d iptables calls for invalid networks, want 0", calls)
	}
}

func TestRemoveNetworkTwice(t *testing.T) {
	ipt, f, base := initialised(t)
	n := testNetwork("mn0", "10.1.0.0/24")
	if err := ipt.EnsureNetwork(n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	for i := range 2 {
		if err := ipt.RemoveNetwork(n); err != nil {
			t.Fatalf("RemoveNetwork #%d: %v", i+1, err)
		}
	}
	if got := f.dump(); got != base {
		t.Errorf("after RemoveNetwork:\n%s\nwant:\n%s", got, base)
	}
}

// Removing a network whose chains are gone too (someone flushed and deleted
// them) is success.
func TestRemoveNetworkWithoutChains(t *testing.T) {
	ipt, _ := newFakeIPTables()
	if err := ipt.RemoveNetwork(testNetwork("mn0", "10.1.0.0/24")); err != nil {
		t.Fatalf("RemoveNetwork: %v", err)
	}
}

func TestRemoveNetworkContinuesPastFailure(t *testing.T) {
	ipt, f, base := initialised(t)
	n := testNetwork("mn0", "10.1.0.0/24")
	if err := ipt.EnsureNetwork(n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	stuck := NetworkRules(n)[1] // -i mn0 -o docker0 -j DROP
	injected := errors.New("injected")
	f.fail = func(op, _, _ string, spec []string) error {
		if op == "Delete" && strings.Join(spec, " ") == strings.Join(stuck.Spec, " ") {
			return injected
		}
		return nil
	}
	err := ipt.RemoveNetwork(n)
	if !errors.Is(err, injected) {
		t.Fatalf("RemoveNetwork = %v, want the injected error", err)
	}
	f.fail = nil
	for _, r := range NetworkRules(n) {
		ok, _ := f.Exists(r.Table, r.Chain, r.Spec...)
		if want := r.String() == stuck.String(); ok != want {
			t.Errorf("rule %s present = %v, want %v", r, ok, want)
		}
	}
	if err := ipt.RemoveNetwork(n); err != nil {
		t.Fatalf("RemoveNetwork retry: %v", err)
	}
	if got := f.dump(); got != base {
		t.Errorf("after retry:\n%s\nwant:\n%s", got, base)
	}
}

func TestRemoveNetworkDeletesDuplicates(t *testing.T) {
	ipt, f, base := initialised(t)
	n := testNetwork("mn0", "10.1.0.0/24")
	if err := ipt.EnsureNetwork(n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	dup := NetworkRules(n)[0]
	if err := f.Append(dup.Table, dup.Chain, dup.Spec...); err != nil {
		t.Fatal(err)
	}
	if err := ipt.RemoveNetwork(n); err != nil {
		t.Fatalf("RemoveNetwork: %v", err)
	}
	if got := f.dump(); got != base {
		t.Errorf("after RemoveNetwork:\n%s\nwant:\n%s", got, base)
	}
}

// Removing one network leaves another's rules alone.
func TestRemoveNetworkLeavesOthers(t *testing.T) {
	ipt, f := newFakeIPTables()
	a, b := testNetwork("mn0", "10.1.0.0/24"), testNetwork("mn1", "10.2.0.0/24")
	if err := ipt.EnsureNetwork(a); err != nil {
		t.Fatal(err)
	}
	onlyA := f.dump()
	if err := ipt.EnsureNetwork(b); err != nil {
		t.Fatal(err)
	}
	if err := ipt.RemoveNetwork(b); err != nil {
		t.Fatalf("RemoveNetwork: %v", err)
	}
	if got := f.dump(); got != onlyA {
		t.Errorf("after removing the second network:\n%s\nwant:\n%s", got, onlyA)
	}
}

func TestCleanup(t *testing.T) {
	ipt, f := newFakeIPTables()
	pristine := f.dump()
	n := testNetwork("mn0", "10.1.0.0/24")
	if err := ipt.EnsureNetwork(n); err != nil {
		t.Fatal(err)
	}
	withNet := f.dump()
	if err := ipt.Cleanup(); !errors.Is(err, ErrRulesRemain) {
		t.Fatalf("Cleanup with a network = %v, want ErrRulesRemain", err)
	}
	if got := f.dump(); got != withNet {
		t.Errorf("refused Cleanup changed rules:\n%s\nwant:\n%s", got, withNet)
	}
	if err := ipt.RemoveNetwork(n); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := ipt.Cleanup(); err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
	}
	if got := f.dump(); got != pristine {
		t.Errorf("after Cleanup:\n%s\nwant:\n%s", got, pristine)
	}
}

// Only masquerade rules left still block Cleanup: every per-network chain
// is checked, including nat.
func TestCleanupChecksNAT(t *testing.T) {
	ipt, f, _ := initialised(t)
	f.chains["nat/MYNET-POSTROUTING"] = []string{"-s 10.9.0.0/24 ! -o mn9 -m comment --comment mynet:mn9 -j MASQUERADE"}
	if err := ipt.Cleanup(); !errors.Is(err, ErrRulesRemain) {
		t.Fatalf("Cleanup = %v, want ErrRulesRemain", err)
	}
}

// Concurrent ensures of different networks (Docker calls the plugin
// concurrently) create each base chain and jump once. The fake has no lock
// of its own, so -race also checks that IPTables serialises its calls.
func TestEnsureNetworkConcurrent(t *testing.T) {
	ipt, f := newFakeIPTables()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = ipt.EnsureNetwork(testNetwork(fmt.Sprintf("mn%d", i), fmt.Sprintf("10.%d.0.0/24", i)))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	check := func(key string, want int) {
		t.Helper()
		if got := len(f.chains[key]); got != want {
			t.Errorf("%s has %d rules, want %d", key, got, want)
		}
	}
	check("filter/FORWARD", 1)
	check("filter/MYNET-FORWARD", 1)
	check("nat/POSTROUTING", 1)
	check("mangle/MYNET-ISOLATION", 2*len(errs))
	check("mangle/MYNET-ISOLATION-2", 2+len(errs))
	check("filter/MYNET-ACCEPT", 2*len(errs))
	check("nat/MYNET-POSTROUTING", len(errs))
}

func TestParseBackend(t *testing.T) {
	tests := map[string]string{
		"iptables v1.8.9 (nf_tables)\n": BackendNFTables,
		"iptables v1.8.7 (legacy)\n":    BackendLegacy,
		"iptables v1.6.1\n":             BackendLegacy,
	}
	for in, want := range tests {
		if got := parseBackend(in); got != want {
			t.Errorf("parseBackend(%q) = %q, want %q", in, got, want)
		}
	}
}
