package driver

import (
	"encoding/json"
	"errors"
	"sort"
	"sync"

	"github.com/mynet/mynet/firewall"
)

// memStore is an in-memory Store that can be told to fail writes.
type memStore struct {
	mu      sync.Mutex
	data    map[string]map[string][]byte
	failPut error
	// fail, if set, is asked before every write ("Put endpoints", "Delete
	// networks"); an error is returned instead of writing.
	fail func(op string) error
}

func newMemStore() *memStore { return &memStore{data: map[string]map[string][]byte{}} }

func (s *memStore) Put(bucket, key string, v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut != nil {
		return s.failPut
	}
	if err := s.failing("Put " + bucket); err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if s.data[bucket] == nil {
		s.data[bucket] = map[string][]byte{}
	}
	s.data[bucket][key] = raw
	return nil
}

func (s *memStore) Delete(bucket, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("Delete " + bucket); err != nil {
		return err
	}
	delete(s.data[bucket], key)
	return nil
}

func (s *memStore) DeleteMany(bucket string, keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.data[bucket], k)
	}
	return nil
}

func (s *memStore) ForEach(bucket string, fn func(string, []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.data[bucket]))
	for k := range s.data[bucket] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k, s.data[bucket][k]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) failing(op string) error {
	if s.fail == nil {
		return nil
	}
	return s.fail(op)
}

func (s *memStore) len(bucket string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data[bucket])
}

// fakeFirewall records which bridges have rules and can be told to fail.
type fakeFirewall struct {
	mu         sync.Mutex
	nets       map[string]firewall.Network
	failEnsure error
	// fail, if set, is asked before every call with the method's name; an
	// error is returned instead of doing the call.
	fail   func(op string) error
	broken bool // Intact reports rules missing until the next ensure
	// Published ports (ports_fakes_test.go).
	failPorts   error
	mappings    map[string]firewall.Mapping
	portBridges map[string]firewall.PortBridge
	localnet    map[string]bool
}

func newFakeFirewall() *fakeFirewall { return &fakeFirewall{nets: map[string]firewall.Network{}} }

func (f *fakeFirewall) EnsureNetwork(n firewall.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failEnsure != nil {
		return f.failEnsure
	}
	if err := f.failing("EnsureNetwork"); err != nil {
		return err
	}
	f.broken = false
	f.nets[n.Bridge] = n
	return nil
}

func (f *fakeFirewall) RemoveNetwork(n firewall.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("RemoveNetwork"); err != nil {
		return err
	}
	delete(f.nets, n.Bridge)
	return nil
}

func (f *fakeFirewall) EnableForwarding() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failing("EnableForwarding")
}

func (f *fakeFirewall) RemoveStale(func(string) bool) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, f.failing("RemoveStale")
}

func (f *fakeFirewall) Owners() (map[string][]string, error) { return nil, nil }

func (f *fakeFirewall) Intact() (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("Intact"); err != nil {
		return false, "", err
	}
	return !f.broken, "fake: broken", nil
}

// failing asks f.fail about op. Caller holds f.mu.
func (f *fakeFirewall) failing(op string) error {
	if f.fail == nil {
		return nil
	}
	return f.fail(op)
}

var errInjected = errors.New("injected failure")
