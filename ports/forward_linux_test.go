//go:build linux

package ports

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nstest"
)

// tcpEchoServer answers each connection, once the client has shut down
// its sending side, with "echo:" and everything it sent, then closes.
func tcpEchoServer(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				_, _ = c.Write(append([]byte("echo:"), b...))
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func udpEchoServer(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// dialHere makes the forwarder dial in the caller's namespace (the
// test's), whatever thread its goroutines run on, until the test ends.
func dialHere(t *testing.T) {
	t.Helper()
	ns, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	old := dialContainer
	t.Cleanup(func() { dialContainer = old; _ = ns.Close() })
	dialContainer = func(ctx context.Context, network, address string) (net.Conn, error) {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		c, err := (&net.Dialer{}).DialContext(ctx, network, address)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread() // else the thread dies with the goroutine
		}
		return c, err
	}
}

// forwardPort holds port on ip and turns the hold into a forwarder to
// target, as Forward does.
func forwardPort(t *testing.T, proto string, ip netip.Addr, port uint16, target netip.AddrPort) *forwarder {
	t.Helper()
	dialHere(t)
	h, err := SocketReserver{}.Reserve(proto, ip, port)
	if err != nil {
		t.Fatal(err)
	}
	f, err := startForward(quietLog(), h.(socketHold), target)
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	return f
}

// askTCP sends msg, shuts down its sending side (the answer must still
// come: half-close) and returns all it reads.
func askTCP(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

func askUDP(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// The forwarder serves [::1] over TCP, to an IPv6 and to an IPv4 target,
// with half-close; closing it ends live connections, refuses new ones and
// frees the port.
func TestForwarderTCP(t *testing.T) {
	nstest.Run(t, func(*netlink.Handle) {
		for _, target := range []netip.AddrPort{tcpEchoServer(t, "tcp6", "[::1]:0"), tcpEchoServer(t, "tcp4", "127.0.0.1:0")} {
			f := forwardPort(t, firewall.ProtoTCP, lo6, 18080, target)
			for i := range 3 {
				got, err := askTCP("[::1]:18080", fmt.Sprintf("hello %d", i))
				if err != nil || got != fmt.Sprintf("echo:hello %d", i) {
					t.Fatalf("to %s: answer %q, %v", target, got, err)
				}
			}
			// A live connection (the server waits for our EOF) ends with Close.
			live, err := net.Dial("tcp", "[::1]:18080")
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the forwarder to track the live connection", func() bool { return f.live() == 2 })
			if err := f.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			_ = live.SetReadDeadline(time.Now().Add(2 * time.Second))
			var ne net.Error
			if _, err := live.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("live connection after Close: read %v, want EOF or reset", err)
			}
			_ = live.Close()
			if _, err := net.DialTimeout("tcp", "[::1]:18080", time.Second); err == nil {
				t.Error("connected after Close, want refused")
			}
			h, err := SocketReserver{}.Reserve(firewall.ProtoTCP, lo6, 18080)
			if err != nil {
				t.Fatalf("port still taken after Close: %v", err)
			}
			_ = h.Close()
		}
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (f *forwarder) live() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// The UDP forwarder keeps one flow per client (each gets its own
// answers), expires idle flows and closes them all with Close.
func TestForwarderUDP(t *testing.T) {
	nstest.Run(t, func(*netlink.Handle) {
		defer func(old time.Duration) { udpFlowIdle = old }(udpFlowIdle)
		udpFlowIdle = 300 * time.Millisecond
		for _, target := range []netip.AddrPort{udpEchoServer(t, "udp6", "[::1]:0"), udpEchoServer(t, "udp4", "127.0.0.1:0")} {
			f := forwardPort(t, firewall.ProtoUDP, lo6, 15353, target)
			var clients []net.Conn
			for i := range 3 {
				c, err := net.Dial("udp", "[::1]:15353")
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				clients = append(clients, c)
				for j := range 2 {
					msg := fmt.Sprintf("client %d message %d", i, j)
					if got, err := askUDP(c, msg); err != nil || got != "echo:"+msg {
						t.Fatalf("to %s: answer %q, %v; want %q", target, got, err, "echo:"+msg)
					}
				}
			}
			if n := f.live(); n != 3 {
				t.Errorf("%d flows, want 3", n)
			}
			waitFor(t, "idle flows to expire", func() bool { return f.live() == 0 })
			if got, err := askUDP(clients[0], "again"); err != nil || got != "echo:again" {
				t.Errorf("after expiry: answer %q, %v", got, err)
			}
			if err := f.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if n := f.live(); n != 0 {
				t.Errorf("%d flows after Close", n)
			}
			h, err := SocketReserver{}.Reserve(firewall.ProtoUDP, lo6, 15353)
			if err != nil {
				t.Fatalf("port still taken after Close: %v", err)
			}
			_ = h.Close()
		}
	})
}

// A UDP forwarder on :: answers from the address the client sent to,
// not the one the kernel would pick for the client (here the client's own
// address): a connected client drops answers from anywhere else.
func TestForwarderUDPReplySource(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		lo, err := h.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"fd00:1::1/128", "fd00:1::2/128"} {
			addr, _ := netlink.ParseAddr(a)
			addr.Flags = unix.IFA_F_NODAD
			if err := h.AddrAdd(lo, addr); err != nil {
				t.Fatal(err)
			}
		}
		waitLocal(t, h, "fd00:1::1", "fd00:1::2")
		f := forwardPort(t, firewall.ProtoUDP, all6, 15354, udpEchoServer(t, "udp4", "127.0.0.1:0"))
		defer f.Close()
		d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("fd00:1::1")}}
		c, err := d.Dial("udp", "[fd00:1::2]:15354")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, err := askUDP(c, "hi"); err != nil || got != "echo:hi" {
			t.Errorf("answer %q, %v; want echo:hi from [fd00:1::2]:15354", got, err)
		}
	})
}

// waitLocal waits until the kernel delivers to each of addrs locally. A
// new IPv6 address, even without DAD, gets its local route from a kernel
// work item after the netlink call returns; a datagram sent before that
// is lost.
func waitLocal(t *testing.T, h *netlink.Handle, addrs ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range addrs {
		for {
			rs, err := h.RouteGet(net.ParseIP(a))
			if err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is not a local address after 30 s: %v %v", a, rs, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// SCTP is not forwarded (the driver refuses such bindings before).
func TestForwarderRefusesSCTP(t *testing.T) {
	h := socketHold{fd: -1, proto: firewall.ProtoSCTP, ip: lo6, port: 19000}
	if _, err := startForward(quietLog(), h, netip.MustParseAddrPort("[::1]:9")); err == nil {
		t.Fatal("startForward(sctp) succeeded, want an error")
	}
}

// TestForwarderThroughput logs the TCP throughput through the [::1]
// forwarder and directly, 256 MiB each (a number for the docs, not a
// pass/fail bound beyond "it moves data").
func TestForwarderThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	nstest.Run(t, func(*netlink.Handle) {
		sink, err := net.Listen("tcp6", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		go func() {
			for {
				c, err := sink.Accept()
				if err != nil {
					return
				}
				go func() {
					n, _ := io.Copy(io.Discard, c)
					_, _ = fmt.Fprint(c, n)
					_ = c.Close()
				}()
			}
		}()
		f := forwardPort(t, firewall.ProtoTCP, lo6, 18090, sink.Addr().(*net.TCPAddr).AddrPort())
		defer f.Close()
		const size = 256 << 20
		for _, path := range []struct{ name, addr string }{{"direct", sink.Addr().String()}, {"forwarder", "[::1]:18090"}} {
			c, err := net.Dial("tcp", path.addr)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for range size >> 20 {
				if _, err := c.Write(chunk); err != nil {
					t.Fatal(err)
				}
			}
			_ = c.(*net.TCPConn).CloseWrite()
			ack, _ := io.ReadAll(c)
			took := time.Since(start)
			_ = c.Close()
			if string(ack) != fmt.Sprint(size) {
				t.Fatalf("%s: the sink got %q bytes, want %d", path.name, ack, size)
			}
			t.Logf("%s: %d MiB in %v = %.0f MiB/s", path.name, size>>20, took.Round(time.Millisecond), float64(size>>20)/took.Seconds())
		}
	})
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}
