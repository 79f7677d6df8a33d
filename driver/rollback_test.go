package driver

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/fake"
)

// The rollback tests make each side effect of a driver call fail in
// turn, kernel, firewall and store alike, and require that the call then
// leaves nothing (a create) or keeps what a retry needs (a delete).

// faults numbers the calls the driver makes to its fakes once armed, and
// fails the one numbered at.
type faults struct {
	mu    sync.Mutex
	armed bool
	at    int
	steps []string
}

func (f *faults) step(what string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		return nil
	}
	f.steps = append(f.steps, what)
	if len(f.steps) == f.at {
		return fmt.Errorf("%s: %w", what, errInjected)
	}
	return nil
}

// arm starts numbering; at 0 fails nothing.
func (f *faults) arm(at int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed, f.at, f.steps = true, at, nil
}

// disarm stops numbering and returns the calls seen.
func (f *faults) disarm() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	return f.steps
}

// rollbackRig is a dual-stack capable driver whose fakes all report to
// one faults.
type rollbackRig struct {
	d       *Driver
	k       *fake.Kernel
	st      *memStore
	fw, fw6 *fakeFirewall
	f       *faults
}

func newRollbackRig(t *testing.T) *rollbackRig {
	t.Helper()
	r := &rollbackRig{k: fake.NewKernel(), st: newMemStore(), fw: newFakeFirewall(), fw6: newFakeFirewall(), f: &faults{}}
	r.k.SetHook(func(op, link string) error { return r.f.step("kernel " + op + " " + link) })
	r.fw.fail = func(op string) error { return r.f.step("iptables " + op) }
	r.fw6.fail = func(op string) error { return r.f.step("ip6tables " + op) }
	r.st.fail = func(op string) error { return r.f.step("store " + op) }
	var err error
	if r.d, err = New(r.k, r.fw, r.fw6, r.st, quietLog(), WithPortReserver(r.k)); err != nil {
		t.Fatal(err)
	}
	return r
}

// rollback is one driver call tested at every step.
type rollback struct {
	setup func(t *testing.T, r *rollbackRig)
	call  func(r *rollbackRig) error
	// check judges the outcome of call: err is nil, or the injected
	// failure at that step.
	check func(t *testing.T, r *rollbackRig, err error)
}

// atEveryStep runs the call once to learn its steps, then, on a fresh
// rig each time, once more with each step failing.
func (rb rollback) atEveryStep(t *testing.T) {
	r := newRollbackRig(t)
	rb.setup(t, r)
	r.f.arm(0)
	err := rb.call(r)
	steps := r.f.disarm()
	if err != nil {
		t.Fatalf("without failures: %v", err)
	}
	rb.check(t, r, nil)
	for i, step := range steps {
		t.Run(fmt.Sprintf("%02d %s", i+1, step), func(t *testing.T) {
			r := newRollbackRig(t)
			rb.setup(t, r)
			r.f.arm(i + 1)
			err := rb.call(r)
			if seen := r.f.disarm(); len(seen) <= i || seen[i] != step {
				t.Fatalf("the calls differ from the first run's: %q", seen)
			}
			if err != nil && !errors.Is(err, errInjected) {
				t.Fatalf("error %v does not wrap the injected failure", err)
			}
			rb.check(t, r, err)
		})
	}
	t.Logf("%d steps", len(steps))
}

func dualStackReq(opts map[string]any) *network.CreateNetworkRequest {
	req := createReq(opts)
	req.IPv6Data = []*network.IPAMData{{Pool: "fd00:50::/64", Gateway: "fd00:50::1/64"}}
	return req
}

func dualStackEp() *network.CreateEndpointRequest {
	req := epReq("10.50.0.2/24", "")
	req.Interface.AddressIPv6 = "fd00:50::2/64"
	return req
}

// linkNames lists the fake's links.
func (r *rollbackRig) linkNames() []string {
	ls, _ := r.k.LinkList()
	var out []string
	for _, l := range ls {
		out = append(out, l.Attrs().Name)
	}
	return out
}

func (r *rollbackRig) addrs(name string) []string {
	l, err := r.k.LinkByName(name)
	if err != nil {
		return nil
	}
	as, _ := r.k.AddrList(l, netlink.FAMILY_ALL)
	var out []string
	for _, a := range as {
		out = append(out, a.IPNet.String())
	}
	return out
}

// noNetwork requires that nothing of the test network is left but what
// was there before (an adopted bridge, without mynet's addresses).
func (r *rollbackRig) noNetwork(t *testing.T, before ...string) {
	t.Helper()
	if got := r.linkNames(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("links %v, want %v", got, before)
	}
	for _, l := range before {
		if a := r.addrs(l); len(a) != 0 {
			t.Errorf("addresses left on %s: %v", l, a)
		}
	}
	if len(r.fw.nets)+len(r.fw6.nets) != 0 {
		t.Errorf("rules left: %v %v", r.fw.nets, r.fw6.nets)
	}
	if r.st.len(networksBucket) != 0 || len(r.d.networks) != 0 {
		t.Error("network record left")
	}
}

// network requires the test network complete on bridge br.
func (r *rollbackRig) network(t *testing.T, br string) {
	t.Helper()
	l, err := r.k.LinkByName(br)
	if err != nil {
		t.Fatalf("bridge %s: %v", br, err)
	}
	if a := r.addrs(br); fmt.Sprint(a) != "[10.50.0.1/24 fd00:50::1/64]" {
		t.Errorf("bridge addresses %v", a)
	}
	if l.Attrs().Flags&net.FlagUp == 0 || (br == testBridge && l.Attrs().Alias != ownerAlias("", testNetID)) {
		t.Errorf("bridge flags %v alias %q", l.Attrs().Flags, l.Attrs().Alias)
	}
	if _, ok := r.fw.nets[br]; !ok {
		t.Error("no IPv4 rules")
	}
	if _, ok := r.fw6.nets[br]; !ok {
		t.Error("no IPv6 rules")
	}
	if r.st.len(networksBucket) != 1 || r.d.networks[testNetID] == nil {
		t.Error("no network record")
	}
}

// A CreateNetwork that fails at any step leaves no bridge, address, rule
// or record.
func TestCreateNetworkRollsBackAtEveryStep(t *testing.T) {
	rollback{
		setup: func(*testing.T, *rollbackRig) {},
		call:  func(r *rollbackRig) error { return r.d.CreateNetwork(dualStackReq(nil)) },
		check: func(t *testing.T, r *rollbackRig, err error) {
			if err != nil {
				r.noNetwork(t)
				return
			}
			r.network(t, testBridge)
		},
	}.atEveryStep(t)
}

// On an adopted bridge, a failed CreateNetwork removes only the addresses
// it added and never the bridge.
func TestCreateNetworkOnAdoptedBridgeRollsBackAtEveryStep(t *testing.T) {
	rollback{
		setup: func(t *testing.T, r *rollbackRig) {
			if err := r.k.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "userbr0"}}); err != nil {
				t.Fatal(err)
			}
		},
		call: func(r *rollbackRig) error {
			return r.d.CreateNetwork(dualStackReq(map[string]any{optBridgeName: "userbr0"}))
		},
		check: func(t *testing.T, r *rollbackRig, err error) {
			if err != nil {
				r.noNetwork(t, "userbr0")
				return
			}
			r.network(t, "userbr0")
		},
	}.atEveryStep(t)
}

func createNetwork(t *testing.T, r *rollbackRig, opts map[string]any) {
	t.Helper()
	if err := r.d.CreateNetwork(dualStackReq(opts)); err != nil {
		t.Fatal(err)
	}
}

// noEndpoint requires that nothing of the test endpoint is left, and that
// the network is intact.
func (r *rollbackRig) noEndpoint(t *testing.T) {
	t.Helper()
	if got := r.linkNames(); fmt.Sprint(got) != "["+testBridge+"]" {
		t.Errorf("links %v, want only the bridge", got)
	}
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	if r.st.len(endpointsBucket) != 0 || len(r.d.endpoints) != 0 || len(r.d.creating) != 0 {
		t.Errorf("endpoint left: %d records, %d in memory, %d being created", r.st.len(endpointsBucket), len(r.d.endpoints), len(r.d.creating))
	}
	if p := r.fw.published(); len(p) != 0 || len(r.d.holds) != 0 {
		t.Errorf("ports left: rules %v, holds %v", p, r.d.holds)
	}
}

// endpoint requires the test endpoint's pair complete, on the bridge.
func (r *rollbackRig) endpoint(t *testing.T) {
	t.Helper()
	br, _ := r.k.LinkByName(testBridge)
	host, err := r.k.LinkByName(hostVeth(testEpID))
	if err != nil {
		t.Fatalf("host end: %v", err)
	}
	peer, err := r.k.LinkByName("mnce1e2e3e4e5e6")
	if err != nil {
		t.Fatalf("container end: %v", err)
	}
	pi, _ := r.k.LinkGetProtinfo(host)
	if host.Attrs().MasterIndex != br.Attrs().Index || host.Attrs().Flags&net.FlagUp == 0 || !pi.Isolated ||
		host.Attrs().Alias != ownerAlias("", testEpID) || peer.Attrs().HardwareAddr.String() != "02:42:0a:32:00:02" {
		t.Errorf("pair: master %d up %v isolated %v alias %q peer MAC %s", host.Attrs().MasterIndex,
			host.Attrs().Flags&net.FlagUp != 0, pi.Isolated, host.Attrs().Alias, peer.Attrs().HardwareAddr)
	}
	if r.st.len(endpointsBucket) != 1 || r.d.endpoints[testEpID] == nil {
		t.Error("no endpoint record")
	}
}

// A CreateEndpoint that fails at any step leaves no veth and no record,
// and the same endpoint can be created right after.
func TestCreateEndpointRollsBackAtEveryStep(t *testing.T) {
	rollback{
		setup: func(t *testing.T, r *rollbackRig) { createNetwork(t, r, map[string]any{optICC: "false"}) },
		call: func(r *rollbackRig) error {
			_, err := r.d.CreateEndpoint(dualStackEp())
			return err
		},
		check: func(t *testing.T, r *rollbackRig, err error) {
			if err != nil {
				r.noEndpoint(t)
				if _, err := r.d.CreateEndpoint(dualStackEp()); err != nil {
					t.Fatalf("creating it again: %v", err)
				}
			}
			r.endpoint(t)
		},
	}.atEveryStep(t)
}

// publishedEndpoint makes the test endpoint, joined, with its ports
// published.
func publishedEndpoint(t *testing.T, r *rollbackRig) {
	t.Helper()
	createNetwork(t, r, nil)
	if _, err := r.d.CreateEndpoint(dualStackEp()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID, SandboxKey: "/x", Options: webPorts()}); err != nil {
		t.Fatal(err)
	}
	if err := r.program(); err != nil {
		t.Fatal(err)
	}
}

func (r *rollbackRig) program() error {
	return r.d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: webPorts()})
}

// A Program that fails at any step leaves no port rule, no held port, and
// the endpoint unpublished; it works when tried again.
func TestProgramRollsBackAtEveryStep(t *testing.T) {
	rollback{
		setup: func(t *testing.T, r *rollbackRig) {
			createNetwork(t, r, nil)
			if _, err := r.d.CreateEndpoint(dualStackEp()); err != nil {
				t.Fatal(err)
			}
			if _, err := r.d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID, SandboxKey: "/x", Options: webPorts()}); err != nil {
				t.Fatal(err)
			}
		},
		call: (*rollbackRig).program,
		check: func(t *testing.T, r *rollbackRig, err error) {
			ep := r.d.endpoints[testEpID]
			if err != nil {
				if p, p6 := r.fw.published(), r.fw6.published(); len(p)+len(p6) != 0 || len(r.d.holds) != 0 || ep.Published {
					t.Errorf("left: rules %v %v, holds %v, published %v", p, p6, r.d.holds, ep.Published)
				}
				if err := r.program(); err != nil {
					t.Fatalf("Program again: %v", err)
				}
			}
			if len(r.fw.published()) != 3 || len(r.d.holds[testEpID]) == 0 || !ep.Published {
				t.Errorf("published: rules %v, holds %d, published %v", r.fw.published(), len(r.d.holds[testEpID]), ep.Published)
			}
		},
	}.atEveryStep(t)
}

// A DeleteEndpoint that fails at any step keeps the endpoint's record
// while anything of it is left, and a retry removes everything.
func TestDeleteEndpointRetriesAfterAnyStep(t *testing.T) {
	del := func(r *rollbackRig) error {
		return r.d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: testEpID})
	}
	rollback{
		setup: publishedEndpoint,
		call:  del,
		check: func(t *testing.T, r *rollbackRig, err error) {
			if err != nil {
				if _, kept := r.d.endpoints[testEpID]; !kept || r.st.len(endpointsBucket) != 1 {
					t.Errorf("a failed delete forgot the endpoint (in memory %v, %d records)", kept, r.st.len(endpointsBucket))
				}
				if err := del(r); err != nil {
					t.Fatalf("retry: %v", err)
				}
			}
			r.noEndpoint(t)
		},
	}.atEveryStep(t)
}

// A DeleteNetwork that fails at any step keeps the network's record, and
// a retry removes bridge, rules, endpoints and records.
func TestDeleteNetworkRetriesAfterAnyStep(t *testing.T) {
	del := func(r *rollbackRig) error {
		return r.d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID})
	}
	rollback{
		setup: publishedEndpoint,
		call:  del,
		check: func(t *testing.T, r *rollbackRig, err error) {
			if err != nil {
				if _, kept := r.d.networks[testNetID]; !kept || r.st.len(networksBucket) != 1 {
					t.Errorf("a failed delete forgot the network (in memory %v, %d records)", kept, r.st.len(networksBucket))
				}
				if err := del(r); err != nil {
					t.Fatalf("retry: %v", err)
				}
			}
			r.noNetwork(t)
			if r.st.len(endpointsBucket) != 0 || len(r.d.endpoints) != 0 || len(r.fw.published()) != 0 || len(r.d.holds) != 0 {
				t.Error("endpoint or ports left")
			}
		},
	}.atEveryStep(t)
}

// A CreateEndpoint refused leaves nothing, says why, and removes nothing
// that is not its own.
func TestCreateEndpointRefusedLeavesNothing(t *testing.T) {
	r := newRollbackRig(t)
	createNetwork(t, r, nil)
	foreign := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostVeth(testEpID)}, PeerName: "other0"}
	if err := r.k.LinkAdd(foreign); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.CreateEndpoint(dualStackEp()); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("veth name taken: %v, want EEXIST", err)
	}
	if _, err := r.k.LinkByName(hostVeth(testEpID)); err != nil {
		t.Fatalf("the link that had the name is gone: %v", err)
	}
	if err := r.k.LinkDel(foreign); err != nil {
		t.Fatal(err)
	}
	outside := dualStackEp()
	outside.Interface.Address = "10.60.0.2/24"
	if _, err := r.d.CreateEndpoint(outside); err == nil || !strings.Contains(err.Error(), "outside subnet") {
		t.Errorf("address outside subnet: %v", err)
	}
	unknown := dualStackEp()
	unknown.NetworkID = "nope"
	if _, err := r.d.CreateEndpoint(unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown network: %v", err)
	}
	r.noEndpoint(t)
}
