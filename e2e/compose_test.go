//go:build e2e

package e2e

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// composeProject is the compose project of TestCompose; its network is
// <project>_front with both tools.
const composeProject = "mynete2e"

// composeFile uses mynet:latest as driver and IPAM driver, with a driver
// option, a subnet and gateway, and a fixed address for one service. File
// format 2.4 is the newest that docker-compose 1.x (Debian's) knows with
// ipam gateways; compose v2 reads it too.
const composeFile = `version: "2.4"
services:
  web:
    image: ` + harness.Image + `
    command: ["httpd", "-f", "-p", "80", "-h", "/var/www"]
    stop_grace_period: 1s
    ports: ["18900:80"]
    networks:
      front:
        ipv4_address: 10.80.0.10
  client:
    image: ` + harness.Image + `
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    networks: [front]
networks:
  front:
    driver: mynet:latest
    driver_opts:
      com.docker.network.driver.mtu: "1400"
    ipam:
      driver: mynet:latest
      config:
        - subnet: 10.80.0.0/24
          gateway: 10.80.0.1
`

// composeTool is one way to run compose: Debian's docker-compose, or the
// docker CLI's compose plugin.
type composeTool struct {
	name string
	argv []string
}

// TestCompose: `up` with a compose file naming mynet:latest creates the
// network through the managed plugin with the driver option, the subnet and
// the fixed address; services reach each other by name and the outside
// through NAT, and the published port answers; `down` leaves nothing
// behind. Run with Debian's
// docker-compose (installed if missing) and with `docker compose` where
// the CLI has it.
func TestCompose(t *testing.T) {
	harness.UseManaged(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(composeFile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tool := range composeTools(t) {
		t.Run(tool.name, func(t *testing.T) {
			if tool.argv == nil {
				t.Skipf("%s is not available here", tool.name)
			}
			composeScenario(t, tool, file)
		})
	}
}

func composeTools(t *testing.T) []composeTool {
	t.Helper()
	v1 := composeTool{name: "docker-compose"}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		v1.argv = []string{p}
	} else if err := harness.AptInstall("docker-compose"); err != nil {
		t.Errorf("installing docker-compose: %v", err)
	} else if p, err := exec.LookPath("docker-compose"); err == nil {
		v1.argv = []string{p}
	}
	v2 := composeTool{name: "docker compose"}
	if _, err := harness.DockerErr("compose", "version"); err != nil {
		if err := installComposePlugin(harness.Shared().Layout); err != nil {
			t.Logf("no docker compose plugin: %v", err)
		}
	}
	if out, err := harness.DockerErr("compose", "version"); err == nil {
		v2.argv = []string{harness.CLIPath(), "-H", harness.Shared().Layout.DockerHost(), "compose"}
		t.Logf("%s", out)
	}
	return []composeTool{v1, v2}
}

// installComposePlugin makes `docker compose` available to the private
// CLI configuration when the machine has no compose plugin: Debian
// bookworm has only docker-compose 1.x, so compose v2 comes from Debian
// unstable's docker-compose package (a Go binary that runs on bookworm),
// unpacked once into the cache and linked into DOCKER_CONFIG/cli-plugins.
func installComposePlugin(l harness.Layout) error {
	bin, err := harness.UnpackedUnstable("compose-v2", "usr/libexec/docker/cli-plugins/docker-compose", "docker-compose")
	if err != nil {
		return err
	}
	dir := filepath.Join(l.CLIConfig, "cli-plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	link := filepath.Join(dir, "docker-compose")
	_ = os.Remove(link)
	return os.Symlink(bin, link)
}

// compose runs the tool on the file against the private engine.
func compose(t *testing.T, tool composeTool, file string, args ...string) string {
	t.Helper()
	argv := append(append(append([]string{}, tool.argv...), "-f", file, "-p", composeProject), args...)
	out, err := harness.Run(harness.DockerTimeout, harness.CLIEnviron(harness.Shared().Layout), argv...)
	if err != nil {
		t.Fatalf("%s: %v", tool.name, err)
	}
	return out
}

func composeScenario(t *testing.T, tool composeTool, file string) {
	const (
		net    = composeProject + "_front"
		gwCIDR = "10.80.0.1/24"
		webIP  = "10.80.0.10"
	)
	subnet := netip.MustParsePrefix("10.80.0.0/24")
	down := func() { compose(t, tool, file, "down", "--timeout", "1") }
	t.Cleanup(func() {
		if t.Failed() {
			harness.DumpKernelOnFailure(t)
			if _, err := harness.Run(harness.DockerTimeout, harness.CLIEnviron(harness.Shared().Layout), append(append(append([]string{}, tool.argv...), "-f", file, "-p", composeProject), "down", "--timeout", "1")...); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	start := time.Now()
	compose(t, tool, file, "up", "-d")
	t.Logf("%s up took %v", tool.name, time.Since(start).Round(time.Millisecond))

	got := harness.Docker(t, "network", "inspect", "-f", "{{.Driver}} {{.IPAM.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", net)
	if want := "mynet:latest mynet:latest 10.80.0.0/24"; got != want {
		t.Errorf("network %s: driver, IPAM driver, subnet = %q, want %q", net, got, want)
	}
	web, client := serviceContainer(t, "web"), serviceContainer(t, "client")
	if ip := harness.ContainerIP(t, web, net); ip.String() != webIP {
		t.Errorf("web has %v, want the ipv4_address %s", ip, webIP)
	}
	if mtu := harness.ExecIn(t, client, "cat", "/sys/class/net/eth0/mtu"); mtu != "1400" {
		t.Errorf("client eth0 MTU %s, want 1400 from driver_opts", mtu)
	}
	harness.MustContain(t, "web by service name", harness.ExecIn(t, client, harness.HTTPGet("http://web/")...), harness.WebPage)
	harness.MustContain(t, "ext page through NAT", harness.ExecIn(t, client, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
	// The published port, from outside and from the host's loopback (the
	// latter needs route_localnet, written through the plugin's /proc/sys/net
	// mount).
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18900/", harness.WebPage)
	portsMustFetch(t, harness.EngineNS(), "http://127.0.0.1:18900/", harness.WebPage)
	br := harness.BridgeWithAddr(t, gwCIDR)
	if br == "" {
		t.Fatalf("no bridge with %s", gwCIDR)
	}
	if got := harness.InEngine(t, "cat", "/proc/sys/net/ipv4/conf/"+br+"/route_localnet"); got != "1" {
		t.Errorf("route_localnet on %s is %s, want 1 (set by the plugin through its /proc/sys/net mount)", br, got)
	}

	down()
	if left := harness.Docker(t, "ps", "-aq", "--filter", "label=com.docker.compose.project="+composeProject); left != "" {
		t.Errorf("containers left after down: %s", left)
	}
	if _, err := harness.DockerErr("network", "inspect", net); err == nil {
		t.Errorf("network %s left after down", net)
	}
	harness.AssertNetworkGone(t, br, gwCIDR, subnet)
	portsMustNotFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18900/")
}

// serviceContainer returns the id of the one container of a service of
// the compose project.
func serviceContainer(t *testing.T, service string) string {
	t.Helper()
	ids := strings.Fields(harness.Docker(t, "ps", "-q", "--filter", "label=com.docker.compose.project="+composeProject,
		"--filter", "label=com.docker.compose.service="+service))
	if len(ids) != 1 {
		t.Fatalf("service %s: containers %v, want one", service, ids)
	}
	return ids[0]
}
