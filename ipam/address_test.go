package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	api "github.com/docker/go-plugins-helpers/ipam"
)

// addrStep is one RequestAddress ("req") or ReleaseAddress ("rel").
type addrStep struct {
	op      string
	addr    string            // requested or released address; "" for automatic
	opts    map[string]string // RequestAddress options
	want    string            // RequestAddress answer
	wantErr error
	errHas  []string
}

func runSteps(t *testing.T, m *IPAM, poolID string, steps []addrStep) {
	t.Helper()
	for i, s := range steps {
		switch s.op {
		case "req":
			res, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: poolID, Address: s.addr, Options: s.opts})
			if s.wantErr != nil || err != nil {
				checkErr(t, err, s.wantErr, s.errHas...)
				continue
			}
			if res.Address != s.want {
				t.Fatalf("step %d: RequestAddress(%q) = %s; want %s", i, s.addr, res.Address, s.want)
			}
		case "rel":
			err := m.ReleaseAddress(&api.ReleaseAddressRequest{PoolID: poolID, Address: s.addr})
			checkErr(t, err, s.wantErr, s.errHas...)
		default:
			t.Fatalf("step %d: bad op %q", i, s.op)
		}
	}
}

func gw(want string) addrStep { return addrStep{op: "req", opts: gatewayOpts, want: want} }
func ep(want string) addrStep { return addrStep{op: "req", opts: endpointOpts, want: want} }
func static(addr, want string) addrStep {
	return addrStep{op: "req", addr: addr, opts: endpointOpts, want: want}
}
func aux(addr, want string) addrStep { return addrStep{op: "req", addr: addr, want: want} }
func rel(addr string) addrStep       { return addrStep{op: "rel", addr: addr} }
func fails(addr string, kind error, has ...string) addrStep {
	return addrStep{op: "req", addr: addr, opts: endpointOpts, wantErr: kind, errHas: has}
}

func TestRequestAddress(t *testing.T) {
	tests := []struct {
		name      string
		pool, sub string
		steps     []addrStep
	}{
		{name: "gateway is the first usable address", pool: "10.50.0.0/24", steps: []addrStep{
			gw("10.50.0.1/24"), ep("10.50.0.2/24"), ep("10.50.0.3/24"),
		}},
		{name: "gateway of the pool, not the ip-range", pool: "10.50.0.0/24", sub: "10.50.0.128/25", steps: []addrStep{
			gw("10.50.0.1/24"), ep("10.50.0.128/24"), ep("10.50.0.129/24"),
		}},
		{name: "explicit gateway", pool: "10.50.0.0/24", steps: []addrStep{
			{op: "req", addr: "10.50.0.254", opts: gatewayOpts, want: "10.50.0.254/24"},
			ep("10.50.0.1/24"),
		}},
		{name: "gateway already taken", pool: "10.50.0.0/24", steps: []addrStep{
			aux("10.50.0.1", "10.50.0.1/24"),
			{op: "req", opts: gatewayOpts, wantErr: ErrAddressInUse, errHas: []string{"gateway address 10.50.0.1", "pool 10.50.0.0/24", "--gateway"}},
		}},
		{name: "ipv6 gateway and endpoints", pool: "fd00:1::/64", steps: []addrStep{
			gw("fd00:1::1/64"), ep("fd00:1::2/64"),
		}},
		{name: "ipv6 endpoint without gateway skips the network address", pool: "fd00:1::/64", steps: []addrStep{
			ep("fd00:1::1/64"),
		}},
		{name: "static and aux inside pool outside ip-range", pool: "10.50.0.0/24", sub: "10.50.0.128/25", steps: []addrStep{
			static("10.50.0.10", "10.50.0.10/24"),
			aux("10.50.0.11", "10.50.0.11/24"),
			fails("10.50.0.10", ErrAddressInUse, "address 10.50.0.10 is already in use in pool 10.50.0.0/24"),
			static("10.50.0.200", "10.50.0.200/24"),
			ep("10.50.0.128/24"),
			rel("10.50.0.10"),
			static("10.50.0.10", "10.50.0.10/24"),
		}},
		{name: "network and broadcast rejected", pool: "10.50.0.0/24", steps: []addrStep{
			fails("10.50.0.0", ErrInvalid, "address 10.50.0.0 is the network address of pool 10.50.0.0/24"),
			fails("10.50.0.255", ErrInvalid, "address 10.50.0.255 is the broadcast address of pool 10.50.0.0/24"),
			{op: "req", addr: "10.50.0.0", opts: gatewayOpts, wantErr: ErrInvalid, errHas: []string{"network address"}},
		}},
		{name: "ipv6 network rejected, last address allowed", pool: "fd00:1::/64", steps: []addrStep{
			fails("fd00:1::", ErrInvalid, "address fd00:1:: is the network address"),
			static("fd00:1::ffff:ffff:ffff:ffff", "fd00:1::ffff:ffff:ffff:ffff/64"),
			fails("fd00:1::ffff:ffff:ffff:ffff", ErrAddressInUse, "already in use"),
		}},
		{name: "out of range", pool: "10.50.0.0/24", steps: []addrStep{
			fails("10.60.0.5", ErrOutOfRange, "address 10.60.0.5 is outside pool 10.50.0.0/24"),
			fails("fd00::5", ErrOutOfRange, "address fd00::5 is outside pool 10.50.0.0/24"),
			{op: "req", addr: "10.60.0.5", wantErr: ErrOutOfRange}, // aux
		}},
		{name: "in use", pool: "10.50.0.0/24", steps: []addrStep{
			static("10.50.0.9", "10.50.0.9/24"),
			fails("10.50.0.9", ErrAddressInUse, "address 10.50.0.9 is already in use in pool 10.50.0.0/24"),
			ep("10.50.0.1/24"),
			fails("10.50.0.1", ErrAddressInUse, "address 10.50.0.1 is already in use"),
		}},
		{name: "automatic allocation skips static addresses", pool: "10.50.0.0/24", steps: []addrStep{
			gw("10.50.0.1/24"), static("10.50.0.2", "10.50.0.2/24"), static("10.50.0.3", "10.50.0.3/24"),
			ep("10.50.0.4/24"),
		}},
		{name: "bad addresses", pool: "10.50.0.0/24", steps: []addrStep{
			fails("10.50.0.300", ErrInvalid, `address "10.50.0.300" is not an IP address`),
			fails("10.50.0.5/24", ErrInvalid, "not an IP address"),
			fails("fe80::1%eth0", ErrInvalid, "not an IP address"),
		}},
		{name: "/29 runs out after gateway and 5 endpoints", pool: "10.50.0.0/29", steps: []addrStep{
			gw("10.50.0.1/29"),
			ep("10.50.0.2/29"), ep("10.50.0.3/29"), ep("10.50.0.4/29"), ep("10.50.0.5/29"), ep("10.50.0.6/29"),
			{op: "req", opts: endpointOpts, wantErr: ErrPoolExhausted, errHas: []string{"pool 10.50.0.0/29 has no free address (6 in use)"}},
		}},
		{name: "/30 holds a gateway and one container", pool: "10.50.0.4/30", steps: []addrStep{
			gw("10.50.0.5/30"), ep("10.50.0.6/30"),
			{op: "req", wantErr: ErrPoolExhausted, errHas: []string{"pool 10.50.0.4/30 has no free address (2 in use)"}},
		}},
		{name: "ip-range runs out, static outside still works", pool: "10.50.0.0/24", sub: "10.50.0.252/30", steps: []addrStep{
			ep("10.50.0.252/24"), ep("10.50.0.253/24"), ep("10.50.0.254/24"),
			{op: "req", wantErr: ErrPoolExhausted, errHas: []string{"ip-range 10.50.0.252/30 of pool 10.50.0.0/24 has no free address (3 in use)"}},
			static("10.50.0.7", "10.50.0.7/24"),
		}},
		{name: "ip-range at the start skips the network address", pool: "10.50.0.0/24", sub: "10.50.0.0/30", steps: []addrStep{
			ep("10.50.0.1/24"), ep("10.50.0.2/24"), ep("10.50.0.3/24"),
			{op: "req", wantErr: ErrPoolExhausted, errHas: []string{"ip-range 10.50.0.0/30 of pool 10.50.0.0/24 has no free address (3 in use)"}},
		}},
		{name: "serial: a just-released address is not reused at once", pool: "10.50.0.0/24", steps: []addrStep{
			gw("10.50.0.1/24"), ep("10.50.0.2/24"), ep("10.50.0.3/24"),
			rel("10.50.0.2"),
			ep("10.50.0.4/24"),
			rel("10.50.0.4"),
			ep("10.50.0.5/24"),
		}},
		{name: "serial wraps around", pool: "10.50.0.0/29", steps: []addrStep{
			gw("10.50.0.1/29"),
			ep("10.50.0.2/29"), ep("10.50.0.3/29"), ep("10.50.0.4/29"), ep("10.50.0.5/29"), ep("10.50.0.6/29"),
			rel("10.50.0.3"), rel("10.50.0.5"),
			ep("10.50.0.3/29"), // wrapped: nothing free after .6
			ep("10.50.0.5/29"), // continues after .3
			rel("10.50.0.2"),
			ep("10.50.0.2/29"),
		}},
		{name: "release is idempotent", pool: "10.50.0.0/30", steps: []addrStep{
			rel("10.50.0.1"), // never leased
			gw("10.50.0.1/30"), ep("10.50.0.2/30"),
			rel("10.50.0.2"), rel("10.50.0.2"),
			rel("10.50.0.0"),   // network address: nothing to release
			rel("10.50.0.3"),   // broadcast
			rel("10.60.0.1"),   // outside the pool
			rel("fd00::1"),     // other family
			ep("10.50.0.2/30"), // released addresses come back; .0 and .3 never do
			{op: "req", wantErr: ErrPoolExhausted},
			{op: "rel", addr: "not-an-ip", wantErr: ErrInvalid, errHas: []string{`address "not-an-ip"`}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestIPAM(t, newMemStore(), Config{})
			id := requestPool(t, m, tt.pool, tt.sub, netip.MustParsePrefix(tt.pool).Addr().Is6()).PoolID
			runSteps(t, m, id, tt.steps)
		})
	}
}

func TestUnknownPool(t *testing.T) {
	m := newTestIPAM(t, newMemStore(), Config{})
	_, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: "mynet-local/10.9.0.0/24"})
	checkErr(t, err, ErrUnknownPool, `pool "mynet-local/10.9.0.0/24" is not held by mynet`)
	if err := m.ReleaseAddress(&api.ReleaseAddressRequest{PoolID: "mynet-local/10.9.0.0/24", Address: "10.9.0.5"}); err != nil {
		t.Fatalf("ReleaseAddress in unknown pool: %v", err)
	}
}

func TestCapabilitiesAndSpaces(t *testing.T) {
	m := newTestIPAM(t, newMemStore(), Config{})
	caps, err := m.GetCapabilities()
	if err != nil || caps.RequiresMACAddress {
		t.Fatalf("GetCapabilities = %+v, %v", caps, err)
	}
	sp, err := m.GetDefaultAddressSpaces()
	if err != nil || sp.LocalDefaultAddressSpace != "mynet-local" || sp.GlobalDefaultAddressSpace != "mynet-global" {
		t.Fatalf("GetDefaultAddressSpaces = %+v, %v", sp, err)
	}
}

// TestWindowExhausted fills the 2^24-address window of an IPv6 /64 and
// checks the message says why a /64 "runs out".
func TestWindowExhausted(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a 2^24-bit window")
	}
	m := newTestIPAM(t, newMemStore(), Config{})
	id := requestPool(t, m, "fd00:1::/64", "", true).PoolID
	p := m.pools[id]
	setRange(p.used, 0, p.used.Len())
	_, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: id})
	checkErr(t, err, ErrPoolExhausted, "pool fd00:1::/64 has no free address among the first 16777216", "(16777215 in use)", "static")
	// Static addresses beyond the window still work.
	if got := requestAddress(t, m, id, "fd00:1::1:0:0", endpointOpts); got != "fd00:1::1:0:0/64" {
		t.Fatalf("static beyond window = %s", got)
	}
}

// TestStoreFailureLeavesStateUnchanged makes every write fail and checks
// that nothing was taken or freed in memory.
func TestStoreFailureLeavesStateUnchanged(t *testing.T) {
	st := newMemStore()
	m := newTestIPAM(t, st, Config{})
	id := requestPool(t, m, "10.50.0.0/24", "", false).PoolID
	requestAddress(t, m, id, "", gatewayOpts)
	requestAddress(t, m, id, "", endpointOpts) // .2

	failing := true
	st.failPut = func(string, string) bool { return failing }
	st.failDelete = func(string, string) bool { return failing }

	_, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: id})
	checkErr(t, err, errDisk, "recording address 10.50.0.3 in pool 10.50.0.0/24")
	_, err = m.RequestAddress(&api.RequestAddressRequest{PoolID: id, Address: "10.50.0.9"})
	checkErr(t, err, errDisk)
	_, err = m.RequestPool(&api.RequestPoolRequest{Pool: "10.60.0.0/24"})
	checkErr(t, err, errDisk, "recording pool mynet-local/10.60.0.0/24")
	_, err = m.RequestPool(&api.RequestPoolRequest{})
	checkErr(t, err, errDisk)
	err = m.ReleaseAddress(&api.ReleaseAddressRequest{PoolID: id, Address: "10.50.0.2"})
	checkErr(t, err, errDisk, "releasing address 10.50.0.2 in pool 10.50.0.0/24")
	err = m.ReleasePool(&api.ReleasePoolRequest{PoolID: id})
	checkErr(t, err, errDisk, "releasing pool "+id)

	failing = false
	runSteps(t, m, id, []addrStep{
		ep("10.50.0.3/24"), // not consumed by the failed attempt
		static("10.50.0.9", "10.50.0.9/24"),
		fails("10.50.0.2", ErrAddressInUse), // the failed release kept it
	})
	requestPool(t, m, "10.60.0.0/24", "", false)
	if got := requestPool(t, m, "", "", false).Pool; got != "10.200.0.0/24" {
		t.Fatalf("automatic pool after failed attempt = %s; want 10.200.0.0/24", got)
	}
}

// TestReleasePoolPartialFailure: a lease delete fails half-way; the pool
// stays held and a retry completes.
func TestReleasePoolPartialFailure(t *testing.T) {
	st := newMemStore()
	m := newTestIPAM(t, st, Config{})
	id := requestPool(t, m, "10.50.0.0/24", "", false).PoolID
	requestAddress(t, m, id, "", gatewayOpts)
	requestAddress(t, m, id, "10.50.0.20", nil)
	st.failDelete = func(_, key string) bool { return key == id+"|10.50.0.20" }
	if err := m.ReleasePool(&api.ReleasePoolRequest{PoolID: id}); !errors.Is(err, errDisk) {
		t.Fatalf("ReleasePool = %v; want the store error", err)
	}
	if _, ok := m.pools[id]; !ok {
		t.Fatal("pool dropped although its release failed")
	}
	st.failDelete = nil
	if err := m.ReleasePool(&api.ReleasePoolRequest{PoolID: id}); err != nil {
		t.Fatalf("retried ReleasePool: %v", err)
	}
	if k := st.keys(leasesBucket); len(k) != 0 {
		t.Fatalf("leases left after release: %v", k)
	}
}

// TestConcurrentRequests: 64 goroutines allocating at once never share an
// address, and concurrent releases and re-allocations keep that true.
func TestConcurrentRequests(t *testing.T) {
	m := newTestIPAM(t, newMemStore(), Config{})
	id := requestPool(t, m, "10.50.0.0/22", "", false).PoolID
	v6 := requestPool(t, m, "fd00:1::/64", "", true).PoolID
	const workers, each = 64, 8

	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				for _, pid := range []string{id, v6} {
					res, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: pid, Options: endpointOpts})
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if seen[res.Address] {
						errs <- fmt.Errorf("worker %d: %s handed out twice", w, res.Address)
					}
					seen[res.Address] = true
					mu.Unlock()
					if i%2 == 1 { // churn: release every other one again
						a := netip.MustParsePrefix(res.Address).Addr().String()
						mu.Lock()
						delete(seen, res.Address)
						mu.Unlock()
						if err := m.ReleaseAddress(&api.ReleaseAddressRequest{PoolID: pid, Address: a}); err != nil {
							errs <- err
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if want := 2 * workers * each / 2; len(seen) != want {
		t.Fatalf("%d addresses held; want %d", len(seen), want)
	}
	if got := m.pools[id].leases(); got != workers*each/2 {
		t.Fatalf("pool holds %d leases; want %d", got, workers*each/2)
	}
}
