package driver

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/fake"
)

// slowKernel is the fake kernel with veth creation and deletion that wait
// until released, as they wait for the kernel's rtnl lock while the engine
// starts or stops containers in a burst.
type slowKernel struct {
	*fake.Kernel
	entered chan string   // a veth call began: its link's name
	release chan struct{} // one token lets one call through
}

func newSlowKernel() *slowKernel {
	return &slowKernel{Kernel: fake.NewKernel(), entered: make(chan string, 8), release: make(chan struct{}, 8)}
}

func (k *slowKernel) wait(l netlink.Link) {
	if _, ok := l.(*netlink.Veth); ok {
		k.entered <- l.Attrs().Name
		<-k.release
	}
}

func (k *slowKernel) LinkAdd(l netlink.Link) error { k.wait(l); return k.Kernel.LinkAdd(l) }
func (k *slowKernel) LinkDel(l netlink.Link) error { k.wait(l); return k.Kernel.LinkDel(l) }

// within fails the test unless fn returns within a second: the calls
// below must not wait for a veth another call is making.
func within(t *testing.T, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(time.Second):
		t.Fatalf("%s waited for another endpoint's veth", what)
	}
}

// One container's veth stuck in the kernel must not hold up the calls for
// the others, which only read and write mynet's memory; neither must the
// deletion of a veth. A second CreateEndpoint for the same ID meanwhile is
// refused.
func TestEndpointVethsOutsideDriverLock(t *testing.T) {
	k := newSlowKernel()
	d, err := New(k, newFakeFirewall(), nil, newMemStore(), quietLog(), WithPortReserver(k))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateNetwork(createReq(nil)); err != nil {
		t.Fatal(err)
	}
	k.release <- struct{}{}
	if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
		t.Fatal(err)
	}
	<-k.entered
	join := &network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID, SandboxKey: "/run/netns/one"}
	if _, err := d.Join(join); err != nil {
		t.Fatal(err)
	}

	second := epReq("10.50.0.3/24", "")
	second.EndpointID = testEpID2
	created := make(chan error, 1)
	go func() { _, err := d.CreateEndpoint(second); created <- err }()
	<-k.entered
	within(t, "EndpointOperInfo of another endpoint", func() error {
		_, err := d.EndpointInfo(&network.InfoRequest{NetworkID: testNetID, EndpointID: testEpID})
		return err
	})
	within(t, "Program of another endpoint", func() error {
		return d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID})
	})
	if _, err := d.CreateEndpoint(second); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second CreateEndpoint while the first makes the pair: %v, want already exists", err)
	}
	k.release <- struct{}{}
	if err := <-created; err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}

	deleted := make(chan error, 1)
	go func() {
		deleted <- d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: testEpID2})
	}()
	<-k.entered
	within(t, "Leave of another endpoint", func() error {
		return d.Leave(&network.LeaveRequest{NetworkID: testNetID, EndpointID: testEpID})
	})
	k.release <- struct{}{}
	if err := <-deleted; err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	if _, err := k.LinkByName(hostVeth(testEpID2)); err == nil {
		t.Error("the deleted endpoint's veth is still there")
	}
	if _, err := d.EndpointInfo(&network.InfoRequest{NetworkID: testNetID, EndpointID: testEpID2}); err == nil {
		t.Error("the deleted endpoint is still known")
	}
}

// A network deleted while an endpoint's pair was being made fails that
// CreateEndpoint and leaves neither the pair nor a record.
func TestCreateEndpointNetworkGoneMeanwhile(t *testing.T) {
	k := newSlowKernel()
	st := newMemStore()
	d, err := New(k, newFakeFirewall(), nil, st, quietLog(), WithPortReserver(k))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateNetwork(createReq(nil)); err != nil {
		t.Fatal(err)
	}
	created := make(chan error, 1)
	go func() { _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); created <- err }()
	<-k.entered
	within(t, "DeleteNetwork", func() error {
		return d.DeleteNetwork(&network.DeleteNetworkRequest{NetworkID: testNetID})
	})
	k.release <- struct{}{} // the creation
	k.release <- struct{}{} // the clean-up of the pair
	if err := <-created; err == nil || !strings.Contains(err.Error(), "was deleted") {
		t.Fatalf("CreateEndpoint: %v, want the network's deletion", err)
	}
	if _, err := k.LinkByName(hostVeth(testEpID)); err == nil {
		t.Error("the pair is left")
	}
	n := 0
	_ = st.ForEach(endpointsBucket, func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d endpoint records left", n)
	}
}

func hostVeth(endpointID string) string {
	host, _ := vethNames(endpointID)
	return host
}
