package ipam

import (
	"net/netip"
	"testing"

	api "github.com/docker/go-plugins-helpers/ipam"
)

// FuzzParseDefaultPools: any string is parsed or refused, never a panic,
// and an accepted pool splits its base into subnets of a valid size.
func FuzzParseDefaultPools(f *testing.F) {
	for _, s := range []string{"10.200.0.0/16/24", "10.200.0.0/16/24,fd6d:796e:6574::/48/64", "", "1.2.3.4/33/8", "::/0/128", "a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		specs, err := ParseDefaultPools(s)
		if err != nil {
			return
		}
		for _, p := range specs {
			if p.Size < p.Base.Bits() || p.Size > p.Base.Addr().BitLen() {
				t.Fatalf("%q: accepted %v", s, p)
			}
		}
	})
}

// FuzzRequests drives RequestPool and RequestAddress with arbitrary
// strings: no panic, and every address handed out lies in its pool.
func FuzzRequests(f *testing.F) {
	f.Add("10.50.0.0/24", "", "", false, false)
	f.Add("10.50.0.0/24", "10.50.0.128/25", "10.50.0.7", false, true)
	f.Add("", "", "", true, false)
	f.Add("0.0.0.0/24", "", "10.0.0.300", false, false)
	f.Add("fd00::/64", "fd00::/120", "fd00::5", true, false)
	f.Add("10.0.0.0/8", "", "10.255.255.255", false, false)
	f.Fuzz(func(t *testing.T, pool, sub, addr string, v6, gateway bool) {
		m, err := New(newMemStore(), Config{}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.RequestPool(&api.RequestPoolRequest{AddressSpace: LocalAddressSpace, Pool: pool, SubPool: sub, V6: v6})
		if err != nil {
			return
		}
		prefix, err := netip.ParsePrefix(p.Pool)
		if err != nil {
			t.Fatalf("pool %q is not a CIDR", p.Pool)
		}
		opts := map[string]string{}
		if gateway {
			opts["RequestAddressType"] = "com.docker.network.gateway"
		}
		for i := 0; i < 3; i++ {
			a, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: p.PoolID, Address: addr, Options: opts})
			if err != nil {
				continue
			}
			got, err := netip.ParsePrefix(a.Address)
			if err != nil || !prefix.Contains(got.Addr()) || got.Bits() != prefix.Bits() {
				t.Fatalf("pool %s handed out %q", prefix, a.Address)
			}
			addr = ""
		}
		if err := m.ReleasePool(&api.ReleasePoolRequest{PoolID: p.PoolID}); err != nil {
			t.Fatal(err)
		}
	})
}
