//go:build linux

package firewall

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ip6tablesFor is the ip6tables binary of iptables binary cmd's backend.
func ip6tablesFor(t *testing.T, cmd string) string {
	t.Helper()
	bin := strings.Replace(cmd, "iptables", "ip6tables", 1)
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("%s not installed", bin)
	}
	return bin
}

var (
	kernelContainer6  = netip.MustParseAddr("fd00:1::2")
	kernelPortBridge6 = PortBridge{Bridge: "mn-a", Subnet: netip.MustParsePrefix("fd00:1::/64")}
	kernelMappings6   = []Mapping{
		{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, Container: kernelContainer6, Port: 80, PortEnd: 80},
		{Bridge: "mn-a", Proto: ProtoTCP, HostIP: netip.MustParseAddr("fd00:99::1"), HostPort: 9000, Container: kernelContainer6, Port: 8000, PortEnd: 8009},
		{Bridge: "mn-a", Proto: ProtoUDP, HostIP: netip.IPv6Unspecified(), HostPort: 5353, Container: kernelContainer6, Port: 53, PortEnd: 53},
		{Bridge: "mn-a", Proto: ProtoSCTP, HostIP: netip.IPv6Unspecified(), HostPort: 7000, Container: kernelContainer6, Port: 7000, PortEnd: 7099},
	}
)

// The IPv6 port rules as ip6tables-save prints them, on both backends.
const ports6Saved = `nat MYNET-DNAT -
  -p tcp -m tcp --dport 8080 -m comment --comment mynet:mn-a -j DNAT --to-destination [fd00:1::2]:80
  -d fd00:99::1/128 -p tcp -m tcp --dport 9000:9009 -m comment --comment mynet:mn-a -j DNAT --to-destination [fd00:1::2]:8000-8009/9000
  -p udp -m udp --dport 5353 -m comment --comment mynet:mn-a -j DNAT --to-destination [fd00:1::2]:53
  -p sctp -m sctp --dport 7000:7099 -m comment --comment mynet:mn-a -j DNAT --to-destination fd00:1::2
nat MYNET-POSTROUTING -
  -s fd00:1::/64 ! -o mn-a -m comment --comment mynet:mn-a -j MASQUERADE
  -s fd00:1::/64 -o mn-a -m conntrack --ctstate DNAT -m comment --comment mynet:mn-a -j MASQUERADE
nat OUTPUT ACCEPT
  ! -d ::1/128 -m addrtype --dst-type LOCAL -j MYNET-DNAT
nat POSTROUTING ACCEPT
  -j MYNET-POSTROUTING
nat PREROUTING ACCEPT
  -m addrtype --dst-type LOCAL -j MYNET-DNAT
`

// Publishing IPv6 ports in a namespace adds exactly the expected nat
// rules with ip6tables of each backend, twice is the same as once, and
// unpublishing, removing the network and Cleanup give back the baseline.
func TestKernelPortsEnsureRemoveIPv6(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		bin := ip6tablesFor(t, cmd)
		ipt, err := newFamily(testLog(), bin, false)
		if err != nil {
			t.Fatal(err)
		}
		baseline := saveTables(t, bin)
		n := Network{Bridge: "mn-a", Subnet: kernelPortBridge6.Subnet, Masquerade: true, ICC: true}
		if err := ipt.EnsureNetwork(n); err != nil {
			t.Fatalf("EnsureNetwork: %v", err)
		}
		for i := range 2 {
			if err := ipt.EnsurePorts(kernelPortBridge6, kernelMappings6); err != nil {
				t.Fatalf("EnsurePorts #%d: %v", i+1, err)
			}
			got := saveTables(t, bin)
			nat := got[strings.Index(got, "nat MYNET-DNAT"):]
			nat = nat[:strings.Index(nat, "mangle ")]
			if nat != ports6Saved {
				t.Fatalf("after EnsurePorts #%d, nat table:\n%s\nwant:\n%s", i+1, nat, ports6Saved)
			}
			if strings.Contains(got, "127.0.0.0/8") {
				t.Fatalf("IPv4 loopback rules in ip6tables:\n%s", got)
			}
		}
		if ok, why, err := ipt.Intact(); !ok || err != nil {
			t.Fatalf("Intact after EnsurePorts = %v %q %v", ok, why, err)
		}
		for i := range 2 {
			if err := ipt.RemovePorts(kernelMappings6); err != nil {
				t.Fatalf("RemovePorts #%d: %v", i+1, err)
			}
			if err := ipt.RemoveBridgePorts(kernelPortBridge6); err != nil {
				t.Fatalf("RemoveBridgePorts #%d: %v", i+1, err)
			}
		}
		if err := ipt.RemoveNetwork(n); err != nil {
			t.Fatalf("RemoveNetwork: %v", err)
		}
		if err := ipt.Cleanup(); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if got := saveTables(t, bin); got != baseline {
			t.Fatalf("after unpublishing and Cleanup:\n%s\nwant the baseline:\n%s", got, baseline)
		}
	})
}

// The heal check sees a flushed IPv6 MYNET-DNAT, and RemoveStale removes
// the IPv6 port rules of a bridge mynet no longer knows.
func TestKernelPortsHealStaleIPv6(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, _ *netlink.Handle) {
		bin := ip6tablesFor(t, cmd)
		ipt, err := newFamily(testLog(), bin, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := ipt.EnsurePorts(kernelPortBridge6, kernelMappings6[:1]); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-t", "nat", "-F", ChainDNAT).CombinedOutput(); err != nil {
			t.Fatalf("flush: %v: %s", err, out)
		}
		if ok, _, err := ipt.Intact(); ok || err != nil {
			t.Fatalf("Intact after a flush of MYNET-DNAT = %v, %v; want false", ok, err)
		}
		if err := ipt.EnsurePorts(kernelPortBridge6, kernelMappings6[:1]); err != nil {
			t.Fatal(err)
		}
		stale, err := ipt.RemoveStale(func(string) bool { return false })
		if err != nil || len(stale) != 1 || stale[0] != "mn-a" {
			t.Fatalf("RemoveStale = %v, %v; want [mn-a]", stale, err)
		}
		if got := saveTables(t, bin); strings.Contains(got, "mynet:mn-a") {
			t.Fatalf("rules of mn-a left after RemoveStale:\n%s", got)
		}
	})
}

// addrUp6 puts an IPv6 address on link without duplicate address
// detection (which would keep it unusable for a second or two) and brings
// the link up.
func (l *lab) addrUp6(h *netlink.Handle, link netlink.Link, cidr string) {
	l.t.Helper()
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		l.t.Fatal(err)
	}
	addr.Flags = unix.IFA_F_NODAD
	if err := h.AddrAdd(link, addr); err != nil {
		l.t.Fatalf("address %s on %s: %v", cidr, link.Attrs().Name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		l.t.Fatalf("up %s: %v", link.Attrs().Name, err)
	}
}

// child6 is child for IPv6: a namespace joined by a veth, its end
// addressed cidr with a default route via gw.
func (l *lab) child6(hostIf string, master *netlink.Bridge, hostCIDR, cidr, gw string) netns.NsHandle {
	l.t.Helper()
	ns, err := netns.New()
	if err != nil {
		l.t.Fatalf("new netns: %v", err)
	}
	l.t.Cleanup(func() { _ = ns.Close() })
	if err := netns.Set(l.host); err != nil {
		l.t.Fatalf("back to test netns: %v", err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostIf}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}
	if master != nil {
		veth.MasterIndex = master.Attrs().Index
	}
	if err := l.h.LinkAdd(veth); err != nil {
		l.t.Fatalf("veth %s: %v", hostIf, err)
	}
	if hostCIDR != "" {
		l.addrUp6(l.h, veth, hostCIDR)
	} else if err := l.h.LinkSetUp(veth); err != nil {
		l.t.Fatalf("up %s: %v", hostIf, err)
	}
	ch, err := netlink.NewHandleAt(ns)
	if err != nil {
		l.t.Fatalf("netlink handle in child: %v", err)
	}
	defer ch.Close()
	lo, err := ch.LinkByName("lo")
	if err == nil {
		err = ch.LinkSetUp(lo)
	}
	if err != nil {
		l.t.Fatalf("child lo: %v", err)
	}
	eth, err := ch.LinkByName("eth0")
	if err != nil {
		l.t.Fatalf("child eth0: %v", err)
	}
	l.addrUp6(ch, eth, cidr)
	if err := ch.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.ParseIP(gw)}); err != nil {
		l.t.Fatalf("child default route via %s: %v", gw, err)
	}
	return ns
}

// listen6 accepts TCP connections on every port of ports at [ip] in ns
// and reports each.
func (l *lab) listen6(ns netns.NsHandle, ip string, ports []uint16) <-chan hit {
	l.t.Helper()
	hits := make(chan hit, 16)
	l.in(ns, func() {
		for _, p := range ports {
			ln, err := net.Listen("tcp6", net.JoinHostPort(ip, fmt.Sprint(p)))
			if err != nil {
				l.t.Fatalf("listen [%s]:%d: %v", ip, p, err)
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

// reaches6 and misses6 are reaches and misses over IPv6.
func (l *lab) reaches6(name string, ns netns.NsHandle, addr string, hits <-chan hit, wantPort uint16, wantPeer string) {
	l.t.Helper()
	if err := l.connect6(ns, addr, allowedWait); err != nil {
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

func (l *lab) misses6(name string, ns netns.NsHandle, addr string, hits <-chan hit) {
	l.t.Helper()
	if err := l.connect6(ns, addr, blockedWait); err == nil {
		l.t.Errorf("%s: connect %s succeeded, want refused or dropped", name, addr)
	}
	select {
	case h := <-hits:
		l.t.Errorf("%s: the container got a connection on port %d from %s", name, h.port, h.peer)
	default:
	}
}

func (l *lab) connect6(ns netns.NsHandle, addr string, wait time.Duration) error {
	var err error
	l.in(ns, func() {
		var c net.Conn
		if c, err = net.DialTimeout("tcp6", addr, wait); err == nil {
			_ = c.Close()
		}
	})
	return err
}

// udpAsk6 sends msg from ns to addr over IPv6 and returns the answer, or
// "" after a second of silence; udpEcho6 answers on addr in ns.
func (l *lab) udpAsk6(ns netns.NsHandle, addr, msg string) string {
	l.t.Helper()
	var answer string
	l.in(ns, func() {
		c, err := net.Dial("udp6", addr)
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

func (l *lab) udpEcho6(ns netns.NsHandle, addr string) {
	l.t.Helper()
	var pc net.PacketConn
	l.in(ns, func() {
		var err error
		if pc, err = net.ListenPacket("udp6", addr); err != nil {
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

// TestKernelPortsTrafficIPv6 publishes container ports over IPv6 and
// connects through real namespaces: from the outside on all addresses and
// on one host address (client address kept), over a shifted range and
// UDP, from the host itself (OUTPUT), from a neighbour and from the
// container itself through the gateway (hairpin masquerade). ::1 is left
// alone (the driver's forwarder serves it), the container's own address
// stays closed from outside, and unpublishing closes the ports.
func TestKernelPortsTrafficIPv6(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, h *netlink.Handle) {
		bin := ip6tablesFor(t, cmd)
		l := newLab(t, h)
		host := l.host
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mn-a"}}
		if err := h.LinkAdd(br); err != nil {
			t.Fatal(err)
		}
		l.addrUp6(h, br, "fd00:1::1/64")
		c1 := l.child6("va1", br, "", "fd00:1::2/64", "fd00:1::1")
		c2 := l.child6("va2", br, "", "fd00:1::3/64", "fd00:1::1")
		ext := l.child6("vext", nil, "fd00:99::1/64", "fd00:99::2/64", "fd00:99::1")

		ipt, err := newFamily(testLog(), bin, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := ipt.EnableForwarding(); err != nil {
			t.Fatalf("EnableForwarding: %v", err)
		}
		if out, err := exec.Command(bin, "-P", "FORWARD", "DROP").CombinedOutput(); err != nil {
			t.Fatalf("policy DROP: %v: %s", err, out)
		}
		if err := ipt.EnsureNetwork(Network{Bridge: "mn-a", Subnet: kernelPortBridge6.Subnet, Masquerade: true, ICC: true}); err != nil {
			t.Fatal(err)
		}
		va1, err := h.LinkByName("va1")
		if err == nil {
			err = h.LinkSetHairpin(va1, true)
		}
		if err != nil {
			t.Fatalf("hairpin on va1: %v", err)
		}
		ms := kernelMappings6[:3]
		if err := ipt.EnsurePorts(kernelPortBridge6, ms); err != nil {
			t.Fatalf("EnsurePorts: %v", err)
		}
		hits := l.listen6(c1, "fd00:1::2", append([]uint16{80, 81}, portRange(8000, 8009)...))
		l.udpEcho6(c1, "[fd00:1::2]:53")

		l.reaches6("outside -> [host]:8080", ext, "[fd00:99::1]:8080", hits, 80, "fd00:99::2")
		for i := range uint16(10) {
			l.reaches6(fmt.Sprintf("outside -> [host]:%d (shifted range)", 9000+i), ext, fmt.Sprintf("[fd00:99::1]:%d", 9000+i), hits, 8000+i, "fd00:99::2")
		}
		l.reaches6("host -> own address:8080", host, "[fd00:99::1]:8080", hits, 80, "fd00:99::1")
		l.reaches6("neighbour -> gateway:8080", c2, "[fd00:1::1]:8080", hits, 80, "fd00:1::1")
		l.reaches6("container -> itself via gateway:8080 (hairpin)", c1, "[fd00:1::1]:8080", hits, 80, "fd00:1::1")
		if got := l.udpAsk6(ext, "[fd00:99::1]:5353", "ping"); got != "echo:ping" {
			t.Errorf("udp outside -> [host]:5353: answer %q, want %q", got, "echo:ping")
		}
		l.misses6("host -> [::1]:8080 (not DNATed: the forwarder's job)", host, "[::1]:8080", hits)
		l.misses6("outside -> [host]:8081 (not published)", ext, "[fd00:99::1]:8081", hits)
		l.misses6("outside -> container:80 (routed, not DNATed)", ext, "[fd00:1::2]:80", hits)

		if err := ipt.RemovePorts(ms); err != nil {
			t.Fatal(err)
		}
		l.misses6("outside -> [host]:8080 after RemovePorts", ext, "[fd00:99::1]:8080", hits)
	})
}
