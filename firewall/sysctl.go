package firewall

import (
	"fmt"
	"os"
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
