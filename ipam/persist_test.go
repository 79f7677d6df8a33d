package ipam

import (
	"slices"
	"testing"

	api "github.com/docker/go-plugins-helpers/ipam"

	"github.com/mynet/mynet/store"
)

// reopener hands out a Store that survives a simulated plugin restart: each
// call "kills" the previous IPAM's store and opens the same state again.
type reopener func(t *testing.T) Store

func memReopener() reopener {
	st := newMemStore()
	return func(*testing.T) Store { return st }
}

func boltReopener(t *testing.T) reopener {
	dir := t.TempDir()
	var cur *store.Store
	t.Cleanup(func() {
		if cur != nil {
			_ = cur.Close()
		}
	})
	return func(t *testing.T) Store {
		// bbolt locks the file: close before reopening, as a new process would.
		if cur != nil {
			if err := cur.Close(); err != nil {
				t.Fatalf("closing store: %v", err)
			}
		}
		st, err := store.Open(dir)
		if err != nil {
			t.Fatalf("store.Open: %v", err)
		}
		cur = st
		return st
	}
}

func TestPersistence(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) reopener
	}{
		{"memory", func(*testing.T) reopener { return memReopener() }},
		{"bbolt", boltReopener},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			reopen := s.open(t)
			m := newTestIPAM(t, reopen(t), Config{})
			small := requestPool(t, m, "10.50.0.0/29", "", false).PoolID
			ranged := requestPool(t, m, "10.60.0.0/24", "10.60.0.128/25", false).PoolID
			auto := requestPool(t, m, "", "", false).PoolID
			v6 := requestPool(t, m, "", "", true).PoolID
			gone := requestPool(t, m, "10.70.0.0/24", "", false).PoolID
			runSteps(t, m, small, []addrStep{
				gw("10.50.0.1/29"), ep("10.50.0.2/29"), ep("10.50.0.3/29"), ep("10.50.0.4/29"),
				rel("10.50.0.2"),
			})
			runSteps(t, m, ranged, []addrStep{
				gw("10.60.0.1/24"), aux("10.60.0.9", "10.60.0.9/24"), ep("10.60.0.128/24"),
			})
			runSteps(t, m, v6, []addrStep{
				gw("fd6d:796e:6574::1/64"), static("fd6d:796e:6574::ffff:0:1", "fd6d:796e:6574::ffff:0:1/64"),
			})
			requestAddress(t, m, gone, "", gatewayOpts)
			if err := m.ReleasePool(&api.ReleasePoolRequest{PoolID: gone}); err != nil {
				t.Fatal(err)
			}

			// Restart, like a plugin killed with -9: only the store remains.
			m = newTestIPAM(t, reopen(t), Config{})
			if got := slicesSorted(m.pools); !slices.Equal(got, slicesSorted(map[string]*pool{small: nil, ranged: nil, auto: nil, v6: nil})) {
				t.Fatalf("pools after restart: %v", got)
			}
			runSteps(t, m, small, []addrStep{
				fails("10.50.0.1", ErrAddressInUse), fails("10.50.0.3", ErrAddressInUse), fails("10.50.0.4", ErrAddressInUse),
				ep("10.50.0.5/29"), // the cursor survived: after .4, not the released .2
				ep("10.50.0.6/29"),
				ep("10.50.0.2/29"),
				{op: "req", wantErr: ErrPoolExhausted, errHas: []string{"(6 in use)"}},
			})
			runSteps(t, m, ranged, []addrStep{
				fails("10.60.0.9", ErrAddressInUse), ep("10.60.0.129/24"),
			})
			runSteps(t, m, v6, []addrStep{
				fails("fd6d:796e:6574::ffff:0:1", ErrAddressInUse), ep("fd6d:796e:6574::2/64"),
			})
			// Automatic pools skip what was restored; the released pool is free.
			if got := requestPool(t, m, "", "", false).Pool; got != "10.200.1.0/24" {
				t.Fatalf("automatic pool after restart = %s", got)
			}
			requestPool(t, m, "10.70.0.0/24", "", false)
			_, err := m.RequestPool(&api.RequestPoolRequest{Pool: "10.50.0.0/24"})
			checkErr(t, err, ErrPoolOverlap)

			// Once more, after everything is full: nothing is handed out twice.
			m = newTestIPAM(t, reopen(t), Config{})
			runSteps(t, m, small, []addrStep{{op: "req", wantErr: ErrPoolExhausted, errHas: []string{"(6 in use)"}}})
		})
	}
}

func slicesSorted(m map[string]*pool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestStoredRecords pins the on-disk shape other tools and later versions
// read.
func TestStoredRecords(t *testing.T) {
	st := newMemStore()
	m := newTestIPAM(t, st, Config{})
	id := requestPool(t, m, "10.60.0.0/24", "10.60.0.128/25", false).PoolID
	requestAddress(t, m, id, "", gatewayOpts)
	requestAddress(t, m, id, "10.60.0.9", nil)
	requestAddress(t, m, id, "10.60.0.10", endpointOpts)
	requestAddress(t, m, id, "", endpointOpts)
	want := map[string]string{
		poolsBucket + " " + id:                   `{"space":"mynet-local","pool":"10.60.0.0/24","subPool":"10.60.0.128/25","v6":false}`,
		leasesBucket + " " + id + "|10.60.0.1":   `{"kind":"gateway"}`,
		leasesBucket + " " + id + "|10.60.0.9":   `{"kind":"aux"}`,
		leasesBucket + " " + id + "|10.60.0.10":  `{"kind":"endpoint"}`,
		leasesBucket + " " + id + "|10.60.0.128": `{"kind":"endpoint","seq":1}`,
	}
	got := map[string]string{}
	for _, b := range []string{poolsBucket, leasesBucket} {
		_ = st.ForEach(b, func(k string, raw []byte) error { got[b+" "+k] = string(raw); return nil })
	}
	if len(got) != len(want) {
		t.Fatalf("stored %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s; want %s", k, got[k], v)
		}
	}
	// No subPool key when there is none.
	id2 := requestPool(t, m, "10.61.0.0/24", "", false).PoolID
	if s := string(st.data[poolsBucket][id2]); s != `{"space":"mynet-local","pool":"10.61.0.0/24","v6":false}` {
		t.Errorf("pool without ip-range stored as %s", s)
	}
}

func TestLoadBadRecords(t *testing.T) {
	tests := []struct {
		name    string
		bucket  string
		key     string
		raw     string
		wantErr bool // New fails; otherwise the record is ignored
	}{
		{name: "pool not json", bucket: poolsBucket, key: "mynet-local/10.50.0.0/24", raw: `{`, wantErr: true},
		{name: "pool key mismatch", bucket: poolsBucket, key: "mynet-local/10.51.0.0/24", raw: `{"space":"mynet-local","pool":"10.50.0.0/24"}`, wantErr: true},
		{name: "pool wrong family", bucket: poolsBucket, key: "mynet-local/10.50.0.0/24", raw: `{"space":"mynet-local","pool":"10.50.0.0/24","v6":true}`, wantErr: true},
		{name: "pool bad space", bucket: poolsBucket, key: "x/10.50.0.0/24", raw: `{"space":"x","pool":"10.50.0.0/24"}`, wantErr: true},
		{name: "pool ip-range outside", bucket: poolsBucket, key: "mynet-local/10.50.0.0/24/10.60.0.0/24", raw: `{"space":"mynet-local","pool":"10.50.0.0/24","subPool":"10.60.0.0/24"}`, wantErr: true},
		{name: "lease key without separator", bucket: leasesBucket, key: "mynet-local/10.40.0.0/24", raw: `{"kind":"aux"}`, wantErr: true},
		{name: "lease bad address", bucket: leasesBucket, key: "mynet-local/10.40.0.0/24|10.40.0.300", raw: `{"kind":"aux"}`, wantErr: true},
		{name: "lease not json", bucket: leasesBucket, key: "mynet-local/10.40.0.0/24|10.40.0.3", raw: `x`, wantErr: true},
		{name: "lease of unknown pool", bucket: leasesBucket, key: "mynet-local/10.99.0.0/24|10.99.0.3", raw: `{"kind":"aux"}`},
		{name: "lease outside its pool", bucket: leasesBucket, key: "mynet-local/10.40.0.0/24|10.41.0.3", raw: `{"kind":"aux"}`},
		{name: "lease of network address", bucket: leasesBucket, key: "mynet-local/10.40.0.0/24|10.40.0.0", raw: `{"kind":"aux"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemStore()
			m := newTestIPAM(t, st, Config{})
			id := requestPool(t, m, "10.40.0.0/24", "", false).PoolID
			requestAddress(t, m, id, "", gatewayOpts)
			st.data[tt.bucket][tt.key] = []byte(tt.raw)

			m, err := New(st, Config{}, testLogger())
			if tt.wantErr {
				if err == nil {
					t.Fatal("New succeeded on a bad record")
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			runSteps(t, m, id, []addrStep{fails("10.40.0.1", ErrAddressInUse), ep("10.40.0.2/24")})
		})
	}
}
