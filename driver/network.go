package driver

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/ids"
)

// networkState is a network as recorded in the store. A network has an
// IPv4 subnet, an IPv6 subnet, or both.
type networkState struct {
	ID       string       `json:"id"`
	Bridge   string       `json:"bridge"`
	Subnet   netip.Prefix `json:"subnet,omitzero"`
	Gateway  netip.Prefix `json:"gateway,omitzero"` // with the subnet's length
	Subnet6  netip.Prefix `json:"subnet6,omitzero"`
	Gateway6 netip.Prefix `json:"gateway6,omitzero"`
	Options  netOptions   `json:"options"`
	// OwnBridge: mynet created the bridge and deletes it with the network.
	// An adopted bridge (named by the user, existing before) is never
	// deleted; only the addresses mynet added to it are removed.
	OwnBridge  bool `json:"own_bridge"`
	AddedAddr  bool `json:"added_addr"`
	AddedAddr6 bool `json:"added_addr6"`
	// MACKept: the bridge is mynet's and keeps its MAC whatever its ports
	// (see createBridge). Records of older builds lack it: their bridges
	// are made to keep theirs once, at the next start.
	MACKept bool `json:"mac_kept,omitempty"`
	// Created is when CreateNetwork made the record (zero in records of
	// older builds): `mynet prune` leaves young networks alone.
	Created time.Time `json:"created,omitzero"`
	// Found is how an adopted bridge was when mynet first programmed it,
	// given back when the network is deleted. Records of older builds
	// lack it: their bridges are left as they are, as those builds did.
	Found *foundBridge `json:"found,omitempty"`
}

// internal reports whether nothing may enter or leave the network.
func (n *networkState) internal() bool {
	return n.Options.Internal || n.Options.GWModeV4 == firewall.ModeIsolated && n.Options.GWModeV6 == firewall.ModeIsolated
}

// bridgeAddr4 is the IPv4 address the bridge carries, if any: none in
// isolated mode or with inhibit_ipv4 (the user addresses the bridge).
func (n *networkState) bridgeAddr4() netip.Prefix {
	if !n.Gateway.IsValid() || n.Options.InhibitIPv4 || n.Options.GWModeV4 == firewall.ModeIsolated {
		return netip.Prefix{}
	}
	return n.Gateway
}

func (n *networkState) bridgeAddr6() netip.Prefix {
	if !n.Gateway6.IsValid() || n.Options.GWModeV6 == firewall.ModeIsolated {
		return netip.Prefix{}
	}
	return n.Gateway6
}

// addedAddrs are the addresses mynet put on the bridge.
func (n *networkState) addedAddrs() []netip.Prefix {
	var out []netip.Prefix
	if n.AddedAddr && n.bridgeAddr4().IsValid() {
		out = append(out, n.bridgeAddr4())
	}
	if n.AddedAddr6 && n.bridgeAddr6().IsValid() {
		out = append(out, n.bridgeAddr6())
	}
	return out
}

func (n *networkState) firewall4() firewall.Network {
	return firewall.Network{Bridge: n.Bridge, Subnet: n.Subnet, Masquerade: n.Options.Masquerade,
		SNATSource: n.Options.HostIPv4, ICC: n.Options.ICC, Internal: n.Options.Internal,
		Mode: n.Options.GWModeV4, TrustedIfaces: n.Options.Trusted}
}

func (n *networkState) firewall6() firewall.Network {
	return firewall.Network{Bridge: n.Bridge, Subnet: n.Subnet6, Masquerade: n.Options.Masquerade,
		SNATSource: n.Options.HostIPv6, ICC: n.Options.ICC, Internal: n.Options.Internal,
		Mode: n.Options.GWModeV6, TrustedIfaces: n.Options.Trusted}
}

func (n *networkState) logFields() logrus.Fields {
	f := logrus.Fields{"network": ids.Short(n.ID), "bridge": n.Bridge}
	if n.Subnet.IsValid() {
		f["subnet"] = n.Subnet
	}
	if n.Subnet6.IsValid() {
		f["subnet6"] = n.Subnet6
	}
	return f
}

// CreateNetwork creates the network's bridge with the gateway addresses and
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
	if err := d.checkHostSubnets(n); err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	if err := d.programNetwork(n); err != nil {
		// A new network: every rule programNetwork ensured is this call's.
		if uerr := d.unprogramFirewall(n); uerr != nil {
			d.log.WithFields(n.logFields()).WithError(uerr).Warn("undoing a failed network create")
		}
		return err
	}
	defer func() {
		if retErr != nil {
			warnUndo(d.log, n.logFields(), "remove the network's bridge and rules", d.unprogramNetwork(n))
		}
	}()
	if err := d.st.Put(networksBucket, n.ID, n); err != nil {
		return fmt.Errorf("record network %s: %w", ids.Short(n.ID), err)
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
	n := &networkState{ID: req.NetworkID, Options: opts, Bridge: opts.BridgeName, Created: time.Now().UTC()}
	if n.Bridge == "" {
		n.Bridge = bridgeName(req.NetworkID)
	}
	if n.Subnet, n.Gateway, err = onePool(req.IPv4Data, false); err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	if n.Subnet6, n.Gateway6, err = onePool(req.IPv6Data, true); err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	if err := d.checkFamilies(n); err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	if err := checkSubnets(n); err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	return n, nil
}

// checkFirewall asks the firewall whether it will take n's rules, so that
// a refusal comes before the bridge is created or adopted (programNetwork),
// not after its MTU was set and its addresses added.
func (n *networkState) checkFirewall() error {
	if n.Subnet.IsValid() {
		if err := firewall.CheckNetwork(n.firewall4(), true); err != nil {
			return err
		}
	}
	if n.Subnet6.IsValid() {
		return firewall.CheckNetwork(n.firewall6(), false)
	}
	return nil
}

// checkFamilies checks the subnets against the options and what this host
// supports.
func (d *Driver) checkFamilies(n *networkState) error {
	switch {
	case !n.Subnet.IsValid() && !n.Subnet6.IsValid():
		return errors.New("no subnet: mynet needs an IPv4 subnet, an IPv6 subnet (--ipv6), or both")
	case n.Subnet6.IsValid() && n.Options.MTU < minMTU6:
		return fmt.Errorf("option %s=%d: IPv6 needs an MTU of at least %d", optMTU, n.Options.MTU, minMTU6)
	case n.Subnet6.IsValid() && d.fw6 == nil:
		return errors.New("IPv6 needs ip6tables, which this host lacks (apt-get install iptables)")
	}
	return nil
}

// onePool reads the engine's IPAM data of one family: none, or one pool
// (Docker's bridge model: one subnet per family).
func onePool(data []*network.IPAMData, v6 bool) (subnet, gw netip.Prefix, err error) {
	fam := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
	switch {
	case len(data) == 0:
		return subnet, gw, nil
	case len(data) > 1 || data[0] == nil:
		return subnet, gw, fmt.Errorf("mynet supports one %s subnet per network, got %d", fam, len(data))
	}
	return parseIPAMData(data[0], v6)
}

// parseIPAMData reads the pool and the gateway (a CIDR with the pool's
// length) the engine got from IPAM.
func parseIPAMData(d *network.IPAMData, v6 bool) (subnet, gw netip.Prefix, err error) {
	fam := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
	subnet, err = netip.ParsePrefix(d.Pool)
	if err != nil || subnet.Addr().Is6() != v6 || subnet.Addr().Is4In6() {
		return subnet, gw, fmt.Errorf("%s pool %q is not an %s CIDR", fam, d.Pool, fam)
	}
	if d.Gateway == "" {
		return subnet, gw, nil
	}
	if gw, err = netip.ParsePrefix(d.Gateway); err != nil {
		// Older engines and hand-made requests may send a bare address.
		a, aerr := netip.ParseAddr(d.Gateway)
		if aerr != nil {
			return subnet, gw, fmt.Errorf("gateway %q is not an %s address", d.Gateway, fam)
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
		return fmt.Errorf("network %s already exists (bridge %s)", ids.Short(n.ID), old.Bridge)
	}
	for _, o := range d.networks {
		for _, pair := range [][2]netip.Prefix{{n.Subnet, o.Subnet}, {n.Subnet6, o.Subnet6}} {
			if pair[0].IsValid() && pair[1].IsValid() && pair[0].Overlaps(pair[1]) {
				return fmt.Errorf("subnet %s overlaps subnet %s of mynet network %s (bridge %s)%s", pair[0], pair[1], ids.Short(o.ID), o.Bridge, pruneHint(o.ID))
			}
		}
		if o.Bridge == n.Bridge {
			return fmt.Errorf("bridge %s is already used by mynet network %s: choose another %s%s", n.Bridge, ids.Short(o.ID), optBridgeName, pruneHint(o.ID))
		}
	}
	return nil
}

// programNetwork brings the kernel in line with n: forwarding on, bridge up
// with its addresses, firewall rules of each family. Idempotent, so it also
// serves Restore and Heal. On failure it undoes only what this call
// created, a bridge or an address (and gives an adopted bridge back as this
// call found it): a restore whose rules fail (xtables lock timeout,
// ip6tables gone) must leave an existing bridge, and the running
// containers on it, alone; rules it ensured stay for the retry (see
// RetryRestore), and a failed CreateNetwork removes them itself. Caller
// holds d.mu.
func (d *Driver) programNetwork(n *networkState) (retErr error) {
	d.dropWildcardTrusted(n)
	// Before any kernel change: Restore comes here without newNetwork's
	// checks, and a record the firewall now refuses is left as it is, not
	// half programmed and undone (which would delete a bridge containers
	// use).
	if err := n.checkFirewall(); err != nil {
		return err
	}
	before, err := inspectBridge(d.nl, n.Bridge)
	if err != nil {
		return err
	}
	if before != nil && !n.OwnBridge && n.Found == nil {
		n.Found = before
	}
	br, owned, err := ensureBridge(d.nl, bridgeSpec{Name: n.Bridge, Owner: n.ID, Inst: d.inst, MTU: n.Options.MTU, KeepMAC: !n.MACKept, Log: d.log})
	if err != nil {
		if before != nil && !n.OwnBridge {
			giveBack(d.nl, n.Bridge, before, d.log)
		}
		return err
	}
	// Ownership learned from the kernel only ever widens: a restore must
	// not forget that mynet created the bridge or added an address.
	n.OwnBridge = n.OwnBridge || owned
	n.MACKept = n.MACKept || owned
	created := before == nil
	var added []netip.Prefix
	defer func() {
		if retErr == nil {
			return
		}
		warnUndo(d.log, n.logFields(), "remove the bridge or the addresses added to it", removeBridge(d.nl, n.Bridge, created, added))
		if !owned && before != nil {
			giveBack(d.nl, n.Bridge, before, d.log)
		}
	}()
	for _, a := range []struct {
		addr  netip.Prefix
		added *bool
	}{{n.bridgeAddr4(), &n.AddedAddr}, {n.bridgeAddr6(), &n.AddedAddr6}} {
		if !a.addr.IsValid() {
			continue
		}
		ok, err := ensureAddr(d.nl, br, a.addr)
		if err != nil {
			return fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
		if ok {
			added = append(added, a.addr)
		}
		*a.added = *a.added || ok
	}
	return d.programFirewall(n)
}

// dropWildcardTrusted removes from a record of an older build the trusted
// interfaces the firewall now refuses ("+", "eth+", "!eth0"): restoring
// them would fail the network's rules, and with them its bridge, where
// dropping them only takes back trust that was never meant to be that
// wide.
func (d *Driver) dropWildcardTrusted(n *networkState) {
	kept := n.Options.Trusted[:0:0]
	for _, ifc := range n.Options.Trusted {
		if err := firewall.CheckMatchName(ifc); err != nil {
			d.log.WithFields(n.logFields()).WithField("interface", ifc).WithError(err).Warn("trusted interface dropped from an older record")
			continue
		}
		kept = append(kept, ifc)
	}
	if len(kept) != len(n.Options.Trusted) {
		n.Options.Trusted = kept
	}
}

// programFirewall ensures forwarding and the rules of each family n has.
// A failure in the second family keeps the first's: they may be the rules
// running containers use (Restore, Heal).
func (d *Driver) programFirewall(n *networkState) error {
	if n.Subnet.IsValid() {
		if err := d.fw.EnableForwarding(); err != nil {
			return err
		}
		if err := d.fw.EnsureNetwork(n.firewall4()); err != nil {
			return fmt.Errorf("IPv4 firewall rules for bridge %s: %w", n.Bridge, err)
		}
	}
	if n.Subnet6.IsValid() {
		if d.fw6 == nil {
			return fmt.Errorf("bridge %s: IPv6 needs ip6tables, which this host lacks", n.Bridge)
		}
		err := d.fw6.EnableForwarding()
		if err == nil {
			err = d.fw6.EnsureNetwork(n.firewall6())
		}
		if err != nil {
			return fmt.Errorf("IPv6 firewall rules for bridge %s: %w", n.Bridge, err)
		}
	}
	return nil
}

// unprogramNetwork removes the rules and the bridge (or, for an adopted
// bridge, the addresses mynet added, and gives it back as it was found).
// Best effort: it carries on past failures and returns them joined. Caller
// holds d.mu.
func (d *Driver) unprogramNetwork(n *networkState) error {
	err := errors.Join(d.unprogramFirewall(n), removeBridge(d.nl, n.Bridge, n.OwnBridge, n.addedAddrs()))
	if !n.OwnBridge && n.Found != nil {
		giveBack(d.nl, n.Bridge, n.Found, d.log)
	}
	return err
}

// unprogramFirewall removes n's rules of each family. Best effort: it
// carries on past failures and returns them joined.
func (d *Driver) unprogramFirewall(n *networkState) error {
	var errs []error
	if n.Subnet.IsValid() {
		if err := d.fw.RemoveNetwork(n.firewall4()); err != nil {
			errs = append(errs, fmt.Errorf("remove IPv4 firewall rules of bridge %s: %w", n.Bridge, err))
		}
	}
	if n.Subnet6.IsValid() && d.fw6 != nil {
		if err := d.fw6.RemoveNetwork(n.firewall6()); err != nil {
			errs = append(errs, fmt.Errorf("remove IPv6 firewall rules of bridge %s: %w", n.Bridge, err))
		}
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
		d.log.WithField("network", ids.Short(req.NetworkID)).Debug("delete of unknown network, nothing to do")
		return nil
	}
	return d.deleteNetwork(n)
}

// deleteNetwork is DeleteNetwork of a known network. Caller holds d.mu.
func (d *Driver) deleteNetwork(n *networkState) error {
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
		return fmt.Errorf("delete network %s: %w", ids.Short(n.ID), err)
	}
	if err := d.st.Delete(networksBucket, n.ID); err != nil {
		return fmt.Errorf("delete network %s: %w", ids.Short(n.ID), err)
	}
	delete(d.networks, n.ID)
	delete(d.unrestored, n.ID)
	d.log.WithFields(n.logFields()).Info("network removed")
	return nil
}

// network returns the record for id or an error the user can act on.
// Caller holds d.mu.
func (d *Driver) network(id string) (*networkState, error) {
	n, ok := d.networks[id]
	if !ok {
		return nil, fmt.Errorf("network %s: %w in mynet's state; it may have been created by another plugin or the state dir was lost (remove and re-create the network)", ids.Short(id), ErrNotFound)
	}
	return n, nil
}
