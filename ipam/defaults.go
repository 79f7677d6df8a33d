package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Address spaces answered by GetDefaultAddressSpaces and accepted by
// RequestPool. mynet networks are host-local; the engine still asks for a
// global space and sends it for swarm-scoped networks.
const (
	LocalAddressSpace  = "mynet-local"
	GlobalAddressSpace = "mynet-global"
)

// PoolSpec is one default pool for automatic allocation: Base split into
// subnets of Size bits.
type PoolSpec struct {
	Base netip.Prefix
	Size int
}

// String is the base/size form ParseDefaultPools reads.
func (s PoolSpec) String() string { return fmt.Sprintf("%s/%d", s.Base, s.Size) }

// DefaultPools is mynet's built-in list. The bases sit away from Docker's
// own defaults (172.17.0.0/16 and up, 192.168.0.0/16) so that mynet and
// bridge networks do not compete for subnets; the v6 base spells "mynet" in
// a ULA prefix.
var DefaultPools = []PoolSpec{
	{Base: netip.MustParsePrefix("10.200.0.0/16"), Size: 24},
	{Base: netip.MustParsePrefix("10.201.0.0/16"), Size: 24},
	{Base: netip.MustParsePrefix("fd6d:796e:6574::/48"), Size: 64},
}

const poolSpecExample = "want base/size, e.g. 10.200.0.0/16/24 or fd00:6d79:6e65::/48/64"

// ParseDefaultPools parses a comma-separated list of base/size entries such
// as "10.200.0.0/16/24,fd00:6d79:6e65::/48/64". Order is kept: automatic
// allocation tries the pools in the order given.
func ParseDefaultPools(s string) ([]PoolSpec, error) {
	var specs []PoolSpec
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		spec, err := parsePoolSpec(item)
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	if len(specs) == 0 {
		return nil, errorf(ErrInvalid, "default pool list %q is empty: %s", s, poolSpecExample)
	}
	return specs, nil
}

func parsePoolSpec(item string) (PoolSpec, error) {
	i := strings.LastIndexByte(item, '/')
	if i < 0 || strings.Count(item, "/") != 2 {
		return PoolSpec{}, errorf(ErrInvalid, "default pool %q: %s", item, poolSpecExample)
	}
	base, err := netip.ParsePrefix(item[:i])
	if err != nil {
		return PoolSpec{}, errorf(ErrInvalid, "default pool %q: base %q is not a CIDR: %s", item, item[:i], poolSpecExample)
	}
	size, err := strconv.Atoi(item[i+1:])
	if err != nil {
		return PoolSpec{}, errorf(ErrInvalid, "default pool %q: size %q is not a prefix length: %s", item, item[i+1:], poolSpecExample)
	}
	spec := PoolSpec{Base: base, Size: size}
	if err := spec.validate(); err != nil {
		return PoolSpec{}, err
	}
	return spec, nil
}

// validate checks what ParseDefaultPools checks, for specs built in code.
func (s PoolSpec) validate() error {
	if !s.Base.IsValid() {
		return errorf(ErrInvalid, "default pool %s: base is not a CIDR: %s", s, poolSpecExample)
	}
	if s.Base != s.Base.Masked() {
		return errorf(ErrInvalid, "default pool %s: base %s is not a network address: use %s", s, s.Base, s.Base.Masked())
	}
	if limit := maxPoolBits(s.Base.Addr().Is6()); s.Size < s.Base.Bits() || s.Size > limit {
		return errorf(ErrInvalid, "default pool %s: size /%d must be between /%d (the base) and /%d (the smallest pool)", s, s.Size, s.Base.Bits(), limit)
	}
	if err := CheckSubnet(s.Base); err != nil {
		return errorf(ErrInvalid, "default pool %s: %v", s, err)
	}
	return nil
}

// pickSubnet returns the first subnet of size bits (0: each spec's own
// Size), taken from the specs (all of one family) in order, that overlaps
// none of taken.
//
// Candidates are not tried one by one against every taken prefix: with
// taken sorted by address, a candidate that overlaps one is followed by the
// first subnet after the larger of the two, so a base costs O(len(taken))
// after an O(n log n) sort, not the number of subnets in it (65536 /64s in
// a /48) times len(taken).
func pickSubnet(specs []PoolSpec, size int, taken []netip.Prefix) (netip.Prefix, bool) {
	sorted := make([]netip.Prefix, 0, len(taken))
	for _, t := range taken {
		if t.IsValid() {
			sorted = append(sorted, t.Masked())
		}
	}
	slices.SortFunc(sorted, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	for _, spec := range specs {
		bits := size
		if bits == 0 {
			bits = spec.Size
		}
		if bits < spec.Base.Bits() {
			continue // the base cannot hold a subnet that large
		}
		if p, ok := pickInBase(spec.Base, bits, sorted); ok {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// pickInBase walks candidates and the sorted taken prefixes together.
// Prefixes are nested or disjoint, and netip orders IPv4 before IPv6, so
// prefixes of the other family never look like overlaps.
func pickInBase(base netip.Prefix, size int, taken []netip.Prefix) (netip.Prefix, bool) {
	cand := netip.PrefixFrom(base.Addr(), size)
	j := 0
	for base.Contains(cand.Addr()) {
		// A prefix that ends before this candidate ends before every later one.
		for j < len(taken) && lastAddr(taken[j]).Less(cand.Addr()) {
			j++
		}
		if j == len(taken) || lastAddr(cand).Less(taken[j].Addr()) {
			return cand, true
		}
		// taken[j] overlaps cand. Skip past whichever of the two is larger;
		// the next address is aligned to both, hence a valid candidate start.
		next := lastAddr(cand)
		if taken[j].Bits() < cand.Bits() {
			next = lastAddr(taken[j])
		}
		next = next.Next()
		if !next.IsValid() {
			break // past the end of the address space
		}
		cand = netip.PrefixFrom(next, size)
	}
	return netip.Prefix{}, false
}
