package ipam

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	api "github.com/docker/go-plugins-helpers/ipam"
)

// TestLeaseWrittenOutsideLock holds one lease's write in flight: other
// addresses are still handed out meanwhile (the write does not hold the
// IPAM lock), the address in flight is neither handed out again nor
// released, nor is its pool, and the call returns once the write is done.
func TestLeaseWrittenOutsideLock(t *testing.T) {
	st := newMemStore()
	m := newTestIPAM(t, st, Config{})
	id := requestPool(t, m, "10.50.0.0/24", "", false).PoolID
	inPut, release := make(chan struct{}), make(chan struct{})
	held := id + "|10.50.0.9"
	st.beforePut = func(_, key string) {
		if key == held {
			close(inPut)
			<-release
		}
	}
	got := make(chan string, 1)
	go func() { got <- requestAddress(t, m, id, "10.50.0.9", endpointOpts) }()
	<-inPut

	other := make(chan string, 1)
	go func() { other <- requestAddress(t, m, id, "", endpointOpts) }()
	select {
	case a := <-other:
		if a != "10.50.0.1/24" {
			t.Fatalf("address allocated while another is written = %s, want 10.50.0.1/24", a)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("RequestAddress waits for another caller's write: the IPAM lock is held across it")
	}
	_, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: id, Address: "10.50.0.9"})
	checkErr(t, err, ErrAddressInUse)
	err = m.ReleaseAddress(&api.ReleaseAddressRequest{PoolID: id, Address: "10.50.0.9"})
	checkErr(t, err, ErrBusy, "10.50.0.9 in pool 10.50.0.0/24 is still being leased")
	err = m.ReleasePool(&api.ReleasePoolRequest{PoolID: id})
	checkErr(t, err, ErrBusy, "pool 10.50.0.0/24 still has address requests in progress")

	close(release)
	select {
	case a := <-got:
		if a != "10.50.0.9/24" {
			t.Fatalf("held request = %s", a)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("request still blocked after its write was let through")
	}
	releaseAddress(t, m, id, "10.50.0.9")
	if err := m.ReleasePool(&api.ReleasePoolRequest{PoolID: id}); err != nil {
		t.Fatalf("ReleasePool after the write: %v", err)
	}
}

// TestConcurrentWriteFailures: 50 callers allocate while every third write
// fails. Each failed address goes back to the pool, and afterwards memory
// and store agree exactly with what the callers were given, each address
// once.
func TestConcurrentWriteFailures(t *testing.T) {
	st := newMemStore()
	m := newTestIPAM(t, st, Config{})
	id := requestPool(t, m, "10.50.0.0/20", "", false).PoolID
	var (
		mu     sync.Mutex
		writes int
		given  []string
		failed int
	)
	st.failPut = func(string, string) bool { writes++; return writes%3 == 0 } // under st.mu
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 40 {
				res, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: id})
				mu.Lock()
				if err != nil {
					failed++
				} else {
					given = append(given, leaseKey(id, netip.MustParsePrefix(res.Address).Addr()))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(given)
	if len(slices.Compact(slices.Clone(given))) != len(given) {
		t.Fatal("an address was handed out twice")
	}
	if stored := st.keys(leasesBucket); !slices.Equal(stored, given) {
		t.Fatalf("store holds %d leases, callers were given %d", len(stored), len(given))
	}
	if n := m.pools[id].leases(); n != len(given) || len(m.writing) != 0 {
		t.Fatalf("pool holds %d leases (%d writing), callers were given %d", n, len(m.writing), len(given))
	}
	if failed == 0 || len(given)+failed != 50*40 {
		t.Fatalf("%d given, %d failed", len(given), failed)
	}
}
