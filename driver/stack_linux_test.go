//go:build linux

package driver

import (
	"bytes"
	"net"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nstest"
)

// TestRealStack drives the driver with the real firewall: the container
// end is moved into a child namespace as the engine would, a TCP
// connection crosses the bridge, and deleting everything returns the
// links and the iptables ruleset to what they were.
func TestRealStack(t *testing.T) {
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
		if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
			t.Fatal(err)
		}
		join, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID})
		if err != nil {
			t.Fatal(err)
		}

		// Play the engine: move the container end into a sandbox, rename
		// it eth0, give it the address.
		hostNS, _ := netns.Get()
		sandbox, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		defer sandbox.Close()
		ln := plumbSandbox(t, h, sandbox, join.InterfaceName.SrcName)
		if err := netns.Set(hostNS); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
		c, err := net.DialTimeout("tcp", "10.50.0.2:7777", 3*time.Second)
		if err != nil {
			t.Fatalf("host to container over the bridge: %v", err)
		}
		c.Close()

		// The engine moves the interface back before DeleteEndpoint; here
		// the sandbox simply keeps it, and deleting the host end removes
		// the pair.
		if err := d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: testEpID}); err != nil {
			t.Fatal(err)
		}
		if err := d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
		if err := fw.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if l := links(t, h); len(l) != 0 {
			t.Errorf("links left: %v", l)
		}
		if got := iptablesSave(t); got != baseline {
			t.Errorf("iptables not back to baseline:\n%s\nwant:\n%s", got, baseline)
		}
	})
}

// plumbSandbox moves link into sandbox as eth0 with 10.50.0.2/24 and
// listens on :7777 there. The calling thread is left in sandbox.
func plumbSandbox(t *testing.T, h *netlink.Handle, sandbox netns.NsHandle, link string) net.Listener {
	t.Helper()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetNsFd(l, int(sandbox)); err != nil {
		t.Fatal(err)
	}
	sh, err := netlink.NewHandleAt(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	l, err = sh.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.LinkSetName(l, "eth0"); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("10.50.0.2/24")
	if err := sh.AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	if err := sh.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "10.50.0.2:7777") // on this thread: the sandbox
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func iptablesSave(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var keep []byte
	for _, line := range splitLines(out) {
		// Rules and user chains only: an empty table that iptables
		// instantiated on the way is not a leftover.
		if !bytes.HasPrefix(line, []byte("-A ")) && !(bytes.HasPrefix(line, []byte(":")) && !builtinChain.Match(line)) {
			continue
		}
		keep = append(keep, line...)
		keep = append(keep, '\n')
	}
	return string(keep)
}

var builtinChain = regexp.MustCompile(`^:(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) `)

func splitLines(b []byte) [][]byte { return bytes.Split(b, []byte("\n")) }
