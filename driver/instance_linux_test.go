//go:build linux

package driver

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/firewall"
	"github.com/mynet/mynet/internal/nstest"
	"github.com/mynet/mynet/ports"
	"github.com/mynet/mynet/store"
)

var (
	instA     = Instance{Name: "mynet", UUID: "1a2b3c4d-0000-4000-8000-000000000001"}
	instA2    = Instance{Name: "mynet", UUID: "5e6f7a8b-0000-4000-8000-000000000002"}
	instSwarm = Instance{Name: "mynet-swarm", UUID: "9c0d1e2f-0000-4000-8000-000000000003"}
)

func newInstanceDriver(t *testing.T, h *netlink.Handle, st *memStore, fw *fakeFirewall, inst Instance) *Driver {
	t.Helper()
	d, err := New(h, fw, nil, st, quietLog(), WithInstance(inst))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func addAliasedLink(t *testing.T, h *netlink.Handle, l netlink.Link, alias string) {
	t.Helper()
	if err := h.LinkAdd(l); err != nil {
		t.Fatal(err)
	}
	if alias == "" {
		return
	}
	if err := h.LinkSetAlias(l, alias); err != nil {
		t.Fatal(err)
	}
}

func aliasOf(t *testing.T, h *netlink.Handle, name string) string {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l.Attrs().Alias
}

// Links a user named like mynet's (a bridge mynet-<9 hex>, a veth pair
// mnh/mnc<12 hex>) carry no mynet alias and are never deleted, by a legacy
// driver nor by an instance. Before, reconcile deleted them as mynet's
// own, left by a crash before the alias was set.
func TestReconcileLeavesLinksNamedLikeMynets(t *testing.T) {
	for _, inst := range []Instance{{}, instA} {
		t.Run("instance="+inst.Tag(), func(t *testing.T) {
			nstest.Run(t, func(h *netlink.Handle) {
				addAliasedLink(t, h, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mynet-abcdef012"}}, "")
				addAliasedLink(t, h, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mnhabcdef012345"}, PeerName: "mncabcdef012345"}, "")
				d := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), inst)
				if err := d.Restore(); err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(links(t, h), " "); got != "mynet-abcdef012 mnhabcdef012345 mncabcdef012345" && got != "mynet-abcdef012 mncabcdef012345 mnhabcdef012345" {
					t.Errorf("links after Restore: %q, want the user's three", got)
				}
			})
		})
	}
}

// A link this instance created but crashed before naming (no alias yet)
// is known by the instance's link group, which the kernel takes in the
// creating message, and is removed when no record names it.
func TestReconcileRemovesOwnUnaliasedLinks(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		addAliasedLink(t, h, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mynet-0123abcde", Group: instA.group()}}, "")
		addAliasedLink(t, h, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mnh0123abcdef01", Group: instA.group()}, PeerName: "mnc0123abcdef01"}, "")
		// The other instance's crash leftovers are its own to remove.
		addAliasedLink(t, h, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mynet-4567abcde", Group: instA2.group()}}, "")
		d := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instA)
		if err := d.Restore(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(links(t, h), " "); got != "mynet-4567abcde" {
			t.Errorf("links after Restore: %q, want only the other instance's", got)
		}
	})
}

// Two instances on one host: each one's Restore (reconcile), heal round
// and orphan sweep leave the other's bridge and veths alone, and log each
// foreign link once, not every round.
func TestInstancesLeaveEachOthersLinks(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		a := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instA)
		if err := a.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
			t.Fatal(err)
		}
		before := strings.Join(links(t, h), " ")
		if want := "mynet:mynet:1a2b3c4d:" + testNetID; aliasOf(t, h, "mynet-a1b2c3d4e") != want {
			t.Fatalf("bridge alias %q, want %q", aliasOf(t, h, "mynet-a1b2c3d4e"), want)
		}

		logger, hook := logtest.NewNullLogger()
		b, err := New(h, newFakeFirewall(), nil, newMemStore(), logrus.NewEntry(logger), WithInstance(instSwarm))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := b.Restore(); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Heal(); err != nil {
				t.Fatal(err)
			}
			b.ReapOrphans()
		}
		if got := strings.Join(links(t, h), " "); got != before {
			t.Errorf("links after the other instance's restarts: %q, want %q", got, before)
		}
		foreign := 0
		for _, e := range hook.AllEntries() {
			if strings.Contains(e.Message, "another mynet instance") {
				foreign++
			}
		}
		if foreign != 2 {
			t.Errorf("%d log lines about foreign links, want 2 (bridge and host veth, once each)", foreign)
		}
		if err := a.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
	})
}

// A state file of a build before instances: its links carry the legacy
// alias mynet:<id>. Those the records name are this instance's and get
// its alias; a legacy one no record names cannot be proven ours and stays.
func TestLegacyLinksRetaggedOrLeft(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		st, fw := newMemStore(), newFakeFirewall()
		old := newInstanceDriver(t, h, st, fw, Instance{})
		if err := old.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := old.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
			t.Fatal(err)
		}
		if aliasOf(t, h, "mynet-a1b2c3d4e") != "mynet:"+testNetID {
			t.Fatalf("legacy driver's alias %q", aliasOf(t, h, "mynet-a1b2c3d4e"))
		}
		addAliasedLink(t, h, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mynet-fffffffff"}}, "mynet:fffffffff0000")

		d := newInstanceDriver(t, h, st, fw, instA)
		if err := d.CheckStart(); err != nil {
			t.Fatalf("CheckStart with records: %v", err)
		}
		if err := d.Restore(); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{
			"mynet-a1b2c3d4e": instA.alias(testNetID),
			"mnhe1e2e3e4e5e6": instA.alias(testEpID),
			"mynet-fffffffff": "mynet:fffffffff0000",
		} {
			if got := aliasOf(t, h, name); got != want {
				t.Errorf("%s alias %q, want %q", name, got, want)
			}
		}
		if err := d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(links(t, h), " "); got != "mynet-fffffffff" {
			t.Errorf("links after delete: %q, want the unproven legacy bridge only", got)
		}
	})
}

// A missing or new state file (no records) over the live links of an
// instance of the same name refuses to start, naming them; other names'
// objects, and the instance's own, do not stop it. Legacy links count for
// the default name. Before, mynet started empty and reconcile deleted
// them all.
func TestCheckStartRefusesOverLiveNetworks(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		a := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instA)
		if err := a.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		lost := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instA2)
		err := lost.CheckStart()
		if !errors.Is(err, ErrLiveObjects) || !strings.Contains(err.Error(), "link mynet-a1b2c3d4e") || !strings.Contains(err.Error(), "state file") {
			t.Fatalf("CheckStart over a same-name instance's network: %v", err)
		}
		if err := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instSwarm).CheckStart(); err != nil {
			t.Errorf("CheckStart of another name: %v", err)
		}
		if err := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instA).CheckStart(); err != nil {
			t.Errorf("CheckStart over the instance's own links: %v", err)
		}
		if err := a.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}

		legacy := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), Instance{})
		if err := legacy.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		if err := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instA).CheckStart(); !errors.Is(err, ErrLiveObjects) {
			t.Errorf("CheckStart of mynet over legacy links: %v", err)
		}
		if err := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instSwarm).CheckStart(); err != nil {
			t.Errorf("CheckStart of mynet-swarm over legacy links: %v", err)
		}
	})
}

// An adopted bridge (the user's, existing before) is given back as found
// when the network is deleted, or when its create fails: its MTU and its
// down state. Before, it stayed up at the MTU mynet set.
func TestAdoptedBridgeGivenBackAsFound(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		addAliasedLink(t, h, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "userbr0", MTU: 1500}}, "")
		check := func(when string) {
			t.Helper()
			l, err := h.LinkByName("userbr0")
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if l.Attrs().MTU != 1500 || l.Attrs().Flags&net.FlagUp != 0 {
				t.Errorf("%s: MTU %d, up %v; want 1500, down", when, l.Attrs().MTU, l.Attrs().Flags&net.FlagUp != 0)
			}
		}
		st, fw := newMemStore(), newFakeFirewall()
		d := newInstanceDriver(t, h, st, fw, instA)
		req := createReq(map[string]any{optBridgeName: "userbr0", optMTU: "1400"})
		if err := d.CreateNetwork(req); err != nil {
			t.Fatal(err)
		}
		if l, _ := h.LinkByName("userbr0"); l.Attrs().MTU != 1400 || l.Attrs().Flags&net.FlagUp == 0 {
			t.Fatalf("adopted bridge in use: MTU %d, flags %v", l.Attrs().MTU, l.Attrs().Flags)
		}
		// Deleted by the next instance process: what was found is recorded.
		d2 := newInstanceDriver(t, h, st, fw, instA)
		if err := d2.Restore(); err != nil {
			t.Fatal(err)
		}
		if err := d2.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID}); err != nil {
			t.Fatal(err)
		}
		check("after delete")

		fw.failEnsure = errInjected
		if err := d2.CreateNetwork(req); !errors.Is(err, errInjected) {
			t.Fatalf("create with failing rules: %v", err)
		}
		check("after a failed create")
	})
}

// side is one of two instances in TestTwoInstancesSideBySide.
type side struct {
	inst         Instance
	st           *memStore
	netID, epID  string
	pool, gw, ip string
	hostPort     int
	d            *Driver
	fw           *firewall.IPTables
}

// start runs the instance as a (re)started process does: a new driver
// on the kept state, the start check, Restore, a heal round and an
// orphan sweep.
func (s *side) start(t *testing.T, h *netlink.Handle) {
	t.Helper()
	fw, err := firewall.New(quietLog(), firewall.Instance(s.inst.Tag()))
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(h, fw, nil, s.st, quietLog(), WithInstance(s.inst), WithPortReserver(ports.NewMemReserver()))
	if err != nil {
		t.Fatal(err)
	}
	s.d, s.fw = d, fw
	if err := d.CheckStart(); err != nil {
		t.Fatalf("%s: CheckStart: %v", s.inst.Name, err)
	}
	if err := d.Restore(); err != nil {
		t.Fatalf("%s: Restore: %v", s.inst.Name, err)
	}
	if _, err := d.Heal(); err != nil {
		t.Fatalf("%s: Heal: %v", s.inst.Name, err)
	}
	d.ReapOrphans()
}

func (s *side) create(t *testing.T) {
	t.Helper()
	ports := portmap(binding(6, 80, "", s.hostPort, s.hostPort))
	steps := []func() error{
		func() error {
			return s.d.CreateNetwork(&network.CreateNetworkRequest{NetworkID: s.netID, Options: map[string]any{keyGeneric: map[string]any{}},
				IPv4Data: []*network.IPAMData{{Pool: s.pool, Gateway: s.gw}}})
		},
		func() error {
			_, err := s.d.CreateEndpoint(&network.CreateEndpointRequest{NetworkID: s.netID, EndpointID: s.epID, Options: ports,
				Interface: &network.EndpointInterface{Address: s.ip}})
			return err
		},
		func() error {
			_, err := s.d.Join(&network.JoinRequest{NetworkID: s.netID, EndpointID: s.epID, SandboxKey: "/x", Options: ports})
			return err
		},
		func() error {
			return s.d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: s.netID, EndpointID: s.epID, Options: ports})
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("%s: step %d: %v", s.inst.Name, i+1, err)
		}
	}
}

func (s *side) remove(t *testing.T) {
	t.Helper()
	if err := s.d.Leave(&network.LeaveRequest{NetworkID: s.netID, EndpointID: s.epID}); err != nil {
		t.Fatal(err)
	}
	if err := s.d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: s.netID, EndpointID: s.epID}); err != nil {
		t.Fatal(err)
	}
	if err := s.d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: s.netID}); err != nil {
		t.Fatal(err)
	}
}

// objects is what the kernel holds of s: its links (name and alias) and
// its rules, by their comment.
func (s *side) objects(t *testing.T, h *netlink.Handle) string {
	t.Helper()
	var out []string
	ls, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if strings.Contains(l.Attrs().Alias, s.inst.Tag()) {
			out = append(out, l.Attrs().Name+" "+l.Attrs().Alias)
		}
	}
	for _, line := range strings.Split(iptablesSave(t), "\n") {
		if strings.Contains(line, "mynet:"+s.inst.Tag()+":") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestTwoInstancesSideBySide: two instances (other names, UUIDs and
// state) on one host each create a network with a published port,
// restart (start check, Restore with reconcile, a heal round, an orphan
// sweep) and delete it, and the other's links and rules stay exactly as
// they were throughout. Before instances, the second one's start deleted
// every link and rule of the first.
func TestTwoInstancesSideBySide(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		if _, err := exec.LookPath("iptables"); err != nil {
			t.Skip("iptables not installed")
		}
		baseline := iptablesSave(t)
		a := &side{inst: instA, st: newMemStore(), netID: strings.Repeat("a1", 32), epID: strings.Repeat("a2", 32),
			pool: "10.61.0.0/24", gw: "10.61.0.1/24", ip: "10.61.0.2/24", hostPort: 8080}
		b := &side{inst: instSwarm, st: newMemStore(), netID: strings.Repeat("b1", 32), epID: strings.Repeat("b2", 32),
			pool: "10.62.0.0/24", gw: "10.62.0.1/24", ip: "10.62.0.2/24", hostPort: 8081}
		a.start(t, h)
		a.create(t)
		b.start(t, h)
		b.create(t)
		objA, objB := a.objects(t, h), b.objects(t, h)
		if strings.Count(objA, "\n") < 5 || !strings.Contains(objA, "DNAT") || !strings.Contains(objB, "mnhb2b2b2b2b2b2") {
			t.Fatalf("objects of a:\n%s\nof b:\n%s", objA, objB)
		}
		for _, s := range []*side{a, b, a, b} {
			s.start(t, h)
			if got := a.objects(t, h); got != objA {
				t.Fatalf("a's objects after %s restarted:\n%s\nwant:\n%s", s.inst.Name, got, objA)
			}
			if got := b.objects(t, h); got != objB {
				t.Fatalf("b's objects after %s restarted:\n%s\nwant:\n%s", s.inst.Name, got, objB)
			}
		}
		a.remove(t)
		if got := a.objects(t, h); got != "" {
			t.Errorf("a's objects after its delete:\n%s", got)
		}
		if got := b.objects(t, h); got != objB {
			t.Errorf("b's objects after a's delete:\n%s\nwant:\n%s", got, objB)
		}
		if err := a.fw.Cleanup(); !errors.Is(err, firewall.ErrRulesRemain) {
			t.Errorf("a's Cleanup with b's rules in place = %v, want ErrRulesRemain", err)
		}
		b.start(t, h)
		b.remove(t)
		if err := b.fw.Cleanup(); err != nil {
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

// The orphan sweep removes only pairs that carry the instance's alias for
// the endpoint: a recorded endpoint whose veth names are now another
// instance's (or a user's) link is not reaped, however long it waits.
func TestReapOrphansLeavesForeignPairs(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		d := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instA)
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
			t.Fatal(err)
		}
		host, _ := h.LinkByName("mnhe1e2e3e4e5e6")
		if err := h.LinkSetAlias(host, instSwarm.alias(testEpID)); err != nil {
			t.Fatal(err)
		}
		inHost, err := d.hostLinks()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		d.mu.Lock()
		first := d.reapOrphans(now, inHost)
		later := d.reapOrphans(now.Add(DefaultOrphanGrace+time.Second), inHost)
		d.mu.Unlock()
		if first != 0 || later != 0 {
			t.Errorf("reaped %d then %d, want none", first, later)
		}
		if _, err := h.LinkByName("mnhe1e2e3e4e5e6"); err != nil {
			t.Errorf("the other instance's veth was removed: %v", err)
		}
	})
}

// A state file truncated to 0 bytes, or deleted, is a new one to bbolt:
// a new UUID and no records. Over the live network the old file recorded,
// the instance refuses to start, and keeps refusing on the next try
// (the new file now has a UUID, but still no records); a new state file
// with nothing of its name in the kernel starts.
func TestLostStateFileRefusesToStart(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		dir := t.TempDir()
		open := func() (*store.Store, *Driver) {
			t.Helper()
			st, err := store.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(h, newFakeFirewall(), nil, st, quietLog(), WithInstance(Instance{Name: "mynet", UUID: st.UUID()}))
			if err != nil {
				t.Fatal(err)
			}
			return st, d
		}
		st, d := open()
		if err := d.CheckStart(); err != nil {
			t.Fatalf("a new state file over an empty kernel: %v", err)
		}
		if err := d.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		_ = st.Close()
		path := filepath.Join(dir, "state.db")
		for _, lose := range []func() error{
			func() error { return os.Truncate(path, 0) },
			func() error { return os.Remove(path) },
		} {
			if err := lose(); err != nil {
				t.Fatal(err)
			}
			for try := range 2 {
				st, d := open()
				err := d.CheckStart()
				_ = st.Close()
				if !errors.Is(err, ErrLiveObjects) || !strings.Contains(err.Error(), "mynet-a1b2c3d4e") {
					t.Fatalf("start #%d after losing the state file: %v", try+1, err)
				}
			}
		}
		if got := strings.Join(links(t, h), " "); got != "mynet-a1b2c3d4e" {
			t.Errorf("links after the refused starts: %q", got)
		}
	})
}

// A network naming another instance's bridge (com.docker.network.bridge.name)
// is refused, and the bridge is left as it was; before, it was adopted
// and given the second network's address and MTU.
func TestOtherInstancesBridgeIsNotAdopted(t *testing.T) {
	nstest.Run(t, func(h *netlink.Handle) {
		a := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instA)
		if err := a.CreateNetwork(createReq(nil)); err != nil {
			t.Fatal(err)
		}
		b := newInstanceDriver(t, h, newMemStore(), newFakeFirewall(), instSwarm)
		req := createReq(map[string]any{optBridgeName: "mynet-a1b2c3d4e", optMTU: "1400"})
		req.NetworkID = strings.Repeat("b", 64)
		req.IPv4Data = []*network.IPAMData{{Pool: "10.51.0.0/24", Gateway: "10.51.0.1/24"}}
		if err := b.CreateNetwork(req); err == nil || !strings.Contains(err.Error(), "another mynet instance") {
			t.Fatalf("create over the other instance's bridge: %v", err)
		}
		br, _ := h.LinkByName("mynet-a1b2c3d4e")
		addrs, _ := h.AddrList(br, netlink.FAMILY_V4)
		if br.Attrs().MTU != 1500 || len(addrs) != 1 || br.Attrs().Alias != instA.alias(testNetID) {
			t.Errorf("the other instance's bridge: MTU %d, addresses %v, alias %q", br.Attrs().MTU, addrs, br.Attrs().Alias)
		}
	})
}
