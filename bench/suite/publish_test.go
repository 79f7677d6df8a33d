//go:build e2e && bench

package suite

import (
	"fmt"
	"testing"

	"github.com/mynet/mynet/bench/report"
	"github.com/mynet/mynet/e2e/harness"
)

// benchPortBase is the first published host (and container) port: below
// the engine namespace's ephemeral range, clear of the e2e tests' ports.
const benchPortBase = 20000

// ports: a container with 1, 100, 1000 published ports (one range), its
// run -d and rm -f times, the iptables rules its start added, the extra
// processes (dockerd's docker-proxy children) and their memory, and the
// descriptors held for the ports: dockerd's and its proxies' for bridge,
// mynet's own for mynet, whose RSS growth stands in its "extra RSS".
func (s *benchSuite) ports(t *testing.T, variant string) {
	defer s.removeAll()
	nets := s.networks(t, subnetPorts, 24, "ports")
	s.warmUp(t, nets, benchPortRange(benchPortBase, benchPortBase, 1))
	for _, n := range s.cfg.ports {
		for rep := range s.cfg.portReps {
			for _, d := range benchOrder(rep, s.drivers...) {
				s.publish(t, d, nets[d.label], variant, n, rep)
			}
		}
		t.Logf("ports [%s]: %d done", variant, n)
	}
}

// benchHolder is what holds a driver's published ports: for bridge,
// dockerd and its docker-proxy children; for mynet, the plugin.
type benchHolder struct {
	procs     int
	proxyRSS  float64
	proxyFDs  float64
	ownerRSS  float64
	ownerFDs  float64
	ruleCount int
}

func benchHolderNow(t *testing.T, d benchDriver) benchHolder {
	t.Helper()
	rules, err := benchRuleCount()
	if err != nil {
		t.Fatal(err)
	}
	h := benchHolder{ruleCount: rules}
	owner := harness.Shared().Engine.Dockerd.Pid()
	if d.label == report.Mynet {
		owner = harness.Shared().Mynet.Proc.Pid()
	} else {
		for _, pid := range benchChildren(owner, "docker-proxy") {
			h.procs++
			h.proxyRSS += benchRSS(pid)
			h.proxyFDs += benchFDs(pid)
		}
	}
	h.ownerRSS, h.ownerFDs = benchRSS(owner), benchFDs(owner)
	return h
}

func (s *benchSuite) publish(t *testing.T, d benchDriver, network, variant string, n, rep int) {
	c := s.sleeper(fmt.Sprintf("bench-ports-%s-%d-%d", d.label, n, rep), network)
	c.publish = benchPortRange(benchPortBase, benchPortBase, n)
	before := benchHolderNow(t, d)
	var id string
	ms, err := benchTimed(func() (err error) { id, err = s.api.run(c); return err })
	if id != "" {
		defer s.api.remove(id) // already gone after the timed rm below
	}
	if err != nil {
		t.Fatalf("run %s with %d ports: %v", c.name, n, err)
	}
	after := benchHolderNow(t, d)
	x := float64(n)
	s.add(report.Ports, report.PortsRun, d, variant, x, ms, "ms", rep)
	s.add(report.Ports, report.Rules, d, variant, x, float64(after.ruleCount-before.ruleCount), "rules", rep)
	s.add(report.Ports, report.Procs, d, variant, x, float64(after.procs-before.procs), "procs", rep)
	extraRSS := after.proxyRSS - before.proxyRSS
	if d.label == report.Mynet {
		extraRSS = after.ownerRSS - before.ownerRSS
	}
	s.add(report.Ports, "extra RSS", d, variant, x, extraRSS, "MiB", rep)
	fds := after.ownerFDs - before.ownerFDs + after.proxyFDs - before.proxyFDs
	s.add(report.Ports, "open files added", d, variant, x, fds, "fds", rep)
	ms, err = benchTimed(func() error { return s.api.remove(id) })
	if err != nil {
		t.Fatalf("rm %s: %v", c.name, err)
	}
	s.add(report.Ports, "rm -f", d, variant, x, ms, "ms", rep)
}
