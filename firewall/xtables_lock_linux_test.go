//go:build linux

package firewall

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/mynet/mynet/internal/nstest"
)

// iptables-legacy changes a table by reading all of it, editing it in user
// space and writing it back whole. The kernel takes the write only if the
// table still has the rule count it read (else EAGAIN), so a writer that
// read before another's write fails, or, when the counts happen to match,
// silently undoes the other's change. Writers serialise on a flock of one
// file, /run/xtables.lock (XTABLES_LOCKFILE names another): writers that
// lock different files race. That is the managed plugin, whose /run is its
// own rootfs's, next to a dockerd on legacy iptables, unless config.json
// mounts the host's lock file. These tests race mynet's firewall against an
// `iptables-legacy -w` loop standing in for dockerd, in a test namespace,
// with lock files of their own (not the host's, which other programs hold).

// A round of the race: several firewalls of mynet's, as several processes
// would be, each ensuring networks, while loops write rules of their own
// the way dockerd does.
const (
	raceFirewalls   = 3
	raceNetworks    = 4  // per firewall
	raceLoops       = 2  // dockerd stand-ins
	raceLoopWrites  = 60 // per loop
	raceRoundsShown = 3  // rounds the shared lock must survive
)

// TestKernelLegacyLockRace: with the dockerd stand-in locking another file,
// writes fail or get lost; with both locking the same file, every write of
// every writer succeeds and stays.
func TestKernelLegacyLockRace(t *testing.T) {
	nstest.RequireRoot(t)
	if _, err := exec.LookPath(cmdLegacy); err != nil {
		t.Skipf("%s not installed (apt-get install -y iptables): %v", cmdLegacy, err)
	}
	dir := t.TempDir()
	shared := filepath.Join(dir, "xtables.lock")
	// mynet's iptables children inherit the test's environment.
	t.Setenv("XTABLES_LOCKFILE", shared)

	t.Run("separate lock files", func(t *testing.T) {
		other := filepath.Join(dir, "rootfs-xtables.lock")
		nstest.Run(t, func(*netlink.Handle) {
			// A race needs the writers to interleave, which they nearly
			// always do in the first round; a loaded machine may need more.
			deadline := time.Now().Add(2 * time.Minute)
			for round := 1; ; round++ {
				problems := lockRaceRound(t, round, other)
				if len(problems) > 0 {
					t.Logf("round %d: %d writes failed or were lost, e.g.:\n  %s", round, len(problems),
						strings.Join(problems[:min(len(problems), 5)], "\n  "))
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d rounds with separate lock files and no failed or lost write: the race this test relies on did not show", round)
				}
			}
		})
	})
	t.Run("one lock file", func(t *testing.T) {
		nstest.Run(t, func(*netlink.Handle) {
			for round := 1; round <= raceRoundsShown; round++ {
				if problems := lockRaceRound(t, round, shared); len(problems) > 0 {
					t.Fatalf("round %d: %d writes failed or were lost with one lock file:\n  %s", round, len(problems), strings.Join(problems, "\n  "))
				}
			}
		})
	})
}

// lockRaceRound empties the legacy tables, races mynet's firewalls (which
// lock XTABLES_LOCKFILE) against the loops (which lock loopLock), and
// returns every write that failed or is missing afterwards.
func lockRaceRound(t *testing.T, round int, loopLock string) []string {
	t.Helper()
	resetLegacy(t)
	primary, err := newIPv4(testLog(), cmdLegacy)
	if err != nil {
		t.Fatal(err)
	}
	// The base chains come first, as at mynet's start: two firewalls both
	// creating a missing chain is a race of mynet's own, not the lock's.
	if err := primary.Init(); err != nil {
		t.Fatalf("init: %v", err)
	}
	var (
		mu       sync.Mutex
		problems []string
		failed   = map[string]bool{} // bridges and loop rules whose write failed
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	var wg sync.WaitGroup
	for f := range raceFirewalls {
		goInNetns(t, &wg, func() {
			ipt, err := newIPv4(testLog(), cmdLegacy)
			if err != nil {
				report("firewall %d: %v", f, err)
				return
			}
			for _, n := range raceNets(f) {
				if err := ipt.EnsureNetwork(n); err != nil {
					report("mynet: ensure %s: %v", n.Bridge, err)
					mu.Lock()
					failed[n.Bridge] = true
					mu.Unlock()
				}
			}
		})
	}
	for l := range raceLoops {
		goInNetns(t, &wg, func() {
			for _, args := range loopRules(round, l) {
				cmd := exec.Command(cmdLegacy, append([]string{"-w", "10", "-A"}, args...)...)
				cmd.Env = append(os.Environ(), "XTABLES_LOCKFILE="+loopLock)
				if out, err := cmd.CombinedOutput(); err != nil {
					report("loop: -A %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
					mu.Lock()
					failed[strings.Join(args, " ")] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return append(problems, missingAfterRace(t, primary, round, failed)...)
}

// missingAfterRace lists the rules whose write succeeded but that are not
// in the kernel: lost to another writer's stale copy of the table. Failed
// writes are left out (a failed ensure removes the rules it added).
func missingAfterRace(t *testing.T, ipt *IPTables, round int, failed map[string]bool) []string {
	t.Helper()
	var missing []string
	for f := range raceFirewalls {
		for _, n := range raceNets(f) {
			if failed[n.Bridge] {
				continue
			}
			for _, r := range NetworkRules(n) {
				if ok, err := ipt.ipt.Exists(r.Table, r.Chain, r.Spec...); err != nil || !ok {
					missing = append(missing, fmt.Sprintf("mynet's rule lost: %s (%v)", r, err))
				}
			}
		}
	}
	for l := range raceLoops {
		for _, args := range loopRules(round, l) {
			if failed[strings.Join(args, " ")] {
				continue
			}
			if err := exec.Command(cmdLegacy, append([]string{"-w", "10", "-C"}, args...)...).Run(); err != nil {
				missing = append(missing, "loop's rule lost: -A "+strings.Join(args, " "))
			}
		}
	}
	return missing
}

// raceNets are the networks firewall f ensures.
func raceNets(f int) []Network {
	var nets []Network
	for k := range raceNetworks {
		nets = append(nets, Network{
			Bridge:     fmt.Sprintf("mn-race%d-%d", f, k),
			Subnet:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + f), byte(k), 0}), 24),
			Masquerade: true,
		})
	}
	return nets
}

// loopRules are the rules loop l appends in round, alternately to the
// filter and the nat table (mynet writes both), each unique.
func loopRules(round, l int) [][]string {
	var rules [][]string
	for i := range raceLoopWrites {
		src := fmt.Sprintf("10.250.%d.%d", l*50+round%50, i+1)
		if i%2 == 0 {
			rules = append(rules, []string{"FORWARD", "-t", "filter", "-s", src, "-j", "ACCEPT"})
		} else {
			rules = append(rules, []string{"POSTROUTING", "-t", "nat", "-s", src, "-j", "RETURN"})
		}
	}
	return rules
}

// resetLegacy empties the legacy tables of the test namespace.
func resetLegacy(t *testing.T) {
	t.Helper()
	for _, table := range []string{TableFilter, TableNAT, TableMangle} {
		for _, op := range []string{"-F", "-X"} {
			if out, err := exec.Command(cmdLegacy, "-w", "10", "-t", table, op).CombinedOutput(); err != nil {
				t.Fatalf("%s -t %s %s: %v: %s", cmdLegacy, table, op, err, out)
			}
		}
	}
}

// goInNetns runs fn on a new goroutine whose thread is in the calling
// thread's network namespace, so that the iptables commands it starts run
// there too. The thread stays locked: it ends with the goroutine rather than
// going back to the runtime inside the test namespace.
func goInNetns(t *testing.T, wg *sync.WaitGroup, fn func()) {
	t.Helper()
	ns, err := netns.Get()
	if err != nil {
		t.Fatalf("current netns: %v", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer ns.Close()
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			t.Errorf("entering the test netns: %v", err)
			return
		}
		fn()
	}()
}
