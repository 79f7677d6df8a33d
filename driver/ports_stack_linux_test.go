//go:build linux

package driver

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nstest"
)

// TestPortsRealStack publishes ports with the real firewall and real
// reservations, in a namespace that plays the host, with the container end
// in a child namespace: the host reaches the container through 127.0.0.1
// and through its own address; the published host port cannot be bound by
// anyone else while published; a port in use fails Program and changes no
// rule; a UDP client that was sending before the port was published
// reaches the container once it is (stale conntrack entry flushed); and
// removing the endpoint frees the port and returns iptables to what it was.
func TestPortsRealStack(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		if _, err := exec.LookPath("iptables"); err != nil {
			t.Skip("iptables not installed")
		}
		baseline := iptablesSave(t)
		fw, err := firewall.New(quietLog())
		if err != nil {
			t.Fatal(err)
		}
		d, err := New(h, fw, nil, newMemStore(), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		withNetwork := iptablesSave(t)
		ports := portmap(binding(6, 7777, "", 8080, 8080), binding(17, 7777, "", 5353, 5353))
		req := epReq("10.50.0.2/24", "")
		req.Options = ports
		if _, err := d.CreateEndpoint(req); err != nil {
			t.Fatal(err)
		}
		join, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID, SandboxKey: "/x", Options: ports})
		if err != nil {
			t.Fatal(err)
		}
		hostNS, _ := netns.Get()
		defer hostNS.Close()
		sandbox, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		defer sandbox.Close()
		ln := plumbSandbox(t, h, sandbox, join.InterfaceName.SrcName) // thread now in the sandbox
		defer ln.Close()
		udp, err := net.ListenPacket("udp4", "10.50.0.2:7777")
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		if err := netns.Set(hostNS); err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("container"))
				c.Close()
			}
		}()
		udpGot := make(chan string, 4)
		go func() {
			buf := make([]byte, 64)
			for {
				n, _, err := udp.ReadFrom(buf)
				if err != nil {
					return
				}
				udpGot <- string(buf[:n])
			}
		}()

		// A UDP client already sending to the host port before it is
		// published: its conntrack entry points at the host.
		// Unconnected, so the host's "port unreachable" does not turn the
		// next send into an error.
		client, err := net.ListenPacket("udp4", "10.50.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		hostPort := &net.UDPAddr{IP: net.IPv4(10, 50, 0, 1), Port: 5353}
		if _, err := client.WriteTo([]byte("early"), hostPort); err != nil {
			t.Fatal(err)
		}

		if err := d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: ports}); err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{"127.0.0.1:8080", "10.50.0.1:8080"} {
			if got := fetch(t, addr); got != "container" {
				t.Errorf("host -> %s: got %q, want the container's answer", addr, got)
			}
		}
		if _, err := client.WriteTo([]byte("late"), hostPort); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-udpGot:
			if got != "late" {
				t.Errorf("container got %q over udp, want %q", got, "late")
			}
		case <-time.After(30 * time.Second):
			t.Error("the UDP client that sent before the port was published never reached the container (stale conntrack entry)")
		}
		if err := bindTCP("0.0.0.0:8080"); !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("binding the published port 8080: %v, want EADDRINUSE", err)
		}
		if err := bindTCP("127.0.0.1:8080"); !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("binding 127.0.0.1:8080 while 0.0.0.0:8080 is published: %v, want EADDRINUSE", err)
		}

		// A second endpoint asking for a port a host program listens on.
		busy, err := net.Listen("tcp4", "127.0.0.1:8090")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		e2 := epReq("10.50.0.3/24", "")
		e2.EndpointID = testEpID2
		if _, err := d.CreateEndpoint(e2); err != nil {
			t.Fatal(err)
		}
		published := iptablesSave(t)
		err = d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID2,
			Options: portmap(binding(6, 80, "", 8091, 8091), binding(6, 81, "", 8090, 8090))})
		if err == nil || !strings.Contains(err.Error(), "host port 8090/tcp on 0.0.0.0 is already in use") {
			t.Fatalf("Program on a port in use = %v, want host port 8090/tcp on 0.0.0.0 is already in use", err)
		}
		if got := iptablesSave(t); got != published {
			t.Errorf("the failed Program changed iptables:\n%s\nwant:\n%s", got, published)
		}
		if err := bindTCP("0.0.0.0:8091"); err != nil {
			t.Errorf("8091 still held after the failed Program: %v", err)
		}

		for _, id := range []string{testEpID, testEpID2} {
			if err := d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: id}); err != nil {
				t.Fatal(err)
			}
		}
		// MYNET-DNAT and its two jumps stay, empty, until Cleanup.
		got, dnat := splitLines2(iptablesSave(t), "MYNET-DNAT")
		if got != withNetwork || len(dnat) != 3 {
			t.Errorf("after DeleteEndpoint:\n%s\n(and %q)\nwant the network's rules and the empty MYNET-DNAT with its jumps:\n%s", got, dnat, withNetwork)
		}
		if err := bindTCP("0.0.0.0:8080"); err != nil {
			t.Errorf("8080 still held after DeleteEndpoint: %v", err)
		}
		if err := d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
		if err := fw.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if got := iptablesSave(t); got != baseline {
			t.Errorf("iptables not back to baseline:\n%s\nwant:\n%s", got, baseline)
		}
	})
}

// splitLines2 separates the lines of text that contain sub.
func splitLines2(text, sub string) (rest string, with []string) {
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		if strings.Contains(l, sub) {
			with = append(with, strings.TrimSpace(l))
		} else {
			b.WriteString(l)
		}
	}
	return b.String(), with
}

// fetch connects to addr and returns what the server wrote.
func fetch(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 3*time.Second)
	if err != nil {
		t.Errorf("connect %s: %v", addr, err)
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	return string(buf[:n])
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
