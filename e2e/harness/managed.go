//go:build e2e

package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Managed-plugin mode: mynet installed into the private engine as a managed
// (v2) plugin with the README's set-up command, run exactly as written
// (with DOCKER_HOST pointing at the private engine), from a build folder and
// with a state directory inside the run's work dir.
//
// The plugin is named mynet:latest, the real name: the private engine keeps
// its plugins under its own data-root, so the name cannot clash with a
// plugin of any other engine. Its socket directory, however, is the fixed
// host path /run/docker/plugins/<plugin id>, and its process runs in the
// cgroup /<plugin id> (the engine's --cgroup-parent does not apply to
// plugins); teardown finds both by the plugin ids (removeManagedSockets,
// ourProcesses, removeCgroups). The engine stops the plugin when it stops.
//
// Harness API: UseManaged(t) installs on first use and returns the driver
// and IPAM name; WithManagedDriver(t) makes the foundation scenarios' helpers
// (CreateMynet, env.Plugin) use it; ManagedID, ManagedLog, ManagedLogSince,
// ManagedSettled; BuildPluginFolder for a second build; readmeInstallCommand.

const (
	ManagedName = "mynet:latest"

	// readmeInstallSection is the README heading whose first sh block holds
	// the set-up command.
	readmeInstallSection = "## Install as a managed plugin"
)

// managedState is the managed plugin as the harness installed it.
type managedState struct {
	mu        sync.Mutex
	installed bool
	override  string          // driver name env.Plugin returns while set
	ids       map[string]bool // every plugin id seen, for teardown
}

var managed managedState

func (l Layout) ManagedStateDir() string { return filepath.Join(l.WorkDir, "managed-state") }

func (l Layout) ManagedBuildDir(n int) string {
	return filepath.Join(l.WorkDir, fmt.Sprintf("plugin-build-%d", n))
}

// readmeInstallCommand returns the first command line of the first ```sh
// block under readmeInstallSection in README.md.
func readmeInstallCommand() (string, error) {
	cmds, err := ReadmeCommands(readmeInstallSection)
	if err != nil {
		return "", err
	}
	return cmds[0], nil
}

// sudoShim writes a `sudo` that just runs its arguments, into a directory
// put first on PATH for README commands. The real sudo resets the
// environment, which would drop DOCKER_HOST and point the command at the
// machine's own engine; the tests run as root, so nothing is lost.
func sudoShim(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sudo"), []byte("#!/bin/sh\nexec \"$@\"\n"), 0o755)
}

// RunReadmeCommand runs a README command line with sh in the module root,
// against the private engine, with extra environment (make variables).
func (e *Env) RunReadmeCommand(cmdline string, timeout time.Duration, extra ...string) (string, error) {
	root, err := ModuleRoot(goBinary())
	if err != nil {
		return "", err
	}
	shim := filepath.Join(e.Layout.WorkDir, "shim")
	if err := sudoShim(shim); err != nil {
		return "", err
	}
	environ := CLIEnviron(e.Layout)
	for i, kv := range environ {
		if strings.HasPrefix(kv, "PATH=") {
			environ[i] = "PATH=" + shim + ":" + filepath.Dir(goBinary()) + ":" + strings.TrimPrefix(kv, "PATH=")
		}
	}
	environ = append(environ, extra...)
	return Run(timeout, environ, "sh", "-c", "cd "+shellQuote(root)+" && "+cmdline)
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// InstallManaged runs the README's set-up command with the build folder
// and state directory of this run.
func (e *Env) InstallManaged(buildDir string) error {
	cmdline, err := readmeInstallCommand()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(e.Layout.ManagedStateDir(), 0o755); err != nil {
		return err
	}
	start := time.Now()
	// XTABLES_TMPFILES empty: the test machine's boot set-up is not the
	// tests' to change (the host's lock file itself exists or is made).
	out, err := e.RunReadmeCommand(cmdline, 5*time.Minute,
		"PLUGIN_DIR="+buildDir, "PLUGIN_STATE="+e.Layout.ManagedStateDir(), "XTABLES_TMPFILES=")
	if err != nil {
		return fmt.Errorf("README set-up command %q: %w\n%s", cmdline, err, out)
	}
	Logf("%q installed %s in %v", cmdline, ManagedName, time.Since(start).Round(time.Millisecond))
	return nil
}

func mustModuleRoot() string {
	root, err := ModuleRoot(goBinary())
	if err != nil {
		return "."
	}
	return root
}

// UseManaged is UseEngine plus mynet installed as a managed plugin (on
// first use, with the README's command); it returns the driver and IPAM
// name, mynet:latest.
func UseManaged(t *testing.T) string {
	t.Helper()
	e := UseEngine(t)
	managed.mu.Lock()
	defer managed.mu.Unlock()
	if !managed.installed {
		if err := e.InstallManaged(e.Layout.ManagedBuildDir(1)); err != nil {
			t.Fatal(err)
		}
		managed.installed = true
	}
	if out := Docker(t, "plugin", "inspect", "-f", "{{.Enabled}}", ManagedName); out != "true" {
		Docker(t, "plugin", "enable", ManagedName)
	}
	// Registered before anything the test creates, so it runs last: the
	// plugin does not keep running (next to the legacy one, in the same
	// namespace and chains) through the tests that do not use it.
	t.Cleanup(disableManagedIfUnused)
	return ManagedName
}

// disableManagedIfUnused disables the managed plugin unless networks still
// use it (then the engine refuses, which is fine).
func disableManagedIfUnused() {
	if out, _ := DockerErr("plugin", "inspect", "-f", "{{.Enabled}}", ManagedName); out == "true" {
		_, _ = DockerErr("plugin", "disable", ManagedName)
	}
}

// WithManagedDriver makes env.Plugin() (and so CreateMynet and the other
// helpers) name the managed plugin until the test ends.
func WithManagedDriver(t *testing.T) {
	t.Helper()
	name := UseManaged(t)
	managed.mu.Lock()
	managed.override = name
	managed.mu.Unlock()
	t.Cleanup(func() {
		managed.mu.Lock()
		managed.override = ""
		managed.mu.Unlock()
	})
}

func managedOverride() string {
	managed.mu.Lock()
	defer managed.mu.Unlock()
	return managed.override
}

// BuildPluginFolder runs `make plugin` into dir: a second build of the same
// source, for upgrades.
func (e *Env) BuildPluginFolder(dir string) error {
	out, err := e.RunReadmeCommand("make plugin", 5*time.Minute, "PLUGIN_DIR="+dir)
	if err != nil {
		return fmt.Errorf("make plugin PLUGIN_DIR=%s: %w\n%s", dir, err, out)
	}
	return nil
}

// ManagedID returns the plugin's full id ("" if not installed).
func ManagedID(t testing.TB) string {
	t.Helper()
	id, err := DockerErr("plugin", "inspect", "-f", "{{.Id}}", ManagedName)
	if err != nil {
		return ""
	}
	managed.mu.Lock()
	defer managed.mu.Unlock()
	if managed.ids == nil {
		managed.ids = map[string]bool{}
	}
	managed.ids[id] = true
	return id
}

// ManagedLogSince returns what the managed plugin with id printed, as the engine
// logged it (one dockerd log line per plugin output line, tagged
// plugin=<id>), from byte offset since of the dockerd log.
func ManagedLogSince(id string, since int64) string {
	b, err := os.ReadFile(env.Layout.DockerdLog())
	if err != nil || id == "" {
		return ""
	}
	if since > int64(len(b)) {
		since = 0
	}
	var out []string
	for _, line := range strings.Split(string(b[since:]), "\n") {
		if strings.Contains(line, "plugin="+id) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// ManagedLog is ManagedLogSince from the start of the run.
func ManagedLog(id string) string { return ManagedLogSince(id, 0) }

// ManagedSettled waits until the plugin with id has logged want (after
// offset since), e.g. that it is serving.
func ManagedSettled(t testing.TB, id string, since int64, want string) {
	t.Helper()
	err := WaitFor(90*time.Second, 100*time.Millisecond, func() error {
		if strings.Contains(ManagedLogSince(id, since), want) {
			return nil
		}
		return ErrNotYet
	})
	if err != nil {
		t.Fatalf("managed plugin %s never logged %q: %v\n%s", Short(id), want, err, TailString(ManagedLogSince(id, since), 30))
	}
}

func Short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func TailString(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// removeManaged removes the managed plugin from the engine (networks must
// be gone already): part of the engine's teardown.
func (e *Env) removeManaged() error {
	managed.mu.Lock()
	defer managed.mu.Unlock()
	if !managed.installed {
		return nil
	}
	if _, err := DockerIn(e.Layout, time.Minute, "plugin", "inspect", ManagedName); err != nil {
		return nil // removed by a test
	}
	_, _ = DockerIn(e.Layout, time.Minute, "plugin", "disable", "-f", ManagedName)
	_, err := DockerIn(e.Layout, time.Minute, "plugin", "rm", "-f", ManagedName)
	if err == nil {
		managed.installed = false
	}
	return err
}

// managedPluginIDs lists the ids of the managed plugins of the engine of l:
// those in its data-root (so it works for a crashed run too) and, for this
// run, every id it has seen.
func managedPluginIDs(l Layout) []string {
	ids := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Join(l.DataRoot, "plugins"))
	for _, ent := range entries {
		if ent.IsDir() && len(ent.Name()) == 64 {
			ids[ent.Name()] = true
		}
	}
	if l.pid == os.Getpid() {
		managed.mu.Lock()
		for id := range managed.ids {
			ids[id] = true
		}
		managed.mu.Unlock()
	}
	var out []string
	for id := range ids {
		out = append(out, id)
	}
	return out
}

// managedSocketDirs lists the host directories /run/docker/plugins/<id> of
// the managed plugins that still exist. The engine removes them itself with
// the plugin.
func managedSocketDirs(l Layout) []string {
	var dirs []string
	for _, id := range managedPluginIDs(l) {
		if d := filepath.Join(PluginsDir, id); isDir(d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}
