package ipam

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	api "github.com/docker/go-plugins-helpers/ipam"
)

func TestRequestPoolExplicit(t *testing.T) {
	tests := []struct {
		name     string
		req      api.RequestPoolRequest
		held     []string // explicit pools requested first
		wantID   string
		wantPool string
		wantErr  error
		errHas   []string
	}{
		{name: "subnet", req: api.RequestPoolRequest{AddressSpace: LocalAddressSpace, Pool: "10.50.0.0/24"},
			wantID: "mynet-local/10.50.0.0/24", wantPool: "10.50.0.0/24"},
		{name: "empty space means local", req: api.RequestPoolRequest{Pool: "10.50.0.0/24"},
			wantID: "mynet-local/10.50.0.0/24", wantPool: "10.50.0.0/24"},
		{name: "global space", req: api.RequestPoolRequest{AddressSpace: GlobalAddressSpace, Pool: "10.50.0.0/24"},
			wantID: "mynet-global/10.50.0.0/24", wantPool: "10.50.0.0/24"},
		{name: "subnet and ip-range", req: api.RequestPoolRequest{AddressSpace: LocalAddressSpace, Pool: "10.50.0.0/24", SubPool: "10.50.0.128/25"},
			wantID: "mynet-local/10.50.0.0/24/10.50.0.128/25", wantPool: "10.50.0.0/24"},
		{name: "ip-range equal to subnet", req: api.RequestPoolRequest{Pool: "10.50.0.0/24", SubPool: "10.50.0.0/24"},
			wantID: "mynet-local/10.50.0.0/24/10.50.0.0/24", wantPool: "10.50.0.0/24"},
		{name: "ipv6", req: api.RequestPoolRequest{Pool: "fd00:1::/64", V6: true},
			wantID: "mynet-local/fd00:1::/64", wantPool: "fd00:1::/64"},
		{name: "smallest ipv4", req: api.RequestPoolRequest{Pool: "10.50.0.4/30"},
			wantID: "mynet-local/10.50.0.4/30", wantPool: "10.50.0.4/30"},
		{name: "smallest ipv6", req: api.RequestPoolRequest{Pool: "fd00::4/126", V6: true},
			wantID: "mynet-local/fd00::4/126", wantPool: "fd00::4/126"},
		{name: "options ignored", req: api.RequestPoolRequest{Pool: "10.50.0.0/24", Options: map[string]string{"foo": "bar"}},
			wantID: "mynet-local/10.50.0.0/24", wantPool: "10.50.0.0/24"},
		{name: "disjoint from held", held: []string{"10.50.1.0/24"}, req: api.RequestPoolRequest{Pool: "10.50.0.0/24"},
			wantID: "mynet-local/10.50.0.0/24", wantPool: "10.50.0.0/24"},

		{name: "not a cidr", req: api.RequestPoolRequest{Pool: "10.50.0.0"},
			wantErr: ErrInvalid, errHas: []string{`subnet "10.50.0.0" is not a CIDR`}},
		{name: "ipv4 for ipv6 request", req: api.RequestPoolRequest{Pool: "10.50.0.0/24", V6: true},
			wantErr: ErrInvalid, errHas: []string{"subnet 10.50.0.0/24 is IPv4", "IPv6 pool was requested"}},
		{name: "ipv6 for ipv4 request", req: api.RequestPoolRequest{Pool: "fd00::/64"},
			wantErr: ErrInvalid, errHas: []string{"subnet fd00::/64 is IPv6", "IPv4 pool was requested"}},
		{name: "not a network address", req: api.RequestPoolRequest{Pool: "10.50.0.5/24"},
			wantErr: ErrInvalid, errHas: []string{"10.50.0.5/24 is not a network address", "use 10.50.0.0/24"}},
		{name: "ipv4 /31", req: api.RequestPoolRequest{Pool: "10.50.0.0/31"},
			wantErr: ErrInvalid, errHas: []string{"subnet 10.50.0.0/31 is too small", "/30 or larger"}},
		{name: "ipv4 /32", req: api.RequestPoolRequest{Pool: "10.50.0.1/32"},
			wantErr: ErrInvalid, errHas: []string{"too small"}},
		{name: "ipv6 /127", req: api.RequestPoolRequest{Pool: "fd00::/127", V6: true},
			wantErr: ErrInvalid, errHas: []string{"subnet fd00::/127 is too small", "/126 or larger"}},
		{name: "ip-range outside", req: api.RequestPoolRequest{Pool: "10.50.0.0/24", SubPool: "10.60.0.0/25"},
			wantErr: ErrInvalid, errHas: []string{"ip-range 10.60.0.0/25 is not inside subnet 10.50.0.0/24"}},
		{name: "ip-range larger", req: api.RequestPoolRequest{Pool: "10.50.0.0/24", SubPool: "10.50.0.0/23"},
			wantErr: ErrInvalid, errHas: []string{"is not inside subnet"}},
		{name: "ip-range not network address", req: api.RequestPoolRequest{Pool: "10.50.0.0/24", SubPool: "10.50.0.130/25"},
			wantErr: ErrInvalid, errHas: []string{"ip-range 10.50.0.130/25 is not a network address", "use 10.50.0.128/25"}},
		{name: "ip-range wrong family", req: api.RequestPoolRequest{Pool: "10.50.0.0/24", SubPool: "fd00::/64"},
			wantErr: ErrInvalid, errHas: []string{"ip-range fd00::/64 is IPv6"}},
		{name: "ip-range without subnet", req: api.RequestPoolRequest{SubPool: "10.50.0.0/25"},
			wantErr: ErrInvalid, errHas: []string{"ip-range 10.50.0.0/25 needs an explicit subnet"}},
		{name: "unknown address space", req: api.RequestPoolRequest{AddressSpace: "default", Pool: "10.50.0.0/24"},
			wantErr: ErrInvalid, errHas: []string{`unknown address space "default"`, LocalAddressSpace}},
		{name: "same subnet held", held: []string{"10.50.0.0/24"}, req: api.RequestPoolRequest{Pool: "10.50.0.0/24"},
			wantErr: ErrPoolOverlap, errHas: []string{"subnet 10.50.0.0/24 is already used by another mynet network"}},
		{name: "same subnet other ip-range", held: []string{"10.50.0.0/24"}, req: api.RequestPoolRequest{Pool: "10.50.0.0/24", SubPool: "10.50.0.0/25"},
			wantErr: ErrPoolOverlap, errHas: []string{"10.50.0.0/24"}},
		{name: "inside held", held: []string{"10.50.0.0/16"}, req: api.RequestPoolRequest{Pool: "10.50.3.0/24"},
			wantErr: ErrPoolOverlap, errHas: []string{"subnet 10.50.3.0/24 overlaps subnet 10.50.0.0/16"}},
		{name: "contains held", held: []string{"10.50.3.0/24"}, req: api.RequestPoolRequest{Pool: "10.50.0.0/16"},
			wantErr: ErrPoolOverlap, errHas: []string{"subnet 10.50.0.0/16 overlaps subnet 10.50.3.0/24"}},
		{name: "ipv6 overlap", held: []string{"fd00:0:0:1::/64"}, req: api.RequestPoolRequest{Pool: "fd00::/48", V6: true},
			wantErr: ErrPoolOverlap, errHas: []string{"subnet fd00::/48 overlaps subnet fd00:0:0:1::/64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestIPAM(t, newMemStore(), Config{})
			for _, h := range tt.held {
				requestPool(t, m, h, "", netip.MustParsePrefix(h).Addr().Is6())
			}
			res, err := m.RequestPool(&tt.req)
			checkErr(t, err, tt.wantErr, tt.errHas...)
			if err != nil {
				return
			}
			if res.PoolID != tt.wantID || res.Pool != tt.wantPool || res.Data != nil {
				t.Fatalf("got %+v; want PoolID %q Pool %q Data nil", res, tt.wantID, tt.wantPool)
			}
		})
	}
}

func TestRequestPoolAutomatic(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		held    []string // explicit pools requested first
		pool    string   // "" or an all-zero "any" request
		v6      bool
		want    []string // pools handed out by successive identical requests
		wantErr error
		errHas  []string
	}{
		{name: "first default", want: []string{"10.200.0.0/24"}},
		{name: "repeated requests get different pools", want: []string{"10.200.0.0/24", "10.200.1.0/24", "10.200.2.0/24"}},
		{name: "skips held", held: []string{"10.200.0.0/24", "10.200.2.0/23"}, want: []string{"10.200.1.0/24", "10.200.4.0/24"}},
		{name: "skips held covering a base", held: []string{"10.200.0.0/16"}, want: []string{"10.201.0.0/24"}},
		{name: "skips host routes, ignores default route",
			cfg:  Config{HostPrefixes: staticHost("0.0.0.0/0", "10.200.0.0/23", "10.200.2.77/32", "192.168.1.0/24")},
			want: []string{"10.200.3.0/24"}},
		{name: "host route covering both bases",
			cfg:     Config{HostPrefixes: staticHost("10.0.0.0/8")},
			wantErr: ErrPoolExhausted, errHas: []string{"no free IPv4 subnet", "10.200.0.0/16/24, 10.201.0.0/16/24", "--subnet"}},
		{name: "ipv6", v6: true, want: []string{"fd6d:796e:6574::/64", "fd6d:796e:6574:1::/64"}},
		{name: "ipv6 skips host route", v6: true, cfg: Config{HostPrefixes: staticHost("::/0", "fd6d:796e:6574::/56")},
			want: []string{"fd6d:796e:6574:100::/64"}},
		{name: "any /24", pool: "0.0.0.0/24", want: []string{"10.200.0.0/24", "10.200.1.0/24"}},
		{name: "any /20 skips held", pool: "0.0.0.0/20", held: []string{"10.200.0.0/24"}, want: []string{"10.200.16.0/20"}},
		{name: "any /28", pool: "0.0.0.0/28", want: []string{"10.200.0.0/28", "10.200.0.16/28"}},
		{name: "any ipv6 /56", pool: "::/56", v6: true, want: []string{"fd6d:796e:6574::/56", "fd6d:796e:6574:100::/56"}},
		{name: "any /8 larger than every base", pool: "0.0.0.0/8",
			wantErr: ErrPoolExhausted, errHas: []string{"no free IPv4 /8 subnet"}},
		{name: "any /0", pool: "0.0.0.0/0", wantErr: ErrInvalid, errHas: []string{"whole address space"}},
		{name: "any /31", pool: "0.0.0.0/31", wantErr: ErrInvalid, errHas: []string{"too small"}},
		{name: "custom defaults run out",
			cfg:     Config{DefaultPools: []PoolSpec{{Base: netip.MustParsePrefix("10.9.0.0/29"), Size: 30}}},
			want:    []string{"10.9.0.0/30", "10.9.0.4/30", "<err>"},
			wantErr: ErrPoolExhausted, errHas: []string{"10.9.0.0/29/30"}},
		{name: "no ipv6 defaults configured", v6: true,
			cfg:     Config{DefaultPools: []PoolSpec{{Base: netip.MustParsePrefix("10.9.0.0/16"), Size: 24}}},
			wantErr: ErrPoolExhausted, errHas: []string{"no default IPv6 pools", "--subnet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestIPAM(t, newMemStore(), tt.cfg)
			for _, h := range tt.held {
				requestPool(t, m, h, "", netip.MustParsePrefix(h).Addr().Is6())
			}
			req := &api.RequestPoolRequest{AddressSpace: LocalAddressSpace, Pool: tt.pool, V6: tt.v6}
			for _, want := range tt.want {
				if want == "<err>" {
					break
				}
				res, err := m.RequestPool(req)
				if err != nil {
					t.Fatalf("RequestPool: %v; want %s", err, want)
				}
				if res.Pool != want || res.PoolID != LocalAddressSpace+"/"+want {
					t.Fatalf("got %+v; want pool %s", res, want)
				}
			}
			if tt.wantErr != nil {
				_, err := m.RequestPool(req)
				checkErr(t, err, tt.wantErr, tt.errHas...)
			}
		})
	}
}

func TestRequestPoolHostPrefixes(t *testing.T) {
	var families []bool
	cfg := Config{HostPrefixes: func(v6 bool) ([]netip.Prefix, error) {
		families = append(families, v6)
		return nil, nil
	}}
	m := newTestIPAM(t, newMemStore(), cfg)
	requestPool(t, m, "", "", false)
	requestPool(t, m, "", "", true)
	requestPool(t, m, "10.50.0.0/24", "", false) // explicit: host routes are not consulted
	if len(families) != 2 || families[0] || !families[1] {
		t.Fatalf("HostPrefixes called with %v; want [false true]", families)
	}

	cfg.HostPrefixes = func(bool) ([]netip.Prefix, error) { return nil, errDisk }
	m = newTestIPAM(t, newMemStore(), cfg)
	_, err := m.RequestPool(&api.RequestPoolRequest{AddressSpace: LocalAddressSpace})
	if !errors.Is(err, errDisk) {
		t.Fatalf("got %v; want the HostPrefixes error", err)
	}
}

func TestReleasePool(t *testing.T) {
	st := newMemStore()
	m := newTestIPAM(t, st, Config{})
	a := requestPool(t, m, "10.50.0.0/24", "", false).PoolID
	b := requestPool(t, m, "10.51.0.0/24", "", false).PoolID
	for _, id := range []string{a, b} {
		requestAddress(t, m, id, "", gatewayOpts)
		requestAddress(t, m, id, "", endpointOpts)
	}
	requestAddress(t, m, a, "10.50.0.77", nil)

	for range 2 { // the second release is a retry and must succeed too
		if err := m.ReleasePool(&api.ReleasePoolRequest{PoolID: a}); err != nil {
			t.Fatalf("ReleasePool: %v", err)
		}
	}
	if err := m.ReleasePool(&api.ReleasePoolRequest{PoolID: "mynet-local/10.99.0.0/24"}); err != nil {
		t.Fatalf("ReleasePool of unknown pool: %v", err)
	}
	_, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: a})
	checkErr(t, err, ErrUnknownPool, `pool "mynet-local/10.50.0.0/24"`)

	if got := st.keys(poolsBucket); len(got) != 1 || got[0] != b {
		t.Fatalf("stored pools %v; want [%s]", got, b)
	}
	want := []string{b + "|10.51.0.1", b + "|10.51.0.2"}
	if got := st.keys(leasesBucket); !slices.Equal(got, want) {
		t.Fatalf("stored leases %v; want %v", got, want)
	}
	// The subnet is free again, with no stale leases.
	a = requestPool(t, m, "10.50.0.0/24", "", false).PoolID
	if got := requestAddress(t, m, a, "10.50.0.77", nil); got != "10.50.0.77/24" {
		t.Fatalf("got %s after re-creating the pool", got)
	}
}

func TestPickSubnet(t *testing.T) {
	specs := []PoolSpec{
		{Base: netip.MustParsePrefix("10.0.0.0/22"), Size: 24},
		{Base: netip.MustParsePrefix("10.8.0.0/16"), Size: 24},
	}
	tests := []struct {
		name   string
		size   int
		taken  []netip.Prefix
		want   string
		wantOK bool
	}{
		{name: "first", want: "10.0.0.0/24", wantOK: true},
		{name: "taken inside candidate", taken: prefixes("10.0.0.8/29"), want: "10.0.1.0/24", wantOK: true},
		{name: "taken covering candidates", taken: prefixes("10.0.0.0/23"), want: "10.0.2.0/24", wantOK: true},
		{name: "first base full", taken: prefixes("10.0.0.0/22"), want: "10.8.0.0/24", wantOK: true},
		{name: "other family ignored", taken: prefixes("::/0", "fd00::/8"), want: "10.0.0.0/24", wantOK: true},
		{name: "size from request", size: 23, taken: prefixes("10.0.1.0/24"), want: "10.0.2.0/23", wantOK: true},
		{name: "size larger than first base", size: 21, want: "10.8.0.0/21", wantOK: true},
		{name: "all taken", taken: prefixes("10.0.0.0/12"), wantOK: false},
		{name: "last subnet of address space", size: 0, taken: prefixes("10.0.0.0/22", "10.8.0.0/17", "10.8.128.0/18", "10.8.192.0/19", "10.8.224.0/20", "10.8.240.0/21", "10.8.248.0/22", "10.8.252.0/23", "10.8.254.0/24"), want: "10.8.255.0/24", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pickSubnet(specs, tt.size, tt.taken)
			if ok != tt.wantOK || (ok && got.String() != tt.want) {
				t.Fatalf("pickSubnet = %v, %v; want %s, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
	// A base at the very end of the address space must not wrap around.
	end := []PoolSpec{{Base: netip.MustParsePrefix("255.255.255.0/24"), Size: 30}}
	if got, ok := pickSubnet(end, 0, prefixes("255.255.255.0/24")); ok {
		t.Fatalf("pickSubnet at end of space = %v; want none", got)
	}
	if got, ok := pickSubnet(end, 0, prefixes("255.255.255.0/25", "255.255.255.128/26", "255.255.255.192/27", "255.255.255.224/28", "255.255.255.240/29", "255.255.255.248/30")); !ok || got.String() != "255.255.255.252/30" {
		t.Fatalf("pickSubnet at end of space = %v, %v; want 255.255.255.252/30", got, ok)
	}
}

// TestPickSubnetAgainstBruteForce compares the skipping walk with trying
// every candidate against every taken prefix.
func TestPickSubnetAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	specs := []PoolSpec{
		{Base: netip.MustParsePrefix("10.0.0.0/20"), Size: 24},
		{Base: netip.MustParsePrefix("10.1.0.0/22"), Size: 26},
	}
	for iter := range 2000 {
		var taken []netip.Prefix
		for range rng.IntN(12) {
			bits := 16 + rng.IntN(13)
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(2)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			taken = append(taken, netip.PrefixFrom(a, bits).Masked())
		}
		size := []int{0, 23, 25}[rng.IntN(3)]
		want, wantOK := bruteForcePick(specs, size, taken)
		got, ok := pickSubnet(specs, size, taken)
		if ok != wantOK || got != want {
			t.Fatalf("iteration %d: size %d taken %v: pickSubnet = %v, %v; want %v, %v", iter, size, taken, got, ok, want, wantOK)
		}
	}
}

func bruteForcePick(specs []PoolSpec, size int, taken []netip.Prefix) (netip.Prefix, bool) {
	for _, s := range specs {
		bits := size
		if bits == 0 {
			bits = s.Size
		}
		if bits < s.Base.Bits() {
			continue
		}
		for c := netip.PrefixFrom(s.Base.Addr(), bits); s.Base.Contains(c.Addr()); c = netip.PrefixFrom(lastAddr(c).Next(), bits) {
			if !slices.ContainsFunc(taken, c.Overlaps) {
				return c, true
			}
		}
	}
	return netip.Prefix{}, false
}

func TestLastAddr(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"10.50.0.0/24", "10.50.0.255"},
		{"10.50.0.0/30", "10.50.0.3"},
		{"10.50.0.7/32", "10.50.0.7"},
		{"10.0.0.0/8", "10.255.255.255"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"fd00::/64", "fd00::ffff:ffff:ffff:ffff"},
		{"fd00::/56", "fd00::ff:ffff:ffff:ffff:ffff"},
		{"fd00::/63", "fd00::1:ffff:ffff:ffff:ffff"},
		{"fd00::/65", "fd00::7fff:ffff:ffff:ffff"},
		{"fd00::4/126", "fd00::7"},
		{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"fd00::1/128", "fd00::1"},
	}
	for _, tt := range tests {
		if got := lastAddr(netip.MustParsePrefix(tt.prefix)); got.String() != tt.want {
			t.Errorf("lastAddr(%s) = %s; want %s", tt.prefix, got, tt.want)
		}
	}
}

func TestPoolOffsets(t *testing.T) {
	tests := []struct {
		pool, sub string
		addr      string
		wantOff   int
		wantOK    bool
	}{
		{pool: "10.50.0.0/24", addr: "10.50.0.0", wantOff: 0, wantOK: true},
		{pool: "10.50.0.0/24", addr: "10.50.0.255", wantOff: 255, wantOK: true},
		{pool: "10.50.0.0/24", addr: "10.50.1.0", wantOK: false},
		{pool: "10.50.0.0/24", addr: "10.49.255.255", wantOK: false},
		{pool: "10.50.0.0/24", addr: "fd00::1", wantOK: false},
		{pool: "10.50.0.0/24", sub: "10.50.0.128/25", addr: "10.50.0.130", wantOff: 2, wantOK: true},
		{pool: "10.50.0.0/24", sub: "10.50.0.128/25", addr: "10.50.0.127", wantOK: false},
		{pool: "10.0.0.0/8", addr: "10.255.255.255", wantOff: 1<<24 - 1, wantOK: true},
		{pool: "fd00::/64", addr: "fd00::ff:ffff", wantOff: 1<<24 - 1, wantOK: true},
		{pool: "fd00::/64", addr: "fd00::100:0", wantOK: false}, // beyond the window
		{pool: "fd00::/64", addr: "fd00:0:0:1::", wantOK: false},
		{pool: "fd00::/48", sub: "fd00:0:0:5::/64", addr: "fd00:0:0:5::3", wantOff: 3, wantOK: true},
	}
	for _, tt := range tests {
		var sub netip.Prefix
		if tt.sub != "" {
			sub = netip.MustParsePrefix(tt.sub)
		}
		p := newPool(LocalAddressSpace, netip.MustParsePrefix(tt.pool), sub)
		a := netip.MustParseAddr(tt.addr)
		off, ok := p.offset(a)
		if ok != tt.wantOK || (ok && off != tt.wantOff) {
			t.Errorf("%s %s: offset(%s) = %d, %v; want %d, %v", tt.pool, tt.sub, a, off, ok, tt.wantOff, tt.wantOK)
			continue
		}
		if ok && p.addrAt(off) != a {
			t.Errorf("%s %s: addrAt(%d) = %s; want %s", tt.pool, tt.sub, off, p.addrAt(off), a)
		}
	}
}
