package ipam

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"

	api "github.com/docker/go-plugins-helpers/ipam"
)

// windowBits bounds the allocation window: automatic addresses come from the
// first 2^24 addresses of a pool's ip-range (or of the pool). That is a whole
// IPv4 /8, more containers than one host runs, at most 2 MiB of bitmap;
// covering an IPv6 /64 would take 2^61 bytes. Static, aux and gateway
// addresses beyond the window are still accepted and tracked (pool.outside),
// so nothing is ever handed out twice.
const windowBits = 24

// maxPoolBits is the longest prefix accepted for a pool. An IPv4 /30 leaves
// two usable addresses (gateway and one container) after the network and
// broadcast addresses; IPv6 gets the same minimum size.
func maxPoolBits(v6 bool) int {
	if v6 {
		return 126
	}
	return 30
}

func familyName(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// poolRequest is a validated RequestPool.
type poolRequest struct {
	space  string
	v6     bool
	prefix netip.Prefix // explicit subnet; invalid for an automatic request
	size   int          // automatic: prefix length wanted, 0 = each default pool's own size
	sub    netip.Prefix // ip-range; invalid when none
}

func (r poolRequest) auto() bool { return !r.prefix.IsValid() }

func parsePoolRequest(r *api.RequestPoolRequest) (poolRequest, error) {
	space, err := addressSpace(r.AddressSpace)
	if err != nil {
		return poolRequest{}, err
	}
	req := poolRequest{space: space, v6: r.V6}
	if r.Pool == "" {
		if r.SubPool != "" {
			return poolRequest{}, errorf(ErrInvalid, "ip-range %s needs an explicit subnet: pass --subnet as well", r.SubPool)
		}
		return req, nil
	}
	prefix, err := parsePrefix("subnet", r.Pool, r.V6)
	if err != nil {
		return poolRequest{}, err
	}
	if prefix.Addr().IsUnspecified() {
		return parseAnySubnet(req, prefix, r.SubPool)
	}
	if err := checkSubnet(prefix); err != nil {
		return poolRequest{}, err
	}
	if err := CheckSubnet(prefix); err != nil {
		return poolRequest{}, err
	}
	req.prefix = prefix
	if r.SubPool != "" {
		sub, err := parsePrefix("ip-range", r.SubPool, r.V6)
		if err != nil {
			return poolRequest{}, err
		}
		if err := checkRange(sub, prefix); err != nil {
			return poolRequest{}, err
		}
		req.sub = sub
	}
	return req, nil
}

// parseAnySubnet handles "0.0.0.0/24" (or "::/64"), which Docker 29 sends
// for "any free subnet of this size": an automatic request with a size.
func parseAnySubnet(req poolRequest, prefix netip.Prefix, subPool string) (poolRequest, error) {
	if subPool != "" {
		return poolRequest{}, errorf(ErrInvalid, "ip-range %s needs an explicit subnet, not %s", subPool, prefix)
	}
	if prefix.Bits() == 0 {
		return poolRequest{}, errorf(ErrInvalid, "subnet %s asks for the whole address space: give a prefix length such as %s/24", prefix, prefix.Addr())
	}
	if err := checkSubnet(prefix); err != nil {
		return poolRequest{}, err
	}
	req.size = prefix.Bits()
	return req, nil
}

func addressSpace(s string) (string, error) {
	switch s {
	case "":
		return LocalAddressSpace, nil
	case LocalAddressSpace, GlobalAddressSpace:
		return s, nil
	}
	return "", errorf(ErrInvalid, "unknown address space %q: mynet serves %q and %q", s, LocalAddressSpace, GlobalAddressSpace)
}

// parsePrefix parses a CIDR of the requested family that is a network
// address. Docker's own IPAM rejects "10.50.0.5/24" rather than masking it,
// and so does mynet: the user probably mistyped something.
func parsePrefix(what, s string, v6 bool) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errorf(ErrInvalid, "%s %q is not a CIDR: want e.g. 10.50.0.0/24 or fd00:1::/64", what, s)
	}
	if p.Addr().Is6() != v6 {
		return netip.Prefix{}, errorf(ErrInvalid, "%s %s is %s, but an %s pool was requested", what, p, familyName(!v6), familyName(v6))
	}
	if p != p.Masked() {
		return netip.Prefix{}, errorf(ErrInvalid, "%s %s is not a network address: use %s", what, p, p.Masked())
	}
	return p, nil
}

func checkSubnet(p netip.Prefix) error {
	v6 := p.Addr().Is6()
	if limit := maxPoolBits(v6); p.Bits() > limit {
		return errorf(ErrInvalid, "subnet %s is too small: %s subnets must be /%d or larger", p, familyName(v6), limit)
	}
	return nil
}

func checkRange(sub, prefix netip.Prefix) error {
	if sub.Bits() < prefix.Bits() || !prefix.Contains(sub.Addr()) {
		return errorf(ErrInvalid, "ip-range %s is not inside subnet %s", sub, prefix)
	}
	return nil
}

// poolID is deterministic and self-describing, like Docker's own
// "LocalDefault/10.0.0.0/24": the same request always maps to the same ID.
func poolID(space string, prefix, sub netip.Prefix) string {
	id := space + "/" + prefix.String()
	if sub.IsValid() {
		id += "/" + sub.String()
	}
	return id
}

// pool is one allocated pool and its leases. Every field is guarded by
// IPAM.mu.
type pool struct {
	id     string
	space  string
	prefix netip.Prefix // the subnet
	sub    netip.Prefix // the ip-range; invalid when none was given
	last   netip.Addr   // last address of prefix: the IPv4 broadcast address

	// used holds the leases of the allocation window: bit i is base+i. The
	// network and IPv4 broadcast addresses are set too when they fall in the
	// window (reserved counts them) so the search skips them.
	base     netip.Addr
	used     *bitmap
	reserved int
	// outside holds leases in prefix but not in the window: static and aux
	// addresses outside the ip-range, or beyond the window of a huge range.
	outside map[netip.Addr]struct{}

	// cursor is the offset of the last automatic allocation (-1: none yet).
	// Allocation continues after it, like Docker's serial allocation, so a
	// just-released address is not handed out again at once while peers
	// may still have its old MAC in their neighbour caches.
	cursor int
	// seq numbers automatic allocations; persisted in each lease so that
	// New can restore cursor without rewriting the pool record per lease.
	// If the newest automatic lease was released before a restart, the
	// cursor resumes after the newest remaining one instead: a heuristic
	// lost, never an address handed out twice.
	seq uint64
}

func newPool(space string, prefix, sub netip.Prefix) *pool {
	rng := prefix
	if sub.IsValid() {
		rng = sub
	}
	hostBits := rng.Addr().BitLen() - rng.Bits()
	p := &pool{
		id:      poolID(space, prefix, sub),
		space:   space,
		prefix:  prefix,
		sub:     sub,
		last:    lastAddr(prefix),
		base:    rng.Addr(),
		used:    newBitmap(1 << min(hostBits, windowBits)),
		outside: map[netip.Addr]struct{}{},
		cursor:  -1,
	}
	p.markUnassignable(prefix.Addr())
	if !p.v6() {
		p.markUnassignable(p.last)
	}
	return p
}

// markUnassignable sets a's bit, if it is in the window, without counting it
// as a lease, so automatic allocation never picks it.
func (p *pool) markUnassignable(a netip.Addr) {
	if off, ok := p.offset(a); ok && p.used.Set(off) {
		p.reserved++
	}
}

func (p *pool) v6() bool { return p.prefix.Addr().Is6() }

// unassignable reports the network address and the IPv4 broadcast address,
// which no container, gateway or aux address may have.
func (p *pool) unassignable(a netip.Addr) bool {
	return a == p.prefix.Addr() || (!p.v6() && a == p.last)
}

// offset returns a's bit in used, if a is inside the window.
func (p *pool) offset(a netip.Addr) (int, bool) {
	if a.BitLen() != p.base.BitLen() || a.Less(p.base) {
		return 0, false
	}
	ahi, alo := u128(a)
	bhi, blo := u128(p.base)
	lo, borrow := bits.Sub64(alo, blo, 0)
	hi, _ := bits.Sub64(ahi, bhi, borrow)
	if hi != 0 || lo >= uint64(p.used.Len()) {
		return 0, false
	}
	return int(lo), true
}

// addrAt is the address of bit off in used.
func (p *pool) addrAt(off int) netip.Addr {
	hi, lo := u128(p.base)
	lo, carry := bits.Add64(lo, uint64(off), 0)
	return fromU128(hi+carry, lo, p.base.Is4())
}

// leased reports whether a holds a lease in p.
func (p *pool) leased(a netip.Addr) bool {
	if !p.prefix.Contains(a) || p.unassignable(a) {
		return false
	}
	if off, ok := p.offset(a); ok {
		return p.used.IsSet(off)
	}
	_, ok := p.outside[a]
	return ok
}

// mark records a lease of a, which must be in prefix and assignable.
func (p *pool) mark(a netip.Addr) {
	if off, ok := p.offset(a); ok {
		p.used.Set(off)
		return
	}
	p.outside[a] = struct{}{}
}

func (p *pool) unmark(a netip.Addr) {
	if off, ok := p.offset(a); ok {
		p.used.Clear(off)
		return
	}
	delete(p.outside, a)
}

// inWindow is the number of leases in the allocation window.
func (p *pool) inWindow() int { return p.used.Count() - p.reserved }

// leases is the number of leases in the pool.
func (p *pool) leases() int { return p.inWindow() + len(p.outside) }

// exhausted describes a pool with no free address for automatic allocation.
func (p *pool) exhausted() error {
	where, inUse := "pool "+p.prefix.String(), p.leases()
	rng := p.prefix
	if p.sub.IsValid() {
		// Leases outside the ip-range do not use it up; count only its own.
		where, inUse, rng = fmt.Sprintf("ip-range %s of pool %s", p.sub, p.prefix), p.inWindow(), p.sub
	}
	if rng.Addr().BitLen()-rng.Bits() > windowBits {
		return errorf(ErrPoolExhausted, "%s has no free address among the first %d, which mynet allocates from (%d in use): give containers static addresses", where, p.used.Len(), p.inWindow())
	}
	return errorf(ErrPoolExhausted, "%s has no free address (%d in use)", where, inUse)
}

func u128(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func fromU128(hi, lo uint64, v4 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	a := netip.AddrFrom16(b)
	if v4 {
		return a.Unmap()
	}
	return a
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	hostBits := p.Addr().BitLen() - p.Bits()
	hi, lo := u128(p.Masked().Addr())
	switch {
	case hostBits >= 64:
		hi |= allOnes >> (128 - hostBits)
		lo = allOnes
	case hostBits > 0:
		lo |= allOnes >> (64 - hostBits)
	}
	return fromU128(hi, lo, p.Addr().Is4())
}
