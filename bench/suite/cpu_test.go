//go:build e2e && bench

package suite

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mynet/mynet/bench/report"
	"github.com/mynet/mynet/e2e/harness"
)

// cpuUse is CPU time used so far, in ms: by the engine's processes, by
// mynet, and by the whole machine. The difference of two readings around
// a container start tells where a start's CPU went, which a wall-clock
// ratio on a two-core machine cannot: every ms of CPU any process spends
// during a start competes with the start itself.
type cpuUse struct {
	dockerd, containerd, mynet, machine float64
}

// cpuPids are the processes a reading looks at.
type cpuPids struct{ dockerd, containerd, mynet int }

func enginePids() cpuPids {
	p := cpuPids{dockerd: harness.Shared().Engine.Dockerd.Pid(), mynet: harness.Shared().Mynet.Proc.Pid()}
	if c := benchChildren(p.dockerd, "containerd"); len(c) == 1 {
		p.containerd = c[0]
	}
	return p
}

func readCPU(p cpuPids) cpuUse {
	return cpuUse{dockerd: taskCPU(p.dockerd), containerd: taskCPU(p.containerd), mynet: taskCPU(p.mynet),
		machine: machineCPU()}
}

func (c cpuUse) sub(o cpuUse) cpuUse {
	return cpuUse{dockerd: c.dockerd - o.dockerd, containerd: c.containerd - o.containerd,
		mynet: c.mynet - o.mynet, machine: c.machine - o.machine}
}

// taskCPU sums the on-CPU time (ns, first field of schedstat) of every
// live thread of pid, in ms: /proc/<pid>/stat counts in 10 ms ticks, too
// coarse for the few ms a start costs a process. Threads that exited are
// not counted; Go runtimes keep theirs.
func taskCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var ns float64
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			ns += v
		}
	}
	return ns / 1e6
}

// machineCPU is the busy time of all CPUs (everything but idle and
// iowait) from /proc/stat, in ms; it counts in ticks of 10 ms.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy * 10 // USER_HZ is 100 on Linux
}

// addCPU records the CPU an operation used, per process.
func (s *benchSuite) addCPU(scenario, metric string, d benchDriver, used cpuUse, rep int) {
	for _, m := range []struct {
		who string
		v   float64
	}{{"machine", used.machine}, {"dockerd", used.dockerd}, {"containerd", used.containerd}, {"mynet", used.mynet}} {
		s.add(scenario, report.CPU(metric, m.who), d, "", 0, m.v, "ms CPU", rep)
	}
}

// pluginCalls reads the time mynet spent in its own handlers, from the
// `took` of every call it answered (its debug log) since the last read:
// the plugin's own part of an operation, apart from the engine's.
type pluginCalls struct {
	path string
	off  int64
}

func pluginCallsNow() *pluginCalls {
	p := &pluginCalls{path: harness.Shared().Layout.PluginLog()}
	if fi, err := os.Stat(p.path); err == nil {
		p.off = fi.Size()
	}
	return p
}

// since returns the ms of the calls answered since the last read and
// whether there were any.
func (p *pluginCalls) since() (float64, bool) {
	f, err := os.Open(p.path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if _, err := f.Seek(p.off, io.SeekStart); err != nil {
		return 0, false
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return 0, false
	}
	// Only whole lines: a line being written is read next time.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	p.off += int64(len(b))
	var ms float64
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "msg=answered") {
			continue
		}
		_, v, ok := strings.Cut(line, " took=")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, " ")
		if d, err := time.ParseDuration(strings.Trim(v, `"`)); err == nil {
			ms += float64(d) / float64(time.Millisecond)
			found = true
		}
	}
	return ms, found
}
