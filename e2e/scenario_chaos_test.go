//go:build e2e

package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// TestChaos creates and removes 100 containers concurrently on three mynet
// networks, a third of them publishing a port, while mynet is killed with
// SIGKILL at random moments (at least 10 times) and started again. Docker
// calls that hit a dead plugin may fail; that is the point. Afterwards the
// state must be exact: every running container has its own address and
// (if published) a working port, nothing of a removed container is left
// (veth, DNAT rule, port), and every network can be removed, leaving
// nothing behind.
func TestChaos(t *testing.T) {
	e := harness.Shared()
	harness.UsePlugin(t)
	subnets := []string{"10.81.0.0/24", "10.82.0.0/24", "10.83.0.0/24"}
	nets := make([]string, len(subnets))
	for i, s := range subnets {
		nets[i] = fmt.Sprintf("mynet-e2e-chaos%d", i)
		harness.CreateMynet(t, nets[i], "--subnet", s)
	}

	const total, workers = 100, 4
	var (
		mu       sync.Mutex
		alive    = map[string]bool{} // container -> published
		started  atomic.Int32
		failures atomic.Int32
		kills    atomic.Int32
	)
	t.Cleanup(func() {
		// Every container of the run, whatever the bookkeeping says.
		for i := 1; i <= total; i++ {
			_, _ = harness.DockerErr("rm", "-f", fmt.Sprintf("e2e-chaos-%03d", i))
		}
	})
	next := atomic.Int32{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				i := int(next.Add(1))
				if i > total {
					return
				}
				name := fmt.Sprintf("e2e-chaos-%03d", i)
				args := []string{"run", "-d", "--name", name, "--network", nets[i%len(nets)], "--stop-timeout", "1"}
				published := i%3 == 0
				if published {
					args = append(args, "-p", "80")
				}
				args = append(append(args, harness.Image), harness.HTTPDCmd...)
				if _, err := harness.DockerErr(args...); err != nil {
					// A half-created container goes too; an error here (the
					// plugin down again) leaves it to the final sweep.
					failures.Add(1)
					_, _ = harness.DockerErr("rm", "-f", name)
				} else {
					started.Add(1)
					mu.Lock()
					alive[name] = published
					mu.Unlock()
				}
				if rng.IntN(2) == 0 { // remove an earlier one of ours
					mu.Lock()
					var victim string
					for c := range alive {
						if c != name {
							victim = c
							break
						}
					}
					if victim != "" {
						delete(alive, victim)
					}
					mu.Unlock()
					if victim != "" {
						if _, err := harness.DockerErr("rm", "-f", victim); err != nil {
							// The container may be gone with only the network
							// teardown failing; try once more with mynet back.
							failures.Add(1)
							harness.CleanupCmd(t, "rm", "-f", victim)
						}
					}
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	rng := rand.New(rand.NewPCG(42, 42))
	for stop := false; !stop || kills.Load() < 10; {
		select {
		case <-done:
			stop = true
		case <-time.After(time.Duration(300+rng.IntN(1500)) * time.Millisecond):
		}
		if kills.Load() >= 10 && stop {
			break
		}
		e.KillPlugin(t)
		kills.Add(1)
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		e.StartPlugin(t)
	}
	<-done
	t.Logf("chaos: %d kills, %d containers started, %d docker calls failed while the plugin was down, %d alive", kills.Load(), started.Load(), failures.Load(), len(alive))

	// A restarted mynet's own repairs are waited for where they show:
	// portsMustFetch polls until the port answers.
	mu.Lock()
	defer mu.Unlock()
	seen := map[netip.Addr]string{}
	published := 0
	for c, pub := range alive {
		running := strings.TrimSpace(harness.Docker(t, "inspect", "-f", "{{.State.Running}}", c))
		if running != "true" {
			t.Errorf("%s is not running", c)
			continue
		}
		addr := harness.IfaceAddr(t, c, "eth0").Addr()
		if other, dup := seen[addr]; dup {
			t.Errorf("address %s held by both %s and %s", addr, c, other)
		}
		seen[addr] = c
		if !pub {
			continue
		}
		published++
		out := mynetPorts(t, c)
		m := regexp.MustCompile(`80/tcp -> 0\.0\.0\.0:(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("%s: no published port 80 in `mynet ports`: %q", c, out)
			continue
		}
		portsMustFetch(t, e.Layout.ExtNS, "http://198.18.0.1:"+m[1]+"/", harness.WebPage)
	}
	// Endpoints whose CreateEndpoint answer died with the plugin are
	// orphans the engine will never delete; mynet removes them after a
	// grace period (30 s, checked every 2 s); a loaded machine adds to it.
	var veths int
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		veths = countLines(harness.InEngine(t, "ip", "-o", "link", "show"), "mnh")
		if veths == len(alive) || time.Now().After(deadline) {
			break
		}
	}
	if veths != len(alive) {
		t.Errorf("%d mynet veths in the engine namespace, want one per running container (%d):\n%s", veths, len(alive), harness.InEngine(t, "ip", "-o", "link", "show"))
	}
	if dnat := countLines(harness.InEngine(t, "iptables-save", "-t", "nat"), "-j DNAT"); dnat < published {
		t.Errorf("%d DNAT rules for %d published containers", dnat, published)
	}

	for c := range alive {
		harness.Docker(t, "rm", "-f", c)
		delete(alive, c)
	}
	// A DeleteEndpoint that reached a plugin being killed fails, and the
	// engine then keeps the endpoint as "active" although its container is
	// gone (Docker's stale endpoints; they block `network rm`). Users clear
	// them with `network disconnect -f`, which calls DeleteEndpoint again.
	stale := 0
	for _, n := range nets {
		for _, c := range strings.Fields(harness.Docker(t, "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", n)) {
			harness.Docker(t, "network", "disconnect", "-f", n, c)
			stale++
		}
	}
	t.Logf("chaos: %d stale engine endpoints cleared with network disconnect -f", stale)
	for i, n := range nets {
		harness.Docker(t, "network", "rm", n)
		harness.AssertNetworkGone(t, "", gatewayOf(subnets[i]), netip.MustParsePrefix(subnets[i]))
	}
	if left := countLines(harness.InEngine(t, "iptables-save", "-t", "nat"), "mynet:"); left != 0 {
		t.Errorf("%d mynet nat rules left after removing everything", left)
	}
}

func countLines(out, substr string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func gatewayOf(subnet string) string {
	p := netip.MustParsePrefix(subnet)
	return netip.PrefixFrom(p.Addr().Next(), p.Bits()).String()
}
