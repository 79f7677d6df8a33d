//go:build e2e

package harness

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// createNamespaces builds the two-namespace world:
//
//	engine ns (dockerd, mynet)  ext0 198.18.0.1/30 ──veth── eng0 198.18.0.2/30  ext ns
//	default route via 198.18.0.2                             no route back to container subnets
//
// The veth is created inside the engine namespace with its peer placed
// straight into the ext namespace, so it never appears on the host. The ext
// namespace has no route to any container subnet: a container that reaches
// it can only have done so through masquerade in the engine namespace.
func createNamespaces(l Layout) error {
	eng, ext := l.EngineNS, l.ExtNS
	cidr := func(a string) string { return fmt.Sprintf("%s/%d", a, linkPrefix) }
	cmds := [][]string{
		{"ip", "netns", "add", eng},
		{"ip", "netns", "add", ext},
		{"ip", "-n", eng, "link", "set", "lo", "up"},
		{"ip", "-n", ext, "link", "set", "lo", "up"},
		{"ip", "-n", eng, "link", "add", EngineLink, "type", "veth", "peer", "name", extLink, "netns", ext},
		{"ip", "-n", eng, "addr", "add", cidr(EngineAddr), "dev", EngineLink},
		{"ip", "-n", ext, "addr", "add", cidr(ExtAddr), "dev", extLink},
		{"ip", "-n", eng, "link", "set", EngineLink, "up"},
		{"ip", "-n", ext, "link", "set", extLink, "up"},
		{"ip", "-n", eng, "route", "add", "default", "via", ExtAddr},
	}
	for _, c := range cmds {
		if _, err := Run(10*time.Second, nil, c...); err != nil {
			return err
		}
	}
	return nil
}

// deleteNamespace removes a named netns; its links (the veth pair) go with
// its last reference. A namespace that does not exist is already deleted.
func deleteNamespace(name string) error {
	path := netnsDir + "/" + name
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	if _, err := Run(10*time.Second, nil, "ip", "netns", "del", name); err == nil {
		return nil
	}
	// `ip netns del` refuses when the bind mount is gone but the file is
	// not (a crash between the two); finish its job by hand.
	_ = syscall.Unmount(path, syscall.MNT_DETACH)
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing netns %s: %w", name, err)
	}
	return nil
}

// InNS runs argv inside a named network namespace. nsenter --net switches
// only the network namespace: unlike `ip netns exec`, it does not remount
// /sys, so cgroups and everything else stay as the host sees them.
func InNS(ns string, timeout time.Duration, argv ...string) (string, error) {
	full := append([]string{"nsenter", "--net=" + netnsDir + "/" + ns}, argv...)
	return Run(timeout, nil, full...)
}

// InEngine runs a command in the engine namespace (the private engine's
// "host"), e.g. `ip -d link` or `iptables-save`, and fails t on error.
func InEngine(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := InEngineErr(argv...)
	if err != nil {
		t.Fatalf("in engine netns: %v", err)
	}
	return out
}

func InEngineErr(argv ...string) (string, error) {
	return InNS(env.Layout.EngineNS, 30*time.Second, argv...)
}

// InExt runs a command in the ext namespace ("the outside world").
func InExt(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := InNS(env.Layout.ExtNS, 30*time.Second, argv...)
	if err != nil {
		t.Fatalf("in ext netns: %v", err)
	}
	return out
}

// startExtServer serves WWWDir on 198.18.0.2:8080 in the ext namespace with
// busybox httpd, and waits until the engine namespace can fetch the page.
func startExtServer(l Layout) (*proc, error) {
	if err := os.WriteFile(l.WWWDir+"/index.html", []byte(ExtPage+"\n"), 0o644); err != nil {
		return nil, err
	}
	p, err := StartLogged("ext httpd", l.LogDir+"/ext-httpd.log", nil, syscall.SIGKILL,
		"nsenter", "--net="+l.NSPath(l.ExtNS), HostBusybox, "httpd", "-f", "-v",
		"-p", ExtAddr+":"+extPort, "-h", l.WWWDir)
	if err != nil {
		return nil, err
	}
	// Debian's busybox-static wget has no -T (the option makes it crash), so
	// timeouts come from busybox timeout around it, here and in containers.
	err = WaitFor(60*time.Second, 100*time.Millisecond, func() error {
		if p.Exited() {
			return fmt.Errorf("ext httpd exited: %v", p.Err)
		}
		out, err := InNS(l.EngineNS, 5*time.Second, HostBusybox, "timeout", "2", HostBusybox, "wget", "-qO-", ExtURL)
		if err != nil {
			return err
		}
		if !strings.Contains(out, ExtPage) {
			return fmt.Errorf("ext page: got %q", out)
		}
		return nil
	})
	if err != nil {
		_ = p.Stop(syscall.SIGKILL, time.Second)
		return nil, err
	}
	return p, nil
}
