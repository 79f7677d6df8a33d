package ipam

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	api "github.com/docker/go-plugins-helpers/ipam"
	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"

	"github.com/mynet/mynet/store"
)

// openStateStore opens a real state file in a fresh directory: these
// benchmarks and tests measure what a lease costs on disk, fsync included.
func openStateStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// BenchmarkRequestAddressStore allocates addresses on a real state file
// from 1, 8 and 50 concurrent callers, the way a `docker compose up
// --scale` burst does, and reports leases per second.
func BenchmarkRequestAddressStore(b *testing.B) {
	for _, callers := range []int{1, 8, 50} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			log := testLogger()
			log.Logger.SetLevel(logrus.InfoLevel)
			m, err := New(openStateStore(b), Config{}, log)
			if err != nil {
				b.Fatal(err)
			}
			id := requestPool(b, m, "10.0.0.0/8", "", false).PoolID
			start := time.Now()
			allocateConcurrently(b, m, id, callers, b.N)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "leases/s")
		})
	}
}

// allocateConcurrently makes n RequestAddress calls from callers goroutines.
func allocateConcurrently(tb testing.TB, m *IPAM, poolID string, callers, n int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			req := &api.RequestAddressRequest{PoolID: poolID}
			for next.Add(1) <= int64(n) {
				if _, err := m.RequestAddress(req); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// seedState writes a state file in dir holding one pool of prefix with n
// automatic leases, in one bbolt transaction, so that a test of a big pool
// does not first spend minutes allocating it. It returns the PoolID.
func seedState(tb testing.TB, dir, prefix string, n int) string {
	tb.Helper()
	p := newPool(LocalAddressSpace, netip.MustParsePrefix(prefix), netip.Prefix{})
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		pools, _ := tx.CreateBucketIfNotExists([]byte(poolsBucket))
		leases, _ := tx.CreateBucketIfNotExists([]byte(leasesBucket))
		raw, _ := json.Marshal(p.record())
		if err := pools.Put([]byte(p.id), raw); err != nil {
			return err
		}
		// In key order: bbolt splits nodes only at commit, so random
		// inserts into one transaction cost quadratic time.
		recs := map[string][]byte{}
		for off, seq := 0, 1; seq <= n; off++ {
			if a := p.addrAt(off); !p.unassignable(a) {
				recs[leaseKey(p.id, a)], _ = json.Marshal(leaseRecord{Kind: kindEndpoint, Seq: uint64(seq)})
				seq++
			}
		}
		for _, k := range slices.Sorted(maps.Keys(recs)) {
			if err := leases.Put([]byte(k), recs[k]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return p.id
}

// TestReleasePoolBigPool releases pools of 20,000 and 98,000 leases on a
// real state file. One fsync per lease took 46 s and 150 s, with every
// other IPAM call waiting on the lock; one transaction takes well under a
// second, and the bound leaves room for a slow CI disk.
func TestReleasePoolBigPool(t *testing.T) {
	for _, n := range []int{20_000, 98_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			id := seedState(t, dir, "10.0.0.0/15", n)
			t0 := time.Now()
			st, err := store.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			t1 := time.Now()
			m := newTestIPAM(t, st, Config{})
			t.Logf("Open (with its page check) %v, New (load) %v", t1.Sub(t0), time.Since(t1))
			start := time.Now()
			if err := m.ReleasePool(&api.ReleasePoolRequest{PoolID: id}); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("ReleasePool of %d leases: %v", n, took)
			var left int
			_ = st.ForEach(leasesBucket, func(string, []byte) error { left++; return nil })
			if left != 0 {
				t.Fatalf("%d leases left after ReleasePool", left)
			}
			if took > 10*time.Second {
				t.Fatalf("ReleasePool of %d leases took %v, want one transaction (< 10s)", n, took)
			}
		})
	}
}
