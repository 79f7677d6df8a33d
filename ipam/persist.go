package ipam

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sirupsen/logrus"
)

// Store is all ipam needs from persistence; *store.Store
// (github.com/mynet/mynet/store) satisfies it. Put JSON-encodes v; ForEach
// yields raw JSON values. Delete of a missing key is nil. DeleteMany
// deletes all keys or none, in one write: a pool of 100,000 leases must not
// cost 100,000 fsyncs.
type Store interface {
	Put(bucket, key string, v any) error
	Delete(bucket, key string) error
	DeleteMany(bucket string, keys []string) error
	ForEach(bucket string, fn func(key string, raw []byte) error) error
}

// Buckets. A pool record is written once, when the pool is allocated; each
// lease is its own key, so a lease costs one small write and never a rewrite
// of its pool.
const (
	poolsBucket  = "ipam-pools"  // PoolID -> poolRecord
	leasesBucket = "ipam-leases" // PoolID|address -> leaseRecord
)

type poolRecord struct {
	Space   string       `json:"space"`
	Pool    netip.Prefix `json:"pool"`
	SubPool netip.Prefix `json:"subPool,omitzero"`
	V6      bool         `json:"v6"`
}

// Lease kinds, kept for people reading the state file. ipam itself treats
// all leases alike; older engines send endpoint and aux requests the same
// way, so the kind is a best guess from the request.
const (
	kindGateway  = "gateway"
	kindAux      = "aux"
	kindEndpoint = "endpoint"
)

type leaseRecord struct {
	Kind string `json:"kind"`
	// Seq is set on automatic allocations only; the highest one tells New
	// where the serial cursor stood.
	Seq uint64 `json:"seq,omitempty"`
}

func (p *pool) record() poolRecord {
	return poolRecord{Space: p.space, Pool: p.prefix, SubPool: p.sub, V6: p.v6()}
}

func leaseKey(poolID string, a netip.Addr) string { return poolID + "|" + a.String() }

// poolFromRecord validates a stored pool as strictly as a request: a record
// mynet cannot make sense of must stop startup rather than be dropped, since
// dropping it would free addresses that containers hold.
func poolFromRecord(key string, rec poolRecord) (*pool, error) {
	if _, err := addressSpace(rec.Space); err != nil {
		return nil, err
	}
	if !rec.Pool.IsValid() || rec.Pool != rec.Pool.Masked() || rec.Pool.Addr().Is6() != rec.V6 {
		return nil, fmt.Errorf("invalid pool %q (v6 %v)", rec.Pool, rec.V6)
	}
	if err := checkSubnet(rec.Pool); err != nil {
		return nil, err
	}
	if rec.SubPool.IsValid() {
		if rec.SubPool != rec.SubPool.Masked() {
			return nil, fmt.Errorf("invalid ip-range %s", rec.SubPool)
		}
		if err := checkRange(rec.SubPool, rec.Pool); err != nil {
			return nil, err
		}
	}
	p := newPool(rec.Space, rec.Pool, rec.SubPool)
	if p.id != key {
		return nil, fmt.Errorf("record describes pool %s", p.id)
	}
	return p, nil
}

// load rebuilds pools and leases from the store and returns the number of
// leases.
func (m *IPAM) load() (int, error) {
	err := m.st.ForEach(poolsBucket, func(key string, raw []byte) error {
		var rec poolRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("decoding pool record: %w", err)
		}
		p, err := poolFromRecord(key, rec)
		if err != nil {
			return err
		}
		m.pools[key] = p
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("loading ipam pools: %w", err)
	}
	n := 0
	err = m.st.ForEach(leasesBucket, func(key string, raw []byte) error {
		loaded, err := m.loadLease(key, raw)
		if loaded {
			n++
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("loading ipam leases: %w", err)
	}
	return n, nil
}

func (m *IPAM) loadLease(key string, raw []byte) (bool, error) {
	i := strings.LastIndexByte(key, '|')
	if i < 0 {
		return false, fmt.Errorf("malformed lease key: want PoolID|address")
	}
	a, err := netip.ParseAddr(key[i+1:])
	if err != nil {
		return false, fmt.Errorf("malformed lease address: %w", err)
	}
	var rec leaseRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return false, fmt.Errorf("decoding lease record: %w", err)
	}
	log := m.log.WithFields(logrus.Fields{"pool": key[:i], "address": a})
	p, ok := m.pools[key[:i]]
	if !ok {
		// ReleasePool deletes leases before the pool record, so only an
		// edited state file gets here; the lease protects nothing.
		log.Warn("ignoring stored lease of a pool mynet does not hold")
		return false, nil
	}
	if !p.prefix.Contains(a) || p.unassignable(a) {
		log.Warn("ignoring stored lease of an address that cannot be leased in its pool")
		return false, nil
	}
	p.mark(a)
	if rec.Seq > p.seq {
		p.seq = rec.Seq
		if off, ok := p.offset(a); ok {
			p.cursor = off
		}
	}
	return true, nil
}

// deleteLeases removes every stored lease of a pool, in one write. If it
// fails the pool stays held with all its leases and ReleasePool returns the
// error; the engine's retry (or the next ReleasePool) finishes the job.
func (m *IPAM) deleteLeases(poolID string) error {
	var keys []string
	prefix := poolID + "|"
	err := m.st.ForEach(leasesBucket, func(key string, _ []byte) error {
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing leases of pool %s: %w", poolID, err)
	}
	if err := m.st.DeleteMany(leasesBucket, keys); err != nil {
		return fmt.Errorf("releasing pool %s: %w", poolID, err)
	}
	return nil
}
