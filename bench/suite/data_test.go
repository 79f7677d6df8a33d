//go:build e2e && bench

package suite

import (
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mynet/mynet/bench/report"
	"github.com/mynet/mynet/e2e/harness"
)

// Data plane: TCP throughput (iperf3, one stream) and request latency (rr:
// 64-byte request and answer, over one connection and with a new
// connection each) over the paths users take.

var (
	benchAllPaths       = []string{report.PathC2C, report.PathHost, report.PathLoopback, report.PathHostAddr, report.PathExternal}
	benchPublishedPaths = []string{report.PathLoopback, report.PathHostAddr, report.PathExternal}
	// benchPathNames are the names MYNET_BENCH_DATA_PATHS takes.
	benchPathNames = map[string]string{"c2c": report.PathC2C, "host": report.PathHost,
		"loopback": report.PathLoopback, "hostaddr": report.PathHostAddr, "external": report.PathExternal}
)

const (
	iperfPort  = 5201
	rrPort     = 7000
	pubIperf   = 25201 // + driver index: host ports of the published servers
	pubRR      = 27000
	rawAddr    = "198.19.0.1" // the no-Docker bridge baseline, in the benchmarking range too
	rawPeer    = "198.19.0.2"
	rawBridge  = "mnbench0"
	rawVeth    = "mnbenchv0"
	rawVethExt = "mnbenchv1"
)

// Clients run on CPU 0 and servers on CPU 1 (containers with
// --cpuset-cpus, namespace-side processes with taskset). Left to the
// scheduler, a client and its server share a CPU in some runs and not in
// others, which moves request latency between ~30 and ~100 µs for reasons
// that have nothing to do with the network driver; and a long-lived
// server container keeps its placement across repetitions, so the
// alternation of drivers cannot average it out.
const (
	clientCPU = "0"
	serverCPU = "1"
)

// pinned prefixes argv with taskset onto cpu, on machines with two CPUs
// or more.
func pinned(cpu string, argv ...string) []string {
	if runtime.NumCPU() < 2 {
		return argv
	}
	return append([]string{"taskset", "-c", cpu}, argv...)
}

func pinnedCPU(cpu string) string {
	if runtime.NumCPU() < 2 {
		return ""
	}
	return cpu
}

// benchTarget is where a measurement runs and what it connects to.
type benchTarget struct {
	where     string // "engine", "ext" or a container name
	host      string
	iperfPort int
	rrPort    int
}

// exec runs argv where the target says: in a namespace of this run with the
// host's binaries, or in a container with the image's.
func (s *benchSuite) exec(where string, argv ...string) (string, error) {
	timeout := time.Duration(s.cfg.iperfSecs+60) * time.Second
	switch where {
	case "engine":
		return harness.InNS(harness.EngineNS(), timeout, pinned(clientCPU, argv...)...)
	case "ext":
		return harness.InNS(harness.ExtNS(), timeout, pinned(clientCPU, argv...)...)
	}
	if argv[0] == s.rr {
		argv[0] = "/bin/rr"
	}
	return harness.DockerIn(harness.Shared().Layout, timeout, append([]string{"exec", where}, argv...)...)
}

// throughput runs one iperf3 test and returns Gbit/s received. A server
// still finishing the previous test answers "busy": retried.
func (s *benchSuite) throughput(tg benchTarget) (float64, error) {
	argv := []string{hostIperf3, "-c", tg.host, "-p", strconv.Itoa(tg.iperfPort),
		"-t", strconv.Itoa(s.cfg.iperfSecs), "-O", "1", "-J"}
	if tg.where != "engine" && tg.where != "ext" {
		argv[0] = "iperf3"
	}
	var lastErr error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Second)
		}
		out, err := s.exec(tg.where, argv...)
		var res struct {
			Error string
			End   struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			}
		}
		if jerr := json.Unmarshal([]byte(out), &res); jerr == nil && res.Error == "" && err == nil {
			return res.End.SumReceived.BitsPerSecond / 1e9, nil
		} else if res.Error != "" {
			err = fmt.Errorf("iperf3: %s", res.Error)
		} else if err == nil {
			err = jerr
		}
		lastErr = err
	}
	return 0, lastErr
}

// rrResult mirrors bench/rr's output.
type rrResult struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_us"`
	P90 float64 `json:"p90_us"`
	P99 float64 `json:"p99_us"`
}

func (s *benchSuite) latency(tg benchTarget, mode string, n int) (rrResult, error) {
	out, err := s.exec(tg.where, s.rr, "client", "-addr", net.JoinHostPort(tg.host, strconv.Itoa(tg.rrPort)),
		"-mode", mode, "-n", strconv.Itoa(n))
	if err != nil {
		return rrResult{}, err
	}
	var r rrResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.N != n {
		return rrResult{}, fmt.Errorf("rr output %q: %v", out, err)
	}
	return r, nil
}

// measure runs the throughput and both latency tests of a path and records
// them.
func (s *benchSuite) measure(t *testing.T, d benchDriver, variant, path string, tg benchTarget, rep int) {
	t.Helper()
	gbit, err := s.throughput(tg)
	if err != nil {
		t.Fatalf("%s %s: %v", d.label, path, err)
	}
	s.add(report.Data, report.Throughput(path), d, variant, 0, gbit, "Gbit/s", rep)
	for _, m := range []struct {
		mode string
		n    int
		name func(pct, path string) string
	}{{"rr", s.cfg.rrN, report.Latency}, {"crr", s.cfg.crrN, report.ConnectLatency}} {
		r, err := s.latency(tg, m.mode, m.n)
		if err != nil {
			t.Fatalf("%s %s %s: %v", d.label, path, m.mode, err)
		}
		s.add(report.Data, m.name("p50", path), d, variant, 0, r.P50, "µs", rep)
		s.add(report.Data, m.name("p90", path), d, variant, 0, r.P90, "µs", rep)
		s.add(report.Data, m.name("p99", path), d, variant, 0, r.P99, "µs", rep)
	}
}

// benchServers is one driver's data-plane pair: a server container running
// iperf3 -s and rr serve with both ports published, and a client container.
type benchServers struct {
	server, client string
	ip             string
	pubIperf       int
	pubRR          int
}

func (s *benchSuite) startServers(t *testing.T, i int, d benchDriver, network string) benchServers {
	t.Helper()
	bs := benchServers{server: "bench-srv-" + d.label, client: "bench-cli-" + d.label, pubIperf: pubIperf + i, pubRR: pubRR + i}
	srv := benchCtr{name: bs.server, network: network, image: benchImage,
		cmd:     harness.Sh(fmt.Sprintf("iperf3 -s -D -p %d >/dev/null 2>&1; exec /bin/rr serve -addr :%d", iperfPort, rrPort)),
		publish: []benchPort{{bs.pubIperf, iperfPort}, {bs.pubRR, rrPort}}, cpus: pinnedCPU(serverCPU)}
	id, err := s.api.run(srv)
	if err != nil {
		t.Fatalf("starting %s: %v", bs.server, err)
	}
	if bs.ip, err = s.api.ip(id, network); err != nil {
		t.Fatal(err)
	}
	cli := benchCtr{name: bs.client, network: network, image: benchImage, cmd: harness.SleepCmd, cpus: pinnedCPU(clientCPU)}
	if _, err := s.api.run(cli); err != nil {
		t.Fatalf("starting %s: %v", bs.client, err)
	}
	s.waitRR(t, benchTarget{where: "engine", host: bs.ip, rrPort: rrPort})
	return bs
}

// waitRR waits until an rr server answers.
func (s *benchSuite) waitRR(t *testing.T, tg benchTarget) {
	t.Helper()
	err := harness.WaitFor(20*time.Second, 200*time.Millisecond, func() error {
		_, err := s.exec(tg.where, s.rr, "client", "-addr", net.JoinHostPort(tg.host, strconv.Itoa(tg.rrPort)),
			"-n", "1", "-warmup", "0", "-timeout", "2s")
		return err
	})
	if err != nil {
		t.Fatalf("rr server at %s:%d: %v", tg.host, tg.rrPort, err)
	}
}

func (bs benchServers) target(path string) benchTarget {
	switch path {
	case report.PathC2C:
		return benchTarget{where: bs.client, host: bs.ip, iperfPort: iperfPort, rrPort: rrPort}
	case report.PathHost:
		return benchTarget{where: "engine", host: bs.ip, iperfPort: iperfPort, rrPort: rrPort}
	case report.PathLoopback:
		return benchTarget{where: "engine", host: "127.0.0.1", iperfPort: bs.pubIperf, rrPort: bs.pubRR}
	case report.PathHostAddr:
		return benchTarget{where: "engine", host: harness.EngineAddr, iperfPort: bs.pubIperf, rrPort: bs.pubRR}
	}
	return benchTarget{where: "ext", host: harness.EngineAddr, iperfPort: bs.pubIperf, rrPort: bs.pubRR}
}

// data measures every path for both drivers, alternating. In the first
// repetition each driver's container→container run is also taken with
// fresh rule counters, kept as rules-c2c-<driver>.txt: which rules each
// forwarded packet went through. The links of both drivers are kept as
// links-<variant>.txt.
func (s *benchSuite) data(t *testing.T, variant string, paths []string) {
	paths = s.dataPaths(paths)
	if len(paths) == 0 {
		return
	}
	defer s.removeAll()
	nets := s.networks(t, subnetData, 24, "data")
	servers := map[string]benchServers{}
	for i, d := range s.drivers {
		servers[d.label] = s.startServers(t, i, d, nets[d.label])
	}
	s.keep("links-"+variant+".txt", s.links())
	for rep := range s.cfg.dataReps {
		for _, path := range paths {
			v := ""
			if path == report.PathLoopback || path == report.PathHostAddr || path == report.PathExternal {
				v = variant
			}
			for _, d := range benchOrder(rep, s.drivers...) {
				counted := rep == 0 && path == report.PathC2C
				if counted {
					s.zeroCounters()
				}
				s.measure(t, d, v, path, servers[d.label].target(path), rep)
				if counted {
					s.keep("rules-c2c-"+d.label+".txt", s.counters())
				}
			}
		}
		t.Logf("data [%s]: rep %d done", variant, rep+1)
	}
}

// benchTables are the iptables tables whose counters are kept.
var benchTables = []string{"raw", "mangle", "nat", "filter"}

// zeroCounters zeroes the rule counters of the engine namespace (this
// run's own).
func (s *benchSuite) zeroCounters() {
	for _, table := range benchTables {
		if _, err := harness.InNS(harness.EngineNS(), 10*time.Second, "iptables", "-t", table, "-Z"); err != nil {
			harness.Logf("bench: zeroing %s counters: %v", table, err)
		}
	}
}

// counters lists the rules of the engine namespace with their packet and
// byte counters, rules no packet went through left out.
func (s *benchSuite) counters() string {
	var b strings.Builder
	for _, table := range benchTables {
		out, err := harness.InNS(harness.EngineNS(), 10*time.Second, "iptables", "-t", table, "-L", "-v", "-x", "-n")
		if err != nil {
			fmt.Fprintf(&b, "# %s: %v\n", table, err)
			continue
		}
		fmt.Fprintf(&b, "# table %s\n", table)
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if strings.HasPrefix(line, "Chain") || (len(f) > 0 && f[0] != "0" && f[0] != "pkts") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// links describes every link of the engine namespace (ip -d link) and the
// offloads and channels of each (ethtool -k, -l, when ethtool is there),
// so that the two drivers' bridges and ports can be compared.
func (s *benchSuite) links() string {
	var b strings.Builder
	out, err := harness.InNS(harness.EngineNS(), 10*time.Second, "ip", "-d", "link", "show")
	fmt.Fprintf(&b, "# ip -d link show\n%s%v\n", out, errText(err))
	out, err = harness.InNS(harness.EngineNS(), 10*time.Second, "ip", "-o", "link", "show")
	if err != nil {
		return b.String()
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		for _, opt := range []string{"-k", "-l"} {
			out, err := harness.InNS(harness.EngineNS(), 10*time.Second, "ethtool", opt, name)
			fmt.Fprintf(&b, "# ethtool %s %s\n%s%v\n", opt, name, out, errText(err))
		}
	}
	return b.String()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}

// baseline measures the machine without Docker: the engine namespace to
// the ext namespace over their veth, and over a bridge and a veth set up
// here (the topology of host→container, with no rules of its own).
func (s *benchSuite) baseline(t *testing.T) {
	s.rawBridge(t)
	for _, argv := range [][]string{
		{hostIperf3, "-s", "-p", strconv.Itoa(iperfPort)},
		{s.rr, "serve", "-addr", ":" + strconv.Itoa(rrPort)},
	} {
		p, err := harness.StartLogged("bench "+argv[0], harness.Shared().Layout.LogDir+"/bench-ext.log", nil, syscall.SIGKILL,
			append([]string{"nsenter", "--net=" + harness.Shared().Layout.NSPath(harness.ExtNS())}, pinned(serverCPU, argv...)...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Stop(syscall.SIGKILL, time.Second) })
	}
	s.waitRR(t, benchTarget{where: "engine", host: harness.ExtAddr, rrPort: rrPort})
	base := benchDriver{label: report.Baseline}
	for rep := range s.cfg.dataReps {
		for _, p := range []struct{ path, host string }{{report.PathVeth, harness.ExtAddr}, {report.PathBridgeRaw, rawPeer}} {
			s.measure(t, base, "", p.path, benchTarget{where: "engine", host: p.host, iperfPort: iperfPort, rrPort: rrPort}, rep)
		}
	}
}

// rawBridge links the engine namespace to the ext namespace through a
// bridge: engine [mnbench0 198.19.0.1] - mnbenchv0 ~ mnbenchv1 [198.19.0.2] ext.
// Both namespaces belong to this run; the links go with them at teardown
// and are removed when the test ends.
func (s *benchSuite) rawBridge(t *testing.T) {
	eng, ext := harness.EngineNS(), harness.ExtNS()
	t.Cleanup(func() {
		_, _ = harness.Run(10*time.Second, nil, "ip", "-n", eng, "link", "del", rawVeth)
		_, _ = harness.Run(10*time.Second, nil, "ip", "-n", eng, "link", "del", rawBridge)
	})
	for _, c := range [][]string{
		{"ip", "-n", eng, "link", "add", rawBridge, "type", "bridge"},
		{"ip", "-n", eng, "link", "add", rawVeth, "type", "veth", "peer", "name", rawVethExt, "netns", ext},
		{"ip", "-n", eng, "link", "set", rawVeth, "master", rawBridge},
		{"ip", "-n", eng, "addr", "add", rawAddr + "/30", "dev", rawBridge},
		{"ip", "-n", ext, "addr", "add", rawPeer + "/30", "dev", rawVethExt},
		{"ip", "-n", eng, "link", "set", rawVeth, "up"},
		{"ip", "-n", eng, "link", "set", rawBridge, "up"},
		{"ip", "-n", ext, "link", "set", rawVethExt, "up"},
	} {
		if _, err := harness.Run(10*time.Second, nil, c...); err != nil {
			t.Fatal(strings.TrimSpace(err.Error()))
		}
	}
}
