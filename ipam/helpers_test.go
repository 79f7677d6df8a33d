package ipam

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	api "github.com/docker/go-plugins-helpers/ipam"
	"github.com/sirupsen/logrus"
)

var errDisk = errors.New("disk on fire")

// memStore is an in-memory Store that encodes like *store.Store (JSON) and
// can be told to fail writes, the way a full disk would.
type memStore struct {
	mu   sync.Mutex
	data map[string]map[string][]byte
	// failPut and failDelete, when set, decide per key whether a write fails.
	failPut    func(bucket, key string) bool
	failDelete func(bucket, key string) bool
	// beforePut, when set, runs at the start of every Put, outside mu: a
	// test can hold a write in flight with it.
	beforePut func(bucket, key string)
}

func newMemStore() *memStore { return &memStore{data: map[string]map[string][]byte{}} }

func (s *memStore) Put(bucket, key string, v any) error {
	if s.beforePut != nil {
		s.beforePut(bucket, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut != nil && s.failPut(bucket, key) {
		return fmt.Errorf("write %s/%s: %w", bucket, key, errDisk)
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
	if s.failDelete != nil && s.failDelete(bucket, key) {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, errDisk)
	}
	delete(s.data[bucket], key)
	return nil
}

// DeleteMany fails as a whole, deleting nothing, when any key's delete
// would fail, like the single transaction of *store.Store.
func (s *memStore) DeleteMany(bucket string, keys []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if s.failDelete != nil && s.failDelete(bucket, k) {
			return fmt.Errorf("delete %d keys from %s: %w", len(keys), bucket, errDisk)
		}
	}
	for _, k := range keys {
		delete(s.data[bucket], k)
	}
	return nil
}

func (s *memStore) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	s.mu.Lock()
	b := s.data[bucket]
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	raws := make([][]byte, len(keys))
	for i, k := range keys {
		raws[i] = b[k]
	}
	s.mu.Unlock()
	for i, k := range keys {
		if err := fn(k, raws[i]); err != nil {
			return fmt.Errorf("%s/%s: %w", bucket, k, err)
		}
	}
	return nil
}

func (s *memStore) keys(bucket string) []string {
	var keys []string
	_ = s.ForEach(bucket, func(k string, _ []byte) error { keys = append(keys, k); return nil })
	return keys
}

// nullStore persists nothing: benchmarks measure the allocator, not JSON.
type nullStore struct{}

func (nullStore) Put(string, string, any) error                            { return nil }
func (nullStore) Delete(string, string) error                              { return nil }
func (nullStore) DeleteMany(string, []string) error                        { return nil }
func (nullStore) ForEach(string, func(key string, raw []byte) error) error { return nil }

func testLogger() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.DebugLevel) // run the debug log paths too
	return logrus.NewEntry(l)
}

func newTestIPAM(t testing.TB, st Store, cfg Config) *IPAM {
	t.Helper()
	m, err := New(st, cfg, testLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func requestPool(t testing.TB, m *IPAM, pool, sub string, v6 bool) *api.RequestPoolResponse {
	t.Helper()
	res, err := m.RequestPool(&api.RequestPoolRequest{AddressSpace: LocalAddressSpace, Pool: pool, SubPool: sub, V6: v6})
	if err != nil {
		t.Fatalf("RequestPool(%q, %q): %v", pool, sub, err)
	}
	return res
}

var gatewayOpts = map[string]string{requestAddressType: gatewayAddressType}
var endpointOpts = map[string]string{"com.docker.network.endpoint.name": "c1"}

func requestAddress(t testing.TB, m *IPAM, poolID, addr string, opts map[string]string) string {
	t.Helper()
	res, err := m.RequestAddress(&api.RequestAddressRequest{PoolID: poolID, Address: addr, Options: opts})
	if err != nil {
		t.Fatalf("RequestAddress(%q, %q): %v", poolID, addr, err)
	}
	return res.Address
}

func releaseAddress(t testing.TB, m *IPAM, poolID, addr string) {
	t.Helper()
	if err := m.ReleaseAddress(&api.ReleaseAddressRequest{PoolID: poolID, Address: addr}); err != nil {
		t.Fatalf("ReleaseAddress(%q, %q): %v", poolID, addr, err)
	}
}

// checkErr asserts err matches kind (nil: no error) and contains every
// fragment of the user-facing message.
func checkErr(t testing.TB, err, kind error, fragments ...string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %v is not %v", err, kind)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// staticHost is a HostPrefixes that reports fixed routes.
func staticHost(ss ...string) func(bool) ([]netip.Prefix, error) {
	ps := prefixes(ss...)
	return func(bool) ([]netip.Prefix, error) { return ps, nil }
}
