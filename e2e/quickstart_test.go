//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// quickstartHarnessSteps are the Quickstart lines the harness does itself:
// it builds mynet from this tree and runs it, under the run's own plugin
// name, instead of installing it on the host and running it as "mynet"
// (whose socket every engine on the machine would see). A new line that is
// not a docker command fails the test, so the README cannot gain a step
// this test silently skips.
var quickstartHarnessSteps = map[string]bool{
	"make build install-bin": true,
	"mynet &":                true,
}

var (
	// mynetDriverFlag is a driver or IPAM option naming the plugin "mynet".
	mynetDriverFlag = regexp.MustCompile(`(-d|--driver|--ipam-driver) mynet\b`)
	// quotedExpect is a trailing comment that starts with the expected
	// output in double quotes: `# "hello from web": ...`.
	quotedExpect = regexp.MustCompile(`#\s*"([^"]+)"`)
)

// TestQuickstart runs the README's Quickstart block as written against the
// private engine, with the locally built mynet and the offline image tagged
// busybox:latest (as the README's offline recipe would have it). A line
// whose comment begins with a quoted string must print it; a line that
// says it needs the host to be online may fail (the test namespaces have no
// way out); every other line must succeed.
func TestQuickstart(t *testing.T) {
	plugin := harness.UsePlugin(t)
	cmds, err := harness.ReadmeCommands("## Quickstart")
	if err != nil {
		t.Fatal(err)
	}
	harness.Docker(t, "tag", harness.Image, "busybox:latest")
	t.Cleanup(func() { harness.CleanupCmd(t, "rmi", "busybox:latest") })
	// The names the block uses; removed whatever happens to the block.
	t.Cleanup(func() { harness.CleanupCmd(t, "network", "rm", "n1") })
	t.Cleanup(func() { harness.CleanupCmd(t, "rm", "-f", "web") })

	ran := 0
	for _, line := range cmds {
		cmd, _, _ := strings.Cut(line, "#")
		cmd = strings.TrimSpace(cmd)
		if quickstartHarnessSteps[cmd] {
			continue
		}
		if !strings.HasPrefix(cmd, "docker ") {
			t.Fatalf("README Quickstart has a step this test does not know how to run: %q", line)
		}
		ran++
		cmd = mynetDriverFlag.ReplaceAllString(cmd, "$1 "+plugin)
		if strings.Contains(line, "if the host is online") {
			out, err := harness.Shared().RunReadmeCommand(cmd, 2*time.Minute)
			t.Logf("%s: %q, err %v (may fail: the test namespaces are offline)", cmd, out, err)
			continue
		}
		m := quotedExpect.FindStringSubmatch(line)
		if m == nil {
			if _, err := harness.Shared().RunReadmeCommand(cmd, 2*time.Minute); err != nil {
				t.Fatalf("README Quickstart line %q: %v", line, err)
			}
			t.Logf("%s: ok", cmd)
			continue
		}
		// A fetch right after `docker run -d` may beat the server's
		// listen on a loaded machine: ask again for a while, as a user would.
		var out string
		err := harness.WaitFor(30*time.Second, 500*time.Millisecond, func() error {
			var err error
			out, err = harness.Shared().RunReadmeCommand(cmd, 2*time.Minute)
			if err == nil && !strings.Contains(out, m[1]) {
				err = fmt.Errorf("output %q has no %q", out, m[1])
			}
			return err
		})
		if err != nil {
			t.Fatalf("README Quickstart line %q: %v", line, err)
		}
		t.Logf("%s: %q", cmd, out)
	}
	if ran < 3 {
		t.Fatalf("README Quickstart: only %d docker commands found in %q", ran, cmds)
	}
	if out := harness.Docker(t, "network", "ls", "-q", "--filter", "name=^n1$"); out != "" {
		t.Errorf("network n1 still exists after the Quickstart's last line: %s", out)
	}
}
