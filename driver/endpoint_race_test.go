package driver

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"
	"github.com/vishvananda/netlink"

	"github.com/mynet/mynet/internal/fake"
	"github.com/mynet/mynet/ports"
)

// raceKernel is the fake kernel with a veth deletion that takes a while,
// as it waits for the kernel's rtnl lock while containers start and stop.
// Its test takes host ports from a fake reserver, to count the holds.
type raceKernel struct{ *fake.Kernel }

func (k raceKernel) LinkDel(l netlink.Link) error {
	time.Sleep(100 * time.Microsecond)
	return k.Kernel.LinkDel(l)
}

// A DeleteEndpoint racing a ProgramExternalConnectivity for the same
// endpoint (the engine rolls back a start whose Program ran past its
// deadline and goes on) must leave no rule, no held port and no record,
// whichever comes first. Before, the Program could publish between the
// Delete's unpublish and its forgetting the endpoint, and the rule and the
// hold were left for good.
func TestDeleteEndpointRacingProgram(t *testing.T) {
	const rounds = 300
	res, fw, st := ports.NewMemReserver(), newFakeFirewall(), newMemStore()
	d, err := New(raceKernel{fake.NewKernel()}, fw, nil, st, quietLog(), WithPortReserver(res))
	if err != nil {
		t.Fatal(err)
	}
	d.ports = ports.NewAllocator(res, fixedRange(20000, 60999))
	if err := d.CreateNetwork(createReq(nil)); err != nil {
		t.Fatal(err)
	}
	leaked := 0
	for i := range rounds {
		id := fmt.Sprintf("%064x", i+1)
		raceDeleteProgram(t, d, id, i%8)
		if res.Held() != 0 || len(fw.published()) != 0 || st.len(endpointsBucket) != 0 {
			leaked++
			t.Logf("round %d: %d ports held, rules %v, %d records left", i, res.Held(), fw.published(), st.len(endpointsBucket))
			d.mu.Lock()
			ports.ReleaseAll(d.holds[id])
			delete(d.holds, id)
			d.mu.Unlock()
			fw.mu.Lock()
			fw.mappings = nil
			fw.mu.Unlock()
			_ = st.Delete(endpointsBucket, id)
		}
	}
	if leaked > 0 {
		t.Fatalf("leaked in %d of %d rounds", leaked, rounds)
	}
}

// raceDeleteProgram creates and joins endpoint id with one ephemeral port,
// then sends its DeleteEndpoint and its Program at once, the Program after
// lag yields, so that the rounds try different interleavings.
func raceDeleteProgram(t *testing.T, d *Driver, id string, lag int) {
	t.Helper()
	opts := portmap(binding(6, 80, "", 0, 0))
	req := epReq("10.50.0.2/24", "")
	req.EndpointID = id
	if _, err := d.CreateEndpoint(req); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: id, SandboxKey: "/run/netns/" + id[56:], Options: opts}); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var delErr, progErr error
	wg.Go(func() {
		<-start
		delErr = d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: id})
	})
	wg.Go(func() {
		<-start
		for range lag {
			runtime.Gosched()
		}
		progErr = d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: id, Options: opts})
	})
	close(start)
	wg.Wait()
	if delErr != nil {
		t.Fatalf("DeleteEndpoint: %v", delErr)
	}
	// Done before the Delete, refused during it, or too late: each is
	// right, as long as nothing is left.
	if progErr != nil && !errors.Is(progErr, ErrEndpointDeleting) && !errors.Is(progErr, ErrNotFound) {
		t.Fatalf("Program: %v", progErr)
	}
}

// failDelKernel is the fake kernel whose veth deletions fail.
type failDelKernel struct{ *fake.Kernel }

func (k failDelKernel) LinkDel(l netlink.Link) error {
	if _, ok := l.(*netlink.Veth); ok {
		return errInjected
	}
	return k.Kernel.LinkDel(l)
}

// While DeleteEndpoint removes the pair, Join and Program for the endpoint
// are refused; after a failed delete the endpoint is usable again (the
// engine retries the delete, or goes on with it).
func TestDeleteEndpointRefusesCallsMeanwhile(t *testing.T) {
	k := newSlowKernel()
	fw := newFakeFirewall()
	d, err := New(k, fw, nil, newMemStore(), quietLog(), WithPortReserver(k))
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
	deleted := make(chan error, 1)
	go func() {
		deleted <- d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: testEpID})
	}()
	<-k.entered
	opts := portmap(binding(6, 80, "", 8080, 8080))
	if _, err := d.Join(&network.JoinRequest{NetworkID: testNetID, EndpointID: testEpID, Options: opts}); !errors.Is(err, ErrEndpointDeleting) {
		t.Errorf("Join during DeleteEndpoint: %v, want %v", err, ErrEndpointDeleting)
	}
	err = d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID, Options: opts})
	if !errors.Is(err, ErrEndpointDeleting) {
		t.Errorf("Program during DeleteEndpoint: %v, want %v", err, ErrEndpointDeleting)
	}
	k.release <- struct{}{}
	if err := <-deleted; err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	if got := fw.published(); len(got) != 0 {
		t.Errorf("rules left: %v", got)
	}
}

func TestFailedDeleteEndpointLiftsMark(t *testing.T) {
	fw := newFakeFirewall()
	k := fake.NewKernel()
	d, err := New(failDelKernel{k}, fw, nil, newMemStore(), quietLog(), WithPortReserver(k))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateNetwork(createReq(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateEndpoint(epReq("10.50.0.2/24", "")); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteEndpoint(&network.DeleteEndpointRequest{NetworkID: testNetID, EndpointID: testEpID}); !errors.Is(err, errInjected) {
		t.Fatalf("DeleteEndpoint: %v, want the kernel's failure", err)
	}
	err = d.ProgramExternalConnectivity(&network.ProgramExternalConnectivityRequest{NetworkID: testNetID, EndpointID: testEpID,
		Options: portmap(binding(6, 80, "", 8080, 8080))})
	if err != nil {
		t.Errorf("Program after a failed delete: %v", err)
	}
	if got := fw.published(); len(got) != 1 {
		t.Errorf("published %v, want the one mapping", got)
	}
}
