//go:build e2e

package harness

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Container commands of the test image. Both run as PID 1, which ignores
// SIGTERM, so containers get --stop-timeout 1: engine stops and restarts
// do not wait 10 s for each.
var (
	HTTPDCmd = []string{"httpd", "-f", "-p", "80", "-h", "/var/www"}
	SleepCmd = []string{"sleep", "3600"}
)

// StartWeb runs a detached busybox httpd serving WebPage on port 80.
func StartWeb(t *testing.T, name, network string, opts ...string) {
	t.Helper()
	RunDetached(t, name, ContainerArgs(network, opts, HTTPDCmd)...)
}

// StartSleeper runs a detached container that only sleeps, for exec.
func StartSleeper(t *testing.T, name, network string, opts ...string) {
	t.Helper()
	RunDetached(t, name, ContainerArgs(network, opts, SleepCmd)...)
}

// StartSleeperErr is StartSleeper for a start that is expected to fail.
func StartSleeperErr(t *testing.T, name, network string, opts ...string) error {
	t.Helper()
	return runDetachedErr(t, name, ContainerArgs(network, opts, SleepCmd)...)
}

func ContainerArgs(network string, opts, cmd []string) []string {
	args := append([]string{"--network", network, "--stop-timeout", "1"}, opts...)
	return append(append(args, Image), cmd...)
}

// CreateMynetErr tries to create a mynet network that should be refused; if
// it is created after all, the test's cleanup removes it.
func CreateMynetErr(t *testing.T, name string, args ...string) error {
	t.Helper()
	t.Cleanup(func() { CleanupCmd(t, "network", "rm", name) })
	p := env.Plugin()
	_, err := DockerErr(append(append([]string{"network", "create", "-d", p, "--ipam-driver", p}, args...), name)...)
	return err
}

// IfaceAddr returns the IPv4 address with prefix on a container's interface,
// as the container itself sees it.
func IfaceAddr(t *testing.T, container, iface string) netip.Prefix {
	t.Helper()
	out := ExecIn(t, container, "ip", "-4", "-o", "addr", "show", "dev", iface)
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil {
			return p
		}
	}
	t.Fatalf("%s: no IPv4 address on %s:\n%s", container, iface, out)
	return netip.Prefix{}
}

func ContainsAny(s string, subs ...string) bool {
	s = strings.ToLower(s)
	for _, sub := range subs {
		if strings.Contains(s, strings.ToLower(sub)) {
			return true
		}
	}
	return false
}

// probe reports, from inside container, whether addr answers one ping
// (1 s) and serves the web page (3 s). Both results come back as the
// output of one exec that itself must succeed: a failed exec (engine gone,
// container stopped) fails the test rather than passing for isolation.
func probe(t *testing.T, container, addr string) (pinged, fetched bool) {
	t.Helper()
	script := fmt.Sprintf(`ping -c1 -W1 %[1]s >/dev/null 2>&1; echo ping=$?; `+
		`timeout 3 wget -qO- http://%[1]s/ 2>/dev/null | grep -q %[2]q; echo wget=$?`, addr, WebPage)
	out := ExecIn(t, container, Sh(script)...)
	if !strings.Contains(out, "ping=") || !strings.Contains(out, "wget=") {
		t.Fatalf("probe from %s to %s: unexpected output %q", container, addr, out)
	}
	return strings.Contains(out, "ping=0"), strings.Contains(out, "wget=0")
}

// reachWait bounds how long a check that must pass is retried: one ping
// of 1 s or a fetch can miss on a loaded machine (a neighbour not yet
// resolved, a server not yet scheduled). Checks that must be blocked run
// once.
const reachWait = 30 * time.Second

// MustReach checks that container can ping addr and fetch its web page.
func MustReach(t *testing.T, container, addr string) {
	t.Helper()
	var pinged, fetched bool
	_ = WaitFor(reachWait, 500*time.Millisecond, func() error {
		if pinged, fetched = probe(t, container, addr); pinged && fetched {
			return nil
		}
		return ErrNotYet
	})
	if !pinged || !fetched {
		t.Errorf("%s -> %s: ping ok=%v, http ok=%v; want both (tried for %v)", container, addr, pinged, fetched, reachWait)
	}
}

// MustNotReach checks that container can neither ping addr nor fetch a page
// from it.
func MustNotReach(t *testing.T, container, addr string) {
	t.Helper()
	if pinged, fetched := probe(t, container, addr); pinged || fetched {
		t.Errorf("%s -> %s: ping ok=%v, http ok=%v; want both blocked", container, addr, pinged, fetched)
	}
}

// HasLink reports whether container has an interface named name, from the
// container's own `ip -o link` (which must run).
func HasLink(t *testing.T, container, name string) bool {
	t.Helper()
	for _, line := range strings.Split(ExecIn(t, container, "ip", "-o", "link", "show"), "\n") {
		// "3: eth1@if12: <BROADCAST,...": the name is the second field, up to '@' or ':'.
		fields := strings.Fields(line)
		if len(fields) > 1 && strings.TrimRight(strings.SplitN(fields[1], "@", 2)[0], ":") == name {
			return true
		}
	}
	return false
}
