//go:build linux

package firewall

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A connection attempt that hangs for blockedWait (its SYN dropped) counts
// as blocked; one that should connect gets allowedWait, which only matters
// on a loaded machine.
const (
	blockedWait = 500 * time.Millisecond
	allowedWait = 30 * time.Second
)

// lab is a small topology inside the test namespace ("the host"): bridges
// with "containers" (child namespaces attached by veth), and an "outside"
// namespace routed through the host. All of it goes when the test
// namespace does.
type lab struct {
	t    *testing.T
	h    *netlink.Handle
	host netns.NsHandle
}

func newLab(t *testing.T, h *netlink.Handle) *lab {
	host, err := netns.Get()
	if err != nil {
		t.Fatalf("get test netns: %v", err)
	}
	t.Cleanup(func() { _ = host.Close() })
	return &lab{t: t, h: h, host: host}
}

// bridge creates an up bridge with address cidr.
func (l *lab) bridge(name, cidr string) *netlink.Bridge {
	l.t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := l.h.LinkAdd(br); err != nil {
		l.t.Fatalf("bridge %s: %v", name, err)
	}
	l.addrUp(l.h, br, cidr)
	return br
}

// child creates a namespace joined to the host by a veth: the host end
// hostIf (enslaved to master, if given, else addressed hostCIDR), the other
// end addressed cidr, with a default route via gw.
func (l *lab) child(hostIf string, master *netlink.Bridge, hostCIDR, cidr, gw string) netns.NsHandle {
	l.t.Helper()
	ns, err := netns.New() // switches this thread into it
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
		l.addrUp(l.h, veth, hostCIDR)
	} else if err := l.h.LinkSetUp(veth); err != nil {
		l.t.Fatalf("up %s: %v", hostIf, err)
	}

	ch, err := netlink.NewHandleAt(ns)
	if err != nil {
		l.t.Fatalf("netlink handle in child: %v", err)
	}
	defer ch.Close()
	for _, name := range []string{"lo", "eth0"} {
		link, err := ch.LinkByName(name)
		if err != nil {
			l.t.Fatalf("child %s: %v", name, err)
		}
		if name == "lo" {
			if err := ch.LinkSetUp(link); err != nil {
				l.t.Fatalf("child lo up: %v", err)
			}
			continue
		}
		l.addrUp(ch, link, cidr)
		gwIP := net.ParseIP(gw)
		if err := ch.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gwIP}); err != nil {
			l.t.Fatalf("child default route via %s: %v", gw, err)
		}
	}
	return ns
}

// addrUp puts cidr on link and brings the link up. An IPv6 address goes
// on without duplicate address detection, which would keep it unusable
// for a second or two.
func (l *lab) addrUp(h *netlink.Handle, link netlink.Link, cidr string) {
	l.t.Helper()
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		l.t.Fatal(err)
	}
	if addr.IP.To4() == nil {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(link, addr); err != nil {
		l.t.Fatalf("address %s on %s: %v", cidr, link.Attrs().Name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		l.t.Fatalf("up %s: %v", link.Attrs().Name, err)
	}
}

// family is network ("tcp" or "udp") for the address family of addr
// ("IP:PORT" or "[IP]:PORT"): plain "tcp" would make a dual-stack socket
// of a wildcard IPv4 listener.
func family(network, addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() {
		return network + "6"
	}
	return network + "4"
}

// in runs fn with this thread in ns; sockets fn creates belong to ns.
func (l *lab) in(ns netns.NsHandle, fn func()) {
	l.t.Helper()
	if err := netns.Set(ns); err != nil {
		l.t.Fatalf("enter netns: %v", err)
	}
	defer func() {
		if err := netns.Set(l.host); err != nil {
			l.t.Fatalf("back to test netns: %v", err)
		}
	}()
	fn()
}

// listen accepts TCP connections on addr in ns and reports each peer's
// address.
func (l *lab) listen(ns netns.NsHandle, addr string) <-chan netip.Addr {
	l.t.Helper()
	var ln net.Listener
	l.in(ns, func() {
		var err error
		if ln, err = net.Listen(family("tcp", addr), addr); err != nil {
			l.t.Fatalf("listen %s: %v", addr, err)
		}
	})
	l.t.Cleanup(func() { _ = ln.Close() })
	peers := make(chan netip.Addr, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
			_ = c.Close()
		}
	}()
	return peers
}

// connect dials addr from ns: nil if it connected, a timeout error if the
// SYN was dropped.
func (l *lab) connect(ns netns.NsHandle, addr string, wait time.Duration) error {
	var err error
	l.in(ns, func() {
		var c net.Conn
		if c, err = net.DialTimeout(family("tcp", addr), addr, wait); err == nil {
			_ = c.Close()
		}
	})
	return err
}

func (l *lab) allowed(name string, ns netns.NsHandle, addr string, peers <-chan netip.Addr, wantPeer string) {
	l.t.Helper()
	if err := l.connect(ns, addr, allowedWait); err != nil {
		l.t.Errorf("%s: connect %s: %v, want connected", name, addr, err)
		return
	}
	select {
	case got := <-peers:
		if got.String() != wantPeer {
			l.t.Errorf("%s: server saw %s, want %s", name, got, wantPeer)
		}
	case <-time.After(time.Second):
		l.t.Errorf("%s: server saw no connection", name)
	}
}

func (l *lab) blocked(name string, ns netns.NsHandle, addr string) {
	l.t.Helper()
	err := l.connect(ns, addr, blockedWait)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		l.t.Errorf("%s: connect %s = %v, want a timeout (SYN dropped)", name, addr, err)
	}
}

// brNetfilter reports whether bridged IPv4 frames traverse iptables in the
// current namespace, which the ICC checks need.
func brNetfilter() bool {
	b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// TestKernelTraffic sends real connections through the rules: isolation
// between mynet networks and towards Docker's, egress with masquerade,
// internal networks, and ICC.
func TestKernelTraffic(t *testing.T) {
	inNetns(t, func(t *testing.T, cmd string, h *netlink.Handle) {
		l := newLab(t, h)
		brA := l.bridge("mn-a", "10.1.0.1/24")
		brB := l.bridge("mn-b", "10.2.0.1/24")
		brC := l.bridge("mn-c", "10.3.0.1/24")
		brD := l.bridge("docker0", "172.17.0.1/16")
		a1 := l.child("va1", brA, "", "10.1.0.2/24", "10.1.0.1")
		a2 := l.child("va2", brA, "", "10.1.0.3/24", "10.1.0.1")
		b1 := l.child("vb1", brB, "", "10.2.0.2/24", "10.2.0.1")
		b2 := l.child("vb2", brB, "", "10.2.0.3/24", "10.2.0.1")
		c1 := l.child("vc1", brC, "", "10.3.0.2/24", "10.3.0.1")
		d1 := l.child("vd1", brD, "", "172.17.0.2/16", "172.17.0.1")
		// The outside routes back to the host, so that a connection into a
		// network is not lost for want of a route, and masquerade shows in
		// the source address the server sees.
		ext := l.child("vext", nil, "192.0.2.1/24", "192.0.2.2/24", "192.0.2.1")

		ipt, err := newIPv4(testLog(), cmd)
		if err != nil {
			t.Fatalf("newIPv4: %v", err)
		}
		// /proc/sys/net shows the namespace of the thread that opens it:
		// this sets forwarding in the test namespace only.
		if err := ipt.EnableForwarding(); err != nil {
			t.Fatalf("EnableForwarding: %v", err)
		}

		extPeers := l.listen(ext, "192.0.2.2:8080")
		a1Peers := l.listen(a1, "10.1.0.2:8080")
		b1Peers := l.listen(b1, "10.2.0.2:8080")
		// Blocked targets need no listener: a SYN that got through would
		// be answered with a reset, which is not a timeout.

		// Control: with no rules and policy ACCEPT, everything connects.
		l.allowed("control a1->b1", a1, "10.2.0.2:8080", b1Peers, "10.1.0.2")
		l.allowed("control ext->a1", ext, "10.1.0.2:8080", a1Peers, "192.0.2.2")

		// dockerd's setup: policy DROP, and its accepts for docker0 after
		// mynet's jump.
		for _, args := range [][]string{
			{"-P", "FORWARD", "DROP"},
			{"-A", "FORWARD", "-o", "docker0", "-j", "ACCEPT"},
			{"-A", "FORWARD", "-i", "docker0", "-j", "ACCEPT"},
			{"-t", "nat", "-A", "POSTROUTING", "-s", "172.17.0.0/16", "!", "-o", "docker0", "-j", "MASQUERADE"},
		} {
			if out, err := exec.Command(cmd, args...).CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v: %s", cmd, strings.Join(args, " "), err, out)
			}
		}
		if err := ipt.Init(); err != nil {
			t.Fatalf("Init: %v", err)
		}
		for _, n := range kernelNetworks {
			if err := ipt.EnsureNetwork(n); err != nil {
				t.Fatalf("EnsureNetwork(%s): %v", n.Bridge, err)
			}
		}

		l.allowed("a1->outside, masqueraded", a1, "192.0.2.2:8080", extPeers, "192.0.2.1")
		l.allowed("b1->outside, masqueraded", b1, "192.0.2.2:8080", extPeers, "192.0.2.1")
		l.allowed("docker0 container->outside", d1, "192.0.2.2:8080", extPeers, "192.0.2.1")
		l.blocked("outside->a1", ext, "10.1.0.2:8080")
		l.blocked("a1->b1", a1, "10.2.0.2:8080")
		l.blocked("b1->a1", b1, "10.1.0.2:8080")
		l.blocked("a1->docker0 container", a1, "172.17.0.2:8080")
		l.blocked("docker0 container->a1", d1, "10.1.0.2:8080")
		l.blocked("internal c1->outside", c1, "192.0.2.2:8080")
		l.blocked("outside->internal c1", ext, "10.3.0.2:8080")
		l.blocked("a1->internal c1", a1, "10.3.0.2:8080")
		if brNetfilter() {
			l.allowed("a2->a1, icc on", a2, "10.1.0.2:8080", a1Peers, "10.1.0.3")
			l.blocked("b2->b1, icc off", b2, "10.2.0.2:8080")
		} else {
			t.Log("br_netfilter is off in this namespace: skipping the ICC checks")
		}
	})
}
