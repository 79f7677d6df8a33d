package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mynet/mynet/driver"
	"github.com/mynet/mynet/internal/fake"
	"github.com/mynet/mynet/ipam"
	"github.com/mynet/mynet/plugin"
	"github.com/mynet/mynet/store"
)

// server is a mynet plugin on a unix socket in a temp dir, with a real
// IPAM and state file and a fake kernel.
type server struct {
	client *http.Client
	stop   func()
}

func startServer(b testing.TB) *server {
	b.Helper()
	dir := b.TempDir()
	log := logrus.New()
	log.SetOutput(io.Discard)
	entry := logrus.NewEntry(log)
	st, err := store.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	am, err := ipam.New(st, ipam.Config{}, entry)
	if err != nil {
		b.Fatal(err)
	}
	k := fake.NewKernel()
	d, err := driver.New(k, fake.Firewall{}, nil, st, entry, driver.WithPortReserver(k))
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(dir, "mynet.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- plugin.Serve(ctx, sock, plugin.NewHandler(d, am, entry)) }()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 64,
	}}
	for i := 0; ; i++ {
		if _, err := client.Post("http://mynet/Plugin.Activate", "", nil); err == nil {
			break
		} else if i > 100 {
			b.Fatalf("plugin did not start: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &server{client: client, stop: func() { cancel(); <-done; _ = st.Close() }}
}

func (s *server) call(b testing.TB, path string, req, resp any) {
	raw, _ := json.Marshal(req)
	r, err := s.client.Post("http://mynet/"+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		b.Fatalf("%s: %d %s", path, r.StatusCode, body)
	}
	if resp != nil {
		if err := json.Unmarshal(body, resp); err != nil {
			b.Fatal(err)
		}
	}
}

type m = map[string]any

// createNetwork goes through the engine's sequence for
// `docker network create -d mynet --ipam-driver mynet --subnet S`.
func (s *server) createNetwork(b testing.TB, id, subnet string) (poolID string) {
	var pool struct{ PoolID, Pool string }
	s.call(b, "IpamDriver.RequestPool", m{"AddressSpace": "mynet-local", "Pool": subnet}, &pool)
	var gw struct{ Address string }
	s.call(b, "IpamDriver.RequestAddress", m{"PoolID": pool.PoolID, "Options": m{"RequestAddressType": "com.docker.network.gateway"}}, &gw)
	s.call(b, "NetworkDriver.CreateNetwork", m{"NetworkID": id, "Options": m{"com.docker.network.generic": m{}},
		"IPv4Data": []m{{"AddressSpace": "mynet-local", "Pool": pool.Pool, "Gateway": gw.Address}}}, nil)
	return pool.PoolID
}

// container runs the engine's calls for one container's start and stop.
func (s *server) container(b testing.TB, netID, poolID, epID string) {
	var addr struct{ Address string }
	s.call(b, "IpamDriver.RequestAddress", m{"PoolID": poolID}, &addr)
	s.call(b, "NetworkDriver.CreateEndpoint", m{"NetworkID": netID, "EndpointID": epID, "Interface": m{"Address": addr.Address}}, nil)
	s.call(b, "NetworkDriver.Join", m{"NetworkID": netID, "EndpointID": epID, "SandboxKey": "/var/run/docker/netns/x"}, nil)
	s.call(b, "NetworkDriver.Leave", m{"NetworkID": netID, "EndpointID": epID}, nil)
	s.call(b, "NetworkDriver.DeleteEndpoint", m{"NetworkID": netID, "EndpointID": epID}, nil)
	ip, _, _ := net.ParseCIDR(addr.Address)
	s.call(b, "IpamDriver.ReleaseAddress", m{"PoolID": poolID, "Address": ip.String()}, nil)
}

// BenchmarkEndpointRoundTrip is one container's start and stop as the
// engine drives it over the plugin socket: RequestAddress, CreateEndpoint,
// Join, Leave, DeleteEndpoint, ReleaseAddress — with the real IPAM and
// state file (fsynced writes) and a fake kernel.
func BenchmarkEndpointRoundTrip(b *testing.B) {
	s := startServer(b)
	defer s.stop()
	pool := s.createNetwork(b, "net1", "10.60.0.0/16")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.container(b, "net1", pool, fmt.Sprintf("ep%058d", i))
	}
}

// BenchmarkEndpointRoundTripParallel is the same with concurrent
// containers, as `docker run` of many containers at once produces.
func BenchmarkEndpointRoundTripParallel(b *testing.B) {
	s := startServer(b)
	defer s.stop()
	pool := s.createNetwork(b, "net1", "10.61.0.0/16")
	var mu sync.Mutex
	n := 0
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			id := fmt.Sprintf("ep%058d", n)
			mu.Unlock()
			s.container(b, "net1", pool, id)
		}
	})
}

// TestRoundTrip keeps the benchmark's sequence honest in plain `go test`.
func TestRoundTrip(t *testing.T) {
	s := startServer(t)
	defer s.stop()
	pool := s.createNetwork(t, "net1", "10.62.0.0/24")
	for i := 0; i < 3; i++ {
		s.container(t, "net1", pool, fmt.Sprintf("ep%d", i))
	}
}

// BenchmarkEndpointRoundTripHeld is the round trip with held endpoints
// already on the network (created and joined, as running containers'),
// to tell whether the plugin's own work per container grows with the
// network's size; the scaling scenario of the suite measures the same
// through the engine and the real kernel.
func BenchmarkEndpointRoundTripHeld(b *testing.B) {
	for _, held := range []int{0, 200, 1000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			s := startServer(b)
			defer s.stop()
			pool := s.createNetwork(b, "net1", "10.63.0.0/16")
			for i := range held {
				s.hold(b, "net1", pool, fmt.Sprintf("held%058d", i))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.container(b, "net1", pool, fmt.Sprintf("ep%058d", i))
			}
		})
	}
}

// hold starts a container's endpoint and leaves it in place.
func (s *server) hold(b testing.TB, netID, poolID, epID string) {
	var addr struct{ Address string }
	s.call(b, "IpamDriver.RequestAddress", m{"PoolID": poolID}, &addr)
	s.call(b, "NetworkDriver.CreateEndpoint", m{"NetworkID": netID, "EndpointID": epID, "Interface": m{"Address": addr.Address}}, nil)
	s.call(b, "NetworkDriver.Join", m{"NetworkID": netID, "EndpointID": epID, "SandboxKey": "/var/run/docker/netns/x"}, nil)
}
