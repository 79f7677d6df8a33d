//go:build e2e

package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// teardown removes everything a run with layout l may have created, found
// by name alone, so it serves both the end of a run and reapStale. The
// order matters: processes first (they hold mounts and namespaces), then
// mounts (so that removing the data-root cannot reach into a live overlay
// or netns), then namespaces, cgroups, the socket and the directories.
func teardown(l Layout, keepWork bool) error {
	errs := []error{
		killOurProcesses(l),
		unmountUnder(l.execRoot, l.WorkDir, l.NSPath(l.EngineNS), l.NSPath(l.ExtNS)),
		deleteNamespace(l.EngineNS),
		deleteNamespace(l.ExtNS),
		removeCgroups(l.cgroupName),
		removeManagedCgroups(l),
		removeIfExists(l.PluginSock),
		removeExtraSockets(l),
		removeManagedSockets(l),
		removeTree(l.execRoot),
	}
	if !keepWork {
		errs = append(errs, removeTree(l.WorkDir))
	}
	return errors.Join(errs...)
}

// killOurProcesses SIGKILLs, by pid, every process of this layout: those
// whose command line names one of our private paths (dockerd, containerd,
// shims, mynet, the ext httpd) and container processes, found by our cgroup
// parent. It then waits for them to be gone.
func killOurProcesses(l Layout) error {
	pids := ourProcesses(l)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is fine
	}
	err := WaitFor(60*time.Second, 100*time.Millisecond, func() error {
		if left := ourProcesses(l); len(left) > 0 {
			return fmt.Errorf("processes still alive: %v", left)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("killing leftover processes: %w", err)
	}
	return nil
}

func ourProcesses(l Layout) []int {
	self := os.Getpid()
	plugins := managedPluginIDs(l) // managed plugins run in cgroup /<id>
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		if cmdlineHasMarker(pid, l.markers()) || inCgroup(pid, l.cgroupName) || inAnyCgroup(pid, plugins) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func cmdlineHasMarker(pid int, markers []string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	cmdline := strings.ReplaceAll(string(b), "\x00", " ")
	for _, m := range markers {
		if strings.Contains(cmdline, m) {
			return true
		}
	}
	return false
}

// inCgroup reports whether pid sits below /<name>/ in any cgroup v1
// hierarchy (or the v2 one).
func inCgroup(pid int, name string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (parts[2] == "/"+name || strings.HasPrefix(parts[2], "/"+name+"/")) {
			return true
		}
	}
	return false
}

// unmountUnder lazily unmounts every mount point at or below the given
// paths, deepest first: overlay mounts of the data-root, the netns bind
// mounts and shim rootfs mounts under the exec-root, and the two
// /run/netns files.
func unmountUnder(paths ...string) error {
	var errs []error
	for _, mp := range mountsUnder(paths...) {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("umount -l %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists mount points at or below paths, deepest first, from
// /proc/self/mountinfo. dockerd runs in the test's mount namespace, so its
// mounts are all visible here.
func mountsUnder(paths ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		for _, p := range paths {
			if mp == p || strings.HasPrefix(mp, p+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMountinfo undoes the octal escapes (\040 for space etc.) the
// kernel uses in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroups removes /sys/fs/cgroup/*/<name> in every hierarchy, leaves
// first (rmdir only succeeds on empty cgroups, which is the point: a cgroup
// with a process left in it is reported, not forced).
func removeCgroups(name string) error {
	tops, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", name))
	if top := filepath.Join(cgroupRoot, name); isDir(top) { // pure cgroup v2
		tops = append(tops, top)
	}
	var errs []error
	for _, top := range tops {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// removeTree deletes dir, but only when nothing is mounted below it any
// more: RemoveAll through a live overlay or bind mount would delete the
// wrong files.
func removeTree(dir string) error {
	if m := mountsUnder(dir); len(m) > 0 {
		return fmt.Errorf("not removing %s: still mounted below it: %v", dir, m)
	}
	return os.RemoveAll(dir)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// leftovers lists whatever of layout l still exists; empty after a clean
// teardown.
func leftovers(l Layout) []string {
	var left []string
	for _, p := range append([]string{l.NSPath(l.EngineNS), l.NSPath(l.ExtNS), l.execRoot, l.PluginSock}, managedSocketDirs(l)...) {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, "path "+p)
		}
	}
	if isDir(l.WorkDir) && os.Getenv("MYNET_E2E_KEEP") != "1" {
		left = append(left, "path "+l.WorkDir)
	}
	for _, mp := range mountsUnder(l.execRoot, l.WorkDir, l.NSPath(l.EngineNS), l.NSPath(l.ExtNS)) {
		left = append(left, "mount "+mp)
	}
	for _, pid := range ourProcesses(l) {
		left = append(left, fmt.Sprintf("process %d", pid))
	}
	for _, name := range append([]string{l.cgroupName}, managedPluginIDs(l)...) {
		cgs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", name))
		for _, cg := range cgs {
			left = append(left, "cgroup "+cg)
		}
	}
	return left
}

// reapStale tears down what earlier runs left behind when they died
// without their teardown (a panic, a kill -9, the machine's session ending).
// Runs are recognised by the pid in our names; a run whose test binary is
// still alive (another e2e run in parallel) is left alone.
func reapStale() {
	for _, pid := range stalePids() {
		l := layoutFor(pid)
		Logf("removing leftovers of an earlier run: %s", l)
		if err := teardown(l, false); err != nil {
			Logf("reaping %s: %v", l, err)
		}
	}
}

var stalePatterns = []struct {
	glob string
	re   *regexp.Regexp
}{
	{filepath.Join(netnsDir, "mynet-e2e-*"), regexp.MustCompile(`/mynet-e2e-(?:ext-)?(\d+)$`)},
	{filepath.Join(workBase, "*"), regexp.MustCompile(`/(\d+)$`)},
	{"/run/mne*", regexp.MustCompile(`^/run/mne(\d+)$`)},
	{filepath.Join(PluginsDir, "mynet-e2e-*.sock"), regexp.MustCompile(`/mynet-e2e-(\d+)(?:-[a-z]+)?\.sock$`)},
	{filepath.Join(cgroupRoot, "pids", "mynet-e2e-*"), regexp.MustCompile(`/mynet-e2e-(\d+)$`)},
}

func stalePids() []int {
	seen := map[int]bool{}
	var pids []int
	for _, sp := range stalePatterns {
		matches, _ := filepath.Glob(sp.glob)
		for _, m := range matches {
			sub := sp.re.FindStringSubmatch(m)
			if sub == nil {
				continue
			}
			pid, _ := strconv.Atoi(sub[1])
			if !seen[pid] && !aliveTestBinary(pid) {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// aliveTestBinary reports whether pid is a running Go test binary other
// than this one. Our own pid counts as stale: anything named with it
// before we created it is from an earlier run that had the same pid.
func aliveTestBinary(pid int) bool {
	if pid == os.Getpid() {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasSuffix(strings.TrimSuffix(exe, " (deleted)"), ".test")
}

// removeManagedSockets removes the host directories /run/docker/plugins/<id>
// that the engine made for its managed plugins' sockets.
// removeExtraSockets removes the sockets of further bare mynets a test
// ran next to the run's own (secondPlugin: <PluginName>-<suffix>.sock).
func removeExtraSockets(l Layout) error {
	socks, _ := filepath.Glob(filepath.Join(PluginsDir, l.PluginName+"-*.sock"))
	var errs []error
	for _, s := range socks {
		errs = append(errs, removeIfExists(s))
	}
	return errors.Join(errs...)
}

func removeManagedSockets(l Layout) error {
	var errs []error
	for _, d := range managedSocketDirs(l) {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func inAnyCgroup(pid int, names []string) bool {
	for _, n := range names {
		if inCgroup(pid, n) {
			return true
		}
	}
	return false
}

// removeManagedCgroups removes the cgroups /<plugin id> of the managed
// plugins' processes (killed by then).
func removeManagedCgroups(l Layout) error {
	var errs []error
	for _, id := range managedPluginIDs(l) {
		errs = append(errs, removeCgroups(id))
	}
	return errors.Join(errs...)
}
