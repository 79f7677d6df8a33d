//go:build e2e && bench

package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mynet/mynet/e2e/harness"
)

// benchAPI talks to the private engine's API directly, as the docker CLI
// does for `docker run -d` (create, then start) and `docker rm -f`. The
// suite times these calls rather than CLI processes: a CLI start costs a
// fixed ~0.1 s of process start-up on this machine for either driver, which
// would only dilute the ratios.
type benchAPI struct {
	client *http.Client
}

// benchAPITimeout bounds one API call. Docker's bridge with its userland
// proxy starts and stops one docker-proxy process per published port: a
// thousand take minutes on a small machine.
const benchAPITimeout = 10 * time.Minute

// benchAPIVersion is understood by both engines (20.10's maximum).
const benchAPIVersion = "/v1.41"

func newBenchAPI(l harness.Layout) *benchAPI {
	return &benchAPI{client: &http.Client{
		Timeout: benchAPITimeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", l.DockerSock)
			},
			MaxIdleConnsPerHost: 64,
		},
	}}
}

// call sends a request and decodes a JSON answer into out (when not nil).
func (a *benchAPI) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://docker"+benchAPIVersion+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// benchNet is a network to create: driver "bridge" with the default IPAM,
// or mynet as driver and IPAM.
type benchNet struct {
	name, driver, subnet string
}

func (a *benchAPI) createNetwork(n benchNet) (string, error) {
	ipamDriver := "default"
	if n.driver != "bridge" {
		ipamDriver = n.driver
	}
	body := map[string]any{
		"Name": n.name, "Driver": n.driver, "CheckDuplicate": true,
		"IPAM": map[string]any{"Driver": ipamDriver, "Config": []map[string]string{{"Subnet": n.subnet}}},
	}
	var out struct{ Id string }
	err := a.call(http.MethodPost, "/networks/create", body, &out)
	return out.Id, err
}

func (a *benchAPI) removeNetwork(id string) error {
	return a.call(http.MethodDelete, "/networks/"+url.PathEscape(id), nil, nil)
}

// benchCtr is a container to run: image and command on a network, with
// published TCP ports.
type benchCtr struct {
	name, network, image string
	cmd                  []string
	publish              []benchPort
	cpus                 string // cpuset, e.g. "1"; empty: any CPU
}

// benchPort publishes container port ctr on host port host (all addresses).
type benchPort struct{ host, ctr int }

// benchPortRange publishes n ports: host+i -> ctr+i.
func benchPortRange(host, ctr, n int) []benchPort {
	ps := make([]benchPort, n)
	for i := range ps {
		ps[i] = benchPort{host + i, ctr + i}
	}
	return ps
}

// createBody is what the CLI sends for `docker run -d -p H:C ...`; it too
// expands a range into one binding per port.
func (c benchCtr) createBody() map[string]any {
	exposed := map[string]any{}
	bindings := map[string]any{}
	for _, p := range c.publish {
		key := strconv.Itoa(p.ctr) + "/tcp"
		exposed[key] = struct{}{}
		bindings[key] = []map[string]string{{"HostIp": "", "HostPort": strconv.Itoa(p.host)}}
	}
	return map[string]any{
		"Image": c.image, "Cmd": c.cmd, "StopTimeout": 1, "ExposedPorts": exposed,
		"HostConfig": map[string]any{"NetworkMode": c.network, "PortBindings": bindings, "CpusetCpus": c.cpus},
	}
}

// run is `docker run -d`: create and start. It returns the container's id
// (also when the start failed, so the caller can remove it).
func (a *benchAPI) run(c benchCtr) (string, error) {
	var out struct{ Id string }
	if err := a.call(http.MethodPost, "/containers/create?name="+url.QueryEscape(c.name), c.createBody(), &out); err != nil {
		return "", err
	}
	return out.Id, a.call(http.MethodPost, "/containers/"+out.Id+"/start", nil, nil)
}

// remove is `docker rm -f`.
func (a *benchAPI) remove(id string) error {
	return a.call(http.MethodDelete, "/containers/"+url.PathEscape(id)+"?force=1", nil, nil)
}

// ip returns a container's address on network.
func (a *benchAPI) ip(id, network string) (string, error) {
	var out struct {
		NetworkSettings struct {
			Networks map[string]struct{ IPAddress string }
		}
	}
	if err := a.call(http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", nil, &out); err != nil {
		return "", err
	}
	n, ok := out.NetworkSettings.Networks[network]
	if !ok || n.IPAddress == "" {
		return "", fmt.Errorf("container %s has no address on %s", id, network)
	}
	return n.IPAddress, nil
}

// benchTimed runs fn and returns how long it took in milliseconds.
func benchTimed(fn func() error) (float64, error) {
	start := time.Now()
	err := fn()
	return float64(time.Since(start)) / float64(time.Millisecond), err
}
