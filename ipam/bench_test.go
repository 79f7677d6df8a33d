package ipam

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	api "github.com/docker/go-plugins-helpers/ipam"
	"github.com/sirupsen/logrus"
)

// benchPool returns an IPAM on a nullStore, so the numbers are the
// allocator's and not a store's, with a pool whose window is filled to
// fill (0..1) at random offsets. fill < 0 means "all but one address":
// every search then has to cross the whole pool.
func benchPool(b *testing.B, subnet string, fill float64) (*IPAM, string) {
	m := newBenchIPAM(b)
	id := requestPool(b, m, subnet, "", false).PoolID
	p := m.pools[id]
	n := p.used.Len()
	switch {
	case fill < 0:
		setRange(p.used, 0, n)
		p.used.Clear(n / 3)
		p.cursor = n / 3
	default:
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range n {
			if rng.Float64() < fill {
				p.used.Set(i)
			}
		}
	}
	return m, id
}

// newBenchIPAM logs at info level: formatting debug lines would cost more
// than the allocation being measured.
func newBenchIPAM(b *testing.B) *IPAM {
	log := testLogger()
	log.Logger.SetLevel(logrus.InfoLevel)
	m, err := New(nullStore{}, Config{}, log)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

var benchCases = []struct {
	subnet string
	fill   float64
	name   string
}{
	{"10.0.0.0/16", 0, "p16/fill0"},
	{"10.0.0.0/16", 0.5, "p16/fill50"},
	{"10.0.0.0/16", 0.99, "p16/fill99"},
	{"10.0.0.0/16", -1, "p16/onefree"},
	{"10.0.0.0/8", 0, "p8/fill0"},
	{"10.0.0.0/8", 0.5, "p8/fill50"},
	{"10.0.0.0/8", 0.99, "p8/fill99"},
	{"10.0.0.0/8", -1, "p8/onefree"},
}

// BenchmarkAllocate times RequestAddress alone. Fill is kept near its level
// by releasing the benchmark's own addresses, untimed, in batches.
func BenchmarkAllocate(b *testing.B) {
	for _, bc := range benchCases {
		if bc.fill < 0 {
			continue // one free address cannot be allocated repeatedly
		}
		b.Run(bc.name, func(b *testing.B) {
			m, id := benchPool(b, bc.subnet, bc.fill)
			free := m.pools[id].used.Len() - m.pools[id].used.Count()
			batch := max(1, min(4096, free/2))
			held := make([]string, 0, batch)
			req := &api.RequestAddressRequest{PoolID: id}
			for b.Loop() {
				res, err := m.RequestAddress(req)
				if err != nil {
					b.Fatal(err)
				}
				held = append(held, res.Address)
				if len(held) == batch {
					b.StopTimer()
					for _, a := range held {
						releaseAddress(b, m, id, netip.MustParsePrefix(a).Addr().String())
					}
					held = held[:0]
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkAllocateRelease times a RequestAddress followed by the
// ReleaseAddress of the same address, the steady state of container churn.
func BenchmarkAllocateRelease(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			m, id := benchPool(b, bc.subnet, bc.fill)
			req := &api.RequestAddressRequest{PoolID: id}
			rel := &api.ReleaseAddressRequest{PoolID: id}
			for b.Loop() {
				res, err := m.RequestAddress(req)
				if err != nil {
					b.Fatal(err)
				}
				rel.Address = netip.MustParsePrefix(res.Address).Addr().String()
				if err := m.ReleaseAddress(rel); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequestPoolAutomatic times picking a free /64 when many are taken.
func BenchmarkRequestPoolAutomatic(b *testing.B) {
	for _, held := range []int{10, 1000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			m := newBenchIPAM(b)
			for range held {
				requestPool(b, m, "", "", true)
			}
			req := &api.RequestPoolRequest{V6: true}
			for b.Loop() {
				res, err := m.RequestPool(req)
				if err != nil {
					b.Fatal(err)
				}
				if err := m.ReleasePool(&api.ReleasePoolRequest{PoolID: res.PoolID}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
