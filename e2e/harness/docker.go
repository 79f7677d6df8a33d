//go:build e2e

package harness

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// DockerTimeout bounds one CLI call. A missing legacy plugin costs ~15 s of
// retries inside the engine; anything beyond 2 minutes is a hang.
const DockerTimeout = 2 * time.Minute

var (
	cliOnce sync.Once
	cliBin  string
)

// CLIPath prefers the 28.x CLI in /usr/local/bin; it negotiates the API
// version down to 1.41 for the 20.10 engine.
func CLIPath() string {
	cliOnce.Do(func() {
		cliBin = "/usr/bin/docker"
		if _, err := os.Stat("/usr/local/bin/docker"); err == nil {
			cliBin = "/usr/local/bin/docker"
		} else if p, err := exec.LookPath("docker"); err == nil {
			cliBin = p
		}
	})
	return cliBin
}

// CLIEnviron points the CLI at the private engine only: DOCKER_HOST (also
// passed as -H, which wins over any context), a private DOCKER_CONFIG, and
// none of the caller's DOCKER_* settings.
func CLIEnviron(l Layout) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	return append(env, "DOCKER_HOST="+l.DockerHost(), "DOCKER_CONFIG="+l.CLIConfig)
}

func DockerIn(l Layout, timeout time.Duration, args ...string) (string, error) {
	argv := append([]string{CLIPath(), "-H", l.DockerHost()}, args...)
	return Run(timeout, CLIEnviron(l), argv...)
}

// docker runs a CLI command against the private engine and returns its
// trimmed stdout; it fails t with the command's stderr on error.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := DockerErr(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// DockerErr runs a CLI command against the private engine. The error's
// message holds the command's stderr, which is where docker prints what the
// plugin answered ("... remote: <msg>").
func DockerErr(args ...string) (string, error) {
	return DockerIn(env.Layout, DockerTimeout, args...)
}

// --- Per-test set-up ---

// UseEngine gives a test the shared engine. If the test fails, what dockerd
// and mynet logged while it ran is added to its output.
func UseEngine(t *testing.T) *Env {
	t.Helper()
	if env == nil {
		t.Fatal("no engine: TestMain set-up failed")
	}
	if env.closed.Load() {
		t.Fatal("the private engine has been torn down (test timeout near, or a signal)")
	}
	dOff, pOff := FileSize(env.Layout.DockerdLog()), FileSize(env.Layout.PluginLog())
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("---- dockerd log during this test (tail) ----\n%s", TailFile(env.Layout.DockerdLog(), dOff, 60, dockerdNoise...))
		if FileSize(env.Layout.PluginLog()) > 0 {
			t.Logf("---- mynet log during this test (tail) ----\n%s", TailFile(env.Layout.PluginLog(), pOff, 80))
		}
	})
	return env
}

// UsePlugin is UseEngine plus a running mynet; it returns the driver (and
// IPAM) name for docker commands.
func UsePlugin(t *testing.T) string {
	t.Helper()
	e := UseEngine(t)
	if !e.Mynet.Running() {
		e.StartPlugin(t)
	}
	return e.Plugin()
}

// CreateNetwork runs `docker network create ARGS... NAME` and removes the
// network when the test ends.
func CreateNetwork(t *testing.T, name string, args ...string) {
	t.Helper()
	t.Cleanup(func() {
		DumpKernelOnFailure(t)
		CleanupCmd(t, "network", "rm", name)
	})
	Docker(t, append(append([]string{"network", "create"}, args...), name)...)
}

var (
	dumpedMu sync.Mutex
	dumped   = map[*testing.T]bool{} // tests whose kernel state was logged
)

// DumpKernelOnFailure logs the engine namespace's links and iptables rules
// once per failed test, at its first network removal: the containers are
// gone by then (removed first), but bridges and rules are still there.
func DumpKernelOnFailure(t *testing.T) {
	if !t.Failed() {
		return
	}
	dumpedMu.Lock()
	done := dumped[t]
	dumped[t] = true
	dumpedMu.Unlock()
	if done {
		return
	}
	links, _ := InEngineErr("ip", "-br", "addr")
	rules, _ := InEngineErr("iptables-save")
	t.Logf("---- engine netns at failure: ip -br addr ----\n%s\n---- iptables-save ----\n%s", links, rules)
}

// CreateMynet creates a network with mynet as both driver and IPAM.
func CreateMynet(t *testing.T, name string, args ...string) {
	t.Helper()
	p := env.Plugin()
	CreateNetwork(t, name, append([]string{"-d", p, "--ipam-driver", p}, args...)...)
}

// RunDetached runs `docker run -d --name NAME ARGS...` and removes the
// container when the test ends (registered before the run, so a container
// left in "created" state by a failed start is removed too).
func RunDetached(t *testing.T, name string, args ...string) {
	t.Helper()
	t.Cleanup(func() { CleanupCmd(t, "rm", "-f", name) })
	Docker(t, append([]string{"run", "-d", "--name", name}, args...)...)
}

// runDetachedErr is RunDetached for a start that may fail.
func runDetachedErr(t *testing.T, name string, args ...string) error {
	t.Helper()
	t.Cleanup(func() { CleanupCmd(t, "rm", "-f", name) })
	_, err := DockerErr(append([]string{"run", "-d", "--name", name}, args...)...)
	return err
}

// CleanupCmd runs a docker command at test end; "No such ..." means it is
// already gone, anything else is reported but does not stop other cleanups.
func CleanupCmd(t *testing.T, args ...string) {
	t.Helper()
	if _, err := DockerErr(args...); err != nil && !strings.Contains(err.Error(), "No such") && !strings.Contains(err.Error(), "not found") {
		t.Errorf("cleanup: %v", err)
	}
}

// RunOnce runs cmd in a throwaway container of the test image on network
// (a name, or "container:NAME") and returns its stdout:
// `docker run --rm --network NETWORK IMAGE CMD...`.
func RunOnce(t *testing.T, network string, cmd ...string) string {
	t.Helper()
	out, err := runOnceErr(network, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runOnceErr(network string, cmd ...string) (string, error) {
	return DockerErr(append([]string{"run", "--rm", "--network", network, Image}, cmd...)...)
}

// HTTPGet is the command to fetch url inside a container, giving up after
// 3 s. Debian's busybox-static wget has no working -T (it crashes), hence
// busybox timeout around it.
func HTTPGet(url string) []string {
	return []string{"timeout", "3", "wget", "-qO-", url}
}

// Ping1 sends one ping and waits at most 1 s for the answer.
func Ping1(addr string) []string {
	return []string{"ping", "-c1", "-W1", addr}
}

// sh wraps a script for a container command line.
func Sh(script string) []string { return []string{"sh", "-c", script} }

func ExecIn(t *testing.T, container string, cmd ...string) string {
	t.Helper()
	return Docker(t, append([]string{"exec", container}, cmd...)...)
}

func execInErr(container string, cmd ...string) (string, error) {
	return DockerErr(append([]string{"exec", container}, cmd...)...)
}

// ContainerIP returns the IPv4 address the engine recorded for container on
// network.
func ContainerIP(t *testing.T, container, network string) netip.Addr {
	t.Helper()
	out := Docker(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, container)
	a, err := netip.ParseAddr(out)
	if err != nil {
		t.Fatalf("%s on %s: address %q: %v", container, network, out, err)
	}
	return a
}

// NetworkSubnet returns the first IPAM subnet docker recorded for network.
func NetworkSubnet(t *testing.T, network string) netip.Prefix {
	t.Helper()
	out := Docker(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", network)
	fields := strings.Fields(out)
	if len(fields) == 0 {
		t.Fatalf("network %s has no subnet in inspect", network)
	}
	p, err := netip.ParsePrefix(fields[0])
	if err != nil {
		t.Fatalf("network %s subnet %q: %v", network, fields[0], err)
	}
	return p
}

func ContainerRunning(t *testing.T, container string) bool {
	t.Helper()
	out, err := DockerErr("inspect", "-f", "{{.State.Running}}", container)
	return err == nil && out == "true"
}

func MustContain(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%s: want %q in:\n%s", what, want, got)
	}
}

// MustFail checks that a docker command was refused, and refused by the
// engine or CLI rather than failing to reach the engine at all.
func MustFail(t *testing.T, what string, err error) string {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want an error", what)
	}
	if strings.Contains(err.Error(), "Cannot connect to the Docker daemon") || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s: the engine did not answer: %v", what, err)
	}
	t.Logf("%s failed as expected: %v", what, err)
	return err.Error()
}
