package firewall

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// fakeErr mimics go-iptables' *iptables.Error: IsNotExist tells "no such
// rule/chain" apart from other failures.
type fakeErr struct {
	msg      string
	notExist bool
}

func (e *fakeErr) Error() string    { return e.msg }
func (e *fakeErr) IsNotExist() bool { return e.notExist }

// fakeTables is an in-memory iptables that fails the way iptables does:
// adding to or deleting from a missing chain, deleting a missing rule, and
// jumping to a missing chain are "not exist" errors; creating an existing
// chain and deleting a non-empty or referenced one are other errors. It is
// not safe for concurrent use, so the race detector catches an applier
// that does not serialise its calls.
type fakeTables struct {
	// chains maps "table/chain" to its rules, each the spec joined by
	// spaces, in order.
	chains map[string][]string
	// fail, if set, is consulted before every call; a non-nil result is
	// returned instead of doing the call.
	fail func(op, table, chain string, spec []string) error
	// changes counts calls that modified the rule set.
	changes int
}

func newFakeTables() *fakeTables {
	f := &fakeTables{chains: map[string][]string{}}
	for _, c := range []string{"filter/INPUT", "filter/FORWARD", "filter/OUTPUT",
		"nat/PREROUTING", "nat/INPUT", "nat/OUTPUT", "nat/POSTROUTING",
		"mangle/PREROUTING", "mangle/INPUT", "mangle/FORWARD", "mangle/OUTPUT", "mangle/POSTROUTING"} {
		f.chains[c] = nil
	}
	return f
}

var fakeTargets = []string{"ACCEPT", "DROP", "RETURN", "MASQUERADE", "DNAT"}

func (f *fakeTables) check(op, table, chain string, spec []string) ([]string, bool, error) {
	if f.fail != nil {
		if err := f.fail(op, table, chain, spec); err != nil {
			return nil, false, err
		}
	}
	rules, ok := f.chains[table+"/"+chain]
	return rules, ok, nil
}

func (f *fakeTables) checkTarget(table string, spec []string) error {
	i := slices.Index(spec, "-j")
	if i < 0 || i+1 >= len(spec) || slices.Contains(fakeTargets, spec[i+1]) {
		return nil
	}
	if _, ok := f.chains[table+"/"+spec[i+1]]; !ok {
		return &fakeErr{msg: "Chain '" + spec[i+1] + "' does not exist", notExist: true}
	}
	return nil
}

func noChain() error { return &fakeErr{msg: "No chain/target/match by that name.", notExist: true} }

func (f *fakeTables) Exists(table, chain string, spec ...string) (bool, error) {
	rules, _, err := f.check("Exists", table, chain, spec)
	if err != nil {
		return false, err
	}
	return slices.Contains(rules, strings.Join(spec, " ")), nil
}

func (f *fakeTables) Append(table, chain string, spec ...string) error {
	rules, ok, err := f.check("Append", table, chain, spec)
	switch {
	case err != nil:
		return err
	case !ok:
		return noChain()
	}
	if err := f.checkTarget(table, spec); err != nil {
		return err
	}
	f.chains[table+"/"+chain] = append(rules, strings.Join(spec, " "))
	f.changes++
	return nil
}

func (f *fakeTables) Insert(table, chain string, pos int, spec ...string) error {
	rules, ok, err := f.check("Insert", table, chain, spec)
	switch {
	case err != nil:
		return err
	case !ok:
		return noChain()
	case pos < 1 || pos > len(rules)+1:
		return &fakeErr{msg: "Index of insertion too big."}
	}
	if err := f.checkTarget(table, spec); err != nil {
		return err
	}
	f.chains[table+"/"+chain] = slices.Insert(rules, pos-1, strings.Join(spec, " "))
	f.changes++
	return nil
}

func (f *fakeTables) Delete(table, chain string, spec ...string) error {
	rules, ok, err := f.check("Delete", table, chain, spec)
	if err != nil {
		return err
	}
	i := slices.Index(rules, strings.Join(spec, " "))
	if !ok || i < 0 {
		return &fakeErr{msg: "Bad rule (does a matching rule exist in that chain?).", notExist: true}
	}
	f.chains[table+"/"+chain] = slices.Delete(rules, i, i+1)
	f.changes++
	return nil
}

func (f *fakeTables) List(table, chain string) ([]string, error) {
	rules, ok, err := f.check("List", table, chain, nil)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		// iptables-nft reports a missing chain this way, not as "not exist".
		return nil, &fakeErr{msg: "chain `" + chain + "' in table `" + table + "' is incompatible, use 'nft' tool."}
	}
	out := []string{"-N " + chain}
	for _, r := range rules {
		out = append(out, "-A "+chain+" "+r)
	}
	return out, nil
}

func (f *fakeTables) ChainExists(table, chain string) (bool, error) {
	_, ok, err := f.check("ChainExists", table, chain, nil)
	return ok, err
}

func (f *fakeTables) NewChain(table, chain string) error {
	_, ok, err := f.check("NewChain", table, chain, nil)
	switch {
	case err != nil:
		return err
	case ok:
		return &fakeErr{msg: "Chain already exists."}
	}
	f.chains[table+"/"+chain] = nil
	f.changes++
	return nil
}

func (f *fakeTables) DeleteChain(table, chain string) error {
	rules, ok, err := f.check("DeleteChain", table, chain, nil)
	switch {
	case err != nil:
		return err
	case !ok:
		return noChain()
	case len(rules) > 0:
		return &fakeErr{msg: "Directory not empty."}
	case f.referenced(table, chain):
		return &fakeErr{msg: "Too many links."}
	}
	delete(f.chains, table+"/"+chain)
	f.changes++
	return nil
}

func (f *fakeTables) referenced(table, chain string) bool {
	for key, rules := range f.chains {
		if !strings.HasPrefix(key, table+"/") {
			continue
		}
		for _, r := range rules {
			if strings.HasSuffix(r, "-j "+chain) {
				return true
			}
		}
	}
	return false
}

// dump renders the whole rule set, chains sorted, for comparisons.
func (f *fakeTables) dump() string {
	keys := make([]string, 0, len(f.chains))
	for k := range f.chains {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s\n", k)
		for _, r := range f.chains[k] {
			fmt.Fprintf(&b, "  %s\n", r)
		}
	}
	return b.String()
}
