//go:build linux

package driver

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nstest"
)

// TestSoak runs container lifecycles with published ports through the
// driver with the real kernel and firewall, as the engine drives them
// (CreateEndpoint, Join, ProgramExternalConnectivity, Revoke, Leave,
// DeleteEndpoint), and checks that goroutines, open files and heap stay
// flat and that nothing is left: no link but the bridge, no port rule, no
// record. The network is dual stack, so every cycle publishes in both
// families and starts and stops the in-process forwarder of a [::1] port
// and of the ::1 clients of the :: ports. MYNET_SOAK_CYCLES sets the
// count (default 50; `make soak` runs 1000).
func TestSoak(t *testing.T) {
	cycles := 50
	if v, err := strconv.Atoi(os.Getenv("MYNET_SOAK_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	nstest.Run(t, func(h *netlink.Handle) {
		fw, err := firewall.New(quietLog())
		if err != nil {
			t.Skipf("no iptables: %v", err)
		}
		fw6, err := firewall.NewIPv6(quietLog())
		if err != nil {
			t.Skipf("no ip6tables: %v", err)
		}
		st := newMemStore()
		d, err := New(h, fw, fw6, st, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		req := createReq(nil)
		req.IPv6Data = []*network.IPAMData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}}
		if err := d.CreateNetwork(req); err != nil {
			t.Fatal(err)
		}
		portmap := map[string]any{"com.docker.network.portmap": []any{
			map[string]any{"Proto": 6.0, "Port": 80.0, "HostPort": 0.0, "HostPortEnd": 0.0},
			map[string]any{"Proto": 17.0, "Port": 53.0, "HostPort": 20053.0, "HostPortEnd": 20053.0},
			map[string]any{"Proto": 6.0, "Port": 81.0, "HostIP": "::1", "HostPort": 20081.0, "HostPortEnd": 20081.0},
		}}
		cycle := func(i int) {
			id := fmt.Sprintf("%064x", i+1)
			addr := fmt.Sprintf("10.50.0.%d/24", 2+i%250)
			addr6 := fmt.Sprintf("fd00:50::%x/64", 2+i%250)
			must(t, "CreateEndpoint", func() error {
				_, err := d.CreateEndpoint(&network.CreateEndpointRequest{NetworkID: testNetID, EndpointID: id,
					Interface: &network.EndpointInterface{Address: addr, AddressIPv6: addr6}, Options: portmap})
				return err
			})
			must(t, "Join", func() error {
				_, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: id, Options: portmap})
				return err
			})
			must(t, "Program", func() error {
				return d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: id, Options: portmap})
			})
			must(t, "connect to [::1]:20081, the forwarder's listener", func() error {
				c, err := net.DialTimeout("tcp6", "[::1]:20081", time.Second)
				if err == nil {
					err = c.Close()
				}
				return err
			})
			must(t, "Revoke", func() error {
				return d.RevokeExternalConnectivity(&network.RevokeExternalConnectivityRequest{NetworkID: testNetID, EndpointID: id})
			})
			must(t, "Leave", func() error { return d.Leave(&network.LeaveRequest{NetworkID: testNetID, EndpointID: id}) })
			must(t, "DeleteEndpoint", func() error {
				return d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: id})
			})
		}
		// Warm up: first-use allocations (chains, caches) are not leaks.
		for i := 0; i < 10; i++ {
			cycle(i)
		}
		g0, f0, h0 := usage(t)
		start := time.Now()
		for i := 10; i < 10+cycles; i++ {
			cycle(i)
		}
		took := time.Since(start)
		g1, f1, h1 := usage(t)
		t.Logf("%d cycles in %v (%v each); goroutines %d -> %d, open files %d -> %d, heap %d KiB -> %d KiB",
			cycles, took.Round(time.Millisecond), (took / time.Duration(cycles)).Round(time.Microsecond), g0, g1, f0, f1, h0>>10, h1>>10)
		if g1 > g0+2 {
			t.Errorf("goroutines grew from %d to %d", g0, g1)
		}
		if f1 > f0+2 {
			t.Errorf("open files grew from %d to %d", f0, f1)
		}
		if h1 > h0+4<<20 {
			t.Errorf("heap grew from %d to %d bytes", h0, h1)
		}
		if l := links(t, h); len(l) != 1 {
			t.Errorf("links left: %v", l)
		}
		if n := st.len(endpointsBucket); n != 0 {
			t.Errorf("%d endpoint records left", n)
		}
		if err := d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []*firewall.IPTables{fw, fw6} {
			if err := f.Cleanup(); err != nil {
				t.Errorf("rules left after the last network: %v", err)
			}
		}
	})
}

func must(t *testing.T, what string, fn func() error) {
	t.Helper()
	if err := fn(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// usage returns goroutines, open files and live heap after a GC.
func usage(t *testing.T) (int, int, uint64) {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return runtime.NumGoroutine(), len(fds), ms.HeapAlloc
}
