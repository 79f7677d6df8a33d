//go:build e2e

// Package e2e runs mynet end to end: a private Docker engine, started in a
// network namespace of its own, drives the real mynet binary through the
// legacy plugin socket, and the tests check what a user would see (traffic
// passes, addresses are right) and what the kernel holds (bridges, veths,
// iptables rules) in that namespace.
//
// Run as root:
//
//	go test -tags e2e -v -count=1 ./e2e
//	MYNET_E2E_ENGINE=current go test -tags e2e -v -count=1 ./e2e
//
// Environment:
//
//	MYNET_E2E_ENGINE  stable (default): Debian stable's docker.io 20.10, installed with
//	                  apt-get if missing; current: Debian unstable's docker.io 28.5 and
//	                  containerd 2.x unpacked into MYNET_E2E_CACHE, run with stable runc.
//	MYNET_E2E_CACHE   cache for the current engine (default /var/cache/mynet-e2e).
//	MYNET_E2E_BIN     use this mynet binary instead of building one.
//	MYNET_E2E_KEEP    1: keep the work directory (logs, data-root) after the run.
//
// Everything the run creates carries its pid: namespaces mynet-e2e-<pid> and
// mynet-e2e-ext-<pid>, /var/lib/mynet-e2e/<pid>, /run/mne<pid>, the plugin
// socket /run/docker/plugins/mynet-e2e-<pid>.sock and the cgroup parent
// /mynet-e2e-<pid>. That is how teardown finds all of it, and how a later run
// removes what a crashed one left (see reapStale). Nothing outside those
// names is touched: not the host's interfaces, iptables, /run/docker.sock or
// any other engine.
//
// The harness lives in package e2e/harness; a private engine is started in
// harness/engine.go. API for tests: harness.UseEngine(t) /
// harness.UsePlugin(t) (returns the driver and IPAM name), harness.Docker(t,
// args...), harness.DockerErr(args...), harness.InEngine(t, argv...) and
// harness.InExt(t, argv...) (commands in the two namespaces);
// harness.Shared() is the run's Env, with StartPlugin, KillPlugin (SIGKILL),
// StopPlugin (SIGTERM), RestartPlugin, PluginLog, RestartEngine;
// harness.CreateMynet / CreateNetwork / RunDetached / RunOnce and the probes
// in harness/containers.go and harness/options.go, which remove what they
// create.
//
// Things learnt on the Debian 12 VM this was written on:
//   - cgroup v1 (hybrid, /sys/fs/cgroup is a tmpfs): both engines run with
//     the cgroupfs driver; --cgroup-parent keeps containers apart from any
//     real engine's /docker cgroups.
//   - dockerd is started with `nsenter --net=`, not `ip netns exec`, which
//     remounts /sys and so hides the cgroup hierarchies from dockerd.
//   - overlay2 works on the ext4 root; vfs is only a fallback.
//   - Docker 28.5 + containerd 2.1 from unstable run on bookworm's glibc
//     with bookworm's runc 1.1.5; unstable's runc does not (newer glibc).
//     Both dockerds start their own containerd under the exec-root, so no
//     --containerd is needed. containerd 2 warns that dockerd's generated
//     config is "version 2" and migrates it in memory; harmless.
//   - dockerd 20.10 writes its trust key to /etc/docker/key.json unless
//     daemon.json sets "deprecated-key-path"; we set it.
//   - containerd shims put their sockets in /run/containerd/s whatever the
//     exec-root; the directory may be left (empty) after a run.
//   - Debian's busybox-static 1.35 wget has no -T: the option crashes it
//     (SIGSEGV), so container commands use `timeout 3 wget -qO- URL`.
//   - busybox httpd/sleep as PID 1 ignore SIGTERM: containers get
//     --stop-timeout 1 so engine restarts do not wait 10 s per container.
//   - With the plugin down, every engine call to it is retried for ~15 s;
//     KillPlugin/StopPlugin therefore make sure mynet is running again
//     before the test's cleanups run.
package e2e

import (
	"flag"
	"os"
	"testing"

	"github.com/mynet/mynet/e2e/harness"
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(harness.Main(m))
}
