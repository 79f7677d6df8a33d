package driver

import (
	"fmt"
	"slices"
	"strings"
)

// PortsQuery selects endpoints for Ports, the query behind `mynet ports`
// (the engine cannot show a remote driver's ports: moby/libnetwork#2451).
// With neither field set it selects every endpoint.
type PortsQuery struct {
	// Endpoints are exact endpoint IDs, e.g. a container's, found by the
	// CLI with `docker container inspect`.
	Endpoints []string `json:",omitempty"`
	// Prefixes are endpoint or network ID prefixes.
	Prefixes []string `json:",omitempty"`
}

// PortsAnswer lists the selected endpoints that have published ports.
type PortsAnswer struct {
	Endpoints []EndpointPorts
}

// EndpointPorts is one endpoint's published ports.
type EndpointPorts struct {
	EndpointID string
	NetworkID  string
	SandboxKey string `json:",omitempty"`
	Address    string `json:",omitempty"`
	Address6   string `json:",omitempty"`
	Ports      []PublishedPort
}

// PublishedPort is a run of published ports: container ports
// Port..PortEnd on HostIP's HostPort.. .
type PublishedPort struct {
	Proto    string
	Port     uint16
	PortEnd  uint16
	HostIP   string
	HostPort uint16
}

// Ports answers a PortsQuery from memory. A prefix that names no endpoint
// and no network is an error, so that a typo does not look like "no ports".
func (d *Driver) Ports(q *PortsQuery) (*PortsAnswer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range q.Prefixes {
		if !d.knownPrefix(p) {
			return nil, fmt.Errorf("no mynet endpoint or network ID starts with %q: %w", p, ErrNotFound)
		}
	}
	ans := &PortsAnswer{Endpoints: []EndpointPorts{}}
	for _, ep := range d.sortedEndpoints() {
		if !ep.Published || !q.selects(ep) {
			continue
		}
		ans.Endpoints = append(ans.Endpoints, ep.published())
	}
	return ans, nil
}

func (d *Driver) knownPrefix(p string) bool {
	if p == "" {
		return false
	}
	for id := range d.networks {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	for id := range d.endpoints {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

func (q *PortsQuery) selects(ep *endpointState) bool {
	if len(q.Endpoints) == 0 && len(q.Prefixes) == 0 {
		return true
	}
	if slices.Contains(q.Endpoints, ep.ID) {
		return true
	}
	for _, p := range q.Prefixes {
		if strings.HasPrefix(ep.ID, p) || strings.HasPrefix(ep.NetworkID, p) {
			return true
		}
	}
	return false
}

func (ep *endpointState) published() EndpointPorts {
	out := EndpointPorts{EndpointID: ep.ID, NetworkID: ep.NetworkID, SandboxKey: ep.SandboxKey, Ports: []PublishedPort{}}
	if ep.Address.IsValid() {
		out.Address = ep.Address.Addr().String()
	}
	if ep.Address6.IsValid() {
		out.Address6 = ep.Address6.Addr().String()
	}
	for _, m := range ep.Mapped {
		out.Ports = append(out.Ports, PublishedPort{Proto: m.Proto, Port: m.Port, PortEnd: m.PortEnd,
			HostIP: m.HostIP.String(), HostPort: m.HostPort})
	}
	return out
}
