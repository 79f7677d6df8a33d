package driver

import (
	"errors"
	"fmt"
	"time"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/ids"
)

// Join hands the container end of the veth to the engine, which moves it
// into the sandbox as eth<N> and sets its address. The gateway must be
// returned (or DisableGatewayService set): without one the engine attaches
// an extra docker_gwbridge interface, and since 26.x its DNS stops
// forwarding external names.
func (d *Driver) Join(req *network.JoinRequest) (*network.JoinResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.network(req.NetworkID)
	if err != nil {
		return nil, err
	}
	ep, err := d.endpoint(req.EndpointID)
	if err != nil {
		return nil, err
	}
	// No store write for the key alone: an fsynced write costs a start
	// 0.3–1.5 ms while the engine writes its own state, and the key
	// matters after a restart only for published endpoints, whose
	// records are written when they publish (see endpointState).
	ep.SandboxKey = req.SandboxKey
	d.orphans.noteJoin(ep.ID, time.Now())
	// The ports are published by ProgramExternalConnectivity, which
	// follows for the container's gateway endpoint.
	if err := d.recordPorts(ep, req.Options); err != nil {
		return nil, err
	}
	resp := &network.JoinResponse{InterfaceName: network.InterfaceName{SrcName: ep.PeerVeth, DstPrefix: n.Options.IfacePrefix}}
	resp.Gateway, resp.GatewayIPv6 = n.joinGateways()
	// Without a gateway the engine would attach docker_gwbridge to give the
	// container a way out; an internal network has none on purpose.
	resp.DisableGatewayService = resp.Gateway == "" && resp.GatewayIPv6 == ""
	d.log.WithFields(ep.logFields()).WithField("sandbox", req.SandboxKey).Debug("endpoint joined")
	return resp, nil
}

// joinGateways are the default routes a container gets: none on internal
// networks or in isolated mode, where the bridge has no address.
func (n *networkState) joinGateways() (gw4, gw6 string) {
	if n.Options.Internal {
		return "", ""
	}
	if a := n.bridgeAddr4(); a.IsValid() || n.Options.InhibitIPv4 && n.Gateway.IsValid() && n.Options.GWModeV4 != firewall.ModeIsolated {
		gw4 = n.Gateway.Addr().String()
	}
	if a := n.bridgeAddr6(); a.IsValid() {
		gw6 = a.Addr().String()
	}
	return gw4, gw6
}

// Leave unpublishes the endpoint's ports (normally done by the Revoke
// before it, which does not come after a plugin or engine restart); the
// engine moves the interface back to the host namespace, and
// DeleteEndpoint removes the pair. An unknown endpoint is not an error (the
// engine only logs Leave failures and retries after crashes).
func (d *Driver) Leave(req *network.LeaveRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[req.EndpointID]
	if !ok {
		d.log.WithField("endpoint", ids.Short(req.EndpointID)).Debug("leave of unknown endpoint, nothing to do")
		return nil
	}
	if err := d.unpublish(ep); err != nil {
		return err
	}
	d.log.WithFields(ep.logFields()).Debug("endpoint left")
	return nil
}

// ErrEndpointDeleting refuses a call for an endpoint whose DeleteEndpoint
// is under way: publishing it then would leave rules and held ports that
// nothing removes once the endpoint is forgotten.
var ErrEndpointDeleting = errors.New("is being deleted")

// DeleteEndpoint removes the veth pair and the record. An unknown endpoint
// is success: the engine calls this from rollbacks and stale-endpoint
// cleanup, possibly more than once. The ports are unpublished under d.mu;
// the pair and the record are removed without it, as CreateEndpoint makes
// them: deleting a veth waits for the kernel's rtnl lock. Meanwhile the
// endpoint is marked as being deleted, so a Join or Program that comes in
// between (a late Program the engine gave up on and rolled back) is
// refused instead of publishing again.
func (d *Driver) DeleteEndpoint(req *network.DeleteEndpointRequest) error {
	ep, err := d.beginDelete(req.EndpointID)
	if ep == nil || err != nil {
		return err
	}
	err = d.removePairAndRecord(ep)
	d.endDelete(ep, err == nil)
	return err
}

// beginDelete unpublishes the endpoint and marks it as being deleted, in
// one hold of d.mu; nil for an unknown endpoint.
func (d *Driver) beginDelete(id string) (*endpointState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[id]
	if !ok {
		d.log.WithField("endpoint", ids.Short(id)).Debug("delete of unknown endpoint, nothing to do")
		return nil, nil
	}
	if err := d.unpublish(ep); err != nil {
		return nil, fmt.Errorf("delete endpoint %s: %w", ids.Short(ep.ID), err)
	}
	ep.deleting++
	return ep, nil
}

// endDelete lifts beginDelete's mark and, once the pair and the record
// are gone, forgets the endpoint. A failed delete leaves it known, for the
// engine's retry.
func (d *Driver) endDelete(ep *endpointState, dropped bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep.deleting--
	if !dropped {
		return
	}
	if d.endpoints[ep.ID] == ep {
		delete(d.endpoints, ep.ID)
	}
	d.log.WithFields(ep.logFields()).Info("endpoint removed")
}

// removeEndpoint unpublishes the endpoint's ports, deletes the pair, then
// the record; a failure keeps the record so a retry can finish. The
// engine releases an endpoint's addresses itself (ReleaseAddress); an
// attachment's are mynet's to release, see removeAttachment. Caller holds
// d.mu.
func (d *Driver) removeEndpoint(ep *endpointState) error {
	if err := d.unpublish(ep); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", ids.Short(ep.ID), err)
	}
	if err := d.removePairAndRecord(ep); err != nil {
		return err
	}
	delete(d.endpoints, ep.ID)
	d.log.WithFields(ep.logFields()).Info("endpoint removed")
	return nil
}

// removePairAndRecord deletes ep's pair, then its record: a failure keeps
// the record so a retry can finish. Both are idempotent. It is the part of
// removeEndpoint that DeleteEndpoint runs without d.mu (deleting a veth
// waits for the kernel's rtnl lock); it leaves ports and memory alone.
func (d *Driver) removePairAndRecord(ep *endpointState) error {
	if err := removeVeth(d.nl, ep.HostVeth, ep.PeerVeth); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", ids.Short(ep.ID), err)
	}
	if err := d.st.Delete(endpointsBucket, ep.ID); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", ids.Short(ep.ID), err)
	}
	return nil
}

// EndpointInfo answers operational data for `docker inspect`-style
// tooling. The engine calls it after every join and disconnect, so it only
// reads memory.
func (d *Driver) EndpointInfo(req *network.InfoRequest) (*network.InfoResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, err := d.endpoint(req.EndpointID)
	if err != nil {
		return nil, err
	}
	return &network.InfoResponse{Value: map[string]string{
		"host_veth": ep.HostVeth, "address": ep.Address.String(), "mac": ep.MAC,
	}}, nil
}

// ProgramExternalConnectivity publishes the endpoint's ports: the engine
// sends it to the container's gateway endpoint (after Join, and when the
// gateway moves), with the port bindings in its options. An error fails
// the container's start (or the network connect); nothing is left behind.
func (d *Driver) ProgramExternalConnectivity(req *network.ProgramExternalConnectivityRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, err := d.endpoint(req.EndpointID)
	if err != nil {
		return err
	}
	n, err := d.network(ep.NetworkID)
	if err != nil {
		return err
	}
	if err := d.recordPorts(ep, req.Options); err != nil {
		return err
	}
	return d.publish(n, ep)
}

// RevokeExternalConnectivity unpublishes the endpoint's ports: it stopped
// being the container's gateway, or is leaving. Idempotent; an unknown
// endpoint is not an error.
func (d *Driver) RevokeExternalConnectivity(req *network.RevokeExternalConnectivityRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ep, ok := d.endpoints[req.EndpointID]
	if !ok {
		return nil
	}
	return d.unpublish(ep)
}

// endpoint returns the record for id. Caller holds d.mu.
func (d *Driver) endpoint(id string) (*endpointState, error) {
	ep, ok := d.endpoints[id]
	if !ok {
		return nil, fmt.Errorf("endpoint %s: %w in mynet's state", ids.Short(id), ErrNotFound)
	}
	if ep.deleting > 0 {
		return nil, fmt.Errorf("endpoint %s %w", ids.Short(id), ErrEndpointDeleting)
	}
	return ep, nil
}
