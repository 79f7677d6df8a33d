//go:build e2e

package suite

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// TestBenchPorts is a benchmark, not a test: with MYNET_BENCH_PORTS=1 (see
// bench/ports.sh) it publishes 1, 100 and 1000 ports on a mynet network
// and on a Docker bridge network of the private engine and prints, for
// each, the time `docker run` and `docker rm -f` take, the iptables rules
// the start added, and the extra processes (docker-proxy) with their
// memory (PSS), or for mynet the growth of its own memory and descriptors. It
// asserts nothing but that the runs succeed.
func TestBenchPorts(t *testing.T) {
	if os.Getenv("MYNET_BENCH_PORTS") != "1" {
		t.Skip("benchmark: set MYNET_BENCH_PORTS=1 (bench/ports.sh does)")
	}
	p := harness.UsePlugin(t)
	harness.CreateMynet(t, "mynet-e2e-bench", "--subnet", "10.119.0.0/24")
	harness.CreateNetwork(t, "e2e-bench-bridge", "-d", "bridge", "--subnet", "10.120.0.0/24")
	rows := []string{fmt.Sprintf("%-15s %-7s %6s %10s %10s %6s %6s %11s %6s", "engine", "driver", "ports", "start", "remove", "rules", "procs", "memory", "fds")}
	for _, n := range []int{1, 100, 1000} {
		for _, drv := range []struct{ name, net string }{{"mynet", "mynet-e2e-bench"}, {"bridge", "e2e-bench-bridge"}} {
			r := portsBenchPublish(t, drv.net, n)
			rows = append(rows, fmt.Sprintf("%-15s %-7s %6d %10s %10s %6d %6d %11s %6s", harness.Shared().Engine.Version, drv.name, n,
				r.start.Round(time.Millisecond), r.remove.Round(time.Millisecond), r.rules, r.procs, portsKiB(r.procMem), r.fds))
		}
	}
	_ = p
	fmt.Println("BENCH " + strings.Join(rows, "\nBENCH "))
}

type portsBenchResult struct {
	start, remove time.Duration
	rules         int    // iptables rules added by the start (all tables, both backends)
	procs         int    // extra processes (docker-proxy) while the container runs
	procMem       int    // their PSS in KiB; for mynet, the growth of mynet's PSS
	fds           string // for mynet, the growth of mynet's open descriptors
}

func portsBenchPublish(t *testing.T, network string, n int) portsBenchResult {
	t.Helper()
	name := fmt.Sprintf("e2e-bench-%s-%d", strings.TrimPrefix(network, "mynet-"), n)
	spec := fmt.Sprintf("%d-%d:%d-%d", 20000, 20000+n-1, 20000, 20000+n-1)
	if n == 1 {
		spec = "20000:20000"
	}
	rulesBefore := portsCountRules(t)
	mynetPid := harness.Shared().Mynet.Proc.Pid()
	rssBefore, fdsBefore := portsPSS(mynetPid), portsFDs(mynetPid)

	t.Cleanup(func() { harness.CleanupCmd(t, "rm", "-f", name) })
	start := time.Now()
	benchDocker(t, "run", "-d", "--name", name, "--network", network, "--stop-timeout", "1", "-p", spec, harness.Image, "sleep", "3600")
	var r portsBenchResult
	r.start = time.Since(start)
	r.rules = portsCountRules(t) - rulesBefore
	proxies := portsChildren(harness.Shared().Engine.Dockerd.Pid(), "docker-proxy")
	r.procs = len(proxies)
	for _, pid := range proxies {
		r.procMem += portsPSS(pid)
	}
	if strings.HasPrefix(network, "mynet") {
		r.procMem = portsPSS(mynetPid) - rssBefore
		r.fds = strconv.Itoa(portsFDs(mynetPid) - fdsBefore)
	} else {
		r.fds = "-"
	}
	start = time.Now()
	benchDocker(t, "rm", "-f", name)
	r.remove = time.Since(start)
	return r
}

// benchDocker is docker with room for Docker's bridge driver, which takes
// minutes to start and remove a container with 1000 published ports.
func benchDocker(t *testing.T, args ...string) {
	t.Helper()
	if _, err := harness.DockerIn(harness.Shared().Layout, 15*time.Minute, args...); err != nil {
		t.Fatal(err)
	}
}

// portsCountRules counts the rules of every table in the engine namespace,
// in both iptables backends (Docker and mynet write to the same one, but
// which one depends on the machine).
func portsCountRules(t *testing.T) int {
	t.Helper()
	return harness.CountEngineRules(func(string) bool { return true })
}

// portsChildren lists the pids of parent's children whose command is comm.
func portsChildren(parent int, comm string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if len(fields) > 1 && s[open+1:closing] == comm && fields[1] == strconv.Itoa(parent) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// portsPSS is a process's proportional set size in KiB: its resident
// memory with shared pages (the docker-proxy binary's, the C library's)
// divided among the processes sharing them, so that the sum over many
// proxies is what they really cost.
func portsPSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Pss:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

func portsFDs(pid int) int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(entries)
}

func portsKiB(n int) string {
	if n >= 10240 || n <= -10240 {
		return fmt.Sprintf("%.1f MiB", float64(n)/1024)
	}
	return fmt.Sprintf("%d KiB", n)
}
