package driver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
)

// endpointState is an endpoint as recorded in the store.
type endpointState struct {
	ID        string       `json:"id"`
	NetworkID string       `json:"network_id"`
	HostVeth  string       `json:"host_veth"`
	PeerVeth  string       `json:"peer_veth"`
	Address   netip.Prefix `json:"address"`
	MAC       string       `json:"mac"`
	// SandboxKey is the container's netns path, known from Join.
	SandboxKey string `json:"sandbox_key,omitempty"`
}

func (ep *endpointState) logFields() logrus.Fields {
	return logrus.Fields{"network": short(ep.NetworkID, 12), "endpoint": short(ep.ID, 12), "veth": ep.HostVeth, "address": ep.Address}
}

// CreateEndpoint creates the endpoint's veth pair with one end on the
// network's bridge and records it. It answers a MAC only when the engine
// sent none: the engine rejects any field it had already set, even to the
// same value.
func (d *Driver) CreateEndpoint(req *network.CreateEndpointRequest) (_ *network.CreateEndpointResponse, retErr error) {
	ep, deriveMAC, err := newEndpoint(req)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.network(req.NetworkID)
	if err != nil {
		return nil, err
	}
	if _, ok := d.endpoints[ep.ID]; ok {
		return nil, fmt.Errorf("endpoint %s already exists", short(ep.ID, 12))
	}
	if !n.Subnet.Contains(ep.Address.Addr()) {
		return nil, fmt.Errorf("endpoint address %s is outside subnet %s of network %s", ep.Address.Addr(), n.Subnet, short(n.ID, 12))
	}
	br, err := d.bridgeOf(n)
	if err != nil {
		return nil, err
	}
	mac, _ := net.ParseMAC(ep.MAC)
	spec := vethSpec{Host: ep.HostVeth, Peer: ep.PeerVeth, Owner: ep.ID, Bridge: br, MTU: n.Options.MTU, MAC: mac}
	if err := createVeth(d.nl, spec); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", short(ep.ID, 12), err)
	}
	defer func() {
		if retErr != nil {
			_ = removeVeth(d.nl, ep.HostVeth, ep.PeerVeth)
		}
	}()
	if err := d.st.Put(endpointsBucket, ep.ID, ep); err != nil {
		return nil, fmt.Errorf("record endpoint %s: %w", short(ep.ID, 12), err)
	}
	d.endpoints[ep.ID] = ep
	d.log.WithFields(ep.logFields()).Info("endpoint created")
	if !deriveMAC {
		return &network.CreateEndpointResponse{}, nil
	}
	return &network.CreateEndpointResponse{Interface: &network.EndpointInterface{MacAddress: ep.MAC}}, nil
}

// newEndpoint validates the request into a record; deriveMAC reports that
// the MAC was chosen here and must be returned to the engine.
func newEndpoint(req *network.CreateEndpointRequest) (_ *endpointState, deriveMAC bool, _ error) {
	if req.EndpointID == "" {
		return nil, false, errors.New("create endpoint: EndpointID is empty")
	}
	if req.Interface == nil || req.Interface.Address == "" {
		return nil, false, errors.New("create endpoint: no IPv4 address from IPAM; mynet needs one (use --ipam-driver mynet or Docker's default IPAM, not null)")
	}
	if req.Interface.AddressIPv6 != "" {
		return nil, false, errors.New("create endpoint: IPv6 is not supported by mynet yet")
	}
	addr, err := netip.ParsePrefix(req.Interface.Address)
	if err != nil || !addr.Addr().Is4() {
		return nil, false, fmt.Errorf("create endpoint: address %q is not an IPv4 CIDR", req.Interface.Address)
	}
	ep := &endpointState{ID: req.EndpointID, NetworkID: req.NetworkID, Address: addr}
	ep.HostVeth, ep.PeerVeth = vethNames(req.EndpointID)
	if req.Interface.MacAddress != "" {
		mac, err := net.ParseMAC(req.Interface.MacAddress)
		if err != nil {
			return nil, false, fmt.Errorf("create endpoint: MAC address %q: %w", req.Interface.MacAddress, err)
		}
		ep.MAC = mac.String()
		return ep, false, nil
	}
	ep.MAC = macFromIPv4(addr.Addr()).String()
	return ep, true, nil
}

// bridgeOf returns the network's bridge, re-creating it if it vanished
// (deleted by hand, or the host rebooted under a stale record).
func (d *Driver) bridgeOf(n *networkState) (netlink.Link, error) {
	br, err := linkByName(d.nl, n.Bridge)
	if err != nil {
		return nil, err
	}
	if br == nil {
		d.log.WithFields(n.logFields()).Warn("bridge missing, re-creating it")
		if err := d.programNetwork(n); err != nil {
			return nil, err
		}
		if br, err = d.nl.LinkByName(n.Bridge); err != nil {
			return nil, fmt.Errorf("look up bridge %s: %w", n.Bridge, err)
		}
	}
	return br, nil
}
