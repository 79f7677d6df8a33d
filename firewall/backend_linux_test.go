//go:build linux

package firewall

import (
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/nstest"
)

// TestSelectCommandFollowsDocker puts a Docker chain into one backend of a
// fresh namespace and expects New's choice to follow it.
func TestSelectCommandFollowsDocker(t *testing.T) {
	for _, cmd := range []string{cmdNFT, cmdLegacy} {
		t.Run(cmd, func(t *testing.T) {
			if _, err := exec.LookPath(cmd); err != nil {
				t.Skipf("%s not installed (apt-get install -y iptables): %v", cmd, err)
			}
			nstest.Run(t, func(*netlink.Handle) {
				if got := selectCommand(testLog()); got != cmdDefault {
					t.Errorf("empty namespace: selectCommand = %s, want %s", got, cmdDefault)
				}
				if out, err := exec.Command(cmd, "-t", "filter", "-N", "DOCKER-USER").CombinedOutput(); err != nil {
					t.Fatalf("%s -N DOCKER-USER: %v: %s", cmd, err, out)
				}
				if got := selectCommand(testLog()); got != cmd {
					t.Errorf("DOCKER-USER in %s: selectCommand = %s", cmd, got)
				}
				ipt, err := New(testLog())
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				want := map[string]string{cmdNFT: BackendNFTables, cmdLegacy: BackendLegacy}[cmd]
				if ipt.Backend() != want {
					t.Errorf("New drives %s, want %s", ipt.Backend(), want)
				}
			})
		})
	}
}
