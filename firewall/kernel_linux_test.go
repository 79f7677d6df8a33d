//go:build linux

package firewall

import (
	"errors"
	"maps"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/nstest"
)

// Kernel tests run only inside a throwaway network namespace (nstest.Run),
// never against the host's firewall. Every iptables command is started
// from the test goroutine, whose thread nstest.Run has moved into that
// namespace: children forked from any other goroutine would land in the
// host's.

// backends are the iptables binaries the kernel tests run against, each
// with its own save tool (cmd + "-save").
var backends = []string{"iptables-nft", "iptables-legacy"}

// kernelNetworks covers a default network, one with ICC off, and an
// internal one (whose Masquerade must be ignored).
var kernelNetworks = []Network{
	{Bridge: "mn-a", Subnet: netip.MustParsePrefix("10.1.0.0/24"), Masquerade: true, ICC: true},
	{Bridge: "mn-b", Subnet: netip.MustParsePrefix("10.2.0.0/24"), Masquerade: true},
	{Bridge: "mn-c", Subnet: netip.MustParsePrefix("10.3.0.0/24"), Masquerade: true, ICC: true, Internal: true},
}

// dockerLike seeds each test namespace with a firewall resembling dockerd's
// (FORWARD policy DROP, its jumps in FORWARD, docker0's masquerade), which
// mynet must leave exactly as it found it.
var dockerLike = [][]string{
	{"-t", "filter", "-P", "FORWARD", "DROP"},
	{"-t", "filter", "-N", "DOCKER-USER"},
	{"-t", "filter", "-A", "FORWARD", "-j", "DOCKER-USER"},
	{"-t", "filter", "-N", "DOCKER-FORWARD"},
	{"-t", "filter", "-A", "FORWARD", "-j", "DOCKER-FORWARD"},
	{"-t", "filter", "-A", "DOCKER-FORWARD", "-i", "docker0", "-j", "ACCEPT"},
	{"-t", "nat", "-N", "DOCKER"},
	{"-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "DOCKER"},
	{"-t", "nat", "-A", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0", "-j", "MASQUERADE"},
}

const dockerLikeSaved = `filter DOCKER-FORWARD -
  -i docker0 -j ACCEPT
filter DOCKER-USER -
filter FORWARD DROP
  -j DOCKER-USER
  -j DOCKER-FORWARD
filter INPUT ACCEPT
filter OUTPUT ACCEPT
nat DOCKER -
nat INPUT ACCEPT
nat OUTPUT ACCEPT
nat POSTROUTING ACCEPT
  -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
nat PREROUTING ACCEPT
  -m addrtype --dst-type LOCAL -j DOCKER
`

// withNetworksSaved is dockerLikeSaved plus kernelNetworks, as iptables-save
// prints them: mynet's jumps first in the built-in chains, each rule once.
const withNetworksSaved = `filter DOCKER-FORWARD -
  -i docker0 -j ACCEPT
filter DOCKER-USER -
filter FORWARD DROP
  -j MYNET-FORWARD
  -j DOCKER-USER
  -j DOCKER-FORWARD
filter INPUT ACCEPT
  -j MYNET-INPUT
filter MYNET-ACCEPT -
  -i mn-a -m comment --comment mynet:mn-a -j ACCEPT
  -o mn-a -m comment --comment mynet:mn-a -j ACCEPT
  -i mn-b -m comment --comment mynet:mn-b -j ACCEPT
  -o mn-b -m comment --comment mynet:mn-b -j ACCEPT
  -i mn-c -m comment --comment mynet:mn-c -j ACCEPT
  -o mn-c -m comment --comment mynet:mn-c -j ACCEPT
filter MYNET-FORWARD -
  -j MYNET-ACCEPT
filter MYNET-INPUT -
  -i mn-c -m comment --comment mynet:mn-c -j DROP
filter OUTPUT ACCEPT
nat DOCKER -
nat INPUT ACCEPT
nat MYNET-POSTROUTING -
  -s 10.1.0.0/24 ! -o mn-a -m comment --comment mynet:mn-a -j MASQUERADE
  -s 10.2.0.0/24 ! -o mn-b -m comment --comment mynet:mn-b -j MASQUERADE
nat OUTPUT ACCEPT
nat POSTROUTING ACCEPT
  -j MYNET-POSTROUTING
  -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
nat PREROUTING ACCEPT
  -m addrtype --dst-type LOCAL -j DOCKER
mangle FORWARD ACCEPT
  -j MYNET-ISOLATION
mangle MYNET-ISOLATION -
  -i mn-a ! -o mn-a -m comment --comment mynet:mn-a -j MYNET-ISOLATION-2
  ! -i mn-a -o mn-a -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn-a -j DROP
  -i mn-b ! -o mn-b -m comment --comment mynet:mn-b -j MYNET-ISOLATION-2
  ! -i mn-b -o mn-b -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn-b -j DROP
  -i mn-b -o mn-b -m conntrack ! --ctstate DNAT -m comment --comment mynet:mn-b -j DROP
  -i mn-c ! -o mn-c -m comment --comment mynet:mn-c -j MYNET-ISOLATION-2
  -i mn-c ! -o mn-c -m comment --comment mynet:mn-c -j DROP
  ! -i mn-c -o mn-c -m comment --comment mynet:mn-c -j DROP
mangle MYNET-ISOLATION-2 -
  -o docker0 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -o br-+ -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
  -o mn-a -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn-a -j DROP
  -o mn-b -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn-b -j DROP
  -o mn-c -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment mynet:mn-c -j DROP
`

// inNetns runs fn for each available backend in a fresh network namespace.
func inNetns(t *testing.T, fn func(t *testing.T, cmd string, h *netlink.Handle)) {
	for _, cmd := range backends {
		t.Run(cmd, func(t *testing.T) {
			nstest.RequireRoot(t)
			if _, err := exec.LookPath(cmd); err != nil {
				t.Skipf("%s not installed (apt-get install -y iptables): %v", cmd, err)
			}
			nstest.Run(t, func(h *netlink.Handle) { fn(t, cmd, h) })
		})
	}
}

// newTestIPTables seeds the namespace with dockerLike and returns an
// applier using cmd.
func newTestIPTables(t *testing.T, cmd string) *IPTables {
	t.Helper()
	for _, args := range dockerLike {
		if out, err := exec.Command(cmd, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v: %s", cmd, strings.Join(args, " "), err, out)
		}
	}
	if got := saveTables(t, cmd); got != dockerLikeSaved {
		t.Fatalf("seeded firewall:\n%s\nwant:\n%s", got, dockerLikeSaved)
	}
	ipt, err := newIPv4(testLog(), cmd)
	if err != nil {
		t.Fatalf("newIPv4(%s): %v", cmd, err)
	}
	return ipt
}

// saveTables returns the filter, nat and mangle tables as canonical text.
func saveTables(t *testing.T, cmd string) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{TableFilter, TableNAT, TableMangle} {
		out, err := exec.Command(cmd+"-save", "-t", table).Output()
		if err != nil {
			t.Fatalf("%s-save -t %s: %v", cmd, table, err)
		}
		b.WriteString(canonical(table, string(out)))
	}
	return b.String()
}

// canonical renders iptables-save output for one table as "table chain
// policy" lines, chains sorted (the backends order them differently), each
// followed by its rules in order. Comment and COMMIT lines, counters and the
// quotes around rule comments are dropped.
func canonical(table, save string) string {
	policies := map[string]string{}
	rules := map[string][]string{}
	for line := range strings.Lines(save) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			policies[f[0]] = f[1]
		case strings.HasPrefix(line, "-A "):
			chain, rule, _ := strings.Cut(line[len("-A "):], " ")
			rules[chain] = append(rules[chain], strings.ReplaceAll(rule, `"`, ""))
		}
	}
	var b strings.Builder
	for _, chain := range slices.Sorted(maps.Keys(policies)) {
		if table == TableMangle && policies[chain] == "ACCEPT" && len(rules[chain]) == 0 {
			// The mangle table appears once anything touches it; its empty
			// built-in chains are no leftover.
			continue
		}
		b.WriteString(table + " " + chain + " " + policies[chain] + "\n")
		for _, r := range rules[chain] {
			b.WriteString("  " + r + "\n")
		}
	}
	return b.String()
}

func TestKernelBackend(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		ipt, err := newIPv4(testLog(), cmd)
		if err != nil {
			t.Fatalf("newIPv4: %v", err)
		}
		want := BackendNFTables
		if cmd == "iptables-legacy" {
			want = BackendLegacy
		}
		if got := ipt.Backend(); got != want {
			t.Errorf("Backend() = %q, want %q", got, want)
		}
	})
}

// New uses the iptables on PATH and reports the backend it drives.
func TestKernelNew(t *testing.T) {
	nstest.Run(t, func(*netlink.Handle) {
		out, err := exec.Command("iptables", "--version").Output()
		if err != nil {
			t.Skipf("iptables not installed (apt-get install -y iptables): %v", err)
		}
		ipt, err := New(testLog())
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if got, want := ipt.Backend(), parseBackend(string(out)); got != want {
			t.Errorf("Backend() = %q, want %q (from %q)", got, want, out)
		}
	})
}

// On a host where nothing has used iptables yet (with nf_tables: no
// tables at all), Init creates what it needs and Cleanup removes it.
func TestKernelInitCleanupFresh(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		ipt, err := newIPv4(testLog(), cmd)
		if err != nil {
			t.Fatalf("newIPv4: %v", err)
		}
		for i := range 2 {
			if err := ipt.Init(); err != nil {
				t.Fatalf("Init #%d: %v", i+1, err)
			}
		}
		if err := ipt.Cleanup(); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		const builtins = `filter FORWARD ACCEPT
filter INPUT ACCEPT
filter OUTPUT ACCEPT
nat INPUT ACCEPT
nat OUTPUT ACCEPT
nat POSTROUTING ACCEPT
nat PREROUTING ACCEPT
`
		if got := saveTables(t, cmd); got != builtins {
			t.Fatalf("after Init and Cleanup:\n%s\nwant only the built-in chains:\n%s", got, builtins)
		}
	})
}

func TestKernelEnsureRemove(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		ipt := newTestIPTables(t, cmd)
		baseline := saveTables(t, cmd)

		if err := ipt.Init(); err != nil {
			t.Fatalf("Init: %v", err)
		}
		for _, n := range kernelNetworks {
			if err := ipt.EnsureNetwork(n); err != nil {
				t.Fatalf("EnsureNetwork(%s): %v", n.Bridge, err)
			}
		}
		if got := saveTables(t, cmd); got != withNetworksSaved {
			t.Fatalf("after EnsureNetwork:\n%s\nwant:\n%s", got, withNetworksSaved)
		}

		if err := ipt.Init(); err != nil {
			t.Fatalf("second Init: %v", err)
		}
		for _, n := range kernelNetworks {
			if err := ipt.EnsureNetwork(n); err != nil {
				t.Fatalf("second EnsureNetwork(%s): %v", n.Bridge, err)
			}
		}
		if got := saveTables(t, cmd); got != withNetworksSaved {
			t.Fatalf("second EnsureNetwork changed rules:\n%s\nwant:\n%s", got, withNetworksSaved)
		}

		if err := ipt.Cleanup(); !errors.Is(err, ErrRulesRemain) {
			t.Fatalf("Cleanup with networks = %v, want ErrRulesRemain", err)
		}
		if got := saveTables(t, cmd); got != withNetworksSaved {
			t.Fatalf("refused Cleanup changed rules:\n%s\nwant:\n%s", got, withNetworksSaved)
		}

		for _, n := range kernelNetworks {
			for i := range 2 {
				if err := ipt.RemoveNetwork(n); err != nil {
					t.Fatalf("RemoveNetwork(%s) #%d: %v", n.Bridge, i+1, err)
				}
			}
		}
		for i := range 2 {
			if err := ipt.Cleanup(); err != nil {
				t.Fatalf("Cleanup #%d: %v", i+1, err)
			}
		}
		if got := saveTables(t, cmd); got != baseline {
			t.Fatalf("after RemoveNetwork and Cleanup:\n%s\nwant the baseline:\n%s", got, baseline)
		}
	})
}

// A failure at the last of a network's rules makes EnsureNetwork delete,
// from the kernel, the rules it added before it.
func TestKernelEnsureNetworkUndo(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		ipt := newTestIPTables(t, cmd)
		if err := ipt.Init(); err != nil {
			t.Fatalf("Init: %v", err)
		}
		initialised := saveTables(t, cmd)
		injected := errors.New("injected")
		ipt.ipt = failAppend{ipt.ipt, ChainPostrouting, injected}
		if err := ipt.EnsureNetwork(kernelNetworks[0]); !errors.Is(err, injected) {
			t.Fatalf("EnsureNetwork = %v, want the injected error", err)
		}
		if got := saveTables(t, cmd); got != initialised {
			t.Fatalf("after the failed EnsureNetwork:\n%s\nwant:\n%s", got, initialised)
		}
	})
}

// failAppend fails appends to one chain and passes everything else to the
// real iptables.
type failAppend struct {
	xtables
	chain string
	err   error
}

func (f failAppend) Append(table, chain string, spec ...string) error {
	if chain == f.chain {
		return f.err
	}
	return f.xtables.Append(table, chain, spec...)
}
