package driver

import (
	"fmt"
	"strings"
	"time"

	"github.com/mynet/mynet/api"
)

// Endpoints lists the endpoints of the selected networks, after removing
// dead attachments so that none is shown. A network prefix that matches
// no network is an error, so that a typo does not look like "no
// endpoints".
func (d *Driver) Endpoints(q *api.EndpointsQuery) (*api.EndpointsAnswer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reap(time.Now())
	ans := &api.EndpointsAnswer{Networks: []api.NetworkInfo{}, Endpoints: []api.EndpointInfo{}}
	for _, id := range sortedKeys(d.networks) {
		if strings.HasPrefix(id, q.Network) {
			ans.Networks = append(ans.Networks, d.networks[id].info())
		}
	}
	if len(ans.Networks) == 0 && q.Network != "" {
		return nil, fmt.Errorf("no mynet network ID starts with %q: %w", q.Network, ErrNotFound)
	}
	for _, ep := range d.sortedEndpoints() {
		if strings.HasPrefix(ep.NetworkID, q.Network) {
			ans.Endpoints = append(ans.Endpoints, d.endpointInfo(ep))
		}
	}
	return ans, nil
}

func (n *networkState) info() api.NetworkInfo {
	i := api.NetworkInfo{ID: n.ID, Bridge: n.Bridge}
	if n.Subnet.IsValid() {
		i.Subnet = n.Subnet.String()
	}
	if n.Gateway.IsValid() {
		i.Gateway = n.Gateway.Addr().String()
	}
	if n.Subnet6.IsValid() {
		i.Subnet6 = n.Subnet6.String()
	}
	if n.Gateway6.IsValid() {
		i.Gateway6 = n.Gateway6.Addr().String()
	}
	return i
}

// endpointInfo describes ep. Caller holds d.mu.
func (d *Driver) endpointInfo(ep *endpointState) api.EndpointInfo {
	i := api.EndpointInfo{ID: ep.ID, NetworkID: ep.NetworkID, Origin: api.OriginDocker, MAC: ep.MAC,
		HostVeth: ep.HostVeth, PeerVeth: ep.PeerVeth, SandboxKey: ep.SandboxKey}
	if ep.Address.IsValid() {
		i.Address = ep.Address.String()
	}
	if ep.Address6.IsValid() {
		i.Address6 = ep.Address6.String()
	}
	if ep.Published {
		i.Ports = ep.published().Ports
	}
	if ep.Attach != nil {
		a := *ep.Attach
		i.Origin, i.Attach = api.OriginAttach, &a
	}
	return i
}
