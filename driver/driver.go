// Package driver implements Docker's NetworkDriver API with Linux bridges
// and veth pairs, like Docker's own bridge driver, keeping its state in the
// store so that it survives plugin and engine restarts (the engine replays
// nothing to a remote driver).
package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/ids"
	"github.com/mynet/mynet/ports"
)

// Store is what the driver needs from persistence; *store.Store fits.
type Store interface {
	Put(bucket, key string, v any) error
	Delete(bucket, key string) error
	ForEach(bucket string, fn func(key string, raw []byte) error) error
}

// Firewall programs a network's iptables rules; *firewall.IPTables fits.
type Firewall interface {
	EnsureNetwork(n firewall.Network) error
	RemoveNetwork(n firewall.Network) error
	EnableForwarding() error
	// Intact reports whether every rule ensured so far is still there,
	// and if not, what is missing.
	Intact() (bool, string, error)
	// RemoveStale deletes this instance's rules of bridges keep does not
	// know (and re-tags legacy rules of bridges it knows).
	RemoveStale(keep func(bridge string) bool) ([]string, error)
	// Owners lists the bridges with rules in mynet's chains, by the tag
	// of the instance they belong to ("" for legacy rules).
	Owners() (map[string][]string, error)
	PortFirewall
}

const (
	networksBucket  = "networks"
	endpointsBucket = "endpoints"
)

// ErrNotFound marks requests that name a network or endpoint mynet does not
// know.
var ErrNotFound = errors.New("not found")

// Driver serves the NetworkDriver API.
type Driver struct {
	nl   netlinker
	inst Instance // whose objects this driver makes and may remove
	fw   Firewall // IPv4
	fw6  Firewall // IPv6; nil when the host has no ip6tables
	st   Store
	log  *logrus.Entry

	// mu guards networks and endpoints and serialises kernel changes, so
	// two requests never race on one bridge or rule set. The exceptions
	// are an endpoint's own veth pair and record, made and removed
	// without it (CreateEndpoint, DeleteEndpoint): nothing else touches
	// them, and a burst of container starts would otherwise queue every
	// call behind the kernel's rtnl lock.
	mu        sync.Mutex
	networks  map[string]*networkState
	endpoints map[string]*endpointState
	// creating holds the IDs of endpoints whose CreateEndpoint is making
	// the pair and record, outside mu.
	creating map[string]bool
	// orphans is the orphan reaper's memory (orphans.go).
	orphans orphanWatch
	// ports chooses host ports; holds are the reservations of each
	// published endpoint, by endpoint ID (see ports.go). Both under mu.
	ports *ports.Allocator
	holds map[string][]io.Closer
	// addrs leases the addresses of attachments (attach.go); under mu.
	addrs AddressBook
	// foreignSeen names the objects of other instances (or of no
	// provable owner) already logged, so each is logged once; under mu.
	foreignSeen map[string]bool
	// unrestored names the networks whose Restore failed, programmed
	// again at every heal tick until it succeeds (RetryRestore). Under mu.
	unrestored map[string]bool
}

var _ network.Driver = (*Driver)(nil)

// New loads the driver's state from st. Call Restore to bring the kernel
// back in line with it. fw6 may be nil: IPv6 networks are then refused.
// Host ports are reserved with sockets (ports.SocketReserver) unless
// WithPortReserver names another reserver, as a fake kernel's tests do.
func New(nl netlinker, fw, fw6 Firewall, st Store, log *logrus.Entry, opts ...Option) (*Driver, error) {
	d := &Driver{nl: nl, fw: fw, fw6: fw6, st: st, log: log,
		networks: map[string]*networkState{}, endpoints: map[string]*endpointState{}, creating: map[string]bool{},
		ports: ports.NewAllocator(ports.SocketReserver{}, ports.LocalPortRange),
		holds: map[string][]io.Closer{}, foreignSeen: map[string]bool{},
		unrestored: map[string]bool{}}
	for _, o := range opts {
		o(d)
	}
	err := st.ForEach(networksBucket, func(_ string, raw []byte) error {
		n := &networkState{}
		if err := json.Unmarshal(raw, n); err != nil {
			return err
		}
		d.networks[n.ID] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load networks: %w", err)
	}
	err = st.ForEach(endpointsBucket, func(_ string, raw []byte) error {
		ep := &endpointState{}
		if err := json.Unmarshal(raw, ep); err != nil {
			return err
		}
		d.endpoints[ep.ID] = ep
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load endpoints: %w", err)
	}
	return d, nil
}

// Restore re-creates missing bridges, addresses and rules for every known
// network: after a reboot or a firewall flush the kernel has lost them, and
// no CreateNetwork will come again. Failures are collected, not fatal: one
// broken network must not keep the others down.
func (d *Driver) Restore() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	if err := d.reconcile(); err != nil {
		errs = append(errs, err)
	}
	for _, n := range d.networks {
		if err := d.restoreNetwork(n); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, d.restorePorts())
	return errors.Join(errs...)
}

// restoreNetwork programs n again. A failure leaves the bridge and its
// containers as they are and marks n for RetryRestore. Caller holds d.mu.
func (d *Driver) restoreNetwork(n *networkState) error {
	kept := n.MACKept
	if err := d.programNetwork(n); err != nil {
		d.unrestored[n.ID] = true
		return fmt.Errorf("restore network %s: %w", ids.Short(n.ID), err)
	}
	delete(d.unrestored, n.ID)
	d.log.WithFields(logrus.Fields{"network": ids.Short(n.ID), "bridge": n.Bridge}).Info("network restored")
	if n.MACKept != kept {
		if err := d.st.Put(networksBucket, n.ID, n); err != nil {
			return fmt.Errorf("record network %s: %w", ids.Short(n.ID), err)
		}
	}
	return nil
}

// sortedEndpoints lists the endpoints in ID order, for deterministic
// walks. Caller holds d.mu.
func (d *Driver) sortedEndpoints() []*endpointState {
	out := make([]*endpointState, 0, len(d.endpoints))
	for _, id := range sortedKeys(d.endpoints) {
		out = append(out, d.endpoints[id])
	}
	return out
}

// GetCapabilities: mynet networks live on one host; there is no swarm
// control plane to share them.
func (d *Driver) GetCapabilities() (*network.CapabilitiesResponse, error) {
	return &network.CapabilitiesResponse{Scope: "local", ConnectivityScope: "local"}, nil
}

// AllocateNetwork and FreeNetwork are swarm-manager calls for global-scope
// drivers; the engine never sends them to a local-scope driver.
func (d *Driver) AllocateNetwork(*network.AllocateNetworkRequest) (*network.AllocateNetworkResponse, error) {
	return nil, errors.New("AllocateNetwork is not supported: mynet is a local-scope driver (no swarm)")
}

// FreeNetwork: see AllocateNetwork.
func (d *Driver) FreeNetwork(*network.FreeNetworkRequest) error {
	return errors.New("FreeNetwork is not supported: mynet is a local-scope driver (no swarm)")
}

// DiscoverNew is only sent to global-scope drivers; answered for
// completeness.
func (d *Driver) DiscoverNew(*network.DiscoveryNotification) error { return nil }

// DiscoverDelete: see DiscoverNew.
func (d *Driver) DiscoverDelete(*network.DiscoveryNotification) error { return nil }
