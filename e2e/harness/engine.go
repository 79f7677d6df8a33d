//go:build e2e

package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// engine is the private dockerd, run inside the engine namespace with its
// own data-root, exec-root, socket, pidfile, config file and cgroup parent.
// Both flavours start their own containerd (under the exec-root) when not
// given --containerd, so no separate containerd is needed.
type engine struct {
	lay     Layout
	bins    engineBins
	Storage string // chosen at first start and kept across restarts
	Dockerd *proc
	Version string
	Config  map[string]any // extra daemon.json settings, e.g. the benchmarks' "userland-proxy"
}

// Storage drivers in order of preference. overlay2 works on this VM's ext4
// root; vfs is the fallback for filesystems where overlay cannot stack
// (overlay on overlay, some tmpfs setups). vfs copies whole layers and is
// slow but always works.
var storageDrivers = []string{"overlay2", "vfs"}

func (e *engine) start() error {
	if e.Storage != "" {
		return e.startWith(e.Storage)
	}
	var errs []error
	for _, sd := range storageDrivers {
		err := e.startWith(sd)
		if err == nil {
			e.Storage = sd
			return nil
		}
		Logf("dockerd with storage driver %s: %v", sd, err)
		errs = append(errs, err)
		_ = e.stop()
	}
	return errors.Join(errs...)
}

func (e *engine) startWith(storage string) error {
	if err := e.writeConfig(); err != nil {
		return err
	}
	argv := append([]string{"nsenter", "--net=" + e.lay.NSPath(e.lay.EngineNS), e.bins.dockerd}, e.args(storage)...)
	p, err := StartLogged("dockerd", e.lay.DockerdLog(), e.environ(), syscall.SIGTERM, argv...)
	if err != nil {
		return err
	}
	e.Dockerd = p
	return e.waitReady(60 * time.Second)
}

// args are dockerd's flags. Notes on the less obvious ones:
//   - --config-file: never read the machine's /etc/docker/daemon.json.
//   - --dns: containers' upstream resolver (and the embedded DNS's forwarder)
//     is the ext namespace, so no DNS query leaves the test namespaces.
//   - --cgroup-parent: this VM runs cgroup v1 (cgroupfs driver); containers'
//     cgroups go under /<cgroup parent>/, apart from any real engine's
//     /docker/, and teardown can find every container process by it.
//   - --shutdown-timeout: busybox as PID 1 ignores SIGTERM; do not wait the
//     default 15 s for each container on engine stop/restart.
func (e *engine) args(storage string) []string {
	return []string{
		"--config-file", filepath.Join(e.lay.WorkDir, "daemon.json"),
		"--data-root", e.lay.DataRoot,
		"--exec-root", e.lay.execRoot,
		"--pidfile", e.lay.pidFile,
		"-H", e.lay.DockerHost(),
		"--iptables=true",
		"--ip-forward=true",
		"--storage-driver", storage,
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--cgroup-parent", "/" + e.lay.cgroupName,
		"--dns", ExtAddr,
		"--shutdown-timeout", "5",
		"--log-level", "info",
	}
}

// writeConfig writes the daemon.json given with --config-file. 20.10 would
// otherwise create /etc/docker/key.json (its trust key); the undocumented
// "deprecated-key-path" setting moves it into the work dir. 28.x no longer
// has a trust key and ignores that setting, so it gets an empty config.
func (e *engine) writeConfig() error {
	cfg := map[string]any{}
	for k, v := range e.Config {
		cfg[k] = v
	}
	if e.bins.kind == engineStable {
		cfg["deprecated-key-path"] = filepath.Join(e.lay.WorkDir, "key.json")
	}
	b, _ := json.Marshal(cfg)
	return os.WriteFile(filepath.Join(e.lay.WorkDir, "daemon.json"), b, 0o644)
}

func (e *engine) environ() []string {
	env := []string{"PATH=" + e.bins.path, "HOME=" + e.lay.WorkDir}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TZ=") || strings.HasPrefix(kv, "LANG=") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady waits until the API answers `docker version` with the expected
// server version, failing early if dockerd exits.
func (e *engine) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if e.Dockerd.Exited() {
			return fmt.Errorf("dockerd exited (%v); log tail:\n%s", e.Dockerd.Err, TailFile(e.lay.DockerdLog(), 0, 25, dockerdNoise...))
		}
		v, err := DockerIn(e.lay, 10*time.Second, "version", "--format", "{{.Server.Version}}")
		if err == nil && v != "" {
			if !strings.HasPrefix(v, e.bins.wantVersion) {
				return fmt.Errorf("dockerd reports version %q, want %s*", v, e.bins.wantVersion)
			}
			e.Version = v
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd not answering after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop asks dockerd to shut down (it stops the containers, and tells the
// network drivers, first) and kills it if it takes longer than 30 s.
func (e *engine) stop() error {
	if e.Dockerd == nil {
		return nil
	}
	err := e.Dockerd.Stop(syscall.SIGTERM, 30*time.Second)
	e.Dockerd = nil
	return err
}

func (e *engine) running() bool { return e.Dockerd != nil && !e.Dockerd.Exited() }

// checkVersion runs `dockerd --version` before the first start, so a wrong
// binary fails with a clear message instead of a confusing start-up error.
func (b engineBins) checkVersion() (string, error) {
	out, err := Run(30*time.Second, []string{"PATH=" + b.path}, b.dockerd, "--version")
	if err != nil {
		return "", err
	}
	if !strings.Contains(out, "version "+b.wantVersion) {
		return "", fmt.Errorf("%s --version: %q, want %s*", b.dockerd, out, b.wantVersion)
	}
	return out, nil
}
