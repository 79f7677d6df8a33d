//go:build linux

package firewall

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// hit is one connection a port listener accepted: on which port, from
// which address.
type hit struct {
	port uint16
	peer netip.Addr
}

// listenPorts accepts TCP connections on every port of ports at ip in ns
// and reports each.
func (l *lab) listenPorts(ns netns.NsHandle, ip string, ports []uint16) <-chan hit {
	l.t.Helper()
	hits := make(chan hit, 16)
	l.in(ns, func() {
		for _, p := range ports {
			addr := net.JoinHostPort(ip, fmt.Sprint(p))
			ln, err := net.Listen(family("tcp", addr), addr)
			if err != nil {
				l.t.Fatalf("listen %s: %v", addr, err)
			}
			l.t.Cleanup(func() { _ = ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					local := c.LocalAddr().(*net.TCPAddr).AddrPort()
					hits <- hit{local.Port(), c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()}
					_ = c.Close()
				}
			}()
		}
	})
	return hits
}

// reaches checks that a connection from ns to addr lands on wantPort of
// the listener behind hits, seen from wantPeer.
func (l *lab) reaches(name string, ns netns.NsHandle, addr string, hits <-chan hit, wantPort uint16, wantPeer string) {
	l.t.Helper()
	if err := l.connect(ns, addr, allowedWait); err != nil {
		l.t.Errorf("%s: connect %s: %v, want connected", name, addr, err)
		return
	}
	select {
	case h := <-hits:
		if h.port != wantPort || h.peer.String() != wantPeer {
			l.t.Errorf("%s: landed on port %d from %s, want port %d from %s", name, h.port, h.peer, wantPort, wantPeer)
		}
	case <-time.After(time.Second):
		l.t.Errorf("%s: the container saw no connection", name)
	}
}

// misses checks that a connection from ns to addr does not reach the
// listener behind hits (it may be refused by the host or time out).
func (l *lab) misses(name string, ns netns.NsHandle, addr string, hits <-chan hit) {
	l.t.Helper()
	if err := l.connect(ns, addr, blockedWait); err == nil {
		l.t.Errorf("%s: connect %s succeeded, want refused or dropped", name, addr)
	}
	select {
	case h := <-hits:
		l.t.Errorf("%s: the container got a connection on port %d from %s", name, h.port, h.peer)
	default:
	}
}

// udpEcho answers every datagram to ip:port in ns with "echo:" + payload.
func (l *lab) udpEcho(ns netns.NsHandle, addr string) {
	l.t.Helper()
	var pc net.PacketConn
	l.in(ns, func() {
		var err error
		if pc, err = net.ListenPacket(family("udp", addr), addr); err != nil {
			l.t.Fatalf("listen udp %s: %v", addr, err)
		}
	})
	l.t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
}

// udpAsk sends msg from ns to addr and returns the answer, or "" after a
// second of silence.
func (l *lab) udpAsk(ns netns.NsHandle, addr, msg string) string {
	l.t.Helper()
	var answer string
	l.in(ns, func() {
		c, err := net.Dial(family("udp", addr), addr)
		if err != nil {
			l.t.Fatalf("dial udp %s: %v", addr, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			return
		}
		buf := make([]byte, 512)
		if n, err := c.Read(buf); err == nil {
			answer = string(buf[:n])
		}
	})
	return answer
}

// udpSink reports every datagram that reaches addr in ns.
func (l *lab) udpSink(ns netns.NsHandle, addr string) <-chan string {
	l.t.Helper()
	var pc net.PacketConn
	l.in(ns, func() {
		var err error
		if pc, err = net.ListenPacket(family("udp", addr), addr); err != nil {
			l.t.Fatalf("listen udp %s: %v", addr, err)
		}
	})
	l.t.Cleanup(func() { _ = pc.Close() })
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 512)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return got
}

// udpSend sends one datagram from ns to addr.
func (l *lab) udpSend(ns netns.NsHandle, addr, msg string) {
	l.t.Helper()
	l.in(ns, func() {
		c, err := net.Dial(family("udp", addr), addr)
		if err != nil {
			l.t.Fatalf("dial udp %s: %v", addr, err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(msg)); err != nil {
			l.t.Fatalf("send to %s: %v", addr, err)
		}
	})
}

// received reports whether msg arrives on got within wait.
func received(got <-chan string, msg string, wait time.Duration) bool {
	deadline := time.After(wait)
	for {
		select {
		case m := <-got:
			if m == msg {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// sysctlIn writes a sysctl in ns (/proc/sys/net shows the namespace of
// the thread that opens it).
func (l *lab) sysctlIn(ns netns.NsHandle, path, value string) {
	l.t.Helper()
	l.in(ns, func() {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			l.t.Fatalf("write %s: %v", path, err)
		}
	})
}

// run runs a command in ns and fails the test on error.
func (l *lab) run(ns netns.NsHandle, argv ...string) {
	l.t.Helper()
	l.in(ns, func() {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			l.t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	})
}

func portRange(first, last uint16) []uint16 {
	var ps []uint16
	for p := first; ; p++ {
		ps = append(ps, p)
		if p == last {
			return ps
		}
	}
}

// TestKernelPortsTraffic publishes container ports and connects to them
// through real namespaces: from the outside (PREROUTING, client address
// kept), from the host itself on a host address and on 127.0.0.1 (OUTPUT,
// route_localnet, masquerade), from a neighbour and from the container
// itself through a host address (masquerade, hairpin), from another
// network, over a 100-port shifted range, and over UDP. Unpublished ports
// and the container's own address stay closed, and route_localnet does not
// open the host's loopback to containers.
func TestKernelPortsTraffic(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, h *netlink.Handle) {
		l := newLab(t, h)
		host := l.host
		brA := l.bridge("mn-a", "10.1.0.1/24")
		brB := l.bridge("mn-b", "10.2.0.1/24")
		c1 := l.child("va1", brA, "", "10.1.0.2/24", "10.1.0.1")
		c2 := l.child("va2", brA, "", "10.1.0.3/24", "10.1.0.1")
		b1 := l.child("vb1", brB, "", "10.2.0.2/24", "10.2.0.1")
		ext := l.child("vext", nil, "192.0.2.1/24", "192.0.2.2/24", "192.0.2.1")

		ipt, err := newIPv4(testLog(), cmd)
		if err != nil {
			t.Fatalf("newIPv4: %v", err)
		}
		if err := ipt.EnableForwarding(); err != nil {
			t.Fatalf("EnableForwarding: %v", err)
		}
		if out, err := exec.Command(cmd, "-P", "FORWARD", "DROP").CombinedOutput(); err != nil {
			t.Fatalf("policy DROP: %v: %s", err, out)
		}
		for _, n := range []Network{
			{Bridge: "mn-a", Subnet: netip.MustParsePrefix("10.1.0.0/24"), Masquerade: true, ICC: true},
			{Bridge: "mn-b", Subnet: netip.MustParsePrefix("10.2.0.0/24"), Masquerade: true, ICC: true},
		} {
			if err := ipt.EnsureNetwork(n); err != nil {
				t.Fatalf("EnsureNetwork(%s): %v", n.Bridge, err)
			}
		}

		hostLoop := l.udpSink(host, "127.0.0.1:7777")
		// c2 sends to 127.0.0.1 through its gateway, as a forged packet
		// would: no local route for loopback, route_localnet on its eth0.
		// One datagram is enough to harm a loopback-only UDP service.
		l.run(c2, "ip", "route", "del", "local", "127.0.0.1", "table", "local")
		l.run(c2, "ip", "route", "del", "local", "127.0.0.0/8", "table", "local")
		l.sysctlIn(c2, "/proc/sys/net/ipv4/conf/eth0/route_localnet", "1")
		// What the driver does for a bridge with published ports.
		if err := ipt.SetRouteLocalnet("mn-a", true); err != nil {
			t.Fatal(err)
		}
		va1, err := h.LinkByName("va1")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetHairpin(va1, true); err != nil {
			t.Fatalf("hairpin on va1: %v", err)
		}
		l.udpSend(c2, "127.0.0.1:7777", "forged-1")
		if !received(hostLoop, "forged-1", allowedWait) {
			t.Fatal("control: with route_localnet alone a container's datagram should reach the host's 127.0.0.1, and did not")
		}

		c := netip.MustParseAddr("10.1.0.2")
		mappings := []Mapping{
			{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.IPv4Unspecified(), HostPort: 8080, Container: c, Port: 80, PortEnd: 80},
			{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.MustParseAddr("192.0.2.1"), HostPort: 9000, Container: c, Port: 8000, PortEnd: 8099},
			{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.IPv4Unspecified(), HostPort: 20000, Container: c, Port: 20000, PortEnd: 20009},
			{Bridge: "mn-a", Proto: ProtoUDP, HostIP: netip.IPv4Unspecified(), HostPort: 5353, Container: c, Port: 53, PortEnd: 53},
		}
		if err := ipt.EnsurePorts(PortBridge{Bridge: "mn-a", Subnet: netip.MustParsePrefix("10.1.0.0/24")}, mappings); err != nil {
			t.Fatalf("EnsurePorts: %v", err)
		}
		ports := append(append([]uint16{80, 81}, portRange(8000, 8099)...), portRange(20000, 20009)...)
		hits := l.listenPorts(c1, "10.1.0.2", ports)
		l.udpEcho(c1, "10.1.0.2:53")

		l.reaches("outside -> host:8080", ext, "192.0.2.1:8080", hits, 80, "192.0.2.2")
		for i := range uint16(100) {
			l.reaches(fmt.Sprintf("outside -> host:%d (shifted range)", 9000+i), ext, fmt.Sprintf("192.0.2.1:%d", 9000+i), hits, 8000+i, "192.0.2.2")
		}
		for _, p := range portRange(20000, 20009) {
			l.reaches(fmt.Sprintf("outside -> host:%d (kept range)", p), ext, fmt.Sprintf("192.0.2.1:%d", p), hits, p, "192.0.2.2")
		}
		l.reaches("host -> 127.0.0.1:8080", host, "127.0.0.1:8080", hits, 80, "10.1.0.1")
		l.reaches("host -> own address:8080", host, "192.0.2.1:8080", hits, 80, "192.0.2.1")
		// The other network's own masquerade (-s its subnet ! -o its
		// bridge) rewrites the source, as Docker's bridge networks do.
		l.reaches("other network -> its gateway:8080", b1, "10.2.0.1:8080", hits, 80, "10.1.0.1")
		if got := l.udpAsk(ext, "192.0.2.1:5353", "ping"); got != "echo:ping" {
			t.Errorf("udp outside -> host:5353: answer %q, want %q", got, "echo:ping")
		}

		l.misses("host -> 127.0.0.1:9000 (published on 192.0.2.1 only)", host, "127.0.0.1:9000", hits)
		l.misses("outside -> host:8081 (not published)", ext, "192.0.2.1:8081", hits)
		l.misses("outside -> container:80 (routed, not DNATed)", ext, "10.1.0.2:80", hits)
		l.misses("outside -> container:81 (routed, not published)", ext, "10.1.0.2:81", hits)
		l.misses("other network -> container:80 (routed)", b1, "10.1.0.2:80", hits)
		l.udpSend(c2, "127.0.0.1:7777", "forged-2")
		if received(hostLoop, "forged-2", blockedWait) {
			t.Error("a container reached the host's 127.0.0.1 through its bridge despite the MYNET-INPUT guard")
		}

		// Hairpin and neighbours, with bridged traffic seen by iptables
		// (br_netfilter, as Docker sets it) and without.
		for _, brnf := range []string{"1", "0"} {
			if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
				t.Log("no br_netfilter: hairpin checked without it only")
			} else {
				l.sysctlIn(host, "/proc/sys/net/bridge/bridge-nf-call-iptables", brnf)
			}
			l.reaches("neighbour -> gateway:8080, br_netfilter="+brnf, c2, "10.1.0.1:8080", hits, 80, "10.1.0.1")
			l.reaches("container -> itself via gateway:8080 (hairpin), br_netfilter="+brnf, c1, "10.1.0.1:8080", hits, 80, "10.1.0.1")
			l.reaches("container -> itself via host address (hairpin), br_netfilter="+brnf, c1, "192.0.2.1:9042", hits, 8042, "10.1.0.1")
		}
	})
}
