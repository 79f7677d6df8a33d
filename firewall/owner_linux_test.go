//go:build linux

package firewall

import (
	"errors"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

const (
	tagA = "mynet:1a2b3c4d"
	tagB = "mynet-swarm:9c0d1e2f"
)

// instanceIPTables is an applier of instance tag in the namespace that
// newTestIPTables seeded.
func instanceIPTables(t *testing.T, cmd, tag string) *IPTables {
	t.Helper()
	ipt, err := newIPv4(testLog(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	Instance(tag)(ipt)
	return ipt
}

func publish(t *testing.T, ipt *IPTables, n Network, hostPort uint16, container string) {
	t.Helper()
	if err := ipt.EnsureNetwork(n); err != nil {
		t.Fatal(err)
	}
	m := Mapping{Bridge: n.Bridge, Proto: ProtoTCP, HostIP: netip.IPv4Unspecified(), HostPort: hostPort,
		Container: netip.MustParseAddr(container), Port: 80, PortEnd: 80}
	if err := ipt.EnsurePorts(PortBridge{Bridge: n.Bridge, Subnet: n.Subnet}, []Mapping{m}); err != nil {
		t.Fatal(err)
	}
}

// TestKernelTwoInstances: two instances' appliers share mynet's chains.
// Each one's stale sweep, heal check and cleanup judge only its own rules:
// the sweep leaves the other's, the check notices its own missing rule
// even with the other's rules in the chain, and the shared chains and
// jumps stay while any instance has a rule in them. Before, the sweep
// took every mynet rule of a bridge it did not record (so the other
// instance's), and the check counted the other's rules as its own.
func TestKernelTwoInstances(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		newTestIPTables(t, cmd)
		baseline := saveTables(t, cmd)
		a, b := instanceIPTables(t, cmd, tagA), instanceIPTables(t, cmd, tagB)
		publish(t, a, kernelNetworks[0], 8080, "10.1.0.2")
		publish(t, b, kernelNetworks[1], 8081, "10.2.0.2")
		both := saveTables(t, cmd)
		if !strings.Contains(both, "mynet:"+tagA+":mn-a") || !strings.Contains(both, "mynet:"+tagB+":mn-b") {
			t.Fatalf("rules do not carry their instance:\n%s", both)
		}
		owners, err := a.Owners()
		if err != nil || !slices.Equal(owners[tagA], []string{"mn-a"}) || !slices.Equal(owners[tagB], []string{"mn-b"}) || len(owners) != 2 {
			t.Errorf("Owners = %v, %v", owners, err)
		}

		stale, err := a.RemoveStale(func(br string) bool { return br == "mn-a" })
		if err != nil || len(stale) != 0 {
			t.Errorf("RemoveStale of a = %v, %v; want nothing stale", stale, err)
		}
		if got := saveTables(t, cmd); got != both {
			t.Errorf("a's stale sweep changed the rules:\n%s\nwant:\n%s", got, both)
		}

		// One of a's accepts goes; b has two in the same chain.
		runCmd(t, cmd, "-D", ChainAccept, "-i", "mn-a", "-m", "comment", "--comment", "mynet:"+tagA+":mn-a", "-j", "ACCEPT")
		if ok, _, err := a.Intact(); ok || err != nil {
			t.Errorf("a's Intact with its accept gone = %v, %v; want false", ok, err)
		}
		if ok, why, err := b.Intact(); !ok || err != nil {
			t.Errorf("b's Intact = %v (%s), %v; want true", ok, why, err)
		}
		if err := a.EnsureNetwork(kernelNetworks[0]); err != nil {
			t.Fatal(err)
		}

		if err := a.RemoveBridgePorts(PortBridge{Bridge: "mn-a", Subnet: kernelNetworks[0].Subnet}); err != nil {
			t.Fatal(err)
		}
		if err := a.RemovePorts([]Mapping{{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.IPv4Unspecified(), HostPort: 8080,
			Container: netip.MustParseAddr("10.1.0.2"), Port: 80, PortEnd: 80}}); err != nil {
			t.Fatal(err)
		}
		if err := a.RemoveNetwork(kernelNetworks[0]); err != nil {
			t.Fatal(err)
		}
		if err := a.Cleanup(); !errors.Is(err, ErrRulesRemain) {
			t.Errorf("a's Cleanup with b's rules in place = %v, want ErrRulesRemain", err)
		}
		if ok, why, err := b.Intact(); !ok || err != nil {
			t.Errorf("b's Intact after a removed everything = %v (%s), %v", ok, why, err)
		}
		if strings.Contains(saveTables(t, cmd), "mn-a") {
			t.Errorf("a's rules left:\n%s", saveTables(t, cmd))
		}

		if err := b.RemoveBridgePorts(PortBridge{Bridge: "mn-b", Subnet: kernelNetworks[1].Subnet}); err != nil {
			t.Fatal(err)
		}
		if err := b.RemovePorts([]Mapping{{Bridge: "mn-b", Proto: ProtoTCP, HostIP: netip.IPv4Unspecified(), HostPort: 8081,
			Container: netip.MustParseAddr("10.2.0.2"), Port: 80, PortEnd: 80}}); err != nil {
			t.Fatal(err)
		}
		if err := b.RemoveNetwork(kernelNetworks[1]); err != nil {
			t.Fatal(err)
		}
		if err := b.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if got := saveTables(t, cmd); got != baseline {
			t.Errorf("not back to baseline:\n%s", got)
		}
	})
}

// TestKernelLegacyRulesRetagged: rules of a build before instances
// (comment mynet:<bridge>) for a bridge the instance records get its
// comment in place, in the same positions; those of a bridge it does not
// record cannot be proven its own and stay as they are.
func TestKernelLegacyRulesRetagged(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		legacy := newTestIPTables(t, cmd)
		publish(t, legacy, kernelNetworks[0], 8080, "10.1.0.2")
		publish(t, legacy, kernelNetworks[1], 8081, "10.2.0.2")
		before := saveTables(t, cmd)
		a := instanceIPTables(t, cmd, tagA)
		stale, err := a.RemoveStale(func(br string) bool { return br == "mn-a" })
		if err != nil || len(stale) != 0 {
			t.Fatalf("RemoveStale = %v, %v; want nothing stale", stale, err)
		}
		want := strings.ReplaceAll(before, "mynet:mn-a ", "mynet:"+tagA+":mn-a ")
		if got := saveTables(t, cmd); got != want {
			t.Fatalf("after re-tagging:\n%s\nwant:\n%s", got, want)
		}
		publish(t, a, kernelNetworks[0], 8080, "10.1.0.2")
		if got := saveTables(t, cmd); got != want {
			t.Errorf("ensuring the re-tagged network added rules:\n%s\nwant:\n%s", got, want)
		}
		if _, err := a.RemoveStale(func(br string) bool { return br == "mn-a" }); err != nil {
			t.Fatal(err)
		}
		if got := saveTables(t, cmd); got != want {
			t.Errorf("a second sweep changed the rules:\n%s\nwant:\n%s", got, want)
		}
	})
}

func runCmd(t *testing.T, cmd string, args ...string) {
	t.Helper()
	if out, err := exec.Command(cmd, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", cmd, strings.Join(args, " "), err, out)
	}
}

// TestKernelInstancesIsolated: networks of two instances are isolated
// from each other as two networks of one instance are: every instance's
// drops live in the shared MYNET-ISOLATION chains, which every mynet
// bridge's traffic passes.
func TestKernelInstancesIsolated(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, h *netlink.Handle) {
		l := newLab(t, h)
		brA := l.bridge("mn-a", "10.1.0.1/24")
		brB := l.bridge("mn-b", "10.2.0.1/24")
		a1 := l.child("va1", brA, "", "10.1.0.2/24", "10.1.0.1")
		b1 := l.child("vb1", brB, "", "10.2.0.2/24", "10.2.0.1")
		ext := l.child("vext", nil, "192.0.2.1/24", "192.0.2.2/24", "192.0.2.1")
		a, b := instanceIPTables(t, cmd, tagA), instanceIPTables(t, cmd, tagB)
		if err := a.EnableForwarding(); err != nil {
			t.Fatal(err)
		}
		runCmd(t, cmd, "-P", "FORWARD", "DROP")
		if err := a.EnsureNetwork(kernelNetworks[0]); err != nil {
			t.Fatal(err)
		}
		if err := b.EnsureNetwork(kernelNetworks[1]); err != nil {
			t.Fatal(err)
		}
		extPeers := l.listen(ext, "192.0.2.2:8080")
		l.allowed("a1->outside", a1, "192.0.2.2:8080", extPeers, "192.0.2.1")
		l.allowed("b1->outside", b1, "192.0.2.2:8080", extPeers, "192.0.2.1")
		l.blocked("a1->b1 (other instance)", a1, "10.2.0.2:8080")
		l.blocked("b1->a1 (other instance)", b1, "10.1.0.2:8080")
		// a goes away entirely; b's network keeps working.
		if err := a.RemoveNetwork(kernelNetworks[0]); err != nil {
			t.Fatal(err)
		}
		if err := a.Cleanup(); !errors.Is(err, ErrRulesRemain) {
			t.Errorf("a's Cleanup = %v, want ErrRulesRemain", err)
		}
		l.allowed("b1->outside after a left", b1, "192.0.2.2:8080", extPeers, "192.0.2.1")
	})
}
