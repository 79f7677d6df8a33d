//go:build e2e

package harness

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// Addresses of the link between the engine namespace (the engine's "host")
// and the ext namespace ("the outside world"). 198.18.0.0/15 is reserved for
// benchmarking, so it collides with nothing real; only these two test
// namespaces ever carry it.
const (
	EngineAddr = "198.18.0.1"
	ExtAddr    = "198.18.0.2"
	linkPrefix = 30
	extPort    = "8080"
	ExtURL     = "http://" + ExtAddr + ":" + extPort + "/"
	ExtPage    = "mynet-e2e ext page"
	WebPage    = "mynet-e2e web page"
	Image      = "mynet-e2e/busybox:latest"

	// Interface names inside the two namespaces; they never exist on the host.
	EngineLink = "ext0"
	extLink    = "eng0"
)

// layout names every path and kernel object of one run. All of them derive
// from the test binary's pid, so teardown and reapStale can find them from
// the pid alone.
type Layout struct {
	pid        int
	EngineNS   string // netns the private dockerd and mynet run in
	ExtNS      string // netns that plays the outside world
	WorkDir    string // everything on disk: data-root, logs, plugin state
	DataRoot   string
	execRoot   string // short: unix socket paths must fit 108 bytes
	DockerSock string
	pidFile    string
	LogDir     string
	CLIConfig  string // DOCKER_CONFIG for the CLI
	WWWDir     string // document root of the ext httpd
	PluginName string // driver and IPAM name in docker commands
	PluginSock string
	PluginDir  string // mynet --state-dir
	cgroupName string // --cgroup-parent; containers' cgroups live below it
}

const (
	workBase   = "/var/lib/mynet-e2e"
	PluginsDir = "/run/docker/plugins" // fixed legacy discovery dir, shared with any engine
	netnsDir   = "/run/netns"
	cgroupRoot = "/sys/fs/cgroup"
)

func layoutFor(pid int) Layout {
	id := strconv.Itoa(pid)
	work := filepath.Join(workBase, id)
	exec := "/run/mne" + id
	name := "mynet-e2e-" + id
	return Layout{
		pid:        pid,
		EngineNS:   name,
		ExtNS:      "mynet-e2e-ext-" + id,
		WorkDir:    work,
		DataRoot:   filepath.Join(work, "data"),
		execRoot:   exec,
		DockerSock: filepath.Join(exec, "docker.sock"),
		pidFile:    filepath.Join(exec, "dockerd.pid"),
		LogDir:     filepath.Join(work, "logs"),
		CLIConfig:  filepath.Join(work, "cli"),
		WWWDir:     filepath.Join(work, "www"),
		PluginName: name,
		PluginSock: filepath.Join(PluginsDir, name+".sock"),
		PluginDir:  filepath.Join(work, "plugin-state"),
		cgroupName: name,
	}
}

func (l Layout) NSPath(ns string) string { return filepath.Join(netnsDir, ns) }

func (l Layout) DockerHost() string { return "unix://" + l.DockerSock }

func (l Layout) DockerdLog() string { return filepath.Join(l.LogDir, "dockerd.log") }

func (l Layout) PluginLog() string { return filepath.Join(l.LogDir, "mynet.log") }

// markers are strings that appear in the command line of every process this
// run starts outside containers (dockerd, containerd, shims, mynet, httpd).
func (l Layout) markers() []string {
	return []string{l.execRoot + "/", l.WorkDir + "/", l.PluginSock}
}

func (l Layout) String() string {
	return fmt.Sprintf("pid %d (netns %s, %s, %s)", l.pid, l.EngineNS, l.WorkDir, l.execRoot)
}
