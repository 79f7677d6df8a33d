package firewall

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnableForwarding turns on IP forwarding for the address family of t,
// which bridge networks need to reach anything beyond their bridge. It
// writes the sysctl only if it is not already on, and logs when it changed
// it. Unlike dockerd, it leaves the FORWARD policy alone: setting it to DROP
// breaks other software on the host (libvirt, LXD), and mynet's own drops
// in MYNET-ISOLATION do not depend on the policy.
//
// The sysctl belongs to the network namespace of the calling thread.
func (t *IPTables) EnableForwarding() error {
	changed, err := enableSysctl(t.forwardingPath)
	if err != nil {
		return fmt.Errorf("enabling IP forwarding: %w", err)
	}
	if changed {
		t.log.WithField("sysctl", t.forwardingPath).Info("enabled IP forwarding")
	}
	return nil
}

// enableSysctl writes 1 to the sysctl file at path unless it already reads
// 1, and reports whether it wrote.
func enableSysctl(path string) (bool, error) {
	cur, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(string(cur)) == "1" {
		return false, nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// defaultProcSys is where sysctls live for a process with a writable
// /proc/sys (the bare binary on a host).
const defaultProcSys = "/proc/sys"

// Option configures New.
type Option func(*IPTables)

// ProcSys makes mynet write sysctls below dir instead of /proc/sys. A
// managed plugin's /proc/sys is read-only; its config.json bind-mounts the
// host's /proc/sys/net writable at /host/proc/sys/net. Which namespace's
// values such a mount shows is decided by the reading process's network
// namespace, so for a plugin on the host network it is the host's.
func ProcSys(dir string) Option {
	return func(t *IPTables) {
		t.procSys = dir
		t.forwardingPath = t.sysctlPath(forwardingKey(t.is4))
	}
}

// forwardingKey is the sysctl that turns on forwarding for a family. For
// IPv6 it is conf/all/forwarding, which also makes the host ignore router
// advertisements on interfaces whose accept_ra is 1, as Docker's does.
func forwardingKey(is4 bool) string {
	if is4 {
		return "net/ipv4/ip_forward"
	}
	return "net/ipv6/conf/all/forwarding"
}

// sysctlPath returns the file of the sysctl key, written with slashes
// ("net/ipv4/conf/BRIDGE/route_localnet"), under the configured root.
func (t *IPTables) sysctlPath(key string) string {
	root := t.procSys
	if root == "" {
		root = defaultProcSys
	}
	return filepath.Join(root, key)
}
