//go:build e2e && bench

package suite

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mynet/mynet/bench/report"
	"github.com/mynet/mynet/e2e/harness"
)

// benchSubnets gives each driver its own /24 (or /16) per scenario, so
// the two never share an address range. index: 0 bridge, 1 mynet.
func benchSubnet(scenario, index int, prefix int) string {
	if prefix == 16 {
		return fmt.Sprintf("10.%d.0.0/16", 140+2*scenario+index)
	}
	return fmt.Sprintf("10.130.%d.0/24", 2*scenario+index)
}

const (
	subnetCreate = iota
	subnetControl
	subnetPorts
	subnetData
	subnetScaling = 0 // the /16 range has its own numbering
)

var noneDriver = benchDriver{label: report.None}

func (s *benchSuite) sleeper(name, network string) benchCtr {
	if network == "" {
		network = "none"
	}
	return benchCtr{name: name, network: network, image: harness.Image, cmd: harness.SleepCmd}
}

// networks creates one network per driver for a scenario and returns their
// names by driver label.
func (s *benchSuite) networks(t *testing.T, scenario, prefix int, tag string) map[string]string {
	t.Helper()
	names := map[string]string{}
	for i, d := range s.drivers {
		n := benchNet{name: fmt.Sprintf("bench-%s-%s", tag, d.label), driver: d.driver, subnet: benchSubnet(scenario, i, prefix)}
		if _, err := s.api.createNetwork(n); err != nil {
			t.Fatalf("creating %s: %v", n.name, err)
		}
		names[d.label] = n.name
	}
	return names
}

// control: network create and rm; one container's run -d and rm -f, with
// --network none as the engine's own floor; 50 containers at once.
func (s *benchSuite) control(t *testing.T) {
	defer s.removeAll()
	s.networkChurn(t)
	nets := s.networks(t, subnetControl, 24, "ctl")
	s.warmUp(t, nets, nil)
	nets[report.None] = ""
	for rep := range s.cfg.reps {
		for _, d := range benchOrder(rep, s.drivers[0], s.drivers[1], noneDriver) {
			s.runOne(t, d, nets[d.label], rep)
		}
	}
	for rep := range s.cfg.concurrentReps {
		for _, d := range benchOrder(rep, s.drivers[0], s.drivers[1], noneDriver) {
			s.runConcurrent(t, d, nets[d.label], rep)
		}
	}
}

// warmUp runs and removes one container per driver, untimed: what happens
// once per network or engine (the driver's first rules on a network, the
// first jump rules mynet adds for published ports, caches warming) is
// not what the repetitions measure.
func (s *benchSuite) warmUp(t *testing.T, nets map[string]string, publish []benchPort) {
	t.Helper()
	for _, d := range s.drivers {
		c := s.sleeper("bench-warmup-"+d.label, nets[d.label])
		c.publish = publish
		id, err := s.api.run(c)
		if err != nil {
			t.Fatalf("warm-up on %s: %v", d.label, err)
		}
		if err := s.api.remove(id); err != nil {
			t.Fatalf("warm-up on %s: %v", d.label, err)
		}
	}
}

func (s *benchSuite) networkChurn(t *testing.T) {
	for rep := range s.cfg.reps {
		for _, d := range benchOrder(rep, s.drivers...) {
			n := benchNet{name: fmt.Sprintf("bench-churn-%s-%d", d.label, rep), driver: d.driver,
				subnet: benchSubnet(subnetCreate, slices.Index(s.drivers, d), 24)}
			var id string
			ms, err := benchTimed(func() (err error) { id, err = s.api.createNetwork(n); return err })
			if err != nil {
				t.Fatalf("network create %s: %v", n.name, err)
			}
			s.add(report.Control, "network create", d, "", 0, ms, "ms", rep)
			ms, err = benchTimed(func() error { return s.api.removeNetwork(id) })
			if err != nil {
				t.Fatalf("network rm %s: %v", n.name, err)
			}
			s.add(report.Control, "network rm", d, "", 0, ms, "ms", rep)
		}
	}
}

func (s *benchSuite) runOne(t *testing.T, d benchDriver, network string, rep int) {
	c := s.sleeper(fmt.Sprintf("bench-one-%s-%d", d.label, rep), network)
	var id string
	pids, calls := enginePids(), pluginCallsNow()
	before := readCPU(pids)
	ms, err := benchTimed(func() (err error) { id, err = s.api.run(c); return err })
	used := readCPU(pids).sub(before)
	own, answered := calls.since()
	if err != nil {
		s.failed(t, "run -d on %s (rep %d) failed, not timed: %v", d.label, rep, err)
		if id != "" {
			_ = s.api.remove(id)
		}
		return
	}
	runMetric, rmMetric := report.Run1, report.Rm1
	if d.label == report.None {
		runMetric, rmMetric = report.RunNone, report.RmNone
	}
	s.add(report.Control, runMetric, d, "", 0, ms, "ms", rep)
	s.addCPU(report.Control, runMetric, d, used, rep)
	if d.label == report.Mynet && answered {
		s.add(report.Control, report.OwnTime(runMetric), d, "", 0, own, "ms", rep)
	}
	ms, err = benchTimed(func() error { return s.api.remove(id) })
	if err != nil {
		s.failed(t, "rm -f on %s (rep %d) failed, not timed: %v", d.label, rep, err)
		return
	}
	s.add(report.Control, rmMetric, d, "", 0, ms, "ms", rep)
}

// failed records a failed step in the run's notes and fails the test
// without stopping it: the other repetitions still count, and the table
// says what went wrong.
func (s *benchSuite) failed(t *testing.T, format string, args ...any) {
	t.Helper()
	s.run.Note(format, args...)
	t.Errorf(format, args...)
}

// runConcurrent starts cfg.concurrent containers at once and times until
// the last one runs, then removes them all at once.
func (s *benchSuite) runConcurrent(t *testing.T, d benchDriver, network string, rep int) {
	n := s.cfg.concurrent
	ids := make([]string, n)
	errs := make([]error, n)
	ms, _ := benchTimed(func() error {
		s.parallel(n, func(i int) {
			ids[i], errs[i] = s.api.run(s.sleeper(fmt.Sprintf("bench-conc-%s-%d-%d", d.label, rep, i), network))
		})
		return nil
	})
	if nFailed, first := countErrors(errs); nFailed > 0 {
		s.failed(t, "%d of %d concurrent starts on %s (rep %d) failed, rep not timed; first: %v", nFailed, n, d.label, rep, first)
		s.removeParallel(slices.DeleteFunc(ids, func(id string) bool { return id == "" }))
		return
	}
	metric, rmMetric := report.Run50, report.Rm50
	if d.label == report.None {
		metric, rmMetric = report.Run50+" --network none", report.Rm50+" --network none"
	}
	s.add(report.Control, metric, d, "", 0, ms, "ms", rep)
	ms, _ = benchTimed(func() error {
		s.parallel(n, func(i int) { errs[i] = s.api.remove(ids[i]) })
		return nil
	})
	if nFailed, first := countErrors(errs); nFailed > 0 {
		s.failed(t, "%d of %d concurrent removes on %s (rep %d) failed, not timed; first: %v", nFailed, n, d.label, rep, first)
		return
	}
	s.add(report.Control, rmMetric, d, "", 0, ms, "ms", rep)
}

func countErrors(errs []error) (n int, first error) {
	for _, err := range errs {
		if err != nil {
			if n == 0 {
				first = err
			}
			n++
		}
	}
	return n, first
}

// parallel runs fn(0..n-1) each in its own goroutine and waits.
func (s *benchSuite) parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); fn(i) }()
	}
	wg.Wait()
}

// scaling: cfg.scale containers per driver on a /16, one after another
// (the two drivers and --network none alternating), each start timed;
// mynet's memory and open files read at the snapshot counts. The
// --network none series is the engine's own growth with the number of
// containers, which no network driver can remove.
func (s *benchSuite) scaling(t *testing.T) {
	defer s.removeAll()
	nets := s.networks(t, subnetScaling, 16, "scale")
	pids := enginePids()
	var ids []string
	defer func() { s.removeParallel(ids) }()
	snapshot := func(count int) {
		if slices.Contains(s.cfg.snapshots, count) {
			s.add(report.Scaling, "mynet RSS", s.drivers[1], "", float64(count), benchRSS(pids.mynet), "MiB", 0)
			s.add(report.Scaling, "mynet open files", s.drivers[1], "", float64(count), benchFDs(pids.mynet), "fds", 0)
			// Every container adds mounts (its root, shm, netns) to the
			// engine's mount table, which each new container copies.
			s.add(report.Scaling, "engine mounts", s.drivers[1], "", float64(count), benchMounts(pids.dockerd), "mounts", 0)
		}
	}
	snapshot(0)
	n := s.cfg.scale
	for i := range n {
		for _, d := range benchOrder(i, s.drivers[0], s.drivers[1], noneDriver) {
			var id string
			calls := pluginCallsNow()
			before := readCPU(pids)
			ms, err := benchTimed(func() (err error) {
				id, err = s.api.run(s.sleeper(fmt.Sprintf("bench-scale-%s-%d", d.label, i), nets[d.label]))
				return err
			})
			used := readCPU(pids).sub(before)
			own, answered := calls.since()
			answered = answered && d.label == report.Mynet
			if id != "" {
				ids = append(ids, id)
			}
			if err != nil {
				t.Fatalf("scaling: container %d on %s: %v", i, d.label, err)
			}
			s.run.Add(report.Sample{Scenario: report.Scaling, Metric: report.StartAt, Driver: d.label, X: float64(i), Value: ms, Unit: "ms", PlotOnly: true})
			first, last := report.First20, report.Last20
			if d.label == report.None {
				first, last = report.First20None, report.Last20None
			}
			if i < 20 {
				s.add(report.Scaling, first, d, "", 0, ms, "ms", i)
				s.addCPU(report.Scaling, first, d, used, i)
				if answered {
					s.add(report.Scaling, report.OwnTime(first), d, "", 0, own, "ms", i)
				}
			}
			if i >= n-20 {
				s.add(report.Scaling, last, d, "", 0, ms, "ms", i)
				s.addCPU(report.Scaling, last, d, used, i)
				if answered {
					s.add(report.Scaling, report.OwnTime(last), d, "", 0, own, "ms", i)
				}
			}
		}
		snapshot(i + 1)
		if (i+1)%50 == 0 {
			t.Logf("scaling: %d containers per driver", i+1)
		}
	}
}
