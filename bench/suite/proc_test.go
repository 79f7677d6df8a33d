//go:build e2e && bench

package suite

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mynet/mynet/e2e/harness"
)

// benchRSS returns a process's resident memory in MiB from
// /proc/<pid>/status (VmRSS), 0 when it is gone.
func benchRSS(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kib, _ := strconv.ParseFloat(f[1], 64)
			return kib / 1024
		}
	}
	return 0
}

// benchFDs returns how many descriptors a process has open.
func benchFDs(pid int) float64 {
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		return 0
	}
	return float64(len(ents))
}

// benchMounts counts the mounts in pid's mount namespace.
func benchMounts(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "mountinfo"))
	if err != nil {
		return 0
	}
	return float64(strings.Count(string(b), "\n"))
}

// benchChildren returns the pids of parent's children whose command name
// (/proc/<pid>/comm) is comm: dockerd's docker-proxy processes.
func benchChildren(parent int, comm string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces, so cut at the last ')'.
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		rest := strings.Fields(s[end+1:])
		if len(rest) < 2 || s[open+1:end] != comm {
			continue
		}
		if ppid, _ := strconv.Atoi(rest[1]); ppid == parent {
			pids = append(pids, pid)
		}
	}
	return pids
}

// benchRuleCount counts the rules (-A lines) in iptables-save and
// ip6tables-save of the engine namespace, every table.
func benchRuleCount() (int, error) {
	n := 0
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		out, err := harness.InEngineErr(cmd)
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "-A ") {
				n++
			}
		}
	}
	return n, nil
}
