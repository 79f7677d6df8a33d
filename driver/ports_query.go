package driver

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mynet/mynet/api"
)

// Ports answers a PortsQuery from memory. A prefix that names no endpoint
// and no network is an error, so that a typo does not look like "no ports".
func (d *Driver) Ports(q *api.PortsQuery) (*api.PortsAnswer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range q.Prefixes {
		if !d.knownPrefix(p) {
			return nil, fmt.Errorf("no mynet endpoint or network ID starts with %q: %w", p, ErrNotFound)
		}
	}
	ans := &api.PortsAnswer{Endpoints: []api.EndpointPorts{}}
	for _, ep := range d.sortedEndpoints() {
		if !ep.Published || !portsSelect(q, ep) {
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

func portsSelect(q *api.PortsQuery, ep *endpointState) bool {
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

func (ep *endpointState) published() api.EndpointPorts {
	out := api.EndpointPorts{EndpointID: ep.ID, NetworkID: ep.NetworkID, SandboxKey: ep.SandboxKey, Ports: []api.PublishedPort{}}
	if ep.Address.IsValid() {
		out.Address = ep.Address.Addr().String()
	}
	if ep.Address6.IsValid() {
		out.Address6 = ep.Address6.Addr().String()
	}
	for _, m := range ep.Mapped {
		out.Ports = append(out.Ports, api.PublishedPort{Proto: m.Proto, Port: m.Port, PortEnd: m.PortEnd,
			HostIP: m.HostIP.String(), HostPort: m.HostPort})
	}
	return out
}
