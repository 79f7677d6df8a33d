//go:build linux

package ports

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
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
		h, err := sh.Reserve(firewall.ProtoTCP, netip.IPv4Unspecified(), 18080)
		if err != nil {
			t.Fatal(err)
		}
		var inUse *InUseError
		for _, ip := range []netip.Addr{netip.IPv4Unspecified(), lo} {
			if _, err := sh.Reserve(firewall.ProtoTCP, ip, 18080); !errors.As(err, &inUse) {
				t.Errorf("second hold of 18080/tcp on %s: %v, want in use", ip, err)
			}
		}
		if err := bindTCP("127.0.0.1:18080"); err == nil {
			t.Error("a server with SO_REUSEADDR could bind a held port")
		}
		if _, err := sh.Reserve(firewall.ProtoUDP, netip.IPv4Unspecified(), 18080); err != nil {
			t.Errorf("udp on a port held for tcp: %v", err)
		}
		if _, err := sh.Reserve(firewall.ProtoTCP, netip.MustParseAddr("192.0.2.77"), 18081); err == nil || !strings.Contains(err.Error(), "is not an address of this host") {
			t.Errorf("hold on a foreign address: %v", err)
		}
		if _, err := sh.Reserve(firewall.ProtoSCTP, netip.IPv4Unspecified(), 18082); err != nil {
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
				h, err := sh.Reserve(proto, netip.IPv4Unspecified(), uint16(p))
				if err != nil {
					t.Fatal(err)
				}
				holds = append(holds, h)
			}
			took := time.Since(start)
			fds, slab := openFDs(t)-fds0, slabKiB(t)-slab0
			start = time.Now()
			ReleaseAll(holds)
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

// 0.0.0.0:P and [::]:P are held independently (IPV6_V6ONLY), so a
// dual-stack binding can take both; and [::]:P still conflicts with
// [::1]:P.
func TestReserveIPv6Independent(t *testing.T) {
	nstest.Run(t, func(*netlink.Handle) {
		var sh SocketReserver
		for _, proto := range []string{firewall.ProtoTCP, firewall.ProtoUDP} {
			h4, err := sh.Reserve(proto, all4, 18000)
			if err != nil {
				t.Fatal(err)
			}
			h6, err := sh.Reserve(proto, all6, 18000)
			if err != nil {
				t.Fatalf("%s [::]:18000 with 0.0.0.0:18000 held: %v", proto, err)
			}
			var inUse *InUseError
			if _, err := sh.Reserve(proto, lo6, 18000); !errors.As(err, &inUse) {
				t.Errorf("%s [::1]:18000 with [::]:18000 held: %v, want in use", proto, err)
			}
			_ = h4.Close()
			_ = h6.Close()
		}
	})
}

// bindTCP binds (and releases) a TCP socket on addr, with SO_REUSEADDR as
// most servers set it.
func bindTCP(addr string) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		_ = c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp4", addr)
	if err != nil {
		return err
	}
	return l.Close()
}
