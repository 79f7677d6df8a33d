//go:build e2e

package e2e

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
	engineAddr = "198.18.0.1"
	extAddr    = "198.18.0.2"
	linkPrefix = 30
	extPort    = "8080"
	extURL     = "http://" + extAddr + ":" + extPort + "/"
	extPage    = "mynet-e2e ext page"
	webPage    = "mynet-e2e web page"
	image      = "mynet-e2e/busybox:latest"

	// Interface names inside the two namespaces; they never exist on the host.
	engineLink = "ext0"
	extLink    = "eng0"
)

// layout names every path and kernel object of one run. All of them derive
// from the test binary's pid, so teardown and reapStale can find them from
// the pid alone.
type layout struct {
	pid        int
	engineNS   string // netns the private dockerd and mynet run in
	extNS      string // netns that plays the outside world
	workDir    string // everything on disk: data-root, logs, plugin state
	dataRoot   string
	execRoot   string // short: unix socket paths must fit 108 bytes
	dockerSock string
	pidFile    string
	logDir     string
	cliConfig  string // DOCKER_CONFIG for the CLI
	wwwDir     string // document root of the ext httpd
	pluginName string // driver and IPAM name in docker commands
	pluginSock string
	pluginDir  string // mynet --state-dir
	cgroupName string // --cgroup-parent; containers' cgroups live below it
}

const (
	workBase   = "/var/lib/mynet-e2e"
	pluginsDir = "/run/docker/plugins" // fixed legacy discovery dir, shared with any engine
	netnsDir   = "/run/netns"
	cgroupRoot = "/sys/fs/cgroup"
)

func layoutFor(pid int) layout {
	id := strconv.Itoa(pid)
	work := filepath.Join(workBase, id)
	exec := "/run/mne" + id
	name := "mynet-e2e-" + id
	return layout{
		pid:        pid,
		engineNS:   name,
		extNS:      "mynet-e2e-ext-" + id,
		workDir:    work,
		dataRoot:   filepath.Join(work, "data"),
		execRoot:   exec,
		dockerSock: filepath.Join(exec, "docker.sock"),
		pidFile:    filepath.Join(exec, "dockerd.pid"),
		logDir:     filepath.Join(work, "logs"),
		cliConfig:  filepath.Join(work, "cli"),
		wwwDir:     filepath.Join(work, "www"),
		pluginName: name,
		pluginSock: filepath.Join(pluginsDir, name+".sock"),
		pluginDir:  filepath.Join(work, "plugin-state"),
		cgroupName: name,
	}
}

func (l layout) nsPath(ns string) string { return filepath.Join(netnsDir, ns) }

func (l layout) dockerHost() string { return "unix://" + l.dockerSock }

func (l layout) dockerdLog() string { return filepath.Join(l.logDir, "dockerd.log") }

func (l layout) pluginLog() string { return filepath.Join(l.logDir, "mynet.log") }

// markers are strings that appear in the command line of every process this
// run starts outside containers (dockerd, containerd, shims, mynet, httpd).
func (l layout) markers() []string {
	return []string{l.execRoot + "/", l.workDir + "/", l.pluginSock}
}

func (l layout) String() string {
	return fmt.Sprintf("pid %d (netns %s, %s, %s)", l.pid, l.engineNS, l.workDir, l.execRoot)
}
