package ipam

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// ReleaseLease frees a held lease once, persists the release, and says
// false for a free address or an unknown pool; a failed delete keeps the
// lease.
func TestReleaseLease(t *testing.T) {
	st := newMemStore()
	m := newTestIPAM(t, st, Config{})
	p := requestPool(t, m, "10.60.0.0/24", "", false)
	requestAddress(t, m, p.PoolID, "10.60.0.9", map[string]string{"x": "y"})
	a := netip.MustParseAddr("10.60.0.9")

	st.failDelete = func(string, string) bool { return true }
	if freed, err := m.ReleaseLease(p.PoolID, a); freed || !errors.Is(err, errDisk) {
		t.Fatalf("with the store failing: %v, %v; want false and the store's error", freed, err)
	}
	st.failDelete = nil
	if freed, err := m.ReleaseLease(p.PoolID, a); !freed || err != nil {
		t.Fatalf("ReleaseLease = %v, %v; want true", freed, err)
	}
	if slices.Contains(st.keys(leasesBucket), leaseKey(p.PoolID, a)) {
		t.Error("the released lease is still stored")
	}
	if freed, err := m.ReleaseLease(p.PoolID, a); freed || err != nil {
		t.Errorf("a second ReleaseLease = %v, %v; want false", freed, err)
	}
	if freed, err := m.ReleaseLease("nosuchpool", a); freed || err != nil {
		t.Errorf("unknown pool: %v, %v; want false", freed, err)
	}
	if got := requestAddress(t, m, p.PoolID, "10.60.0.9", map[string]string{"x": "y"}); got != "10.60.0.9/24" {
		t.Errorf("the released address leased again as %q", got)
	}
}
