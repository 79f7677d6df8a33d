//go:build e2e && bench

package suite

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mynet/mynet/bench/report"
	"github.com/mynet/mynet/e2e/harness"
)

// The benchmark suite: mynet against Docker's bridge driver on the
// harness's private engine, in one run, drivers alternated rep by rep so
// that drift on the machine falls on both. Built only with the tags
// "e2e bench", so normal test runs never see it; `make bench` and
// `make bench-quick` run it. See docs/PERFORMANCE.md.
//
// Environment:
//
//	MYNET_BENCH        quick (default) or full: repetitions and sizes, see benchConfigs.
//	MYNET_BENCH_OUT    directory for the run's results (default bench/out in the module).
//	MYNET_BENCH_MICRO  `go test -bench` output to include (make bench writes it first).
//	MYNET_BENCH_PHASES only these phases: baseline,control,ports,data,scaling (default all).
//	MYNET_BENCH_DATA_REPS  repetitions of the baseline and data phases, instead of the mode's.
//	MYNET_BENCH_REPS       repetitions of the control plane's single operations, instead of the mode's.
//	MYNET_BENCH_CONCURRENT_REPS repetitions of the concurrent start, instead of the mode's.
//	MYNET_BENCH_DATA_PATHS only these data-plane paths: c2c,host,loopback,hostaddr,external.

// benchConfig sizes one run.
type benchConfig struct {
	reps           int   // control plane: create/rm and run/rm repetitions
	concurrent     int   // containers started at once
	concurrentReps int   // repetitions of the concurrent start
	ports          []int // published port counts
	portReps       int
	iperfSecs      int // measured seconds per iperf3 run (after one omitted)
	dataReps       int
	rrN, crrN      int   // requests per latency run, persistent and reconnecting
	scale          int   // containers per driver in the scaling run
	snapshots      []int // endpoint counts at which mynet's memory and files are read
}

var benchConfigs = map[string]benchConfig{
	"quick": {reps: 5, concurrent: 50, concurrentReps: 1, ports: []int{1, 100, 1000}, portReps: 1,
		iperfSecs: 2, dataReps: 1, rrN: 2000, crrN: 300, scale: 60, snapshots: []int{0, 30, 60}},
	"full": {reps: 15, concurrent: 50, concurrentReps: 3, ports: []int{1, 10, 100, 1000}, portReps: 3,
		iperfSecs: 5, dataReps: 3, rrN: 10000, crrN: 1000, scale: 200, snapshots: []int{0, 100, 200}},
}

// benchDriver is one column of the comparison.
type benchDriver struct {
	label  string // report.Bridge, report.Mynet or report.None
	driver string // the name docker knows: "bridge", the plugin's, or "" for --network none
}

type benchSuite struct {
	cfg     benchConfig
	api     *benchAPI
	run     *report.Run
	drivers []benchDriver // bridge and mynet
	rr      string        // the rr binary, for the namespaces' side
	phases  []string      // MYNET_BENCH_PHASES; empty: all
	paths   []string      // MYNET_BENCH_DATA_PATHS as report paths; empty: all

	filesMu sync.Mutex        // guards files
	files   map[string]string // more files for the run's directory, by name
}

// TestBenchSuite runs every scenario and writes the results. Each phase is
// a subtest: one that fails does not keep the others from running, and the
// results gathered so far are written anyway.
func TestBenchSuite(t *testing.T) {
	s := newBenchSuite(t)
	s.phase(t, "baseline", s.baseline)
	s.phase(t, "control", s.control)
	s.phase(t, "ports", func(t *testing.T) { s.ports(t, report.Proxy) })
	s.phase(t, "data", func(t *testing.T) { s.data(t, report.Proxy, benchAllPaths) })
	s.phase(t, "scaling", s.scaling)
	if s.wants("ports") || (s.wants("data") && len(s.dataPaths(benchPublishedPaths)) > 0) {
		t.Run("no-proxy", func(t *testing.T) {
			s.setUserlandProxy(t, false)
			s.phase(t, "ports", func(t *testing.T) { s.ports(t, report.NoProxy) })
			s.phase(t, "data", func(t *testing.T) { s.data(t, report.NoProxy, benchPublishedPaths) })
		})
	}
	s.finish(t)
}

// phase runs a scenario as a subtest unless MYNET_BENCH_PHASES leaves it
// out.
func (s *benchSuite) phase(t *testing.T, name string, fn func(*testing.T)) {
	if s.wants(name) {
		t.Run(name, fn)
	}
}

// wants reports whether MYNET_BENCH_PHASES (comma-separated: baseline,
// control, ports, data, scaling; empty for all) names phase.
func (s *benchSuite) wants(phase string) bool {
	return len(s.phases) == 0 || slices.Contains(s.phases, phase)
}

func newBenchSuite(t *testing.T) *benchSuite {
	mode := os.Getenv("MYNET_BENCH")
	if mode == "" {
		mode = "quick"
	}
	cfg, ok := benchConfigs[mode]
	if !ok {
		t.Fatalf("MYNET_BENCH=%q: want quick or full", mode)
	}
	plugin := harness.UsePlugin(t)
	s := &benchSuite{
		cfg:     cfg,
		api:     newBenchAPI(harness.Shared().Layout),
		run:     &report.Run{Mode: mode, Started: time.Now()},
		drivers: []benchDriver{{report.Bridge, "bridge"}, {report.Mynet, plugin}},
	}
	if h, ok := os.LookupEnv("MYNET_HEAL_INTERVAL"); ok {
		s.run.Note("mynet ran with MYNET_HEAL_INTERVAL=%s (firewall check and orphan scan)", h)
	}
	if p := os.Getenv("MYNET_BENCH_PHASES"); p != "" {
		s.phases = strings.Split(p, ",")
		s.run.Note("phases run: %s (MYNET_BENCH_PHASES)", p)
	}
	if err := s.overrides(); err != nil {
		t.Fatal(err)
	}
	if err := ensureIperf3(); err != nil {
		t.Fatalf("iperf3: %v", err)
	}
	rr, err := buildRR(harness.Shared().Layout)
	if err != nil {
		t.Fatal(err)
	}
	s.rr = rr
	if err := importBenchImage(harness.Shared().Layout, rr); err != nil {
		t.Fatal(err)
	}
	s.run.Machine = benchMachine()
	t.Cleanup(s.removeAll)
	t.Logf("benchmark %s on %s engine %s", mode, harness.Shared().Kind, harness.Shared().Engine.Version)
	return s
}

// benchOrder returns the drivers for repetition rep, rotated so that each goes
// first as often as the others.
func benchOrder(rep int, ds ...benchDriver) []benchDriver {
	out := make([]benchDriver, len(ds))
	for i := range ds {
		out[i] = ds[(i+rep)%len(ds)]
	}
	return out
}

// add records one sample.
func (s *benchSuite) add(scenario, metric string, d benchDriver, variant string, x, v float64, unit string, rep int) {
	s.run.Add(report.Sample{Scenario: scenario, Metric: metric, Driver: d.label, Variant: variant, X: x, Value: v, Unit: unit, Rep: rep})
}

// removeAll removes every container and network of the engine, as each
// phase's end and the suite's cleanup do.
func (s *benchSuite) removeAll() {
	if err := harness.Shared().RemoveDockerObjects(); err != nil {
		harness.Logf("bench: removing containers and networks: %v", err)
	}
}

// removeParallel removes containers with a few workers: teardown is not
// what is measured.
func (s *benchSuite) removeParallel(ids []string) {
	var wg sync.WaitGroup
	ch := make(chan string)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ch {
				if err := s.api.remove(id); err != nil {
					harness.Logf("bench: removing %s: %v", id, err)
				}
			}
		}()
	}
	for _, id := range ids {
		ch <- id
	}
	close(ch)
	wg.Wait()
}

// setUserlandProxy restarts the engine with or without Docker's userland
// proxy; the suite's cleanup puts the default back.
func (s *benchSuite) setUserlandProxy(t *testing.T, on bool) {
	s.removeAll()
	harness.Shared().Engine.Config = map[string]any{"userland-proxy": on}
	harness.Shared().RestartEngine(t)
	t.Cleanup(func() {
		s.removeAll()
		harness.Shared().Engine.Config = nil
		harness.Shared().RestartEngine(t)
	})
}

// finish adds the micro-benchmarks, writes the files and prints the report.
func (s *benchSuite) finish(t *testing.T) {
	if path := os.Getenv("MYNET_BENCH_MICRO"); path != "" {
		if f, err := os.Open(path); err != nil {
			s.run.Note("micro-benchmarks: %v", err)
		} else {
			samples, err := report.ParseGoBench(f)
			f.Close()
			if err != nil {
				t.Errorf("parsing %s: %v", path, err)
			}
			s.run.Add(samples...)
		}
	}
	s.run.Finished = time.Now()
	dir := filepath.Join(benchOutDir(), s.run.Started.Format("20060102-150405")+"-"+harness.Shared().Kind)
	if err := s.run.Write(dir); err != nil {
		t.Errorf("writing results: %v", err)
	}
	s.writeFiles(t, dir)
	latest := filepath.Join(benchOutDir(), "latest-"+harness.Shared().Kind)
	_ = os.Remove(latest)
	_ = os.Symlink(filepath.Base(dir), latest)
	fmt.Printf("\n%s\nresults in %s\n", s.run.Report(), dir)
}

// overrides applies the MYNET_BENCH_*_REPS counts and MYNET_BENCH_DATA_PATHS.
func (s *benchSuite) overrides() error {
	for _, o := range []struct {
		name, what string
		n          *int
	}{
		{"MYNET_BENCH_DATA_REPS", "data and baseline repetitions", &s.cfg.dataReps},
		{"MYNET_BENCH_REPS", "control-plane repetitions", &s.cfg.reps},
		{"MYNET_BENCH_CONCURRENT_REPS", "concurrent-start repetitions", &s.cfg.concurrentReps},
	} {
		v := os.Getenv(o.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%s=%q: want a positive count", o.name, v)
		}
		*o.n = n
		s.run.Note("%s: %d (%s)", o.what, n, o.name)
	}
	if v := os.Getenv("MYNET_BENCH_DATA_PATHS"); v != "" {
		for _, name := range strings.Split(v, ",") {
			path, ok := benchPathNames[name]
			if !ok {
				return fmt.Errorf("MYNET_BENCH_DATA_PATHS: unknown path %q (want c2c, host, loopback, hostaddr, external)", name)
			}
			s.paths = append(s.paths, path)
		}
		s.run.Note("data-plane paths: %s (MYNET_BENCH_DATA_PATHS)", v)
	}
	return nil
}

// dataPaths returns those of paths that MYNET_BENCH_DATA_PATHS selects.
func (s *benchSuite) dataPaths(paths []string) []string {
	if len(s.paths) == 0 {
		return paths
	}
	var out []string
	for _, p := range paths {
		if slices.Contains(s.paths, p) {
			out = append(out, p)
		}
	}
	return out
}

// keep records text to be written as file name in the run's directory.
func (s *benchSuite) keep(name, text string) {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	if s.files == nil {
		s.files = map[string]string{}
	}
	s.files[name] = text
}

func (s *benchSuite) writeFiles(t *testing.T, dir string) {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	for name, text := range s.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Errorf("writing %s: %v", name, err)
		}
	}
}

func benchOutDir() string {
	if d := os.Getenv("MYNET_BENCH_OUT"); d != "" {
		return d
	}
	return filepath.Join("..", "bench", "out") // go test runs in e2e/
}

// benchMachine describes the machine and the engine.
func benchMachine() report.Machine {
	m := report.Machine{
		CPU:           benchCPU(),
		Cores:         runtime.NumCPU(),
		MemoryMiB:     benchMemMiB(),
		Engine:        harness.Shared().Kind,
		EngineVersion: harness.Shared().Engine.Version,
		Storage:       harness.Shared().Engine.Storage,
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := harness.DockerErr("version", "--format", "{{range .Server.Components}}{{if eq .Name \"containerd\"}}{{.Version}}{{end}}{{end}}"); err == nil {
		m.Containerd = out
	}
	if out, err := harness.Run(10*time.Second, nil, "iptables", "--version"); err == nil {
		m.IptablesMode = out
	}
	return m
}

func benchCPU() string {
	return benchProcField("/proc/cpuinfo", "model name", ":")
}

func benchMemMiB() int {
	var kib int
	fmt.Sscan(strings.TrimSuffix(benchProcField("/proc/meminfo", "MemTotal", ":"), " kB"), &kib)
	return kib / 1024
}

// benchProcField returns the value of the first "key<sep> value" line of path.
func benchProcField(path, key, sep string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
