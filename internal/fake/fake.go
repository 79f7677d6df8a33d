// Package fake holds stand-ins for the kernel side of the driver, for
// benchmarks, fuzz tests and the driver's rollback tests, which must run
// without root.
package fake

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"

	"github.com/mynet/mynet/firewall"
)

// Firewall accepts every rule change, unless Fail, if set, answers an
// error for the method's name ("EnsureNetwork", ...), which is then
// returned instead.
type Firewall struct {
	Fail func(op string) error
}

func (f Firewall) fail(op string) error {
	if f.Fail == nil {
		return nil
	}
	return f.Fail(op)
}

func (f Firewall) EnsureNetwork(firewall.Network) error { return f.fail("EnsureNetwork") }
func (f Firewall) RemoveNetwork(firewall.Network) error { return f.fail("RemoveNetwork") }
func (f Firewall) EnableForwarding() error              { return f.fail("EnableForwarding") }

// RemoveStale finds nothing stale.
func (f Firewall) RemoveStale(func(string) bool) ([]string, error) { return nil, f.fail("RemoveStale") }

// Owners finds no rules.
func (f Firewall) Owners() (map[string][]string, error) { return nil, f.fail("Owners") }

// Intact reports the rules in place.
func (f Firewall) Intact() (bool, string, error) {
	if err := f.fail("Intact"); err != nil {
		return false, "", err
	}
	return true, "", nil
}

func (f Firewall) EnsurePorts(firewall.PortBridge, []firewall.Mapping) error {
	return f.fail("EnsurePorts")
}
func (f Firewall) RemovePorts([]firewall.Mapping) error        { return f.fail("RemovePorts") }
func (f Firewall) RemoveBridgePorts(firewall.PortBridge) error { return f.fail("RemoveBridgePorts") }
func (f Firewall) SetRouteLocalnet(string, bool) error         { return f.fail("SetRouteLocalnet") }

// Store is an in-memory store of JSON records.
type Store struct {
	mu   sync.Mutex
	data map[string]map[string][]byte
}

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{data: map[string]map[string][]byte{}} }

// Put stores v as JSON.
func (s *Store) Put(bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data[bucket] == nil {
		s.data[bucket] = map[string][]byte{}
	}
	s.data[bucket][key] = raw
	return nil
}

// Delete removes a key; a missing one is fine.
func (s *Store) Delete(bucket, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data[bucket], key)
	return nil
}

// DeleteMany removes keys; missing ones are fine.
func (s *Store) DeleteMany(bucket string, keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.data[bucket], k)
	}
	return nil
}

// ForEach calls fn for every record of bucket in key order.
func (s *Store) ForEach(bucket string, fn func(string, []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(s.data[bucket])) {
		if err := fn(k, s.data[bucket][k]); err != nil {
			return err
		}
	}
	return nil
}
