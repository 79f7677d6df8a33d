package driver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/api"
	"github.com/mynet/mynet/internal/ids"
	"github.com/mynet/mynet/ports"
)

// endpointState is an endpoint as recorded in the store.
type endpointState struct {
	ID        string       `json:"id"`
	NetworkID string       `json:"network_id"`
	HostVeth  string       `json:"host_veth"`
	PeerVeth  string       `json:"peer_veth"`
	Address   netip.Prefix `json:"address,omitzero"`
	Address6  netip.Prefix `json:"address6,omitzero"`
	MAC       string       `json:"mac"`

	// deleting counts the DeleteEndpoint calls under way (see
	// beginDelete); under d.mu, never stored.
	deleting int

	// SandboxKey is the container's netns path, known from Join. Join
	// does not write it: it is saved with the endpoint's next write, which
	// for an endpoint that publishes is its ProgramExternalConnectivity,
	// and only a published endpoint's key is read back after a restart
	// (takeOver). An unpublished endpoint may come back without it.
	SandboxKey string `json:"sandbox_key,omitempty"`

	// Ports are the container's port bindings (-p, -P), as the engine sent
	// them with CreateEndpoint, Join or ProgramExternalConnectivity.
	Ports []ports.Request `json:"ports,omitempty"`
	// Mapped are the host ports last chosen for MappedFor (the Ports of
	// that time). While Published they are held and their rules are in
	// place; after an unpublish they stay as the endpoint's preferred
	// ports, so an ephemeral port is kept for the endpoint's life.
	Mapped    []ports.Mapping `json:"mapped,omitempty"`
	MappedFor []ports.Request `json:"mapped_for,omitempty"`
	Published bool            `json:"published,omitempty"`

	// Attach is set on endpoints `mynet attach` made (attach.go), which
	// no engine knows of.
	Attach *api.Attachment `json:"attach,omitempty"`
	// Created is when CreateEndpoint made the record (zero in records of
	// older builds): `mynet prune` leaves young endpoints alone.
	Created time.Time `json:"created,omitzero"`
}

func (ep *endpointState) logFields() logrus.Fields {
	f := logrus.Fields{"network": ids.Short(ep.NetworkID), "endpoint": ids.Short(ep.ID), "veth": ep.HostVeth}
	if ep.Address.IsValid() {
		f["address"] = ep.Address
	}
	if ep.Address6.IsValid() {
		f["address6"] = ep.Address6
	}
	return f
}

// CreateEndpoint creates the endpoint's veth pair with one end on the
// network's bridge and records it. It answers a MAC only when the engine
// sent none: the engine rejects any field it had already set, even to the
// same value.
//
// The pair and the record are made without d.mu held: while containers
// start in a burst, creating a veth waits for the kernel's rtnl lock (tens
// of ms, the engine holds it to move links into namespaces), and every
// other call, Join, Program, EndpointOperInfo of other containers, which
// only read memory, would queue behind it. The ID is reserved in
// d.creating meanwhile; the engine makes each endpoint once and sends
// nothing else for it before the answer.
func (d *Driver) CreateEndpoint(req *network.CreateEndpointRequest) (_ *network.CreateEndpointResponse, retErr error) {
	ep, deriveMAC, err := newEndpoint(req)
	if err != nil {
		return nil, err
	}
	spec, err := d.reserveEndpoint(req, ep)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			d.mu.Lock()
			delete(d.creating, ep.ID)
			d.mu.Unlock()
		}
	}()
	if err := createVeth(d.nl, spec); err != nil {
		if d.networkGone(ep) {
			// Its bridge went with it; the kernel's EINVAL says nothing.
			return nil, errNetworkDeleted(ep)
		}
		return nil, fmt.Errorf("endpoint %s: %w", ids.Short(ep.ID), err)
	}
	defer func() {
		if retErr != nil {
			warnUndo(d.log, ep.logFields(), "delete the endpoint's veth pair", removeVeth(d.nl, ep.HostVeth, ep.PeerVeth))
		}
	}()
	if err := d.st.Put(endpointsBucket, ep.ID, ep); err != nil {
		return nil, fmt.Errorf("record endpoint %s: %w", ids.Short(ep.ID), err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.networks[ep.NetworkID]; !ok {
		warnUndo(d.log, ep.logFields(), "delete the endpoint's record", d.st.Delete(endpointsBucket, ep.ID))
		return nil, errNetworkDeleted(ep)
	}
	delete(d.creating, ep.ID)
	d.endpoints[ep.ID] = ep
	d.log.WithFields(ep.logFields()).Info("endpoint created")
	if !deriveMAC {
		return &network.CreateEndpointResponse{}, nil
	}
	return &network.CreateEndpointResponse{Interface: &network.EndpointInterface{MacAddress: ep.MAC}}, nil
}

// networkGone reports whether ep's network is gone: DeleteNetwork may run
// while CreateEndpoint makes the pair without d.mu.
func (d *Driver) networkGone(ep *endpointState) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.networks[ep.NetworkID]
	return !ok
}

func errNetworkDeleted(ep *endpointState) error {
	return fmt.Errorf("endpoint %s: network %s was deleted while the endpoint was being created", ids.Short(ep.ID), ids.Short(ep.NetworkID))
}

// reserveEndpoint checks ep against its network, reserves its ID and
// returns the pair to create. It holds d.mu only for that.
func (d *Driver) reserveEndpoint(req *network.CreateEndpointRequest, ep *endpointState) (vethSpec, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.network(req.NetworkID)
	if err != nil {
		return vethSpec{}, err
	}
	if _, ok := d.endpoints[ep.ID]; ok || d.creating[ep.ID] {
		return vethSpec{}, fmt.Errorf("endpoint %s already exists", ids.Short(ep.ID))
	}
	if err := checkEndpointAddrs(n, ep); err != nil {
		return vethSpec{}, err
	}
	if ep.Ports, _, err = portRequestsFrom(req.Options); err != nil {
		return vethSpec{}, fmt.Errorf("create endpoint: %w", err)
	}
	br, err := d.bridgeOf(n)
	if err != nil {
		return vethSpec{}, err
	}
	d.creating[ep.ID] = true
	mac, _ := net.ParseMAC(ep.MAC)
	return vethSpec{Host: ep.HostVeth, Peer: ep.PeerVeth, Owner: ep.ID, Inst: d.inst, Bridge: br, MTU: n.Options.MTU, MAC: mac,
		Isolated: !n.Options.ICC, Log: d.log}, nil
}

// newEndpoint validates the request into a record; deriveMAC reports that
// the MAC was chosen here and must be returned to the engine.
func newEndpoint(req *network.CreateEndpointRequest) (_ *endpointState, deriveMAC bool, _ error) {
	if req.EndpointID == "" {
		return nil, false, errors.New("create endpoint: EndpointID is empty")
	}
	if req.Interface == nil || req.Interface.Address == "" && req.Interface.AddressIPv6 == "" {
		return nil, false, errors.New("create endpoint: no address from IPAM; mynet needs one (use --ipam-driver mynet or Docker's default IPAM, not null)")
	}
	ep := &endpointState{ID: req.EndpointID, NetworkID: req.NetworkID, Created: time.Now().UTC()}
	var err error
	if ep.Address, err = parseCIDR(req.Interface.Address, false); err != nil {
		return nil, false, fmt.Errorf("create endpoint: %w", err)
	}
	if ep.Address6, err = parseCIDR(req.Interface.AddressIPv6, true); err != nil {
		return nil, false, fmt.Errorf("create endpoint: %w", err)
	}
	ep.HostVeth, ep.PeerVeth = vethNames(req.EndpointID)
	if req.Interface.MacAddress != "" {
		mac, err := net.ParseMAC(req.Interface.MacAddress)
		if err != nil {
			return nil, false, fmt.Errorf("create endpoint: MAC address %q: %w", req.Interface.MacAddress, err)
		}
		ep.MAC = mac.String()
		return ep, false, nil
	}
	ip := ep.Address.Addr()
	if !ip.IsValid() {
		// IPv6-only: the low 32 bits of the address play the same role.
		b := ep.Address6.Addr().As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	ep.MAC = macFromIPv4(ip).String()
	return ep, true, nil
}

// parseCIDR reads an optional address of one family.
func parseCIDR(s string, v6 bool) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Is6() != v6 || p.Addr().Is4In6() {
		fam := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
		return p, fmt.Errorf("address %q is not an %s CIDR", s, fam)
	}
	return p, nil
}

// checkEndpointAddrs requires each address inside the network's subnet of
// its family, and an address for every family the network has.
func checkEndpointAddrs(n *networkState, ep *endpointState) error {
	for _, c := range []struct {
		addr, subnet netip.Prefix
		fam          string
	}{{ep.Address, n.Subnet, "IPv4"}, {ep.Address6, n.Subnet6, "IPv6"}} {
		switch {
		case c.addr.IsValid() && !c.subnet.IsValid():
			return fmt.Errorf("endpoint has %s address %s but network %s has no %s subnet", c.fam, c.addr.Addr(), ids.Short(n.ID), c.fam)
		case c.addr.IsValid() && !c.subnet.Contains(c.addr.Addr()):
			return fmt.Errorf("endpoint address %s is outside subnet %s of network %s", c.addr.Addr(), c.subnet, ids.Short(n.ID))
		}
	}
	return checkEndpointSpecial(n, ep)
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
