//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// TestManagedInstall: the README's set-up command builds the plugin folder
// and installs mynet:latest into the engine; the engine starts it from
// config.json (no /Plugin.Activate), and mynet picks the iptables backend
// holding the engine's Docker chains.
func TestManagedInstall(t *testing.T) {
	name := harness.UseManaged(t)
	id := harness.ManagedID(t)
	if id == "" {
		t.Fatalf("%s not installed", name)
	}
	var cfg struct {
		Enabled bool
		Config  struct {
			Interface struct {
				Types  []string
				Socket string
			}
			Network struct{ Type string }
			Linux   struct{ Capabilities []string }
		}
		Settings struct {
			Env    []string
			Mounts []struct{ Name, Source, Destination string }
		}
	}
	out := harness.Docker(t, "plugin", "inspect", "-f", "{{json .}}", name)
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("plugin inspect: %v\n%s", err, out)
	}
	if !cfg.Enabled {
		t.Errorf("%s is not enabled", name)
	}
	if got := strings.Join(cfg.Config.Interface.Types, ","); got != "docker.networkdriver/1.0,docker.ipamdriver/1.0" {
		t.Errorf("interface types %s", got)
	}
	if got := strings.Join(cfg.Config.Linux.Capabilities, ","); got != "CAP_NET_ADMIN" {
		t.Errorf("capabilities %s, want CAP_NET_ADMIN only", got)
	}
	stateMounted := false
	for _, m := range cfg.Settings.Mounts {
		if m.Name == "state" && m.Source == harness.Shared().Layout.ManagedStateDir() && m.Destination == "/var/lib/mynet" {
			stateMounted = true
		}
	}
	if !stateMounted {
		t.Errorf("state mount not set to %s: %+v", harness.Shared().Layout.ManagedStateDir(), cfg.Settings.Mounts)
	}

	harness.ManagedSettled(t, id, 0, "mynet serving")
	log := harness.ManagedLog(id)
	harness.MustContain(t, "plugin log: backend choice", log, "iptables backend selected")
	harness.MustContain(t, "plugin log: backend follows Docker", log, "Docker's chains are in nf_tables")
	if _, err := os.Stat(filepath.Join(harness.Shared().Layout.ManagedStateDir(), "state.db")); err != nil {
		t.Errorf("state.db not in the host state directory: %v", err)
	}
	t.Logf("plugin %s; log:\n%s", harness.Short(id), harness.TailString(log, 10))
}

// TestManagedFoundation runs the foundation scenarios against the managed
// plugin: the user story (DNS, NAT, cleanup), static addresses and
// isolation between networks.
func TestManagedFoundation(t *testing.T) {
	harness.WithManagedDriver(t)
	t.Run("UserStory", TestUserStory)
	t.Run("StaticIP", TestStaticIP)
	t.Run("Isolation", TestIsolation)
}

// TestManagedForwarding: with IP forwarding off in the engine's namespace,
// creating a network through the managed plugin turns it on, through the
// host /proc/sys/net mount (the plugin's own /proc/sys is read-only), and
// containers reach the outside.
func TestManagedForwarding(t *testing.T) {
	harness.WithManagedDriver(t)
	id := harness.ManagedID(t)
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	t.Cleanup(func() { _, _ = harness.InEngineErr("sh", "-c", "echo 1 > "+fwd) })
	harness.InEngine(t, "sh", "-c", "echo 0 > "+fwd)
	off := harness.FileSize(harness.Shared().Layout.DockerdLog())

	harness.CreateMynet(t, "mynet-e2e-mfwd", "--subnet", "10.75.0.0/24")
	if got := harness.InEngine(t, "cat", fwd); got != "1" {
		t.Fatalf("ip_forward in the engine namespace is %q after a network was created, want 1", got)
	}
	harness.MustContain(t, "plugin log", harness.ManagedLogSince(id, off), "enabled IP forwarding")
	harness.MustContain(t, "plugin log: sysctl path", harness.ManagedLogSince(id, off), "/host/proc/sys/net/ipv4/ip_forward")
	harness.MustContain(t, "ext page through NAT", harness.RunOnce(t, "mynet-e2e-mfwd", harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)
}

// TestManagedLogLevel: `docker plugin set mynet:latest LOG_LEVEL=debug`
// (refused while enabled, accepted while disabled) makes the plugin log at
// debug level after enable; the engine's log carries it tagged with the
// plugin id.
func TestManagedLogLevel(t *testing.T) {
	harness.WithManagedDriver(t)
	id := harness.ManagedID(t)
	if strings.Contains(harness.ManagedLog(id), "level=debug") {
		t.Fatalf("debug lines from the plugin at the default level:\n%s", harness.TailString(harness.ManagedLog(id), 20))
	}
	harness.MustFail(t, "plugin set while enabled", dockerErrOnly("plugin", "set", harness.ManagedName, "LOG_LEVEL=debug"))

	// Registered first, so it runs after the network below is removed
	// (disable refuses while a network uses the plugin).
	t.Cleanup(func() { setManagedEnv(t, "LOG_LEVEL=info") })
	off := harness.FileSize(harness.Shared().Layout.DockerdLog())
	setManagedEnv(t, "LOG_LEVEL=debug")
	harness.ManagedSettled(t, id, off, "mynet serving")
	if got := harness.Docker(t, "plugin", "inspect", "-f", "{{.Settings.Env}}", harness.ManagedName); !strings.Contains(got, "LOG_LEVEL=debug") {
		t.Errorf("plugin settings: %s", got)
	}
	harness.CreateMynet(t, "mynet-e2e-mlog", "--subnet", "10.76.0.0/24")
	log := harness.ManagedLogSince(id, off)
	harness.MustContain(t, "plugin log after LOG_LEVEL=debug", log, "level=debug")
	t.Logf("debug lines, e.g.:\n%s", firstLinesWith(log, "level=debug", 3))
}

// setManagedEnv disables the plugin, sets env settings and enables it.
func setManagedEnv(t *testing.T, settings ...string) {
	t.Helper()
	harness.Docker(t, "plugin", "disable", harness.ManagedName)
	harness.Docker(t, append([]string{"plugin", "set", harness.ManagedName}, settings...)...)
	harness.Docker(t, "plugin", "enable", harness.ManagedName)
}

func dockerErrOnly(args ...string) error {
	_, err := harness.DockerErr(args...)
	return err
}

func firstLinesWith(text, sub string, n int) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestManagedDisableEnable: disable is refused while a network uses the
// plugin; disable -f works, the running containers keep their network, and
// after enable the network, its containers and its allocations are all
// still there and new containers join.
func TestManagedDisableEnable(t *testing.T) {
	harness.WithManagedDriver(t)
	const (
		net = "mynet-e2e-mdis"
		web = "e2e-mdis-web"
		cli = "e2e-mdis-cli"
	)
	harness.CreateMynet(t, net, "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.1")
	harness.StartWeb(t, web, net, "--ip", "10.77.0.10", "-p", "18912:80")
	harness.StartSleeper(t, cli, net)
	cliIP := harness.ContainerIP(t, cli, net)

	msg := harness.MustFail(t, "plugin disable with a network", dockerErrOnly("plugin", "disable", harness.ManagedName))
	if !harness.ContainsAny(msg, "in use") {
		t.Errorf("disable refused, but not as in use: %s", msg)
	}
	harness.Docker(t, "plugin", "disable", "-f", harness.ManagedName)
	t.Cleanup(func() { ensureManagedEnabled(t) }) // before the network's removal
	harness.MustReach(t, cli, "10.77.0.10")       // kernel state stays without the plugin

	off := harness.FileSize(harness.Shared().Layout.DockerdLog())
	harness.Docker(t, "plugin", "enable", harness.ManagedName)
	harness.ManagedSettled(t, harness.ManagedID(t), off, "mynet serving")
	checkNetworkKept(t, net, "10.77.0.1/24", web, "10.77.0.10", cli, cliIP.String(), "e2e-mdis-new")
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18912/", harness.WebPage)
}

func ensureManagedEnabled(t *testing.T) {
	if out, _ := harness.DockerErr("plugin", "inspect", "-f", "{{.Enabled}}", harness.ManagedName); out == "false" {
		if _, err := harness.DockerErr("plugin", "enable", harness.ManagedName); err != nil {
			t.Errorf("re-enabling %s: %v", harness.ManagedName, err)
		}
	}
}

// checkNetworkKept checks, after the plugin went away and came back, that
// web (at webIP) and cli (at cliIP) still talk, by address and by name;
// that webIP is still allocated (a second --ip for it is refused); that a
// new container gets an address of its own and reaches web; and that
// removing cli removes its veth (mynet still knows the endpoint).
func checkNetworkKept(t *testing.T, net, gwCIDR, web, webIP, cli, cliIP, newName string) {
	t.Helper()
	harness.MustReach(t, cli, webIP)
	harness.MustContain(t, "web by name", harness.ExecIn(t, cli, harness.HTTPGet("http://"+web+"/")...), harness.WebPage)
	msg := harness.MustFail(t, "second container asking for "+webIP, harness.StartSleeperErr(t, newName+"-dup", net, "--ip", webIP))
	if !harness.ContainsAny(msg, "in use") {
		t.Errorf("--ip %s: want it refused as in use, got: %s", webIP, msg)
	}
	harness.StartSleeper(t, newName, net)
	newIP := harness.ContainerIP(t, newName, net).String()
	if newIP == webIP || newIP == cliIP {
		t.Fatalf("%s got %s, already held (web %s, cli %s)", newName, newIP, webIP, cliIP)
	}
	harness.MustReach(t, newName, webIP)

	br := harness.BridgeWithAddr(t, gwCIDR)
	if br == "" {
		t.Fatalf("no bridge with %s", gwCIDR)
	}
	before := len(harness.PortsOf(t, br))
	harness.Docker(t, "rm", "-f", cli)
	if after := len(harness.PortsOf(t, br)); after != before-1 {
		t.Errorf("bridge %s had %d ports, %d after removing %s; want one fewer", br, before, after, cli)
	}
}

// TestManagedUpgrade: upgrading to a second build, the README's way (the
// set-up command run again: disable -f, rm, create from the new folder,
// enable), keeps networks, endpoints, allocations and published ports.
func TestManagedUpgrade(t *testing.T) {
	harness.WithManagedDriver(t)
	const (
		net = "mynet-e2e-mupg"
		web = "e2e-mupg-web"
		cli = "e2e-mupg-cli"
	)
	harness.CreateMynet(t, net, "--subnet", "10.78.0.0/24", "--gateway", "10.78.0.1")
	harness.StartWeb(t, web, net, "--ip", "10.78.0.10", "-p", "18910:80")
	harness.StartSleeper(t, cli, net)
	cliIP := harness.ContainerIP(t, cli, net)
	id1 := harness.ManagedID(t)

	t.Cleanup(func() { ensureManagedEnabled(t) })
	if err := harness.Shared().InstallManaged(harness.Shared().Layout.ManagedBuildDir(2)); err != nil {
		t.Fatal(err)
	}
	id2 := harness.ManagedID(t)
	if id2 == "" || id2 == id1 {
		t.Fatalf("plugin id %q after the upgrade, was %q: want a new plugin", harness.Short(id2), harness.Short(id1))
	}
	harness.ManagedSettled(t, id2, 0, "mynet serving")
	harness.MustContain(t, "new plugin's log", harness.ManagedLog(id2), "ipam state loaded")
	checkNetworkKept(t, net, "10.78.0.1/24", web, "10.78.0.10", cli, cliIP.String(), "e2e-mupg-new")
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18910/", harness.WebPage)
}

// TestManagedEngineRestart: dockerd stops (stopping the containers, which
// deletes their endpoints) and starts again, restarting the plugin: the
// --restart always container comes back with working networking, a
// container that was running without a restart policy leaves no endpoint
// behind, and no address is handed out twice.
func TestManagedEngineRestart(t *testing.T) {
	harness.WithManagedDriver(t)
	const (
		net  = "mynet-e2e-mrst"
		web  = "e2e-mrst-web"
		once = "e2e-mrst-once"
	)
	harness.CreateMynet(t, net, "--subnet", "10.79.0.0/24", "--gateway", "10.79.0.1")
	harness.StartWeb(t, web, net, "--restart", "always")
	harness.StartSleeper(t, once, net)
	onceIP := harness.ContainerIP(t, once, net)
	br := harness.BridgeWithAddr(t, "10.79.0.1/24")
	id := harness.ManagedID(t)
	off := harness.FileSize(harness.Shared().Layout.DockerdLog())

	harness.Shared().RestartEngine(t)
	if err := harness.WaitFor(90*time.Second, 200*time.Millisecond, func() error {
		if !harness.ContainerRunning(t, web) {
			return harness.ErrNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("%s not running after the engine restart: %v", web, err)
	}
	harness.ManagedSettled(t, id, off, "mynet serving")
	if harness.ContainerRunning(t, once) {
		t.Fatalf("%s (no restart policy) is running after the engine restart", once)
	}
	webIP := harness.ContainerIP(t, web, net)
	if got := harness.IfaceAddr(t, web, "eth0").Addr(); got != webIP {
		t.Errorf("%s: eth0 has %v, engine recorded %v", web, got, webIP)
	}
	if ports := harness.PortsOf(t, br); len(ports) != 1 {
		t.Errorf("bridge %s has %d ports after the restart, want 1 (%s only): stale endpoints", br, len(ports), web)
	}
	harness.MustContain(t, "web by name after restart", harness.RunOnce(t, net, harness.HTTPGet("http://"+web+"/")...), harness.WebPage)
	harness.MustContain(t, "ext page from the restarted container", harness.ExecIn(t, web, harness.HTTPGet(harness.ExtURL)...), harness.ExtPage)

	harness.StartSleeper(t, "e2e-mrst-new", net)
	newIP := harness.ContainerIP(t, "e2e-mrst-new", net)
	harness.Docker(t, "start", once)
	onceIP2 := harness.ContainerIP(t, once, net)
	seen := map[string]string{webIP.String(): web}
	for name, ip := range map[string]string{"e2e-mrst-new": newIP.String(), once: onceIP2.String()} {
		if other, dup := seen[ip]; dup {
			t.Errorf("%s and %s both have %s", name, other, ip)
		}
		seen[ip] = name
	}
	harness.MustReach(t, once, webIP.String())
	t.Logf("%s had %v before the restart, %v after", once, onceIP, onceIP2)
}

// registryAddr is where TestManagedUpgradeRegistry serves a private
// registry: loopback of the engine namespace, which the engine treats as an
// insecure (plain HTTP) registry by default.
const registryAddr = "127.0.0.1:5000"

// TestManagedUpgradeRegistry: the real `docker plugin upgrade`, which needs
// a registry reference. A second build is pushed to a registry (Debian's
// docker-registry, run in the engine namespace) and mynet:latest is
// upgraded to it in place: same plugin id, new rootfs; networks, endpoints
// and allocations are kept.
func TestManagedUpgradeRegistry(t *testing.T) {
	harness.WithManagedDriver(t)
	startRegistry(t)
	const (
		net = "mynet-e2e-mreg"
		web = "e2e-mreg-web"
		cli = "e2e-mreg-cli"
		ref = registryAddr + "/mynet:v2"
	)
	harness.CreateMynet(t, net, "--subnet", "10.81.0.0/24", "--gateway", "10.81.0.1")
	harness.StartWeb(t, web, net, "--ip", "10.81.0.10", "-p", "18911:80")
	harness.StartSleeper(t, cli, net)
	cliIP := harness.ContainerIP(t, cli, net)
	id := harness.ManagedID(t)

	build := harness.Shared().Layout.ManagedBuildDir(3)
	if err := harness.Shared().BuildPluginFolder(build); err != nil {
		t.Fatal(err)
	}
	// A marker in the second build's rootfs shows that the upgrade really
	// replaced the plugin's rootfs.
	marker := filepath.Join("etc", "mynet-e2e-build")
	if err := os.WriteFile(filepath.Join(build, "rootfs", marker), []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	harness.Docker(t, "plugin", "create", ref, build)
	harness.Docker(t, "plugin", "push", ref)
	harness.Docker(t, "plugin", "rm", ref)

	t.Cleanup(func() { ensureManagedEnabled(t) })
	harness.Docker(t, "plugin", "disable", "-f", harness.ManagedName)
	// --skip-remote-check: the plugin was created locally, so its reference
	// (mynet:latest) is not the registry's; without the flag the CLI asks
	// "Plugin images do not match, are you sure?" and, with no terminal,
	// cancels the upgrade but still exits 0.
	t.Log(harness.Docker(t, "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", harness.ManagedName, ref))
	// Engine quirk (20.10 and 28.5): after an upgrade, inspect still shows
	// the state mount's source as set, but the plugin runs with the new
	// config.json's default (/var/lib/mynet): `plugin set` writes mount
	// sources through pointers shared by the settings and the config, and
	// the upgrade replaces the config. Setting it again fixes that.
	harness.Docker(t, "plugin", "set", harness.ManagedName, "state.source="+harness.Shared().Layout.ManagedStateDir())
	off := harness.FileSize(harness.Shared().Layout.DockerdLog())
	harness.Docker(t, "plugin", "enable", harness.ManagedName)
	if got := harness.ManagedID(t); got != id {
		t.Errorf("plugin id %s after upgrade, was %s: want the same plugin", harness.Short(got), harness.Short(id))
	}
	if _, err := os.Stat(filepath.Join(harness.Shared().Layout.DataRoot, "plugins", id, "rootfs", marker)); err != nil {
		t.Errorf("the upgraded plugin's rootfs lacks the second build's marker: %v", err)
	}
	harness.ManagedSettled(t, id, off, "mynet serving")
	checkNetworkKept(t, net, "10.81.0.1/24", web, "10.81.0.10", cli, cliIP.String(), "e2e-mreg-new")
	portsMustFetch(t, harness.ExtNS(), "http://"+harness.EngineAddr+":18911/", harness.WebPage)
}

// startRegistry runs Debian's docker-registry (from unstable, unpacked into
// the cache) on registryAddr in the engine namespace until the test ends;
// the test is skipped if it cannot be had.
func startRegistry(t *testing.T) {
	t.Helper()
	bin, err := harness.UnpackedUnstable("registry", "usr/bin/docker-registry", "docker-registry")
	if err != nil {
		t.Skipf("no docker-registry for `docker plugin upgrade`: %v", err)
	}
	dir := filepath.Join(harness.Shared().Layout.WorkDir, "registry")
	cfg := filepath.Join(dir, "config.yml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	text := "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: " + dir + "/data\nhttp:\n  addr: " + registryAddr + "\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := harness.StartLogged("registry", filepath.Join(harness.Shared().Layout.LogDir, "registry.log"), nil, syscall.SIGKILL,
		"nsenter", "--net="+harness.Shared().Layout.NSPath(harness.EngineNS()), bin, "serve", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(syscall.SIGTERM, 5*time.Second) })
	err = harness.WaitFor(60*time.Second, 100*time.Millisecond, func() error {
		if p.Exited() {
			return fmt.Errorf("registry exited: %v", p.Err)
		}
		_, err := harness.InEngineErr(harness.HostBusybox, "timeout", "2", harness.HostBusybox, "wget", "-qO-", "http://"+registryAddr+"/v2/")
		return err
	})
	if err != nil {
		t.Fatalf("registry on %s: %v\n%s", registryAddr, err, harness.TailFile(filepath.Join(harness.Shared().Layout.LogDir, "registry.log"), 0, 20))
	}
}

// TestManagedLegacyBackend: pinned to legacy iptables (MYNET_IPTABLES), the
// plugin's own iptables-legacy works with the plugin's capabilities and
// libraries: a network's rules land in the legacy tables. (Traffic is not
// tried: the engine's Docker uses nf_tables here, whose FORWARD policy
// mynet's legacy accepts cannot override; that is what auto prevents.)
func TestManagedLegacyBackend(t *testing.T) {
	harness.WithManagedDriver(t)
	id := harness.ManagedID(t)
	t.Cleanup(func() { setManagedEnv(t, "MYNET_IPTABLES=auto") })
	off := harness.FileSize(harness.Shared().Layout.DockerdLog())
	setManagedEnv(t, "MYNET_IPTABLES=legacy")
	harness.ManagedSettled(t, id, off, "mynet serving")
	harness.MustContain(t, "plugin log", harness.ManagedLogSince(id, off), "iptables backend pinned")

	harness.CreateMynet(t, "mynet-e2e-mleg", "--subnet", "10.82.0.0/24")
	legacy := harness.InEngine(t, "iptables-legacy-save")
	harness.MustContain(t, "legacy tables", legacy, "-A MYNET-POSTROUTING -s 10.82.0.0/24")
	if nft := harness.InEngine(t, "iptables-nft-save"); strings.Contains(nft, "10.82.0.0/24") {
		t.Errorf("rules for 10.82.0.0/24 in nf_tables too:\n%s", nft)
	}
	harness.Docker(t, "network", "rm", "mynet-e2e-mleg")
	if legacy := harness.InEngine(t, "iptables-legacy-save"); strings.Contains(legacy, "10.82.0.0/24") {
		t.Errorf("legacy rules for 10.82.0.0/24 left after network rm:\n%s", legacy)
	}
}
