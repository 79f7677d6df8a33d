package driver

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/firewall"
)

// networkState is a network as recorded in the store.
type networkState struct {
	ID      string       `json:"id"`
	Bridge  string       `json:"bridge"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Prefix `json:"gateway,omitzero"` // address on the bridge, with the subnet's length
	Options netOptions   `json:"options"`
	// OwnBridge: mynet created the bridge and deletes it with the network.
	// An adopted bridge (named by the user, existing before) is never
	// deleted; only the address mynet added to it is removed.
	OwnBridge bool `json:"own_bridge"`
	AddedAddr bool `json:"added_addr"`
}

func (n *networkState) firewall() firewall.Network {
	return firewall.Network{Bridge: n.Bridge, Subnet: n.Subnet,
		Masquerade: n.Options.Masquerade, ICC: n.Options.ICC, Internal: n.Options.Internal}
}

func (n *networkState) logFields() logrus.Fields {
	return logrus.Fields{"network": short(n.ID, 12), "bridge": n.Bridge, "subnet": n.Subnet}
}

// CreateNetwork creates the network's bridge with the gateway address and
// its firewall rules, then records it. Every step is undone if a later one
// fails.
func (d *Driver) CreateNetwork(req *network.CreateNetworkRequest) (retErr error) {
	n, err := d.newNetwork(req)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkConflicts(n); err != nil {
		return err
	}
	if err := d.programNetwork(n); err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			_ = d.unprogramNetwork(n) // best effort; the create error is what the user needs
		}
	}()
	if err := d.st.Put(networksBucket, n.ID, n); err != nil {
		return fmt.Errorf("record network %s: %w", short(n.ID, 12), err)
	}
	d.networks[n.ID] = n
	d.log.WithFields(n.logFields()).Info("network created")
	for _, k := range n.Options.Ignored {
		d.log.WithFields(n.logFields()).WithField("option", k).Debug("option does not apply to mynet, ignored")
	}
	return nil
}

// newNetwork validates the request into a network record, touching nothing.
func (d *Driver) newNetwork(req *network.CreateNetworkRequest) (*networkState, error) {
	if req.NetworkID == "" {
		return nil, errors.New("create network: NetworkID is empty")
	}
	opts, err := parseNetworkOptions(req.Options)
	if err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	if opts.IPv6 || len(req.IPv6Data) > 0 {
		return nil, errors.New("create network: IPv6 is not supported by mynet yet; create the network without --ipv6")
	}
	if len(req.IPv4Data) != 1 || req.IPv4Data[0] == nil {
		return nil, fmt.Errorf("create network: mynet needs exactly one IPv4 subnet, got %d", len(req.IPv4Data))
	}
	n := &networkState{ID: req.NetworkID, Options: opts, Bridge: opts.BridgeName}
	if n.Bridge == "" {
		n.Bridge = bridgeName(req.NetworkID)
	}
	if n.Subnet, n.Gateway, err = parseIPAMData(req.IPv4Data[0]); err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	return n, nil
}

// parseIPAMData reads the pool and the gateway (a CIDR with the pool's
// length) the engine got from IPAM.
func parseIPAMData(d *network.IPAMData) (subnet, gw netip.Prefix, err error) {
	subnet, err = netip.ParsePrefix(d.Pool)
	if err != nil || !subnet.Addr().Is4() {
		return subnet, gw, fmt.Errorf("IPv4 pool %q is not an IPv4 CIDR", d.Pool)
	}
	if d.Gateway == "" {
		return subnet, gw, nil
	}
	if gw, err = netip.ParsePrefix(d.Gateway); err != nil {
		// Older engines and hand-made requests may send a bare address.
		a, aerr := netip.ParseAddr(d.Gateway)
		if aerr != nil {
			return subnet, gw, fmt.Errorf("gateway %q is not an IPv4 address", d.Gateway)
		}
		gw = netip.PrefixFrom(a, subnet.Bits())
	}
	if !subnet.Contains(gw.Addr()) {
		return subnet, gw, fmt.Errorf("gateway %s is outside subnet %s", gw.Addr(), subnet)
	}
	return subnet, netip.PrefixFrom(gw.Addr(), subnet.Bits()), nil
}

// checkConflicts refuses a network whose subnet overlaps, or whose bridge
// name equals, another mynet network's; with Docker's default IPAM nothing
// else would stop two networks sharing addresses. Caller holds d.mu.
func (d *Driver) checkConflicts(n *networkState) error {
	if old, ok := d.networks[n.ID]; ok {
		return fmt.Errorf("network %s already exists (bridge %s)", short(n.ID, 12), old.Bridge)
	}
	for _, o := range d.networks {
		if o.Subnet.Overlaps(n.Subnet) {
			return fmt.Errorf("subnet %s overlaps subnet %s of mynet network %s (bridge %s)", n.Subnet, o.Subnet, short(o.ID, 12), o.Bridge)
		}
		if o.Bridge == n.Bridge {
			return fmt.Errorf("bridge %s is already used by mynet network %s: choose another %s", n.Bridge, short(o.ID, 12), optBridgeName)
		}
	}
	return nil
}

// programNetwork brings the kernel in line with n: forwarding on, bridge
// with address up, firewall rules. Idempotent, so it also serves Restore.
// On failure it undoes what it created. Caller holds d.mu.
func (d *Driver) programNetwork(n *networkState) (retErr error) {
	if err := d.fw.EnableForwarding(); err != nil {
		return err
	}
	owned, added, err := ensureBridge(d.nl, bridgeSpec{Name: n.Bridge, Owner: n.ID, MTU: n.Options.MTU, Gateway: n.Gateway})
	if err != nil {
		return err
	}
	// Ownership learned from the kernel only ever widens: a restore must
	// not forget that mynet created the bridge or added the address.
	n.OwnBridge = n.OwnBridge || owned
	n.AddedAddr = n.AddedAddr || added
	defer func() {
		if retErr != nil && (owned || added) {
			_ = removeBridge(d.nl, n.Bridge, owned, n.Gateway, added)
		}
	}()
	if err := d.fw.EnsureNetwork(n.firewall()); err != nil {
		return fmt.Errorf("firewall rules for bridge %s: %w", n.Bridge, err)
	}
	return nil
}

// unprogramNetwork removes the rules and the bridge (or, for an adopted
// bridge, the address mynet added). Best effort: it carries on past
// failures and returns them joined. Caller holds d.mu.
func (d *Driver) unprogramNetwork(n *networkState) error {
	var errs []error
	if err := d.fw.RemoveNetwork(n.firewall()); err != nil {
		errs = append(errs, fmt.Errorf("remove firewall rules of bridge %s: %w", n.Bridge, err))
	}
	if err := removeBridge(d.nl, n.Bridge, n.OwnBridge, n.Gateway, n.AddedAddr); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// DeleteNetwork removes the network's endpoints (normally gone already),
// rules and bridge, then its record. An unknown network is not an error:
// the engine retries deletes after crashes and only logs failures.
func (d *Driver) DeleteNetwork(req *network.DeleteNetworkRequest) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.networks[req.NetworkID]
	if !ok {
		d.log.WithField("network", short(req.NetworkID, 12)).Debug("delete of unknown network, nothing to do")
		return nil
	}
	var errs []error
	for _, ep := range d.endpoints {
		if ep.NetworkID == n.ID {
			errs = append(errs, d.removeEndpoint(ep))
		}
	}
	if err := d.unprogramNetwork(n); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		// Keep the record so that a retry can finish the job.
		return fmt.Errorf("delete network %s: %w", short(n.ID, 12), err)
	}
	if err := d.st.Delete(networksBucket, n.ID); err != nil {
		return fmt.Errorf("delete network %s: %w", short(n.ID, 12), err)
	}
	delete(d.networks, n.ID)
	d.log.WithFields(n.logFields()).Info("network removed")
	return nil
}

// network returns the record for id or an error the user can act on.
// Caller holds d.mu.
func (d *Driver) network(id string) (*networkState, error) {
	n, ok := d.networks[id]
	if !ok {
		return nil, fmt.Errorf("network %s: %w in mynet's state; it may have been created by another plugin or the state dir was lost (remove and re-create the network)", short(id, 12), ErrNotFound)
	}
	return n, nil
}
