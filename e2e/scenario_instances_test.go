//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secondPlugin starts another bare mynet next to the run's own, with its
// own socket (so its own name to the engine and its own instance name),
// state dir and log, and stops it and removes its socket at the end.
// Its paths lie under the run's work dir, so teardown finds the process
// even if the test dies.
func secondPlugin(t *testing.T, suffix string) *plugin {
	t.Helper()
	l := env.lay
	l.pluginName = l.pluginName + "-" + suffix
	l.pluginSock = filepath.Join(pluginsDir, l.pluginName+".sock")
	l.pluginDir = filepath.Join(l.workDir, "plugin-state-"+suffix)
	l.logDir = filepath.Join(l.workDir, "logs-"+suffix)
	for _, d := range []string{l.pluginDir, l.logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pl := &plugin{lay: l, bin: env.plugin.bin}
	t.Cleanup(func() {
		if pl.running() {
			if err := pl.p.stop(syscall.SIGTERM, 10*time.Second); err != nil {
				t.Errorf("stopping %s: %v", l.pluginName, err)
			}
		}
		_ = os.Remove(l.pluginSock)
		if t.Failed() {
			t.Logf("---- %s log (tail) ----\n%s", l.pluginName, tailFile(l.pluginLog(), 0, 60))
		}
	})
	if err := pl.start(); err != nil {
		t.Fatalf("starting %s: %v", l.pluginName, err)
	}
	return pl
}

// instanceObjects is what the engine namespace holds of the instance
// named name: its links (name and alias) and its rules (by their comment).
func instanceObjects(t *testing.T, name string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(inEngine(t, "ip", "-o", "link", "show"), "\n") {
		if strings.Contains(line, "alias mynet:"+name+":") {
			f := strings.Fields(line)
			out = append(out, f[1]+" "+line[strings.Index(line, "alias "):])
		}
	}
	for _, line := range strings.Split(inEngine(t, "iptables-save"), "\n") {
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
	first := usePlugin(t)
	two := secondPlugin(t, "two")
	second := two.lay.pluginName

	createNetwork(t, "inst-one", "-d", first, "--ipam-driver", first, "--subnet", "10.151.0.0/24")
	createNetwork(t, "inst-two", "-d", second, "--ipam-driver", second, "--subnet", "10.152.0.0/24")
	startWeb(t, "inst-web-one", "inst-one", "-p", "18901:80")
	startWeb(t, "inst-web-two", "inst-two", "-p", "18902:80")
	reachable := func(when string) {
		t.Helper()
		for _, port := range []string{"18901", "18902"} {
			portsMustFetch(t, env.lay.extNS, "http://"+engineAddr+":"+port+"/", webPage)
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

	env.RestartPlugin(t)
	unchanged("after " + first + " restarted")
	if err := two.p.stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := two.start(); err != nil {
		t.Fatal(err)
	}
	unchanged("after " + second + " restarted")
	reachable("after both restarted")

	docker(t, "rm", "-f", "inst-web-one")
	docker(t, "network", "rm", "inst-one")
	if got := instanceObjects(t, first); got != "" {
		t.Errorf("%s's objects after its network was removed:\n%s", first, got)
	}
	if got := instanceObjects(t, second); got != objTwo {
		t.Errorf("%s's objects after %s's network was removed:\n%s\nwant:\n%s", second, first, got, objTwo)
	}
	portsMustFetch(t, env.lay.extNS, "http://"+engineAddr+":18902/", webPage)
	docker(t, "rm", "-f", "inst-web-two")
	docker(t, "network", "rm", "inst-two")
	if got := instanceObjects(t, second); got != "" {
		t.Errorf("%s's objects after its network was removed:\n%s", second, got)
	}
}
