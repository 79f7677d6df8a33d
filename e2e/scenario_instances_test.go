//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// secondPlugin starts another bare mynet next to the run's own, with its
// own socket (so its own name to the engine and its own instance name),
// state dir and log, and stops it and removes its socket at the end.
// Its paths lie under the run's work dir, so teardown finds the process
// even if the test dies.
func secondPlugin(t *testing.T, suffix string) *harness.Mynet {
	t.Helper()
	l := harness.Shared().Layout
	l.PluginName = l.PluginName + "-" + suffix
	l.PluginSock = filepath.Join(harness.PluginsDir, l.PluginName+".sock")
	l.PluginDir = filepath.Join(l.WorkDir, "plugin-state-"+suffix)
	l.LogDir = filepath.Join(l.WorkDir, "logs-"+suffix)
	for _, d := range []string{l.PluginDir, l.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pl := &harness.Mynet{Layout: l, Bin: harness.Shared().Mynet.Bin}
	t.Cleanup(func() {
		if pl.Running() {
			if err := pl.Proc.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
				t.Errorf("stopping %s: %v", l.PluginName, err)
			}
		}
		_ = os.Remove(l.PluginSock)
		if t.Failed() {
			t.Logf("---- %s log (tail) ----\n%s", l.PluginName, harness.TailFile(l.PluginLog(), 0, 60))
		}
	})
	if err := pl.Start(); err != nil {
		t.Fatalf("starting %s: %v", l.PluginName, err)
	}
	return pl
}

// instanceObjects is what the engine namespace holds of the instance
// named name: its links (name and alias) and its rules (by their comment).
func instanceObjects(t *testing.T, name string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(harness.InEngine(t, "ip", "-o", "link", "show"), "\n") {
		if strings.Contains(line, "alias mynet:"+name+":") {
			f := strings.Fields(line)
			out = append(out, f[1]+" "+line[strings.Index(line, "alias "):])
		}
	}
	for _, line := range strings.Split(harness.InEngine(t, "iptables-save"), "\n") {
		if strings.Contains(line, "mynet:"+name+":") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestTwoInstances: two bare mynet binaries on one engine (other sockets,
// so other names and instances, other state dirs) each create a network
// and a container with a published port, restart, and delete them, and
// neither touches the other's links, rules or traffic. Before instances,
// the second one's start-up reconcile deleted the first's bridge, veths
// and rules as its own orphans.
func TestTwoInstances(t *testing.T) {
	first := harness.UsePlugin(t)
	two := secondPlugin(t, "two")
	second := two.Layout.PluginName

	harness.CreateNetwork(t, "inst-one", "-d", first, "--ipam-driver", first, "--subnet", "10.151.0.0/24")
	harness.CreateNetwork(t, "inst-two", "-d", second, "--ipam-driver", second, "--subnet", "10.152.0.0/24")
	harness.StartWeb(t, "inst-web-one", "inst-one", "-p", "18901:80")
	harness.StartWeb(t, "inst-web-two", "inst-two", "-p", "18902:80")
	reachable := func(when string) {
		t.Helper()
		for _, port := range []string{"18901", "18902"} {
			portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":"+port+"/", harness.WebPage)
		}
		if t.Failed() {
			t.Fatalf("published ports %s", when)
		}
	}
	reachable("after create")
	objOne, objTwo := instanceObjects(t, first), instanceObjects(t, second)
	if !strings.Contains(objOne, "DNAT") || !strings.Contains(objTwo, "DNAT") || !strings.Contains(objTwo, "alias mynet:"+second+":") {
		t.Fatalf("objects of %s:\n%s\nof %s:\n%s", first, objOne, second, objTwo)
	}
	unchanged := func(when string) {
		t.Helper()
		// Three heal rounds (2 s each) with their orphan sweeps.
		deadline := time.Now().Add(7 * time.Second)
		for time.Now().Before(deadline) {
			if got := instanceObjects(t, first); got != objOne {
				t.Fatalf("%s's objects %s:\n%s\nwant:\n%s", first, when, got, objOne)
			}
			if got := instanceObjects(t, second); got != objTwo {
				t.Fatalf("%s's objects %s:\n%s\nwant:\n%s", second, when, got, objTwo)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	harness.Shared().RestartPlugin(t)
	unchanged("after " + first + " restarted")
	if err := two.Proc.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := two.Start(); err != nil {
		t.Fatal(err)
	}
	unchanged("after " + second + " restarted")
	reachable("after both restarted")

	harness.Docker(t, "rm", "-f", "inst-web-one")
	harness.Docker(t, "network", "rm", "inst-one")
	if got := instanceObjects(t, first); got != "" {
		t.Errorf("%s's objects after its network was removed:\n%s", first, got)
	}
	if got := instanceObjects(t, second); got != objTwo {
		t.Errorf("%s's objects after %s's network was removed:\n%s\nwant:\n%s", second, first, got, objTwo)
	}
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18902/", harness.WebPage)
	harness.Docker(t, "rm", "-f", "inst-web-two")
	harness.Docker(t, "network", "rm", "inst-two")
	if got := instanceObjects(t, second); got != "" {
		t.Errorf("%s's objects after its network was removed:\n%s", second, got)
	}
}
