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
)

// TestManagedInstall: the README's set-up command builds the plugin folder
// and installs mynet:latest into the engine; the engine starts it from
// config.json (no /Plugin.Activate), and mynet picks the iptables backend
// holding the engine's Docker chains.
func TestManagedInstall(t *testing.T) {
	name := useManaged(t)
	id := ManagedID(t)
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
	out := docker(t, "plugin", "inspect", "-f", "{{json .}}", name)
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
		if m.Name == "state" && m.Source == env.lay.managedStateDir() && m.Destination == "/var/lib/mynet" {
			stateMounted = true
		}
	}
	if !stateMounted {
		t.Errorf("state mount not set to %s: %+v", env.lay.managedStateDir(), cfg.Settings.Mounts)
	}

	ManagedSettled(t, id, 0, "mynet serving")
	log := ManagedLog(id)
	mustContain(t, "plugin log: backend choice", log, "iptables backend selected")
	mustContain(t, "plugin log: backend follows Docker", log, "Docker's chains are in nf_tables")
	if _, err := os.Stat(filepath.Join(env.lay.managedStateDir(), "state.db")); err != nil {
		t.Errorf("state.db not in the host state directory: %v", err)
	}
	t.Logf("plugin %s; log:\n%s", short(id), tailString(log, 10))
}

// TestManagedFoundation runs the foundation scenarios against the managed
// plugin: the user story (DNS, NAT, cleanup), static addresses and
// isolation between networks.
func TestManagedFoundation(t *testing.T) {
	withManagedDriver(t)
	t.Run("UserStory", TestUserStory)
	t.Run("StaticIP", TestStaticIP)
	t.Run("Isolation", TestIsolation)
}

// TestManagedForwarding: with IP forwarding off in the engine's namespace,
// creating a network through the managed plugin turns it on, through the
// host /proc/sys/net mount (the plugin's own /proc/sys is read-only), and
// containers reach the outside.
func TestManagedForwarding(t *testing.T) {
	withManagedDriver(t)
	id := ManagedID(t)
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	t.Cleanup(func() { _, _ = inEngineErr("sh", "-c", "echo 1 > "+fwd) })
	inEngine(t, "sh", "-c", "echo 0 > "+fwd)
	off := fileSize(env.lay.dockerdLog())

	createMynet(t, "mynet-e2e-mfwd", "--subnet", "10.75.0.0/24")
	if got := inEngine(t, "cat", fwd); got != "1" {
		t.Fatalf("ip_forward in the engine namespace is %q after a network was created, want 1", got)
	}
	mustContain(t, "plugin log", ManagedLogSince(id, off), "enabled IP forwarding")
	mustContain(t, "plugin log: sysctl path", ManagedLogSince(id, off), "/host/proc/sys/net/ipv4/ip_forward")
	mustContain(t, "ext page through NAT", runOnce(t, "mynet-e2e-mfwd", httpGet(extURL)...), extPage)
}

// TestManagedLogLevel: `docker plugin set mynet:latest LOG_LEVEL=debug`
// (refused while enabled, accepted while disabled) makes the plugin log at
// debug level after enable; the engine's log carries it tagged with the
// plugin id.
func TestManagedLogLevel(t *testing.T) {
	withManagedDriver(t)
	id := ManagedID(t)
	if strings.Contains(ManagedLog(id), "level=debug") {
		t.Fatalf("debug lines from the plugin at the default level:\n%s", tailString(ManagedLog(id), 20))
	}
	mustFail(t, "plugin set while enabled", dockerErrOnly("plugin", "set", managedName, "LOG_LEVEL=debug"))

	// Registered first, so it runs after the network below is removed
	// (disable refuses while a network uses the plugin).
	t.Cleanup(func() { setManagedEnv(t, "LOG_LEVEL=info") })
	off := fileSize(env.lay.dockerdLog())
	setManagedEnv(t, "LOG_LEVEL=debug")
	ManagedSettled(t, id, off, "mynet serving")
	if got := docker(t, "plugin", "inspect", "-f", "{{.Settings.Env}}", managedName); !strings.Contains(got, "LOG_LEVEL=debug") {
		t.Errorf("plugin settings: %s", got)
	}
	createMynet(t, "mynet-e2e-mlog", "--subnet", "10.76.0.0/24")
	log := ManagedLogSince(id, off)
	mustContain(t, "plugin log after LOG_LEVEL=debug", log, "level=debug")
	t.Logf("debug lines, e.g.:\n%s", firstLinesWith(log, "level=debug", 3))
}

// setManagedEnv disables the plugin, sets env settings and enables it.
func setManagedEnv(t *testing.T, settings ...string) {
	t.Helper()
	docker(t, "plugin", "disable", managedName)
	docker(t, append([]string{"plugin", "set", managedName}, settings...)...)
	docker(t, "plugin", "enable", managedName)
}

func dockerErrOnly(args ...string) error {
	_, err := dockerErr(args...)
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
	withManagedDriver(t)
	const (
		net = "mynet-e2e-mdis"
		web = "e2e-mdis-web"
		cli = "e2e-mdis-cli"
	)
	createMynet(t, net, "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.1")
	startWeb(t, web, net, "--ip", "10.77.0.10", "-p", "18912:80")
	startSleeper(t, cli, net)
	cliIP := containerIP(t, cli, net)

	msg := mustFail(t, "plugin disable with a network", dockerErrOnly("plugin", "disable", managedName))
	if !containsAny(msg, "in use") {
		t.Errorf("disable refused, but not as in use: %s", msg)
	}
	docker(t, "plugin", "disable", "-f", managedName)
	t.Cleanup(func() { ensureManagedEnabled(t) }) // before the network's removal
	mustReach(t, cli, "10.77.0.10")               // kernel state stays without the plugin

	off := fileSize(env.lay.dockerdLog())
	docker(t, "plugin", "enable", managedName)
	ManagedSettled(t, ManagedID(t), off, "mynet serving")
	checkNetworkKept(t, net, "10.77.0.1/24", web, "10.77.0.10", cli, cliIP.String(), "e2e-mdis-new")
	portsMustFetch(t, env.lay.extNS, "http://"+engineAddr+":18912/", webPage)
}

func ensureManagedEnabled(t *testing.T) {
	if out, _ := dockerErr("plugin", "inspect", "-f", "{{.Enabled}}", managedName); out == "false" {
		if _, err := dockerErr("plugin", "enable", managedName); err != nil {
			t.Errorf("re-enabling %s: %v", managedName, err)
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
	mustReach(t, cli, webIP)
	mustContain(t, "web by name", execIn(t, cli, httpGet("http://"+web+"/")...), webPage)
	msg := mustFail(t, "second container asking for "+webIP, startSleeperErr(t, newName+"-dup", net, "--ip", webIP))
	if !containsAny(msg, "in use") {
		t.Errorf("--ip %s: want it refused as in use, got: %s", webIP, msg)
	}
	startSleeper(t, newName, net)
	newIP := containerIP(t, newName, net).String()
	if newIP == webIP || newIP == cliIP {
		t.Fatalf("%s got %s, already held (web %s, cli %s)", newName, newIP, webIP, cliIP)
	}
	mustReach(t, newName, webIP)

	br := bridgeWithAddr(t, gwCIDR)
	if br == "" {
		t.Fatalf("no bridge with %s", gwCIDR)
	}
	before := len(portsOf(t, br))
	docker(t, "rm", "-f", cli)
	if after := len(portsOf(t, br)); after != before-1 {
		t.Errorf("bridge %s had %d ports, %d after removing %s; want one fewer", br, before, after, cli)
	}
}

// TestManagedUpgrade: upgrading to a second build, the README's way (the
// set-up command run again: disable -f, rm, create from the new folder,
// enable), keeps networks, endpoints, allocations and published ports.
func TestManagedUpgrade(t *testing.T) {
	withManagedDriver(t)
	const (
		net = "mynet-e2e-mupg"
		web = "e2e-mupg-web"
		cli = "e2e-mupg-cli"
	)
	createMynet(t, net, "--subnet", "10.78.0.0/24", "--gateway", "10.78.0.1")
	startWeb(t, web, net, "--ip", "10.78.0.10", "-p", "18910:80")
	startSleeper(t, cli, net)
	cliIP := containerIP(t, cli, net)
	id1 := ManagedID(t)

	t.Cleanup(func() { ensureManagedEnabled(t) })
	if err := env.installManaged(env.lay.managedBuildDir(2)); err != nil {
		t.Fatal(err)
	}
	id2 := ManagedID(t)
	if id2 == "" || id2 == id1 {
		t.Fatalf("plugin id %q after the upgrade, was %q: want a new plugin", short(id2), short(id1))
	}
	ManagedSettled(t, id2, 0, "mynet serving")
	mustContain(t, "new plugin's log", ManagedLog(id2), "ipam state loaded")
	checkNetworkKept(t, net, "10.78.0.1/24", web, "10.78.0.10", cli, cliIP.String(), "e2e-mupg-new")
	portsMustFetch(t, env.lay.extNS, "http://"+engineAddr+":18910/", webPage)
}

// TestManagedEngineRestart: dockerd stops (stopping the containers, which
// deletes their endpoints) and starts again, restarting the plugin: the
// --restart always container comes back with working networking, a
// container that was running without a restart policy leaves no endpoint
// behind, and no address is handed out twice.
func TestManagedEngineRestart(t *testing.T) {
	withManagedDriver(t)
	const (
		net  = "mynet-e2e-mrst"
		web  = "e2e-mrst-web"
		once = "e2e-mrst-once"
	)
	createMynet(t, net, "--subnet", "10.79.0.0/24", "--gateway", "10.79.0.1")
	startWeb(t, web, net, "--restart", "always")
	startSleeper(t, once, net)
	onceIP := containerIP(t, once, net)
	br := bridgeWithAddr(t, "10.79.0.1/24")
	id := ManagedID(t)
	off := fileSize(env.lay.dockerdLog())

	env.RestartEngine(t)
	if err := waitFor(90*time.Second, 200*time.Millisecond, func() error {
		if !containerRunning(t, web) {
			return errNotYet
		}
		return nil
	}); err != nil {
		t.Fatalf("%s not running after the engine restart: %v", web, err)
	}
	ManagedSettled(t, id, off, "mynet serving")
	if containerRunning(t, once) {
		t.Fatalf("%s (no restart policy) is running after the engine restart", once)
	}
	webIP := containerIP(t, web, net)
	if got := ifaceAddr(t, web, "eth0").Addr(); got != webIP {
		t.Errorf("%s: eth0 has %v, engine recorded %v", web, got, webIP)
	}
	if ports := portsOf(t, br); len(ports) != 1 {
		t.Errorf("bridge %s has %d ports after the restart, want 1 (%s only): stale endpoints", br, len(ports), web)
	}
	mustContain(t, "web by name after restart", runOnce(t, net, httpGet("http://"+web+"/")...), webPage)
	mustContain(t, "ext page from the restarted container", execIn(t, web, httpGet(extURL)...), extPage)

	startSleeper(t, "e2e-mrst-new", net)
	newIP := containerIP(t, "e2e-mrst-new", net)
	docker(t, "start", once)
	onceIP2 := containerIP(t, once, net)
	seen := map[string]string{webIP.String(): web}
	for name, ip := range map[string]string{"e2e-mrst-new": newIP.String(), once: onceIP2.String()} {
		if other, dup := seen[ip]; dup {
			t.Errorf("%s and %s both have %s", name, other, ip)
		}
		seen[ip] = name
	}
	mustReach(t, once, webIP.String())
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
	withManagedDriver(t)
	startRegistry(t)
	const (
		net = "mynet-e2e-mreg"
		web = "e2e-mreg-web"
		cli = "e2e-mreg-cli"
		ref = registryAddr + "/mynet:v2"
	)
	createMynet(t, net, "--subnet", "10.81.0.0/24", "--gateway", "10.81.0.1")
	startWeb(t, web, net, "--ip", "10.81.0.10", "-p", "18911:80")
	startSleeper(t, cli, net)
	cliIP := containerIP(t, cli, net)
	id := ManagedID(t)

	build := env.lay.managedBuildDir(3)
	if err := env.buildPluginFolder(build); err != nil {
		t.Fatal(err)
	}
	// A marker in the second build's rootfs shows that the upgrade really
	// replaced the plugin's rootfs.
	marker := filepath.Join("etc", "mynet-e2e-build")
	if err := os.WriteFile(filepath.Join(build, "rootfs", marker), []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	docker(t, "plugin", "create", ref, build)
	docker(t, "plugin", "push", ref)
	docker(t, "plugin", "rm", ref)

	t.Cleanup(func() { ensureManagedEnabled(t) })
	docker(t, "plugin", "disable", "-f", managedName)
	// --skip-remote-check: the plugin was created locally, so its reference
	// (mynet:latest) is not the registry's; without the flag the CLI asks
	// "Plugin images do not match, are you sure?" and, with no terminal,
	// cancels the upgrade but still exits 0.
	t.Log(docker(t, "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", managedName, ref))
	// Engine quirk (20.10 and 28.5): after an upgrade, inspect still shows
	// the state mount's source as set, but the plugin runs with the new
	// config.json's default (/var/lib/mynet): `plugin set` writes mount
	// sources through pointers shared by the settings and the config, and
	// the upgrade replaces the config. Setting it again fixes that.
	docker(t, "plugin", "set", managedName, "state.source="+env.lay.managedStateDir())
	off := fileSize(env.lay.dockerdLog())
	docker(t, "plugin", "enable", managedName)
	if got := ManagedID(t); got != id {
		t.Errorf("plugin id %s after upgrade, was %s: want the same plugin", short(got), short(id))
	}
	if _, err := os.Stat(filepath.Join(env.lay.dataRoot, "plugins", id, "rootfs", marker)); err != nil {
		t.Errorf("the upgraded plugin's rootfs lacks the second build's marker: %v", err)
	}
	ManagedSettled(t, id, off, "mynet serving")
	checkNetworkKept(t, net, "10.81.0.1/24", web, "10.81.0.10", cli, cliIP.String(), "e2e-mreg-new")
	portsMustFetch(t, env.lay.extNS, "http://"+engineAddr+":18911/", webPage)
}

// startRegistry runs Debian's docker-registry (from unstable, unpacked into
// the cache) on registryAddr in the engine namespace until the test ends;
// the test is skipped if it cannot be had.
func startRegistry(t *testing.T) {
	t.Helper()
	bin, err := unpackedUnstable("registry", "usr/bin/docker-registry", "docker-registry")
	if err != nil {
		t.Skipf("no docker-registry for `docker plugin upgrade`: %v", err)
	}
	dir := filepath.Join(env.lay.workDir, "registry")
	cfg := filepath.Join(dir, "config.yml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	text := "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: " + dir + "/data\nhttp:\n  addr: " + registryAddr + "\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := startLogged("registry", filepath.Join(env.lay.logDir, "registry.log"), nil, syscall.SIGKILL,
		"nsenter", "--net="+env.lay.nsPath(env.lay.engineNS), bin, "serve", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.stop(syscall.SIGTERM, 5*time.Second) })
	err = waitFor(60*time.Second, 100*time.Millisecond, func() error {
		if p.exited() {
			return fmt.Errorf("registry exited: %v", p.err)
		}
		_, err := inEngineErr(hostBusybox, "timeout", "2", hostBusybox, "wget", "-qO-", "http://"+registryAddr+"/v2/")
		return err
	})
	if err != nil {
		t.Fatalf("registry on %s: %v\n%s", registryAddr, err, tailFile(filepath.Join(env.lay.logDir, "registry.log"), 0, 20))
	}
}

// TestManagedLegacyBackend: pinned to legacy iptables (MYNET_IPTABLES), the
// plugin's own iptables-legacy works with the plugin's capabilities and
// libraries: a network's rules land in the legacy tables. (Traffic is not
// tried: the engine's Docker uses nf_tables here, whose FORWARD policy
// mynet's legacy accepts cannot override; that is what auto prevents.)
func TestManagedLegacyBackend(t *testing.T) {
	withManagedDriver(t)
	id := ManagedID(t)
	t.Cleanup(func() { setManagedEnv(t, "MYNET_IPTABLES=auto") })
	off := fileSize(env.lay.dockerdLog())
	setManagedEnv(t, "MYNET_IPTABLES=legacy")
	ManagedSettled(t, id, off, "mynet serving")
	mustContain(t, "plugin log", ManagedLogSince(id, off), "iptables backend pinned")

	createMynet(t, "mynet-e2e-mleg", "--subnet", "10.82.0.0/24")
	legacy := inEngine(t, "iptables-legacy-save")
	mustContain(t, "legacy tables", legacy, "-A MYNET-POSTROUTING -s 10.82.0.0/24")
	if nft := inEngine(t, "iptables-nft-save"); strings.Contains(nft, "10.82.0.0/24") {
		t.Errorf("rules for 10.82.0.0/24 in nf_tables too:\n%s", nft)
	}
	docker(t, "network", "rm", "mynet-e2e-mleg")
	if legacy := inEngine(t, "iptables-legacy-save"); strings.Contains(legacy, "10.82.0.0/24") {
		t.Errorf("legacy rules for 10.82.0.0/24 left after network rm:\n%s", legacy)
	}
}
