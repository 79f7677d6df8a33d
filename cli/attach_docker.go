package cli

// What `mynet attach` and friends learn from Docker, through the docker
// CLI: a network's ID, driver and IPAM driver, a container's PID and
// network mode, and where the plugin serving a driver listens. The plugin
// itself never calls the Docker API (a plugin calling the engine from a
// request can deadlock it), so all of this happens here, in the command.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mynet/mynet/internal/ids"
)

// pluginsDir is where the engine finds legacy plugins' sockets and where
// it puts managed plugins' socket directories (/run/docker/plugins/<id>).
const pluginsDir = "/run/docker/plugins"

// builtinDrivers are the engine's own network drivers: no mynet there.
var builtinDrivers = map[string]bool{"bridge": true, "host": true, "null": true, "none": true,
	"overlay": true, "macvlan": true, "ipvlan": true}

// dockerCLI runs the docker CLI (cmd), which honours DOCKER_HOST and
// contexts as the user set them. An empty cmd runs nothing: names are not
// resolved (see dockerCommand).
type dockerCLI struct{ cmd string }

// dockerCommand is --docker's default: MYNET_DOCKER when it is set, even
// to "" (which means no docker CLI, as the help says), else "docker".
func dockerCommand() string {
	if v, ok := os.LookupEnv("MYNET_DOCKER"); ok {
		return v
	}
	return "docker"
}

// run returns docker's stdout; a failure carries docker's own message.
func (c dockerCLI) run(ctx context.Context, args ...string) ([]byte, error) {
	if c.cmd == "" {
		return nil, errors.New("resolving names needs the docker CLI, but --docker (MYNET_DOCKER) is empty")
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.cmd, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("docker %s: %s", args[0], strings.TrimPrefix(msg, "Error: "))
	}
	return out, nil
}

// networkRef is a network as `docker network inspect` shows it.
type networkRef struct {
	ID     string `json:"Id"`
	Name   string
	Driver string
	IPAM   struct{ Driver string }
	// Containers maps container IDs to their endpoints, for `mynet ls`.
	Containers map[string]struct{ Name, EndpointID string }
}

// inspect reads `docker KIND inspect NAME` into a new T.
func inspect[T any](ctx context.Context, c dockerCLI, kind, name string) (*T, error) {
	out, err := c.run(ctx, kind, "inspect", "--format", "{{json .}}", name)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	v := new(T)
	if err := json.Unmarshal(firstLine(out), v); err != nil {
		return nil, fmt.Errorf("%s %q: reading docker's answer: %w", kind, name, err)
	}
	return v, nil
}

// network resolves a network name or ID.
func (c dockerCLI) network(ctx context.Context, name string) (*networkRef, error) {
	return inspect[networkRef](ctx, c, "network", name)
}

// checkMynet refuses networks mynet cannot attach to: another driver, or
// addresses from an IPAM that is not the same mynet (Docker's default
// IPAM could hand the attached address to a container).
func (n *networkRef) checkMynet() error {
	switch {
	case builtinDrivers[n.Driver]:
		return fmt.Errorf("network %s uses Docker's %s driver, not mynet", n.Name, n.Driver)
	case n.IPAM.Driver == "" || n.IPAM.Driver == "default":
		return fmt.Errorf("network %s uses Docker's default IPAM, which could give the attached address to a container: create it with --ipam-driver %s", n.Name, n.Driver)
	case n.IPAM.Driver != n.Driver:
		return fmt.Errorf("network %s takes its addresses from IPAM driver %s, not from its driver %s: mynet attach needs mynet's IPAM", n.Name, n.IPAM.Driver, n.Driver)
	}
	return nil
}

// containerRef is a container as `docker container inspect` shows it.
type containerRef struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Running bool
		Status  string
		Pid     int
	}
	HostConfig struct{ NetworkMode string }
	// NetworkSettings.Networks names the networks Docker connected it to.
	NetworkSettings struct {
		Networks map[string]struct{ NetworkID string }
	}
}

// container resolves a container name or ID.
func (c dockerCLI) container(ctx context.Context, name string) (*containerRef, error) {
	r, err := inspect[containerRef](ctx, c, "container", name)
	if err != nil {
		return nil, err
	}
	r.Name = strings.TrimPrefix(r.Name, "/")
	return r, nil
}

// checkAttachable refuses containers without a network namespace of their
// own to attach to, or not running (no namespace at all), or already on
// the network through Docker.
func (r *containerRef) checkAttachable(n *networkRef) error {
	mode := r.HostConfig.NetworkMode
	switch {
	case mode == "host":
		return fmt.Errorf("container %s uses the host's network (--network host): it has no network namespace of its own to attach", r.Name)
	case strings.HasPrefix(mode, "container:"):
		other := ids.Short(strings.TrimPrefix(mode, "container:"))
		return fmt.Errorf("container %s shares the network namespace of container %s (--network container:%s): attach that container instead", r.Name, other, other)
	case !r.State.Running || r.State.Pid <= 0:
		return fmt.Errorf("container %s is not running (%s): start it first; an attachment lives as long as the running container's network namespace", r.Name, r.State.Status)
	}
	for name, ep := range r.NetworkSettings.Networks {
		if ep.NetworkID == n.ID {
			return fmt.Errorf("container %s is already connected to network %s by Docker (as %s)", r.Name, n.Name, name)
		}
	}
	return nil
}

// pluginSocket finds the socket of the plugin serving driver: a managed
// plugin's names carry a tag ("mynet:latest") and its socket is in the
// engine's directory for it; a legacy plugin's name is its socket's (or
// spec file's) base name.
func (c dockerCLI) pluginSocket(ctx context.Context, driver string) (string, error) {
	if builtinDrivers[driver] {
		return "", fmt.Errorf("driver %s is Docker's own, not mynet", driver)
	}
	if strings.Contains(driver, ":") {
		return c.managedSocket(ctx, driver)
	}
	if sock := filepath.Join(pluginsDir, driver+".sock"); exists(sock) {
		return sock, nil
	}
	for _, dir := range []string{"/etc/docker/plugins", "/usr/lib/docker/plugins"} {
		if sock, ok := specSocket(filepath.Join(dir, driver+".spec")); ok {
			return sock, nil
		}
	}
	return "", fmt.Errorf("no socket for plugin %s (no %s/%s.sock): is mynet running? --socket names its socket", driver, pluginsDir, driver)
}

// managedSocket is /run/docker/plugins/<id>/<socket of config.json>.
func (c dockerCLI) managedSocket(ctx context.Context, name string) (string, error) {
	out, err := c.run(ctx, "plugin", "inspect", "--format", "{{.Id}} {{.Enabled}} {{.Config.Interface.Socket}}", name)
	if err != nil {
		return "", fmt.Errorf("plugin %s: %w", name, err)
	}
	f := strings.Fields(string(firstLine(out)))
	switch {
	case len(f) != 3:
		return "", fmt.Errorf("plugin %s: unexpected answer %q", name, out)
	case f[1] != "true":
		return "", fmt.Errorf("plugin %s is disabled: docker plugin enable %s", name, name)
	}
	return filepath.Join(pluginsDir, f[0], f[2]), nil
}

// specSocket reads a legacy plugin spec file naming a unix socket.
func specSocket(path string) (string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	sock, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "unix://")
	return sock, ok
}

// defaultSocket is where `mynet ls` without a network looks: the bare
// binary's socket if it is there, else the managed plugin mynet:latest's.
func (c dockerCLI) defaultSocket(ctx context.Context) (string, error) {
	const bare = pluginsDir + "/mynet.sock"
	if exists(bare) {
		return bare, nil
	}
	sock, err := c.managedSocket(ctx, "mynet:latest")
	if err != nil {
		return "", fmt.Errorf("no %s and no managed plugin mynet:latest (%v): --socket names mynet's socket", bare, err)
	}
	return sock, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func firstLine(b []byte) []byte {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	return line
}
