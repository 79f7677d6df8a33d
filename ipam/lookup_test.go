package ipam

import (
	"net/netip"
	"testing"
)

func TestPoolOf(t *testing.T) {
	m := newTestIPAM(t, newMemStore(), Config{})
	whole := requestPool(t, m, "10.50.0.0/24", "", false)
	ranged := requestPool(t, m, "10.51.0.0/16", "10.51.7.0/24", false)
	v6 := requestPool(t, m, "fd00:1::/64", "", true)
	for _, c := range []struct {
		subnet string
		want   string
	}{
		{"10.50.0.0/24", whole.PoolID},
		{"10.51.0.0/16", ranged.PoolID}, // the network's subnet, whatever its ip-range
		{"fd00:1::/64", v6.PoolID},
		{"10.50.0.0/25", ""}, // inside a pool is not the pool
		{"10.60.0.0/24", ""}, // Docker's IPAM, say
	} {
		got, ok := m.PoolOf(netip.MustParsePrefix(c.subnet))
		if got != c.want || ok != (c.want != "") {
			t.Errorf("PoolOf(%s) = %q, %v; want %q", c.subnet, got, ok, c.want)
		}
	}
	if _, ok := m.PoolOf(netip.Prefix{}); ok {
		t.Error("PoolOf(invalid prefix) found a pool")
	}
}
