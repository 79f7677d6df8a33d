// Package ipam is mynet's address management: pools carved from default
// ranges or given by the user, and a serial bitmap allocator per pool, over
// net/netip. Every change is persisted through a small Store interface
// before a method returns, so a restarted plugin hands out no address twice.
// Nothing here needs root or touches the host.
package ipam

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	api "github.com/docker/go-plugins-helpers/ipam"
	"github.com/sirupsen/logrus"
)

// Option key and value by which the engine marks a gateway RequestAddress.
const (
	requestAddressType = "RequestAddressType"
	gatewayAddressType = "com.docker.network.gateway"
)

// Config tunes automatic pool allocation.
type Config struct {
	// DefaultPools are carved up for requests without --subnet, in order;
	// nil means the built-in DefaultPools, an empty non-nil slice none at
	// all (every network then needs --subnet).
	DefaultPools []PoolSpec
	// HostPrefixes returns prefixes in use on the host (routes of the host
	// netns, for the given family); an automatic pool never overlaps them.
	// nil means none. It is called on every automatic RequestPool, outside
	// IPAM's lock. Default routes (/0) in its answer are ignored.
	HostPrefixes func(v6 bool) ([]netip.Prefix, error)
}

// IPAM implements the Docker IpamDriver API
// (github.com/docker/go-plugins-helpers/ipam.Ipam). It is safe for
// concurrent use.
type IPAM struct {
	st  Store
	cfg Config
	log *logrus.Entry

	// mu guards pools, every field of every pool in it, and writing. It is
	// held across the Store writes of pools and of releases, so the stored
	// state changes in the same order as the in-memory one. A new lease is
	// written without it, so that concurrent RequestAddress calls share an
	// fsync (lease.go).
	mu    sync.Mutex
	pools map[string]*pool // by PoolID
	// writing holds the lease keys taken in memory whose records are still
	// being written. They are refused release until the write is done, so
	// that undoing a failed write can never free an address someone else
	// holds by then.
	writing map[string]struct{}
	// networks names the network holding a subnet (see UseNetworks).
	networks NetworkFinder
}

var _ api.Ipam = (*IPAM)(nil)

// New loads all pools and leases from st and returns a ready IPAM. It fails
// on a stored record it cannot read rather than start without it.
func New(st Store, cfg Config, log *logrus.Entry) (*IPAM, error) {
	if cfg.DefaultPools == nil {
		cfg.DefaultPools = DefaultPools
	}
	for _, s := range cfg.DefaultPools {
		if err := s.validate(); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	m := &IPAM{st: st, cfg: cfg, log: log, pools: map[string]*pool{}, writing: map[string]struct{}{}}
	n, err := m.load()
	if err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"pools": len(m.pools), "leases": n}).Info("ipam state loaded")
	return m, nil
}

// GetCapabilities: mynet needs no MAC address to allocate.
func (m *IPAM) GetCapabilities() (*api.CapabilitiesResponse, error) {
	return &api.CapabilitiesResponse{RequiresMACAddress: false}, nil
}

// GetDefaultAddressSpaces names mynet's address spaces.
func (m *IPAM) GetDefaultAddressSpaces() (*api.AddressSpacesResponse, error) {
	return &api.AddressSpacesResponse{
		LocalDefaultAddressSpace:  LocalAddressSpace,
		GlobalDefaultAddressSpace: GlobalAddressSpace,
	}, nil
}

// RequestPool allocates the --subnet given in r.Pool, or a free subnet of
// the default pools when r.Pool is "" (or all-zero, like "0.0.0.0/24").
// A subnet overlapping a pool mynet holds is refused. Automatic pools skip
// held pools, which include the ones the engine keeps while it asks again
// after finding an overlap, so repeated requests get different pools.
func (m *IPAM) RequestPool(r *api.RequestPoolRequest) (*api.RequestPoolResponse, error) {
	req, err := parsePoolRequest(r)
	if err != nil {
		return nil, err
	}
	if len(r.Options) > 0 {
		m.log.WithField("options", r.Options).Debug("ignoring ipam options: mynet defines none")
	}
	var host []netip.Prefix
	if req.auto() {
		if host, err = m.hostPrefixes(req.v6); err != nil {
			return nil, err
		}
	}

	p, networks, err := m.addPool(req, host)
	if err != nil {
		return nil, nameHolder(err, networks)
	}
	return &api.RequestPoolResponse{PoolID: p.id, Pool: p.prefix.String()}, nil
}

// addPool chooses, records and holds the pool req asks for. It also
// returns the network finder, read under the lock.
func (m *IPAM) addPool(req poolRequest, host []netip.Prefix) (*pool, NetworkFinder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.choosePool(req, host)
	if err != nil {
		return nil, m.networks, err
	}
	if err := m.st.Put(poolsBucket, p.id, p.record()); err != nil {
		return nil, nil, fmt.Errorf("recording pool %s: %w", p.id, err)
	}
	m.pools[p.id] = p
	m.log.WithField("pool", p.id).Info("pool allocated")
	return p, nil, nil
}

// ReleasePool drops a pool and all its leases. An unknown pool is not an
// error: the engine retries releases after crashes.
func (m *IPAM) ReleasePool(r *api.ReleasePoolRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[r.PoolID]
	if !ok {
		m.log.WithField("pool", r.PoolID).Debug("pool already released")
		return nil
	}
	if m.poolWriting(p.id) {
		return errorf(ErrBusy, "pool %s still has address requests in progress: release it after they returned", p.prefix)
	}
	// Leases go first: a failure or crash half-way leaves the pool held,
	// never leases without a pool.
	if err := m.deleteLeases(p.id); err != nil {
		return err
	}
	if err := m.st.Delete(poolsBucket, p.id); err != nil {
		return fmt.Errorf("releasing pool %s: %w", p.id, err)
	}
	delete(m.pools, p.id)
	m.log.WithField("pool", p.id).Info("pool released")
	return nil
}

// RequestAddress leases an address: exactly r.Address when set (gateway,
// aux address or --ip, anywhere in the pool), the pool's first address for
// a gateway without one, else the next free address of the ip-range (or
// pool) after the last one handed out. The answer carries the pool's prefix
// length, e.g. "10.50.0.5/24".
func (m *IPAM) RequestAddress(r *api.RequestAddressRequest) (*api.RequestAddressResponse, error) {
	gateway := r.Options[requestAddressType] == gatewayAddressType
	var want netip.Addr
	if r.Address != "" {
		a, err := parseAddr(r.Address)
		if err != nil {
			return nil, err
		}
		want = a
	}

	m.mu.Lock()
	l, err := m.take(r.PoolID, want, gateway, r.Options)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := m.record(l); err != nil {
		return nil, err
	}
	return &api.RequestAddressResponse{Address: netip.PrefixFrom(l.addr, l.pool.prefix.Bits()).String()}, nil
}

// ReleaseAddress returns an address to its pool. Releasing a free address,
// or one in an unknown pool, is not an error: the engine retries releases
// after crashes and releases gateways that ipam never leased.
func (m *IPAM) ReleaseAddress(r *api.ReleaseAddressRequest) error {
	a, err := parseAddr(r.Address)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[r.PoolID]
	if !ok || !p.leased(a) {
		m.debugAddr(r.PoolID, a, "", "address already released")
		return nil
	}
	if _, ok := m.writing[leaseKey(p.id, a)]; ok {
		return errorf(ErrBusy, "address %s in pool %s is still being leased: release it after its request returned", a, p.prefix)
	}
	if err := m.st.Delete(leasesBucket, leaseKey(p.id, a)); err != nil {
		return fmt.Errorf("releasing address %s in pool %s: %w", a, p.prefix, err)
	}
	p.unmark(a)
	m.debugAddr(p.id, a, "", "address released")
	return nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, errorf(ErrInvalid, "address %q is not an IP address: want e.g. 10.50.0.5 or fd00:1::5", s)
	}
	return a, nil
}

// leaseKind guesses what an address with an explicit Address is for. Aux
// addresses come with no options; endpoints on Docker 29 carry their name,
// but older engines may send none, so "aux" can also be an --ip.
func leaseKind(gateway bool, opts map[string]string) string {
	switch {
	case gateway:
		return kindGateway
	case len(opts) == 0:
		return kindAux
	}
	return kindEndpoint
}

// choosePool returns the pool req asks for, not yet stored. Called with mu
// held.
func (m *IPAM) choosePool(req poolRequest, host []netip.Prefix) (*pool, error) {
	if !req.auto() {
		if err := m.checkOverlap(req.prefix); err != nil {
			return nil, err
		}
		return newPool(req.space, req.prefix, req.sub), nil
	}
	taken := make([]netip.Prefix, 0, len(m.pools)+len(host))
	for _, p := range m.pools {
		taken = append(taken, p.prefix)
	}
	taken = append(taken, host...)
	specs := specsOf(m.cfg.DefaultPools, req.v6)
	prefix, ok := pickSubnet(specs, req.size, taken)
	if !ok {
		return nil, noFreeSubnet(specs, req)
	}
	return newPool(req.space, prefix, netip.Prefix{}), nil
}

// checkOverlap refuses a subnet that shares addresses with a held pool:
// both would be routed to different bridges. Called with mu held.
func (m *IPAM) checkOverlap(prefix netip.Prefix) error {
	for _, p := range m.pools {
		if p.prefix.Overlaps(prefix) {
			return &overlapError{asked: prefix, held: p.prefix, holder: "another mynet network"}
		}
	}
	return nil
}

func specsOf(all []PoolSpec, v6 bool) []PoolSpec {
	var specs []PoolSpec
	for _, s := range all {
		if s.Base.Addr().Is6() == v6 {
			specs = append(specs, s)
		}
	}
	return specs
}

func noFreeSubnet(specs []PoolSpec, req poolRequest) error {
	family := familyName(req.v6)
	if len(specs) == 0 {
		return errorf(ErrPoolExhausted, "mynet has no default %s pools configured: give the network a --subnet", family)
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.String()
	}
	what := "subnet"
	if req.size != 0 {
		what = fmt.Sprintf("/%d subnet", req.size)
	}
	return errorf(ErrPoolExhausted, "no free %s %s in mynet's default pools (%s, as base/size): each is in use or overlaps a host route; remove unused networks or give a --subnet",
		family, what, strings.Join(names, ", "))
}

// hostPrefixes asks the host for its routes, dropping default routes: a
// default route covers every subnet and would block all of them, while
// saying nothing about which subnets are on a link.
func (m *IPAM) hostPrefixes(v6 bool) ([]netip.Prefix, error) {
	if m.cfg.HostPrefixes == nil {
		return nil, nil
	}
	all, err := m.cfg.HostPrefixes(v6)
	if err != nil {
		return nil, fmt.Errorf("listing host routes to choose a free %s subnet: %w", familyName(v6), err)
	}
	host := make([]netip.Prefix, 0, len(all))
	for _, p := range all {
		if p.IsValid() && p.Bits() > 0 {
			host = append(host, p.Masked())
		}
	}
	return host, nil
}

// reserve takes exactly a. Called with mu held.
func (m *IPAM) reserve(p *pool, a netip.Addr, kind string) (lease, error) {
	switch {
	case !p.prefix.Contains(a):
		return lease{}, errorf(ErrOutOfRange, "address %s is outside pool %s", a, p.prefix)
	case a == p.prefix.Addr():
		return lease{}, errorf(ErrInvalid, "address %s is the network address of pool %s and cannot be assigned", a, p.prefix)
	case p.unassignable(a):
		return lease{}, errorf(ErrInvalid, "address %s is the broadcast address of pool %s and cannot be assigned", a, p.prefix)
	case p.leased(a):
		// Who holds it is the driver's to know, and the IPAM must not
		// wait for the driver's lock here (Attach leases under it).
		return lease{}, errorf(ErrAddressInUse, `address %s is already in use in pool %s; if the engine no longer has the container that had it (removed while mynet was down), run "mynet prune"`, a, p.prefix)
	}
	p.mark(a)
	return m.taken(p, a, leaseRecord{Kind: kind}), nil
}

// reserveGateway takes the pool's first usable address, the gateway Docker
// users expect (10.50.0.1 in 10.50.0.0/24). Called with mu held.
func (m *IPAM) reserveGateway(p *pool) (lease, error) {
	a := p.prefix.Addr().Next()
	if p.leased(a) {
		return lease{}, errorf(ErrAddressInUse, "gateway address %s, the first address of pool %s, is already in use: choose another with --gateway", a, p.prefix)
	}
	return m.reserve(p, a, kindGateway)
}

// allocate takes the next free address of the window after the cursor,
// wrapping around. Called with mu held.
func (m *IPAM) allocate(p *pool) (lease, error) {
	off, ok := p.used.NextClearWrap(p.cursor + 1)
	if !ok {
		return lease{}, p.exhausted()
	}
	l := m.taken(p, p.addrAt(off), leaseRecord{Kind: kindEndpoint, Seq: p.seq + 1})
	l.cursor = p.cursor
	p.used.Set(off)
	p.cursor, p.seq = off, l.rec.Seq
	return l, nil
}

// debugAddr logs one address step. The level is checked first because
// building logrus fields costs more than the allocation being logged.
func (m *IPAM) debugAddr(poolID string, a netip.Addr, kind, msg string) {
	if !m.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		return
	}
	f := logrus.Fields{"pool": poolID, "address": a}
	if kind != "" {
		f["kind"] = kind
	}
	m.log.WithFields(f).Debug(msg)
}
