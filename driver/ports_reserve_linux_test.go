//go:build linux

package driver

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nstest"
)

// SocketReserver in a namespace: a held port refuses every other bind (with
// SO_REUSEADDR or SO_REUSEPORT, on the wildcard or a specific address),
// release frees it, SCTP without kernel support needs nothing. With -v it
// logs what holding 1000 ports costs: time, descriptors, kernel slab.
func TestSocketHolder(t *testing.T) {
	nstest.Run(t, func(*netlink.Handle) {
		var sh SocketReserver
		lo := netip.MustParseAddr("127.0.0.1")
		h, err := sh.ReservePort(firewall.ProtoTCP, netip.IPv4Unspecified(), 18080)
		if err != nil {
			t.Fatal(err)
		}
		var inUse *PortInUseError
		for _, ip := range []netip.Addr{netip.IPv4Unspecified(), lo} {
			if _, err := sh.ReservePort(firewall.ProtoTCP, ip, 18080); !errors.As(err, &inUse) {
				t.Errorf("second hold of 18080/tcp on %s: %v, want in use", ip, err)
			}
		}
		if err := bindTCP("127.0.0.1:18080"); err == nil {
			t.Error("a server with SO_REUSEADDR could bind a held port")
		}
		if _, err := sh.ReservePort(firewall.ProtoUDP, netip.IPv4Unspecified(), 18080); err != nil {
			t.Errorf("udp on a port held for tcp: %v", err)
		}
		if _, err := sh.ReservePort(firewall.ProtoTCP, netip.MustParseAddr("192.0.2.77"), 18081); err == nil || !strings.Contains(err.Error(), "is not an address of this host") {
			t.Errorf("hold on a foreign address: %v", err)
		}
		if _, err := sh.ReservePort(firewall.ProtoSCTP, netip.IPv4Unspecified(), 18082); err != nil {
			t.Errorf("sctp: %v", err)
		}
		_ = h.Close()
		if err := bindTCP("0.0.0.0:18080"); err != nil {
			t.Errorf("released port still taken: %v", err)
		}

		for _, proto := range []string{firewall.ProtoTCP, firewall.ProtoUDP} {
			fds0, slab0 := openFDs(t), slabKiB(t)
			start := time.Now()
			holds := make([]io.Closer, 0, 1000)
			for p := 20000; p < 21000; p++ {
				h, err := sh.ReservePort(proto, netip.IPv4Unspecified(), uint16(p))
				if err != nil {
					t.Fatal(err)
				}
				holds = append(holds, h)
			}
			took := time.Since(start)
			fds, slab := openFDs(t)-fds0, slabKiB(t)-slab0
			start = time.Now()
			releaseAll(holds)
			t.Logf("1000 %s ports: held in %v, released in %v, %d descriptors, kernel slab +%d KiB (machine-wide, approximate)",
				proto, took.Round(time.Microsecond), time.Since(start).Round(time.Microsecond), fds, slab)
		}
	})
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func slabKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Slab:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
